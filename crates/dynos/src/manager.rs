//! The dyno manager: the reconcile loop (desired state from its [`DesiredSource`], observed
//! state from the registry, [`plan`], then the executor), the public handle the API calls, and
//! the registry changes the supervisors report.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;
use wharf_containers::{Runtime, Stacks};
use wharf_model::DynoSize;
use wharf_store::Store;

use crate::activity::Activity;
use crate::desired::StoreSource;
use crate::logs::{now_micros, LogBuffer};
use crate::messages;
use crate::plan::{next_wake, plan};
use crate::ports::PortAllocator;
use crate::registry::{DynoEntry, Registry};
use crate::routes::RouteTable;
use crate::runner::DYNO_PREFIX;
use crate::slugs::SlugCache;
use crate::source::DesiredSource;
use crate::state::{DynoState, Target};
use crate::traffic::{Traffic, TrafficProbe};

/// How long shutdown waits beyond the stop timeout for dynos to go.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Where and how dynos run.
#[derive(Debug, Clone)]
pub struct DynoManagerConfig {
    /// The server's data dir: slugs are read from `slugs/`, extracted to `slugs/extracted/`;
    /// per-dyno directories go to `dynos/`, the `wharf` binary to `wharf/bin/`.
    pub data_dir: PathBuf,
    /// How long a web dyno may take to accept connections on `$PORT` (R10 after).
    pub boot_timeout: Duration,
    /// How long a dyno's processes have between SIGTERM and SIGKILL (R12 after).
    pub stop_timeout: Duration,
    /// How often every app is reconciled even without a notification.
    pub reconcile_interval: Duration,
    /// Where web dynos' `$PORT`s come from.
    pub port_range: Range<u16>,
    /// Each dyno is cycled (restarted) after this long plus up to `cycle_jitter`; `None`
    /// switches cycling off.
    pub cycle_after: Option<Duration>,
    pub cycle_jitter: Duration,
    /// Lines of log kept in memory per app.
    pub log_lines_per_app: usize,
    /// How often a running dyno's memory is sampled (R14).
    pub stats_interval: Duration,
    /// The binary bound at `/wharf/bin/wharf` in every dyno; the running executable when
    /// `None`.
    pub wharf_binary: Option<PathBuf>,
    /// An app whose web dynos sleep (Eco) goes idle after this long without a request;
    /// `None` keeps every app awake.
    pub sleep_after: Option<Duration>,
    /// The network dynos' namespaces join; `None` gives each dyno a namespace with
    /// loopback alone (no way out, and no web dyno the router can reach).
    pub network: Option<wharf_network::DynoNetwork>,
    /// Where dynos' writable layers (`/app`'s upper dir) live, each capped at its size's
    /// disk (`DynoSize::disk_mb`); `None` puts them uncapped in the data dir.
    pub disk: Option<wharf_disk::DiskPool>,
    /// At shutdown, leave the formation's dynos running for the next server to take up
    /// (with a runtime whose containers have holders); otherwise every dyno is stopped.
    pub leave_running: bool,
}

impl DynoManagerConfig {
    pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(10);
    pub const DEFAULT_PORT_RANGE: Range<u16> = 20000..30000;
    pub const DEFAULT_CYCLE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
    pub const DEFAULT_CYCLE_JITTER: Duration = Duration::from_secs(30 * 60);
    pub const DEFAULT_LOG_LINES_PER_APP: usize = 1500;
    pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(5);
    pub const DEFAULT_SLEEP_AFTER: Duration = Duration::from_secs(30 * 60);

    pub fn new(data_dir: &Path) -> Self {
        DynoManagerConfig {
            data_dir: data_dir.to_path_buf(),
            boot_timeout: Self::DEFAULT_BOOT_TIMEOUT,
            stop_timeout: Self::DEFAULT_STOP_TIMEOUT,
            reconcile_interval: Self::DEFAULT_RECONCILE_INTERVAL,
            port_range: Self::DEFAULT_PORT_RANGE,
            cycle_after: Some(Self::DEFAULT_CYCLE_AFTER),
            cycle_jitter: Self::DEFAULT_CYCLE_JITTER,
            log_lines_per_app: Self::DEFAULT_LOG_LINES_PER_APP,
            stats_interval: Self::DEFAULT_STATS_INTERVAL,
            wharf_binary: None,
            sleep_after: Some(Self::DEFAULT_SLEEP_AFTER),
            network: None,
            disk: None,
            leave_running: false,
        }
    }
}

