//! The dyno manager: the reconcile loop (desired state from the store, observed state from the
//! registry, [`plan`], then the executor), the public handle the API calls, and the registry
//! changes the supervisors report.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;
use wharf_containers::{Runtime, Stack};
use wharf_model::DynoSize;
use wharf_store::Store;

use crate::desired;
use crate::logs::{now_micros, LogBuffer, LogLine, LogSource};
use crate::messages;
use crate::plan::{next_wake, plan, Action, Desired, RestartReason};
use crate::ports::PortAllocator;
use crate::registry::{DynoEntry, Intent, Registry, RunHandle};
use crate::routes::RouteTable;
use crate::runner::{supervise, RunEnd, RunInput, DYNO_PREFIX};
use crate::schedule::{crashes_after_exit, restart_delay};
use crate::slugs::SlugCache;
use crate::state::{DynoName, DynoState, Target};

/// How long shutdown waits beyond the stop timeout for dynos to go.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

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
    /// `$PORT` of a web dyno's current process.
    pub port: Option<u16>,
    /// When the state last changed.
    pub updated_at: OffsetDateTime,
    /// The current process's container, if it has one.
    pub container_id: Option<String>,
}

/// The dyno manager. Cheap to clone: all clones drive the same dynos.
#[derive(Clone)]
pub struct DynoManager {
    shared: Arc<Shared>,
}

/// Which apps the next pass reconciles.
#[derive(Default)]
struct Pending {
    apps: HashSet<Uuid>,
}

pub(crate) struct Shared {
    store: Store,
    pub config: DynoManagerConfig,
    pub runtime: Runtime,
    pub stack: Stack,
    pub logs: LogBuffer,
    pub slugs: SlugCache,
    registry: Mutex<Registry>,
    ports: Mutex<PortAllocator>,
    routes: watch::Sender<RouteTable>,
    pending: Mutex<Pending>,
    wake: Notify,
    tasks: TaskTracker,
    /// Set when shutdown begins: nothing starts after it.
    closing: CancellationToken,
    wharf_dir: tokio::sync::OnceCell<PathBuf>,
}

