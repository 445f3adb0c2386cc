//! Add-on providers: the services an app can attach (a PostgreSQL database, a Redis), each
//! behind one small [`Provider`] trait, and the [`Registry`] that resolves the names users type
//! (`heroku-postgresql`, `wharf-redis:mini`) to a provider and plan.
//!
//! A provider provisions a *resource* for an add-on, hands back the config it needs (`URL` and
//! friends, named relative to the attachment: `DATABASE` + `_URL`), rotates its credentials in
//! two steps (new credentials first, the old ones revoked once the dynos run with the new
//! ones), and deprovisions it. Wharf keeps the add-on's record, its config and the provider's
//! opaque state in the store; a provider keeps nothing but the resource itself.
//!
//! Invariants:
//! - Every provider method is idempotent for a resource id: the API retries it after a crash
//!   (start-up reconciles unfinished add-ons by calling the same method again).
//! - Resource names derive from the add-on's id alone, so a retried `provision` finds what an
//!   interrupted one created.
//! - Passwords leave a provider only inside the config it returns; errors and logs never carry
//!   them.
//! - Nothing outside this crate names a concrete provider but the server's wiring: a third
//!   provider is one more file and one more `Registry::register` call.
//! - Apps' URLs name the server where dynos reach it ([`exposure::dyno_address`]), and a new
//!   add-on is refused while that server lets dynos in without a password, unless the
//!   operator accepted the risk ([`Registry::check_provisioning`]).

pub mod exposure;
pub mod managed_postgres;
pub mod managed_redis;
mod password;
pub mod postgres;
pub mod process;
pub mod redis;
mod registry;
pub mod resp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use futures_util::future::BoxFuture;
use uuid::Uuid;

pub use exposure::{AddonServer, DynoAccess, DynoNetwork};
pub use password::random_password;
pub use process::Supervisor;
pub use registry::{Registry, Resolved};

/// Config a provider returns, keyed by suffix: `{"URL": "postgres://..."}` becomes
/// `DATABASE_URL` for an attachment named `DATABASE`.
pub type AddonConfig = BTreeMap<String, String>;

/// What a service offers, as the add-on services and plans API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The canonical name (`wharf-postgresql`).
    pub name: String,
    /// Other names that resolve to it (`heroku-postgresql`), so Heroku habits and app.json
    /// files work.
    pub aliases: Vec<String>,
    /// For people (`Wharf Postgres`).
    pub human_name: String,
    /// The first attachment's name (`DATABASE`, so `DATABASE_URL`).
    pub default_attachment: String,
    /// Further attachments of the same service on one app are named `<prefix>_<COLOR>`
    /// (`HEROKU_POSTGRESQL_AMBER`).
    pub attachment_prefix: String,
    /// Add-on names start with it (`postgresql-curved-12345`).
    pub addon_name_prefix: String,
    pub plans: Vec<Plan>,
}

impl Service {
    /// The plan called `name` (without the `service:` prefix), or the default plan.
    pub fn plan(&self, name: Option<&str>) -> Option<&Plan> {
        match name {
            Some(name) => self.plans.iter().find(|plan| plan.name == name),
            None => self.plans.iter().find(|plan| plan.default),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Without the service prefix (`mini`).
    pub name: String,
    pub description: String,
    pub default: bool,
    pub limits: Limits,
}

/// What a plan allows. Providers that run their own servers enforce these; `None` is "no
/// limit of this kind" (an operator's server sets its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory the data may use (Redis `maxmemory`), in MB.
    pub memory_mb: Option<u64>,
    /// Connections open at once.
    pub connections: Option<u32>,
    /// Disk the data may use (a PostgreSQL database's size), in MB.
    pub storage_mb: Option<u64>,
    /// Backups kept: a new capture removes the oldest beyond it.
    pub backups: Option<u32>,
}

/// An error that is the user's to fix (an unknown setting, a backup that does not exist, a
/// destroy while a backup runs): the API answers 422 with its message, which never carries a
/// credential.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Something about one add-on its app's users should see in `wharf logs`, as a
/// `heroku[<source>]` line: its server restarted, its database went over the plan's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonEvent {
    pub resource: Uuid,
    /// `postgres`, `redis`.
    pub source: &'static str,
    pub message: String,
}

/// Where providers send [`AddonEvent`]s; the server wiring writes them to the apps' logs.
pub type Events = tokio::sync::mpsc::UnboundedSender<AddonEvent>;

/// One backup of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// `b001`, `b002`, ...: numbered per resource, never reused.
    pub name: String,
    pub created_at: SystemTime,
    /// Bytes.
    pub size: u64,
}

