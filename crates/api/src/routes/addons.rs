//! Add-ons in Heroku's shapes: create (provision and attach), list, info, destroy, rotate
//! credentials; attachments (share one add-on between apps); the services and plans on offer.
//! Credentials appear only in the attached apps' config vars, never in these answers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use wharf_api_types as api;
use wharf_model::{
    addon_name, default_attachment_name, parse_attachment_name, Addon, AddonAttachment, AddonState,
};
use wharf_store::NewAddon;

use super::AppCtx;
use crate::addons::{self, announce, provider_of};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::views::timestamp;
use crate::ApiState;

/// A stable id for a service or plan name (they have no rows of their own).
fn name_id(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes).to_string()
}

fn named(id: impl ToString, name: impl ToString) -> api::NamedRef {
    api::NamedRef {
        id: id.to_string(),
        name: name.to_string(),
    }
}

/// An add-on as `app_id` sees it: `config_vars` names the vars it sets on that app.
fn view(addon: &Addon, attachments: &[AddonAttachment], app_id: Uuid) -> api::Addon {
    let config_vars = attachments
        .iter()
        .filter(|t| t.addon_id == addon.id && t.app_id == app_id)
        .flat_map(|t| addon.config_var_names(&t.name))
        .collect();
    let state = match addon.state {
        AddonState::Provisioning => "provisioning",
        AddonState::Provisioned => "provisioned",
        AddonState::Deprovisioning => "deprovisioned",
    };
    api::Addon {
        id: addon.id.to_string(),
        name: addon.name.clone(),
        app: named(addon.app_id, &addon.app_name),
        addon_service: named(name_id(&addon.service), &addon.service),
        plan: api::AddonPlanRef {
            id: name_id(&addon.plan_name()),
            name: addon.plan_name(),
            price: api::Price::free(),
        },
        billed_price: Some(api::BilledPrice {
            cents: 0,
            contract: false,
            unit: "month".into(),
        }),
        state: state.into(),
        config_vars,
        provision_message: None,
        provider_id: addon.id.to_string(),
        web_url: None,
        actions: Vec::new(),
        created_at: timestamp(addon.created_at),
        updated_at: timestamp(addon.updated_at),
    }
}

fn attachment_view(attachment: &AddonAttachment) -> api::AddonAttachment {
    api::AddonAttachment {
        id: attachment.id.to_string(),
        name: attachment.name.clone(),
        app: named(attachment.app_id, &attachment.app_name),
        addon: api::AttachmentAddon {
            id: attachment.addon_id.to_string(),
            name: attachment.addon_name.clone(),
            app: named(attachment.addon_app_id, &attachment.addon_app_name),
        },
        namespace: None,
        web_url: None,
        created_at: timestamp(attachment.created_at),
        updated_at: timestamp(attachment.updated_at),
    }
}

fn addon_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "Couldn't find the add-on {name}: `wharf addons` lists this app's add-ons"
    ))
}

async fn find(state: &ApiState, ctx: &AppCtx, name: &str) -> ApiResult<Addon> {
    state
        .store
        .find_addon(ctx.app.id, name)
        .await?
        .ok_or_else(|| addon_not_found(name))
}

pub async fn list(State(state): State<ApiState>, ctx: AppCtx) -> ApiResult<Json<Vec<api::Addon>>> {
    let addons = state.store.list_addons(ctx.app.id).await?;
    let attachments = state.store.list_attachments(ctx.app.id).await?;
    Ok(Json(
        addons
            .iter()
            .map(|addon| view(addon, &attachments, ctx.app.id))
            .collect(),
    ))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<api::Addon>> {
    let addon = find(&state, &ctx, &name).await?;
    let attachments = state.store.list_attachments(ctx.app.id).await?;
    Ok(Json(view(&addon, &attachments, ctx.app.id)))
}

/// Validates a requested add-on name: lowercase letters, digits and dashes.
fn parse_addon_name(raw: &str) -> ApiResult<String> {
    let valid = (3..=60).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    match valid {
        true => Ok(raw.to_owned()),
        false => Err(ApiError::invalid(format!(
            "Add-on name {raw:?} is invalid: use 3 to 60 lowercase letters, digits and dashes, \
             starting with a letter"
        ))),
    }
}

/// The create request's `config` as the provider's options: strings, and booleans and
/// numbers as text (Heroku's CLI sends `-- --flag` as `true`).
fn provider_options(
    config: &std::collections::BTreeMap<String, serde_json::Value>,
) -> ApiResult<wharf_addons::AddonConfig> {
    config
        .iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => Ok((key.clone(), text.clone())),
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
                Ok((key.clone(), value.to_string()))
            }
            other => Err(ApiError::invalid(format!(
                "Add-on option {key} must be a string, boolean or number, not {other}"
            ))),
        })
        .collect()
}

