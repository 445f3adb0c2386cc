//! What a caller asks for: one container's command, user, mounts and limits, and the checks
//! that run before any of it reaches the OCI runtime.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::stack::Stack;

/// The longest container id accepted: runtimes keep a state directory and cgroup per id.
pub const MAX_ID_LEN: usize = 128;

/// One container to run: the command (run under `tini` as PID 1), its user, environment,
/// mounts and limits, on a [`Stack`].
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Unique among the runtime's containers; `[a-zA-Z0-9_.-]`, at most [`MAX_ID_LEN`].
    pub id: String,
    /// The stack whose read-only root filesystem the container runs on.
    pub stack: Stack,
    /// The command; run through `tini -g --` as PID 1, so signals reach its process group.
    pub args: Vec<String>,
    /// Environment variables; `PATH` gets a default when absent.
    pub env: Vec<(String, String)>,
    /// The working directory inside the container (absolute).
    pub cwd: String,
    /// The unprivileged uid and gid the command runs as (see [`crate::DYNO_USER`]).
    pub user: (u32, u32),
    /// The container's hostname (its own UTS namespace); also in its `/etc/hosts`.
    pub hostname: String,
    /// Bind mounts onto the stack's mount points (or below `/tmp`, or below an overlay `/app`).
    pub mounts: Vec<Mount>,
    /// `/app` as an overlay: the shared slug below, a private writable layer above.
    pub app_overlay: Option<Overlay>,
    /// Size of the private tmpfs on `/tmp` (mode 1777).
    pub tmp_size_bytes: u64,
    /// Memory (no swap), process count and CPU weight.
    pub limits: Limits,
    /// Which network the container sees.
    pub network: Network,
    /// Mount the stack read-only (always true for dynos and builds).
    pub readonly_rootfs: bool,
}

/// A bind mount from the host into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The host path (absolute).
    pub source: PathBuf,
    /// Where it appears in the container (absolute, normalized).
    pub destination: String,
    /// Read-only when true.
    pub readonly: bool,
}

/// An overlay filesystem for `/app`: `lower` is shared and never written; `upper` and `work`
/// belong to one container and are chowned to its user before it starts. The container may
/// change only the lower files its user owns (permissions apply as usual): extract slugs as
/// the dyno user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// Resource limits, enforced by the container's cgroup. Zero means "no limit" for each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit; memory plus swap is set to the same value, so the container never swaps.
    pub memory_bytes: u64,
    /// The memory the container is meant to use, below the limit (a dyno's quota; R14 above
    /// it): the cgroup's soft limit (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`), which
    /// the container reads at `/sys/fs/cgroup` to size itself. Zero: none.
    pub memory_quota_bytes: u64,
    /// Maximum number of processes and threads.
    pub pids: i64,
    /// Relative CPU weight (cgroup v1 `cpu.shares`; the runtime converts it for v2).
    pub cpu_shares: u64,
}

/// The container's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// A new namespace of its own with nothing but loopback: no way out at all.
    Empty,
    /// The namespace at `path` (made by `wharf_network`, joined by the runtime), whose DNS
    /// server is `nameserver` (`/etc/resolv.conf` names it).
    Joined {
        path: PathBuf,
        nameserver: std::net::Ipv4Addr,
    },
}

/// Directories a mount may go below without a mount point in the stack: they are private,
/// writable filesystems of the container, so the runtime's `mkdir` never touches the stack.
const WRITABLE_ROOTS: [&str; 2] = ["/tmp/", "/app/"];

