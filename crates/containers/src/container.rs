//! A started container: its output pipes, and waiting for its exit, which also reads whether the
//! OOM killer struck and removes the container.
//!
//! Server paths only: the runtime's log in the server's bundle dir.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use anyhow::Context;
use tokio::process::{Child, ChildStderr, ChildStdout};

use crate::runtime::{Runtime, RUNTIME_LOG};

/// What the container's stdout and stderr are connected to (stdin is always empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerStdio {
    /// Two pipes, read through [`Container::stdout`] and [`Container::stderr`].
    Piped,
    /// Discarded.
    Null,
}

/// How the container ended, as the runtime reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// The runtime exited with this code: the command's code, or 128 + n when the command was
    /// killed by signal n (tini and the runtimes report it so, as shells do).
    Exited(i32),
    /// The runtime process itself was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The status as a shell (and Heroku's "Process exited with status N") shows it.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => 128 + signal,
        }
    }

    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

/// How a container ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitReport {
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process in the container's cgroup (perhaps not the
    /// command itself: a child killed for memory leaves the status untouched).
    pub oom_killed: bool,
}

/// A running container, started by [`Runtime::run`].
///
/// Dropping it without [`Container::wait`] leaves the container running; remove it with
/// [`Runtime::delete`] (or find it later with [`Runtime::list`]).
#[derive(Debug)]
pub struct Container {
    id: String,
    child: Child,
    runtime: Runtime,
    bundle_dir: PathBuf,
}

impl Container {
    pub(crate) fn new(id: String, child: Child, runtime: Runtime, bundle_dir: PathBuf) -> Self {
        Container {
            id,
            child,
            runtime,
            bundle_dir,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's stdout (with [`ContainerStdio::Piped`]; once).
    pub fn stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The container's stderr (with [`ContainerStdio::Piped`]; once). The runtime's own
    /// complaints also go to its log in the bundle.
    pub fn stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Waits for the container to exit, reads its cgroup's OOM kill counter (the runtime ran
    /// with `--keep`, so the cgroup is still there), then removes the container and its cgroup.
    /// An error means the runtime could not run the container at all (its message is in it).
    /// Pipes not taken are closed first, so unread output cannot block the container.
    pub async fn wait(mut self) -> anyhow::Result<ExitReport> {
        drop(self.child.stdout.take());
        drop(self.child.stderr.take());
        let status = self
            .child
            .wait()
            .await
            .with_context(|| format!("wait for container {}", self.id))?;
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Exited(code),
            (None, Some(signal)) => ExitStatus::Signaled(signal),
            (None, None) => ExitStatus::Exited(-1),
        };

        let cgroups = self.runtime.cgroups().clone();
        let id = self.id.clone();
        let oom_kills = tokio::task::spawn_blocking(move || cgroups.read_oom_kills(&id))
            .await
            .context("read the OOM counter: task failed")?;
        if let Err(error) = self.runtime.delete(&self.id).await {
            // The report is still true; the leftover shows in `Runtime::list` for cleanup.
            tracing::warn!(container = %self.id, "remove exited container: {error:#}");
        }
        let oom_kills =
            oom_kills.with_context(|| format!("container {}: read OOM counter", self.id))?;

        if !status.success() {
            if let Some(message) = self.runtime_error().await {
                anyhow::bail!(
                    "{} could not run container {}: {message}",
                    self.runtime.name(),
                    self.id
                );
            }
        }
        Ok(ExitReport {
            status,
            oom_killed: oom_kills.unwrap_or(0) > 0,
        })
    }

    /// The errors the runtime logged, if any (JSON lines with `"level": "error"`).
    async fn runtime_error(&self) -> Option<String> {
        let log = tokio::fs::read_to_string(self.bundle_dir.join(RUNTIME_LOG))
            .await
            .ok()?;
        runtime_errors(&log)
    }
}

/// The messages of the error lines in a runtime's JSON log, joined; `None` when there are none.
fn runtime_errors(log: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    let messages: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Line>(line).ok())
        .filter(|line| line.level == "error")
        .map(|line| line.msg)
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_runtime_errors() {
        let runc = concat!(
            r#"{"level":"warning","msg":"unable to get oom kill count","time":"t"}"#,
            "\n",
            r#"{"level":"error","msg":"runc run failed: unable to start container process: exec: \"nope\": executable file not found in $PATH","time":"t"}"#,
            "\n"
        );
        assert_eq!(
            runtime_errors(runc).as_deref(),
            Some("runc run failed: unable to start container process: exec: \"nope\": executable file not found in $PATH")
        );
        assert_eq!(runtime_errors(r#"{"msg":"x","level":"info"}"#), None);
        assert_eq!(runtime_errors(""), None);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(ExitStatus::Exited(3).code(), 3);
        assert_eq!(ExitStatus::Signaled(9).code(), 137);
        assert!(ExitStatus::Exited(0).success());
        assert!(!ExitStatus::Signaled(15).success());
    }
}
