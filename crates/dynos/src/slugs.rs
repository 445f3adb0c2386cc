//! Extracted slugs: each slug is unpacked once into `<data-dir>/slugs/extracted/<slug-id>/`,
//! owned by the dyno user, and shared read-only (as the overlay's lower dir) by every dyno of
//! every release that runs it.
//!
//! Unpacking goes to a temporary directory that is renamed into place, so a reader never sees
//! a half-extracted slug and concurrent starts (in this process or another) are safe.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use uuid::Uuid;
use wharf_build::archive::{unpack, LinkPolicy};
use wharf_build::builder::BuilderConfig;
use wharf_containers::DYNO_USER;
use wharf_tenant_fs::{remove_tree, TreeDir};

use crate::source::DesiredSource;

/// The most bytes a slug may unpack to.
pub const SLUG_UNPACK_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

/// Prefix of directories being extracted.
const TEMPORARY_PREFIX: &str = ".tmp-";

pub(crate) struct SlugCache {
    /// Where packed slugs are (the builder's layout).
    builder: BuilderConfig,
    extracted: PathBuf,
    /// One extraction per slug at a time in this process.
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl SlugCache {
    pub fn new(data_dir: &Path) -> SlugCache {
        SlugCache {
            builder: BuilderConfig::new(data_dir),
            extracted: data_dir.join("slugs").join("extracted"),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn dir(&self, slug_id: Uuid) -> PathBuf {
        self.extracted.join(slug_id.to_string())
    }

    /// The extracted slug's directory, unpacking it first if needed (after `source` made sure
    /// its archive is here).
    pub async fn extract(
        &self,
        source: &dyn DesiredSource,
        app_id: Uuid,
        slug_id: Uuid,
    ) -> anyhow::Result<PathBuf> {
        let dir = self.dir(slug_id);
        // Server path: the extracted slug's own directory, made by the server.
        if dir.is_dir() {
            return Ok(dir);
        }
        let lock = {
            let mut locks = self.locks.lock().expect("slug locks poisoned");
            locks.entry(slug_id).or_default().clone()
        };
        let _guard = lock.lock().await;
        // Server path: as above.
        if dir.is_dir() {
            return Ok(dir);
        }
        let archive = self.builder.slug_path(slug_id);
        source
            .fetch_slug(app_id, slug_id, &archive)
            .await
            .with_context(|| format!("fetch slug {slug_id}"))?;
        let (extracted, target) = (self.extracted.clone(), dir.clone());
        tokio::task::spawn_blocking(move || extract_into(&archive, &extracted, &target))
            .await
            .context("extract slug: task failed")?
            .with_context(|| format!("extract slug {slug_id}"))?;
        Ok(dir)
    }

    /// Removes extracted slugs not in `keep` (none with `None`), and (with `temporary`)
    /// leftovers of interrupted extractions, which only start-up may remove: an extraction
    /// could be running otherwise. With `copies` (the packed slugs here are copies fetched
    /// from a control plane, not the builder's own), packed slugs not in `keep` go too, and
    /// with `temporary` their interrupted downloads. Blocks on the filesystem.
    pub fn collect_garbage(&self, keep: Option<&HashSet<Uuid>>, temporary: bool, copies: bool) {
        let busy = self.busy();
        if copies {
            self.collect_copies(keep, temporary, &busy);
        }
        // Server path: `<data-dir>/slugs/extracted`; each slug in it goes through
        // `remove_tree`.
        let Ok(entries) = std::fs::read_dir(&self.extracted) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let remove = match Uuid::parse_str(&name) {
                Ok(id) => keep.is_some_and(|keep| !keep.contains(&id)) && !busy.contains(&id),
                Err(_) => temporary && name.starts_with(TEMPORARY_PREFIX),
            };
            if remove {
                match remove_tree(&entry.path()) {
                    Ok(()) => tracing::info!(slug = name, "removed extracted slug"),
                    Err(error) => tracing::warn!(slug = name, "remove extracted slug: {error}"),
                }
            }
        }
    }
}

impl SlugCache {
    /// Slugs being fetched or extracted now.
    fn busy(&self) -> HashSet<Uuid> {
        let locks = self.locks.lock().expect("slug locks poisoned");
        locks
            .iter()
            .filter(|(_, lock)| lock.try_lock().is_err())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Removes the packed copies (`<slug-id>.tar.zst`) not in `keep` and not `busy`, and with
    /// `temporary` the partial downloads (`<slug-id>.tar.partial`).
    fn collect_copies(&self, keep: Option<&HashSet<Uuid>>, temporary: bool, busy: &HashSet<Uuid>) {
        let Some(packed) = self.extracted.parent() else {
            return;
        };
        // Server path: `<data-dir>/slugs`, where only this process writes (slugs fetched from
        // the control plane); `remove_file` removes a link itself, never what it points at.
        let Ok(entries) = std::fs::read_dir(packed) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let remove = if let Some(id) = name.strip_suffix(".tar.zst") {
                Uuid::parse_str(id).is_ok_and(|id| {
                    keep.is_some_and(|keep| !keep.contains(&id)) && !busy.contains(&id)
                })
            } else {
                temporary && name.ends_with(".tar.partial")
            };
            if remove {
                // Server path: as above.
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => tracing::info!(slug = name, "removed a slug no dyno here runs"),
                    Err(error) => tracing::warn!(slug = name, "remove a slug: {error}"),
                }
            }
        }
    }
}

fn extract_into(archive: &Path, extracted: &Path, target: &Path) -> anyhow::Result<()> {
    // Server path: the directories above the slug are the server's own.
    std::fs::create_dir_all(extracted)
        .with_context(|| format!("create {}", extracted.display()))?;
    let temporary = extracted.join(format!("{TEMPORARY_PREFIX}{}", Uuid::new_v4().simple()));
    let result = (|| -> anyhow::Result<()> {
        unpack(
            archive,
            &temporary,
            LinkPolicy::AnyTarget,
            SLUG_UNPACK_LIMIT,
        )
        .with_context(|| format!("unpack {}", archive.display()))?;
        let tree = TreeDir::open(&temporary)?;
        tree.chown_all(DYNO_USER.0, DYNO_USER.1)
            .context("give the extracted slug to the dyno user")?;
        tree.set_mode(0o755).context("chmod the extracted slug")?;
        // Server path: both names are the server's, in `<data-dir>/slugs/extracted`.
        match std::fs::rename(&temporary, target) {
            Ok(()) => Ok(()),
            // Another process finished first: theirs is as good as ours.
            // Server path: the slug's own directory, made by the server.
            Err(_) if target.is_dir() => {
                remove_tree(&temporary).context("remove a duplicate extraction")
            }
            Err(error) => Err(error).with_context(|| format!("rename to {}", target.display())),
        }
    })();
    if result.is_err() {
        let _ = remove_tree(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_copies_no_dyno_needs_go_and_the_builders_own_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SlugCache::new(dir.path());
        let (kept, unused) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let slugs = dir.path().join("slugs");
        std::fs::create_dir_all(slugs.join("extracted")).unwrap();
        let packed = |id: Uuid| slugs.join(format!("{id}.tar.zst"));
        for id in [kept, unused] {
            std::fs::write(packed(id), b"slug").unwrap();
        }
        std::fs::write(slugs.join(format!("{unused}.tar.partial")), b"half").unwrap();
        std::fs::write(slugs.join("notes.txt"), b"not a slug").unwrap();
        // A link named as a slug goes itself; what it points at, outside, stays.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"kept").unwrap();
        let linked = Uuid::from_u128(3);
        std::os::unix::fs::symlink(outside.path().join("precious"), packed(linked)).unwrap();
        let keep: HashSet<Uuid> = [kept].into();

        // The builder's own slugs (a server's) are never removed.
        cache.collect_garbage(Some(&keep), true, false);
        assert!(packed(unused).exists());

        // Copies: what no dyno here needs goes; a partial download only at start-up.
        cache.collect_garbage(Some(&keep), false, true);
        assert!(packed(kept).exists());
        assert!(!packed(unused).exists());
        assert!(std::fs::symlink_metadata(packed(linked)).is_err());
        assert_eq!(
            std::fs::read(outside.path().join("precious")).unwrap(),
            b"kept"
        );
        assert!(slugs.join(format!("{unused}.tar.partial")).exists());
        // With nothing known to keep (start-up), no whole copy goes, but partial ones do.
        cache.collect_garbage(None, true, true);
        assert!(packed(kept).exists());
        assert!(!slugs.join(format!("{unused}.tar.partial")).exists());
        assert!(slugs.join("notes.txt").exists());
    }
}
