//! Apps: list, create (named or with a generated name), show, rename, maintenance, delete.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use rand::Rng;
use wharf_api_types as api;
use wharf_model::{generate_app_name, AppName, StackName};
use wharf_store::StoreError;

use super::AppCtx;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::range::{page_by, Order, Page, RangeSpec};
use crate::views;
use crate::ApiState;

/// How many generated names to try before giving up on finding a free one.
const NAME_ATTEMPTS: usize = 8;

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Page<api::App>> {
    let spec = RangeSpec::from_headers(&headers, &["name", "id"], Order::Asc)?;
    let apps: Vec<api::App> = state
        .store
        .list_apps(&caller.account)
        .await?
        .iter()
        .map(|access| views::app(&access.app, &state.config))
        .collect();
    let field = spec.field.clone();
    Ok(page_by(
        apps,
        |app| match field.as_str() {
            "id" => app.id.clone(),
            _ => app.name.clone(),
        },
        &spec,
    ))
}

/// `GET /users/{user}/apps`: the caller's own apps (`~`, its id or its e-mail address).
pub async fn list_for_user(
    state: State<ApiState>,
    caller: Caller,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Page<api::App>> {
    let account = &caller.account;
    let is_self = user == "~"
        || user == account.id.to_string()
        || user.eq_ignore_ascii_case(account.email.as_str());
    if !is_self {
        return Err(ApiError::forbidden("You can list only your own apps."));
    }
    list(state, caller, headers).await
}

pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<api::AppCreate>,
) -> ApiResult<(StatusCode, Json<api::App>)> {
    let stack = body.stack.as_deref().map(StackName::parse).transpose()?;
    let mut app = match body.name {
        Some(name) => {
            let name = AppName::parse(&name)?;
            state.store.create_app(&name, &caller.account).await?
        }
        None => create_with_generated_name(&state, &caller).await?,
    };
    if let Some(stack) = stack.filter(|stack| *stack != app.build_stack) {
        state.store.set_build_stack(app.id, stack).await?;
        app.build_stack = stack;
    }
    tracing::info!(app = %app.name, owner = %caller.account.email, "created app");
    Ok((StatusCode::CREATED, Json(views::app(&app, &state.config))))
}

async fn create_with_generated_name(
    state: &ApiState,
    caller: &Caller,
) -> ApiResult<wharf_model::App> {
    for _ in 0..NAME_ATTEMPTS {
        let name = {
            let mut rng = rand::thread_rng();
            generate_app_name(rng.gen(), rng.gen(), rng.gen())
        };
        match state.store.create_app(&name, &caller.account).await {
            Err(StoreError::Conflict(_)) => continue,
            other => return Ok(other?),
        }
    }
    Err(ApiError::conflict(
        "Could not find a free app name: try again, or pick a name",
    ))
}

pub async fn show(State(state): State<ApiState>, ctx: AppCtx) -> Json<api::App> {
    Json(views::app(&ctx.app, &state.config))
}

pub async fn update(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::AppUpdate>,
) -> ApiResult<Json<api::App>> {
    let name = body.name.as_deref().map(AppName::parse).transpose()?;
    let rename = name.as_ref().filter(|name| **name != ctx.app.name);
    if rename.is_some() {
        ctx.require_owner("rename it")?;
    }
    let stack = body
        .build_stack
        .as_deref()
        .map(StackName::parse)
        .transpose()?;
    state
        .store
        .update_app(ctx.app.id, rename, body.maintenance)
        .await?;
    if let Some(stack) = stack {
        // The next build runs on it; the live release keeps its slug's stack until then.
        state.store.set_build_stack(ctx.app.id, stack).await?;
    }
    // The router reads the new name or maintenance mode now, not at its next refresh.
    state.changed(ctx.app.id, &[]);
    let shown = rename.map_or(ctx.app.name.as_str(), AppName::as_str);
    let app = state
        .store
        .app_for(&ctx.caller.account, shown)
        .await?
        .ok_or_else(ApiError::app_not_found)?;
    Ok(Json(views::app(&app.app, &state.config)))
}

pub async fn destroy(State(state): State<ApiState>, ctx: AppCtx) -> ApiResult<Json<api::App>> {
    ctx.require_owner("delete it")?;
    // The app's own add-ons go with it (detached from any app sharing them, then dropped).
    for addon in state.store.list_addons(ctx.app.id).await? {
        if addon.app_id == ctx.app.id {
            crate::addons::destroy(state.clone(), addon, ctx.caller.account.clone()).await?;
        }
    }
    state.store.delete_app(ctx.app.id).await?;
    state.changed(ctx.app.id, &[]);
    state.drains.stop_app(ctx.app.id);
    state.dynos.logs().metrics().forget_app(ctx.app.id);
    state.dynos.logs().forget(ctx.app.id);
    tracing::info!(app = %ctx.app.name, by = %ctx.caller.account.email, "deleted app");
    Ok(Json(views::app(&ctx.app, &state.config)))
}
