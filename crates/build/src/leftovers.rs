//! What builds leave behind when the server dies under them, removed: at start-up, when no
//! build can be running, every build container, build work dir (in the builds dir, or the
//! disk pool's `build-<id>` dirs) and push archive ("reconcile from nothing", as the dyno
//! manager does with dyno containers); and, at start-up and every few minutes, Builds API
//! sources older than [`SOURCE_LIFETIME`] that no pending build is still to read.
//!
//! Server paths only: the builds and sources dirs, and the entries in them that the server
//! named (a tenant writes inside a work dir, which is removed through `wharf_tenant_fs`,
//! never following a link).

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use uuid::Uuid;

use crate::builder::{Builder, BuilderConfig};

/// How long an uploaded source lasts after its last upload (Heroku's source URLs last an
/// hour). A build started in time reads it even later: pending builds' sources stay.
pub const SOURCE_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How often expired sources are looked for while the server runs.
pub const SOURCE_EXPIRY_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Every build container's id starts with this (`build-<build id>-<step>`).
const BUILD_CONTAINER_PREFIX: &str = "build-";

impl BuilderConfig {
    /// Where the Builds API keeps uploaded sources, one file per source URL's secret.
    pub fn sources_dir(&self) -> PathBuf {
        self.data_dir.join("sources")
    }
}

/// What an entry of `<data-dir>/builds` is, by its name. Build logs (`<id>.log`) and
/// anything unknown are `None`: kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BuildsEntry {
    /// `work-<build id>`: a build's unpacked source, buildpacks and bundles.
    WorkDir,
    /// `push-<token>.tar`: the tree a `git push` sent.
    PushArchive,
}

fn classify(name: &str) -> Option<BuildsEntry> {
    if let Some(id) = name.strip_prefix("work-") {
        return Uuid::parse_str(id).is_ok().then_some(BuildsEntry::WorkDir);
    }
    let token = name.strip_prefix("push-")?.strip_suffix(".tar")?;
    is_token(token).then_some(BuildsEntry::PushArchive)
}

/// A capability URL's secret as [`crate::builder::random_token`] makes them.
fn is_token(name: &str) -> bool {
    name.len() == 48 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a source last written at `modified` is past its lifetime at `now`.
pub fn source_expired(modified: SystemTime, now: SystemTime) -> bool {
    now.duration_since(modified)
        .is_ok_and(|age| age >= SOURCE_LIFETIME)
}

/// The secret at the end of a source URL (`<public-url>/sources/<token>`).
fn source_token(url: &str) -> Option<&str> {
    url.rsplit_once("/sources/")
        .map(|(_, token)| token)
        .filter(|token| is_token(token))
}

impl Builder {
    /// Removes what interrupted builds left: every build container (running or not), every
    /// work dir and push archive, and expired sources. Call it once at start-up, before the
    /// API serves: it assumes no build is running. Fails only when the container runtime
    /// cannot list containers; anything that cannot be removed is logged and left for the
    /// next start.
    pub async fn remove_leftovers(&self) -> anyhow::Result<()> {
        let (runtime, _) = self.containers().await?;
        let containers = runtime
            .list(BUILD_CONTAINER_PREFIX)
            .await
            .context("list build containers")?;
        // Containers first: they mount the work dirs.
        for id in containers {
            match runtime.delete(&id).await {
                Ok(()) => tracing::info!(container = id, "removed a leftover build container"),
                Err(error) => tracing::warn!(
                    container = id,
                    error = format!("{error:#}"),
                    "remove a leftover build container"
                ),
            }
        }
        self.remove_leftover_work().await;
        let slugs_dir = self.inner.config.data_dir.join("slugs");
        tokio::task::spawn_blocking(move || remove_partial_slugs(&slugs_dir))
            .await
            .context("remove interrupted builds' slugs: task failed")?;
        let builds_dir = self.inner.config.builds_dir();
        tokio::task::spawn_blocking(move || remove_interrupted(&builds_dir))
            .await
            .context("remove interrupted builds' files: task failed")?;
        if let Err(error) = self.expire_sources().await {
            tracing::warn!(error = format!("{error:#}"), "expire sources");
        }
        if let Err(error) = self.collect_runtime_garbage().await {
            tracing::warn!(error = format!("{error:#}"), "collect runtime garbage");
        }
        Ok(())
    }

    /// Removes every source past [`SOURCE_LIFETIME`] that no pending build names. Returns
    /// how many it removed.
    pub async fn expire_sources(&self) -> anyhow::Result<usize> {
        let pending = self.inner.store.pending_build_sources().await?;
        let keep: HashSet<String> = pending
            .iter()
            .filter_map(|url| source_token(url))
            .map(str::to_owned)
            .collect();
        let dir = self.inner.config.sources_dir();
        tokio::task::spawn_blocking(move || remove_expired_sources(&dir, &keep, SystemTime::now()))
            .await
            .context("expire sources: task failed")?
    }

    /// Runs [`Builder::expire_sources`] every [`SOURCE_EXPIRY_INTERVAL`] until `shutdown`
    /// resolves, and [`Builder::collect_runtime_garbage`] then too while no build runs (a
    /// build may be copying a runtime the collector would take).
    pub async fn expire_until(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(SOURCE_EXPIRY_INTERVAL) => {}
            }
            if let Err(error) = self.expire_sources().await {
                tracing::warn!(error = format!("{error:#}"), "expire sources");
            }
            let idle = self
                .inner
                .live
                .lock()
                .expect("live builds lock is never poisoned")
                .is_empty();
            if idle {
                if let Err(error) = self.collect_runtime_garbage().await {
                    tracing::warn!(error = format!("{error:#}"), "collect runtime garbage");
                }
            }
        }
    }
}

