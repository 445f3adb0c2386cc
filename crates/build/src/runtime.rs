//! The runtime step: before a built-in buildpack compiles, its `bin/runtime` installs the
//! language runtime the app asks for (a Node.js, a CPython, a Go toolchain) into the
//! server-wide runtime cache, and says which one it chose. Compile then copies it into the slug.
//!
//! The cache is shared by every tenant's builds, so only trusted code writes it: the step runs
//! built-in buildpacks only (never an app's own buildpack), before any of the app's code runs
//! in that buildpack's compile, with the app's source read-only, none of the app's config vars,
//! `HOME` on the container's private `/tmp` and `/` as its working directory (so that no tool
//! reads an `.npmrc`, `uv.toml` or `pip.conf` of the app's), and the server's own runtime
//! settings (mirrors). Compile and everything after it sees the cache read-only.
//!
//! Layout: `<runtimes-dir>/<stack>/<language>/<version>/`, one unit per installed runtime;
//! dot-entries beside the units (`.tmp.*` installs in progress, `.downloads`) are the
//! buildpacks' own. A buildpack touches `<unit>/.wharf-used` whenever it chooses a unit, and
//! [`collect_garbage`] removes units nobody chose for [`RUNTIME_RETENTION`].
//!
//! Server paths: `<runtimes-dir>` and the stack directory beneath are the server's (created and
//! given to the build user here); what lies below them is written by build containers, so the
//! garbage collector never follows a link there.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use uuid::Uuid;
use wharf_tenant_fs::{Kind, TreeDir, TreeError};

use crate::builder::{BuildRequest, Builder};
use crate::buildpack::BuildpackSource;
use crate::log::BuildLog;
use crate::step::{mount, StepKind, StepOutput, BUILD_USER};

/// How long an installed runtime stays in the cache after a build last chose it.
pub const RUNTIME_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How long an install in progress (`.tmp.*`) may be left before it counts as abandoned.
const ABANDONED_INSTALL: Duration = Duration::from_secs(24 * 60 * 60);
/// The file a buildpack touches in a unit each time it chooses it.
const USED_MARK: &str = ".wharf-used";

/// What a runtime step left for its buildpack's compile: the stack's runtime cache and the
/// step's own choice directory (both server paths, mounted read-only into compile).
pub(crate) struct InstalledRuntime {
    pub runtimes: PathBuf,
    pub choice: PathBuf,
}

impl Builder {
    /// Runs `bin/runtime` of a built-in buildpack that has one; `None` for any other
    /// buildpack. A failing step fails the build with the step's own output above it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn install_runtime(
        &self,
        build_id: Uuid,
        index: usize,
        name: &str,
        buildpack_dir: &Path,
        app_dir: &Path,
        request: &BuildRequest,
        work: &Path,
        log: &BuildLog,
    ) -> anyhow::Result<Option<InstalledRuntime>> {
        if !matches!(
            BuildpackSource::parse(name),
            Ok(BuildpackSource::Builtin(_))
        ) {
            return Ok(None);
        }
        // The build's own copy of a built-in buildpack; looked at through `TreeDir`, like
        // every buildpack directory a container has mounted, so no link in it is followed.
        let has_runtime = crate::compile::blocking(buildpack_dir.to_owned(), |buildpack| {
            Ok(buildpack.kind(Path::new("bin/runtime"))? == Some(Kind::File))
        })
        .await?;
        if !has_runtime {
            return Ok(None);
        }
        let config = &self.inner.config;
        let runtimes = config.stack_runtimes_dir(request.app.build_stack.as_str());
        let choice = work.join(format!("runtime-{index:02}"));
        let (runtimes_dir, choice_dir) = (runtimes.clone(), choice.clone());
        tokio::task::spawn_blocking(move || prepare_dirs(&runtimes_dir, &choice_dir))
            .await
            .context("prepare the runtime cache: task failed")??;
        let mounts = vec![
            mount(app_dir, "/app", true),
            mount(buildpack_dir, "/buildpack", true),
            mount(&runtimes, crate::compile::RUNTIMES_MOUNT, false),
            mount(&choice, crate::compile::RUNTIME_MOUNT, false),
        ];
        let report = self
            .run_container(
                &format!("build-{build_id}-runtime-{index}"),
                work,
                vec![
                    "/buildpack/bin/runtime".into(),
                    "/app".into(),
                    crate::compile::RUNTIMES_MOUNT.into(),
                    crate::compile::RUNTIME_MOUNT.into(),
                ],
                mounts,
                request,
                StepOutput::log(log),
                StepKind::Runtime,
            )
            .await?;
        if report.oom_killed {
            anyhow::bail!(
                "Installing the {name} buildpack's runtime ran out of memory (limit {} MB)",
                config.build_memory_bytes / (1024 * 1024)
            );
        }
        if report.code != 0 {
            anyhow::bail!(
                "The {name} buildpack could not install the runtime this app asks for (exit status {})",
                report.code
            );
        }
        Ok(Some(InstalledRuntime { runtimes, choice }))
    }

    /// Removes runtimes no build chose for [`RUNTIME_RETENTION`] and abandoned installs, under
    /// every stack's cache. Called at start (before any build runs) and daily after.
    pub async fn collect_runtime_garbage(&self) -> anyhow::Result<()> {
        let root = self.inner.config.runtimes_dir.clone();
        let now = SystemTime::now();
        let removed =
            tokio::task::spawn_blocking(move || collect_garbage(&root, now, RUNTIME_RETENTION))
                .await
                .context("collect runtime garbage: task failed")??;
        for path in removed {
            tracing::info!(path = %path.display(), "removed an unused runtime");
        }
        Ok(())
    }
}

