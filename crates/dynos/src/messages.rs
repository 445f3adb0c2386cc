//! The platform's log messages about dynos, in Heroku's wording (`heroku[web.1]: ...`).

use std::time::Duration;

use crate::state::DynoState;

pub fn starting(command: &str) -> String {
    format!("Starting process with command `{command}`")
}

pub fn state_changed(from: DynoState, to: DynoState) -> String {
    format!("State changed from {from} to {to}")
}

/// A one-off dyno's last state change: its process is done for good.
pub fn completed(from: DynoState) -> String {
    format!("State changed from {from} to complete")
}

/// A one-off dyno had no input or output for `timeout`.
pub fn idle_timeout(timeout: Duration) -> String {
    format!(
        "Stopping the one-off dyno: no input or output for {}",
        seconds(timeout)
    )
}

pub fn exited(code: i32) -> String {
    format!("Process exited with status {code}")
}

pub const STOPPING: &str = "Stopping all processes with SIGTERM";
pub const STOPPING_KILL: &str = "Stopping process with SIGKILL";
pub const STOPPING_REMAINING: &str = "Stopping remaining processes with SIGKILL";
pub const CYCLING: &str = "Cycling";
pub const RESTARTING: &str = "Restarting";
/// An app's dyno goes to sleep for lack of traffic.
pub const IDLING: &str = "Idling";
/// A request woke an idle dyno's app.
pub const UNIDLING: &str = "Unidling";
pub const R15: &str = "Error R15 (Memory quota vastly exceeded)";
pub const R14: &str = "Error R14 (Memory quota exceeded)";
/// The dyno's holder dropped output while no server read it (its buffer is bounded).
pub fn output_lost(bytes: u64) -> String {
    format!(
        "Error L10 (output buffer overflow) -> {bytes} bytes of this dyno's output were dropped \
         while Wharf was restarting"
    )
}

pub const R99: &str = "Error R99 (Platform error) -> Failed to launch the dyno";

pub fn boot_timeout(timeout: Duration) -> String {
    format!(
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {} of launch",
        seconds(timeout)
    )
}

pub fn exit_timeout(timeout: Duration) -> String {
    format!(
        "Error R12 (Exit timeout) -> At least one process failed to exit within {} of SIGTERM",
        seconds(timeout)
    )
}

/// `Process running mem=600MB(117.2%)`: memory in use against the quota, as Heroku logs it
/// before an R14.
pub fn memory_usage(used_bytes: u64, quota_bytes: u64) -> String {
    let megabytes = used_bytes as f64 / (1024.0 * 1024.0);
    let percent = if quota_bytes == 0 {
        0.0
    } else {
        used_bytes as f64 * 100.0 / quota_bytes as f64
    };
    format!("Process running mem={megabytes:.0}MB({percent:.1}%)")
}

/// "60 seconds", "1 second", or milliseconds below a second (short test timeouts).
fn seconds(duration: Duration) -> String {
    match duration.as_secs() {
        0 => format!("{} milliseconds", duration.as_millis()),
        1 => "1 second".to_owned(),
        n => format!("{n} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording() {
        assert_eq!(
            starting("python3 -m http.server $PORT"),
            "Starting process with command `python3 -m http.server $PORT`"
        );
        assert_eq!(
            state_changed(DynoState::Starting, DynoState::Up),
            "State changed from starting to up"
        );
        assert_eq!(exited(143), "Process exited with status 143");
        assert_eq!(
            completed(DynoState::Up),
            "State changed from up to complete"
        );
        assert_eq!(
            idle_timeout(Duration::from_secs(3600)),
            "Stopping the one-off dyno: no input or output for 3600 seconds"
        );
        assert_eq!(
            boot_timeout(Duration::from_secs(60)),
            "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 60 seconds of launch"
        );
        assert_eq!(
            exit_timeout(Duration::from_secs(30)),
            "Error R12 (Exit timeout) -> At least one process failed to exit within 30 seconds of SIGTERM"
        );
        assert_eq!(
            boot_timeout(Duration::from_millis(1500)),
            "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 1 second of launch"
        );
        assert_eq!(
            exit_timeout(Duration::from_millis(300)),
            "Error R12 (Exit timeout) -> At least one process failed to exit within 300 milliseconds of SIGTERM"
        );
        assert_eq!(
            memory_usage(600 << 20, 512 << 20),
            "Process running mem=600MB(117.2%)"
        );
        assert_eq!(memory_usage(1, 0), "Process running mem=0MB(0.0%)");
    }
}
