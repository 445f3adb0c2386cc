//! One request through the router: find the app by host, decide from its routes (serve,
//! hold for a booting app, or refuse with Heroku's code), pick a dyno (the one a session
//! affinity cookie names, when the app asks for affinity and that dyno is up), send the
//! request with rewritten headers, and stream the response back (or bridge an upgraded
//! connection).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::affinity;
use crate::balance::{Balancer, Outstanding};
use crate::body::{ClientBodyState, DynoBody, ForwardBody, OnEnd, ProxyBody};
use crate::config::RouterConfig;
use crate::error::{ClientError, DynoError, RouterError};
use crate::headers::{self, Forwarded};
use crate::host::{app_for_host, normalize_host, request_host, BadHost};
use crate::logline::RouterLogLine;
use crate::pages;
use crate::pool::Pool;
use crate::record::{LogSink, RequestRecord};
use crate::table::{decide, Decision, RouteTable};
use crate::upstream::{DynoConnection, RequestHead, ResponseBody, ResponseHead};

/// At most this many dynos are tried for one request (each refused its connection).
pub const MAX_DYNOS_TRIED: usize = 3;

/// At most this many times a request is sent again because a pooled connection turned out to
/// be closed (before the request was written, or, for an idempotent request without a body,
/// before any response).
const MAX_STALE_RETRIES: usize = 2;

/// What every request shares.
pub(crate) struct Shared {
    /// Lowercase.
    pub base_domain: String,
    pub config: RouterConfig,
    pub routes: watch::Receiver<Arc<RouteTable>>,
    pub sink: LogSink,
    pub balancer: Balancer,
    pub pool: Pool,
    /// Apps told to wake and not yet seen up.
    waking: Mutex<HashSet<Uuid>>,
    /// Requests held for a booting app right now.
    pub held: HeldRequests,
    /// Set once the router stops accepting (shutdown): no new request reaches any dyno.
    pub stopped: std::sync::atomic::AtomicBool,
}

/// How many requests are held for booting apps right now. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HeldRequests(Arc<AtomicUsize>);

impl HeldRequests {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn hold(&self) -> HeldGuard<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        HeldGuard(self)
    }
}

struct HeldGuard<'a>(&'a HeldRequests);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client connection a request came on.
pub(crate) struct ConnInfo {
    /// The router thread serving the connection (its dyno connections are pooled apart).
    pub thread: usize,
    /// Who the client is and how it connected, for the `X-Forwarded-*` headers.
    pub forwarded: Forwarded,
    pub shutdown: CancellationToken,
    /// Upgraded connections are tracked with the rest.
    pub tracker: TaskTracker,
}

