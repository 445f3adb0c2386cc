//! `wharf-redis` (also `heroku-redis`) as Heroku runs it: every add-on is a `redis-server`
//! of its own, run by Wharf on the host as the `redis` user (through the [`Supervisor`]),
//! listening where dynos reach the host, with the app's URL in Heroku's shape:
//! `redis://:PASSWORD@HOST:PORT` (no user name: clients send `AUTH <password>`, which logs
//! in as Redis's `default` user). Apps get a whole server: every database, `INFO`, `KEYS`,
//! `FLUSHALL`, Lua, Pub/Sub, `CLIENT SETNAME`.
//!
//! Plans (Heroku's names; `maxmemory` and connections, enforced by the server):
//!
//! | plan        | memory  | connections |
//! |-------------|---------|-------------|
//! | `mini`      | 25 MB   | 20 (default plan) |
//! | `premium-0` | 50 MB   | 40          |
//! | `premium-1` | 100 MB  | 80          |
//! | `premium-2` | 250 MB  | 200         |
//! | `premium-3` | 500 MB  | 400         |
//! | `premium-5` | 1024 MB | 1000        |
//!
//! The server allows two connections beyond the plan, for Wharf (Redis keeps none for an
//! administrator). Client buffers are held to the plan's memory too (`maxmemory-clients`,
//! `client-query-buffer-limit`, `proto-max-bulk-len`). The eviction policy is `noeviction`
//! (Heroku's default: a full server answers writes with `OOM`) until the user picks another
//! with `configure` (`maxmemory-policy`, any of Redis's eight).
//!
//! Each add-on is a directory `<root>/<id>/` (see `disk`): a port chosen once (the lowest
//! free one of the range that no other add-on records), `redis.conf` written before every
//! start from the plan and the state, `users.acl`, the data in `data/` (append-only file,
//! fsync every second; no RDB snapshots), the server's log, and root-only password files.
//!
//! Users, set with ACLs rather than `rename-command`: a command an ACL denies is as gone for
//! the app as a renamed one, while Wharf's own user `wharf` (all commands; its password in a
//! root-only file, never in the store or a log) keeps `CONFIG` for `configure`. The app's
//! `default` user may run everything but `CONFIG`, `DEBUG`, `MODULE`, `SHUTDOWN`, `SAVE`,
//! `BGSAVE`, `BGREWRITEAOF`, `FAILOVER`, `REPLICAOF`/`SLAVEOF`, `MIGRATE`, `CLUSTER`,
//! `SYNC`, `PSYNC`, `REPLCONF` and `ACL` (but `ACL WHOAMI`); why each is in
//! `config::APP_RULES`. The ACL file holds SHA-256 hashes only and is rewritten by Wharf (as
//! root; the server cannot write its directory) whenever passwords change, so a restart
//! keeps them.
//!
//! Rotation gives `default` a second password; revocation removes every password but the
//! current one (its hash is in the state) and then closes every `default` connection.
//! Redis cannot tell which password a connection logged in with, and the connections' age
//! does not tell either: a holder of the old password may have connected after the
//! rotation, and such a connection must not outlive the revocation. Dynos already running
//! with the new password reconnect once, as Redis clients do by themselves. Revocation is
//! a read of the ACL file when there is nothing to revoke (it runs at every start-up), and
//! rewrites that file last, so a retry after a crash does it all again.
//!
//! A server that exits is started again by the supervisor (whose exit callback reports
//! it); one that had died before `resume` (its log has no clean shutdown after it served)
//! and a server that cannot write its append-only file (a full disk: Redis refuses writes
//! with `MISCONF`, `info` shows it) are reported as [`AddonEvent`]s.

mod config;
mod disk;
mod info;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::{
    random_password, AddonConfig, AddonEvent, Events, Plan, Provider, Provisioned, Resource,
    Service, Supervisor,
};
use config::{State, DEFAULT_POLICY, POLICY_SETTING};
use disk::{AddonDir, ServerUser};
use info::Status;

/// The longest a server may take to answer after it was started (loading a large
/// append-only file included).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a starting server is asked whether it answers (a refused connection costs next
/// to nothing, and every poll's wait is added to provisioning).
const READY_POLL: Duration = Duration::from_millis(5);
/// The longest one exchange with a running server (log in, a command or two) may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to write its data out when stopped, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// `AddonEvent::source`.
const SOURCE: &str = "redis";

