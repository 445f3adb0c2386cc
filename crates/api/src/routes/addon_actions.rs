//! What users do with an add-on's data beyond its lifecycle (Wharf extensions, what `pg:*` and
//! `redis:*` call): its info, its settings, emptying it, and its backups (capture, list,
//! download, restore). Each asks the add-on's provider; a provider's [`Refused`] is the user's
//! 422, any other failure a 503 that leaks nothing of the provider's error.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use time::OffsetDateTime;
use wharf_addons::{Backup, Backups, Refused, Resource};
use wharf_api_types as api;
use wharf_model::{Addon, AddonState};

use super::AppCtx;
use crate::addons::{provider_of, provider_state};
use crate::error::{ApiError, ApiResult};
use crate::json::Body as JsonBody;
use crate::views::timestamp;
use crate::ApiState;

/// The app's add-on called `name` (name, id or attachment name), provisioned.
async fn provisioned(state: &ApiState, ctx: &AppCtx, name: &str) -> ApiResult<Addon> {
    let name = name.strip_suffix("_URL").unwrap_or(name);
    let addon = state
        .store
        .find_addon(ctx.app.id, name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Couldn't find the add-on {name}: `wharf addons` lists this app's add-ons"
            ))
        })?;
    if addon.state != AddonState::Provisioned {
        return Err(ApiError::conflict(format!(
            "{} is {}: try again once it is provisioned",
            addon.name, addon.state
        )));
    }
    Ok(addon)
}

/// Maps a provider's error: a [`Refused`] is the user's to fix, anything else is logged
/// here and answered without its details (they may name the provider's internals).
fn provider_error(addon: &Addon, what: &str, error: anyhow::Error) -> ApiError {
    match error.downcast_ref::<Refused>() {
        Some(refused) => ApiError::invalid(refused.0.clone()),
        None => {
            tracing::error!(addon = %addon.name, error = format!("{error:#}"), "{what}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_error",
                format!(
                    "{} could not {what}: the server's log says why; try again, or ask the \
                     operator",
                    addon.service
                ),
            )
        }
    }
}

fn plan_of(provider: &dyn wharf_addons::Provider, addon: &Addon) -> ApiResult<wharf_addons::Plan> {
    let service = provider.service();
    service
        .plan(Some(&addon.plan))
        .or(service.plan(None))
        .cloned()
        .ok_or_else(|| ApiError::invalid(format!("{} has no plan {}", addon.name, addon.plan)))
}