impl DynoManager {
    pub fn new(
        store: Store,
        config: DynoManagerConfig,
        runtime: Runtime,
        stack: Stack,
    ) -> DynoManager {
        let (routes, _) = watch::channel(RouteTable::new());
        DynoManager {
            shared: Arc::new(Shared {
                store,
                logs: LogBuffer::new(config.log_lines_per_app),
                slugs: SlugCache::new(&config.data_dir),
                ports: Mutex::new(PortAllocator::new(config.port_range.clone())),
                config,
                runtime,
                stack,
                registry: Mutex::new(Registry::default()),
                routes,
                pending: Mutex::new(Pending::default()),
                wake: Notify::new(),
                tasks: TaskTracker::new(),
                closing: CancellationToken::new(),
                wharf_dir: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Removes leftover dynos, then reconciles on every [`DynoManager::notify`], every
    /// `reconcile_interval`, and whenever a dyno changes state; on `shutdown` stops every dyno
    /// (SIGTERM, then SIGKILL after the stop timeout) and returns once they are gone. An error
    /// means the leftovers could not be listed at start, or dynos outlived the shutdown deadline
    /// (the next start removes them).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let shared = &self.shared;
        shared
            .remove_leftovers(true)
            .await
            .context("remove leftover dynos")?;
        let mut next_full = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            let scope = if now >= next_full {
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
                if let Err(error) = shared.remove_leftovers(false).await {
                    tracing::warn!("remove unknown dynos: {error:#}");
                }
            }
            let wake_at = shared.next_wake().map_or(next_full, |at| at.min(next_full));
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = shared.wake.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
        shared.shut_down().await
    }

    /// Asks for a reconcile of `app_id` soon (after a deploy, scaling, a config change, a
    /// restart or a rollback, or the app's deletion). Never waits.
    pub fn notify(&self, app_id: Uuid) {
        self.shared.notify(app_id);
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
        dynos
            .into_iter()
            .map(|d| DynoInfo {
                id: d.id,
                name: d.name.to_string(),
                process_type: d.name.process_type().to_owned(),
                state: d.state,
                command: d.command.clone(),
                size: d.size,
                release_version: d.release,
                port: d.port,
                updated_at: d.updated_at,
                container_id: d.container_id.clone(),
            })
            .collect()
    }

    /// Restarts the app's dynos that `target` names (as `heroku ps:restart`): each runs its
    /// process again, with its crash count reset. Returns how many, once their old processes
    /// are gone.
    pub async fn restart(&self, app_id: Uuid, target: Target) -> anyhow::Result<usize> {
        let shared = &self.shared;
        let (count, waits) = {
            let mut registry = shared.registry();
            let ids = matching(&registry, app_id, &target);
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
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().expect("dyno registry lock poisoned")
    }

    fn notify(&self, app_id: Uuid) {
        self.pending
            .lock()
            .expect("pending lock poisoned")
            .apps
            .insert(app_id);
        self.wake.notify_one();
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
        let read = desired::read(&self.store, scope, &known).await?;
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
        if scope.is_none() {
            let mut keep = registry.slugs();
            keep.extend(
                read.desired
                    .apps
                    .values()
                    .filter_map(|app| app.release.slug_id),
            );
            drop(registry);
            self.slugs.collect_garbage(&keep, false);
        }
        Ok(())
    }

    /// Carries out one action, after checking it still applies to the registry as it is now.
    fn execute(self: &Arc<Self>, registry: &mut Registry, desired: &Desired, action: Action) {
        match action {
            Action::Start {
                app,
                name,
                release,
                size,
            } => {
                if self.closing.is_cancelled() || registry.find(app, &name, release).is_some() {
                    return;
                }
                let Some(wanted) = desired.apps.get(&app) else {
                    return;
                };
                let (Some(slug_id), Some(command)) = (
                    wanted.release.slug_id,
                    wanted.release.commands.get(name.process_type()),
                ) else {
                    return;
                };
                let now = now_micros();
                let id = Uuid::new_v4();
                registry.dynos.insert(
                    id,
                    DynoEntry {
                        id,
                        app_id: app,
                        app_name: wanted.name.clone(),
                        name,
                        release,
                        slug_id,
                        command: command.clone(),
                        config: wanted
                            .release
                            .config
                            .iter()
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect(),
                        size,
                        state: DynoState::Starting,
                        updated_at: now,
                        started_at: now,
                        crashes: 0,
                        next_restart: None,
                        cycle_at: None,
                        port: None,
                        container_id: None,
                        intent: None,
                        run: Some(RunHandle::new()),
                    },
                );
                self.spawn_supervisor(id);
            }
            Action::Restart {
                app,
                name,
                release,
                reason,
            } => {
                let Some(id) = registry.find(app, &name, release).map(|d| d.id) else {
                    return;
                };
                let message = match reason {
                    RestartReason::Crashed => None,
                    RestartReason::Cycling => Some(messages::CYCLING),
                };
                let due = registry.dynos.get(&id).is_some_and(|d| match reason {
                    RestartReason::Crashed => d.state == DynoState::Crashed,
                    RestartReason::Cycling => d.state == DynoState::Up,
                });
                if due {
                    match message {
                        Some(message) => drop(self.restart_in_place(registry, id, message)),
                        None => self.restart_crashed(registry, id),
                    }
                }
            }
            Action::Stop {
                app, name, release, ..
            } => {
                if let Some(id) = registry.find(app, &name, release).map(|d| d.id) {
                    drop(self.stop_dyno(registry, id));
                }
            }
        }
    }

    fn spawn_supervisor(self: &Arc<Self>, id: Uuid) {
        self.tasks.spawn(supervise(self.clone(), id));
    }

    /// Logs `message` and the state change, and makes the dyno's process run again: a crashed
    /// dyno at once, a running one once its container is gone. The token is cancelled then.
    fn restart_in_place(
        self: &Arc<Self>,
        registry: &mut Registry,
        id: Uuid,
        message: &str,
    ) -> Option<CancellationToken> {
        let entry = registry.dynos.get_mut(&id)?;
        let (app_id, name) = (entry.app_id, entry.name.clone());
        match entry.state {
            DynoState::Crashed => {
                self.log(app_id, &name, message);
                self.restart_crashed(registry, id);
                None
            }
            DynoState::Up | DynoState::Starting | DynoState::Idle => {
                if entry.intent.is_some() {
                    return entry.run.as_ref().map(|run| run.done.clone());
                }
                self.log(app_id, &name, message);
                entry.intent = Some(Intent::Restart);
                let run = entry.run.clone();
                self.transition(registry, id, DynoState::Starting);
                run.map(|run| {
                    run.stop.cancel();
                    run.done
                })
            }
            DynoState::Down => None,
        }
    }

    fn restart_crashed(self: &Arc<Self>, registry: &mut Registry, id: Uuid) {
        if self.closing.is_cancelled() {
            return;
        }
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return;
        };
        if entry.state != DynoState::Crashed {
            return;
        }
        entry.run = Some(RunHandle::new());
        entry.next_restart = None;
        self.transition(registry, id, DynoState::Starting);
        self.spawn_supervisor(id);
    }

    /// Takes the dyno out of the routes (state `down`), then has its supervisor stop it; a
    /// crashed dyno is removed at once. Returns the token cancelled once it is gone.
    fn stop_dyno(&self, registry: &mut Registry, id: Uuid) -> Option<CancellationToken> {
        let entry = registry.dynos.get_mut(&id)?;
        match entry.state {
            DynoState::Down => entry.run.as_ref().map(|run| run.done.clone()),
            DynoState::Crashed => {
                self.transition(registry, id, DynoState::Down);
                registry.dynos.remove(&id);
                None
            }
            DynoState::Starting | DynoState::Up | DynoState::Idle => {
                entry.intent = Some(Intent::Stop);
                let run = entry.run.clone();
                // Out of the route table before SIGTERM.
                self.transition(registry, id, DynoState::Down);
                run.map(|run| {
                    run.stop.cancel();
                    run.done
                })
            }
        }
    }

    /// Waits until every token is cancelled; an error after the stop timeout plus a grace.
    async fn await_runs(&self, waits: Vec<CancellationToken>) -> anyhow::Result<()> {
        let deadline = self.config.stop_timeout + SHUTDOWN_GRACE;
        let all = futures_join(waits);
        tokio::time::timeout(deadline, all)
            .await
            .map_err(|_| anyhow::anyhow!("dynos still stopping after {deadline:?}"))
    }

    /// Sets a dyno's state, logs the change in Heroku's words, and republishes the routes.
    fn transition(&self, registry: &mut Registry, id: Uuid, to: DynoState) {
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return;
        };
        let from = entry.state;
        if from == to {
            return;
        }
        entry.state = to;
        entry.updated_at = now_micros();
        let (app_id, name) = (entry.app_id, entry.name.clone());
        self.log(app_id, &name, messages::state_changed(from, to));
        self.publish_routes(registry);
    }

    fn publish_routes(&self, registry: &Registry) {
        let table = registry.routes();
        self.routes.send_if_modified(|current| {
            if *current == table {
                false
            } else {
                *current = table;
                true
            }
        });
    }

    pub fn log(&self, app_id: Uuid, name: &DynoName, message: impl Into<String>) {
        self.logs.append(
            app_id,
            LogLine::now(LogSource::Heroku, &name.to_string(), message),
        );
    }

    pub fn allocate_port(&self) -> Option<u16> {
        self.ports.lock().expect("ports lock poisoned").allocate()
    }

    pub fn release_port(&self, port: u16) {
        self.ports
            .lock()
            .expect("ports lock poisoned")
            .release(port);
    }

    /// What the next run of dyno `id` needs; `None` when it is gone or going.
    pub fn begin_run(&self, id: Uuid) -> Option<RunInput> {
        let mut registry = self.registry();
        let entry = registry.dynos.get_mut(&id)?;
        let handle = entry.run.clone()?;
        if self.closing.is_cancelled() || entry.state == DynoState::Down {
            return None;
        }
        entry.started_at = now_micros();
        Some(RunInput {
            app_id: entry.app_id,
            name: entry.name.clone(),
            slug_id: entry.slug_id,
            command: entry.command.clone(),
            config: entry.config.clone(),
            size: entry.size,
            handle,
        })
    }

    /// Records the container and port of the dyno's current run.
    pub fn record_run(&self, id: Uuid, container_id: &str, port: Option<u16>) {
        if let Some(entry) = self.registry().dynos.get_mut(&id) {
            entry.container_id = Some(container_id.to_owned());
            entry.port = port;
        }
    }

    /// A starting dyno is up: it enters the routes, and gets its cycling time.
    pub fn dyno_up(&self, id: Uuid) {
        let mut registry = self.registry();
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return;
        };
        if entry.state != DynoState::Starting || entry.intent.is_some() {
            return;
        }
        entry.cycle_at = self.config.cycle_after.map(|after| {
            let jitter = rand::thread_rng().gen_range(Duration::ZERO..=self.config.cycle_jitter);
            entry.started_at + after + jitter
        });
        let app_id = entry.app_id;
        self.transition(&mut registry, id, DynoState::Up);
        drop(registry);
        self.notify(app_id);
    }

    /// Records how a run ended; returns whether the dyno runs again (a restart in place).
    pub fn end_run(&self, id: Uuid, end: RunEnd) -> bool {
        let mut registry = self.registry();
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return false;
        };
        entry.container_id = None;
        entry.port = None;
        let app_id = entry.app_id;
        let finished = entry.run.take();
        let again = match entry.intent.take() {
            Some(Intent::Stop) => {
                registry.dynos.remove(&id);
                self.publish_routes(&registry);
                false
            }
            Some(Intent::Restart) if !self.closing.is_cancelled() => {
                entry.run = Some(RunHandle::new());
                true
            }
            Some(Intent::Restart) | None => {
                let now = now_micros();
                if !matches!(end, RunEnd::Stopped) {
                    entry.crashes = crashes_after_exit(entry.crashes, entry.ran_for(now));
                }
                entry.next_restart = Some(now + restart_delay(entry.crashes));
                entry.cycle_at = None;
                self.transition(&mut registry, id, DynoState::Crashed);
                false
            }
        };
        drop(registry);
        if let Some(run) = finished {
            run.done.cancel();
        }
        self.notify(app_id);
        again
    }

