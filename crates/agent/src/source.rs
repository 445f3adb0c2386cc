//! The agent's desired source: what the control plane placed on this host, read over its API,
//! and nothing at all while the agent is fenced.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures_util::future::BoxFuture;
use uuid::Uuid;
use wharf_api_types::{AgentApp, AgentDesired};
use wharf_dynos::{
    Desired, DesiredApp, DesiredProcess, DesiredRead, DesiredRelease, DesiredSource,
};
use wharf_model::{ConfigVars, DynoSize};

use crate::client::ControlPlane;
use crate::one_offs::Orders;

/// Reads this host's desired state from the control plane.
pub struct RemoteSource {
    control_plane: ControlPlane,
    /// Set while the agent's lease is gone (see `lease.rs`): every read then asks for nothing,
    /// so the manager stops every dyno.
    fenced: Arc<std::sync::atomic::AtomicBool>,
    /// Each slug's checksum, as the last read said.
    checksums: Mutex<HashMap<Uuid, String>>,
    /// The one-off dynos placed on this host and the actions on its dynos, as the last read
    /// said.
    orders: Arc<tokio::sync::watch::Sender<Orders>>,
}

impl RemoteSource {
    pub fn new(
        control_plane: ControlPlane,
        fenced: Arc<std::sync::atomic::AtomicBool>,
        orders: Arc<tokio::sync::watch::Sender<Orders>>,
    ) -> Self {
        RemoteSource {
            control_plane,
            fenced,
            checksums: Mutex::new(HashMap::new()),
            orders,
        }
    }

    fn fenced(&self) -> bool {
        self.fenced.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn read_desired(
        &self,
        apps: Option<&HashSet<Uuid>>,
        known: &HashSet<Uuid>,
    ) -> anyhow::Result<DesiredRead> {
        // Every app in question is in scope: the control plane's answer (or the fence) is the
        // whole truth about this host, so an app it does not list runs nothing here.
        let mut scope: HashSet<Uuid> = known.clone();
        scope.extend(apps.into_iter().flatten());
        if self.fenced() {
            return Ok(DesiredRead {
                desired: Desired::default(),
                scope,
            });
        }
        let answer = self.control_plane.desired().await?;
        // The fence may have come up while the answer was on its way.
        if self.fenced() {
            return Ok(DesiredRead {
                desired: Desired::default(),
                scope,
            });
        }
        let desired = desired(&answer)?;
        let orders = Orders {
            one_offs: answer.one_offs.clone(),
            actions: answer.actions.clone(),
        };
        self.orders.send_if_modified(|current| {
            let changed = *current != orders;
            if changed {
                *current = orders;
            }
            changed
        });
        {
            let mut checksums = self.checksums.lock().expect("checksums poisoned");
            for app in &answer.apps {
                if let Some(slug) = &app.release.slug {
                    if let Ok(id) = Uuid::parse_str(&slug.id) {
                        checksums.insert(id, slug.checksum.clone());
                    }
                }
            }
        }
        let mut read = DesiredRead {
            desired,
            scope: HashSet::new(),
        };
        if let Some(apps) = apps {
            read.desired.apps.retain(|id, _| apps.contains(id));
        } else {
            scope.extend(read.desired.apps.keys());
        }
        read.scope = scope;
        Ok(read)
    }
}

/// The answer as the plan reads it.
pub fn desired(answer: &AgentDesired) -> anyhow::Result<Desired> {
    let mut desired = Desired::default();
    for app in &answer.apps {
        let id = Uuid::parse_str(&app.id).with_context(|| format!("app id {:?}", app.id))?;
        desired.apps.insert(id, desired_app(app)?);
    }
    Ok(desired)
}

fn desired_app(app: &AgentApp) -> anyhow::Result<DesiredApp> {
    let slug_id = app
        .release
        .slug
        .as_ref()
        .map(|slug| Uuid::parse_str(&slug.id).with_context(|| format!("slug id {:?}", slug.id)))
        .transpose()?;
    let config: ConfigVars = serde_json::from_value(serde_json::to_value(&app.release.config)?)
        .context("read the config vars")?;
    let mut formation = BTreeMap::new();
    for (process_type, process) in &app.formation {
        let size = DynoSize::parse(&process.size)
            .map_err(|e| anyhow::anyhow!("{} of {}: {e}", process_type, app.name))?;
        formation.insert(
            process_type.clone(),
            DesiredProcess {
                numbers: process.numbers.iter().copied().collect(),
                size,
            },
        );
    }
    Ok(DesiredApp {
        name: app.name.clone(),
        release: DesiredRelease {
            version: app.release.version,
            slug_id,
            config,
            commands: app.release.commands.clone(),
            stack: app
                .release
                .slug
                .as_ref()
                .map(|slug| slug.stack.clone())
                .unwrap_or_default(),
        },
        formation,
        asleep: app.asleep,
    })
}

impl DesiredSource for RemoteSource {
    fn read<'a>(
        &'a self,
        apps: Option<&'a HashSet<Uuid>>,
        known: &'a HashSet<Uuid>,
    ) -> BoxFuture<'a, anyhow::Result<DesiredRead>> {
        Box::pin(self.read_desired(apps, known))
    }

    fn app_names(&self) -> BoxFuture<'_, anyhow::Result<HashMap<Uuid, String>>> {
        Box::pin(async move {
            let answer = self.control_plane.desired().await?;
            answer
                .apps
                .iter()
                .map(|app| Ok((Uuid::parse_str(&app.id)?, app.name.clone())))
                .collect()
        })
    }

    fn fetch_slug<'a>(
        &'a self,
        _app: Uuid,
        slug: Uuid,
        path: &'a Path,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Server path: the agent's own slug file, named by the slug's id.
            if tokio::fs::symlink_metadata(path)
                .await
                .is_ok_and(|m| m.is_file())
            {
                return Ok(());
            }
            let checksum = self
                .checksums
                .lock()
                .expect("checksums poisoned")
                .get(&slug)
                .cloned()
                .with_context(|| format!("no checksum is known for slug {slug}"))?;
            self.control_plane.fetch_slug(slug, &checksum, path).await
        })
    }

    fn slugs_are_copies(&self) -> bool {
        true
    }
}
