//! The OCI runtime driver: finds crun or runc, writes bundles, and drives the runtime's CLI
//! (`run --keep` in the foreground, `kill`, `delete --force`, `list`).
//!
//! Server paths only: bundles, the runtime's state and the fresh per-dyno overlay dirs are
//! made by the server in its data dir; containers see none of them but the overlay's upper
//! dir, which is removed through `wharf_tenant_fs`.

use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tokio::process::Command;

use crate::cgroup::{CgroupLayout, CgroupStats};
use crate::config::{bundle_files, oci_config};
use crate::container::{Container, ContainerStdio, ExitStatus};
use crate::held::{self, HolderConfig};
use crate::spec::{validate_id, ContainerSpec, Limits, Network};
use crate::stack::{Stack, DYNO_USER};

/// How long a runtime command other than `run` (`kill`, `delete`, `list`) may take.
/// The size of each container's stdout and stderr pipe (Linux's default is 64 KiB; the most
/// an unprivileged process may set is 1 MiB by default).
const OUTPUT_PIPE_BYTES: usize = 1024 * 1024;

pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the start-up probe container may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// Where runtimes are looked for besides `$PATH` (runc is in `/usr/sbin` on Debian).
const SEARCH_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The OCI runtimes Wharf drives, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// crun: starts containers in about half of runc's time.
    Crun,
    /// runc: the reference runtime.
    Runc,
}

impl RuntimeKind {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Crun => "crun",
            RuntimeKind::Runc => "runc",
        }
    }
}

/// Which runtime binary, its state directory (`--root`) and the host's cgroup layout.
#[derive(Clone, Debug)]
pub struct Runtime {
    kind: RuntimeKind,
    binary: PathBuf,
    state_dir: PathBuf,
    cgroups: CgroupLayout,
    /// Containers run detached under a holder each (see [`Runtime::with_holder`]).
    holder: Option<HolderConfig>,
}

/// A container as the runtime lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    /// "creating", "created", "running", "paused" or "stopped".
    pub status: String,
    /// The init's pid on the host; 0 when stopped.
    #[serde(default)]
    pub pid: i64,
    /// The container's bundle directory (its `config.json` names its root).
    #[serde(default)]
    pub bundle: PathBuf,
}

impl Runtime {
    /// Finds crun (preferred) or runc, whichever first proves it can run a container here:
    /// it must offer `run --keep` (so an exited container's cgroup can be read before it is
    /// removed) and start a probe container on a throwaway stack. `state_dir` is the runtime's
    /// `--root`; the cgroup layout (v1, hybrid or v2) is read once, here.
    pub async fn detect(state_dir: &Path) -> anyhow::Result<Runtime> {
        let mut refusals = Vec::new();
        for kind in [RuntimeKind::Crun, RuntimeKind::Runc] {
            match Self::with_kind(kind, state_dir).await {
                Ok(runtime) => {
                    tracing::info!(
                        runtime = kind.name(),
                        binary = %runtime.binary.display(),
                        cgroups = runtime.cgroups.describe(),
                        "container runtime ready"
                    );
                    return Ok(runtime);
                }
                Err(error) => {
                    tracing::info!(
                        runtime = kind.name(),
                        "container runtime unusable: {error:#}"
                    );
                    refusals.push(format!("{}: {error:#}", kind.name()));
                }
            }
        }
        bail!(
            "no usable OCI runtime (install crun or runc; on a hybrid cgroup host crun needs \
             the hugetlb mount of scripts/deps.sh): {}",
            refusals.join("; ")
        )
    }

    /// The given runtime, checked as in [`Runtime::detect`].
    pub async fn with_kind(kind: RuntimeKind, state_dir: &Path) -> anyhow::Result<Runtime> {
        let binary = find_binary(kind.name())?;
        let cgroups = CgroupLayout::detect()?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .with_context(|| format!("create {}", state_dir.display()))?;
        let runtime = Runtime {
            kind,
            binary,
            state_dir: state_dir.to_path_buf(),
            cgroups,
            holder: None,
        };
        runtime.check_keep_option().await?;
        runtime.probe().await.context("run a probe container")?;
        Ok(runtime)
    }

    /// "crun" or "runc".
    pub fn name(&self) -> &str {
        self.kind.name()
    }

    pub fn kind(&self) -> RuntimeKind {
        self.kind
    }

