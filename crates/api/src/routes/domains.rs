//! Domains: the app's own `<app>.<base-domain>` host (kind `heroku`, listed first) and the
//! custom domains added to it (kind `custom`), each optionally served with one of the app's
//! SNI endpoints. Wharf does no DNS verification: every domain's status is `none`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use wharf_api_types as api;
use wharf_model::{Domain, Hostname};
use wharf_store::StoreError;

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::range::{Order, Page, RangeSpec};
use crate::views::timestamp;
use crate::ApiState;

/// Wharf does not check DNS; the CLI prints "enqueued" for any other status.
const STATUS_NONE: &str = "none";

/// The app's own host: `<app>.<base-domain>`, which every custom domain's DNS points at.
fn app_host(state: &ApiState, ctx: &AppCtx) -> String {
    format!("{}.{}", ctx.app.name, state.config.base_domain)
}

fn app_ref(ctx: &AppCtx) -> api::NamedRef {
    api::NamedRef {
        id: ctx.app.id.to_string(),
        name: ctx.app.name.to_string(),
    }
}

/// The app's own host as a domain. Its id is the app's id: it has no row of its own.
fn default_view(state: &ApiState, ctx: &AppCtx) -> api::Domain {
    api::Domain {
        id: ctx.app.id.to_string(),
        hostname: app_host(state, ctx),
        kind: "heroku".into(),
        cname: None,
        status: STATUS_NONE.into(),
        acm_status: None,
        acm_status_reason: None,
        sni_endpoint: None,
        app: app_ref(ctx),
        created_at: timestamp(ctx.app.created_at),
        updated_at: timestamp(ctx.app.created_at),
    }
}

fn view(state: &ApiState, ctx: &AppCtx, domain: &Domain) -> api::Domain {
    api::Domain {
        id: domain.id.to_string(),
        hostname: domain.hostname.clone(),
        kind: "custom".into(),
        cname: Some(app_host(state, ctx)),
        status: STATUS_NONE.into(),
        acm_status: None,
        acm_status_reason: None,
        sni_endpoint: domain.sni_endpoint.as_ref().map(|e| api::NamedRef {
            id: e.id.to_string(),
            name: e.name.clone(),
        }),
        app: app_ref(ctx),
        created_at: timestamp(domain.created_at),
        updated_at: timestamp(domain.updated_at),
    }
}

/// `GET /apps/{app}/domains`: the app's own host first, then custom domains oldest first.
/// `Range: id ..; max=N` pages in that order; the last page answers 200.
pub async fn list(
    State(state): State<ApiState>,
    ctx: AppCtx,
    headers: HeaderMap,
) -> ApiResult<Page<api::Domain>> {
    let spec = RangeSpec::from_headers(&headers, &["id", "hostname"], Order::Asc)?;
    let mut items = vec![default_view(&state, &ctx)];
    items.extend(
        state
            .store
            .domains(ctx.app.id)
            .await?
            .iter()
            .map(|domain| view(&state, &ctx, domain)),
    );
    Ok(page_in_order(items, &spec))
}

/// Pages a list in its own order: `start` and `end` name items (by the range's field), and a
/// page continues after the last item of the one before.
fn page_in_order(mut items: Vec<api::Domain>, spec: &RangeSpec) -> Page<api::Domain> {
    if spec.order == Order::Desc {
        items.reverse();
    }
    let key = |domain: &api::Domain| match spec.field.as_str() {
        "hostname" => domain.hostname.clone(),
        _ => domain.id.clone(),
    };
    let first = match &spec.start {
        Some(start) => match items.iter().position(|d| key(d) == *start) {
            Some(at) if spec.start_exclusive => at + 1,
            Some(at) => at,
            None => items.len(),
        },
        None => 0,
    };
    let last = match &spec.end {
        Some(end) => items
            .iter()
            .position(|d| key(d) == *end)
            .map_or(items.len(), |at| at + 1),
        None => items.len(),
    };
    let selected: Vec<api::Domain> = items.into_iter().take(last).skip(first).collect();
    let max = spec.max as usize;
    let more = selected.len() > max;
    let page: Vec<api::Domain> = selected.into_iter().take(max).collect();
    let next_range = if more {
        page.last().map(|last| spec.next_after(&key(last)))
    } else {
        None
    };
    Page {
        items: page,
        next_range,
    }
}

