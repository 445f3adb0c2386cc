//! `git push` and `git fetch` over smart HTTP: each app's repository at `/<app>.git`, served
//! by the real `git http-backend` (CGI). Credentials are HTTP Basic with any user name and an
//! API key as the password, as Heroku's credential helper sends them.
//!
//! A push runs the build while it waits: the repository's `pre-receive` hook (`wharf git-hook
//! pre-receive`) sends the pushed tree to `/internal/push/<token>`, a capability URL made for
//! this one push, and prints the build's output, which git shows the pusher as `remote:` lines.
//! A failed build makes the hook fail, so the branch is not updated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::io::{ReaderStream, StreamReader};
use wharf_build::builder::AppLockGuard;
use wharf_model::{Account, App};

use crate::auth::{credentials, hash_api_key};
use crate::error::ApiError;
use crate::ApiState;

/// What the hook of one push may do: build this app, as this user, in this repository.
#[derive(Clone)]
pub struct PushSession {
    pub app: App,
    pub user: Account,
    pub repo: PathBuf,
    /// The app's build lock, once the push's build took it: released when the session ends
    /// (git is done with the branch) and the build is over, whichever is later.
    held: Arc<Mutex<Option<AppLockGuard>>>,
}

impl PushSession {
    pub fn hold(&self, guard: AppLockGuard) {
        *self.held.lock().expect("push lock slot is never poisoned") = Some(guard);
    }
}

/// Pushes in progress, by the secret in their hook URL.
#[derive(Clone, Default)]
pub struct Pushes(Arc<Mutex<HashMap<String, PushSession>>>);

impl Pushes {
    pub fn get(&self, token: &str) -> Option<PushSession> {
        self.0
            .lock()
            .expect("pushes lock is never poisoned")
            .get(token)
            .cloned()
    }

    fn insert(&self, token: String, session: PushSession) {
        self.0
            .lock()
            .expect("pushes lock is never poisoned")
            .insert(token, session);
    }

    fn remove(&self, token: &str) {
        self.0
            .lock()
            .expect("pushes lock is never poisoned")
            .remove(token);
    }
}

/// The last line of a push's build output, `<marker>ok` or `<marker>failed`: the status the
/// pre-receive hook exits with.
pub const PUSH_STATUS_MARKER: &str = "\u{1e}wharf-push:";

/// What git calls the commit of a branch that does not exist.
pub const ZERO_REV: &str = "0000000000000000000000000000000000000000";

/// The hook installed in every app repository.
const PRE_RECEIVE_HOOK: &str = "#!/bin/sh\n\
# Installed by Wharf: builds what is pushed, and refuses the push if the build fails.\n\
exec \"$WHARF_BIN\" git-hook pre-receive\n";

pub fn repos_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("repos")
}

fn repo_path(data_dir: &Path, app: &App) -> PathBuf {
    repos_dir(data_dir).join(format!("{}.git", app.id))
}

/// Creates the app's bare repository on first use and (re)installs its hook. Concurrent
/// first pushes race safely: each initializes a private directory and renames it into place,
/// and the losers' renames fail harmlessly.
async fn ensure_repo(path: &Path) -> anyhow::Result<()> {
    if !path.join("HEAD").is_file() {
        let fresh = path.with_extension(format!("init-{}", crate::random_token()));
        let output = tokio::process::Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&fresh)
            .output()
            .await
            .context("run git init")?;
        if !output.status.success() {
            anyhow::bail!(
                "git init: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        if tokio::fs::rename(&fresh, path).await.is_err() {
            let _ = tokio::fs::remove_dir_all(&fresh).await;
            if !path.join("HEAD").is_file() {
                anyhow::bail!("could not create the repository {}", path.display());
            }
        }
    }
    let hook = path.join("hooks").join("pre-receive");
    if tokio::fs::read(&hook).await.ok().as_deref() == Some(PRE_RECEIVE_HOOK.as_bytes()) {
        return Ok(());
    }
    // Another push may be running the hook right now: writing over a running executable
    // fails (ETXTBSY), so the new hook replaces the old one by rename.
    tokio::fs::create_dir_all(path.join("hooks")).await?;
    let fresh = hook.with_extension(format!("new-{}", crate::random_token()));
    tokio::fs::write(&fresh, PRE_RECEIVE_HOOK)
        .await
        .with_context(|| format!("write {}", fresh.display()))?;
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755)).await?;
    tokio::fs::rename(&fresh, &hook)
        .await
        .with_context(|| format!("install {}", hook.display()))?;
    Ok(())
}

