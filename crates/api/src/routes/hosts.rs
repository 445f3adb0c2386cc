//! Hosts that run dynos (a Wharf extension): admins add, list, drain and remove them. Adding
//! one issues the credential its agent uses (`routes/agent.rs`); removing it revokes it.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use time::OffsetDateTime;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_model::{Host, HostName};
use wharf_store::Placed;

use super::agent::CREDENTIAL_PREFIX;
use crate::auth::{generate_api_key, hash_api_key, Caller};
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::views::timestamp;
use crate::ApiState;

/// An admin's request. Extracting it is the access check, before the body is read.
pub(crate) struct HostAdmin(pub Caller);

impl FromRequestParts<ApiState> for HostAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.account.admin {
            return Err(ApiError::forbidden("Only admins can see and change hosts."));
        }
        Ok(HostAdmin(caller))
    }
}

/// `GET /hosts`: every host, by name.
pub async fn list(
    State(state): State<ApiState>,
    _admin: HostAdmin,
) -> ApiResult<Json<Vec<api::Host>>> {
    let hosts = state.store.hosts().await?;
    let load = load(&state).await?;
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        hosts.iter().map(|host| view(host, &load, now)).collect(),
    ))
}

/// `GET /hosts/{host}`.
pub async fn show(
    State(state): State<ApiState>,
    _admin: HostAdmin,
    Path(name): Path<String>,
) -> ApiResult<Json<api::Host>> {
    let host = find(&state, &name).await?;
    let load = load(&state).await?;
    Ok(Json(view(&host, &load, OffsetDateTime::now_utc())))
}

/// `POST /hosts`: adds a host and answers its credential, once.
pub async fn create(
    State(state): State<ApiState>,
    HostAdmin(caller): HostAdmin,
    Body(body): Body<api::HostCreate>,
) -> ApiResult<(StatusCode, Json<api::HostCreated>)> {
    let name = HostName::parse(body.name.trim())?;
    let credential = format!("{CREDENTIAL_PREFIX}{}", generate_api_key());
    let now = OffsetDateTime::now_utc();
    let host = state
        .store
        .add_host(&name, &hash_api_key(&credential), now)
        .await?;
    tracing::info!(host = %name, by = %caller.account.email, "added host");
    state.hosts_changed().await;
    let join_command = format!(
        "WHARF_HOST_CREDENTIAL={credential} wharf agent --control-plane {}",
        state.config.public_url
    );
    Ok((
        StatusCode::CREATED,
        Json(api::HostCreated {
            host: view(&host, &HashMap::new(), now),
            credential,
            join_command,
        }),
    ))
}

/// `PATCH /hosts/{host}`: starts or ends a drain.
pub async fn update(
    State(state): State<ApiState>,
    HostAdmin(caller): HostAdmin,
    Path(name): Path<String>,
    Body(body): Body<api::HostUpdate>,
) -> ApiResult<Json<api::Host>> {
    let Some(draining) = body.draining else {
        return Err(ApiError::invalid(
            "Nothing to change: send {\"draining\": true} to drain the host or false to end \
             its drain",
        ));
    };
    let host = state.store.set_host_draining(&name, draining).await?;
    tracing::info!(host = %name, draining, by = %caller.account.email, "host drain changed");
    state.hosts_changed().await;
    let load = load(&state).await?;
    Ok(Json(view(&host, &load, OffsetDateTime::now_utc())))
}

/// `DELETE /hosts/{host}`: revokes its credential; its dynos are placed elsewhere.
pub async fn destroy(
    State(state): State<ApiState>,
    HostAdmin(caller): HostAdmin,
    Path(name): Path<String>,
) -> ApiResult<Json<api::Host>> {
    let host = state.store.remove_host(&name).await?;
    tracing::info!(host = %name, by = %caller.account.email, "removed host");
    state.hosts_changed().await;
    Ok(Json(view(
        &host,
        &HashMap::new(),
        OffsetDateTime::now_utc(),
    )))
}

async fn find(state: &ApiState, name: &str) -> ApiResult<Host> {
    state.store.host(name).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "Couldn't find a host named {name}: `wharf hosts` lists them"
        ))
    })
}

/// Per host: how many dynos are placed on it and the memory they reserve.
async fn load(state: &ApiState) -> ApiResult<HashMap<Uuid, (u64, u64)>> {
    let mut load: HashMap<Uuid, (u64, u64)> = HashMap::new();
    for Placed { host, memory_mb } in state.store.placements().await?.into_values() {
        let entry = load.entry(host).or_default();
        entry.0 += 1;
        entry.1 += memory_mb;
    }
    Ok(load)
}

fn view(host: &Host, load: &HashMap<Uuid, (u64, u64)>, now: OffsetDateTime) -> api::Host {
    let (dynos, placed_memory_mb) = load.get(&host.id).copied().unwrap_or_default();
    api::Host {
        id: host.id.to_string(),
        name: host.name.to_string(),
        state: host.state(now).as_str().to_owned(),
        memory_mb: host.memory_mb,
        placed_memory_mb,
        dynos,
        address: host.address.clone(),
        epoch: host.epoch,
        last_heartbeat_at: host.last_heartbeat_at.map(timestamp),
        created_at: timestamp(host.created_at),
    }
}
