//! Wharf's control-plane HTTP API, in the shapes of Heroku's Platform API v3 so that Heroku's
//! own clients work: accounts and keys, apps, config vars, the release ledger, the formation,
//! collaborators, slugs and dyno sizes.
//!
//! Invariants:
//! - Every route but `/health`, the dashboard's files and its log-in needs a valid API key or
//!   dashboard session ([`auth::require_key`]); a caller sees only apps it owns or
//!   collaborates on, and any other app answers 404 exactly as a missing one does.
//! - Handlers validate everything before they write, and each write is one store call (one
//!   transaction): a refused request changes nothing.
//! - Responses are JSON with `Content-Type: application/json`; errors are
//!   `{"id", "message"}` with the right status, and 5xx bodies carry no internals.

pub mod addons;
pub mod auth;
mod certificate;
mod destination;
mod error;
pub mod git;
mod json;
mod range;
mod remote_one_offs;
pub mod rendezvous;
pub mod routes;
mod tls_listener;
mod views;

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use wharf_build::builder::Builder;
use wharf_dynos::DynoManager;
use wharf_store::Store;

pub(crate) use wharf_build::builder::random_token;

pub use error::{ApiError, ApiResult};

/// What the API needs to know about the server it is part of.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where clients reach this API, without a trailing slash (`http://127.0.0.1:5000`).
    pub public_url: String,
    /// Apps are served at `<app>.<base_domain>`.
    pub base_domain: String,
    /// The router's HTTP port, for apps' web URLs (left out of the URL when it is 80).
    pub router_port: u16,
    /// All of Wharf's state on disk.
    pub data_dir: std::path::PathBuf,
    /// Where processes on this host reach the API (for repository hooks).
    pub internal_url: String,
    /// The `wharf` binary, which repository hooks run.
    pub wharf_binary: std::path::PathBuf,
    /// The rendezvous listener's port (one-off dynos' `attach_url`s), on the public host.
    pub rendezvous_port: u16,
    /// How long a dashboard session lasts from its log-in.
    pub session_lifetime: std::time::Duration,
}

impl ApiConfig {
    pub fn web_url(&self, app: &str) -> String {
        match self.router_port {
            80 => format!("http://{app}.{}/", self.base_domain),
            port => format!("http://{app}.{}:{port}/", self.base_domain),
        }
    }

    pub fn git_url(&self, app: &str) -> String {
        format!("{}/{app}.git", self.public_url)
    }
}

/// Shared by every handler: cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub builder: Builder,
    pub dynos: DynoManager,
    pub pushes: git::Pushes,
    pub log_sessions: routes::LogSessions,
    pub rendezvous: rendezvous::Rendezvous,
    /// The apps' running log drains.
    pub drains: wharf_logs::Drains,
    /// Where tenants' URLs may point (drains, checked when added; the drains check again on
    /// every connection with their own copy).
    pub outbound: wharf_outbound::Policy,
    /// The add-on services this server offers (none unless [`ApiState::with_addons`]).
    pub addons: wharf_addons::Registry,
    /// Changes whenever what a host should run may have changed; agents read their desired
    /// state again when it does (see [`ApiState::generation`]).
    generation: Arc<std::sync::atomic::AtomicU64>,
    /// The route table every host's router uses (`GET /agent/routes`); none until the control
    /// plane's own router has a table it trusts (see [`ApiState::publish_agent_routes`]).
    agent_routes: Arc<tokio::sync::watch::Sender<Option<Arc<wharf_api_types::AgentRoutes>>>>,
    /// One-off dynos placed on hosts, until their agents start them.
    pub(crate) remote_one_offs: remote_one_offs::RemoteOneOffs,
    /// Restarts and stops of dynos on hosts, until their agents take them.
    pub(crate) remote_actions: remote_one_offs::RemoteActions,
    /// Cancelled once a listener serving this state stops accepting: requests that wait (the
    /// agents' long polls) answer at once, so that the server stops without waiting for them.
    closing: tokio_util::sync::CancellationToken,
}

impl ApiState {
    pub fn new(store: Store, config: ApiConfig, builder: Builder, dynos: DynoManager) -> ApiState {
        ApiState {
            store,
            config: Arc::new(config),
            builder,
            drains: drains(&dynos, wharf_outbound::Policy::default()),
            outbound: wharf_outbound::Policy::default(),
            dynos,
            pushes: git::Pushes::default(),
            log_sessions: routes::LogSessions::default(),
            rendezvous: rendezvous::Rendezvous::default(),
            addons: wharf_addons::Registry::new(),
            // Random, so that an agent never mistakes a restarted control plane's count for
            // the one it last saw.
            generation: Arc::new(std::sync::atomic::AtomicU64::new(rand::random())),
            agent_routes: Arc::new(tokio::sync::watch::Sender::new(None)),
            closing: tokio_util::sync::CancellationToken::new(),
            remote_one_offs: remote_one_offs::RemoteOneOffs::default(),
            remote_actions: remote_one_offs::RemoteActions::default(),
        }
    }

    /// Resolves once a listener serving this state stopped accepting (see [`serve`]).
    pub async fn closing(&self) {
        self.closing.cancelled().await;
    }

    /// Hands the hosts' routers a new table (its `version` is set here, when it differs from
    /// the last one). The control plane calls it only once the table has every host's dynos:
    /// until then agents keep the table they had.
    pub fn publish_agent_routes(&self, mut routes: wharf_api_types::AgentRoutes) {
        self.agent_routes.send_if_modified(|current| {
            let version = match current {
                Some(current) => {
                    routes.version = current.version;
                    if **current == routes {
                        return false;
                    }
                    current.version.wrapping_add(1)
                }
                // Random, so that an agent never takes a restarted control plane's first
                // table for the one it has.
                None => rand::random(),
            };
            routes.version = version;
            *current = Some(Arc::new(routes));
            true
        });
    }

