//! Dynos: list and show them, restart or stop them (all, a process type, or one), as
//! Heroku's Dynos API does. The dyno manager does the work; these routes only ask it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf_api_types as api;
use wharf_dynos::{DynoInfo, Target};

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::views;
use crate::ApiState;

async fn current_release_id(state: &ApiState, ctx: &AppCtx, version: i64) -> String {
    match state.store.release_by_version(ctx.app.id, version).await {
        Ok(Some(release)) => release.id.to_string(),
        _ => String::new(),
    }
}

async fn view(state: &ApiState, ctx: &AppCtx, dyno: &DynoInfo) -> api::Dyno {
    let release_id = current_release_id(state, ctx, dyno.release_version).await;
    views::dyno(dyno, &ctx.app, release_id)
}

pub async fn list(State(state): State<ApiState>, ctx: AppCtx) -> Json<Vec<api::Dyno>> {
    let mut dynos = state.dynos.dynos(ctx.app.id);
    dynos.sort_by(|a, b| a.name.cmp(&b.name));
    let mut views = Vec::with_capacity(dynos.len());
    for dyno in &dynos {
        views.push(view(&state, &ctx, dyno).await);
    }
    Json(views)
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<api::Dyno>> {
    let dyno = state
        .dynos
        .dynos(ctx.app.id)
        .into_iter()
        .find(|d| d.name == name || d.id.to_string() == name)
        .ok_or_else(|| ApiError::not_found("Couldn't find that dyno."))?;
    Ok(Json(view(&state, &ctx, &dyno).await))
}

async fn act(state: &ApiState, ctx: &AppCtx, target: Target, stop: bool) -> ApiResult<Response> {
    let missing = match &target {
        Target::All => None,
        Target::Type(process_type) => Some(format!("No {process_type} dynos on {}.", ctx.app.name)),
        Target::Dyno(name) => Some(format!("Couldn't find that dyno ({name}).")),
    };
    let outcome = if stop {
        state.dynos.stop(ctx.app.id, target).await
    } else {
        state.dynos.restart(ctx.app.id, target).await
    };
    let count = outcome.map_err(|e| ApiError::internal(&e))?;
    if let (0, Some(message)) = (count, missing) {
        return Err(ApiError::not_found(message));
    }
    let verb = if stop { "Stop" } else { "Restart" };
    state.changed(
        ctx.app.id,
        &[format!("{verb} by {}", ctx.caller.account.email)],
    );
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response())
}

/// `DELETE /apps/{app}/dynos`: restart every dyno.
pub async fn restart_all(State(state): State<ApiState>, ctx: AppCtx) -> ApiResult<Response> {
    act(&state, &ctx, Target::All, false).await
}

/// `DELETE /apps/{app}/dynos/{name}`.
pub async fn restart(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    act(&state, &ctx, Target::Dyno(name), false).await
}

/// `DELETE /apps/{app}/formations/{type}`.
pub async fn restart_type(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, process_type)): Path<(String, String)>,
) -> ApiResult<Response> {
    act(&state, &ctx, Target::Type(process_type), false).await
}

/// `POST /apps/{app}/dynos/{name}/actions/stop`.
pub async fn stop(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    act(&state, &ctx, Target::Dyno(name), true).await
}

/// `POST /apps/{app}/formations/{type}/actions/stop`.
pub async fn stop_type(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, process_type)): Path<(String, String)>,
) -> ApiResult<Response> {
    act(&state, &ctx, Target::Type(process_type), true).await
}