/// Removes the slugs interrupted builds were packing (`build-<id>.partial`).
fn remove_partial_slugs(slugs_dir: &Path) {
    // Server path: `<data-dir>/slugs`, written by the server alone.
    let Ok(entries) = std::fs::read_dir(slugs_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let partial = name
            .to_str()
            .is_some_and(|name| name.starts_with("build-") && name.ends_with(".partial"));
        if partial {
            // Server path: a file of the server's own (unlinked, never followed).
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed an interrupted build's slug")
                }
                Err(error) => {
                    tracing::warn!(%error, path = %entry.path().display(), "remove an interrupted build's slug")
                }
            }
        }
    }
}

/// Removes the work dirs and push archives in `builds_dir`. Never follows a symbolic link:
/// a link is removed itself, and no link inside a work dir is followed.
fn remove_interrupted(builds_dir: &Path) {
    let entries = match std::fs::read_dir(builds_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
        Err(error) => {
            tracing::warn!(%error, dir = %builds_dir.display(), "read the builds dir");
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(kind) = name.to_str().and_then(classify) else {
            continue;
        };
        let path = entry.path();
        let removed = wharf_tenant_fs::remove_tree(&path);
        let what = match kind {
            BuildsEntry::WorkDir => "an interrupted build's work dir",
            BuildsEntry::PushArchive => "an interrupted push's archive",
        };
        match removed {
            Ok(()) => tracing::info!(path = %path.display(), "removed {what}"),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                path = %path.display(),
                "remove {what}"
            ),
        }
    }
}