/// Where and how the servers run.
#[derive(Debug, Clone)]
pub struct ManagedRedisSettings {
    /// `<data dir>/addons/redis`: one directory per add-on below it.
    pub root: PathBuf,
    /// Where servers listen and dynos reach them (the dyno network's gateway; 127.0.0.1 in
    /// tests).
    pub listen: IpAddr,
    /// Inclusive range of ports for servers (`WHARF_ADDON_REDIS_PORTS`).
    pub ports: (u16, u16),
    /// `/usr/bin/redis-server`.
    pub redis_server: PathBuf,
    /// The OS user servers run as: `redis`.
    pub user: String,
}

/// The provider; see the module documentation.
pub struct ManagedRedis {
    settings: ManagedRedisSettings,
    user: ServerUser,
    supervisor: Supervisor,
    events: Events,
    service: Service,
    /// Serialises changes to add-on directories (ports, password files, the ACL file).
    changes: tokio::sync::Mutex<()>,
    /// The add-ons whose server this provider started: what [`Provider::stop`] stops.
    started: Mutex<BTreeSet<Uuid>>,
    /// The add-ons whose failing writes were reported, so a failure is reported once.
    failing: Mutex<BTreeSet<Uuid>>,
}

/// The supervisor's key for an add-on's server.
pub fn server_key(resource: Resource) -> String {
    format!("redis-{}", resource.id.simple())
}

/// The add-on whose server the supervisor knows as `key` (for its exit callback).
pub fn server_resource(key: &str) -> Option<Resource> {
    let id = key.strip_prefix("redis-")?;
    Some(Resource {
        id: Uuid::try_parse(id).ok()?,
    })
}

