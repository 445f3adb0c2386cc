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

/// An event's id is its line's time in microseconds since the epoch: a client that reconnects
/// with `Last-Event-ID` gets only lines after it.
fn event_id(line: &LogLine) -> i128 {
    line.at.unix_timestamp_nanos() / 1_000
}

fn event(line: &LogLine) -> Vec<u8> {
    format!("id: {}\ndata: {line}\n\n", event_id(line)).into_bytes()
}

pub async fn stream(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let resume_after: Option<i128> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
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
        .filter(|line| resume_after.is_none_or(|after| event_id(line) > after))
        .rev()
        .take(if resume_after.is_some() {
            MAX_LINES
        } else {
            session.lines
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(event)
        .collect();
    let head = futures_util::stream::iter(history.into_iter().map(Ok::<_, std::io::Error>));
    let body = if session.tail {
        let tail =
            futures_util::stream::unfold((live, session), |(mut live, session)| async move {
                loop {
                    match tokio::time::timeout(KEEP_ALIVE, live.recv()).await {
                        Err(_) => return Some((Ok(b": ping\n\n".to_vec()), (live, session))),
                        Ok(Ok((app_id, line))) => {
                            if app_id == session.app_id && wanted(&session, &line) {
                                return Some((Ok(event(&line)), (live, session)));
                            }
                        }
                        Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(missed))) => {
                            let note = format!(
                                ": this reader fell behind; {missed} lines were skipped\n\n"
                            );
                            return Some((Ok(note.into_bytes()), (live, session)));
                        }
                        Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                    }
                }
            });
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
