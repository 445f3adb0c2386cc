//! A started container: its output pipes, and waiting for its exit, which also reads whether the
//! OOM killer struck and removes the container.
//!
//! Server paths only: the runtime's log in the server's bundle dir.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use anyhow::Context;
use tokio::process::Child;
use tokio::sync::watch;

use crate::held::{Held, Output};
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

/// A running container, started by [`Runtime::run`] or found again by [`Runtime::adopt`].
///
/// Dropping it without [`Container::wait`] leaves the container running; remove it with
/// [`Runtime::delete`] (or find it later with [`Runtime::list`]). A held container (the
/// runtime has a holder) keeps running with its output buffered by its holder, for
/// [`Runtime::adopt`] to take up again.
pub struct Container {
    id: String,
    process: Process,
    runtime: Runtime,
    bundle_dir: PathBuf,
}

enum Process {
    /// The runtime's `run` in the foreground, a child of this process.
    Foreground(Child),
    /// Detached, with a holder process of its own.
    Held(Held),
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.id)
            .field("held", &matches!(self.process, Process::Held(_)))
            .finish()
    }
}

impl Container {
    pub(crate) fn foreground(
        id: String,
        child: Child,
        runtime: Runtime,
        bundle_dir: PathBuf,
    ) -> Self {
        Container {
            id,
            process: Process::Foreground(child),
            runtime,
            bundle_dir,
        }
    }

    pub(crate) fn held(id: String, held: Held, runtime: Runtime, bundle_dir: PathBuf) -> Self {
        Container {
            id,
            process: Process::Held(held),
            runtime,
            bundle_dir,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's stdout (with [`ContainerStdio::Piped`]; once).
    pub fn stdout(&mut self) -> Option<Output> {
        match &mut self.process {
            Process::Foreground(child) => child.stdout.take().map(|out| Box::pin(out) as Output),
            Process::Held(held) => held.stdout.take(),
        }
    }

    /// The container's stderr (with [`ContainerStdio::Piped`]; once). The runtime's own
    /// complaints also go to its log in the bundle.
    pub fn stderr(&mut self) -> Option<Output> {
        match &mut self.process {
            Process::Foreground(child) => child.stderr.take().map(|err| Box::pin(err) as Output),
            Process::Held(held) => held.stderr.take(),
        }
    }

    /// Bytes of output the holder dropped while no server was connected (its buffer is
    /// bounded); changes when more are reported. Always 0 in the foreground.
    pub fn lost_output(&self) -> watch::Receiver<u64> {
        match &self.process {
            Process::Held(held) => held.lost.clone(),
            Process::Foreground(_) => watch::channel(0).1,
        }
    }

    /// Waits for the container to exit, reads its cgroup's OOM kill counter (the runtime ran
    /// with `--keep`, so the cgroup is still there), then removes the container and its cgroup.
    /// An error means the runtime could not run the container at all (its message is in it).
    /// Pipes not taken are closed first, so unread output cannot block the container.
    pub async fn wait(mut self) -> anyhow::Result<ExitReport> {
        drop(self.stdout());
        drop(self.stderr());
        let status = match &mut self.process {
            Process::Foreground(child) => {
                let status = child
                    .wait()
                    .await
                    .with_context(|| format!("wait for container {}", self.id))?;
                match (status.code(), status.signal()) {
                    (Some(code), _) => ExitStatus::Exited(code),
                    (None, Some(signal)) => ExitStatus::Signaled(signal),
                    (None, None) => ExitStatus::Exited(-1),
                }
            }
            Process::Held(held) => match (&mut held.exit).await.ok().flatten() {
                Some((code, 0)) => ExitStatus::Exited(code),
                Some((_, signal)) => ExitStatus::Signaled(signal),
                None => {
                    // Its holder was killed: the container cannot be watched any more.
                    if let Err(error) = self.runtime.delete(&self.id).await {
                        tracing::warn!(container = %self.id, "remove an unheld container: {error:#}");
                    }
                    anyhow::bail!(
                        "container {}: its holder ended without its exit status",
                        self.id
                    );
                }
            },
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

        // A held container's runtime ran only to start it: a failed start never gets here.
        if !status.success() && matches!(self.process, Process::Foreground(_)) {
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

    /// The errors the runtime logged, if any.
    async fn runtime_error(&self) -> Option<String> {
        logged_errors(&self.bundle_dir).await
    }
}

/// The errors the runtime logged in the bundle `bundle_dir` (JSON lines with `"level":
/// "error"`), joined; `None` when there are none.
pub(crate) async fn logged_errors(bundle_dir: &std::path::Path) -> Option<String> {
    use tokio::io::AsyncReadExt;
    // Server path: the runtime's log in the server's bundle dir (beside the container's root,
    // never in it), opened without following a link and read up to a bound.
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(bundle_dir.join(RUNTIME_LOG))
        .await
        .ok()?;
    let mut log = String::new();
    file.take(RUNTIME_LOG_LIMIT)
        .read_to_string(&mut log)
        .await
        .ok()?;
    runtime_errors(&log)
}

/// The most of a runtime's log read for its errors.
const RUNTIME_LOG_LIMIT: u64 = 1024 * 1024;

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