/// Provisions the add-on and attaches it to the app before answering: `state` is
/// `provisioned` and the config vars are set in a new release when this returns.
pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::AddonCreate>,
) -> ApiResult<(StatusCode, Json<api::Addon>)> {
    let resolved = state
        .addons
        .resolve(body.plan.name())
        .map_err(ApiError::invalid)?;
    let service = resolved.provider.service().clone();
    let options = provider_options(&body.config)?;
    addons::check_dyno_access(&state, &service.name).await?;
    let attachment_name = match body.attachment.as_ref().and_then(|a| a.name.as_deref()) {
        Some(name) => parse_attachment_name(name)?,
        None => free_attachment_name(&state, ctx.app.id, &service).await?,
    };
    let name = match &body.name {
        Some(name) => parse_addon_name(name)?,
        None => addon_name(
            &service.addon_name_prefix,
            rand::random::<u32>(),
            rand::random::<u32>(),
        ),
    };
    let addon = state
        .store
        .create_addon(&NewAddon {
            app_id: ctx.app.id,
            name,
            service: service.name.clone(),
            plan: resolved.plan.name.clone(),
            attachment_name,
        })
        .await?;
    let addon = addons::provision(
        state.clone(),
        addon,
        resolved.provider.clone(),
        resolved.plan.clone(),
        options,
        ctx.caller.account.clone(),
    )
    .await?;
    tracing::info!(app = %ctx.app.name, addon = %addon.name, "created add-on");
    let attachments = state.store.list_attachments(ctx.app.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&addon, &attachments, ctx.app.id)),
    ))
}

