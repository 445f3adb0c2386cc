//! The dashboard: its page at `/`, its files at `/assets/...` (embedded, see
//! `crates/dashboard`), and `GET /app-summaries`, the one request behind its apps page. The
//! page talks to the same API as the CLI, with a session cookie instead of a key.
//!
//! Why routes in the fragment (`/#/apps/NAME/metrics`): the API owns every path (`/apps/...`
//! is JSON, `/{repo}/info/refs` is git), so the dashboard claims only `/` and `/assets/`, and
//! no app name or API path can ever shadow a page or be shadowed by one.

use axum::extract::{Path, State};
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf_api_types as api;
use wharf_dashboard::{Asset, CONTENT_SECURITY_POLICY, INDEX};
use wharf_dynos::DynoState;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::views::timestamp;
use crate::ApiState;

/// `GET /`: the dashboard's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve(INDEX, &headers)
}

/// `GET /assets/{*path}`: one of the dashboard's embedded files.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = wharf_dashboard::asset(path) else {
        return ApiError::not_found(format!("The dashboard has no file {path:?}.")).into_response();
    };
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body(asset, headers)
    };
    let out = response.headers_mut();
    out.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    out.insert(
        ETAG,
        HeaderValue::from_str(&asset.etag).expect("an ETag is hex in quotes"),
    );
    // Revalidated on every load (a 304 costs one round trip), so an upgraded server's files
    // are used at once.
    out.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(VARY, HeaderValue::from_static("accept-encoding"));
    out.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn body(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let gzip_accepted = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accepted| {
            accepted.split(',').any(|coding| {
                let mut parts = coding.split(';');
                let name = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00"));
                name.eq_ignore_ascii_case("gzip") && !refused
            })
        });
    match &asset.gzip {
        Some(gzip) if gzip_accepted => {
            let mut response = gzip.clone().into_response();
            response
                .headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        _ => asset.bytes.into_response(),
    }
}

/// `GET /app-summaries`: every app the caller may see, by name, with its web URL, formation,
/// whether it sleeps (Eco) and its live release.
pub async fn app_summaries(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<api::AppSummary>>> {
    let summaries = state.store.app_summaries(&caller.account).await?;
    Ok(Json(
        summaries
            .iter()
            .map(|summary| {
                let app = &summary.access.app;
                let web_eco = summary
                    .formation
                    .iter()
                    .any(|entry| entry.process_type.as_str() == "web" && entry.size.sleeps());
                let sleeping = web_eco.then(|| {
                    let dynos = state.dynos.dynos(app.id);
                    let web: Vec<_> = dynos.iter().filter(|d| d.process_type == "web").collect();
                    !web.is_empty() && web.iter().all(|d| d.state == DynoState::Idle)
                });
                api::AppSummary {
                    id: app.id.to_string(),
                    name: app.name.to_string(),
                    web_url: state.config.web_url(app.name.as_str()),
                    owner: app.owner.email.to_string(),
                    maintenance: app.maintenance,
                    formation: summary
                        .formation
                        .iter()
                        .map(|entry| api::FormationSummary {
                            process_type: entry.process_type.to_string(),
                            quantity: entry.quantity,
                            size: entry.size.name().to_owned(),
                        })
                        .collect(),
                    sleeping,
                    last_release: Some(api::ReleaseSummary {
                        version: summary.release.version,
                        created_at: timestamp(summary.release.created_at),
                        description: summary.release.description.clone(),
                    }),
                }
            })
            .collect(),
    ))
}
