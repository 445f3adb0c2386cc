//! `POST /internal/push/{token}`: the other end of a repository's `pre-receive` hook. The
//! hook sends the pushed tree (a tar from `git archive`) and the ref update; the answer is the
//! build's output, live, ending with a status line the hook reads to accept or refuse the push.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::StreamExt;
use wharf_build::builder::BuildRequest;

use super::builds::{follow, save_body};
use crate::error::{ApiError, ApiResult};
use crate::ApiState;

/// The last line of a push's output: the status the hook exits with.
pub const STATUS_MARKER: &str = "\u{1e}wharf-push:";
const ZERO_REV: &str = "0000000000000000000000000000000000000000";

pub async fn push(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let session = state
        .pushes
        .get(&token)
        .ok_or_else(|| ApiError::not_found("No push is in progress for that URL."))?;
    let header = |name: &str| -> ApiResult<String> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad_request(format!("the hook must send {name}")))
    };
    let (old, new, reference) = (
        header("x-wharf-old-rev")?,
        header("x-wharf-new-rev")?,
        header("x-wharf-ref")?,
    );
    let archive = state
        .config
        .data_dir
        .join("builds")
        .join(format!("push-{token}.tar"));
    tokio::fs::create_dir_all(state.config.data_dir.join("builds"))
        .await
        .map_err(|e| ApiError::internal(&e.into()))?;
    save_body(body, &archive, state.builder.config().source_limit).await?;

    let repo = session.repo.clone();
    let precondition = Box::new(move || {
        let output = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(["rev-parse", "--verify", "--quiet", &reference])
            .output()
            .map_err(|e| format!("git rev-parse: {e}"))?;
        let current = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let current = if current.is_empty() {
            ZERO_REV.to_owned()
        } else {
            current
        };
        if current == old {
            Ok(())
        } else {
            Err(format!(
                "{reference} moved while this push waited for another build: fetch, merge and push again"
            ))
        }
    });
    let (_build, log, handle) = state
        .builder
        .start(
            BuildRequest {
                app: session.app.clone(),
                user: session.user.clone(),
                archive: archive.clone(),
                source_url: None,
                version: Some(new),
                web_url: state.config.web_url(session.app.name.as_str()),
            },
            Some(precondition),
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let ending = futures_util::stream::once(async move {
        let released = handle.await.ok().and_then(|result| result.released);
        let _ = tokio::fs::remove_file(&archive).await;
        let status = if released.is_some() { "ok" } else { "failed" };
        Ok::<_, std::io::Error>(format!("{STATUS_MARKER}{status}\n").into_bytes())
    });
    let stream = follow(log).chain(ending);
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