/// Destroys an add-on the app created: it leaves every app it is attached to (a release
/// each), and its resource and data are dropped.
pub async fn destroy(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<api::Addon>> {
    let addon = find(&state, &ctx, &name).await?;
    if addon.app_id != ctx.app.id {
        return Err(ApiError::invalid(format!(
            "{} belongs to {}: detach it from this app with `wharf addons:detach`, or destroy \
             it from {}",
            addon.name, addon.app_name, addon.app_name
        )));
    }
    let attachments = state.store.list_attachments(ctx.app.id).await?;
    let mut shown = view(&addon, &attachments, ctx.app.id);
    addons::destroy(state.clone(), addon, ctx.caller.account.clone()).await?;
    shown.state = "deprovisioned".into();
    Ok(Json(shown))
}

/// New credentials for the add-on on every app it is attached to; the old ones are revoked
/// once the dynos have restarted with the new.
pub async fn rotate_credentials(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<api::Addon>> {
    let addon = find(&state, &ctx, &name).await?;
    if addon.state != AddonState::Provisioned {
        return Err(ApiError::conflict(format!(
            "{} is {}: only a provisioned add-on's credentials can be rotated",
            addon.name, addon.state
        )));
    }
    provider_of(&state, &addon)?;
    addons::rotate(state.clone(), addon.clone(), ctx.caller.account.clone()).await?;
    let addon = find(&state, &ctx, &name).await?;
    let attachments = state.store.list_attachments(ctx.app.id).await?;
    Ok(Json(view(&addon, &attachments, ctx.app.id)))
}

pub async fn app_attachments(
    State(state): State<ApiState>,
    ctx: AppCtx,
) -> ApiResult<Json<Vec<api::AddonAttachment>>> {
    let attachments = state.store.list_attachments(ctx.app.id).await?;
    Ok(Json(attachments.iter().map(attachment_view).collect()))
}

pub async fn app_attachment(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<api::AddonAttachment>> {
    let upper = name.to_ascii_uppercase();
    state
        .store
        .list_attachments(ctx.app.id)
        .await?
        .iter()
        .find(|t| t.name == upper || t.id.to_string() == name)
        .map(|t| Json(attachment_view(t)))
        .ok_or_else(|| ApiError::not_found(format!("Couldn't find the add-on attachment {name}")))
}

/// Every attachment on the caller's apps.
pub async fn all_attachments(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<api::AddonAttachment>>> {
    let attachments = state.store.attachments_for_account(&caller.account).await?;
    Ok(Json(attachments.iter().map(attachment_view).collect()))
}

/// Attaches an add-on of one of the caller's apps to another of the caller's apps.
pub async fn attach(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<api::AttachmentCreate>,
) -> ApiResult<(StatusCode, Json<api::AddonAttachment>)> {
    let target = state
        .store
        .app_for(&caller.account, body.app.value())
        .await?
        .ok_or_else(ApiError::app_not_found)?;
    let addon = visible_addons(&state, &caller, None, body.addon.value())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| addon_not_found(body.addon.value()))?;
    let name = match &body.name {
        Some(name) => parse_attachment_name(name)?,
        None => {
            let provider = provider_of(&state, &addon)?;
            free_attachment_name(&state, target.app.id, provider.service()).await?
        }
    };
    let (attachment, release) = state
        .store
        .attach_addon(addon.id, target.app.id, &name, &caller.account)
        .await?;
    announce(&state, target.app.id, &release, &caller.account);
    Ok((StatusCode::CREATED, Json(attachment_view(&attachment))))
}

/// Detaches an add-on from one of the caller's apps (not its last attachment).
pub async fn detach(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<api::AddonAttachment>> {
    let attachment = state
        .store
        .attachments_for_account(&caller.account)
        .await?
        .into_iter()
        .find(|t| t.id.to_string() == id)
        .ok_or_else(|| ApiError::not_found("Couldn't find that add-on attachment."))?;
    let (attachment, release) = state
        .store
        .detach_addon(attachment.id, &caller.account)
        .await?;
    announce(&state, attachment.app_id, &release, &caller.account);
    Ok(Json(attachment_view(&attachment)))
}

/// A service as `GET /addon-services` lists it, with what dynos met at its server when it was
/// last probed (`report`).
fn service_view(
    service: &wharf_addons::Service,
    report: Option<wharf_addons::exposure::Report>,
) -> api::AddonService {
    api::AddonService {
        id: name_id(&service.name),
        name: service.name.clone(),
        human_name: service.human_name.clone(),
        aliases: service.aliases.clone(),
        state: "ga".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        dyno_access: report.map(|report| api::AddonDynoAccess {
            state: report.access.state().into(),
            message: report.message,
        }),
    }
}

pub async fn services(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Json<Vec<api::AddonService>> {
    Json(
        state
            .addons
            .providers()
            .iter()
            .map(|provider| {
                let service = provider.service();
                service_view(service, state.addons.last_report(&service.name))
            })
            .collect(),
    )
}

pub async fn plans(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<api::AddonPlan>>> {
    let provider = state.addons.provider(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Couldn't find the add-on service {name}: `GET /addon-services` lists them"
        ))
    })?;
    let service = provider.service();
    Ok(Json(
        service
            .plans
            .iter()
            .map(|plan| {
                let full = format!("{}:{}", service.name, plan.name);
                api::AddonPlan {
                    id: name_id(&full),
                    name: full,
                    human_name: plan.name.clone(),
                    description: plan.description.clone(),
                    default: plan.default,
                    addon_service: named(name_id(&service.name), &service.name),
                    price: api::Price::free(),
                    state: "public".into(),
                    created_at: "2026-01-01T00:00:00Z".into(),
                    updated_at: "2026-01-01T00:00:00Z".into(),
                }
            })
            .collect(),
    ))
}

/// The add-ons called `name` (or with that id, or attached as that) that the caller can see,
/// within one app when `app` is given.
async fn visible_addons(
    state: &ApiState,
    caller: &Caller,
    app: Option<&str>,
    name: &str,
) -> ApiResult<Vec<Addon>> {
    let apps = match app {
        Some(app) => vec![state
            .store
            .app_for(&caller.account, app)
            .await?
            .ok_or_else(ApiError::app_not_found)?],
        None => state.store.list_apps(&caller.account).await?,
    };
    let mut found: Vec<Addon> = Vec::new();
    for access in apps {
        if let Some(addon) = state.store.find_addon(access.app.id, name).await? {
            if !found.iter().any(|seen| seen.id == addon.id) {
                found.push(addon);
            }
        }
    }
    Ok(found)
}

/// Whether `service` (a name or alias, or none) names the add-on's service.
fn service_matches(state: &ApiState, addon: &Addon, service: Option<&str>) -> bool {
    match service {
        None => true,
        Some(service) => state
            .addons
            .provider(service)
            .is_some_and(|provider| provider.service().name == addon.service),
    }
}

/// Heroku's CLI finds add-ons through this before `addons:info` and `addons:destroy`.
pub async fn resolve(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<api::AddonResolve>,
) -> ApiResult<Json<Vec<api::Addon>>> {
    // `app::NAME` names the app in the add-on's name, as Heroku's CLI writes it.
    let (app, name) = match body.addon.split_once("::") {
        Some((app, name)) => (Some(app), name),
        None => (body.app.as_deref(), body.addon.as_str()),
    };
    let mut addons = visible_addons(&state, &caller, app, name).await?;
    if addons.is_empty() && app.is_some() {
        // An add-on of another of the caller's apps, named exactly (Heroku's CLI falls back
        // to this search itself when the API says so).
        addons = visible_addons(&state, &caller, None, name)
            .await?
            .into_iter()
            .filter(|addon| addon.name == name || addon.id.to_string() == name)
            .collect();
    }
    let addons: Vec<Addon> = addons
        .into_iter()
        .filter(|addon| service_matches(&state, addon, body.addon_service.as_deref()))
        .collect();
    if addons.is_empty() {
        return Err(addon_not_found(&body.addon));
    }
    let mut views = Vec::new();
    for addon in &addons {
        let attachments = state.store.addon_attachments(addon.id).await?;
        views.push(view(addon, &attachments, addon.app_id));
    }
    Ok(Json(views))
}

/// Heroku's CLI finds attachments through this (`addons:detach`, `pg:*`).
pub async fn resolve_attachment(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<api::AttachmentResolve>,
) -> ApiResult<Json<Vec<api::AddonAttachment>>> {
    let wanted = body.addon_attachment.to_ascii_uppercase();
    let mut found = Vec::new();
    for attachment in state.store.attachments_for_account(&caller.account).await? {
        let app_matches = body
            .app
            .as_deref()
            .is_none_or(|app| attachment.app_name == app || attachment.app_id.to_string() == app);
        let name_matches = attachment.name == wanted
            || attachment.id.to_string() == body.addon_attachment
            || attachment.addon_name == body.addon_attachment;
        if !(app_matches && name_matches) {
            continue;
        }
        if let Some(service) = body.addon_service.as_deref() {
            let addon = state.store.addon_by_id(attachment.addon_id).await?;
            if !addon.is_some_and(|addon| service_matches(&state, &addon, Some(service))) {
                continue;
            }
        }
        found.push(attachment_view(&attachment));
    }
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "Couldn't find the add-on attachment {}",
            body.addon_attachment
        )));
    }
    Ok(Json(found))
}