/// `GET /<app>.git/info/refs`, `POST /<app>.git/git-receive-pack` and `.../git-upload-pack`.
pub async fn serve(
    State(state): State<ApiState>,
    UrlPath(repo): UrlPath<String>,
    uri: Uri,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // What follows `/<app>.git/`: `info/refs`, `git-receive-pack` or `git-upload-pack`.
    let service = uri
        .path()
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default();
    match handle(state, repo, service, method, query, headers, body).await {
        Ok(response) => response,
        Err(GitError::Api(error)) => error.into_response(),
        Err(GitError::Unauthorized) => {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "Authenticate with any user name and your Wharf API key as the password\n",
            )
                .into_response();
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"Wharf\""),
            );
            response
        }
    }
}

enum GitError {
    Api(ApiError),
    Unauthorized,
}

impl From<ApiError> for GitError {
    fn from(error: ApiError) -> Self {
        GitError::Api(error)
    }
}

impl From<wharf_store::StoreError> for GitError {
    fn from(error: wharf_store::StoreError) -> Self {
        GitError::Api(error.into())
    }
}

async fn handle(
    state: ApiState,
    repo: String,
    service_path: String,
    method: Method,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GitError> {
    let Some(name) = repo.strip_suffix(".git") else {
        return Err(ApiError::not_found("The requested API endpoint was not found.").into());
    };
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(credentials)
        .ok_or(GitError::Unauthorized)?;
    let caller = state
        .store
        .authenticate(&hash_api_key(&key.key))
        .await?
        .ok_or(GitError::Unauthorized)?;
    let access = state
        .store
        .app_for(&caller.account, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Repository {name}.git not found.")))?;
    let app = access.app;
    let path = repo_path(&state.config.data_dir, &app);
    ensure_repo(&path)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let receiving = service_path == "git-receive-pack"
        || query
            .as_deref()
            .is_some_and(|q| q.contains("service=git-receive-pack"));

    let token = crate::random_token();
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", repos_dir(&state.config.data_dir))
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_HTTP_RECEIVE_PACK", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", format!("/{}.git/{}", app.id, service_path))
        .env("QUERY_STRING", query.unwrap_or_default())
        .env("REMOTE_USER", caller.account.email.as_str())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("WHARF_BIN", &state.config.wharf_binary)
        .env(
            "WHARF_HOOK_URL",
            format!("{}/internal/push/{token}", state.config.internal_url),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (header, variable) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) {
            command.env(variable, value);
        }
    }
    if receiving && method == Method::POST {
        state.pushes.insert(
            token.clone(),
            PushSession {
                app: app.clone(),
                user: caller.account.clone(),
                repo: path.clone(),
                held: Arc::default(),
            },
        );
    }
    let mut child = command
        .spawn()
        .map_err(|e| ApiError::internal(&anyhow::Error::new(e).context("run git http-backend")))?;

    let mut stdin = child.stdin.take().expect("piped stdin");
    let request_body = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    tokio::spawn(async move {
        let mut request_body = std::pin::pin!(request_body);
        if let Err(error) = tokio::io::copy(&mut request_body, &mut stdin).await {
            tracing::debug!(%error, "git request body ended early");
        }
        let _ = stdin.shutdown().await;
    });

    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut reader = BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut response_headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).await.map_err(|e| {
            ApiError::internal(&anyhow::Error::new(e).context("read git http-backend"))
        })?;
        let line = line.trim_end();
        if read == 0 || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                status = value
                    .split_whitespace()
                    .next()
                    .and_then(|code| code.parse().ok())
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            } else if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                response_headers.append(name, value);
            }
        }
    }
    let pushes = state.pushes.clone();
    let store = state.store.clone();
    let app_id = app.id;
    let repo_for_size = path.clone();
    tokio::spawn(async move {
        let mut errors = String::new();
        let _ = stderr.read_to_string(&mut errors).await;
        let exit = child.wait().await;
        pushes.remove(&token);
        if !errors.trim().is_empty() {
            tracing::debug!(app = %app_id, stderr = errors.trim(), "git http-backend");
        }
        if receiving && exit.is_ok_and(|s| s.success()) {
            match dir_size(&repo_for_size).await {
                Ok(bytes) => {
                    if let Err(error) = store.set_repo_size(app_id, bytes as i64).await {
                        tracing::warn!(error = format!("{error:#}"), "record repository size");
                    }
                }
                Err(error) => tracing::warn!(error = format!("{error:#}"), "measure repository"),
            }
        }
    });
    let mut response = Response::new(Body::from_stream(ReaderStream::new(reader)));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

async fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        fn walk(path: &Path) -> std::io::Result<u64> {
            let mut total = 0;
            for entry in std::fs::read_dir(path)? {
                let entry = entry?;
                let metadata = entry.metadata()?;
                total += if metadata.is_dir() {
                    walk(&entry.path())?
                } else {
                    metadata.len()
                };
            }
            Ok(total)
        }
        walk(&dir).with_context(|| format!("measure {}", dir.display()))
    })
    .await?
}
