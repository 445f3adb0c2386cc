//! Builds without git, as Heroku's Builds API: upload a source tarball to the URL
//! `POST /apps/{app}/sources` gives, build it with `POST /apps/{app}/builds`, and follow the
//! build's `output_stream_url`. Also the app's buildpack list and build cache.

use std::path::PathBuf;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_build::builder::{random_token, BuildRequest};
use wharf_build::buildpack::BuildpackSource;
use wharf_build::leftovers::{source_expired, SOURCE_LIFETIME};
use wharf_build::log::BuildLog;
use wharf_model::Build;

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body as JsonBody;
use crate::range::{page_by, Order, Page, RangeSpec};
use crate::views;
use crate::ApiState;

/// The most bytes an uploaded source archive may have.
pub const SOURCE_UPLOAD_LIMIT: u64 = 1024 * 1024 * 1024;

fn sources_dir(state: &ApiState) -> PathBuf {
    state.builder.config().sources_dir()
}

fn source_path(state: &ApiState, token: &str) -> ApiResult<PathBuf> {
    if token.len() != 48 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("Couldn't find that source."));
    }
    Ok(sources_dir(state).join(token))
}

/// The secret of one of this server's source URLs.
fn source_token(state: &ApiState, url: &str) -> Option<String> {
    let prefix = format!("{}/sources/", state.config.public_url);
    url.strip_prefix(&prefix).map(str::to_owned)
}

pub async fn create_source(
    State(state): State<ApiState>,
    _ctx: AppCtx,
) -> ApiResult<(StatusCode, Json<api::Source>)> {
    let token = random_token();
    let path = source_path(&state, &token)?;
    let created = async {
        tokio::fs::create_dir_all(sources_dir(&state)).await?;
        tokio::fs::write(&path, b"").await
    }
    .await;
    created.map_err(|e| ApiError::internal(&anyhow::Error::new(e).context("create source")))?;
    let url = format!("{}/sources/{token}", state.config.public_url);
    Ok((
        StatusCode::CREATED,
        Json(api::Source {
            source_blob: api::SourceUrls {
                get_url: url.clone(),
                put_url: url,
            },
        }),
    ))
}

/// `PUT /sources/{token}`: the upload. The secret in the URL is the credential.
pub async fn upload_source(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    let path = source_path(&state, &token)?;
    live_source(&path).await?;
    save_body(body, &path, SOURCE_UPLOAD_LIMIT).await?;
    Ok(StatusCode::OK)
}

/// The source file at `path`, unless there is none or it is past its lifetime (the server
/// removes such files from time to time; until then they are refused all the same).
async fn live_source(path: &std::path::Path) -> ApiResult<std::fs::Metadata> {
    let metadata = tokio::fs::symlink_metadata(path)
        .await
        .ok()
        .filter(std::fs::Metadata::is_file)
        .ok_or_else(|| ApiError::not_found("Couldn't find that source."))?;
    if metadata
        .modified()
        .is_ok_and(|modified| source_expired(modified, std::time::SystemTime::now()))
    {
        return Err(ApiError::not_found(format!(
            "That source URL has expired (sources last {} minutes after their upload): create \
             a new one with POST /apps/{{app}}/sources",
            SOURCE_LIFETIME.as_secs() / 60
        )));
    }
    Ok(metadata)
}

/// `GET /sources/{token}`: what was uploaded.
pub async fn download_source(
    State(state): State<ApiState>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let path = source_path(&state, &token)?;
    live_source(&path).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::not_found("Couldn't find that source."))?;
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// Streams a request body to `path`, refusing more than `limit` bytes.
pub async fn save_body(body: Body, path: &std::path::Path, limit: u64) -> ApiResult<u64> {
    let saved = async {
        let mut file = tokio::fs::File::create(path).await?;
        let mut stream = body.into_data_stream();
        let mut total: u64 = 0;
        while let Some(chunk) = stream.try_next().await.map_err(std::io::Error::other)? {
            total += chunk.len() as u64;
            if total > limit {
                return Ok(None);
            }
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok::<_, std::io::Error>(Some(total))
    }
    .await
    .map_err(|e| ApiError::bad_request(format!("Could not read the upload: {e}")))?;
    match saved {
        Some(total) => Ok(total),
        None => {
            let _ = tokio::fs::remove_file(path).await;
            Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("The upload is over the limit of {limit} bytes"),
            ))
        }
    }
}

pub async fn list(
    State(state): State<ApiState>,
    ctx: AppCtx,
    headers: HeaderMap,
) -> ApiResult<Page<api::Build>> {
    let spec = RangeSpec::from_headers(&headers, &["created_at", "id"], Order::Asc)?;
    let builds = state.store.builds(ctx.app.id).await?;
    let items = builds
        .iter()
        .map(|b| views::build(b, &ctx.app, &state.config))
        .collect();
    let field = spec.field.clone();
    Ok(page_by(
        items,
        |b: &api::Build| match field.as_str() {
            "id" => b.id.clone(),
            _ => format!("{}{}", b.created_at, b.id),
        },
        &spec,
    ))
}

