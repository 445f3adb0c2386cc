//! `POST /internal/push/{token}`: the other end of a repository's `pre-receive` hook. The
//! hook sends the pushed tree (a tar from `git archive`) and the ref update; the answer is the
//! build's output, live, ending with a status line the hook reads to accept or refuse the push.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use wharf_build::builder::{AppLockGuard, BuildRequest};

use super::builds::save_body;
use crate::error::{ApiError, ApiResult};
use crate::git::{PushSession, PUSH_STATUS_MARKER, ZERO_REV};
use crate::ApiState;

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

    // Runs in its own task so that the answer streams from the start ("Waiting for another
    // build...") while the lock is awaited.
    let (chunks, body) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        let guard = match state.builder.try_lock_app(session.app.id) {
            Some(guard) => guard,
            None => {
                let waiting = format!(
                    "-----> Waiting for another build of {} to finish\n",
                    session.app.name
                );
                let _ = chunks.send(waiting.into_bytes()).await;
                state.builder.lock_app(session.app.id).await
            }
        };
        // Held until git has updated the branch (or given up): the next push to this app
        // sees the branch this one leaves.
        session.hold(guard.clone());
        let status = match branch_at(&session.repo, &reference).await {
            Ok(current) if current == old => {
                run_build(&state, &session, new, &archive, guard, &chunks).await
            }
            Ok(_) => {
                let message = format!(
                    " !     {reference} moved while this push waited for another build: fetch, merge and push again\n"
                );
                let _ = chunks.send(message.into_bytes()).await;
                "failed"
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "read the pushed branch");
                "failed"
            }
        };
        let _ = tokio::fs::remove_file(&archive).await;
        let _ = chunks
            .send(format!("{PUSH_STATUS_MARKER}{status}\n").into_bytes())
            .await;
    });
    let stream = tokio_stream_from(body);
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// Builds the pushed tree and forwards the output; the push's status word.
async fn run_build(
    state: &ApiState,
    session: &PushSession,
    version: String,
    archive: &std::path::Path,
    guard: AppLockGuard,
    chunks: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> &'static str {
    let started = state
        .builder
        .start(
            BuildRequest {
                app: session.app.clone(),
                user: session.user.clone(),
                archive: archive.to_owned(),
                source_url: None,
                version: Some(version),
                web_url: state.config.web_url(session.app.name.as_str()),
            },
            Some(guard),
        )
        .await;
    let (_build, log, handle) = match started {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "start a build");
            return "failed";
        }
    };
    let mut offset = 0;
    while let Some(chunk) = log.read_from(offset).await {
        offset += chunk.len();
        let _ = chunks.send(chunk).await;
    }
    match handle.await {
        Ok(result) => {
            state.released(session.app.id, &session.user.email, result.released);
            if result.released.is_some() {
                "ok"
            } else {
                "failed"
            }
        }
        Err(_) => "failed",
    }
}

/// The commit `reference` points at in `repo`, or all zeros when it does not exist.
async fn branch_at(repo: &std::path::Path, reference: &str) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet", reference])
        .output()
        .await?;
    let current = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(if current.is_empty() {
        ZERO_REV.to_owned()
    } else {
        current
    })
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx).map(|chunk| chunk.map(Ok)))
}
