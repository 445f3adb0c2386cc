//! SNI endpoints: the certificates (chain and private key) the router serves for an app's
//! custom domains. Chains and keys are checked before they are kept; the key is never shown.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use rand::Rng;
use time::OffsetDateTime;
use wharf_api_types as api;
use wharf_model::{generate_sni_endpoint_name, SniEndpoint};
use wharf_store::StoreError;

use super::AppCtx;
use crate::certificate;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::range::{page_by, Order, Page, RangeSpec};
use crate::views::timestamp;
use crate::ApiState;

/// How many generated names to try before giving up on finding a free one.
const NAME_ATTEMPTS: usize = 8;

fn view(ctx: &AppCtx, endpoint: &SniEndpoint) -> ApiResult<api::SniEndpoint> {
    let facts = certificate::facts(&endpoint.certificate_chain)
        .map_err(|error| ApiError::internal(&error.context("read a stored certificate")))?;
    Ok(api::SniEndpoint {
        id: endpoint.id.to_string(),
        name: endpoint.name.clone(),
        display_name: None,
        certificate_chain: endpoint.certificate_chain.clone(),
        domains: endpoint.domains.clone(),
        app: api::NamedRef {
            id: ctx.app.id.to_string(),
            name: ctx.app.name.to_string(),
        },
        ssl_cert: api::SslCert {
            id: endpoint.id.to_string(),
            cert_domains: facts.names,
            starts_at: timestamp(facts.starts_at),
            expires_at: timestamp(facts.expires_at),
            issuer: facts.issuer,
            subject: facts.subject,
            ca_signed: facts.ca_signed,
            self_signed: facts.self_signed,
        },
        created_at: timestamp(endpoint.created_at),
        updated_at: timestamp(endpoint.updated_at),
    })
}

pub async fn list(
    State(state): State<ApiState>,
    ctx: AppCtx,
    headers: HeaderMap,
) -> ApiResult<Page<api::SniEndpoint>> {
    let spec = RangeSpec::from_headers(&headers, &["id", "name"], Order::Asc)?;
    let items = state
        .store
        .sni_endpoints(ctx.app.id)
        .await?
        .iter()
        .map(|endpoint| view(&ctx, endpoint))
        .collect::<ApiResult<Vec<_>>>()?;
    let field = spec.field.clone();
    Ok(page_by(
        items,
        |e: &api::SniEndpoint| match field.as_str() {
            "name" => e.name.clone(),
            _ => e.id.clone(),
        },
        &spec,
    ))
}

pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::SniEndpointCreate>,
) -> ApiResult<(StatusCode, Json<api::SniEndpoint>)> {
    certificate::validate(
        &body.certificate_chain,
        &body.private_key,
        OffsetDateTime::now_utc(),
    )?;
    let endpoint = add_with_generated_name(&state, &ctx, &body).await?;
    tracing::info!(app = %ctx.app.name, endpoint = %endpoint.name, "added SNI endpoint");
    state.changed(
        ctx.app.id,
        &[format!(
            "Add SNI endpoint {} by {}",
            endpoint.name, ctx.caller.account.email
        )],
    );
    Ok((StatusCode::CREATED, Json(view(&ctx, &endpoint)?)))
}

async fn add_with_generated_name(
    state: &ApiState,
    ctx: &AppCtx,
    body: &api::SniEndpointCreate,
) -> ApiResult<SniEndpoint> {
    for _ in 0..NAME_ATTEMPTS {
        let name = {
            let mut rng = rand::thread_rng();
            generate_sni_endpoint_name(rng.gen(), rng.gen())
        };
        let added = state
            .store
            .add_sni_endpoint(
                ctx.app.id,
                &name,
                &body.certificate_chain,
                &body.private_key,
            )
            .await;
        match added {
            Err(StoreError::Conflict(_)) => continue,
            other => return Ok(other?),
        }
    }
    Err(ApiError::conflict(
        "Could not find a free SNI endpoint name: try again",
    ))
}

async fn find(state: &ApiState, ctx: &AppCtx, identity: &str) -> ApiResult<SniEndpoint> {
    state
        .store
        .sni_endpoint(ctx.app.id, identity)
        .await?
        .ok_or_else(|| ApiError::not_found("Couldn't find that SNI endpoint."))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<api::SniEndpoint>> {
    let endpoint = find(&state, &ctx, &identity).await?;
    Ok(Json(view(&ctx, &endpoint)?))
}

/// Replaces the endpoint's certificate chain and key (a renewal).
pub async fn update(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
    Body(body): Body<api::SniEndpointCreate>,
) -> ApiResult<Json<api::SniEndpoint>> {
    let endpoint = find(&state, &ctx, &identity).await?;
    certificate::validate(
        &body.certificate_chain,
        &body.private_key,
        OffsetDateTime::now_utc(),
    )?;
    state
        .store
        .update_sni_endpoint(
            ctx.app.id,
            endpoint.id,
            &body.certificate_chain,
            &body.private_key,
        )
        .await?;
    tracing::info!(app = %ctx.app.name, endpoint = %endpoint.name, "updated SNI endpoint");
    state.changed(
        ctx.app.id,
        &[format!(
            "Update SNI endpoint {} by {}",
            endpoint.name, ctx.caller.account.email
        )],
    );
    let endpoint = find(&state, &ctx, &endpoint.id.to_string()).await?;
    Ok(Json(view(&ctx, &endpoint)?))
}

/// Removes the endpoint; the domains it served are left without one.
pub async fn destroy(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<api::SniEndpoint>> {
    let endpoint = find(&state, &ctx, &identity).await?;
    state
        .store
        .remove_sni_endpoint(ctx.app.id, endpoint.id)
        .await?;
    tracing::info!(app = %ctx.app.name, endpoint = %endpoint.name, "removed SNI endpoint");
    state.changed(
        ctx.app.id,
        &[format!(
            "Remove SNI endpoint {} by {}",
            endpoint.name, ctx.caller.account.email
        )],
    );
    Ok(Json(view(&ctx, &endpoint)?))
}