    /// The earliest restart or cycling due, as a tokio instant.
    fn next_wake(&self) -> Option<tokio::time::Instant> {
        let observed = self.registry().observed(None, now_micros());
        let at = next_wake(&observed)?;
        let wait = Duration::try_from(at - observed.now).unwrap_or(Duration::ZERO);
        Some(tokio::time::Instant::now() + wait)
    }

    /// The directory bound at `/wharf` (holding `bin/wharf`), prepared once.
    pub async fn wharf_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self
            .wharf_dir
            .get_or_try_init(|| async {
                let source = match &self.config.wharf_binary {
                    Some(path) => path.clone(),
                    None => std::env::current_exe().context("find the running executable")?,
                };
                let dir = self.config.data_dir.join("wharf");
                let target = dir.clone();
                tokio::task::spawn_blocking(move || install_binary(&source, &target))
                    .await
                    .context("install the wharf binary: task failed")??;
                anyhow::Ok(dir)
            })
            .await?;
        Ok(dir.clone())
    }

    /// Removes every container with the dyno prefix that the registry does not know (all of
    /// them at start-up), and at start-up every per-dyno directory and half-extracted slug.
    async fn remove_leftovers(&self, startup: bool) -> anyhow::Result<()> {
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
        if startup {
            let dynos_dir = self.config.data_dir.join("dynos");
            let slugs = &self.slugs;
            let cleared = tokio::task::spawn_blocking(move || clear_dir(&dynos_dir))
                .await
                .context("clear dyno directories: task failed")?;
            cleared.context("clear dyno directories")?;
            slugs.collect_garbage(&HashSet::new(), true);
        }
        Ok(())
    }

    /// Stops every dyno and waits (with a deadline) for them and their supervisors.
    async fn shut_down(&self) -> anyhow::Result<()> {
        self.closing.cancel();
        let waits: Vec<CancellationToken> = {
            let mut registry = self.registry();
            let ids: Vec<Uuid> = registry.dynos.keys().copied().collect();
            ids.into_iter()
                .filter_map(|id| self.stop_dyno(&mut registry, id))
                .collect()
        };
        let stopped = self.await_runs(waits).await;
        self.tasks.close();
        let finished = tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait()).await;
        stopped.context("stop dynos")?;
        finished.map_err(|_| anyhow::anyhow!("dyno supervisors still running at shutdown"))
    }
}

