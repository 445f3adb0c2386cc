//! One step of a build in a container: the build user, limits and mounts, its output into the
//! build's log, and how it ended.

use std::path::Path;

use anyhow::Context;
use tokio::io::AsyncReadExt;
use wharf_containers::{ContainerSpec, ContainerStdio, Limits, Mount, Network};
use wharf_model::ConfigVars;

use crate::builder::{BuildRequest, Builder};
use crate::log::BuildLog;

/// The uid and gid builds run as (the stack's `build` user).
pub(crate) const BUILD_USER: (u32, u32) = wharf_containers::BUILD_USER;
const BUILD_PIDS: i64 = 4096;
const BUILD_CPU_SHARES: u64 = 1024;
const BUILD_TMP_BYTES: u64 = 1024 * 1024 * 1024;

/// What a step runs as, which decides its environment and working directory.
#[derive(Clone, Copy)]
pub(crate) enum StepKind<'a> {
    /// Detect, compile, release and fetch steps: the build environment, in `/app`.
    Build,
    /// A release phase: the release's config vars and version, in `/app`.
    ReleasePhase(&'a ConfigVars, i64),
    /// A built-in buildpack's runtime step: the server's runtime settings (mirrors) and
    /// nothing of the app's, in `/` with `HOME` on the container's private `/tmp`, so that no
    /// tool it runs reads configuration from the app.
    Runtime,
}

impl Builder {
    /// Runs one step in a container, its output into `output`, with the environment and
    /// working directory of its `kind`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_container(
        &self,
        id: &str,
        work: &Path,
        args: Vec<String>,
        mounts: Vec<Mount>,
        request: &BuildRequest,
        output: StepOutput<'_>,
        kind: StepKind<'_>,
    ) -> anyhow::Result<StepReport> {
        let config = &self.inner.config;
        let home = match kind {
            StepKind::Runtime => "/tmp",
            StepKind::Build | StepKind::ReleasePhase(..) => "/app",
        };
        let mut env = vec![
            ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("HOME".to_owned(), home.to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ("STACK".to_owned(), request.app.build_stack.to_string()),
        ];
        match kind {
            StepKind::Build => env.push((
                "SOURCE_VERSION".to_owned(),
                request.version.clone().unwrap_or_default(),
            )),
            StepKind::ReleasePhase(vars, version) => {
                env.extend(vars.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
                env.push(("DYNO".to_owned(), format!("release.{version}")));
            }
            StepKind::Runtime => env.extend(config.runtime_env.iter().cloned()),
        }
        let (runtime, _) = self.containers().await?;
        // Ready: `compile` prepared it before the first step.
        let stack = self.inner.stacks.get(request.app.build_stack).await?;
        // The step's own network namespace (the same rules as a dyno's), released once its
        // container is gone.
        let attachment = match &config.network {
            Some(network) => Some(
                network
                    .attach()
                    .await
                    .context("attach to the dyno network")?,
            ),
            None => None,
        };
        let network = container_network(attachment.as_ref());
        let spec = ContainerSpec {
            id: id.to_owned(),
            stack: stack.clone(),
            args,
            env,
            cwd: match kind {
                StepKind::Runtime => "/".to_owned(),
                StepKind::Build | StepKind::ReleasePhase(..) => "/app".to_owned(),
            },
            user: BUILD_USER,
            hostname: request.app.name.to_string(),
            mounts,
            app_overlay: None,
            tmp_size_bytes: BUILD_TMP_BYTES,
            limits: Limits {
                memory_bytes: config.build_memory_bytes,
                memory_quota_bytes: 0,
                pids: BUILD_PIDS,
                cpu_shares: BUILD_CPU_SHARES,
            },
            network,
            readonly_rootfs: true,
        };
        let bundle = work.join("bundles").join(id);
        let mut container = runtime
            .run(&spec, &bundle, ContainerStdio::Piped)
            .await
            .with_context(|| format!("start container {id}"))?;
        let stdout = container.stdout();
        let stderr = container.stderr();
        let copy_out = copy_into(stdout, output.stdout);
        let copy_err = copy_into(stderr, output.stderr);
        let _ = tokio::join!(copy_out, copy_err);
        let report = container.wait().await.context("wait for container")?;
        Ok(StepReport {
            code: report.status.code(),
            oom_killed: report.oom_killed,
        })
    }
}

/// The network a container joins: its attachment's namespace, or loopback alone without one.
/// Build steps and dynos alike.
pub fn container_network(attachment: Option<&wharf_network::Attachment>) -> Network {
    attachment.map_or(Network::Empty, |attachment| Network::Joined {
        path: attachment.namespace_path(),
        nameserver: attachment.nameserver(),
    })
}

/// Where a step's output goes: the build's log for both streams, or stdout captured apart
/// (a buildpack's `bin/detect` and `bin/release` answer on stdout) with stderr still shown.
#[derive(Clone, Copy)]
pub(crate) struct StepOutput<'a> {
    pub stdout: &'a BuildLog,
    pub stderr: &'a BuildLog,
}

impl<'a> StepOutput<'a> {
    pub fn log(log: &'a BuildLog) -> StepOutput<'a> {
        StepOutput {
            stdout: log,
            stderr: log,
        }
    }
}

pub(crate) struct StepReport {
    pub code: i32,
    pub oom_killed: bool,
}

async fn copy_into(stream: Option<impl tokio::io::AsyncRead + Unpin>, log: &BuildLog) {
    let Some(mut stream) = stream else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => log.write(&buffer[..n]),
        }
    }
}

pub(crate) fn mount(source: &Path, destination: &str, readonly: bool) -> Mount {
    Mount {
        source: source.to_owned(),
        destination: destination.to_owned(),
        readonly,
    }
}

/// Runs `command` the way dynos run it: after `/app/.profile.d/*.sh` and `/app/.profile`.
pub fn profile_command(command: &str) -> String {
    format!(
        "for f in /app/.profile.d/*.sh; do [ -f \"$f\" ] && . \"$f\"; done; \
         [ -f /app/.profile ] && . /app/.profile; {command}"
    )
}

/// Gives `dir` and everything in it (links themselves, never their targets) to the build user.
pub(crate) async fn chown_tree(dir: &Path) -> anyhow::Result<()> {
    let (uid, gid) = BUILD_USER;
    crate::compile::blocking(dir.to_owned(), move |tree| {
        tree.chown_all(uid, gid)
            .context("give the build's files to the build user")
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_after_the_profile() {
        let command = profile_command("gunicorn app:app");
        assert!(command.starts_with("for f in /app/.profile.d/*.sh"));
        assert!(command.ends_with("; gunicorn app:app"));
    }
}
