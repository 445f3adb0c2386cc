//! The route table: every path the API serves, who may call it, and the handlers.

mod account;
mod addon_actions;
mod addons;
mod agent;
mod apps;
mod buildpack_registrations;
mod builds;
mod collaborators;
mod config_vars;
mod dashboard;
mod domains;
mod drains;
mod dynos;
mod features;
mod formation;
mod hosts;
mod logs;
mod metrics;
mod push;
mod releases;
mod session;
mod sizes;
mod slugs;
mod sni_endpoints;
mod stacks;

use axum::extract::{DefaultBodyLimit, FromRequestParts, RawPathParams, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use wharf_model::App;
use wharf_store::Role;

pub use logs::LogSessions;
pub use session::OverTls;

use crate::auth::{require_key, Caller};
use crate::error::{ApiError, ApiResult};
use crate::json::JSON_BODY_LIMIT;
use crate::ApiState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key.
    Public,
    /// Any valid key.
    Account,
    /// Admins only.
    Admin,
    /// The app's owner and collaborators; anyone else gets 404.
    App,
    /// git over HTTP: Basic auth with an API key of the app's owner or a collaborator.
    Git,
    /// Anyone holding the secret in the URL (upload, output and hook URLs the API hands out).
    Capability,
    /// The dashboard's log-in: an e-mail address and key in the body, or the session cookie.
    Session,
    /// A host's agent: Bearer with the credential `POST /hosts` issued; API keys are refused.
    Host,
}