impl ManagedRedis {
    /// Checks that `redis-server` and the user exist and that the user can reach `root`
    /// (made when missing); starts nothing.
    pub fn new(
        settings: ManagedRedisSettings,
        supervisor: Supervisor,
        events: Events,
    ) -> anyhow::Result<ManagedRedis> {
        use std::os::unix::fs::PermissionsExt;
        let program = &settings.redis_server;
        let runnable = std::fs::metadata(program)
            .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0);
        anyhow::ensure!(
            runnable,
            "{} is not there: install the Debian package redis-server (managed Redis add-ons \
             run it; its own service on port 6379 may be disabled)",
            program.display()
        );
        let user = disk::lookup_user(&settings.user)?;
        let (low, high) = settings.ports;
        anyhow::ensure!(
            0 < low && low <= high,
            "{low}-{high} is no range of ports for Redis add-ons (WHARF_ADDON_REDIS_PORTS)"
        );
        if !settings.root.exists() {
            std::fs::create_dir_all(&settings.root)
                .with_context(|| format!("create {}", settings.root.display()))?;
            std::fs::set_permissions(&settings.root, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("chmod {}", settings.root.display()))?;
        }
        disk::check_owned_by_root(&settings.root)?;
        disk::check_reachable(&settings.root, user)?;
        Ok(ManagedRedis {
            settings,
            user,
            supervisor,
            events,
            service: crate::redis::service(config::plans()),
            changes: tokio::sync::Mutex::new(()),
            started: Mutex::new(BTreeSet::new()),
            failing: Mutex::new(BTreeSet::new()),
        })
    }

    fn dir(&self, resource: Resource) -> AddonDir {
        AddonDir::new(&self.settings.root, resource)
    }

    /// The add-on's directory, which must exist.
    fn existing_dir(&self, resource: Resource) -> anyhow::Result<AddonDir> {
        let dir = self.dir(resource);
        anyhow::ensure!(
            dir.exists(),
            "the Redis add-on's directory {} is gone",
            dir.path.display()
        );
        Ok(dir)
    }

    fn address(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.settings.listen, port)
    }

    fn url(&self, password: &str, port: u16) -> String {
        config::app_url(self.address(port), password)
    }

    /// Finds or records the add-on's port (`port` when it records none), and
    /// writes the files the server reads for `plan` and `state`, the ACL file keeping the
    /// passwords it has and `state`'s. Call with `changes` held.
    fn prepare(
        &self,
        dir: &AddonDir,
        plan: &Plan,
        state: &mut State,
        port: Option<u16>,
    ) -> anyhow::Result<()> {
        state.port = dir.allocate_port(
            &self.settings.root,
            self.settings.listen,
            self.settings.ports,
            port,
        )?;
        let mut hashes = self.app_hashes(dir)?;
        if !hashes.contains(&state.password_sha256) {
            hashes.push(state.password_sha256.clone());
        }
        self.write_acl(dir, &hashes)?;
        self.write_config(dir, plan, state)
    }

    /// The hashes of the app's passwords in the ACL file (none when there is no file).
    fn app_hashes(&self, dir: &AddonDir) -> anyhow::Result<Vec<String>> {
        Ok(disk::read_optional(&dir.acl())?
            .map(|acl| config::app_hashes(&acl))
            .unwrap_or_default())
    }

    fn write_acl(&self, dir: &AddonDir, app_hashes: &[String]) -> anyhow::Result<()> {
        let admin = dir.secret(&dir.admin_password())?;
        let acl = config::acl_file(&config::password_hash(&admin), app_hashes);
        dir.write_shared(&dir.acl(), &acl, self.user)
    }

    fn write_config(&self, dir: &AddonDir, plan: &Plan, state: &State) -> anyhow::Result<()> {
        let (data, acl) = (dir.data(), dir.acl());
        let paths = config::ServerPaths {
            data: &data,
            acl: &acl,
        };
        let text = config::server_config(
            self.settings.listen,
            state.port,
            &plan.limits,
            state.policy,
            &paths,
        )?;
        dir.write_shared(&dir.config(), &text, self.user)
    }

    /// The port the add-on's server listens on.
    fn port(&self, dir: &AddonDir, state: &State) -> anyhow::Result<u16> {
        Ok(dir.port()?.unwrap_or(state.port))
    }

    fn event(&self, resource: Resource, message: &str) {
        // Nobody listening (the server is stopping) is no reason to fail.
        let _ = self.events.send(AddonEvent {
            resource: resource.id,
            source: SOURCE,
            message: message.to_owned(),
        });
    }

    /// Reports a server that cannot write its data, once per failure.
    fn report_writes(&self, resource: Resource, info: &BTreeMap<String, String>) {
        if info.is_empty() {
            return; // it did not answer: nothing known
        }
        let failing = info::write_failing(info);
        let changed = match failing {
            true => lock(&self.failing).insert(resource.id),
            false => lock(&self.failing).remove(&resource.id),
        };
        if changed && failing {
            self.event(
                resource,
                "Redis cannot write its append-only file (is the disk full?): it refuses \
                 writes (MISCONF) until it can",
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Provider for ManagedRedis {
    fn service(&self) -> &Service {
        &self.service
    }

    fn dyno_port_range(&self) -> Option<(IpAddr, u16, u16)> {
        let (low, high) = self.settings.ports;
        Some((self.settings.listen, low, high))
    }

    fn provision<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
        options: &'a AddonConfig,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let policy = match options.get(POLICY_SETTING) {
                Some(value) => config::policy(value)?,
                None => DEFAULT_POLICY,
            };
            let dir = self.dir(resource);
            let (state, password) = {
                let _changes = self.changes.lock().await;
                dir.create(self.user)?;
                // A retry finds the password an interrupted call made (or the newest a
                // rotation made).
                let password = dir.secret(&dir.app_password())?;
                let mut state = State {
                    port: 0,
                    generation: 1,
                    password_sha256: config::password_hash(&password),
                    policy,
                };
                self.prepare(&dir, plan, &mut state, None)?;
                (state, password)
            };
            self.start(resource, &dir, state.port).await?;
            Ok(Provisioned {
                config: AddonConfig::from([("URL".to_owned(), self.url(&password, state.port))]),
                state: state.to_json(),
            })
        })
    }

    fn resume<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut state = State::from_json(state)?;
            let dir = self.existing_dir(resource)?;
            {
                let _changes = self.changes.lock().await;
                dir.create(self.user)?;
                let port = state.port;
                self.prepare(&dir, plan, &mut state, Some(port))?;
            }
            self.start(resource, &dir, state.port).await
        })
    }

    fn rotate<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let mut state = State::from_json(state)?;
            let dir = self.existing_dir(resource)?;
            let port = self.port(&dir, &state)?;
            let password = random_password();
            let hash = config::password_hash(&password);
            let _changes = self.changes.lock().await;
            // The file first: a server that restarts meanwhile loads the new password too.
            let mut hashes = self.app_hashes(&dir)?;
            hashes.push(hash.clone());
            self.write_acl(&dir, &hashes)?;
            let add = format!("#{hash}");
            self.administer(&dir, port, &[&["ACL", "SETUSER", "default", "on", &add]])
                .await
                .context("give the add-on's Redis a new password")?;
            dir.set_secret(&dir.app_password(), &password)?;
            state.generation += 1;
            state.password_sha256 = hash;
            state.port = port;
            Ok(Provisioned {
                config: AddonConfig::from([("URL".to_owned(), self.url(&password, port))]),
                state: state.to_json(),
            })
        })
    }

    fn revoke_previous<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let state = State::from_json(state)?;
            let dir = self.dir(resource);
            if !dir.exists() {
                return Ok(());
            }
            let _changes = self.changes.lock().await;
            let current = vec![state.password_sha256.clone()];
            if self.app_hashes(&dir)? == current {
                return Ok(());
            }
            let port = self.port(&dir, &state)?;
            let keep = format!("#{}", state.password_sha256);
            // No new connection with an old password once the first command is done; the
            // second closes every connection that might have used one (see the module
            // documentation). The file last: until it is written, a retry does it all again.
            self.administer(
                &dir,
                port,
                &[
                    &["ACL", "SETUSER", "default", "on", "resetpass", &keep],
                    &["CLIENT", "KILL", "USER", "default"],
                ],
            )
            .await
            .context("revoke the add-on's previous Redis passwords")?;
            self.write_acl(&dir, &current)
        })
    }

    fn deprovision<'a>(
        &'a self,
        resource: Resource,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.supervisor
                .stop(&server_key(resource), STOP_GRACE)
                .await
                .context("stop the add-on's redis-server")?;
            lock(&self.started).remove(&resource.id);
            lock(&self.failing).remove(&resource.id);
            let dir = self.dir(resource);
            tokio::task::spawn_blocking(move || dir.remove())
                .await
                .context("remove the add-on's directory")?
        })
    }

    fn info<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<Vec<(String, String)>>> {
        Box::pin(async move {
            let mut state = State::from_json(state)?;
            let dir = self.existing_dir(resource)?;
            state.port = self.port(&dir, &state)?;
            let (status, fields) = match self.supervisor.supervises(&server_key(resource)) {
                false => (Status::Stopped, BTreeMap::new()),
                true => match self.administer(&dir, state.port, &[&["INFO"]]).await {
                    Ok(replies) => {
                        let text = replies.first().and_then(crate::resp::Reply::text);
                        (Status::Available, info::parse(&text.unwrap_or_default()))
                    }
                    Err(_) => (Status::Restarting, BTreeMap::new()),
                },
            };
            self.report_writes(resource, &fields);
            Ok(info::rows(plan, &state, status, &fields))
        })
    }

    fn configure<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
        state: &'a serde_json::Value,
        settings: &'a AddonConfig,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            let requested = config::requested_policy(settings)?;
            let mut state = State::from_json(state)?;
            let Some(policy) = requested else {
                return Ok(state.to_json());
            };
            let dir = self.existing_dir(resource)?;
            state.port = self.port(&dir, &state)?;
            let _changes = self.changes.lock().await;
            self.administer(
                &dir,
                state.port,
                &[&["CONFIG", "SET", "maxmemory-policy", policy]],
            )
            .await
            .context("set the add-on's maxmemory-policy")?;
            state.policy = policy;
            // For the supervisor's restarts; `resume` writes it from the state anyway.
            self.write_config(&dir, plan, &state)?;
            Ok(state.to_json())
        })
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let started: Vec<Uuid> = std::mem::take(&mut *lock(&self.started))
                .into_iter()
                .collect();
            let stops = started.iter().map(|&id| async move {
                let key = server_key(Resource { id });
                if let Err(error) = self.supervisor.stop(&key, STOP_GRACE).await {
                    tracing::warn!(
                        server = key,
                        error = format!("{error:#}"),
                        "stop redis-server"
                    );
                }
            });
            futures_util::future::join_all(stops).await;
        })
    }
}
