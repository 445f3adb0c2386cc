//! Log sessions, as Heroku's clients use them: `POST /apps/{app}/log-sessions` hands out a
//! `logplex_url` carrying its own short-lived secret, and `GET` on it answers
//! `text/event-stream`, one `id:`/`data:` event per line: the recent lines, then (with `tail`)
//! new ones as they come, with comment keep-alives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_dynos::LogLine;

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body as JsonBody;
use crate::views::timestamp;
use crate::ApiState;

/// How long a `logplex_url` may wait before it is first read.
const SESSION_TTL: Duration = Duration::from_secs(300);
/// Lines sent when the client names no number.
const DEFAULT_LINES: usize = 100;
/// The most lines one session replays.
const MAX_LINES: usize = 1500;
/// A comment line this often keeps proxies and clients from timing an idle tail out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Clone)]
struct Session {
    app_id: Uuid,
    lines: usize,
    tail: bool,
    dyno: Option<String>,
    source: Option<String>,
    created: Instant,
}

/// Log sessions handed out and not yet read, by secret.
#[derive(Clone, Default)]
pub struct LogSessions(Arc<Mutex<HashMap<String, Session>>>);

impl LogSessions {
    fn insert(&self, token: String, session: Session) {
        let mut sessions = self.0.lock().expect("log sessions lock is never poisoned");
        sessions.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        sessions.insert(token, session);
    }

    /// A session's secret works for its first read and reconnects within its lifetime.
    fn get(&self, token: &str) -> Option<Session> {
        let sessions = self.0.lock().expect("log sessions lock is never poisoned");
        sessions
            .get(token)
            .filter(|s| s.created.elapsed() < SESSION_TTL || s.tail)
            .cloned()
    }
}

pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    JsonBody(body): JsonBody<api::LogSessionCreate>,
) -> ApiResult<(StatusCode, Json<api::LogSession>)> {
    if let Some(source) = &body.source {
        if source != "app" && source != "heroku" {
            return Err(ApiError::invalid(format!(
                "Log source {source:?} is not app or heroku"
            )));
        }
    }
    let token = crate::random_token();
    state.log_sessions.insert(
        token.clone(),
        Session {
            app_id: ctx.app.id,
            lines: (body.lines.map_or(DEFAULT_LINES, |n| n as usize)).min(MAX_LINES),
            tail: body.tail.unwrap_or(false),
            dyno: body.dyno.filter(|d| !d.is_empty()),
            source: body.source,
            created: Instant::now(),
        },
    );
    let now = timestamp(time::OffsetDateTime::now_utc());
    Ok((
        StatusCode::CREATED,
        Json(api::LogSession {
            id: Uuid::new_v4().to_string(),
            logplex_url: format!("{}/log-stream/{token}", state.config.public_url),
            created_at: now.clone(),
            updated_at: now,
        }),
    ))
}

/// Whether a line passes a session's filters: `dyno` is a dyno (`web.1`) or a process type
/// (`web`); `source` is `app` or `heroku`.
fn wanted(session: &Session, line: &LogLine) -> bool {
    let dyno_ok = session.dyno.as_deref().is_none_or(|dyno| {
        line.process == dyno
            || line
                .process
                .strip_prefix(dyno)
                .is_some_and(|rest| rest.starts_with('.'))
    });
    let source_ok = session
        .source
        .as_deref()
        .is_none_or(|source| source == line.source.as_str());
    dyno_ok && source_ok
}

fn event(id: u64, line: &LogLine) -> Vec<u8> {
    format!("id: {id}\ndata: {line}\n\n").into_bytes()
}

pub async fn stream(
    State(state): State<ApiState>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let session = state
        .log_sessions
        .get(&token)
        .ok_or_else(|| ApiError::not_found("That log session has expired: start another."))?;
    let logs = state.dynos.logs().clone();
    // Subscribe before reading history, so no line falls between the two.
    let live = logs.subscribe();
    let history: Vec<Vec<u8>> = logs
        .recent(session.app_id, MAX_LINES)
        .iter()
        .filter(|line| wanted(&session, line))
        .rev()
        .take(session.lines)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .enumerate()
        .map(|(i, line)| event(i as u64 + 1, line))
        .collect();
    let next_id = history.len() as u64 + 1;
    let head = futures_util::stream::iter(history.into_iter().map(Ok::<_, std::io::Error>));
    let body = if session.tail {
        let tail = futures_util::stream::unfold(
            (live, next_id, session),
            |(mut live, id, session)| async move {
                loop {
                    match tokio::time::timeout(KEEP_ALIVE, live.recv()).await {
                        Err(_) => return Some((Ok(b": ping\n\n".to_vec()), (live, id, session))),
                        Ok(Ok((app_id, line))) => {
                            if app_id == session.app_id && wanted(&session, &line) {
                                return Some((Ok(event(id, &line)), (live, id + 1, session)));
                            }
                        }
                        Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(missed))) => {
                            let note = format!(
                                ": this reader fell behind; {missed} lines were skipped\n\n"
                            );
                            return Some((Ok(note.into_bytes()), (live, id, session)));
                        }
                        Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                    }
                }
            },
        );
        Body::from_stream(futures_util::StreamExt::chain(head, tail))
    } else {
        Body::from_stream(head)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    Ok(response)
}