/// Every route the API serves (the tests check this list against the router and prove each
/// route refuses callers it must refuse).
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/health", Access::Public),
    // The dashboard: its page, its files, its log-in, and its apps list in one request.
    ("GET", "/", Access::Public),
    ("GET", "/assets/{*path}", Access::Public),
    ("POST", "/session", Access::Session),
    ("GET", "/session", Access::Session),
    ("DELETE", "/session", Access::Session),
    ("GET", "/app-summaries", Access::Account),
    ("GET", "/account", Access::Account),
    ("POST", "/oauth/authorizations", Access::Account),
    ("GET", "/users", Access::Admin),
    ("POST", "/users", Access::Admin),
    ("GET", "/users/{user}/apps", Access::Account),
    ("GET", "/dyno-sizes", Access::Account),
    ("GET", "/dyno-sizes/{size}", Access::Account),
    ("GET", "/stacks", Access::Account),
    ("GET", "/stacks/{stack}", Access::Account),
    ("GET", "/apps", Access::Account),
    ("POST", "/apps", Access::Account),
    ("GET", "/apps/{app}", Access::App),
    ("PATCH", "/apps/{app}", Access::App),
    ("DELETE", "/apps/{app}", Access::App),
    ("GET", "/apps/{app}/config-vars", Access::App),
    ("PATCH", "/apps/{app}/config-vars", Access::App),
    ("GET", "/apps/{app}/releases", Access::App),
    ("POST", "/apps/{app}/releases", Access::App),
    ("GET", "/apps/{app}/releases/{release}", Access::App),
    (
        "GET",
        "/apps/{app}/releases/{release}/config-vars",
        Access::App,
    ),
    ("GET", "/apps/{app}/formation", Access::App),
    ("PATCH", "/apps/{app}/formation", Access::App),
    ("GET", "/apps/{app}/formation/{type}", Access::App),
    ("PATCH", "/apps/{app}/formation/{type}", Access::App),
    ("GET", "/apps/{app}/collaborators", Access::App),
    ("POST", "/apps/{app}/collaborators", Access::App),
    (
        "GET",
        "/apps/{app}/collaborators/{collaborator}",
        Access::App,
    ),
    (
        "DELETE",
        "/apps/{app}/collaborators/{collaborator}",
        Access::App,
    ),
    ("POST", "/apps/{app}/slugs", Access::App),
    ("GET", "/apps/{app}/slugs/{slug}", Access::App),
    ("GET", "/apps/{app}/builds", Access::App),
    ("POST", "/apps/{app}/builds", Access::App),
    ("GET", "/apps/{app}/builds/{build}", Access::App),
    ("DELETE", "/apps/{app}/build-cache", Access::App),
    ("POST", "/apps/{app}/sources", Access::App),
    ("GET", "/apps/{app}/buildpack-installations", Access::App),
    ("PUT", "/apps/{app}/buildpack-installations", Access::App),
    // Wharf's own: any user may list the names (admins also see the directories).
    ("GET", "/buildpack-registrations", Access::Account),
    ("POST", "/buildpack-registrations", Access::Admin),
    ("DELETE", "/buildpack-registrations/{name}", Access::Admin),
    // Wharf's own: the hosts that run dynos, and their agents' side.
    ("GET", "/hosts", Access::Admin),
    ("POST", "/hosts", Access::Admin),
    ("GET", "/hosts/{host}", Access::Admin),
    ("PATCH", "/hosts/{host}", Access::Admin),
    ("DELETE", "/hosts/{host}", Access::Admin),
    ("PUT", "/agent/heartbeat", Access::Host),
    ("GET", "/agent/desired", Access::Host),
    ("GET", "/agent/slugs/{slug}", Access::Host),
    ("POST", "/agent/logs", Access::Host),
    ("GET", "/agent/routes", Access::Host),
    ("POST", "/agent/wake/{app}", Access::Host),
    ("GET", "/agent/one-offs/{id}/attach", Access::Host),
    ("GET", "/apps/{app}/dynos", Access::App),
    ("POST", "/apps/{app}/dynos", Access::App),
    ("DELETE", "/apps/{app}/dynos", Access::App),
    ("GET", "/apps/{app}/dynos/{dyno}", Access::App),
    ("DELETE", "/apps/{app}/dynos/{dyno}", Access::App),
    ("POST", "/apps/{app}/dynos/{dyno}/actions/stop", Access::App),
    ("DELETE", "/apps/{app}/formations/{type}", Access::App),
    (
        "POST",
        "/apps/{app}/formations/{type}/actions/stop",
        Access::App,
    ),
    ("POST", "/apps/{app}/log-sessions", Access::App),
    ("GET", "/apps/{app}/addons", Access::App),
    ("POST", "/apps/{app}/addons", Access::App),
    ("GET", "/apps/{app}/addons/{addon}", Access::App),
    ("DELETE", "/apps/{app}/addons/{addon}", Access::App),
    (
        "POST",
        "/apps/{app}/addons/{addon}/actions/rotate-credentials",
        Access::App,
    ),
    // Wharf's own: what `pg:*` and `redis:*` do.
    ("GET", "/apps/{app}/addons/{addon}/info", Access::App),
    ("PATCH", "/apps/{app}/addons/{addon}/settings", Access::App),
    (
        "POST",
        "/apps/{app}/addons/{addon}/actions/reset",
        Access::App,
    ),
    (
        "POST",
        "/apps/{app}/addons/{addon}/actions/restore",
        Access::App,
    ),
    ("GET", "/apps/{app}/addons/{addon}/backups", Access::App),
    ("POST", "/apps/{app}/addons/{addon}/backups", Access::App),
    (
        "GET",
        "/apps/{app}/addons/{addon}/backups/{backup}",
        Access::App,
    ),
    ("GET", "/apps/{app}/addon-attachments", Access::App),
    (
        "GET",
        "/apps/{app}/addon-attachments/{attachment}",
        Access::App,
    ),
    ("GET", "/addon-attachments", Access::Account),
    ("POST", "/addon-attachments", Access::Account),
    ("DELETE", "/addon-attachments/{attachment}", Access::Account),
    ("GET", "/addon-services", Access::Account),
    ("GET", "/addon-services/{service}/plans", Access::Account),
    ("POST", "/actions/addons/resolve", Access::Account),
    ("GET", "/addons", Access::Account),
    ("GET", "/addons/{addon}", Access::Account),
    ("GET", "/addons/{addon}/addon-attachments", Access::Account),
    (
        "POST",
        "/actions/addon-attachments/resolve",
        Access::Account,
    ),
    ("GET", "/apps/{app}/domains", Access::App),
    ("POST", "/apps/{app}/domains", Access::App),
    ("GET", "/apps/{app}/domains/{domain}", Access::App),
    ("PATCH", "/apps/{app}/domains/{domain}", Access::App),
    ("DELETE", "/apps/{app}/domains/{domain}", Access::App),
    ("GET", "/apps/{app}/sni-endpoints", Access::App),
    ("POST", "/apps/{app}/sni-endpoints", Access::App),
    ("GET", "/apps/{app}/sni-endpoints/{endpoint}", Access::App),
    ("PATCH", "/apps/{app}/sni-endpoints/{endpoint}", Access::App),
    (
        "DELETE",
        "/apps/{app}/sni-endpoints/{endpoint}",
        Access::App,
    ),
    ("GET", "/log-stream/{token}", Access::Capability),
    ("GET", "/apps/{app}/log-drains", Access::App),
    ("POST", "/apps/{app}/log-drains", Access::App),
    ("GET", "/apps/{app}/log-drains/{drain}", Access::App),
    ("DELETE", "/apps/{app}/log-drains/{drain}", Access::App),
    ("GET", "/apps/{app}/features", Access::App),
    ("GET", "/apps/{app}/features/{feature}", Access::App),
    ("PATCH", "/apps/{app}/features/{feature}", Access::App),
    ("GET", "/apps/{app}/dynos/{dyno}/metrics", Access::App),
    // Wharf's own: the metrics history (router, dynos, events) the dashboard charts.
    ("GET", "/apps/{app}/metrics/router", Access::App),
    ("GET", "/apps/{app}/metrics/dynos", Access::App),
    ("GET", "/apps/{app}/metrics/events", Access::App),
    ("PUT", "/sources/{token}", Access::Capability),
    ("GET", "/sources/{token}", Access::Capability),
    ("GET", "/build-output/{token}", Access::Capability),
    ("POST", "/internal/push/{token}", Access::Capability),
    ("GET", "/{repo}/info/refs", Access::Git),
    ("POST", "/{repo}/git-receive-pack", Access::Git),
    ("POST", "/{repo}/git-upload-pack", Access::Git),
];