    /// The runtime binary's path.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The runtime's state directory (its `--root`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// This runtime, running each container detached under a holder of its own
    /// (`wharf-shim`): the container outlives this process, and [`Runtime::adopt`] takes it up
    /// again from another.
    pub fn with_holder(mut self, holder: HolderConfig) -> Runtime {
        self.holder = Some(holder);
        self
    }

    /// The holder containers run under, if any.
    pub fn holder(&self) -> Option<&HolderConfig> {
        self.holder.as_ref()
    }

    /// The host's cgroup layout, as read at start-up.
    pub fn cgroups(&self) -> &CgroupLayout {
        &self.cgroups
    }

    /// Writes the bundle (`config.json` from `spec`, plus the container's `/etc/hostname` and
    /// `/etc/hosts`) under `bundle_dir`, prepares an overlay `/app` (upper and work dirs owned
    /// by the container's user), and starts the container in the foreground with the given
    /// stdio. Returns at once; [`Container::wait`] reports the exit and removes the container.
    /// The bundle directory stays for the caller to remove.
    pub async fn run(
        &self,
        spec: &ContainerSpec,
        bundle_dir: &Path,
        stdio: ContainerStdio,
    ) -> anyhow::Result<Container> {
        let config = oci_config(spec, bundle_dir)?;
        let files = bundle_files(spec);
        let (spec_copy, bundle) = (spec.clone(), bundle_dir.to_path_buf());
        tokio::task::spawn_blocking(move || write_bundle(&spec_copy, &bundle, &config, &files))
            .await
            .context("write bundle: task failed")??;

        if let Some(holder) = &self.holder {
            let started = held::start(
                holder,
                (&self.binary, &self.state_dir),
                bundle_dir,
                &spec.id,
            )
            .await?;
            if let held::Started::Failed(status) = started {
                let why = crate::container::logged_errors(bundle_dir)
                    .await
                    .unwrap_or(status);
                // What a failed start left (a created container, its cgroup) goes now.
                if let Err(error) = self.delete(&spec.id).await {
                    tracing::warn!(container = %spec.id, "remove a container that did not start: {error:#}");
                }
                bail!("{} could not run container {}: {why}", self.name(), spec.id);
            }
            return self.adopt(&spec.id, bundle_dir, stdio).await;
        }
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.state_dir)
            .arg("--log")
            .arg(bundle_dir.join(RUNTIME_LOG))
            .arg("--log-format")
            .arg("json")
            .args(["run", "--keep", "--bundle"])
            .arg(bundle_dir)
            .arg(&spec.id)
            .stdin(Stdio::null())
            // Its own process group: a terminal's ^C reaches Wharf, which then stops its
            // containers in order, rather than every container at once.
            .process_group(0);
        match stdio {
            ContainerStdio::Piped => command.stdout(Stdio::piped()).stderr(Stdio::piped()),
            ContainerStdio::Null => command.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        let child = command
            .spawn()
            .with_context(|| format!("start {} for container {}", self.name(), spec.id))?;
        if let (Some(stdout), Some(stderr)) = (&child.stdout, &child.stderr) {
            // A process that writes in bursts keeps writing while its reader is descheduled.
            for pipe in [stdout.as_fd(), stderr.as_fd()] {
                if let Err(error) = rustix::pipe::fcntl_setpipe_size(pipe, OUTPUT_PIPE_BYTES) {
                    tracing::debug!(%error, "could not enlarge a container's output pipe");
                }
            }
        }
        Ok(Container::foreground(
            spec.id.clone(),
            child,
            self.clone(),
            bundle_dir.to_path_buf(),
        ))
    }

    /// Takes up a container that runs under its holder (started by this or an earlier server
    /// process with [`Runtime::run`]): its output buffered since, then live, and its exit.
    /// An error when its holder is gone (the container, if still there, is then unheld: remove
    /// it).
    pub async fn adopt(
        &self,
        id: &str,
        bundle_dir: &Path,
        stdio: ContainerStdio,
    ) -> anyhow::Result<Container> {
        validate_id(id)?;
        let held = held::Held::connect(bundle_dir, stdio)
            .await
            .with_context(|| format!("reach the holder of container {id}"))?;
        Ok(Container::held(
            id.to_owned(),
            held,
            self.clone(),
            bundle_dir.to_path_buf(),
        ))
    }