/// Removes the sources in `dir` last written before their lifetime ended at `now`, except
/// those whose token is in `keep`.
fn remove_expired_sources(
    dir: &Path,
    keep: &HashSet<String>,
    now: SystemTime,
) -> anyhow::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error).with_context(|| format!("read {}", dir.display())),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(token) = name.to_str().filter(|name| is_token(name)) else {
            continue;
        };
        if keep.contains(token) {
            continue;
        }
        // The entry itself, never what a link points to.
        let Ok(metadata) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let expired = metadata
            .modified()
            .is_ok_and(|modified| source_expired(modified, now));
        if !metadata.is_file() || !expired {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                removed += 1;
                tracing::info!(source = token, "removed an expired source");
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(%error, source = token, "remove an expired source"),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn builds_dir_entries_by_name() {
        let id = "6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b";
        let check = |name: &str, expected| assert_eq!(classify(name), expected, "{name}");
        check(&format!("work-{id}"), Some(BuildsEntry::WorkDir));
        check(&format!("push-{TOKEN}.tar"), Some(BuildsEntry::PushArchive));
        check(&format!("{id}.log"), None);
        check("work-", None);
        check("work-../../etc", None);
        check(&format!("push-{TOKEN}"), None);
        check("push-short.tar", None);
        check("anything-else", None);
    }

    #[test]
    fn sources_expire_after_their_lifetime() {
        let now = SystemTime::now();
        assert!(!source_expired(now, now));
        assert!(!source_expired(now - Duration::from_secs(59 * 60), now));
        assert!(source_expired(now - SOURCE_LIFETIME, now));
        // A clock that went back does not expire anything.
        assert!(!source_expired(now + Duration::from_secs(10), now));
    }

    #[test]
    fn source_tokens_from_urls() {
        let url = format!("http://127.0.0.1:5000/sources/{TOKEN}");
        assert_eq!(source_token(&url), Some(TOKEN));
        assert_eq!(source_token("http://h/sources/../x"), None);
        assert_eq!(source_token("https://example.com/tarball.tgz"), None);
    }

    #[test]
    fn interrupted_builds_slugs_go_and_nothing_else() {
        let slugs = tempfile::tempdir().unwrap();
        let partial = slugs
            .path()
            .join(format!("build-{}.partial", Uuid::new_v4()));
        let slug = slugs.path().join(format!("{}.tar.zst", Uuid::new_v4()));
        std::fs::write(&partial, "half").unwrap();
        std::fs::write(&slug, "whole").unwrap();
        std::fs::create_dir(slugs.path().join("extracted")).unwrap();
        remove_partial_slugs(slugs.path());
        assert!(!partial.exists());
        assert!(slug.exists() && slugs.path().join("extracted").is_dir());
    }

    #[test]
    fn interrupted_builds_files_go_and_nothing_else() {
        let data = tempfile::tempdir().unwrap();
        let builds = data.path().join("builds");
        let work = builds.join("work-6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b");
        std::fs::create_dir_all(work.join("app/deep")).unwrap();
        std::fs::write(work.join("app/deep/file"), "x").unwrap();
        let outside = data.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("precious"), "keep").unwrap();
        // A link in a work dir is removed, not followed.
        std::os::unix::fs::symlink(&outside, work.join("app/link")).unwrap();
        // A work dir name that is a link: the link goes, its target stays.
        let linked = builds.join("work-00000000-0000-0000-0000-000000000001");
        std::os::unix::fs::symlink(&outside, &linked).unwrap();
        let archive = builds.join(format!("push-{TOKEN}.tar"));
        std::fs::write(&archive, "tar").unwrap();
        let log = builds.join("6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b.log");
        std::fs::write(&log, "output").unwrap();

        remove_interrupted(&builds);
        assert!(!work.exists());
        assert!(std::fs::symlink_metadata(&linked).is_err());
        assert!(!archive.exists());
        assert!(log.exists(), "build logs stay");
        assert_eq!(
            std::fs::read_to_string(outside.join("precious")).unwrap(),
            "keep"
        );
        // Nothing to do, and no builds dir at all, are fine.
        remove_interrupted(&builds);
        remove_interrupted(&data.path().join("missing"));
    }

    #[test]
    fn expired_sources_go_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = "a".repeat(48);
        let old = "b".repeat(48);
        let pending = "c".repeat(48);
        for token in [&fresh, &old, &pending] {
            std::fs::write(dir.path().join(token), "tarball").unwrap();
        }
        std::fs::write(dir.path().join("not-a-token"), "x").unwrap();
        let later = SystemTime::now() + SOURCE_LIFETIME + Duration::from_secs(1);
        // From `later`, every file is expired; the fresh one is made to look new.
        let touched = std::fs::File::options()
            .write(true)
            .open(dir.path().join(&fresh))
            .unwrap();
        touched.set_modified(later).unwrap();
        let keep = HashSet::from([pending.clone()]);
        let removed = remove_expired_sources(dir.path(), &keep, later).unwrap();
        assert_eq!(removed, 1);
        assert!(!dir.path().join(&old).exists());
        assert!(dir.path().join(&fresh).exists());
        assert!(dir.path().join(&pending).exists());
        assert!(dir.path().join("not-a-token").exists());
        assert_eq!(
            remove_expired_sources(&dir.path().join("missing"), &keep, later).unwrap(),
            0
        );
    }
}