/// Backups of a service's resources, kept by Wharf (`pg:backups`).
pub trait Backups: Send + Sync {
    /// Takes a backup of `resource` now and returns it once complete; then removes the oldest
    /// beyond the plan's [`Limits::backups`]. A failed capture leaves no backup behind.
    fn capture<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
    ) -> BoxFuture<'a, anyhow::Result<Backup>>;

    /// The resource's backups, oldest first.
    fn list(&self, resource: Resource) -> BoxFuture<'_, anyhow::Result<Vec<Backup>>>;

    /// Replaces the data of `into` with backup `name` of `from` (the same resource or another
    /// of this service; the caller checked that the user may read `from`). [`Refused`] when
    /// there is no such backup.
    fn restore<'a>(
        &'a self,
        into: Resource,
        from: Resource,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// The file holding backup `name` of `resource`, for download (the format a user's tools
    /// read: `pg_restore` for PostgreSQL). [`Refused`] when there is no such backup.
    fn file<'a>(
        &'a self,
        resource: Resource,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<PathBuf>>;
}

/// The resource a provider manages for one add-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The add-on's id; every name a provider creates derives from it.
    pub id: Uuid,
}

impl Resource {
    /// A name made of the id alone (lowercase letters and digits), safe as a PostgreSQL
    /// identifier, a Redis user name and a key prefix: `addon_<32 hex digits>`.
    pub fn base_name(&self) -> String {
        format!("addon_{}", self.id.simple())
    }
}

/// What a provider returns when it provisions or rotates: the config for the app and its own
/// state, which Wharf stores with the add-on and hands back on later calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisioned {
    pub config: AddonConfig,
    pub state: serde_json::Value,
}

/// One add-on service. Implementations hold their own connections to the servers they manage.
///
/// Every method may be called again for the same resource after a crash or a retry and must
/// then do the same thing (or nothing); an error means nothing the caller can rely on changed,
/// and the caller will call again.
pub trait Provider: Send + Sync {
    /// The service and its plans. Constant for the provider's life.
    fn service(&self) -> &Service;

    /// The server apps' dynos connect to for this service's resources, as they reach it
    /// (the host in the URLs the provider hands out), when the provider was told where dynos
    /// reach it; `None` otherwise, or for a service whose resources live elsewhere (a
    /// partner's API). Constant for the provider's life: the firewall opens it, probes check
    /// it.
    fn dyno_server(&self) -> Option<AddonServer> {
        None
    }

    /// For a service that runs a server per resource: the address and the range of ports
    /// (inclusive) its servers listen on where dynos reach them, which the firewall opens.
    /// Constant for the provider's life.
    fn dyno_port_range(&self) -> Option<(std::net::IpAddr, u16, u16)> {
        None
    }

    /// Creates the resource (or finds the one an interrupted call created) with new
    /// credentials. Called when an add-on is created, and at start-up for add-ons whose
    /// provisioning was interrupted. `options` is the `config` of the create request.
    fn provision<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
        options: &'a AddonConfig,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>>;

    /// Makes new credentials while the old ones keep working, so that running dynos are not cut
    /// off before they restart with the new config. `state` is the current state.
    fn rotate<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>>;

    /// Revokes every credential of the resource but the ones `state` (the current state) names,
    /// and closes their connections. Called after a rotation once the dynos restarted, and at
    /// start-up for every add-on (finishing a rotation a crash interrupted).
    fn revoke_previous<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Revokes every credential at once (closing their connections) and destroys the resource
    /// and its data (its backups too). Succeeds when the resource is already gone;
    /// [`Refused`] while something must finish first (a backup being captured).
    fn deprovision<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Brings up what a provisioned resource needs running (its own server), with its data.
    /// Called at start-up for every provisioned add-on, before anything else touches it.
    fn resume<'a>(
        &'a self,
        _resource: Resource,
        _plan: &'a Plan,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// What `pg:info`/`redis:info` show: label and value rows, never a credential.
    fn info<'a>(
        &'a self,
        _resource: Resource,
        _plan: &'a Plan,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<Vec<(String, String)>>> {
        let service = self.service().name.clone();
        Box::pin(async move { Err(Refused(format!("{service} add-ons show no info")).into()) })
    }

    /// Changes the resource's settings (`{"maxmemory-policy": "allkeys-lru"}`) and returns
    /// its new state. [`Refused`] for a setting or value it does not know, saying which it
    /// knows.
    fn configure<'a>(
        &'a self,
        _resource: Resource,
        _plan: &'a Plan,
        _state: &'a serde_json::Value,
        _settings: &'a AddonConfig,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        let service = self.service().name.clone();
        Box::pin(async move { Err(Refused(format!("{service} add-ons have no settings")).into()) })
    }

    /// Empties the resource (`pg:reset`): every table, key and object gone, credentials kept.
    fn reset<'a>(
        &'a self,
        _resource: Resource,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let service = self.service().name.clone();
        Box::pin(async move { Err(Refused(format!("{service} add-ons cannot be reset")).into()) })
    }

    /// The service's backups, when it keeps them.
    fn backups(&self) -> Option<&dyn Backups> {
        None
    }

    /// What `resource` is busy with that destroying it must wait for (a backup being
    /// captured, a restore), said for the user; `None` when it may be destroyed now.
    fn busy(&self, _resource: Resource) -> Option<String> {
        None
    }

    /// Wharf is stopping cleanly: stop the servers the provider runs, letting them write
    /// their data out.
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