/// The app's SNI endpoint named by id or name, as `POST` and `PATCH` bodies give it.
async fn endpoint_id(
    state: &ApiState,
    ctx: &AppCtx,
    id_or_name: Option<&str>,
) -> ApiResult<Option<uuid::Uuid>> {
    let Some(id_or_name) = id_or_name else {
        return Ok(None);
    };
    let endpoint = state
        .store
        .sni_endpoint(ctx.app.id, id_or_name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Couldn't find SNI endpoint {id_or_name} on {}: list them with `wharf certs`",
                ctx.app.name
            ))
        })?;
    Ok(Some(endpoint.id))
}

pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::DomainCreate>,
) -> ApiResult<(StatusCode, Json<api::Domain>)> {
    let hostname = Hostname::parse(&body.hostname, &state.config.base_domain)?;
    let endpoint = endpoint_id(&state, &ctx, body.sni_endpoint.as_deref()).await?;
    let domain = match state
        .store
        .add_domain(ctx.app.id, &hostname, endpoint)
        .await
    {
        Err(StoreError::Conflict(message)) => return Err(ApiError::invalid(message)),
        other => other?,
    };
    tracing::info!(app = %ctx.app.name, hostname = %hostname, "added domain");
    state.changed(
        ctx.app.id,
        &[format!(
            "Add {hostname} domain by {}",
            ctx.caller.account.email
        )],
    );
    Ok((StatusCode::CREATED, Json(view(&state, &ctx, &domain))))
}

/// The app's custom domain named by the path (id or hostname). The app's own host answers a
/// 422 for changes, since it cannot be changed or removed.
async fn find(state: &ApiState, ctx: &AppCtx, identity: &str) -> ApiResult<Domain> {
    if let Some(domain) = state.store.domain(ctx.app.id, identity).await? {
        return Ok(domain);
    }
    if is_default(state, ctx, identity) {
        return Err(ApiError::invalid(format!(
            "{} is the app's own hostname: it can't be changed or removed",
            app_host(state, ctx)
        )));
    }
    Err(ApiError::not_found("Couldn't find that domain."))
}

fn is_default(state: &ApiState, ctx: &AppCtx, identity: &str) -> bool {
    identity == ctx.app.id.to_string() || identity.eq_ignore_ascii_case(&app_host(state, ctx))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<api::Domain>> {
    if is_default(&state, &ctx, &identity) {
        return Ok(Json(default_view(&state, &ctx)));
    }
    let domain = find(&state, &ctx, &identity).await?;
    Ok(Json(view(&state, &ctx, &domain)))
}

pub async fn update(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
    Body(body): Body<api::DomainUpdate>,
) -> ApiResult<Json<api::Domain>> {
    let domain = find(&state, &ctx, &identity).await?;
    let endpoint = endpoint_id(&state, &ctx, body.sni_endpoint.as_deref()).await?;
    let domain = state
        .store
        .set_domain_sni_endpoint(ctx.app.id, domain.id, endpoint)
        .await?;
    tracing::info!(app = %ctx.app.name, hostname = %domain.hostname, "updated domain");
    // No log line (Heroku writes none), but whoever follows the app's changes hears of it.
    state.changed(ctx.app.id, &[]);
    Ok(Json(view(&state, &ctx, &domain)))
}

pub async fn destroy(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<api::Domain>> {
    let domain = find(&state, &ctx, &identity).await?;
    state.store.remove_domain(ctx.app.id, domain.id).await?;
    tracing::info!(app = %ctx.app.name, hostname = %domain.hostname, "removed domain");
    state.changed(
        ctx.app.id,
        &[format!(
            "Remove {} domain by {}",
            domain.hostname, ctx.caller.account.email
        )],
    );
    Ok(Json(view(&state, &ctx, &domain)))
}
