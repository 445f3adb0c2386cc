//! Config vars: read them, and change them (a value sets, `null` removes), each change a new
//! release.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use wharf_model::ConfigChanges;

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::ApiState;

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let release = state.store.current_release(ctx.app.id).await?;
    Ok(Json(release.config.as_map().clone()))
}

/// Refuses the whole change if any key or value is bad; otherwise one transaction writes the
/// new config and its release.
pub async fn update(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<BTreeMap<String, Value>>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let mut pairs = Vec::with_capacity(body.len());
    for (key, value) in &body {
        let value = match value {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => {
                return Err(ApiError::invalid(format!(
                    "Config var {key} must be a string or null, not {other}"
                )))
            }
        };
        pairs.push((key.as_str(), value));
    }
    let changes = ConfigChanges::parse(pairs)?;
    let (config, release) = state
        .store
        .set_config(ctx.app.id, &changes, &ctx.caller.account)
        .await?;
    if let Some(release) = release {
        state.release_created(&ctx, &release);
    }
    Ok(Json(config.as_map().clone()))
}
