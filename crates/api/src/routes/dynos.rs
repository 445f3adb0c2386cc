//! Dynos: list and show them, run one-off dynos, restart or stop them (all, a process type,
//! or one), as Heroku's Dynos API does. The dyno manager does the work; these routes only ask
//! it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf_api_types as api;
use wharf_dynos::{DynoInfo, OneOffError, OneOffRequest, Target, ONE_OFF_TYPE};
use wharf_model::{check_env_value, ConfigKey, DynoSize};

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::rendezvous;
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

/// The app's dynos: this server's own and those the hosts that joined report (each with its
/// host), by name.
async fn all_views(state: &ApiState, ctx: &AppCtx) -> Vec<api::Dyno> {
    let dynos = state.dynos.dynos(ctx.app.id);
    let mut views = Vec::with_capacity(dynos.len());
    for dyno in &dynos {
        views.push(view(state, ctx, dyno).await);
    }
    for (host, dyno) in remote_dynos(state, ctx).await {
        let release_id = current_release_id(state, ctx, dyno.release_version).await;
        views.push(views::reported_dyno(&dyno, &ctx.app, release_id, host));
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

/// What the hosts holding a lease report of the app's dynos.
async fn remote_dynos(state: &ApiState, ctx: &AppCtx) -> Vec<(String, api::AgentDyno)> {
    match crate::reported_dynos(&state.store).await {
        Ok(dynos) => dynos
            .into_iter()
            .filter(|(_, dyno)| dyno.app == ctx.app.id.to_string())
            .collect(),
        Err(error) => {
            tracing::warn!("read the hosts' dynos: {error}");
            Vec::new()
        }
    }
}

pub async fn list(State(state): State<ApiState>, ctx: AppCtx) -> Json<Vec<api::Dyno>> {
    Json(all_views(&state, &ctx).await)
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<api::Dyno>> {
    let dyno = all_views(&state, &ctx)
        .await
        .into_iter()
        .find(|d| d.name == name || d.id == name)
        .ok_or_else(|| ApiError::not_found("Couldn't find that dyno."))?;
    Ok(Json(dyno))
}

/// `POST /apps/{app}/dynos`: a one-off dyno (`heroku run`, `run:detached`). Attached, its
/// `attach_url` leads to the rendezvous; detached, its output goes to the log.
pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::DynoCreate>,
) -> ApiResult<Response> {
    let request = one_off_request(&body, ctx.caller.account.email.to_string())?;
    // Once hosts joined, this server runs no dyno: a host runs the one-off.
    if !state.store.hosts().await?.is_empty() {
        return create_on_a_host(&state, &ctx, request).await;
    }
    let attach = request.attach;
    let one_off =
        state
            .dynos
            .run_one_off(ctx.app.id, request)
            .await
            .map_err(|error| match error {
                OneOffError::NoRelease => ApiError::invalid(format!(
                    "{} has no code to run yet: deploy it first.",
                    ctx.app.name
                )),
                OneOffError::ShuttingDown => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The server is shutting down; try again in a moment.",
                ),
                OneOffError::Store(error) => ApiError::internal(&error),
            })?;
    let mut dyno = view(&state, &ctx, &one_off.info).await;
    if let (true, Some(handle)) = (attach, one_off.attach) {
        let secret = state.rendezvous.offer(handle);
        dyno.attach_url = Some(rendezvous::attach_url(
            &state.config.public_url,
            state.config.rendezvous_port,
            &secret,
        ));
    }
    Ok((StatusCode::CREATED, Json(dyno)).into_response())
}

/// A one-off dyno placed on the accepting host with the most memory free; its agent starts it
/// at its next read of what it runs (the generation changes now), and an attached one's
/// client is handed to that agent when it comes to the rendezvous.
async fn create_on_a_host(
    state: &ApiState,
    ctx: &AppCtx,
    request: OneOffRequest,
) -> ApiResult<Response> {
    let release = match state.store.current_release(ctx.app.id).await {
        Ok(release) if release.slug_id.is_some() => release,
        Ok(_) | Err(wharf_store::StoreError::NotFound(_)) => {
            return Err(ApiError::invalid(format!(
                "{} has no code to run yet: deploy it first.",
                ctx.app.name
            )))
        }
        Err(error) => return Err(error.into()),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut placed: std::collections::HashMap<uuid::Uuid, u64> = std::collections::HashMap::new();
    for placement in state.store.placements().await?.into_values() {
        *placed.entry(placement.host).or_default() += placement.memory_mb;
    }
    let host = state
        .store
        .hosts()
        .await?
        .into_iter()
        .filter(|host| host.accepting(now))
        .max_by_key(|host| {
            let offered = host.memory_mb.unwrap_or(0);
            offered.saturating_sub(placed.get(&host.id).copied().unwrap_or(0))
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "No host can run a one-off dyno now (none is up and accepting dynos): \
                 `wharf hosts` shows why; try again once one is.",
            )
        })?;
    let taken: std::collections::HashSet<u32> = remote_dynos(state, ctx)
        .await
        .iter()
        .filter(|(_, dyno)| dyno.process_type == ONE_OFF_TYPE)
        .filter_map(|(_, dyno)| dyno.name.split_once('.')?.1.parse().ok())
        .collect();
    let number = wharf_dynos::free_one_off_number(&taken, &mut rand::thread_rng());
    let id = uuid::Uuid::new_v4();
    let one_off = api::AgentOneOff {
        id: id.to_string(),
        app: ctx.app.id.to_string(),
        number,
        command: request.command.clone(),
        env: request.env.clone(),
        size: request.size.name().to_owned(),
        attach: request.attach,
        tty: request.tty,
        user: request.user.clone(),
    };
    let (attach_url, client) = if request.attach {
        let (secret, client) = state.rendezvous.offer_remote();
        let url = rendezvous::attach_url(
            &state.config.public_url,
            state.config.rendezvous_port,
            &secret,
        );
        (Some(url), Some(client))
    } else {
        (None, None)
    };
    state
        .remote_one_offs
        .add(host.id, ctx.app.id, id, one_off, client);
    state.bump_generation();
    let reported = api::AgentDyno {
        id: id.to_string(),
        app: ctx.app.id.to_string(),
        name: format!("{ONE_OFF_TYPE}.{number}"),
        process_type: ONE_OFF_TYPE.to_owned(),
        state: "starting".to_owned(),
        command: request.command,
        size: request.size.name().to_owned(),
        release_version: release.version,
        updated_at: now
            .replace_nanosecond(0)
            .expect("zero nanoseconds is valid")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("UTC times always format"),
        upstream: None,
    };
    let mut dyno = views::reported_dyno(
        &reported,
        &ctx.app,
        release.id.to_string(),
        host.name.to_string(),
    );
    dyno.attach_url = attach_url;
    Ok((StatusCode::CREATED, Json(dyno)).into_response())
}

/// Checks a one-off's request: a command, a known size, variables an environment can hold.
fn one_off_request(body: &api::DynoCreate, user: String) -> ApiResult<OneOffRequest> {
    if body.command.trim().is_empty() {
        return Err(ApiError::invalid("Give a command to run."));
    }
    if let Some(at) = body.command.find('\0') {
        // A process's arguments end at a NUL: the dyno would run less than was asked.
        return Err(ApiError::invalid(format!(
            "The command has a NUL character (\\u0000) at byte {at}, which no process's \
             arguments can hold: remove it"
        )));
    }
    if let Some(process_type) = body.process_type.as_deref() {
        if process_type != ONE_OFF_TYPE {
            return Err(ApiError::invalid(format!(
                "Only one-off dynos (type {ONE_OFF_TYPE}) can be created, not {process_type}."
            )));
        }
    }
    let size = match body.size.as_deref() {
        Some(size) => DynoSize::parse(size)?,
        None => DynoSize::Basic,
    };
    let mut env = Vec::new();
    for (key, value) in body.env.iter().flatten() {
        let value = value.to_string();
        check_env_value(&ConfigKey::parse(key)?, &value)?;
        env.push((key.clone(), value));
    }
    let attach = body.attach.unwrap_or(false);
    Ok(OneOffRequest {
        id: None,
        number: None,
        command: body.command.clone(),
        env,
        size,
        attach,
        tty: !body.force_no_tty.unwrap_or(false),
        user,
    })
}

async fn act(state: &ApiState, ctx: &AppCtx, target: Target, stop: bool) -> ApiResult<Response> {
    let missing = match &target {
        Target::All => None,
        Target::Type(process_type) => Some(format!("No {process_type} dynos on {}.", ctx.app.name)),
        Target::Dyno(name) => Some(format!("Couldn't find that dyno ({name}).")),
    };
    // The dynos on hosts it names: each host that reports one restarts or stops its own.
    let on_hosts = act_on_hosts(state, ctx, &target, stop).await;
    let outcome = if stop {
        state.dynos.stop(ctx.app.id, target).await
    } else {
        state.dynos.restart(ctx.app.id, target).await
    };
    let count = outcome.map_err(|e| ApiError::internal(&e))? + on_hosts;
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

/// Asks each host that reports one of the app's dynos `target` names to restart (or stop)
/// them, at its next read of what it runs (the generation changes now): how many dynos.
/// One-off dynos are stopped, never restarted, as on one host.
async fn act_on_hosts(state: &ApiState, ctx: &AppCtx, target: &Target, stop: bool) -> usize {
    let named = |dyno: &api::AgentDyno| {
        (stop || dyno.process_type != ONE_OFF_TYPE)
            && match target {
                Target::All => true,
                Target::Type(process_type) => dyno.process_type == *process_type,
                Target::Dyno(name) => dyno.name == *name || dyno.id == *name,
            }
    };
    let mut hosts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (host, dyno) in remote_dynos(state, ctx).await {
        if named(&dyno) {
            *hosts.entry(host).or_default() += 1;
        }
    }
    if hosts.is_empty() {
        return 0;
    }
    let ids: std::collections::HashMap<String, uuid::Uuid> = match state.store.hosts().await {
        Ok(all) => all
            .into_iter()
            .map(|host| (host.name.to_string(), host.id))
            .collect(),
        Err(error) => {
            tracing::warn!("read the hosts: {error}");
            return 0;
        }
    };
    let (process_type, dyno) = match target {
        Target::All => (None, None),
        Target::Type(process_type) => (Some(process_type.clone()), None),
        Target::Dyno(name) => (None, Some(name.clone())),
    };
    let mut count = 0;
    for (host, dynos) in hosts {
        let Some(id) = ids.get(&host) else { continue };
        state.remote_actions.add(
            *id,
            api::AgentAction {
                id: uuid::Uuid::new_v4().to_string(),
                app: ctx.app.id.to_string(),
                process_type: process_type.clone(),
                dyno: dyno.clone(),
                stop,
            },
        );
        count += dynos;
    }
    state.bump_generation();
    count
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ApiResult<OneOffRequest> {
        let body: api::DynoCreate = serde_json::from_value(json).expect("a dyno body");
        one_off_request(&body, "a@example.com".to_owned())
    }

    #[test]
    fn one_off_requests() {
        let ok = request(serde_json::json!({
            "command": "bash", "attach": true,
            "env": {"TERM": "xterm", "COLUMNS": 80, "LINES": 24},
            "force_no_tty": true, "type": "run", "size": "standard-2x"
        }))
        .expect("valid");
        assert_eq!(ok.command, "bash");
        assert!(ok.attach && !ok.tty);
        assert_eq!(ok.size, DynoSize::Standard2X);
        assert!(ok.env.contains(&("COLUMNS".to_owned(), "80".to_owned())));
        let plain = request(serde_json::json!({"command": "echo hi"})).expect("valid");
        assert!(!plain.attach && plain.tty);
        assert_eq!(plain.size, DynoSize::Basic);
        for bad in [
            serde_json::json!({"command": " "}),
            serde_json::json!({"command": "x", "size": "huge"}),
            serde_json::json!({"command": "x", "type": "web"}),
            serde_json::json!({"command": "x", "env": {"1X": "y"}}),
            serde_json::json!({"command": "echo a\u{0}; rm -rf /"}),
        ] {
            assert!(request(bad.clone()).is_err(), "{bad}");
        }
    }
}