async fn futures_join(tokens: Vec<CancellationToken>) {
    for token in tokens {
        token.cancelled().await;
    }
}

/// Copies (or hard-links) the binary to `<dir>/bin/wharf`, readable and executable by dynos,
/// replacing an older copy atomically.
fn install_binary(source: &Path, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("create {}", bin.display()))?;
    for path in [dir, bin.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    let target = bin.join("wharf");
    let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
        a.len() == b.len() && a.modified().ok() == b.modified().ok()
    };
    let source_meta =
        std::fs::metadata(source).with_context(|| format!("stat {}", source.display()))?;
    if std::fs::metadata(&target).is_ok_and(|existing| same(&existing, &source_meta)) {
        return Ok(());
    }
    let temporary = bin.join(format!(".wharf-{}", Uuid::new_v4().simple()));
    if std::fs::hard_link(source, &temporary).is_err() {
        std::fs::copy(source, &temporary)
            .with_context(|| format!("copy {} to {}", source.display(), temporary.display()))?;
        let file = std::fs::File::options()
            .write(true)
            .open(&temporary)
            .with_context(|| format!("open {}", temporary.display()))?;
        if let Ok(modified) = source_meta.modified() {
            file.set_modified(modified)
                .with_context(|| format!("set the time of {}", temporary.display()))?;
        }
    }
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", temporary.display()))?;
    std::fs::rename(&temporary, &target).with_context(|| format!("rename to {}", target.display()))
}

/// Removes everything inside `dir` (which may not exist).
fn clear_dir(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("read {}", dir.display())),
    };
    for entry in entries {
        let path = entry.context("read directory entry")?.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("remove {}", path.display()))?;
    }
    Ok(())
}