/// Creates the stack's runtime cache for the build user (who writes it in runtime steps) and
/// the step's empty choice directory.
fn prepare_dirs(runtimes: &Path, choice: &Path) -> anyhow::Result<()> {
    let (uid, gid) = BUILD_USER;
    // The server's runtimes dir and its stack dir (which only the server creates: build
    // containers write below it); `create_dir_all` leaves an existing one alone and the check
    // refuses one that is not a plain directory of the server's or the build user's.
    // Server path: as said.
    std::fs::create_dir_all(runtimes).with_context(|| format!("create {}", runtimes.display()))?;
    // Server path: as above.
    let meta = std::fs::symlink_metadata(runtimes)?;
    let (is_dir, owner) = (meta.file_type().is_dir(), meta.uid());
    anyhow::ensure!(
        is_dir && (owner == 0 || owner == uid),
        "{} is not a directory of the server's",
        runtimes.display()
    );
    // Server path: as above.
    std::os::unix::fs::lchown(runtimes, Some(uid), Some(gid))
        .with_context(|| format!("give {} to the build user", runtimes.display()))?;
    // Server path: the build's work dir, the server's own; a fresh name per step.
    std::fs::create_dir(choice).with_context(|| format!("create {}", choice.display()))?;
    // Server path: as above.
    std::os::unix::fs::lchown(choice, Some(uid), Some(gid))
        .with_context(|| format!("give {} to the build user", choice.display()))?;
    Ok(())
}

