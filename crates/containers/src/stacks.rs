//! The stacks a server offers ([`StackName`]) and where each one's root filesystem is: the
//! host's `/usr` for `debian-12` (`<data-dir>/stack`), and for `debian-13` a root filesystem
//! that debootstrap builds on first use, stored by version.
//!
//! Layout: `<data-dir>/stacks/<name>/<version>/rootfs`, the version a UTC timestamp
//! (`20250601T120000Z`), so the newest sorts last and is the current one. A version is built in
//! `<name>/.building-<uuid>/` and renamed into place only when complete: a crash leaves a
//! `.building-` directory, removed at the next start, never a half stack in use. Downloaded
//! packages are kept in the cache dir (`WHARF_STACK_CACHE`, `<data-dir>/stacks/cache` by
//! default), one directory per stack, so a rebuild downloads only what changed.
//!
//! Updating builds a new version beside the current one (see [`Stacks::update`]); new
//! containers then start on it, and an old version is removed by [`Stacks::collect_garbage`]
//! once no container's root is in it and no [`Stack`] handle to it is alive.
//!
//! Server paths only: the data dir and the cache dir; the mirror is the server's setting.
//! Nothing a tenant sends chooses any of them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use wharf_model::{StackName, StackSource};

use crate::runtime::Runtime;
use crate::stack::Stack;

/// The packages a built stack has besides debootstrap's minimal base: what apps build and run
/// with, like the host has for `debian-12` (`scripts/deps.sh`).
pub const STACK_PACKAGES: &[&str] = &[
    "ca-certificates",
    "curl",
    "git",
    "gcc",
    "g++",
    "make",
    "libc6-dev",
    "pkg-config",
    "python3",
    "python3-venv",
    "python3-dev",
    "nodejs",
    "ruby",
    "ruby-dev",
    "bundler",
    "libpq-dev",
    "libyaml-dev",
    "zlib1g-dev",
    "libffi-dev",
    "libssl-dev",
    "tzdata",
    "locales",
    // PID 1 of every container (`crate::config::INIT`).
    "tini",
];

/// Installed with apt inside the new root after debootstrap: debootstrap's own resolver does
/// not follow the alternatives and virtual packages `npm`'s dependencies use in Debian 13.
pub const STACK_APT_PACKAGES: &[&str] = &["npm"];

/// The mirror when neither `WHARF_STACK_MIRROR` nor the host's apt sources name one.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// A built stack older than this is built again by [`Stacks::maintain`] (`WHARF_STACK_MAX_AGE`
/// moves it): security updates reach the stack without the host changing.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

const BUILDING_PREFIX: &str = ".building-";
/// In a version's directory: what it was built with ([`build_inputs`]: the packages and the
/// host's local certificate authorities). A version whose record differs from what this
/// server would build (or that has none) is outdated: it is built again on its next use, since
/// containers may need what it lacks (as `tini`, their PID 1).
const PACKAGES_FILE: &str = "packages";
/// The certificate authorities the host's operator added (Debian's `update-ca-certificates`
/// reads them, `*.crt`): a built stack trusts them too, so that its apps reach what the host
/// reaches (an egress proxy that inspects TLS, an internal registry). The server's own files.
const LOCAL_CA_DIR: &str = "/usr/local/share/ca-certificates";

/// Where stacks live and how built ones are made.
#[derive(Clone, Debug)]
pub struct StacksConfig {
    /// The server's data dir: `stack/` (debian-12) and `stacks/` are beneath.
    pub data_dir: PathBuf,
    /// The Debian mirror debootstrap and apt download from.
    pub mirror: String,
    /// Where downloaded packages are kept between builds (one directory per stack).
    pub cache_dir: PathBuf,
    /// Built stacks older than this are built again.
    pub max_age: Duration,
}

impl StacksConfig {
    /// The defaults: the host's mirror, the cache under the data dir, [`DEFAULT_MAX_AGE`].
    pub fn new(data_dir: &Path) -> StacksConfig {
        StacksConfig {
            data_dir: data_dir.to_owned(),
            mirror: host_mirror(Path::new("/etc/apt")),
            cache_dir: data_dir.join("stacks").join("cache"),
            max_age: DEFAULT_MAX_AGE,
        }
    }

    fn versions_dir(&self, name: StackName) -> PathBuf {
        self.data_dir.join("stacks").join(name.as_str())
    }
}

