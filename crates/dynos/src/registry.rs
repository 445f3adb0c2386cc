//! The registry: every present dyno with what it runs and its state. It is the manager's
//! observed state; the plan reads it, the executor and the supervisors change it (under one
//! lock, never held across an await).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_model::DynoSize;

use crate::plan::{Observed, ObservedDyno};
use crate::routes::{route_table, RouteSource, RouteTable};
use crate::state::{DynoName, DynoState};

/// What the manager asked of a running dyno whose process is going away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Remove the dyno once its container is gone.
    Stop,
    /// Run the process again once its container is gone.
    Restart,
    /// Keep the dyno, idle and without a process, once its container is gone.
    Idle,
}

/// The handles of one run of a dyno's process.
#[derive(Debug, Clone)]
pub(crate) struct RunHandle {
    /// Cancelled to make the supervisor stop the container (see [`DynoEntry::intent`]).
    pub stop: CancellationToken,
    /// Cancelled once this run's container is gone.
    pub done: CancellationToken,
}

impl RunHandle {
    pub fn new() -> RunHandle {
        RunHandle {
            stop: CancellationToken::new(),
            done: CancellationToken::new(),
        }
    }
}

/// One present dyno.
#[derive(Debug)]
pub(crate) struct DynoEntry {
    pub id: Uuid,
    pub app_id: Uuid,
    pub app_name: String,
    pub name: DynoName,
    pub release: i64,
    pub slug_id: Uuid,
    /// The stack its slug was built on (see [`crate::DesiredRelease::stack`]).
    pub stack: String,
    pub command: String,
    /// The release's config vars.
    pub config: Vec<(String, String)>,
    pub size: DynoSize,
    pub state: DynoState,
    pub updated_at: OffsetDateTime,
    pub started_at: OffsetDateTime,
    pub crashes: u32,
    pub next_restart: Option<OffsetDateTime>,
    pub cycle_at: Option<OffsetDateTime>,
    /// Where a web dyno's current process listens (its address and `$PORT`).
    pub address: Option<SocketAddr>,
    pub container_id: Option<String>,
    pub intent: Option<Intent>,
    /// The current run; `None` while crashed, or idle once its process is gone.
    pub run: Option<RunHandle>,
    /// A one-off dyno (`run.N`): outside the formation, never planned for, never restarted.
    pub one_off: bool,
}

impl DynoEntry {
    /// How long its current (or last) process has been running.
    pub fn ran_for(&self, now: OffsetDateTime) -> Duration {
        Duration::try_from(now - self.started_at).unwrap_or(Duration::ZERO)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub dynos: HashMap<Uuid, DynoEntry>,
}

impl Registry {
    /// The observed state of the apps in `scope` (all apps with `None`).
    pub fn observed(&self, scope: Option<&HashSet<Uuid>>, now: OffsetDateTime) -> Observed {
        let dynos = self
            .dynos
            .values()
            .filter(|d| !d.one_off && scope.is_none_or(|apps| apps.contains(&d.app_id)))
            .map(|d| ObservedDyno {
                app: d.app_id,
                name: d.name.clone(),
                release: d.release,
                size: d.size,
                state: d.state,
                started_at: d.started_at,
                crashes: d.crashes,
                next_restart: d.next_restart,
                cycle_at: d.cycle_at,
            })
            .collect();
        Observed { now, dynos }
    }

    /// The present dyno `name` of `release` of an app.
    pub fn find(&mut self, app_id: Uuid, name: &DynoName, release: i64) -> Option<&mut DynoEntry> {
        self.dynos
            .values_mut()
            .find(|d| !d.one_off && d.app_id == app_id && d.name == *name && d.release == release)
    }

    pub fn routes(&self) -> RouteTable {
        route_table(self.dynos.values().map(|d| RouteSource {
            app_name: &d.app_name,
            name: &d.name,
            state: d.state,
            address: d.address,
            release: d.release,
        }))
    }

    /// Ids of the containers the registry knows.
    pub fn container_ids(&self) -> HashSet<String> {
        self.dynos
            .values()
            .filter_map(|d| d.container_id.clone())
            .collect()
    }

    /// Apps that have dynos.
    pub fn apps(&self) -> HashSet<Uuid> {
        self.dynos.values().map(|d| d.app_id).collect()
    }

    /// Slugs that present dynos run.
    pub fn slugs(&self) -> HashSet<Uuid> {
        self.dynos.values().map(|d| d.slug_id).collect()
    }
}