impl ContainerSpec {
    /// Checks everything the OCI config is built from, so a bad spec fails here with a message
    /// rather than inside the runtime.
    pub fn validate(&self) -> anyhow::Result<()> {
        validate_id(&self.id)?;
        if self.args.is_empty() {
            bail!(
                "container {}: args is empty: give the command to run",
                self.id
            );
        }
        if !self.cwd.starts_with('/') {
            bail!("container {}: cwd {:?} is not absolute", self.id, self.cwd);
        }
        if self.user.0 == 0 || self.user.1 == 0 {
            bail!(
                "container {}: refusing to run as root: give an unprivileged uid and gid",
                self.id
            );
        }
        validate_hostname(&self.hostname).with_context(|| format!("container {}", self.id))?;
        for (key, _) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                bail!(
                    "container {}: invalid environment variable name {key:?}",
                    self.id
                );
            }
        }
        if self.tmp_size_bytes == 0 {
            bail!(
                "container {}: tmp_size_bytes is 0: give /tmp a size",
                self.id
            );
        }
        if let Some(overlay) = &self.app_overlay {
            for path in [&overlay.lower, &overlay.upper, &overlay.work] {
                validate_overlay_path(path).with_context(|| format!("container {}", self.id))?;
            }
        }
        for mount in &self.mounts {
            self.validate_mount(mount)?;
        }
        Ok(())
    }

    fn validate_mount(&self, mount: &Mount) -> anyhow::Result<()> {
        let destination = &mount.destination;
        if !mount.source.is_absolute() {
            bail!(
                "container {}: mount source {:?} is not absolute",
                self.id,
                mount.source
            );
        }
        validate_destination(destination).with_context(|| format!("container {}", self.id))?;
        let below_writable = WRITABLE_ROOTS.iter().any(|root| {
            destination.starts_with(root) && (*root != "/app/" || self.app_overlay.is_some())
        });
        if !below_writable && !crate::stack::is_mount_point(destination) {
            bail!(
                "container {}: mount destination {destination} is not a mount point of the stack \
                 (use /app, /cache, /env, /buildpack, /wharf or a path below /tmp)",
                self.id
            );
        }
        Ok(())
    }
}

/// Container ids: `[a-zA-Z0-9_.-]`, not starting with `.` or `-`, at most [`MAX_ID_LEN`].
pub fn validate_id(id: &str) -> anyhow::Result<()> {
    let valid_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if id.is_empty() || id.len() > MAX_ID_LEN || !valid_chars || id.starts_with(['.', '-']) {
        bail!(
            "invalid container id {id:?}: use 1 to {MAX_ID_LEN} characters of [a-zA-Z0-9_.-], \
             not starting with '.' or '-'"
        );
    }
    Ok(())
}

fn validate_hostname(hostname: &str) -> anyhow::Result<()> {
    let valid = !hostname.is_empty()
        && hostname.len() <= 63
        && hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        && !hostname.starts_with(['-', '.']);
    if !valid {
        bail!("invalid hostname {hostname:?}: use 1 to 63 characters of [a-zA-Z0-9.-]");
    }
    Ok(())
}

/// Destinations are absolute and normalized: no `.`/`..` parts, no empty parts, not `/`.
fn validate_destination(destination: &str) -> anyhow::Result<()> {
    let normalized = destination.starts_with('/')
        && destination.len() > 1
        && destination[1..]
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !normalized {
        bail!("invalid mount destination {destination:?}: give a normalized absolute path");
    }
    Ok(())
}

/// Overlay options are a comma-separated list with `:` separating lower dirs, so neither may
/// appear in the paths.
fn validate_overlay_path(path: &std::path::Path) -> anyhow::Result<()> {
    let text = path
        .to_str()
        .with_context(|| format!("overlay path {path:?} is not UTF-8"))?;
    if !path.is_absolute() || text.contains([',', ':']) {
        bail!("invalid overlay path {text:?}: give an absolute path without ',' or ':'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids() {
        for good in ["web.1", "build-6f1c", "A_b.c-d", "x"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(MAX_ID_LEN + 1);
        for bad in ["", "-x", ".x", "a/b", "a b", "ü", too_long.as_str()] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn destinations() {
        for good in ["/app", "/tmp/x/y", "/cache"] {
            assert!(validate_destination(good).is_ok(), "{good}");
        }
        for bad in ["", "/", "app", "/app/", "/a//b", "/a/../etc", "/a/./b"] {
            assert!(validate_destination(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        assert!(validate_hostname("web.1").is_ok());
        for bad in ["", "-a", "a_b", &"a".repeat(64)] {
            assert!(validate_hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlay_paths() {
        assert!(validate_overlay_path(std::path::Path::new("/data/slugs/1")).is_ok());
        for bad in ["relative", "/a,b", "/a:b"] {
            assert!(
                validate_overlay_path(std::path::Path::new(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
