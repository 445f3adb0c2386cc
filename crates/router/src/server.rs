//! The router as a subsystem: accepts client connections on the HTTP and HTTPS listeners,
//! serves HTTP/1.1 (keep-alive, upgrades) and HTTP/2 (h2c, and over TLS by ALPN) on each, and
//! on shutdown stops accepting and lets requests in flight finish.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::balance::Balancer;
use crate::config::RouterConfig;
use crate::headers::Forwarded;
use crate::logline::RouterLogLine;
use crate::proxy::{self, ConnInfo, HeldRequests, Shared};
use crate::table::RouteTable;

/// On shutdown, how long requests in flight get to finish before their connections are cut.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client gets to finish its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often each router thread's heartbeat timer ends (see [`worker`]).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// After a failed accept (out of file descriptors, say), wait this long before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The HTTP router. Build it with [`Router::new`], run it with [`Router::serve`].
pub struct Router {
    shared: Arc<Shared>,
}

impl Router {
    /// A router that serves from the route tables sent on `routes` and hands each request's
    /// router line to `log` with the app's id (source [`RouterLogLine::SOURCE`], process
    /// [`RouterLogLine::PROCESS`]). `log` is called on the request's task: it must not block.
    pub fn new(
        config: RouterConfig,
        routes: watch::Receiver<Arc<RouteTable>>,
        log: impl Fn(Uuid, RouterLogLine) + Send + Sync + 'static,
    ) -> Router {
        Router {
            shared: Arc::new(Shared::new(config, routes, Arc::new(log))),
        }
    }

    /// Requests in flight to dynos, by address (for tests and metrics).
    pub fn balancer(&self) -> Balancer {
        self.shared.balancer.clone()
    }

    /// Whether requests may still reach `addr`: it is in the current route table, or requests
    /// to it are in flight. Cheap; for draining a dyno before it stops.
    pub fn traffic_probe(&self) -> impl Fn(SocketAddr) -> bool + Send + Sync + 'static {
        let shared = self.shared.clone();
        move |addr| {
            shared.balancer.outstanding(addr) > 0
                || shared
                    .routes
                    .borrow()
                    .apps
                    .values()
                    .any(|app| app.backends.iter().any(|b| b.addr == addr))
        }
    }

    /// How many requests are held for booting apps (for tests and metrics).
    pub fn held_requests(&self) -> HeldRequests {
        self.shared.held.clone()
    }

    /// Serves plain HTTP on `listener` and, when given, HTTPS on the second listener with
    /// that TLS configuration (its certificate resolver picks the certificate by SNI; see
    /// [`crate::tls`]), until `shutdown` is cancelled. Then it stops accepting, lets requests
    /// in flight finish for up to [`DRAIN_TIMEOUT`], and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // Also closes a keep-alive connection that stays idle between requests.
            .header_read_timeout(self.shared.config.timeouts.client_idle)
            .keep_alive(true)
            // One buffer, one write(2): fewer instructions per request than writev(2) of the
            // head and body apart (`perf stat`, 64 connections: 2% user, 2% kernel).
            .writev(false);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);

        let forget = tokio::spawn(forget_unrouted(self.shared.clone(), shutdown.clone()));
        let plain = listener.into_std().context("the HTTP listener")?;
        let secure = match tls {
            Some((listener, config)) => Some((
                listener.into_std().context("the HTTPS listener")?,
                TlsAcceptor::from(config),
            )),
            None => None,
        };
        let mut workers = Vec::new();
        for n in 0..self.shared.config.threads.max(1) {
            let listeners = (
                plain.try_clone().context("share the HTTP listener")?,
                match &secure {
                    Some((listener, acceptor)) => Some((
                        listener.try_clone().context("share the HTTPS listener")?,
                        acceptor.clone(),
                    )),
                    None => None,
                },
            );
            let (shared, builder, shutdown) =
                (self.shared.clone(), builder.clone(), shutdown.clone());
            let (done, finished) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name(format!("router-{n}"))
                .spawn(move || {
                    let _ = done.send(worker(listeners, shared, builder, shutdown));
                })
                .context("start a router thread")?;
            workers.push(finished);
        }
        // Only the threads hold the listeners now: they close when the threads stop accepting.
        drop((plain, secure));
        let mut result = Ok(());
        for finished in workers {
            let outcome = finished
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a router thread panicked")));
            // Either listener failing stops the router.
            if outcome.is_err() {
                shutdown.cancel();
            }
            result = result.and(outcome);
        }
        forget.abort();
        result
    }
}