pub(crate) fn build(state: ApiState) -> Router {
    let authenticated = Router::new()
        .route("/account", get(account::show))
        .route("/oauth/authorizations", post(account::authorize))
        .route(
            "/users",
            get(account::list_users).post(account::create_user),
        )
        .route("/users/{user}/apps", get(apps::list_for_user))
        .route("/dyno-sizes", get(sizes::list))
        .route("/dyno-sizes/{size}", get(sizes::show))
        .route("/stacks", get(stacks::list))
        .route("/stacks/{stack}", get(stacks::show))
        .route("/app-summaries", get(dashboard::app_summaries))
        .route("/apps", get(apps::list).post(apps::create))
        .route(
            "/apps/{app}",
            get(apps::show).patch(apps::update).delete(apps::destroy),
        )
        .route(
            "/apps/{app}/config-vars",
            get(config_vars::show).patch(config_vars::update),
        )
        .route(
            "/apps/{app}/releases",
            get(releases::list).post(releases::create),
        )
        .route("/apps/{app}/releases/{release}", get(releases::show))
        .route(
            "/apps/{app}/releases/{release}/config-vars",
            get(releases::config_vars),
        )
        .route(
            "/apps/{app}/formation",
            get(formation::list).patch(formation::batch_update),
        )
        .route(
            "/apps/{app}/formation/{type}",
            get(formation::show).patch(formation::update),
        )
        .route(
            "/apps/{app}/collaborators",
            get(collaborators::list).post(collaborators::create),
        )
        .route(
            "/apps/{app}/collaborators/{collaborator}",
            get(collaborators::show).delete(collaborators::destroy),
        )
        .route("/apps/{app}/slugs", post(slugs::create))
        .route("/apps/{app}/slugs/{slug}", get(slugs::show))
        .route("/apps/{app}/builds", get(builds::list).post(builds::create))
        .route("/apps/{app}/builds/{build}", get(builds::show))
        .route("/apps/{app}/build-cache", delete(builds::purge_cache))
        .route("/apps/{app}/sources", post(builds::create_source))
        .route(
            "/apps/{app}/buildpack-installations",
            get(builds::buildpacks).put(builds::set_buildpacks),
        )
        .route(
            "/buildpack-registrations",
            get(buildpack_registrations::list).post(buildpack_registrations::create),
        )
        .route(
            "/buildpack-registrations/{name}",
            delete(buildpack_registrations::destroy),
        )
        .route("/hosts", get(hosts::list).post(hosts::create))
        .route(
            "/hosts/{host}",
            get(hosts::show).patch(hosts::update).delete(hosts::destroy),
        )
        .route(
            "/apps/{app}/dynos",
            get(dynos::list)
                .post(dynos::create)
                .delete(dynos::restart_all),
        )
        .route(
            "/apps/{app}/dynos/{dyno}",
            get(dynos::show).delete(dynos::restart),
        )
        .route("/apps/{app}/dynos/{dyno}/actions/stop", post(dynos::stop))
        .route("/apps/{app}/formations/{type}", delete(dynos::restart_type))
        .route(
            "/apps/{app}/formations/{type}/actions/stop",
            post(dynos::stop_type),
        )
        .route("/apps/{app}/log-sessions", post(logs::create))
        .route(
            "/apps/{app}/log-drains",
            get(drains::list).post(drains::create),
        )
        .route(
            "/apps/{app}/log-drains/{drain}",
            get(drains::show).delete(drains::destroy),
        )
        .route("/apps/{app}/features", get(features::list))
        .route(
            "/apps/{app}/features/{feature}",
            get(features::show).patch(features::update),
        )
        .route(
            "/apps/{app}/dynos/{dyno}/metrics",
            get(features::dyno_metrics),
        )
        .route("/apps/{app}/metrics/router", get(metrics::router))
        .route("/apps/{app}/metrics/dynos", get(metrics::dynos))
        .route("/apps/{app}/metrics/events", get(metrics::events))
        .route("/apps/{app}/addons", get(addons::list).post(addons::create))
        .route(
            "/apps/{app}/addons/{addon}",
            get(addons::show).delete(addons::destroy),
        )
        .route(
            "/apps/{app}/addons/{addon}/actions/rotate-credentials",
            post(addons::rotate_credentials),
        )
        .route("/apps/{app}/addons/{addon}/info", get(addon_actions::info))
        .route(
            "/apps/{app}/addons/{addon}/settings",
            patch(addon_actions::configure),
        )
        .route(
            "/apps/{app}/addons/{addon}/actions/reset",
            post(addon_actions::reset),
        )
        .route(
            "/apps/{app}/addons/{addon}/actions/restore",
            post(addon_actions::restore),
        )
        .route(
            "/apps/{app}/addons/{addon}/backups",
            get(addon_actions::list_backups).post(addon_actions::capture_backup),
        )
        .route(
            "/apps/{app}/addons/{addon}/backups/{backup}",
            get(addon_actions::download_backup),
        )
        .route(
            "/apps/{app}/addon-attachments",
            get(addons::app_attachments),
        )
        .route(
            "/apps/{app}/addon-attachments/{attachment}",
            get(addons::app_attachment),
        )
        .route(
            "/addon-attachments",
            get(addons::all_attachments).post(addons::attach),
        )
        .route("/addon-attachments/{attachment}", delete(addons::detach))
        .route("/addon-services", get(addons::services))
        .route("/addon-services/{service}/plans", get(addons::plans))
        .route("/actions/addons/resolve", post(addons::resolve))
        .route("/addons", get(addons::all))
        .route("/addons/{addon}", get(addons::show_any))
        .route(
            "/addons/{addon}/addon-attachments",
            get(addons::addon_attachments),
        )
        .route(
            "/actions/addon-attachments/resolve",
            post(addons::resolve_attachment),
        )
        .route(
            "/apps/{app}/domains",
            get(domains::list).post(domains::create),
        )
        .route(
            "/apps/{app}/domains/{domain}",
            get(domains::show)
                .patch(domains::update)
                .delete(domains::destroy),
        )
        .route(
            "/apps/{app}/sni-endpoints",
            get(sni_endpoints::list).post(sni_endpoints::create),
        )
        .route(
            "/apps/{app}/sni-endpoints/{endpoint}",
            get(sni_endpoints::show)
                .patch(sni_endpoints::update)
                .delete(sni_endpoints::destroy),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    // These carry their own credentials: a secret in the URL, git's Basic auth, or a host's
    // credential.
    let unauthenticated = Router::new()
        .route(
            "/sources/{token}",
            get(builds::download_source).put(builds::upload_source),
        )
        .route("/build-output/{token}", get(builds::output))
        .route("/log-stream/{token}", get(logs::stream))
        .route("/internal/push/{token}", post(push::push))
        .route("/agent/heartbeat", put(agent::heartbeat))
        .route("/agent/desired", get(agent::desired))
        .route("/agent/slugs/{slug}", get(agent::slug))
        .route("/agent/routes", get(agent::routes))
        .route("/agent/wake/{app}", post(agent::wake))
        .route("/agent/one-offs/{id}/attach", get(agent::attach))
        .route("/agent/logs", post(agent::logs))
        .route("/{repo}/info/refs", get(crate::git::serve))
        .route("/{repo}/git-receive-pack", post(crate::git::serve))
        .route("/{repo}/git-upload-pack", post(crate::git::serve));
    Router::new()
        .route("/health", get(health))
        .route("/", get(dashboard::index))
        .route("/assets/{*path}", get(dashboard::asset))
        .route(
            "/session",
            get(session::show)
                .post(session::create)
                .delete(session::destroy),
        )
        .merge(authenticated)
        .merge(unauthenticated)
        .fallback(unknown_path)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(heroku_headers))
        .with_state(state)
}