    /// The hosts' route table as it changes.
    pub fn agent_routes(
        &self,
    ) -> tokio::sync::watch::Receiver<Option<Arc<wharf_api_types::AgentRoutes>>> {
        self.agent_routes.subscribe()
    }

    /// Lets tenants' URLs reach what `policy` allows (by default no internal network): for
    /// drains when they are added and on every connection. Call it before any drain starts:
    /// it replaces the drains runner.
    pub fn with_outbound(mut self, policy: wharf_outbound::Policy) -> ApiState {
        self.drains = drains(&self.dynos, policy.clone());
        self.outbound = policy;
        self
    }

    /// Offers the add-on services of `registry`.
    pub fn with_addons(mut self, registry: wharf_addons::Registry) -> ApiState {
        self.addons = registry;
        self
    }
}

fn drains(dynos: &DynoManager, policy: wharf_outbound::Policy) -> wharf_logs::Drains {
    wharf_logs::Drains::new(dynos.logs().clone(), policy)
        .expect("the built-in TLS provider supports the default TLS versions")
}

impl ApiState {
    /// Something desired changed for the app (a release, the formation, the app itself): the
    /// dyno manager reconciles it now, and the app's log says who did what (`app[api]` lines,
    /// as Heroku writes them).
    pub(crate) fn changed(&self, app_id: uuid::Uuid, log_lines: &[String]) {
        for message in log_lines {
            self.dynos.logs().append(
                app_id,
                wharf_dynos::LogLine::now(wharf_dynos::LogSource::App, "api", message.clone()),
            );
        }
        self.dynos.notify(app_id);
        self.bump_generation();
        let store = self.store.clone();
        // Other processes (the scheduler of another control-plane process) hear of it too; a
        // lost announcement is made good by their next re-read.
        tokio::spawn(async move {
            if let Err(error) = store.announce(wharf_store::Change::App(app_id)).await {
                tracing::warn!("announce a change of app {app_id}: {error}");
            }
        });
    }

    /// The hosts changed (added, drained, removed, come up): the scheduler places dynos again
    /// and agents read their desired state again.
    pub(crate) async fn hosts_changed(&self) {
        self.bump_generation();
        if let Err(error) = self.store.announce(wharf_store::Change::Hosts).await {
            tracing::warn!("announce a change of hosts: {error}");
        }
    }

    /// What agents compare to know whether to read their desired state again.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Something any host runs may have changed (in this process or, as the store's change
    /// feed says, another): agents read their desired state again at their next heartbeat.
    pub fn bump_generation(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ApiState {
    /// A caller's action made a release (a config change, a rollback, a slug released).
    pub(crate) fn release_created(&self, ctx: &routes::AppCtx, release: &wharf_model::Release) {
        tracing::info!(app = %ctx.app.name, release = release.version, "{}", release.description);
        let by = &ctx.caller.account.email;
        self.changed(
            ctx.app.id,
            &[
                format!("{} by {by}", release.description),
                format!("Release v{} created by {by}", release.version),
            ],
        );
    }

    /// A build ended: released (with its version) or not.
    pub(crate) fn released(
        &self,
        app_id: uuid::Uuid,
        by: &wharf_model::Email,
        version: Option<i64>,
    ) {
        match version {
            Some(version) => self.changed(
                app_id,
                &[
                    "Build succeeded".to_owned(),
                    format!("Release v{version} created by {by}"),
                ],
            ),
            None => self.changed(app_id, &["Build failed".to_owned()]),
        }
    }
}

/// Bumps the generation (agents then read their desired state again) on every change the
/// store announces, from this process or another, and at the feed's periodic re-reads, until
/// `shutdown` resolves.
pub async fn follow_changes(
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut changes = state.store.changes();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = changes.next() => state.bump_generation(),
        }
    }
}

/// Every dyno the hosts holding a lease report, with its host's name. A host whose lease ran
/// out is left out (its dynos are being started elsewhere), as is a report that does not
/// parse.
pub async fn reported_dynos(
    store: &Store,
) -> Result<Vec<(String, wharf_api_types::AgentDyno)>, wharf_store::StoreError> {
    let now = time::OffsetDateTime::now_utc();
    let mut found = Vec::new();
    for (host, report) in store.host_reports().await? {
        if !matches!(
            host.state(now),
            wharf_model::HostState::Up | wharf_model::HostState::Draining
        ) {
            continue;
        }
        let Ok(dynos) = serde_json::from_str::<Vec<wharf_api_types::AgentDyno>>(&report) else {
            tracing::warn!(host = %host.name, "a host's report of its dynos is unreadable");
            continue;
        };
        found.extend(dynos.into_iter().map(|dyno| (host.name.to_string(), dyno)));
    }
    Ok(found)
}

/// The whole API as an axum router.
pub fn router(state: ApiState) -> Router {
    routes::build(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = state.closing.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(close_on(shutdown, closing))
        .await
}

/// `shutdown`, which also tells the requests that wait to answer now.
async fn close_on(
    shutdown: impl std::future::Future<Output = ()>,
    closing: tokio_util::sync::CancellationToken,
) {
    shutdown.await;
    closing.cancel();
}

/// Like [`serve`], over TLS with `tls`'s certificate: the same API and git smart HTTP at
/// `https://` URLs.
pub async fn serve_tls(
    listener: TcpListener,
    tls: &tokio_rustls::rustls::ServerConfig,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = state.closing.clone();
    let router = router(state).layer(axum::Extension(routes::OverTls));
    axum::serve(tls_listener::TlsListener::new(listener, tls), router)
        .with_graceful_shutdown(close_on(shutdown, closing))
        .await
}
