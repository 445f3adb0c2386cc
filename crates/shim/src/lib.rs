//! `wharf-shim`, the per-dyno holder. The container runs detached (`runc run -d`); the shim
//! holds its output pipes, is the reaper of its init, buffers its output while no server is
//! connected and reports its exit, so a server restart leaves every dyno running: the new
//! server connects to each shim's socket and carries on.
//!
//! Invariants: std and rustix only (no async runtime, no allocator, no argument parser), one
//! thread, so the shim stays small (its resident set is measured in the tests). It knows
//! nothing of apps, releases or the store: a directory, a runtime binary and a container id.
//!
//! The protocol, in the shim's directory (made by the server, mode 0700):
//! - the server starts `wharf-shim` with its stdout on a pipe and reads one line:
//!   `started <init pid>` or `failed <reason>` (then the runtime's log says why);
//! - it connects to [`SOCKET`] and reads [`frame`]s: HELLO, the output buffered while no server
//!   was connected, LOST if some was dropped, then live output, and EXIT last;
//! - having read EXIT, it closes the connection; the shim then removes the socket and exits;
//! - [`EXIT_FILE`] holds the init's status once it is reaped ([`parse_exit_file`]), for a
//!   server that finds the shim gone; [`LOG_FILE`] has the shim's own complaints.

mod cgroup;
mod config;
pub mod frame;
mod outbox;
mod runtime;
mod shim;
mod start;

use std::io::Write;

/// The shim's socket, in its directory.
pub const SOCKET: &str = "shim.sock";
/// The init's exit status, written atomically once the init is reaped: `exited N` or
/// `signaled N`.
pub const EXIT_FILE: &str = "exit";
/// The init's pid on the host, written by the runtime.
pub const INIT_PID_FILE: &str = "init.pid";
/// The shim's own log: one line per thing worth knowing after the fact.
pub const LOG_FILE: &str = "shim.log";

/// The shim's program: reads `std::env::args`, runs until its work is done, and returns the
/// process exit code (0 done, 1 the container did not start, 2 a bad command line).
pub fn main() -> i32 {
    let config = match config::Config::parse(std::env::args_os().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("wharf-shim: {message}\n{}", config::USAGE);
            return 2;
        }
    };
    let started = match start::start(&config) {
        Ok(started) => started,
        Err(reason) => {
            // The server may be gone already; the exit code says the same.
            let _ = writeln!(std::io::stdout(), "failed {reason}");
            return 1;
        }
    };
    let init = started.init.as_raw_nonzero();
    // Failing to tell the server is no reason to drop the container: it may reconnect.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "started {init}").and_then(|()| stdout.flush());
    if let Err(error) = start::detach_stdio() {
        eprintln!("wharf-shim: detach from the server's pipes: {error}");
    }
    shim::Shim::new(config, started).run()
}

/// The text of [`EXIT_FILE`] for an EXIT frame's `(code, signal)`.
pub fn exit_file_text(code: i32, signal: i32) -> String {
    if signal != 0 {
        format!("signaled {signal}")
    } else {
        format!("exited {code}")
    }
}

/// `(code, signal)` as in the EXIT frame from the text of [`EXIT_FILE`]; surrounding space is
/// ignored.
pub fn parse_exit_file(text: &str) -> Option<(i32, i32)> {
    let (word, number) = text.trim().split_once(' ')?;
    let number = number.parse().ok()?;
    match word {
        "exited" => Some((number, 0)),
        "signaled" if number != 0 => Some((-1, number)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_file_round_trip() {
        for (code, signal, text) in [
            (0, 0, "exited 0"),
            (7, 0, "exited 7"),
            (-1, 9, "signaled 9"),
        ] {
            assert_eq!(exit_file_text(code, signal), text);
            assert_eq!(parse_exit_file(text), Some((code, signal)));
        }
        assert_eq!(parse_exit_file("exited 3\n"), Some((3, 0)));
        assert_eq!(parse_exit_file("signaled 0"), None);
        assert_eq!(parse_exit_file("stopped 1"), None);
        assert_eq!(parse_exit_file(""), None);
    }
}
