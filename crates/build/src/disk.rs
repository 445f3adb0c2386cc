//! A build's disks: with a disk pool, the build's work dir (its `/app` and everything else
//! the build writes) and the app's cache (`/cache`) are capped directories of their own
//! (`build-<build id>`, `cache-<app id>`); without one, plain directories in the data dir. And
//! the line that tells a failed build it ran out of disk.
//!
//! Server paths only: the pool's directories and the builds and cache dirs, named by the
//! server; what tenants wrote in them is removed by the pool or through `wharf_tenant_fs`.

use std::path::PathBuf;

use uuid::Uuid;
use wharf_disk::{describe_bytes, Usage};

use crate::builder::Builder;
use crate::log::BuildLog;
use crate::step::BUILD_USER;

/// How much of the end of a failed build's output is searched for a full disk's error.
const OUTPUT_TAIL: usize = 64 * 1024;
/// What tools print when a write fails with `ENOSPC`.
const FULL_DISK_WORDS: [&str; 2] = ["No space left on device", "ENOSPC"];

/// The pool name of a build's work dir.
fn work_name(build_id: Uuid) -> String {
    format!("build-{build_id}")
}

/// The pool name of an app's build cache.
fn cache_name(app_id: Uuid) -> String {
    format!("cache-{app_id}")
}

/// Whether a pool name is a build's work dir (a leftover once no build runs).
fn is_work_name(name: &str) -> bool {
    name.strip_prefix("build-")
        .is_some_and(|id| Uuid::parse_str(id).is_ok())
}

impl Builder {
    /// Makes the build's work dir: a capped dir of the pool (owned by root, as a plain one
    /// is), or `<data-dir>/builds/work-<build id>` without a pool (made as it is written).
    pub(crate) async fn prepare_work(&self, build_id: Uuid) -> anyhow::Result<PathBuf> {
        let config = &self.inner.config;
        match &config.disk {
            Some(pool) => {
                pool.create(&work_name(build_id), config.build_disk_bytes, (0, 0))
                    .await
            }
            None => Ok(config.builds_dir().join(format!("work-{build_id}"))),
        }
    }

    /// Removes the build's work dir, whatever the build left in it.
    pub(crate) async fn remove_work(&self, build_id: Uuid, work: PathBuf) -> anyhow::Result<()> {
        match &self.inner.config.disk {
            Some(pool) => pool.remove(&work_name(build_id)).await,
            None => crate::compile::remove_dir(work).await,
        }
    }

    /// The app's build cache, made when missing: a capped dir of the pool owned by the build
    /// user, or `<data-dir>/cache/<app id>` without a pool.
    pub(crate) async fn prepare_cache(&self, app_id: Uuid) -> anyhow::Result<PathBuf> {
        let config = &self.inner.config;
        match &config.disk {
            Some(pool) => pool
                .create(&cache_name(app_id), config.cache_disk_bytes, BUILD_USER)
                .await
                .map_err(|error| {
                    // The details name the server's paths: for its log, not the build's.
                    tracing::error!(app = %app_id, error = format!("{error:#}"), "make a build cache");
                    anyhow::anyhow!(
                        "The build cache could not be made ready: purge it with \
                         `wharf builds:cache:purge` and build again (the server's log says why)"
                    )
                }),
            None => Ok(config.cache_dir(app_id)),
        }
    }

    /// Removes the app's build cache (both kinds: a server may have had no pool before).
    pub(crate) async fn remove_cache(&self, app_id: Uuid) -> anyhow::Result<()> {
        let config = &self.inner.config;
        if let Some(pool) = &config.disk {
            pool.remove(&cache_name(app_id)).await?;
        }
        crate::compile::remove_dir(config.cache_dir(app_id)).await
    }