/// A dyno as `heroku ps` and the API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynoInfo {
    /// Stable for the dyno's life (across restarts in place).
    pub id: Uuid,
    /// `web.1`.
    pub name: String,
    pub process_type: String,
    pub state: DynoState,
    pub command: String,
    pub size: DynoSize,
    pub release_version: i64,
    /// Where a web dyno's current process listens: its address and `$PORT`.
    pub address: Option<SocketAddr>,
    /// When the state last changed.
    pub updated_at: OffsetDateTime,
    /// The current process's container, if it has one.
    pub container_id: Option<String>,
}

impl DynoInfo {
    pub(crate) fn of(d: &DynoEntry) -> DynoInfo {
        DynoInfo {
            id: d.id,
            name: d.name.to_string(),
            process_type: d.name.process_type().to_owned(),
            state: d.state,
            command: d.command.clone(),
            size: d.size,
            release_version: d.release,
            address: d.address,
            updated_at: d.updated_at,
            container_id: d.container_id.clone(),
        }
    }
}

/// The dyno manager. Cheap to clone: all clones drive the same dynos.
#[derive(Clone)]
pub struct DynoManager {
    pub(crate) shared: Arc<Shared>,
}

/// Which apps the next pass reconciles.
#[derive(Default)]
struct Pending {
    apps: HashSet<Uuid>,
    /// A full pass was asked for ([`DynoManager::reconcile_all`]).
    all: bool,
}

pub(crate) struct Shared {
    /// What should run here.
    pub source: Arc<dyn DesiredSource>,
    pub config: DynoManagerConfig,
    pub runtime: Runtime,
    /// Every stack; a dyno runs on its slug's.
    pub stacks: Stacks,
    pub logs: LogBuffer,
    pub slugs: SlugCache,
    pub registry: Mutex<Registry>,
    pub ports: Mutex<PortAllocator>,
    /// Dynos' capped disks (with spares made ahead), when there is a disk pool.
    pub disks: Option<crate::disks::Disks>,
    pub routes: watch::Sender<RouteTable>,
    /// Counts [`DynoManager::notify`] calls: what the store holds for some app changed.
    desired_changes: watch::Sender<u64>,
    pending: Mutex<Pending>,
    pub wake: Notify,
    pub activity: Activity,
    pub traffic: Traffic,
    pub tasks: TaskTracker,
    /// Set when shutdown begins: nothing starts after it.
    pub closing: CancellationToken,
    /// Set when the server ends leaving dynos running: supervisors let go of them.
    pub detaching: CancellationToken,
    /// Leave the formation running at shutdown whatever `leave_running` says (an upgrade).
    leave_now: std::sync::atomic::AtomicBool,
    /// True once the dynos the last server left are taken up (or removed).
    started: watch::Sender<bool>,
    /// Dynos taken up from the last server, until their supervisors' first runs.
    pub adopted: Mutex<std::collections::HashMap<Uuid, crate::adopt::Adopted>>,
    pub wharf_dir: tokio::sync::OnceCell<PathBuf>,
}

impl DynoManager {
    /// A manager that runs every app's whole formation, read from `store` (a single host).
    pub fn new(
        store: Store,
        config: DynoManagerConfig,
        runtime: Runtime,
        stacks: Stacks,
    ) -> DynoManager {
        let source = StoreSource { store, host: None };
        DynoManager::with_source(Arc::new(source), config, runtime, stacks)
    }