/// The server's stacks. Cheap to clone: every clone shares the prepared stacks, and builds of
/// a stack happen one at a time.
#[derive(Clone)]
pub struct Stacks {
    inner: Arc<Inner>,
}

struct Inner {
    config: StacksConfig,
    /// The current stack of each name, once prepared.
    current: Mutex<HashMap<StackName, Stack>>,
    /// Versions replaced while this server ran, until garbage collection removes them.
    retired: Mutex<Vec<Stack>>,
    /// Held while a stack is built, so that concurrent first uses build it once.
    building: tokio::sync::Mutex<()>,
}

impl Stacks {
    pub fn new(config: StacksConfig) -> Stacks {
        Stacks {
            inner: Arc::new(Inner {
                config,
                current: Mutex::new(HashMap::new()),
                retired: Mutex::new(Vec::new()),
                building: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Removes what an interrupted build left (`.building-*`); the server calls it at start,
    /// before any stack is built.
    pub fn remove_unfinished(&self) -> anyhow::Result<()> {
        for name in StackName::ALL {
            let dir = self.inner.config.versions_dir(name);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry.with_context(|| format!("read {}", dir.display()))?;
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(BUILDING_PREFIX)
                {
                    tracing::info!(dir = %entry.path().display(), "remove an unfinished stack build");
                    // The server's own debootstrap output, not a tenant's tree.
                    fs::remove_dir_all(entry.path())
                        .with_context(|| format!("remove {}", entry.path().display()))?;
                }
            }
        }
        Ok(())
    }

    pub fn config(&self) -> &StacksConfig {
        &self.inner.config
    }

    /// Whether the stack can be used at once: `false` when [`Stacks::get`] would first have to
    /// build it (minutes), so that a build can say why it waits.
    pub fn is_ready(&self, name: StackName) -> bool {
        match name.source() {
            StackSource::Host => true,
            StackSource::Debootstrap { .. } => {
                self.cached(name).is_some()
                    || current_version(&self.inner.config.versions_dir(name)).is_some()
            }
        }
    }

    /// The current stack of `name`, prepared on first use; a built stack that has no version
    /// yet is built first (minutes).
    pub async fn get(&self, name: StackName) -> anyhow::Result<Stack> {
        if let Some(stack) = self.cached(name) {
            return Ok(stack);
        }
        let _building = self.inner.building.lock().await;
        if let Some(stack) = self.cached(name) {
            return Ok(stack);
        }
        let config = self.inner.config.clone();
        let stack = match name.source() {
            StackSource::Host => {
                let dir = config.data_dir.join("stack");
                blocking(move || Stack::prepare(&dir)).await?
            }
            StackSource::Debootstrap { suite } => {
                let versions = config.versions_dir(name);
                match current_version(&versions) {
                    Some(version) => {
                        let rootfs = versions.join(version).join("rootfs");
                        blocking(move || Stack::prepare_built(&rootfs)).await?
                    }
                    None => build_version(&config, name, suite).await?,
                }
            }
        };
        self.set_current(name, stack.clone());
        Ok(stack)
    }

    /// Builds a new version of a built stack beside the current one and makes it current: new
    /// containers start on it, running ones keep theirs until garbage collection finds the old
    /// version unused. The stack of the host is refreshed instead.
    pub async fn update(&self, name: StackName) -> anyhow::Result<Stack> {
        let StackSource::Debootstrap { suite } = name.source() else {
            self.inner
                .current
                .lock()
                .expect("stacks lock")
                .remove(&name);
            return self.get(name).await;
        };
        let _building = self.inner.building.lock().await;
        let stack = build_version(&self.inner.config, name, suite).await?;
        self.set_current(name, stack.clone());
        Ok(stack)
    }

    /// Builds again every built stack whose current version is older than the configured
    /// maximum age, then collects garbage. Stacks never used are left unbuilt.
    pub async fn maintain(&self, runtime: &Runtime) -> anyhow::Result<()> {
        for name in StackName::ALL {
            if matches!(name.source(), StackSource::Host) {
                continue;
            }
            let versions = self.inner.config.versions_dir(name);
            let Some(version) = newest_version(&versions) else {
                continue;
            };
            let age = fs::metadata(versions.join(&version))
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|built| SystemTime::now().duration_since(built).ok())
                .unwrap_or_default();
            let expected = build_inputs(&read_local_cas(Path::new(LOCAL_CA_DIR)));
            if age > self.inner.config.max_age || is_outdated(&versions.join(&version), &expected) {
                tracing::info!(stack = %name, version, "rebuild a stack older than its maximum age or built with other packages");
                self.update(name)
                    .await
                    .with_context(|| format!("update {name}"))?;
            }
        }
        self.collect_garbage(runtime).await.map(|_| ())
    }

    /// Removes every version of a built stack that is not current, that no container of the
    /// runtime has its root in, and that no live [`Stack`] handle holds. Returns what it
    /// removed.
    pub async fn collect_garbage(&self, runtime: &Runtime) -> anyhow::Result<Vec<PathBuf>> {
        // Read the leases before the containers: a handle dropped in between belongs to a
        // container the runtime then lists.
        let (current, leased): (Vec<PathBuf>, Vec<PathBuf>) = {
            let current = self.inner.current.lock().expect("stacks lock");
            let mut retired = self.inner.retired.lock().expect("stacks lock");
            retired.retain(Stack::is_leased);
            (
                current.values().map(|s| s.rootfs().to_owned()).collect(),
                retired.iter().map(|s| s.rootfs().to_owned()).collect(),
            )
        };
        let mut in_use: Vec<PathBuf> = current.into_iter().chain(leased).collect();
        for state in runtime.states("").await.context("list containers")? {
            if let Some(root) = bundle_root(&state.bundle) {
                in_use.push(root);
            }
        }
        let config = self.inner.config.clone();
        blocking(move || {
            let mut removed = Vec::new();
            for name in StackName::ALL {
                let versions = config.versions_dir(name);
                let Some(newest) = newest_version(&versions) else {
                    continue;
                };
                for version in list_versions(&versions) {
                    let dir = versions.join(&version);
                    let rootfs = dir.join("rootfs");
                    if version == newest || in_use.iter().any(|root| root.starts_with(&rootfs)) {
                        continue;
                    }
                    tracing::info!(stack = %name, version, "remove an unused stack version");
                    // The server's own debootstrap output, not a tenant's tree.
                    fs::remove_dir_all(&dir)
                        .with_context(|| format!("remove {}", dir.display()))?;
                    removed.push(dir);
                }
            }
            Ok(removed)
        })
        .await
    }

    fn cached(&self, name: StackName) -> Option<Stack> {
        self.inner
            .current
            .lock()
            .expect("stacks lock")
            .get(&name)
            .cloned()
    }

    fn set_current(&self, name: StackName, stack: Stack) {
        let old = self
            .inner
            .current
            .lock()
            .expect("stacks lock")
            .insert(name, stack.clone());
        if let Some(old) = old.filter(|old| old.rootfs() != stack.rootfs()) {
            self.inner.retired.lock().expect("stacks lock").push(old);
        }
    }
}

/// Builds a new version of a stack with debootstrap (and apt for [`STACK_APT_PACKAGES`]) in a
/// `.building-` directory, applies Wharf's `/etc`, and renames it into place.
async fn build_version(
    config: &StacksConfig,
    name: StackName,
    suite: &str,
) -> anyhow::Result<Stack> {
    let versions = config.versions_dir(name);
    let cache = config.cache_dir.join(name.as_str());
    for dir in [&versions, &cache] {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let building = versions.join(format!(
        "{BUILDING_PREFIX}{}",
        uuid::Uuid::new_v4().simple()
    ));
    let rootfs = building.join("rootfs");
    fs::create_dir_all(&building).with_context(|| format!("create {}", building.display()))?;
    let started = std::time::Instant::now();
    let result = async {
        run_logged(
            tokio::process::Command::new("debootstrap")
                .arg("--variant=minbase")
                .arg(format!("--include={}", STACK_PACKAGES.join(",")))
                .arg("--cache-dir")
                .arg(&cache)
                .arg(suite)
                .arg(&rootfs)
                .arg(&config.mirror),
            "debootstrap",
        )
        .await?;
        install_with_apt(&rootfs, &cache.join("apt")).await?;
        let local_cas = read_local_cas(Path::new(LOCAL_CA_DIR));
        install_local_cas(&rootfs, &local_cas).await?;
        let version = version_name(SystemTime::now());
        let done = versions.join(&version);
        let prepared_rootfs = done.join("rootfs");
        blocking({
            let rootfs = rootfs.clone();
            move || {
                Stack::prepare_built(&rootfs)?;
                let packages = building.join(PACKAGES_FILE);
                fs::write(&packages, build_inputs(&local_cas))
                    .with_context(|| format!("write {}", packages.display()))?;
                fs::rename(&building, &done)
                    .with_context(|| format!("rename {} to {}", building.display(), done.display()))
            }
        })
        .await?;
        tracing::info!(stack = %name, version, seconds = started.elapsed().as_secs(), "built a stack");
        blocking(move || Stack::prepare_built(&prepared_rootfs)).await
    }
    .await;
    if result.is_err() {
        let building = versions.clone();
        // Best effort: start-up removes what is left.
        let _ = blocking(move || {
            remove_building(&building);
            Ok(())
        })
        .await;
    }
    result.with_context(|| format!("build the {name} stack from {}", config.mirror))
}

fn remove_building(versions: &Path) {
    let Ok(entries) = fs::read_dir(versions) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(BUILDING_PREFIX)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Installs [`STACK_APT_PACKAGES`] with apt in the new root (chrooted), its downloads kept in
/// `cache` between builds, and leaves no package lists or archives behind.
async fn install_with_apt(rootfs: &Path, cache: &Path) -> anyhow::Result<()> {
    let archives = rootfs.join("var/cache/apt/archives");
    let (cache_dir, archives_dir) = (cache.to_owned(), archives.clone());
    blocking(move || copy_debs(&cache_dir, &archives_dir)).await?;
    let script = format!(
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends {}",
        STACK_APT_PACKAGES.join(" ")
    );
    run_logged(
        tokio::process::Command::new("chroot")
            .arg(rootfs)
            .args(["/usr/bin/env", "-i"])
            .args([
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "DEBIAN_FRONTEND=noninteractive",
                "LANG=C.UTF-8",
            ])
            .args(["/bin/sh", "-c", &script]),
        "apt-get install in the new stack",
    )
    .await?;
    let (cache_dir, rootfs) = (cache.to_owned(), rootfs.to_owned());
    blocking(move || {
        copy_debs(&archives, &cache_dir)?;
        for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            let dir = rootfs.join(dir);
            for entry in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
                let path = entry.context("read a directory entry")?.path();
                if path.is_file() {
                    fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
                }
            }
        }
        Ok(())
    })
    .await
}

/// Copies the `.deb` files of `from` that `to` lacks.
fn copy_debs(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.context("read a directory entry")?;
        let name = entry.file_name();
        let target = to.join(&name);
        let is_deb = name.to_string_lossy().ends_with(".deb");
        if is_deb && entry.file_type().is_ok_and(|kind| kind.is_file()) && !target.exists() {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Runs a command, its output to the server's log; an error carries its last lines.
async fn run_logged(command: &mut tokio::process::Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("start {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    tracing::debug!(what, output = text, "stack build step");
    if !output.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        bail!("{what} failed ({}):\n{tail}", output.status);
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("stack task panicked")?
}

/// The root path in a container bundle's `config.json`.
fn bundle_root(bundle: &Path) -> Option<PathBuf> {
    let config = fs::read(bundle.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&config).ok()?;
    let root = PathBuf::from(config["root"]["path"].as_str()?);
    Some(if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    })
}

/// The complete versions in `dir` (names that are version timestamps), oldest first.
fn list_versions(dir: &Path) -> Vec<String> {
    let mut versions: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| is_version_name(name) && dir.join(name).join("rootfs").is_dir())
        .collect();
    versions.sort();
    versions
}

fn newest_version(dir: &Path) -> Option<String> {
    list_versions(dir).pop()
}

/// The newest version in `dir` unless it is outdated ([`is_outdated`]).
fn current_version(dir: &Path) -> Option<String> {
    let expected = build_inputs(&read_local_cas(Path::new(LOCAL_CA_DIR)));
    newest_version(dir).filter(|version| !is_outdated(&dir.join(version), &expected))
}

/// What a built stack is made of, as [`PACKAGES_FILE`] records it: its packages one a line,
/// then each local certificate authority's name and PEM.
fn build_inputs(local_cas: &[(String, String)]) -> String {
    let packages = STACK_PACKAGES.iter().chain(STACK_APT_PACKAGES);
    let mut record: String = packages.map(|name| format!("{name}\n")).collect();
    for (name, pem) in local_cas {
        record.push_str(&format!("ca {name}\n{pem}\n"));
    }
    record
}

/// Whether the version at `dir` was built from other inputs than `expected`.
fn is_outdated(dir: &Path, expected: &str) -> bool {
    fs::read_to_string(dir.join(PACKAGES_FILE)).map_or(true, |record| record != expected)
}

/// The `*.crt` regular files directly in `dir`, by name, with their contents; none when `dir`
/// is missing.
fn read_local_cas(dir: &Path) -> Vec<(String, String)> {
    let mut cas: Vec<(String, String)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let pem = fs::read_to_string(entry.path()).ok()?;
            name.ends_with(".crt").then_some((name, pem))
        })
        .collect();
    cas.sort();
    cas
}

/// Adds the host's local certificate authorities to the new root's trust store.
async fn install_local_cas(rootfs: &Path, local_cas: &[(String, String)]) -> anyhow::Result<()> {
    if local_cas.is_empty() {
        return Ok(());
    }
    let dir = rootfs.join(&LOCAL_CA_DIR[1..]);
    let cas = local_cas.to_vec();
    blocking(move || {
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        for (name, pem) in cas {
            let path = dir.join(&name);
            fs::write(&path, pem).with_context(|| format!("write {}", path.display()))?;
        }
        Ok(())
    })
    .await?;
    run_logged(
        tokio::process::Command::new("chroot")
            .arg(rootfs)
            .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .arg("update-ca-certificates"),
        "update-ca-certificates in the new stack",
    )
    .await
}

/// `20250601T120000Z`: the UTC time a version was built, sorting like time.
fn version_name(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn is_version_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit)
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day since 1970.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The host's Debian mirror from its apt sources (`/etc/apt/sources.list` and
/// `sources.list.d/*.list` or `*.sources`), else [`DEFAULT_MIRROR`].
pub fn host_mirror(apt_dir: &Path) -> String {
    let mut texts = Vec::new();
    texts.extend(fs::read_to_string(apt_dir.join("sources.list")).ok());
    let mut parts: Vec<PathBuf> = fs::read_dir(apt_dir.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".list") || name.ends_with(".sources")
        })
        .collect();
    parts.sort();
    texts.extend(
        parts
            .iter()
            .filter_map(|path| fs::read_to_string(path).ok()),
    );
    texts
        .iter()
        .find_map(|text| mirror_in_sources(text))
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// The first Debian archive URI in an apt sources text, one-line (`deb URI suite ...`) or
/// deb822 (`URIs: ...`) style: one whose path ends in `/debian` (not `debian-security`).
fn mirror_in_sources(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| {
            let uris: Vec<&str> = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().collect()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                // Skip `[options]` before the URI.
                let rest = match rest.trim_start().strip_prefix('[') {
                    Some(options) => options.split_once(']').map_or("", |(_, after)| after),
                    None => rest,
                };
                rest.split_whitespace().take(1).collect()
            } else {
                Vec::new()
            };
            uris
        })
        .map(|uri| uri.trim_end_matches('/'))
        .find(|uri| {
            (uri.starts_with("http://") || uri.starts_with("https://")) && uri.ends_with("/debian")
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check_mirror(text: &str, expected: Option<&str>) {
        assert_eq!(mirror_in_sources(text).as_deref(), expected, "{text}");
    }

    #[test]
    fn mirrors_are_read_from_both_source_formats() {
        check_mirror(
            "Types: deb\n# http://snapshot.debian.org/archive/debian/1\nURIs: http://deb.debian.org/debian\n\
             Suites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n",
            Some("http://deb.debian.org/debian"),
        );
        check_mirror(
            "deb http://security.debian.org/debian-security bookworm-security main\n\
             deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n",
            Some("http://mirror.example/debian"),
        );
        check_mirror("# deb http://old.example/debian bookworm main\n", None);
        check_mirror(
            "deb https://packages.cloud.google.com/apt cloud-sdk main\n",
            None,
        );
        check_mirror("deb file:/srv/debian bookworm main\n", None);
    }

    #[test]
    fn the_host_mirror_falls_back_to_debians() {
        let apt = tempfile::tempdir().unwrap();
        assert_eq!(host_mirror(apt.path()), DEFAULT_MIRROR);
        fs::create_dir(apt.path().join("sources.list.d")).unwrap();
        fs::write(
            apt.path().join("sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://local.example/debian\n",
        )
        .unwrap();
        fs::write(
            apt.path().join("sources.list.d/z.list.disabled"),
            "deb http://no/debian x\n",
        )
        .unwrap();
        assert_eq!(host_mirror(apt.path()), "http://local.example/debian");
    }

    #[test]
    fn version_names_sort_like_time() {
        let check = |seconds: u64, expected: &str| {
            let name = version_name(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
            assert_eq!(name, expected);
            assert!(is_version_name(&name));
        };
        check(0, "19700101T000000Z");
        check(951_782_400, "20000229T000000Z");
        check(1_748_779_200, "20250601T120000Z");
        assert!(!is_version_name(".building-abc"));
        assert!(!is_version_name("20250601T120000"));
    }

    #[test]
    fn only_complete_versions_count_and_the_newest_is_current() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "20250101T000000Z",
            "20250601T000000Z",
            ".building-x",
            "notes",
        ] {
            fs::create_dir_all(dir.path().join(name).join("rootfs")).unwrap();
        }
        // Renamed into place only when complete: a version without a rootfs is not one.
        fs::create_dir_all(dir.path().join("20260101T000000Z")).unwrap();
        assert_eq!(
            list_versions(dir.path()),
            ["20250101T000000Z", "20250601T000000Z"]
        );
        assert_eq!(
            newest_version(dir.path()).as_deref(),
            Some("20250601T000000Z")
        );
        assert_eq!(newest_version(&dir.path().join("missing")), None);
    }

    #[test]
    fn a_version_built_with_other_packages_is_not_current() {
        let dir = tempfile::tempdir().unwrap();
        let version = dir.path().join("20250601T000000Z");
        fs::create_dir_all(version.join("rootfs")).unwrap();
        // Built before the record was kept.
        assert_eq!(current_version(dir.path()), None);
        fs::write(version.join(PACKAGES_FILE), "ca-certificates\ncurl\n").unwrap();
        assert_eq!(current_version(dir.path()), None);
        let expected = build_inputs(&read_local_cas(Path::new(LOCAL_CA_DIR)));
        fs::write(version.join(PACKAGES_FILE), &expected).unwrap();
        assert_eq!(
            current_version(dir.path()).as_deref(),
            Some("20250601T000000Z")
        );
        assert!(expected.lines().any(|name| name == "tini"));
        // A certificate authority the host's operator adds makes the version outdated.
        let added = [("proxy.crt".to_owned(), "PEM".to_owned())];
        assert!(is_outdated(&version, &build_inputs(&added)));
    }

    #[test]
    fn local_cas_are_the_crt_files_of_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.crt"), "B").unwrap();
        fs::write(dir.path().join("a.crt"), "A").unwrap();
        fs::write(dir.path().join("notes.txt"), "no").unwrap();
        fs::create_dir(dir.path().join("sub.crt")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.crt")).unwrap();
        assert_eq!(
            read_local_cas(dir.path()),
            [
                ("a.crt".to_owned(), "A".to_owned()),
                ("b.crt".to_owned(), "B".to_owned())
            ]
        );
        assert!(read_local_cas(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn start_up_removes_unfinished_builds_only() {
        let data = tempfile::tempdir().unwrap();
        let versions = data.path().join("stacks/debian-13");
        for name in ["20250101T000000Z/rootfs/etc", ".building-1/rootfs/etc"] {
            fs::create_dir_all(versions.join(name)).unwrap();
        }
        let stacks = Stacks::new(StacksConfig::new(data.path()));
        stacks.remove_unfinished().unwrap();
        assert!(versions.join("20250101T000000Z/rootfs").is_dir());
        assert!(!versions.join(".building-1").exists());
        // Built with other packages: built again on first use.
        assert!(!stacks.is_ready(StackName::Debian13));
        let expected = build_inputs(&read_local_cas(Path::new(LOCAL_CA_DIR)));
        fs::write(
            versions.join("20250101T000000Z").join(PACKAGES_FILE),
            expected,
        )
        .unwrap();
        assert!(stacks.is_ready(StackName::Debian13));
        assert!(stacks.is_ready(StackName::Debian12));
        let empty = tempfile::tempdir().unwrap();
        let fresh = Stacks::new(StacksConfig::new(empty.path()));
        assert!(!fresh.is_ready(StackName::Debian13));
    }

    #[test]
    fn bundle_roots_are_read_from_the_config() {
        let bundle = tempfile::tempdir().unwrap();
        assert_eq!(bundle_root(bundle.path()), None);
        fs::write(
            bundle.path().join("config.json"),
            r#"{"root":{"path":"/data/stacks/debian-13/20250101T000000Z/rootfs","readonly":true}}"#,
        )
        .unwrap();
        assert_eq!(
            bundle_root(bundle.path()).unwrap(),
            Path::new("/data/stacks/debian-13/20250101T000000Z/rootfs")
        );
    }
}
