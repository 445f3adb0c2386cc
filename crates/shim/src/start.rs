//! The shim's start: become a session leader and the reaper of the container, bind the
//! socket, make the output pipes and have the runtime start the container detached.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use rustix::fs::Mode;
use rustix::pipe::PipeFlags;
use rustix::process::{Pid, PidfdFlags};

use crate::config::Config;
use crate::runtime::Runtime;
use crate::{cgroup, INIT_PID_FILE, SOCKET};

/// The size asked for each output pipe: output keeps flowing for a while when the shim is
/// slow to read (the kernel may refuse it past /proc/sys/fs/pipe-max-size; that is fine).
const PIPE_SIZE: usize = 1024 * 1024;

/// A directory's identity, to notice it was removed or replaced by another of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirIdentity {
    device: u64,
    inode: u64,
}

impl DirIdentity {
    pub(crate) fn of(path: &Path) -> Option<DirIdentity> {
        let metadata = fs::metadata(path).ok()?;
        metadata.is_dir().then(|| DirIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
}

/// A running container and what the shim holds of it.
pub(crate) struct Started {
    pub(crate) dir: DirIdentity,
    pub(crate) listener: UnixListener,
    /// Read ends of the container's stdout and stderr.
    pub(crate) pipes: [OwnedFd; 2],
    pub(crate) init: Pid,
    /// Readable once the init exits; `None` if the kernel has no pidfds or the init is gone
    /// already (the tick notices then).
    pub(crate) pidfd: Option<OwnedFd>,
    pub(crate) cgroups: Vec<PathBuf>,
}

/// Starts the container. `Err` is the reason for the `failed` line; nothing is left running.
pub(crate) fn start(config: &Config) -> Result<Started, String> {
    // Its own session: a terminal's ^C or hang-up never reaches the shim. Fails only if the
    // shim already leads a process group, which then is its own anyway.
    let _ = rustix::process::setsid();
    // The container's init is reparented to the shim when the runtime exits, so the shim can
    // wait for it and learn its exit status.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|error| format!("become child subreaper: {error}"))?;
    let dir = DirIdentity::of(&config.dir)
        .ok_or_else(|| format!("{}: not a directory", config.dir.display()))?;
    // A socket's path may not exceed 108 bytes, which a deep data dir and a long process type
    // would: it is bound relative to the shim's directory, made its working directory (servers
    // reach it through a descriptor of the directory).
    std::env::set_current_dir(&config.dir)
        .map_err(|error| format!("enter {}: {error}", config.dir.display()))?;
    let socket = config.dir.join(SOCKET);
    let listener =
        bind(Path::new(SOCKET)).map_err(|error| format!("bind {}: {error}", socket.display()))?;
    let (out_read, out_write) = output_pipe().map_err(|error| format!("make pipe: {error}"))?;
    let (err_read, err_write) = output_pipe().map_err(|error| format!("make pipe: {error}"))?;

    let pid_file = config.dir.join(INIT_PID_FILE);
    let runtime = Runtime::new(config);
    let status = runtime.run_detached(&pid_file, out_write, err_write);
    let status = match status {
        Ok(status) if status.success() => status,
        Ok(status) => return Err(abandon(&socket, status.to_string())),
        Err(error) => return Err(abandon(&socket, format!("run runtime: {error}"))),
    };
    let init = match read_pid(&pid_file) {
        Ok(init) => init,
        Err(error) => {
            // The runtime said it started something: do not leave it running unheld.
            let _ = runtime.delete_force();
            return Err(abandon(&socket, format!("runtime {status}, but {error}")));
        }
    };
    let pidfd = rustix::process::pidfd_open(init, PidfdFlags::empty()).ok();
    Ok(Started {
        dir,
        listener,
        pipes: [out_read, err_read],
        init,
        pidfd,
        cgroups: cgroup::of_init(init),
    })
}

/// Points stdin, stdout and stderr at /dev/null, so that the server reading the shim's
/// stdout sees its end and nothing the shim does later can block on a pipe nobody reads.
pub(crate) fn detach_stdio() -> io::Result<()> {
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    rustix::stdio::dup2_stdin(&null)?;
    rustix::stdio::dup2_stdout(&null)?;
    rustix::stdio::dup2_stderr(&null)?;
    Ok(())
}

fn abandon(socket: &Path, reason: String) -> String {
    let _ = fs::remove_file(socket);
    reason
}

/// Binds the socket, mode 0600, replacing a stale one left by an earlier shim.
fn bind(socket: &Path) -> io::Result<UnixListener> {
    match fs::remove_file(socket) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    // Created 0600 rather than chmod-ed after: no moment where others may connect.
    let umask = rustix::process::umask(Mode::from_raw_mode(0o177));
    let listener = UnixListener::bind(socket);
    rustix::process::umask(umask);
    let listener = listener?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// One output pipe: (read end, write end), both close-on-exec (the runtime gets the write end
/// as its stdout or stderr, which clears the flag on that copy only).
fn output_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let _ = rustix::pipe::fcntl_setpipe_size(&read, PIPE_SIZE);
    Ok((read, write))
}

fn read_pid(pid_file: &Path) -> Result<Pid, String> {
    let text = fs::read_to_string(pid_file)
        .map_err(|error| format!("read {}: {error}", pid_file.display()))?;
    text.trim()
        .parse()
        .ok()
        .and_then(Pid::from_raw)
        .filter(|pid| pid.as_raw_nonzero().get() > 0)
        .ok_or_else(|| format!("{}: not a pid: {text:?}", pid_file.display()))
}