/// Whether the server and its database answer. Needs no key.
async fn health(State(state): State<ApiState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "health check: store unreachable"
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The database is unreachable.",
            )
            .into_response()
        }
    }
}

async fn unknown_path() -> ApiError {
    ApiError::not_found(
        "The requested API endpoint was not found. Are you using the right HTTP verb?",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not support that HTTP verb.",
    )
}

/// Heroku's conventions around every request: any `version=3*` in `Accept` is served (another
/// version is refused), `Request-Id` is echoed (the first id of the client's list, else a new
/// one), and JSON answers say `application/json`.
async fn heroku_headers(request: Request, next: Next) -> Response {
    if let Some(version) = requested_version(&request) {
        if !version.starts_with('3') {
            return ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "not_acceptable",
                format!(
                    "API version {version:?} is not supported: send `Accept: {}`",
                    wharf_api_types::ACCEPT_V3
                ),
            )
            .into_response();
        }
    }
    let request_id = request
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|ids| {
            ids.split(',')
                .map(str::trim)
                .find(|id| valid_request_id(id))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("request-id", value);
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    security_headers(headers);
    response
}

/// What every answer tells a browser: never guess a type, never show this in a frame, never
/// send this URL on as a referrer, and (for anything but the dashboard's own files, which
/// carry their own policy) run and load nothing at all.
fn security_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if !headers.contains_key("content-security-policy") {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
}