    /// Removes the work dirs interrupted builds left in the pool (at start-up, when no build
    /// runs). What cannot be removed is logged and left for the next start.
    pub(crate) async fn remove_leftover_work(&self) {
        let Some(pool) = &self.inner.config.disk else {
            return;
        };
        let names = match pool.names() {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "list the disk pool");
                return;
            }
        };
        for name in names.into_iter().filter(|name| is_work_name(name)) {
            match pool.remove(&name).await {
                Ok(()) => tracing::info!(name, "removed an interrupted build's disk"),
                Err(error) => tracing::warn!(
                    name,
                    error = format!("{error:#}"),
                    "remove an interrupted build's disk"
                ),
            }
        }
    }

    /// After a failed build: the line that says it ran out of disk, if it did (a capped dir
    /// is full now, or the output's end reports `ENOSPC`). Only with a pool: a plain dir's
    /// disk is the host's.
    pub(crate) fn full_disk_line(
        &self,
        work: &std::path::Path,
        app_id: Uuid,
        log: &BuildLog,
    ) -> Option<String> {
        let config = &self.inner.config;
        let pool = config.disk.as_ref()?;
        let app = wharf_disk::usage(work).ok();
        let cache = wharf_disk::usage(&pool.path(&cache_name(app_id))).ok();
        let output = log.contents();
        let tail = &output[output.len().saturating_sub(OUTPUT_TAIL)..];
        let tail = String::from_utf8_lossy(tail);
        let said_full = FULL_DISK_WORDS.iter().any(|words| tail.contains(words));
        full_disk_line(
            app.map(|usage| (usage, config.build_disk_bytes)),
            cache.map(|usage| (usage, config.cache_disk_bytes)),
            said_full,
        )
    }
}

/// What to tell a failed build about its disks: each with its usage and configured cap.
fn full_disk_line(
    app: Option<(Usage, u64)>,
    cache: Option<(Usage, u64)>,
    said_full: bool,
) -> Option<String> {
    let full = |disk: Option<(Usage, u64)>| disk.filter(|(usage, _)| usage.is_full());
    if let Some((_, cap)) = full(app) {
        return Some(format!(
            "The build used all of its {} disk (/app): remove files the build does not need \
             from the app, or ask the operator to raise WHARF_BUILD_DISK_MB",
            describe_bytes(cap)
        ));
    }
    if let Some((_, cap)) = full(cache) {
        return Some(format!(
            "The build used all of its {} cache (/cache): purge it with \
             `wharf builds:cache:purge` and build again",
            describe_bytes(cap)
        ));
    }
    if said_full {
        let caps = [("/app", app), ("/cache", cache)]
            .iter()
            .filter_map(|(dir, disk)| disk.map(|(_, cap)| format!("{dir} {}", describe_bytes(cap))))
            .collect::<Vec<_>>();
        let caps = if caps.is_empty() {
            String::new()
        } else {
            format!(" ({})", caps.join(", "))
        };
        return Some(format!(
            "The build ran out of disk space{caps}: remove files the build does not need, \
             purge the cache with `wharf builds:cache:purge`, or ask the operator for more"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn usage(size: u64, free: u64) -> Usage {
        Usage { size, free }
    }

    #[test]
    fn a_full_disk_is_named_with_its_cap() {
        let roomy = Some((usage(4 * GIB, GIB), 4 * GIB));
        let full_app = Some((usage(4 * GIB, 4096), 4 * GIB));
        let full_cache = Some((usage(2 * GIB, 0), 2 * GIB));
        let line = full_disk_line(full_app, roomy, false).unwrap();
        assert!(
            line.starts_with("The build used all of its 4 GiB disk (/app): remove files"),
            "{line}"
        );
        assert!(line.contains("WHARF_BUILD_DISK_MB"), "{line}");
        let line = full_disk_line(roomy, full_cache, false).unwrap();
        assert!(
            line.starts_with("The build used all of its 2 GiB cache (/cache)")
                && line.contains("builds:cache:purge"),
            "{line}"
        );
        // A tool that cleaned up after ENOSPC leaves no disk full, but its words.
        let line = full_disk_line(roomy, Some((usage(2 * GIB, GIB), 2 * GIB)), true).unwrap();
        assert!(
            line.starts_with("The build ran out of disk space (/app 4 GiB, /cache 2 GiB)"),
            "{line}"
        );
        assert_eq!(full_disk_line(roomy, roomy, false), None);
        assert_eq!(full_disk_line(None, None, false), None);
    }

    #[test]
    fn work_dirs_are_known_by_name() {
        let id = Uuid::new_v4();
        assert!(is_work_name(&work_name(id)));
        assert!(!is_work_name(&cache_name(id)));
        assert!(!is_work_name("build-"));
        assert!(!is_work_name("build-x"));
        assert!(!is_work_name(&format!("dyno-{id}")));
    }
}
