//! The formation: list, show, and scale or resize process types (one at a time or in a batch).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use wharf_api_types as api;
use wharf_model::{DynoSize, FormationUpdate, Quantity};

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::range::{page_by, Order, Page, RangeSpec};
use crate::views;
use crate::ApiState;

pub async fn list(
    State(state): State<ApiState>,
    ctx: AppCtx,
    headers: HeaderMap,
) -> ApiResult<Page<api::Formation>> {
    let spec = RangeSpec::from_headers(&headers, &["type", "id"], Order::Asc)?;
    let formation = state.store.formation(ctx.app.id).await?;
    let items = formation
        .iter()
        .map(|entry| views::formation(entry, &ctx.app))
        .collect();
    let field = spec.field.clone();
    Ok(page_by(
        items,
        |f: &api::Formation| match field.as_str() {
            "id" => f.id.clone(),
            _ => f.process_type.clone(),
        },
        &spec,
    ))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, process_type)): Path<(String, String)>,
) -> ApiResult<Json<api::Formation>> {
    let formation = state.store.formation(ctx.app.id).await?;
    let entry = formation
        .iter()
        .find(|e| e.process_type.as_str() == process_type || e.id.to_string() == process_type)
        .ok_or_else(|| ApiError::not_found("Couldn't find that formation."))?;
    Ok(Json(views::formation(entry, &ctx.app)))
}

pub async fn batch_update(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::FormationBatchUpdate>,
) -> ApiResult<Json<Vec<api::Formation>>> {
    let updates = body
        .updates
        .iter()
        .map(|update| {
            let process_type = update.process_type.clone().ok_or_else(|| {
                ApiError::invalid("Each formation update needs a \"type\" (the process type)")
            })?;
            parse_update(process_type, update)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    apply(&state, &ctx, &updates).await.map(Json)
}

pub async fn update(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, process_type)): Path<(String, String)>,
    Body(body): Body<api::FormationUpdate>,
) -> ApiResult<Json<api::Formation>> {
    let update = parse_update(process_type, &body)?;
    let changed = apply(&state, &ctx, &[update]).await?;
    changed
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Couldn't find that formation."))
}

async fn apply(
    state: &ApiState,
    ctx: &AppCtx,
    updates: &[FormationUpdate],
) -> ApiResult<Vec<api::Formation>> {
    let changed = state.store.update_formation(ctx.app.id, updates).await?;
    let scaled: Vec<String> = changed
        .iter()
        .map(|entry| format!("{}@{}:{}", entry.process_type, entry.quantity, entry.size))
        .collect();
    tracing::info!(app = %ctx.app.name, formation = scaled.join(" "), "scaled");
    state.changed(
        ctx.app.id,
        &[format!(
            "Scaled to {} by {}",
            scaled.join(" "),
            ctx.caller.account.email
        )],
    );
    Ok(changed
        .iter()
        .map(|entry| views::formation(entry, &ctx.app))
        .collect())
}

fn parse_update(process_type: String, update: &api::FormationUpdate) -> ApiResult<FormationUpdate> {
    let quantity = match &update.quantity {
        None => None,
        Some(api::QuantityValue::Number(n)) => Some(
            u32::try_from(*n)
                .map(Quantity::Absolute)
                .map_err(|_| ApiError::invalid(format!("Quantity {n} must be zero or more")))?,
        ),
        Some(api::QuantityValue::Text(text)) => Some(Quantity::parse(text)?),
    };
    let size_name = update
        .dyno_size
        .as_ref()
        .and_then(|s| s.name.clone().or_else(|| s.id.clone()))
        .or_else(|| update.size.clone());
    let size = size_name
        .map(|name| {
            DynoSize::ALL
                .into_iter()
                .find(|size| views::size_id(*size) == name)
                .map_or_else(|| DynoSize::parse(&name), Ok)
        })
        .transpose()?;
    Ok(FormationUpdate {
        process_type,
        quantity,
        size,
    })
}
