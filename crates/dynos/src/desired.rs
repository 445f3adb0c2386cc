//! The store-backed [`DesiredSource`]: per app, its current release (with the commands and
//! stack of its slug) and its formation, read from the store; with a host, only the dyno
//! numbers the scheduler placed on it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use futures_util::future::BoxFuture;
use uuid::Uuid;
use wharf_model::{ProcessTypes, Slot};
use wharf_store::{Placed, Store, StoreError};

use crate::plan::{DesiredApp, DesiredProcess, DesiredRelease};
use crate::source::{DesiredRead, DesiredSource};

/// Reads the desired state from the store.
///
/// With `host: None` this manager runs every formation whole (`1..=quantity` of each type),
/// as a single server does, as long as no host joined; once one has, it runs nothing (the
/// scheduler places every dyno on the hosts). With `host: Some(id)` each type's numbers are its slots that
/// [`Store::placements`] puts on host `id`, and within its quantity (a scale-down stops the
/// dynos above it before the scheduler's next pass removes their slots; a scale-up starts
/// new ones once they are placed).
#[derive(Clone)]
pub struct StoreSource {
    pub store: Store,
    pub host: Option<Uuid>,
}

impl DesiredSource for StoreSource {
    fn read<'a>(
        &'a self,
        apps: Option<&'a HashSet<Uuid>>,
        known: &'a HashSet<Uuid>,
    ) -> BoxFuture<'a, anyhow::Result<DesiredRead>> {
        Box::pin(self.read_desired(apps, known))
    }

    fn app_names(&self) -> BoxFuture<'_, anyhow::Result<HashMap<Uuid, String>>> {
        Box::pin(async {
            Ok(self
                .store
                .all_apps()
                .await
                .context("list the apps")?
                .into_iter()
                .map(|app| (app.id, app.name.as_str().to_owned()))
                .collect())
        })
    }

    fn fetch_slug<'a>(
        &'a self,
        _app: Uuid,
        _slug: Uuid,
        path: &'a Path,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Server path: the builder's packed slug, written by the server alone.
            match tokio::fs::metadata(path).await {
                Ok(metadata) if metadata.is_file() => Ok(()),
                Ok(_) => anyhow::bail!("{} is not a file", path.display()),
                Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
            }
        })
    }
}

impl StoreSource {
    async fn read_desired(
        &self,
        apps: Option<&HashSet<Uuid>>,
        known: &HashSet<Uuid>,
    ) -> anyhow::Result<DesiredRead> {
        let all = self.store.all_apps().await.context("list apps")?;
        let placed = match self.host {
            Some(host) => {
                let placements = self
                    .store
                    .placements()
                    .await
                    .context("read the placements")?;
                Some(placed_on(&placements, host))
            }
            // A server that no host joined runs every formation itself; once hosts joined,
            // every dyno runs on a host and the server's own manager runs none.
            None if !self
                .store
                .hosts()
                .await
                .context("read the hosts")?
                .is_empty() =>
            {
                Some(HashMap::new())
            }
            None => None,
        };
        let nothing_here = BTreeMap::new();
        let mut read = DesiredRead::default();
        let in_store: HashSet<Uuid> = all.iter().map(|app| app.id).collect();
        for app in all {
            if apps.is_some_and(|apps| !apps.contains(&app.id)) {
                continue;
            }
            let here = placed
                .as_ref()
                .map(|placed| placed.get(&app.id).unwrap_or(&nothing_here));
            match read_app(&self.store, app.id, app.name.as_str(), here).await {
                Ok(Some(wanted)) => {
                    read.desired.apps.insert(app.id, wanted);
                    read.scope.insert(app.id);
                }
                Ok(None) => {
                    read.scope.insert(app.id);
                }
                Err(error) => {
                    tracing::warn!(app = %app.name, "read the desired state: {error:#}");
                }
            }
        }
        let candidates: Box<dyn Iterator<Item = &Uuid>> = match apps {
            Some(apps) => Box::new(apps.iter()),
            None => Box::new(known.iter()),
        };
        for app in candidates {
            if !in_store.contains(app) {
                read.scope.insert(*app);
            }
        }
        Ok(read)
    }
}

/// Per app, per process type, the numbers of its slots placed on this host.
type Here = BTreeMap<String, BTreeSet<u32>>;

/// The slots placed on `host`, by app.
fn placed_on(placements: &BTreeMap<Slot, Placed>, host: Uuid) -> HashMap<Uuid, Here> {
    let mut here: HashMap<Uuid, Here> = HashMap::new();
    for (slot, placed) in placements {
        if placed.host == host {
            here.entry(slot.app)
                .or_default()
                .entry(slot.process_type.clone())
                .or_default()
                .insert(slot.number);
        }
    }
    here
}

/// The numbers of a process type's dynos that run here, of its `quantity`: all of them
/// without a host (`here` is `None`), else those placed here.
fn numbers(here: Option<&Here>, process_type: &str, quantity: u32) -> BTreeSet<u32> {
    match here {
        None => (1..=quantity).collect(),
        Some(here) => here
            .get(process_type)
            .map(|numbers| numbers.range(1..=quantity).copied().collect())
            .unwrap_or_default(),
    }
}

/// One app's desired state; `None` when it is gone (deleted since it was listed).
async fn read_app(
    store: &Store,
    app_id: Uuid,
    name: &str,
    here: Option<&Here>,
) -> anyhow::Result<Option<DesiredApp>> {
    let release = match store.current_release(app_id).await {
        Ok(release) => release,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error).context("read the current release"),
    };
    let (commands, stack): (ProcessTypes, String) = match release.slug_id {
        Some(slug_id) => match store.slug(app_id, slug_id).await {
            Ok(Some(slug)) => (slug.process_types, slug.stack),
            Ok(None) => (ProcessTypes::new(), String::new()),
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error).context("read the slug"),
        },
        None => (ProcessTypes::new(), String::new()),
    };
    let formation = match store.formation(app_id).await {
        Ok(formation) => formation,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error).context("read the formation"),
    };
    let formation: BTreeMap<String, DesiredProcess> = formation
        .into_iter()
        .map(|entry| {
            let process_type = entry.process_type.as_str().to_owned();
            let numbers = numbers(here, &process_type, entry.quantity);
            let process = DesiredProcess {
                numbers,
                size: entry.size,
            };
            (process_type, process)
        })
        .collect();
    Ok(Some(DesiredApp {
        name: name.to_owned(),
        release: DesiredRelease {
            version: release.version,
            slug_id: release.slug_id,
            config: release.config,
            commands,
            stack,
        },
        formation,
        // The manager decides from the app's traffic.
        asleep: false,
    }))
}

#[cfg(test)]
mod tests;
