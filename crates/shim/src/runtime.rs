//! The OCI runtime commands the shim runs; runc and crun take the same command lines.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use crate::config::Config;

/// Runs `BIN --root STATE ...` for the shim's one container.
pub(crate) struct Runtime<'a> {
    config: &'a Config,
}

impl<'a> Runtime<'a> {
    pub(crate) fn new(config: &'a Config) -> Runtime<'a> {
        Runtime { config }
    }

    /// `run -d`: creates and starts the container, detached, with `stdout` and `stderr` as its
    /// output, and waits for the runtime (not the container) to exit. Consumes the pipes'
    /// write ends so that the shim holds none once the runtime is gone.
    pub(crate) fn run_detached(
        &self,
        pid_file: &Path,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> std::io::Result<ExitStatus> {
        let bundle = &self.config.bundle;
        let mut command = self.command();
        command
            .arg("--log")
            .arg(bundle.join("runtime.log"))
            .args(["--log-format", "json", "run", "-d", "--pid-file"])
            .arg(pid_file)
            .arg("--bundle")
            .arg(bundle)
            .arg(&self.config.id)
            .stdout(stdout)
            .stderr(stderr);
        command.status()
        // `command` and with it the write ends are dropped here.
    }

    /// `kill --all ID SIGNAL`: signals every process of the container.
    pub(crate) fn kill_all(&self, signal: &str) -> Result<(), String> {
        let mut command = self.command();
        command.args(["kill", "--all", &self.config.id, signal]);
        outcome(command, "kill")
    }

    /// `delete --force ID`: removes the container's runtime state (and its cgroup).
    pub(crate) fn delete_force(&self) -> Result<(), String> {
        let mut command = self.command();
        command.args(["delete", "--force", &self.config.id]);
        outcome(command, "delete")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.config.runtime);
        command
            .arg("--root")
            .arg(&self.config.root)
            .stdin(Stdio::null());
        command
    }
}

/// Ok if the command exited 0; otherwise what went wrong, with the end of its stderr.
fn outcome(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .stdout(Stdio::null())
        .output()
        .map_err(|error| format!("runtime {what}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let tail = &stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(300))..];
    Err(format!("runtime {what}: {}: {tail}", output.status))
}
