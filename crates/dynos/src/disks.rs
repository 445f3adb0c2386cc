//! Dynos' capped disks, made ahead of need: making one (a loop mount of a fresh image)
//! costs about ten milliseconds, which a dyno's start and an Eco app's wake should not wait
//! for. Each cap in use keeps [`SPARES`] unused disks ready; a start takes one and a
//! background task makes the next. A spare was never used, so no tenant ever sees another's
//! data; spares that outlive the server are removed at the next start with the other
//! leftovers (their names start with the dyno prefix).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wharf_containers::DYNO_USER;
use wharf_disk::DiskPool;

use crate::runner::DYNO_PREFIX;

/// Unused disks kept ready per cap.
pub const SPARES: usize = 2;

/// The pool and its spares. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Disks {
    pool: DiskPool,
    inner: Arc<Mutex<Spares>>,
}

#[derive(Default)]
struct Spares {
    /// Ready disks by cap (bytes): their names.
    ready: HashMap<u64, Vec<String>>,
    /// Caps a refill task is working on.
    refilling: HashSet<u64>,
}

impl Disks {
    pub(crate) fn new(pool: DiskPool) -> Disks {
        Disks {
            pool,
            inner: Arc::new(Mutex::new(Spares::default())),
        }
    }

    pub(crate) fn pool(&self) -> &DiskPool {
        &self.pool
    }

    /// A disk of `cap` bytes for a dyno, given to the dyno user: its name (for
    /// [`Disks::remove`]) and its path. A spare when one is ready; the spares are made up
    /// in the background either way.
    pub(crate) async fn take(&self, cap: u64) -> anyhow::Result<(String, PathBuf)> {
        let spare = self.spares().ready.get_mut(&cap).and_then(Vec::pop);
        self.refill(cap);
        match spare {
            Some(name) => {
                let path = self.pool.path(&name);
                Ok((name, path))
            }
            None => {
                let name = disk_name();
                let path = self.pool.create(&name, cap, DYNO_USER).await?;
                Ok((name, path))
            }
        }
    }

    /// Removes a dyno's disk (unmounted lazily while its container still uses it).
    pub(crate) async fn remove(&self, name: &str) -> anyhow::Result<()> {
        self.pool.remove(name).await
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, Spares> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes spares of `cap` until there are [`SPARES`], on a task of its own (one per cap).
    fn refill(&self, cap: u64) {
        if !self.spares().refilling.insert(cap) {
            return;
        }
        let disks = self.clone();
        tokio::spawn(async move {
            loop {
                let missing = disks.spares().ready.get(&cap).map_or(0, Vec::len) < SPARES;
                if !missing {
                    break;
                }
                let name = disk_name();
                match disks.pool.create(&name, cap, DYNO_USER).await {
                    Ok(_) => disks.spares().ready.entry(cap).or_default().push(name),
                    Err(error) => {
                        tracing::warn!("make a spare dyno disk: {error:#}");
                        break;
                    }
                }
            }
            disks.spares().refilling.remove(&cap);
        });
    }
}

/// `dyno-disk-<random>`: a leftover at the next start like any `dyno-` entry.
fn disk_name() -> String {
    format!("{DYNO_PREFIX}disk-{}", uuid::Uuid::new_v4().simple())
}
