//! Registered buildpacks (a Wharf extension): an admin names a directory on the server
//! (`POST /buildpack-registrations`), and apps then use it by that name in their buildpack
//! lists. A user can never name a server path directly: only what an admin registered is
//! copied into builds.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path as FsPath, PathBuf};

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use wharf_api_types as api;
use wharf_model::BuildpackName;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::views;
use crate::ApiState;

/// An admin's request. Extracting it is the access check, before the body is read, so that
/// a non-admin learns nothing from how a body is judged.
pub(crate) struct AdminCaller(pub Caller);

impl FromRequestParts<ApiState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.account.admin {
            return Err(ApiError::forbidden(
                "Only admins can register and unregister buildpacks.",
            ));
        }
        Ok(AdminCaller(caller))
    }
}

/// `GET /buildpack-registrations`: every user sees the names; only admins see the
/// directories and who registered them.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<api::BuildpackRegistration>>> {
    let registrations = state.store.buildpack_registrations().await?;
    Ok(Json(
        registrations
            .iter()
            .map(|r| views::buildpack_registration(r, caller.account.admin))
            .collect(),
    ))
}

/// `POST /buildpack-registrations`: checks that the directory is a buildpack now (admins may
/// learn what exists on the server), then registers it.
pub async fn create(
    State(state): State<ApiState>,
    AdminCaller(caller): AdminCaller,
    Body(body): Body<api::BuildpackRegistrationCreate>,
) -> ApiResult<(StatusCode, Json<api::BuildpackRegistration>)> {
    let name = BuildpackName::parse(body.name.trim())?;
    let dir = buildpack_dir(&body.dir).await?;
    let registration = state
        .store
        .register_buildpack(name.as_str(), &dir, &caller.account)
        .await?;
    tracing::info!(buildpack = %name, dir, by = %caller.account.email, "registered buildpack");
    Ok((
        StatusCode::CREATED,
        Json(views::buildpack_registration(&registration, true)),
    ))
}

/// `DELETE /buildpack-registrations/{name}`: apps that list the name keep it; their next
/// build fails and says the buildpack is not registered.
pub async fn destroy(
    State(state): State<ApiState>,
    AdminCaller(caller): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<api::BuildpackRegistration>> {
    let registration = state.store.unregister_buildpack(&name).await?;
    tracing::info!(buildpack = %name, by = %caller.account.email, "unregistered buildpack");
    Ok(Json(views::buildpack_registration(&registration, true)))
}

/// The directory an admin named, written without `.` or a trailing `/`, once it is known to
/// be a buildpack: an absolute path to a directory with executable `bin/detect` and
/// `bin/compile`.
async fn buildpack_dir(raw: &str) -> ApiResult<String> {
    let invalid = |why: &str| ApiError::invalid(format!("Buildpack directory {raw:?} {why}"));
    if raw.chars().any(char::is_control) {
        return Err(invalid(
            "has control characters: give a plain absolute path",
        ));
    }
    let path = FsPath::new(raw);
    if !path.is_absolute() {
        return Err(invalid(
            "is not an absolute path: give the directory's full path",
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(
            "has a `..` component: give the directory's path without one",
        ));
    }
    let dir: PathBuf = path.components().collect();
    match tokio::fs::metadata(&dir).await {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Err(invalid("is not a directory")),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(invalid("does not exist on the server"))
        }
        Err(error) => return Err(invalid(&format!("cannot be read: {error}"))),
    }
    for script in ["detect", "compile"] {
        let executable = tokio::fs::metadata(dir.join("bin").join(script))
            .await
            .map(|m| m.is_file().then_some(m.permissions().mode() & 0o111 != 0));
        match executable {
            Ok(Some(true)) => {}
            Ok(Some(false)) => {
                return Err(invalid(&format!(
                    "has a bin/{script} that is not executable: `chmod +x` it"
                )))
            }
            _ => {
                return Err(invalid(&format!(
                    "has no bin/{script}: a buildpack has bin/detect and bin/compile"
                )))
            }
        }
    }
    dir.to_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid("is not UTF-8"))
}
