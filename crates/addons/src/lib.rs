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
mod password;
pub mod postgres;
pub mod redis;
mod registry;
pub mod resp;

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use uuid::Uuid;

pub use exposure::{AddonServer, DynoAccess, DynoNetwork};
pub use password::random_password;
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
    /// and its data. Succeeds when the resource is already gone.
    fn deprovision<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}
