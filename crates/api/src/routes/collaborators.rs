//! Collaborators: who besides the owner may see and change an app. Only the owner adds or
//! removes them; a collaborator may remove itself.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_model::{Account, Collaborator, Email};

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
) -> ApiResult<Page<api::Collaborator>> {
    let spec = RangeSpec::from_headers(&headers, &["email", "id"], Order::Asc)?;
    let collaborators = state.store.collaborators(ctx.app.id).await?;
    let items = collaborators.iter().map(views::collaborator).collect();
    let field = spec.field.clone();
    Ok(page_by(
        items,
        |c: &api::Collaborator| match field.as_str() {
            "id" => c.id.clone(),
            _ => c.user.email.clone(),
        },
        &spec,
    ))
}

/// Finds an account by e-mail address or id.
async fn account(state: &ApiState, identity: &str) -> ApiResult<Option<Account>> {
    if let Ok(id) = Uuid::parse_str(identity) {
        return Ok(state.store.account_by_id(id).await?);
    }
    match Email::parse(identity) {
        Ok(email) => Ok(state.store.account_by_email(&email).await?),
        Err(_) => Ok(None),
    }
}

pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::CollaboratorCreate>,
) -> ApiResult<(StatusCode, Json<api::Collaborator>)> {
    ctx.require_owner("add collaborators")?;
    if Uuid::parse_str(&body.user).is_err() {
        Email::parse(&body.user)?;
    }
    let account = account(&state, &body.user).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "Couldn't find a user {}: an admin can create it with `wharf users:create`",
            body.user
        ))
    })?;
    let collaborator = state.store.add_collaborator(&ctx.app, &account).await?;
    tracing::info!(app = %ctx.app.name, user = %account.email, "added collaborator");
    Ok((
        StatusCode::CREATED,
        Json(views::collaborator(&collaborator)),
    ))
}

async fn find(state: &ApiState, ctx: &AppCtx, identity: &str) -> ApiResult<Collaborator> {
    let collaborators = state.store.collaborators(ctx.app.id).await?;
    let lowered = identity.to_lowercase();
    collaborators
        .into_iter()
        .find(|c| {
            c.id.to_string() == identity
                || c.account.id.to_string() == identity
                || c.account.email.as_str() == lowered
        })
        .ok_or_else(|| ApiError::not_found("Couldn't find that collaborator."))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<api::Collaborator>> {
    let collaborator = find(&state, &ctx, &identity).await?;
    Ok(Json(views::collaborator(&collaborator)))
}

pub async fn destroy(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<api::Collaborator>> {
    let collaborator = find(&state, &ctx, &identity).await?;
    if collaborator.account.id != ctx.caller.account.id {
        ctx.require_owner("remove collaborators")?;
    }
    state
        .store
        .remove_collaborator(ctx.app.id, collaborator.account.id)
        .await?;
    tracing::info!(app = %ctx.app.name, user = %collaborator.account.email, "removed collaborator");
    Ok(Json(views::collaborator(&collaborator)))
}