pub async fn info(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<api::AddonInfoRow>>> {
    let addon = provisioned(&state, &ctx, &name).await?;
    let provider = provider_of(&state, &addon)?;
    let plan = plan_of(provider.as_ref(), &addon)?;
    let rows = provider
        .info(Resource { id: addon.id }, &plan, &provider_state(&addon))
        .await
        .map_err(|error| provider_error(&addon, "read the add-on's info", error))?;
    let mut shown = vec![
        api::AddonInfoRow {
            name: "Add-on".into(),
            value: addon.name.clone(),
        },
        api::AddonInfoRow {
            name: "Plan".into(),
            value: format!("{}:{}", addon.service, plan.name),
        },
    ];
    shown.extend(
        rows.into_iter()
            .filter(|(name, _)| name != "Plan")
            .map(|(name, value)| api::AddonInfoRow { name, value }),
    );
    Ok(Json(shown))
}

pub async fn configure(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<api::AddonSettings>,
) -> ApiResult<Json<Vec<api::AddonInfoRow>>> {
    let addon = provisioned(&state, &ctx, &name).await?;
    let provider = provider_of(&state, &addon)?;
    let plan = plan_of(provider.as_ref(), &addon)?;
    let resource = Resource { id: addon.id };
    let new_state = provider
        .configure(resource, &plan, &provider_state(&addon), &body.settings)
        .await
        .map_err(|error| provider_error(&addon, "change the add-on's settings", error))?;
    state
        .store
        .set_addon_provider_state(addon.id, &new_state.to_string())
        .await?;
    let changes: Vec<String> = body
        .settings
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    state.changed(
        ctx.app.id,
        &[format!(
            "Set {} on {} by {}",
            changes.join(", "),
            addon.name,
            ctx.caller.account.email
        )],
    );
    let rows = body
        .settings
        .into_iter()
        .map(|(name, value)| api::AddonInfoRow { name, value })
        .collect();
    Ok(Json(rows))
}

pub async fn reset(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let addon = provisioned(&state, &ctx, &name).await?;
    owned_here(&ctx, &addon)?;
    let provider = provider_of(&state, &addon)?;
    let resource = Resource { id: addon.id };
    let addon_state = provider_state(&addon);
    // In a task of its own: a client that goes away does not stop it half way.
    let task = tokio::spawn(async move { provider.reset(resource, &addon_state).await });
    task.await
        .map_err(|error| ApiError::internal(&anyhow::Error::new(error)))?
        .map_err(|error| provider_error(&addon, "reset the add-on", error))?;
    state.changed(
        ctx.app.id,
        &[format!(
            "Reset {} by {}",
            addon.name, ctx.caller.account.email
        )],
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Emptying or overwriting an add-on's data is for the app that owns it, not for apps it is
/// shared with.
fn owned_here(ctx: &AppCtx, addon: &Addon) -> ApiResult<()> {
    match addon.app_id == ctx.app.id {
        true => Ok(()),
        false => Err(ApiError::invalid(format!(
            "{} belongs to {}: only that app may reset or restore it",
            addon.name, addon.app_name
        ))),
    }
}

fn backups_of<'a>(
    provider: &'a dyn wharf_addons::Provider,
    addon: &Addon,
) -> ApiResult<&'a dyn Backups> {
    provider
        .backups()
        .ok_or_else(|| ApiError::invalid(format!("{} add-ons keep no backups", addon.service)))
}

fn backup_view(addon: &Addon, backup: &Backup) -> api::AddonBackup {
    api::AddonBackup {
        name: backup.name.clone(),
        addon: api::NamedRef {
            id: addon.id.to_string(),
            name: addon.name.clone(),
        },
        created_at: timestamp(offset(backup.created_at)),
        size: backup.size,
    }
}

fn offset(at: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(at)
}

pub async fn list_backups(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<api::AddonBackup>>> {
    let addon = provisioned(&state, &ctx, &name).await?;
    let provider = provider_of(&state, &addon)?;
    let backups = backups_of(provider.as_ref(), &addon)?
        .list(Resource { id: addon.id })
        .await
        .map_err(|error| provider_error(&addon, "list the add-on's backups", error))?;
    Ok(Json(
        backups
            .iter()
            .map(|backup| backup_view(&addon, backup))
            .collect(),
    ))
}

pub async fn capture_backup(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<api::AddonBackup>)> {
    let addon = provisioned(&state, &ctx, &name).await?;
    let provider = provider_of(&state, &addon)?;
    let plan = plan_of(provider.as_ref(), &addon)?;
    backups_of(provider.as_ref(), &addon)?;
    let resource = Resource { id: addon.id };
    let task = tokio::spawn(async move {
        match provider.backups() {
            Some(backups) => backups.capture(resource, &plan).await,
            None => Err(Refused("no backups".into()).into()),
        }
    });
    let backup = task
        .await
        .map_err(|error| ApiError::internal(&anyhow::Error::new(error)))?
        .map_err(|error| provider_error(&addon, "capture a backup", error))?;
    state.changed(
        ctx.app.id,
        &[format!(
            "Captured backup {} of {} by {}",
            backup.name, addon.name, ctx.caller.account.email
        )],
    );
    Ok((StatusCode::CREATED, Json(backup_view(&addon, &backup))))
}

pub async fn download_backup(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name, backup)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let addon = provisioned(&state, &ctx, &name).await?;
    let provider = provider_of(&state, &addon)?;
    let path = backups_of(provider.as_ref(), &addon)?
        .file(Resource { id: addon.id }, &backup)
        .await
        .map_err(|error| provider_error(&addon, "find the backup", error))?;
    // Server path: the provider's own backup file, named from the add-on's id and a
    // validated backup name.
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|error| provider_error(&addon, "open the backup", error.into()))?;
    let length = file
        .metadata()
        .await
        .map_err(|error| provider_error(&addon, "open the backup", error.into()))?
        .len();
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-{backup}.dump\"", addon.name),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn restore(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<api::AddonRestore>,
) -> ApiResult<StatusCode> {
    let addon = provisioned(&state, &ctx, &name).await?;
    owned_here(&ctx, &addon)?;
    let provider = provider_of(&state, &addon)?;
    let backups = backups_of(provider.as_ref(), &addon)?;
    let from = match &body.from_app {
        None => addon.clone(),
        Some(app) => backup_source(&state, &ctx, &addon, backups, app, &body.backup).await?,
    };
    let (into, from_resource) = (Resource { id: addon.id }, Resource { id: from.id });
    let backup = body.backup.clone();
    let task = tokio::spawn(async move {
        match provider.backups() {
            Some(backups) => backups.restore(into, from_resource, &backup).await,
            None => Err(Refused("no backups".into()).into()),
        }
    });
    task.await
        .map_err(|error| ApiError::internal(&anyhow::Error::new(error)))?
        .map_err(|error| provider_error(&addon, "restore the backup", error))?;
    state.changed(
        ctx.app.id,
        &[format!(
            "Restored backup {} of {} into {} by {}",
            body.backup, from.name, addon.name, ctx.caller.account.email
        )],
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The add-on of `app` (which the caller must have access to: otherwise the answer is the
/// same as for an app that does not exist) of `addon`'s service that has the backup `name`.
async fn backup_source(
    state: &ApiState,
    ctx: &AppCtx,
    addon: &Addon,
    backups: &dyn Backups,
    app: &str,
    name: &str,
) -> ApiResult<Addon> {
    let access = state
        .store
        .app_for(&ctx.caller.account, app)
        .await?
        .ok_or_else(ApiError::app_not_found)?;
    for candidate in state.store.list_addons(access.app.id).await? {
        if candidate.service != addon.service || candidate.app_id != access.app.id {
            continue;
        }
        let list = backups
            .list(Resource { id: candidate.id })
            .await
            .map_err(|error| provider_error(addon, "list the backups", error))?;
        if list.iter().any(|backup| backup.name == name) {
            return Ok(candidate);
        }
    }
    Err(ApiError::not_found(format!(
        "Couldn't find the backup {name} of {}: `wharf pg:backups -a {}` lists them",
        access.app.name, access.app.name
    )))
}