/// One router thread: a runtime of its own (no work stealing, no cross-thread wake-ups, as
/// an nginx worker) accepting on both listeners until shutdown, then letting its requests in
/// flight finish for up to [`DRAIN_TIMEOUT`].
fn worker(
    (plain, secure): (
        std::net::TcpListener,
        Option<(std::net::TcpListener, TlsAcceptor)>,
    ),
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("build a router runtime")?;
    runtime.block_on(async move {
        // A timer that always ends within a second. Each request sets timers ending much
        // later (the request timeout, the next request's header timeout); when one of them is
        // the earliest the thread has, tokio wakes the thread's event loop through its
        // eventfd to recompute its sleep: a system call and a spurious wake-up per request.
        let heartbeat = tokio::spawn(async {
            let mut interval = tokio::time::interval(HEARTBEAT);
            loop {
                interval.tick().await;
            }
        });
        let tracker = TaskTracker::new();
        let plain = TcpListener::from_std(plain).context("register the HTTP listener")?;
        let http = accept(
            plain,
            None,
            shared.clone(),
            builder.clone(),
            tracker.clone(),
            shutdown.clone(),
        );
        let https = async {
            match secure {
                Some((listener, acceptor)) => {
                    let listener =
                        TcpListener::from_std(listener).context("register the HTTPS listener")?;
                    accept(
                        listener,
                        Some(acceptor),
                        shared.clone(),
                        builder.clone(),
                        tracker.clone(),
                        shutdown.clone(),
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let (http, https) = tokio::join!(http, https);
        shutdown.cancel();
        tracker.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("router: requests still in flight after the drain timeout");
        }
        heartbeat.abort();
        http.context("serve HTTP")?;
        https.context("serve HTTPS")
    })
}

/// Accepts connections until shutdown, each served on its own task.
async fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("listener address")?;
    tracing::info!(addr = %local, tls = tls.is_some(), "router listening");
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "router: accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let info = Arc::new(ConnInfo {
            forwarded: Forwarded::new(
                peer.ip(),
                if tls.is_some() { "https" } else { "http" },
                stream.local_addr().map_or(local.port(), |a| a.port()),
            ),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        });
        let shared = shared.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            if let Err(error) = connection(stream, tls, shared, builder, info).await {
                tracing::debug!(%peer, %error, "client connection ended");
            }
        });
    }
}

/// Serves one client connection (after its TLS handshake, for HTTPS).
async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    info: Arc<ConnInfo>,
) -> anyhow::Result<()> {
    stream.set_nodelay(true).context("set TCP_NODELAY")?;
    match tls {
        None => serve_connection(stream, shared, &builder, info).await,
        Some(acceptor) => {
            let stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .context("TLS handshake timed out")?
                .context("TLS handshake")?;
            serve_connection(stream, shared, &builder, info).await
        }
    }
}

async fn serve_connection<I>(
    io: I,
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    info: Arc<ConnInfo>,
) -> anyhow::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = info.shutdown.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let info = info.clone();
        async move { Ok::<_, Infallible>(proxy::handle(&shared, &info, req).await) }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => served.map_err(|e| anyhow::anyhow!(e)),
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await.map_err(|e| anyhow::anyhow!(e))
        }
    }
}

/// Drops pooled connections and balancing state for dynos that leave the route table. A
/// request already sent to such a dyno finishes on its connection.
async fn forget_unrouted(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut routes = shared.routes.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = routes.changed() => if changed.is_err() { return },
        }
        let table = routes.borrow_and_update().clone();
        let routed: HashSet<SocketAddr> = table
            .apps
            .values()
            .flat_map(|app| app.backends.iter().map(|b| b.addr))
            .collect();
        shared.pool.retain(|addr| routed.contains(addr));
        shared.balancer.retain(|addr| routed.contains(addr));
    }
}