/// Every add-on on the caller's apps.
pub async fn all(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<api::Addon>>> {
    let mut views: Vec<api::Addon> = Vec::new();
    for access in state.store.list_apps(&caller.account).await? {
        for addon in state.store.list_addons(access.app.id).await? {
            if addon.app_id == access.app.id {
                let attachments = state.store.addon_attachments(addon.id).await?;
                views.push(view(&addon, &attachments, addon.app_id));
            }
        }
    }
    Ok(Json(views))
}

/// One add-on the caller can see, by name or id (Heroku's CLI reads `addons:info` so).
pub async fn show_any(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<api::Addon>> {
    let addon = visible_addons(&state, &caller, None, &name)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| addon_not_found(&name))?;
    let attachments = state.store.addon_attachments(addon.id).await?;
    Ok(Json(view(&addon, &attachments, addon.app_id)))
}

/// The attachments of one add-on the caller can see, on the caller's apps.
pub async fn addon_attachments(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<api::AddonAttachment>>> {
    let addon = visible_addons(&state, &caller, None, &name)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| addon_not_found(&name))?;
    let attachments = state.store.attachments_for_account(&caller.account).await?;
    Ok(Json(
        attachments
            .iter()
            .filter(|t| t.addon_id == addon.id)
            .map(attachment_view)
            .collect(),
    ))
}

/// The service's default attachment name that is free on the app (`DATABASE`, then
/// `HEROKU_POSTGRESQL_<COLOR>`).
async fn free_attachment_name(
    state: &ApiState,
    app_id: Uuid,
    service: &wharf_addons::Service,
) -> ApiResult<String> {
    let taken: Vec<String> = state
        .store
        .list_attachments(app_id)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    Ok(default_attachment_name(
        &service.default_attachment,
        &service.attachment_prefix,
        &taken,
    ))
}