/// Removes, under `root/<stack>/<language>/`, every unit whose last use (its `.wharf-used`
/// mark, else the unit itself) is older than `retention`, and every `.tmp.*` install older
/// than a day. Returns what it removed. What lies below the stacks' directories is written by
/// build containers, so it is read and removed through [`TreeDir`]: a link is removed as the
/// link itself, never followed.
pub fn collect_garbage(
    root: &Path,
    now: SystemTime,
    retention: Duration,
) -> anyhow::Result<Vec<PathBuf>> {
    let root_dir = match TreeDir::open(root) {
        Ok(dir) => dir,
        Err(TreeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new())
        }
        Err(error) => return Err(error).with_context(|| format!("open {}", root.display())),
    };
    let now = unix_seconds(now);
    let mut removed = Vec::new();
    for stack in root_dir.entries()? {
        // Only the stacks' own directories: a cache laid out otherwise (a stack's directory
        // used as the root) is left alone rather than read a level off.
        let is_stack = stack
            .name
            .to_str()
            .is_some_and(|name| wharf_model::StackName::parse(name).is_ok());
        if stack.kind != Kind::Dir || !is_stack {
            continue;
        }
        let stack_dir = root_dir.dir(Path::new(&stack.name))?;
        for language in stack_dir.entries()? {
            if language.kind != Kind::Dir {
                continue;
            }
            let language_dir = stack_dir.dir(Path::new(&language.name))?;
            for unit in language_dir.entries()? {
                let name = unit.name.to_string_lossy();
                let expired = if name.starts_with(".tmp.") {
                    now - unit.stat.st_mtime > ABANDONED_INSTALL.as_secs() as i64
                } else if name.starts_with('.') {
                    false
                } else {
                    let mut last_use = unit.stat.st_mtime;
                    if unit.kind == Kind::Dir {
                        let mark = language_dir
                            .dir(Path::new(&unit.name))?
                            .entries()?
                            .into_iter()
                            .find(|entry| entry.name == USED_MARK && entry.kind == Kind::File);
                        if let Some(mark) = mark {
                            last_use = mark.stat.st_mtime;
                        }
                    }
                    now - last_use > retention.as_secs() as i64
                };
                if expired {
                    language_dir.remove(Path::new(&unit.name))?;
                    removed.push(root.join(&stack.name).join(&language.name).join(&unit.name));
                }
            }
        }
    }
    Ok(removed)
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(root: &Path, stack: &str, language: &str, name: &str) -> PathBuf {
        let dir = root.join(stack).join(language).join(name);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        dir
    }

    #[test]
    fn units_go_when_unused_for_the_retention_and_not_before() {
        let root = tempfile::tempdir().unwrap();
        let old = unit(root.path(), "debian-12", "node", "20.1.0");
        let used = unit(root.path(), "debian-12", "node", "22.3.0");
        std::fs::write(used.join(USED_MARK), b"").unwrap();
        let downloads = root.path().join("debian-12/node/.downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let install = root.path().join("debian-12/node/.tmp.abc");
        std::fs::create_dir_all(&install).unwrap();

        // Nothing is old yet.
        let now = SystemTime::now();
        assert!(collect_garbage(root.path(), now, RUNTIME_RETENTION)
            .unwrap()
            .is_empty());

        // 31 days on: the marked unit was marked "now" too, so mark it again later.
        let later = now + Duration::from_secs(31 * 24 * 60 * 60);
        let mark = std::fs::File::options()
            .write(true)
            .open(used.join(USED_MARK))
            .unwrap();
        mark.set_modified(later - Duration::from_secs(60)).unwrap();
        let mut removed = collect_garbage(root.path(), later, RUNTIME_RETENTION).unwrap();
        removed.sort();
        assert_eq!(removed, vec![install.clone(), old.clone()]);
        assert!(!old.exists() && !install.exists());
        assert!(used.join("bin/tool").exists(), "a recently used unit stays");
        assert!(downloads.exists(), "a buildpack's own dot-directory stays");
    }

    #[test]
    fn links_are_removed_as_links_never_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        let language = root.path().join("debian-12/python");
        std::fs::create_dir_all(&language).unwrap();
        std::os::unix::fs::symlink(outside.path(), language.join("3.14.0")).unwrap();
        // A unit whose mark is a link to a fresh file outside counts by the unit itself.
        let unit = unit(root.path(), "debian-12", "python", "3.13.1");
        std::os::unix::fs::symlink(outside.path().join("precious"), unit.join(USED_MARK)).unwrap();
        let later = SystemTime::now() + Duration::from_secs(31 * 24 * 60 * 60);
        let removed = collect_garbage(root.path(), later, RUNTIME_RETENTION).unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!language.join("3.14.0").exists());
        assert!(!unit.exists());
        assert_eq!(
            std::fs::read(outside.path().join("precious")).unwrap(),
            b"keep",
            "nothing outside the cache is touched"
        );
    }

    #[test]
    fn only_stack_directories_are_collected() {
        let root = tempfile::tempdir().unwrap();
        // A stack's cache used as the root: `node` is no stack, its units no languages.
        let unit = unit(root.path(), "node", "22.3.0", "bin");
        let later = SystemTime::now() + Duration::from_secs(31 * 24 * 60 * 60);
        let removed = collect_garbage(root.path(), later, RUNTIME_RETENTION).unwrap();
        assert!(removed.is_empty(), "{removed:?}");
        assert!(unit.join("bin/tool").exists());
    }

    #[test]
    fn a_missing_cache_is_empty() {
        let root = tempfile::tempdir().unwrap();
        let removed = collect_garbage(
            &root.path().join("absent"),
            SystemTime::now(),
            RUNTIME_RETENTION,
        )
        .unwrap();
        assert!(removed.is_empty());
    }
}
