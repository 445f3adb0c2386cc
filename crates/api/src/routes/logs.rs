//! Log sessions, as Heroku's clients use them: `POST /apps/{app}/log-sessions` hands out a
//! `logplex_url` carrying its own short-lived secret, and `GET` on it answers
//! `text/event-stream`, one `id:`/`data:` event per line: the recent lines, then (with `tail`)
//! new ones as they come, with comment keep-alives. Event ids are the lines' numbers in the
//! app's log, so `Last-Event-ID` resumes exactly; a reader that fell behind further than the
//! ring reaches is told how many lines it missed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use tokio::sync::broadcast;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_dynos::{LogBuffer, LogLine, LogSource};
use wharf_logs::Entry;

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

/// An event's id is its line's number in the app's log: a client that reconnects with
/// `Last-Event-ID` gets exactly the lines after it.
fn event(entry: &Entry) -> Vec<u8> {
    format!("id: {}\ndata: {}\n\n", entry.seq, entry.line).into_bytes()
}

/// Tells a reader how many lines it missed (an event without an id, so `Last-Event-ID` stays
/// on the last line it got); Heroku's code for a tail that cannot keep up is L11.
fn missed_event(missed: u64) -> Vec<u8> {
    let line = LogLine::now(
        LogSource::Heroku,
        "logplex",
        format!(
            "Error L11 (Tail buffer overflow): {missed} messages dropped: this reader could not keep up with the app's log"
        ),
    );
    format!("data: {line}\n\n").into_bytes()
}

/// A live tail: new lines of one app from the broadcast, caught up from the ring when it lags.
struct Tail {
    live: broadcast::Receiver<(Uuid, Arc<Entry>)>,
    logs: LogBuffer,
    session: Session,
    /// The number of the last line of the app this tail has passed (sent or filtered out).
    last_seq: u64,
    ready: VecDeque<Vec<u8>>,
}

impl Tail {
    async fn next(mut self) -> Option<(Result<Vec<u8>, std::io::Error>, Tail)> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some((Ok(event), self));
            }
            match tokio::time::timeout(KEEP_ALIVE, self.live.recv()).await {
                Err(_) => return Some((Ok(b": ping\n\n".to_vec()), self)),
                Ok(Ok((app_id, entry))) => {
                    if app_id == self.session.app_id && entry.seq > self.last_seq {
                        if entry.seq > self.last_seq + 1 {
                            // Lines the broadcast did not bring (appended between the history
                            // and the subscription): read them from the ring.
                            self.catch_up();
                        }
                        if entry.seq > self.last_seq {
                            self.last_seq = entry.seq;
                            if wanted(&self.session, &entry) {
                                self.ready.push_back(event(&entry));
                            }
                        }
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => self.catch_up(),
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    }

    /// Queues the app's lines after `last_seq` that the ring holds, after a count of those it
    /// no longer holds.
    fn catch_up(&mut self) {
        let since = self.logs.since(self.session.app_id, self.last_seq);
        if since.missed > 0 {
            self.ready.push_back(missed_event(since.missed));
        }
        for entry in since.entries {
            self.last_seq = entry.seq;
            if wanted(&self.session, &entry) {
                self.ready.push_back(event(&entry));
            }
        }
    }
}

pub async fn stream(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let resume_after: Option<u64> = headers
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
    let mut head: Vec<Vec<u8>> = Vec::new();
    let last_seq;
    if let Some(after) = resume_after {
        let since = logs.since(session.app_id, after);
        if since.missed > 0 {
            head.push(missed_event(since.missed));
        }
        last_seq = since.entries.last().map_or(after, |entry| entry.seq);
        head.extend(
            since
                .entries
                .iter()
                .filter(|entry| wanted(&session, entry))
                .map(|entry| event(entry)),
        );
    } else {
        let recent = logs.recent_entries(session.app_id, MAX_LINES);
        last_seq = recent.last().map_or(0, |entry| entry.seq);
        let shown: Vec<&Arc<Entry>> = recent
            .iter()
            .filter(|entry| wanted(&session, entry))
            .collect();
        let skip = shown.len().saturating_sub(session.lines);
        head.extend(shown[skip..].iter().map(|entry| event(entry)));
    }
    let head = futures_util::stream::iter(head.into_iter().map(Ok::<_, std::io::Error>));
    let body = if session.tail {
        let tail = Tail {
            live,
            logs,
            session,
            last_seq,
            ready: VecDeque::new(),
        };
        let tail = futures_util::stream::unfold(tail, Tail::next);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use wharf_logs::BROADCAST_CAPACITY;

    fn session(app_id: Uuid, dyno: Option<&str>) -> Session {
        Session {
            app_id,
            lines: DEFAULT_LINES,
            tail: true,
            dyno: dyno.map(str::to_owned),
            source: None,
            created: Instant::now(),
        }
    }

    fn text(event: &[u8]) -> String {
        String::from_utf8(event.to_vec()).unwrap()
    }

    /// A tail that fell further behind than the broadcast holds is told how many lines it
    /// missed, then gets what the ring holds, then new lines: no duplicates, no gaps.
    #[tokio::test]
    async fn a_slow_tail_is_told_what_it_missed_and_catches_up() {
        let logs = LogBuffer::new(100);
        let app = Uuid::new_v4();
        let mut tail = Tail {
            live: logs.subscribe(),
            logs: logs.clone(),
            session: session(app, None),
            last_seq: 0,
            ready: VecDeque::new(),
        };
        let total = BROADCAST_CAPACITY as u64 + 1000;
        for n in 1..=total {
            logs.append(
                app,
                LogLine::now(LogSource::App, "web.1", format!("line {n}")),
            );
            // Another app's lines never reach this tail.
            logs.append(
                Uuid::new_v4(),
                LogLine::now(LogSource::App, "web.1", "other"),
            );
        }
        let mut events = Vec::new();
        for _ in 0..101 {
            let (event, next) = tail.next().await.unwrap();
            events.push(text(&event.unwrap()));
            tail = next;
        }
        assert!(
            events[0].starts_with("data: ")
                && events[0].contains(&format!(
                    "heroku[logplex]: Error L11 (Tail buffer overflow): {} messages dropped",
                    total - 100
                )),
            "{}",
            events[0]
        );
        for (event, seq) in events[1..].iter().zip(total - 99..=total) {
            assert!(event.starts_with(&format!("id: {seq}\n")), "{event}");
            assert!(
                event.ends_with(&format!("app[web.1]: line {seq}\n\n")),
                "{event}"
            );
        }
        logs.append(app, LogLine::now(LogSource::App, "web.1", "new"));
        let (event, _) = tail.next().await.unwrap();
        let event = text(&event.unwrap());
        assert!(
            event.starts_with(&format!("id: {}\n", total + 1)),
            "{event}"
        );
    }

    #[tokio::test]
    async fn a_tail_skips_lines_its_filter_refuses() {
        let logs = LogBuffer::new(100);
        let app = Uuid::new_v4();
        let tail = Tail {
            live: logs.subscribe(),
            logs: logs.clone(),
            session: session(app, Some("worker")),
            last_seq: 0,
            ready: VecDeque::new(),
        };
        logs.append(app, LogLine::now(LogSource::App, "web.1", "no"));
        logs.append(app, LogLine::now(LogSource::App, "worker.1", "yes"));
        let (event, _) = tail.next().await.unwrap();
        let event = text(&event.unwrap());
        assert!(
            event.starts_with("id: 2\n") && event.contains("app[worker.1]: yes"),
            "{event}"
        );
    }
}