    /// Ids of the containers the runtime knows (running or not) that start with `prefix`, for
    /// adopting or removing leftovers after a crash.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .states(prefix)
            .await?
            .into_iter()
            .map(|state| state.id)
            .collect())
    }

    /// The runtime's view of the containers whose ids start with `prefix`.
    pub async fn states(&self, prefix: &str) -> anyhow::Result<Vec<ContainerState>> {
        let output = self.command(&["list", "-f", "json"]).await?;
        parse_list(&output).map(|states| {
            states
                .into_iter()
                .filter(|state| state.id.starts_with(prefix))
                .collect()
        })
    }

    /// Sends `signal` ("TERM", "SIGKILL", "15") to container `id`'s init, which is `tini`: it
    /// passes the signal on to the command's process group.
    pub async fn kill(&self, id: &str, signal: &str) -> anyhow::Result<()> {
        validate_id(id)?;
        validate_signal(signal)?;
        self.command(&["kill", id, signal]).await.map(drop)
    }

    /// Sends `signal` to every process of container `id` (the runtime's `kill --all`).
    pub async fn kill_all(&self, id: &str, signal: &str) -> anyhow::Result<()> {
        validate_id(id)?;
        validate_signal(signal)?;
        self.command(&["kill", "--all", id, signal]).await.map(drop)
    }

    /// Removes container `id` and its cgroup, running or not (running processes are killed).
    /// Ok when it does not exist. Also removes a cgroup the runtime left behind (a crash
    /// between exit and delete).
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        validate_id(id)?;
        self.command(&["delete", "--force", id]).await?;
        for dir in self.cgroups.container_dirs(id) {
            match std::fs::remove_dir(&dir) {
                Ok(()) => {
                    tracing::info!(container = id, dir = %dir.display(), "removed leftover cgroup")
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("remove cgroup {}", dir.display()))
                }
            }
        }
        Ok(())
    }

    /// The memory and CPU counters of a running container.
    pub async fn stats(&self, id: &str) -> anyhow::Result<CgroupStats> {
        validate_id(id)?;
        let (cgroups, id) = (self.cgroups.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || cgroups.read_stats(&id))
            .await
            .context("read cgroup stats: task failed")?
    }

    /// Runs the runtime with `args` after `--root`, with a deadline; its stdout on success.
    async fn command(&self, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let what = format!("{} {}", self.name(), args.join(" "));
        let output = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.state_dir)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(COMMAND_TIMEOUT, output)
            .await
            .with_context(|| format!("{what}: no answer in {COMMAND_TIMEOUT:?}"))?
            .with_context(|| format!("{what}: start"))?;
        if !output.status.success() {
            bail!(
                "{what}: {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.stdout)
    }

    /// Refuses a runtime whose `run` cannot keep an exited container: its cgroup, and the OOM
    /// counter in it, would be gone before Wharf could read them (crun gained `--keep` in 2024,
    /// after Debian 12's 1.8.1).
    async fn check_keep_option(&self) -> anyhow::Result<()> {
        let output = Command::new(&self.binary)
            .args(["run", "--help"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(COMMAND_TIMEOUT, output)
            .await
            .context("run --help: no answer")?
            .context("run --help")?;
        let help = String::from_utf8_lossy(&output.stdout);
        if !help.contains("--keep") {
            bail!(
                "{} has no `run --keep`, needed to read the OOM counter of an exited container",
                self.binary.display()
            );
        }
        Ok(())
    }

    /// Runs `/usr/bin/true` in a container on a throwaway stack, with the same config as any
    /// dyno (seccomp, tini, limits): proof that this runtime works on this host.
    async fn probe(&self) -> anyhow::Result<()> {
        let dir = tempfile::Builder::new()
            .prefix("wharf-probe-")
            .tempdir()
            .context("create probe directory")?;
        let stack = Stack::prepare(&dir.path().join("stack"))?;
        let spec = ContainerSpec {
            id: format!("wharf-probe-{}", uuid::Uuid::new_v4().simple()),
            stack,
            args: vec!["/usr/bin/true".to_owned()],
            env: Vec::new(),
            cwd: "/".to_owned(),
            user: DYNO_USER,
            hostname: "probe".to_owned(),
            mounts: Vec::new(),
            app_overlay: None,
            tmp_size_bytes: 1 << 20,
            limits: Limits {
                memory_bytes: 64 << 20,
                memory_quota_bytes: 0,
                pids: 16,
                cpu_shares: 0,
            },
            network: Network::Empty,
            readonly_rootfs: true,
        };
        let container = self
            .run(&spec, &dir.path().join("bundle"), ContainerStdio::Null)
            .await?;
        let report = match tokio::time::timeout(PROBE_TIMEOUT, container.wait()).await {
            Ok(report) => report?,
            Err(_) => {
                self.delete(&spec.id).await?;
                bail!("the probe container did not exit in {PROBE_TIMEOUT:?}");
            }
        };
        if report.status != ExitStatus::Exited(0) {
            bail!("the probe container exited with {:?}", report.status);
        }
        Ok(())
    }
}

/// The runtime's log in the bundle (`--log`, JSON lines); read for errors after a failed run.
pub(crate) const RUNTIME_LOG: &str = "runtime.log";

/// Writes `config.json` and the bundle files; creates the overlay's upper and work dirs and
/// gives them to the container's user, or `/app` would mount read-only for it (HOST-NOTES).
fn write_bundle(
    spec: &ContainerSpec,
    bundle_dir: &Path,
    config: &oci_spec::runtime::Spec,
    files: &[(&'static str, String)],
) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(bundle_dir)
        .with_context(|| format!("create bundle {}", bundle_dir.display()))?;
    let config_path = bundle_dir.join("config.json");
    let json = serde_json::to_vec_pretty(config).context("serialize config.json")?;
    std::fs::write(&config_path, json)
        .with_context(|| format!("write {}", config_path.display()))?;
    for (name, content) in files {
        let path = bundle_dir.join(name);
        std::fs::write(&path, content).with_context(|| format!("write {}", path.display()))?;
    }
    let log = bundle_dir.join(RUNTIME_LOG);
    if let Err(error) = std::fs::remove_file(&log) {
        if error.kind() != std::io::ErrorKind::NotFound {
            return Err(error).with_context(|| format!("remove {}", log.display()));
        }
    }
    if let Some(overlay) = &spec.app_overlay {
        if !overlay.lower.is_dir() {
            bail!(
                "overlay lower dir {} is not a directory",
                overlay.lower.display()
            );
        }
        for dir in [&overlay.upper, &overlay.work] {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            std::os::unix::fs::chown(dir, Some(spec.user.0), Some(spec.user.1))
                .with_context(|| format!("chown {}", dir.display()))?;
        }
    }
    for mount in &spec.mounts {
        if !mount.source.exists() {
            bail!("mount source {} does not exist", mount.source.display());
        }
    }
    Ok(())
}

/// `list -f json`: a JSON array of states (runc prints `null` when there are none).
fn parse_list(output: &[u8]) -> anyhow::Result<Vec<ContainerState>> {
    let states: Option<Vec<ContainerState>> =
        serde_json::from_slice(output).context("parse the runtime's container list")?;
    Ok(states.unwrap_or_default())
}

/// Signals are names ("TERM", "SIGTERM") or numbers: letters and digits only.
fn validate_signal(signal: &str) -> anyhow::Result<()> {
    if signal.is_empty() || !signal.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("invalid signal {signal:?}: give a name such as TERM or a number");
    }
    Ok(())
}

/// The runtime binary in `$PATH` or the usual system directories.
fn find_binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SEARCH_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{name} is not installed (scripts/deps.sh installs it)"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_both_runtimes_lists() {
        assert!(parse_list(b"null\n").unwrap().is_empty());
        assert!(parse_list(b"[\n\n]\n").unwrap().is_empty());
        let states = parse_list(
            br#"[{"ociVersion":"1.0.2-dev","id":"web.1","pid":42,"status":"running",
                  "bundle":"/b","rootfs":"/r","created":"2024-01-01T00:00:00Z","owner":"root"},
                 {"id":"web.2","status":"stopped"}]"#,
        )
        .unwrap();
        assert_eq!(
            states,
            [
                ContainerState {
                    id: "web.1".to_owned(),
                    status: "running".to_owned(),
                    pid: 42,
                    bundle: PathBuf::from("/b"),
                },
                ContainerState {
                    id: "web.2".to_owned(),
                    status: "stopped".to_owned(),
                    pid: 0,
                    bundle: PathBuf::new(),
                },
            ]
        );
        assert!(parse_list(b"garbage").is_err());
    }

    #[test]
    fn signals() {
        for good in ["TERM", "SIGKILL", "15"] {
            assert!(validate_signal(good).is_ok());
        }
        for bad in ["", "-9", "TERM; rm"] {
            assert!(validate_signal(bad).is_err());
        }
    }
}