    /// A manager that runs what `source` says this host runs.
    pub fn with_source(
        source: Arc<dyn DesiredSource>,
        config: DynoManagerConfig,
        runtime: Runtime,
        stacks: Stacks,
    ) -> DynoManager {
        let (routes, _) = watch::channel(RouteTable::new());
        DynoManager {
            shared: Arc::new(Shared {
                source,
                logs: LogBuffer::new(config.log_lines_per_app),
                slugs: SlugCache::new(&config.data_dir),
                ports: Mutex::new(PortAllocator::new(config.port_range.clone())),
                disks: config.disk.clone().map(crate::disks::Disks::new),
                activity: Activity::new(config.sleep_after),
                traffic: Traffic::default(),
                config,
                runtime,
                stacks,
                registry: Mutex::new(Registry::default()),
                routes,
                desired_changes: watch::channel(0).0,
                pending: Mutex::new(Pending::default()),
                wake: Notify::new(),
                tasks: TaskTracker::new(),
                closing: CancellationToken::new(),
                detaching: CancellationToken::new(),
                leave_now: std::sync::atomic::AtomicBool::new(false),
                adopted: Mutex::new(std::collections::HashMap::new()),
                started: watch::channel(false).0,
                wharf_dir: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Takes up the dynos the last server left running and removes its other leftovers,
    /// then reconciles on every [`DynoManager::notify`], every `reconcile_interval`, and
    /// whenever a dyno changes state. On `shutdown` it either leaves the formation running
    /// for the next server (`leave_running`; one-offs are stopped) or stops every dyno
    /// (SIGTERM, then SIGKILL after the stop timeout), and returns once they are let go or
    /// gone. An error means the leftovers could not be listed at start, or dynos outlived the
    /// shutdown deadline (the next start removes them).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let shared = &self.shared;
        shared
            .take_up_leftovers()
            .await
            .context("take up the dynos left running")?;
        shared.started.send_replace(true);
        let mut next_full = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            let scope = if now >= next_full || shared.take_all() {
                next_full = now + shared.config.reconcile_interval;
                shared.take_pending();
                None
            } else {
                Some(shared.take_pending())
            };
            if let Err(error) = shared.reconcile(scope.as_ref()).await {
                tracing::warn!("reconcile dynos: {error:#}");
            }
            if scope.is_none() {
                if let Err(error) = shared.remove_unknown().await {
                    tracing::warn!("remove unknown dynos: {error:#}");
                }
            }
            let wake_at = [shared.next_wake(), shared.activity.next_sleep()]
                .into_iter()
                .flatten()
                .fold(next_full, std::cmp::Ord::min);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = shared.wake.notified() => {}
                // Something is due (a restart, cycling, an app falling asleep): a full pass.
                () = tokio::time::sleep_until(wake_at) => next_full = wake_at,
            }
        }
        shared.shut_down().await
    }

    /// Asks for a reconcile of `app_id` soon (after a deploy, scaling, a config change, a
    /// restart or a rollback, or the app's deletion). Never waits. Like a request, such a
    /// change wakes an app that sleeps.
    pub fn notify(&self, app_id: Uuid) {
        self.shared.activity.touch(app_id);
        self.shared.notify(app_id);
        self.shared
            .desired_changes
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Asks for a pass over every app soon: what this host should run may have changed for
    /// any of them (an agent's source says so, or its fence went up or down). Never waits.
    pub fn reconcile_all(&self) {
        self.shared
            .pending
            .lock()
            .expect("pending lock poisoned")
            .all = true;
        self.shared.wake.notify_one();
    }

    /// Changes on every [`DynoManager::notify`]: what the store holds for an app changed (its
    /// maintenance mode, domains, formation, ...), for those that keep a copy (the route
    /// publisher) to read it again now.
    pub fn desired_changes(&self) -> watch::Receiver<u64> {
        self.shared.desired_changes.subscribe()
    }

    /// The app served a request: it stays awake for another `sleep_after`. Cheap; never
    /// waits.
    pub fn touch(&self, app_id: Uuid) {
        self.shared.activity.touch(app_id);
    }

    /// Tells the manager how to see whether a web dyno still gets requests (the router's
    /// view): a stopping web dyno gets SIGTERM only once it gets none. Set once, before
    /// [`DynoManager::run`]; without it dynos stop at once.
    pub fn watch_traffic(&self, probe: TrafficProbe) {
        self.shared.traffic.set(probe);
    }

    /// Whether the app had no request (nor change) for `sleep_after`: its Eco web dynos
    /// sleep. Never, without `sleep_after`. An app seen for the first time is awake.
    pub fn asleep(&self, app_id: Uuid) -> bool {
        self.shared.activity.asleep(app_id)
    }

    /// A request waits for the app: wakes its idle dynos now. Never waits.
    pub fn wake(&self, app_id: Uuid) {
        self.notify(app_id);
    }

    /// Every present dyno with its app, by app, process type, number and release.
    pub fn all_dynos(&self) -> Vec<(Uuid, DynoInfo)> {
        let registry = self.shared.registry();
        let mut dynos: Vec<&DynoEntry> = registry.dynos.values().collect();
        dynos.sort_by(|a, b| (a.app_id, &a.name, a.release).cmp(&(b.app_id, &b.name, b.release)));
        dynos
            .into_iter()
            .map(|d| (d.app_id, DynoInfo::of(d)))
            .collect()
    }

    /// The app's present dynos, by process type, number and release.
    pub fn dynos(&self, app_id: Uuid) -> Vec<DynoInfo> {
        let registry = self.shared.registry();
        let mut dynos: Vec<&DynoEntry> = registry
            .dynos
            .values()
            .filter(|d| d.app_id == app_id)
            .collect();
        dynos.sort_by(|a, b| (&a.name, a.release).cmp(&(&b.name, b.release)));
        dynos.into_iter().map(DynoInfo::of).collect()
    }

    /// Restarts the app's formation dynos that `target` names (as `heroku ps:restart`): each
    /// runs its process again, with its crash count reset. Returns how many, once their old
    /// processes are gone. One-off dynos never restart.
    pub async fn restart(&self, app_id: Uuid, target: Target) -> anyhow::Result<usize> {
        let shared = &self.shared;
        let (count, waits) = {
            let mut registry = shared.registry();
            let mut ids = matching(&registry, app_id, &target);
            ids.retain(|id| registry.dynos.get(id).is_some_and(|d| !d.one_off));
            let mut waits = Vec::new();
            for id in &ids {
                if let Some(entry) = registry.dynos.get_mut(id) {
                    entry.crashes = 0;
                }
                waits.extend(shared.restart_in_place(&mut registry, *id, messages::RESTARTING));
            }
            (ids.len(), waits)
        };
        shared.await_runs(waits).await?;
        Ok(count)
    }

    /// Stops the app's dynos that `target` names (as `heroku ps:stop`); dynos of the formation
    /// are started again by the reconciler. Returns how many, once they are gone.
    pub async fn stop(&self, app_id: Uuid, target: Target) -> anyhow::Result<usize> {
        let shared = &self.shared;
        let (count, waits) = {
            let mut registry = shared.registry();
            let ids = matching(&registry, app_id, &target);
            let waits: Vec<CancellationToken> = ids
                .iter()
                .filter_map(|id| shared.stop_dyno(&mut registry, *id))
                .collect();
            (ids.len(), waits)
        };
        let waited = shared.await_runs(waits).await;
        shared.notify(app_id);
        waited.map(|()| count)
    }

    /// Leaves the formation running at this shutdown, whatever the configuration says: the
    /// server hands over to a successor, which takes the dynos up. Needs a runtime whose
    /// containers have holders.
    pub fn leave_running(&self) {
        self.shared
            .leave_now
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// True once the dynos the last server left running are taken up (they are in the
    /// routes) and its other leftovers removed: what routes before then misses them.
    pub fn started(&self) -> watch::Receiver<bool> {
        self.shared.started.subscribe()
    }

    /// The web dynos that are up, per app name; updated on every change.
    pub fn routes(&self) -> watch::Receiver<RouteTable> {
        self.shared.routes.subscribe()
    }

    pub fn logs(&self) -> &LogBuffer {
        &self.shared.logs
    }
}

/// Ids of the app's dynos that `target` names and that are not already going away.
fn matching(registry: &Registry, app_id: Uuid, target: &Target) -> Vec<Uuid> {
    registry
        .dynos
        .values()
        .filter(|d| d.app_id == app_id && d.state != DynoState::Down && target.matches(&d.name))
        .map(|d| d.id)
        .collect()
}

impl Shared {
    pub(crate) fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().expect("dyno registry lock poisoned")
    }

    pub(crate) fn notify(&self, app_id: Uuid) {
        self.pending
            .lock()
            .expect("pending lock poisoned")
            .apps
            .insert(app_id);
        self.wake.notify_one();
    }

    fn take_all(&self) -> bool {
        std::mem::take(&mut self.pending.lock().expect("pending lock poisoned").all)
    }

    fn take_pending(&self) -> HashSet<Uuid> {
        std::mem::take(&mut self.pending.lock().expect("pending lock poisoned").apps)
    }

    /// One reconcile pass over `scope` (every app with `None`).
    async fn reconcile(self: &Arc<Self>, scope: Option<&HashSet<Uuid>>) -> anyhow::Result<()> {
        if scope.is_some_and(HashSet::is_empty) || self.closing.is_cancelled() {
            return Ok(());
        }
        let known = self.registry().apps();
        let mut read = self.source.read(scope, &known).await?;
        for (app_id, app) in &mut read.desired.apps {
            // Asleep by this manager's activity, or as the source says (an agent's, for
            // which the control plane keeps the activity).
            app.asleep = app.can_sleep() && (app.asleep || self.activity.asleep(*app_id));
        }
        if scope.is_none() {
            self.activity
                .retain(|app_id| read.desired.apps.contains_key(app_id));
        }
        let mut keep = {
            let mut registry = self.registry();
            // Renamed apps: their routes follow the new name.
            for entry in registry.dynos.values_mut() {
                if let Some(app) = read.desired.apps.get(&entry.app_id) {
                    if entry.app_name != app.name {
                        entry.app_name.clone_from(&app.name);
                    }
                }
            }
            self.publish_routes(&registry);
            let observed = registry.observed(Some(&read.scope), now_micros());
            for action in plan(&read.desired, &observed) {
                self.execute(&mut registry, &read.desired, action);
            }
            // The plan never sees one-offs; those of a deleted app stop with it.
            let orphans: Vec<Uuid> = registry
                .dynos
                .values()
                .filter(|d| {
                    d.one_off
                        && read.scope.contains(&d.app_id)
                        && !read.desired.apps.contains_key(&d.app_id)
                })
                .map(|d| d.id)
                .collect();
            for id in orphans {
                drop(self.stop_dyno(&mut registry, id));
            }
            registry.slugs()
        };
        if scope.is_none() {
            keep.extend(
                read.desired
                    .apps
                    .values()
                    .filter_map(|app| app.release.slug_id),
            );
            let (shared, copies) = (self.clone(), self.source.slugs_are_copies());
            tokio::task::spawn_blocking(move || {
                shared.slugs.collect_garbage(Some(&keep), false, copies)
            })
            .await
            .context("remove unused slugs: task failed")?;
        }
        Ok(())
    }

    /// The earliest restart or cycling due, as a tokio instant.
    fn next_wake(&self) -> Option<tokio::time::Instant> {
        let observed = self.registry().observed(None, now_micros());
        let at = next_wake(&observed)?;
        let wait = Duration::try_from(at - observed.now).unwrap_or(Duration::ZERO);
        Some(tokio::time::Instant::now() + wait)
    }

    /// Removes every container with the dyno prefix that the registry does not know.
    async fn remove_unknown(&self) -> anyhow::Result<()> {
        let states = self
            .runtime
            .states(DYNO_PREFIX)
            .await
            .context("list containers")?;
        let known = self.registry().container_ids();
        for state in states {
            if known.contains(&state.id) {
                continue;
            }
            // A container whose run is just beginning is recorded before it is created, so an
            // unknown one is never ours.
            tracing::info!(container = %state.id, status = %state.status, "removing a leftover dyno");
            if let Err(error) = self.runtime.delete(&state.id).await {
                tracing::warn!(container = %state.id, "remove leftover dyno: {error:#}");
            }
        }
        Ok(())
    }

    /// Stops every dyno (or, leaving them running, every one-off and lets go of the rest)
    /// and waits (with a deadline) for them and their supervisors.
    async fn shut_down(&self) -> anyhow::Result<()> {
        self.closing.cancel();
        let leave = (self.config.leave_running
            || self.leave_now.load(std::sync::atomic::Ordering::SeqCst))
            && self.runtime.holder().is_some();
        let waits: Vec<CancellationToken> = {
            let mut registry = self.registry();
            let ids: Vec<Uuid> = registry
                .dynos
                .values()
                .filter(|d| !leave || d.one_off)
                .map(|d| d.id)
                .collect();
            ids.into_iter()
                .filter_map(|id| self.stop_dyno(&mut registry, id))
                .collect()
        };
        if leave {
            if let Some(network) = &self.config.network {
                network.leave_running();
            }
            self.detaching.cancel();
        }
        let stopped = self.await_runs(waits).await;
        self.tasks.close();
        let finished = tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait()).await;
        stopped.context("stop dynos")?;
        finished.map_err(|_| anyhow::anyhow!("dyno supervisors still running at shutdown"))
    }
}