impl Shared {
    pub fn new(
        config: RouterConfig,
        routes: watch::Receiver<Arc<RouteTable>>,
        sink: LogSink,
    ) -> Shared {
        let pool = Pool::new(config.threads);
        Shared {
            base_domain: config.base_domain.trim_matches('.').to_ascii_lowercase(),
            config,
            routes,
            sink,
            balancer: Balancer::default(),
            pool,
            waking: Mutex::new(HashSet::new()),
            held: HeldRequests::default(),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Holds a request for `app_name` until a web dyno is up (the table it is in), the app
    /// turns to an error, or the boot timeout passes (H20). Waits on the route table, with no
    /// polling.
    async fn hold(&self, app_name: &str, app_id: Uuid) -> Result<Arc<RouteTable>, DynoError> {
        let deadline = Instant::now() + self.config.timeouts.boot;
        let _held = self.held.hold();
        let mut routes = self.routes.clone();
        loop {
            // The newest table decides (one saying a dyno is up ends the wait before any wake).
            let table = routes.borrow_and_update().clone();
            let decision = table.apps.get(app_name).map(decide);
            match decision {
                Some(Decision::Forward) => {
                    self.woken(app_id);
                    return Ok(table);
                }
                Some(Decision::Refuse(error)) => {
                    self.woken(app_id);
                    return Err(error);
                }
                Some(Decision::Hold { wake: true }) => self.wake(app_id),
                // Not booting (a dyno restarting), or gone from the table for now (renamed,
                // or being rebuilt): keep waiting.
                Some(Decision::Hold { wake: false }) | None => {}
            }
            match tokio::time::timeout_at(deadline, routes.changed()).await {
                Ok(Ok(())) => {}
                // The table's publisher is gone (shutting down) or time is up.
                Ok(Err(_)) | Err(_) => {
                    self.woken(app_id);
                    return Err(DynoError::BootTimeout);
                }
            }
        }
    }

    /// Tells the dyno manager to wake `app_id`, unless it already was told.
    fn wake(&self, app_id: Uuid) {
        let Some(wake) = &self.config.wake else {
            return;
        };
        let mut waking = self.waking.lock().expect("waking lock poisoned");
        if waking.contains(&app_id) {
            return;
        }
        // A full channel means wake signals are pending: try again on the next table change.
        if wake.try_send(app_id).is_ok() {
            waking.insert(app_id);
        }
    }

    fn woken(&self, app_id: Uuid) {
        let mut waking = self.waking.lock().expect("waking lock poisoned");
        waking.remove(&app_id);
    }
}

/// Serves one request.
pub(crate) async fn handle(
    shared: &Shared,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let request_start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (host, missing_field) = match request_host(req.version(), req.uri(), req.headers()) {
        Ok(Some(raw)) => {
            // HTTP/2 (and HTTP/1.0) may name the host in the target only; dynos want `Host`.
            let missing = !req.headers().contains_key(header::HOST);
            (
                normalize_host(raw),
                missing.then(|| HeaderValue::from_str(raw)),
            )
        }
        Ok(None) => (None, None),
        Err(bad) => return refuse_bad_host(shared, conn, &req, bad),
    };
    let Some(host) = host else {
        return page(StatusCode::NOT_FOUND, pages::NO_SUCH_APP);
    };
    if let Some(Ok(value)) = missing_field {
        req.headers_mut().insert(header::HOST, value);
    }
    let table = shared.routes.borrow().clone();
    let Some((app_name, app)) = app_for_host(&table, &shared.base_domain, &host)
        .and_then(|name| table.apps.get_key_value(name))
    else {
        return page(StatusCode::NOT_FOUND, pages::NO_SUCH_APP);
    };
    let app_name = app_name.clone();
    let app_id = app.app_id;
    let decision = decide(app);

    let request_id = headers::request_id(req.headers());
    let upgrade = req.version() == Version::HTTP_11 && headers::wants_upgrade(req.headers());
    if req.version() == Version::HTTP_2 {
        headers::join_cookies(req.headers_mut());
    }
    let (head, fwd) = RequestHead::encode(
        req.method(),
        req.uri(),
        req.headers(),
        http_body::Body::is_end_stream(req.body()),
        &headers::RequestRewrite {
            forwarded: &conn.forwarded,
            request_start_ms,
            request_id: &request_id,
            upgrade,
        },
    );
    let line = RouterLogLine {
        error: None,
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        host,
        request_id,
        fwd,
        dyno: None,
        connect: None,
        service: None,
        status: 0,
        bytes: None,
        protocol: conn.forwarded.proto(),
    };
    let record = RequestRecord::new(shared.sink.clone(), app_id, line);

    let table = match decision {
        Decision::Forward => table,
        Decision::Refuse(error) => return refuse(record, error.into()),
        // Boxed: rare, and the request's future would otherwise be as large as this one.
        Decision::Hold { .. } => match Box::pin(shared.hold(&app_name, app_id)).await {
            Ok(table) => table,
            Err(error) => return refuse(record, error.into()),
        },
    };
    forward(shared, conn, req, head, record, table, &app_name, upgrade).await
}

/// Sends the request to one of the app's dynos, trying another when one refuses the
/// connection, and answers with its response.
#[allow(clippy::too_many_arguments)]
async fn forward(
    shared: &Shared,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    head: RequestHead,
    mut record: RequestRecord,
    mut table: Arc<RouteTable>,
    app_name: &str,
    upgrade: bool,
) -> Response<ProxyBody> {
    let timeouts = shared.config.timeouts;
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let affinity = table
        .apps
        .get(app_name)
        .filter(|app| app.session_affinity)
        .map(|app| Affinity {
            app_id: app.app_id,
            pinned: affinity::pinned_dyno(&shared.config.affinity_key, app.app_id, req.headers()),
        });
    let replayable = req.method().is_idempotent();
    let mut body = ForwardBody::new(req.into_body(), timeouts.client_idle);
    let body_state = body.state();
    let replayable = replayable && body.is_empty();

    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut stale_retries = 0;
    let mut last_error = None;
    loop {
        let chosen = table.apps.get(app_name).and_then(|app| {
            // A pinned dyno that is gone (stopped, restarting, replaced by a deploy) or
            // failing is no error: the request is balanced as usual and pinned anew.
            let preferred = affinity
                .as_ref()
                .and_then(|affinity| affinity.pinned)
                .and_then(|dyno| affinity::position(&app.backends, dyno));
            shared
                .balancer
                .choose(&app.backends, &tried, shared.config.balancing, preferred)
                .map(|(index, outstanding)| (app.backends[index].clone(), outstanding))
        });
        let Some((backend, outstanding)) = chosen else {
            // Every dyno refused, or none is left in the table.
            return refuse(
                record,
                last_error.unwrap_or(DynoError::ConnectRefused.into()),
            );
        };
        let addr = backend.addr;
        let (mut dyno, connect, pooled) = match shared.pool.take(conn.thread, addr) {
            Some(dyno) => (dyno, Duration::ZERO, true),
            None => {
                let connect_started = Instant::now();
                // Boxed: a new connection is rare, and its future is large.
                match Box::pin(Pool::connect(addr, timeouts.connect)).await {
                    Ok(dyno) => (dyno, connect_started.elapsed(), false),
                    Err(error) => {
                        tracing::debug!(%addr, dyno = %backend.dyno, %error, "no connection to dyno");
                        record.dyno(&backend.dyno, connect_started.elapsed());
                        shared.balancer.quarantine(addr);
                        let error = error.router_error();
                        tried.push(addr);
                        last_error = Some(error);
                        if error.retryable() && tried.len() < MAX_DYNOS_TRIED {
                            // Another dyno, from the newest table.
                            table = shared.routes.borrow().clone();
                            continue;
                        }
                        return refuse(record, error);
                    }
                }
            }
        };
        record.dyno(&backend.dyno, connect);
        record.sending();
        let sent = tokio::time::timeout(timeouts.request, dyno.send(&head, &mut body)).await;
        match sent {
            Err(_elapsed) => return refuse(record, DynoError::RequestTimeout.into()),
            Ok(Ok(response)) => {
                let set_cookie = affinity.as_ref().and_then(|affinity| {
                    affinity.set_cookie(&shared.config.affinity_key, &backend, &conn.forwarded)
                });
                return respond(
                    shared,
                    conn,
                    record,
                    response,
                    dyno,
                    addr,
                    outstanding,
                    client_upgrade,
                    set_cookie,
                );
            }
            Ok(Err(error)) => {
                let failure = classify(&body_state);
                tracing::debug!(%addr, dyno = %backend.dyno, %error, code = failure.code(), "request to dyno failed");
                if pooled
                    && replayable
                    && error.connection_lost()
                    && failure == DynoError::ClosedWithoutResponse.into()
                    && stale_retries < MAX_STALE_RETRIES
                {
                    // A pooled connection the dyno closed as the request went out; an
                    // idempotent request without a body may go again (RFC 9110 9.2.2).
                    stale_retries += 1;
                    table = shared.routes.borrow().clone();
                    continue;
                }
                return refuse(record, failure);
            }
        }
    }
}

/// Why sending a request failed once it was written: the client failed (H27, H28), or the dyno
/// closed the connection during the request body (H18) or after it (H13).
fn classify(body: &ClientBodyState) -> RouterError {
    if let Some(client) = body.client_error() {
        client.into()
    } else if !body.ended() {
        DynoError::RequestInterrupted.into()
    } else {
        DynoError::ClosedWithoutResponse.into()
    }
}

/// The dyno's response, on its way to the client; a `101` also bridges the two connections.
#[allow(clippy::too_many_arguments)]
fn respond(
    shared: &Shared,
    conn: &ConnInfo,
    mut record: RequestRecord,
    head: ResponseHead,
    dyno: DynoConnection,
    addr: SocketAddr,
    outstanding: Outstanding,
    client_upgrade: Option<OnUpgrade>,
    set_cookie: Option<HeaderValue>,
) -> Response<ProxyBody> {
    let status = head.status;
    record.status(status);
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    let body = if switching {
        let Some(client) = client_upgrade else {
            // A switch the client never asked for cannot be carried.
            return refuse(record, DynoError::ClosedWithoutResponse.into());
        };
        let shutdown = conn.shutdown.clone();
        conn.tracker
            .spawn(bridge(client, dyno, outstanding, shutdown));
        // The line is written now: what follows is not HTTP.
        record.served(0);
        ProxyBody::Page(None)
    } else {
        let body = ResponseBody::new(dyno, &head);
        let pool = shared.pool.clone();
        let thread = conn.thread;
        let on_end: OnEnd = Box::new(move |reusable| {
            drop(outstanding);
            if let Some(dyno) = reusable {
                pool.put(thread, addr, dyno);
            }
        });
        let body = DynoBody::new(body, shared.config.timeouts.response_idle, record, on_end);
        ProxyBody::Dyno(Box::new(body))
    };
    // HTTP/1.1 to clients whatever the dyno spoke (Python's `http.server` answers in
    // HTTP/1.0); on HTTP/2 connections the version is not sent.
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = head.headers;
    headers::rewrite_response(response.headers_mut(), switching);
    if let Some(cookie) = set_cookie {
        // Beside the app's own cookies, never instead of them.
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Session affinity for one request of an app that has it on.
struct Affinity {
    app_id: Uuid,
    /// The dyno a valid cookie of the request names (up or not).
    pinned: Option<Uuid>,
}

impl Affinity {
    /// The cookie to send with the response of `served`: none when the request's cookie
    /// already names it, else one that does (a new client, an invalid cookie, or a pinned
    /// dyno that was gone or failing).
    fn set_cookie(
        &self,
        key: &affinity::AffinityKey,
        served: &crate::table::Backend,
        forwarded: &Forwarded,
    ) -> Option<HeaderValue> {
        if served.id.is_nil() || self.pinned == Some(served.id) {
            return None;
        }
        let https = forwarded.proto() == "https";
        Some(affinity::set_cookie(key, self.app_id, served.id, https))
    }
}

/// Copies bytes both ways between an upgraded client connection and its dyno, until either
/// side closes or the router shuts down.
async fn bridge(
    client: OnUpgrade,
    dyno: DynoConnection,
    in_flight: Outstanding,
    shutdown: CancellationToken,
) {
    let mut client = match client.await {
        Ok(client) => TokioIo::new(client),
        Err(error) => {
            tracing::debug!(%error, "upgrade failed");
            return;
        }
    };
    let (mut dyno, early) = dyno.into_parts();
    let copied = async {
        // What the dyno sent right after its 101, read with the response head.
        client.write_all(&early).await?;
        tokio::io::copy_bidirectional(&mut client, &mut dyno).await
    };
    tokio::select! {
        copied = copied => {
            if let Err(error) = copied {
                tracing::debug!(%error, "upgraded connection ended");
            }
        }
        () = shutdown.cancelled() => {}
    }
    drop(in_flight);
}

/// Answers a request whose host cannot be trusted with 400, before any app is chosen for it.
/// The router line goes to the app the target names (`:authority` or an absolute-form target,
/// else the first `Host`), if it is one: its owner learns why clients were turned away, and a
/// client can write no more lines into an app's log this way than with a valid request.
fn refuse_bad_host(
    shared: &Shared,
    conn: &ConnInfo,
    req: &Request<Incoming>,
    bad: BadHost,
) -> Response<ProxyBody> {
    let error = RouterError::from(ClientError::BadHost(bad));
    let named = match req.uri().authority() {
        Some(authority) => Some(authority.host()),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
    };
    let table = shared.routes.borrow().clone();
    let app = named.and_then(normalize_host).and_then(|host| {
        let app_id = app_for_host(&table, &shared.base_domain, &host)
            .and_then(|name| table.apps.get(name))?
            .app_id;
        Some((host, app_id))
    });
    if let Some((host, app_id)) = app {
        let line = RouterLogLine {
            error: None,
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            host,
            request_id: headers::request_id(req.headers()),
            fwd: headers::forwarded_for(req.headers(), &conn.forwarded),
            dyno: None,
            connect: None,
            service: None,
            status: 0,
            bytes: None,
            protocol: conn.forwarded.proto(),
        };
        RequestRecord::new(shared.sink.clone(), app_id, line).fail(error, None);
    }
    page(error.status(), pages::error_page(error))
}

/// Writes the error's router line and answers with its page.
fn refuse(record: RequestRecord, error: RouterError) -> Response<ProxyBody> {
    record.fail(error, None);
    page(error.status(), pages::error_page(error))
}

fn page(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::page(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(header::VIA, HeaderValue::from_static(headers::VIA));
    response
}
