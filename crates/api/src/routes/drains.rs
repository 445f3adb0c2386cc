//! Log drains in Heroku's shapes: `GET`/`POST /apps/{app}/log-drains`, `GET`/`DELETE
//! /apps/{app}/log-drains/{id, url or token}`. The store keeps them; the log router
//! (`wharf_logs::Drains`) runs them, and the server starts the stored ones on start-up.
//!
//! A drain's host is checked against the outbound policy when it is added (a drain pointing
//! at this server, its link or an internal network the operator has not opened is refused
//! with 422 and not stored) and again by the drains runner on every connection, since DNS may
//! answer differently later.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use wharf_api_types as api;
use wharf_logs::{DrainSpec, DrainTarget};
use wharf_store::LogDrain;

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::views::timestamp;
use crate::ApiState;

/// Heroku's limit, and a bound on the fan-out of every line.
pub const MAX_DRAINS_PER_APP: usize = 5;

fn view(ctx: &AppCtx, drain: &LogDrain) -> api::LogDrain {
    api::LogDrain {
        addon: None,
        app: api::NamedRef {
            id: ctx.app.id.to_string(),
            name: ctx.app.name.to_string(),
        },
        created_at: timestamp(drain.created_at),
        id: drain.id.to_string(),
        token: drain.token.clone(),
        updated_at: timestamp(drain.updated_at),
        url: drain.url.clone(),
    }
}

fn spec(drain: &LogDrain) -> DrainSpec {
    DrainSpec {
        id: drain.id,
        app_id: drain.app_id,
        token: drain.token.clone(),
        url: drain.url.clone(),
    }
}

pub async fn list(
    State(state): State<ApiState>,
    ctx: AppCtx,
) -> ApiResult<Json<Vec<api::LogDrain>>> {
    let drains = state.store.log_drains(ctx.app.id).await?;
    Ok(Json(drains.iter().map(|d| view(&ctx, d)).collect()))
}

pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::LogDrainCreate>,
) -> ApiResult<(StatusCode, Json<api::LogDrain>)> {
    let url = body.url.trim();
    DrainTarget::parse(url).map_err(ApiError::invalid)?;
    crate::destination::check(&state.outbound, "drains", url).await?;
    let drain = state
        .store
        .add_log_drain(ctx.app.id, url, MAX_DRAINS_PER_APP)
        .await?;
    state
        .drains
        .start(spec(&drain))
        .map_err(|error| ApiError::internal(&error))?;
    Ok((StatusCode::CREATED, Json(view(&ctx, &drain))))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, drain)): Path<(String, String)>,
) -> ApiResult<Json<api::LogDrain>> {
    let drains = state.store.log_drains(ctx.app.id).await?;
    drains
        .iter()
        .find(|d| d.id.to_string() == drain || d.url == drain || d.token == drain)
        .map(|d| Json(view(&ctx, d)))
        .ok_or_else(|| ApiError::not_found(format!("No drain {drain} on this app.")))
}

pub async fn destroy(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, drain)): Path<(String, String)>,
) -> ApiResult<Json<api::LogDrain>> {
    let removed = state.store.remove_log_drain(ctx.app.id, &drain).await?;
    state.drains.stop(removed.id);
    Ok(Json(view(&ctx, &removed)))
}

impl ApiState {
    /// Starts the stored drains and applies the stored `log-runtime-metrics` settings (once,
    /// at start-up). A drain whose URL no longer parses is skipped and logged.
    pub async fn restore_log_router(&self) -> anyhow::Result<()> {
        for drain in self.store.all_log_drains().await? {
            if let Err(error) = self.drains.start(spec(&drain)) {
                tracing::warn!(app = %drain.app_id, drain = %drain.id, "start log drain: {error:#}");
            }
        }
        let metrics = self.dynos.logs().metrics();
        for feature in self
            .store
            .all_app_features(wharf_logs::metrics::FEATURE)
            .await?
        {
            metrics.set_enabled(feature.app_id, feature.enabled);
        }
        Ok(())
    }
}