async fn find(state: &ApiState, ctx: &AppCtx, id: &str) -> ApiResult<Build> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found("Couldn't find that build."))?;
    state
        .store
        .build(ctx.app.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Couldn't find that build."))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<api::Build>> {
    let build = find(&state, &ctx, &id).await?;
    Ok(Json(views::build(&build, &ctx.app, &state.config)))
}

/// Starts a build of an uploaded source; it runs on after this answers.
pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    JsonBody(body): JsonBody<api::BuildCreate>,
) -> ApiResult<(StatusCode, Json<api::Build>)> {
    let token = source_token(&state, &body.source_blob.url).ok_or_else(|| {
        ApiError::invalid(format!(
            "source_blob.url must be a URL from POST /apps/{}/sources on this server",
            ctx.app.name
        ))
    })?;
    let source = source_path(&state, &token)?;
    let metadata = live_source(&source)
        .await
        .map_err(|refused| ApiError::invalid(refused.message))?;
    if metadata.len() == 0 {
        return Err(ApiError::invalid(
            "Nothing was uploaded to that source URL yet: PUT the tarball to its put_url first",
        ));
    }
    if let Some(buildpacks) = &body.buildpacks {
        let urls: Vec<String> = buildpacks.iter().map(|b| b.url.trim().to_owned()).collect();
        check_buildpacks(&state, &urls).await?;
        state.store.set_buildpacks(ctx.app.id, &urls).await?;
    }
    let (build, _log, handle) = state
        .builder
        .start(
            BuildRequest {
                app: ctx.app.clone(),
                user: ctx.caller.account.clone(),
                archive: source,
                source_url: Some(body.source_blob.url.clone()),
                version: body.source_blob.version.clone(),
                web_url: state.config.web_url(ctx.app.name.as_str()),
            },
            None,
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let (after, app_id, by) = (state.clone(), ctx.app.id, ctx.caller.account.email.clone());
    tokio::spawn(async move {
        if let Ok(result) = handle.await {
            after.released(app_id, &by, result.released);
        }
    });
    Ok((
        StatusCode::CREATED,
        Json(views::build(&build, &ctx.app, &state.config)),
    ))
}

/// `GET /build-output/{token}`: the build's output as plain text, streamed live while the
/// build runs and closed when it ends. The secret in the URL is the credential.
pub async fn output(
    State(state): State<ApiState>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let build = state
        .store
        .build_by_output_token(&token)
        .await?
        .ok_or_else(|| ApiError::not_found("Couldn't find that build."))?;
    let body = match state.builder.live_log(build.id) {
        Some(log) => Body::from_stream(follow(log)),
        None => {
            let path = state.builder.config().log_path(build.id);
            let bytes = tokio::fs::read(&path).await.unwrap_or_default();
            Body::from(bytes)
        }
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// The log's output from the start, chunk by chunk, until the build ends.
pub fn follow(
    log: std::sync::Arc<BuildLog>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::unfold((log, 0usize), |(log, offset)| async move {
        let chunk = log.read_from(offset).await?;
        let next = offset + chunk.len();
        Some((Ok(chunk), (log, next)))
    })
}

pub async fn purge_cache(State(state): State<ApiState>, ctx: AppCtx) -> ApiResult<Response> {
    state
        .builder
        .purge_cache(ctx.app.id)
        .await
        .context("purge build cache")
        .map_err(|e| ApiError::internal(&e))?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response())
}

pub async fn buildpacks(
    State(state): State<ApiState>,
    ctx: AppCtx,
) -> ApiResult<Json<Vec<api::BuildpackInstallation>>> {
    let urls = state.store.buildpacks(ctx.app.id).await?;
    Ok(Json(views::buildpack_installations(&urls)))
}

pub async fn set_buildpacks(
    State(state): State<ApiState>,
    ctx: AppCtx,
    JsonBody(body): JsonBody<api::BuildpackInstallationsUpdate>,
) -> ApiResult<Json<Vec<api::BuildpackInstallation>>> {
    let urls: Vec<String> = body
        .updates
        .iter()
        .map(|u| u.buildpack.trim().to_owned())
        .collect();
    check_buildpacks(&state, &urls).await?;
    state.store.set_buildpacks(ctx.app.id, &urls).await?;
    Ok(Json(views::buildpack_installations(&urls)))
}

/// Refuses a buildpack list unless each one is built in, registered by an admin, or a git
/// URL Wharf clones. A path on the server, or an unknown name, gets the one message that
/// says what to do, whether or not that path exists: the server's files are never looked at.
async fn check_buildpacks(state: &ApiState, urls: &[String]) -> ApiResult<()> {
    for url in urls {
        match BuildpackSource::parse(url).map_err(ApiError::invalid)? {
            BuildpackSource::Registered(name) => {
                if state.store.buildpack_registration(&name).await?.is_none() {
                    return Err(ApiError::invalid(BuildpackSource::refusal(url)));
                }
            }
            BuildpackSource::Git { url, .. } => {
                crate::destination::check(&state.outbound, "buildpacks", &url).await?;
            }
            BuildpackSource::Builtin(_) => {}
        }
    }
    Ok(())
}
