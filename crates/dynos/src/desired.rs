//! Reading the desired state from the store: per app, its current release (with the commands
//! of its slug) and its formation.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context;
use uuid::Uuid;
use wharf_model::ProcessTypes;
use wharf_store::{Store, StoreError};

use crate::plan::{Desired, DesiredApp, DesiredProcess, DesiredRelease};

/// What a read of the store found for the apps in scope.
pub(crate) struct DesiredRead {
    pub desired: Desired,
    /// Apps the plan may act on: those read, and those that are gone from the store. An app
    /// whose read failed is left out, so its dynos keep running while the store is away.
    pub scope: HashSet<Uuid>,
}

/// Reads the desired state of `apps` (every app in the store with `None`); `known` are the apps
/// that have dynos now, so that deleted apps come into scope and get stopped.
pub(crate) async fn read(
    store: &Store,
    apps: Option<&HashSet<Uuid>>,
    known: &HashSet<Uuid>,
) -> anyhow::Result<DesiredRead> {
    let all = store.all_apps().await.context("list apps")?;
    let mut read = DesiredRead {
        desired: Desired::default(),
        scope: HashSet::new(),
    };
    let in_store: HashSet<Uuid> = all.iter().map(|app| app.id).collect();
    for app in all {
        if apps.is_some_and(|apps| !apps.contains(&app.id)) {
            continue;
        }
        match read_app(store, app.id, app.name.as_str()).await {
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

/// One app's desired state; `None` when it is gone (deleted since it was listed).
async fn read_app(store: &Store, app_id: Uuid, name: &str) -> anyhow::Result<Option<DesiredApp>> {
    let release = match store.current_release(app_id).await {
        Ok(release) => release,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error).context("read the current release"),
    };
    let commands: ProcessTypes = match release.slug_id {
        Some(slug_id) => match store.slug(app_id, slug_id).await {
            Ok(Some(slug)) => slug.process_types,
            Ok(None) => ProcessTypes::new(),
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error).context("read the slug"),
        },
        None => ProcessTypes::new(),
    };
    let formation = match store.formation(app_id).await {
        Ok(formation) => formation,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error).context("read the formation"),
    };
    let formation: BTreeMap<String, DesiredProcess> = formation
        .into_iter()
        .map(|entry| {
            (
                entry.process_type.as_str().to_owned(),
                DesiredProcess {
                    quantity: entry.quantity,
                    size: entry.size,
                },
            )
        })
        .collect();
    Ok(Some(DesiredApp {
        name: name.to_owned(),
        release: DesiredRelease {
            version: release.version,
            slug_id: release.slug_id,
            config: release.config,
            commands,
        },
        formation,
        // The manager decides from the app's traffic.
        asleep: false,
    }))
}