fn requested_version(request: &Request) -> Option<String> {
    let accept = request.headers().get(ACCEPT)?.to_str().ok()?;
    let heroku = accept
        .split(',')
        .find(|part| part.contains("application/vnd.heroku+json"))?;
    heroku
        .split(';')
        .filter_map(|param| param.trim().strip_prefix("version="))
        .map(|v| v.trim().to_owned())
        .next()
}

fn valid_request_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The app named by the `{app}` path segment, as the caller may see it. Extracting it is the
/// access check: an app the caller may not see is a 404, as if it did not exist.
pub(crate) struct AppCtx {
    pub caller: Caller,
    pub app: App,
    pub role: Role,
}

impl AppCtx {
    /// Refuses callers who collaborate on the app but do not own it.
    pub fn require_owner(&self, action: &str) -> ApiResult<()> {
        match self.role {
            Role::Owner => Ok(()),
            Role::Collaborator => Err(ApiError::forbidden(format!(
                "Only the owner of {} ({}) can {action}.",
                self.app.name, self.app.owner.email
            ))),
        }
    }
}

impl FromRequestParts<ApiState> for AppCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let name = params
            .iter()
            .find(|(key, _)| *key == "app")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(ApiError::app_not_found)?;
        let access = state
            .store
            .app_for(&caller.account, &name)
            .await?
            .ok_or_else(ApiError::app_not_found)?;
        Ok(AppCtx {
            caller,
            app: access.app,
            role: access.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_in_the_router_is_in_the_table() {
        let source = include_str!("mod.rs");
        let build = &source[source.find("fn build").expect("build fn")..];
        let build = &build[..build.find("\n}\n").expect("end of build")];
        let mut paths: Vec<&str> = build
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"'))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        paths.sort_unstable();
        paths.dedup();
        let mut listed: Vec<&str> = ROUTES.iter().map(|(_, path, _)| *path).collect();
        listed.sort_unstable();
        listed.dedup();
        assert_eq!(paths, listed);
    }

    #[test]
    fn request_ids() {
        assert!(valid_request_id("7d3c2c5e-2a1b-4c8d-9e0f-123456789abc"));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(""));
    }
}
