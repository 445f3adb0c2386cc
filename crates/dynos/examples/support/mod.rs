//! What the dyno benches share: an app with a released slug in a store of their own, and the
//! dyno manager's settings as in production.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use uuid::Uuid;
use wharf_build::builder::BuilderConfig;
use wharf_dynos::DynoManagerConfig;
use wharf_model::{AppName, Email, ReleaseStatus};
use wharf_store::{NewSlug, Store};

/// A store in `dir` with the app `bench`, released with a slug of `source`'s files whose
/// process types are `process_types`.
pub async fn released_app(
    dir: &Path,
    source: &Path,
    process_types: &[(&str, &str)],
) -> anyhow::Result<(Store, Uuid)> {
    let store = Store::open(&format!("sqlite://{}/wharf.db", dir.display())).await?;
    let owner = store
        .create_account(&Email::parse("bench@example.com")?, true, "bench", "bench")
        .await?;
    let app = store.create_app(&AppName::parse("bench")?, &owner).await?;
    let slug = store
        .create_slug(
            app.id,
            NewSlug {
                process_types: process_types
                    .iter()
                    .map(|(name, command)| ((*name).to_owned(), (*command).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
                stack: "wharf-1".to_owned(),
                ..NewSlug::default()
            },
        )
        .await?;
    let out = BuilderConfig::new(dir).slug_path(slug.id);
    std::fs::create_dir_all(out.parent().context("slugs dir")?)?;
    wharf_build::archive::pack_slug(
        source,
        &wharf_slugignore::SlugIgnore::default(),
        &out,
        1 << 30,
    )?;
    store
        .release_slug(app.id, slug.id, "Deploy", ReleaseStatus::Succeeded, &owner)
        .await?;
    Ok((store, app.id))
}

/// The manager's settings as in production: every dyno on a capped disk (a pool of
/// `pool_bytes` in `dir`) and in a network namespace of its own; no cycling, a 5 s stop.
pub async fn production_config(
    dir: &Path,
    pool_bytes: u64,
) -> anyhow::Result<(DynoManagerConfig, wharf_disk::DiskPool)> {
    let mut config = DynoManagerConfig::new(dir);
    config.cycle_after = None;
    config.stop_timeout = Duration::from_secs(5);
    let disk = wharf_disk::DiskPool::open(&dir.join("disk"), pool_bytes)
        .await
        .context("open the disk pool")?;
    config.disk = Some(disk.clone());
    config.network = Some(
        wharf_network::DynoNetwork::start(wharf_network::test_settings())
            .await
            .context("start the dyno network")?,
    );
    Ok((config, disk))
}

/// The children of process `pid` (of all its threads). procfs only: its `task` entries are
/// the kernel's directories, never a tenant's links.
pub fn children(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = entry?.path();
        if let Ok(text) = std::fs::read_to_string(task.join("children")) {
            found.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    Ok(found)
}

/// Process `pid`'s command name (procfs, as above).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}
