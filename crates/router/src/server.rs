//! The router as a subsystem: accepts client connections on the HTTP and HTTPS listeners,
//! serves HTTP/1.1 (keep-alive, upgrades) and HTTP/2 (h2c, and over TLS by ALPN) on each, and
//! on shutdown stops accepting and lets requests in flight finish.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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
use tokio::sync::{mpsc, watch};
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

/// On shutdown, how long a connection that has sent no request yet gets to send its first
/// (it was accepted just before), and how often that is checked.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);
const FIRST_REQUEST_POLL: Duration = Duration::from_millis(5);
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
    spread: Spread,
    /// Each thread's inbox of connections accepted by another.
    inboxes: Vec<mpsc::UnboundedReceiver<Handoff>>,
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
        let (spread, inboxes) = Spread::new(config.threads.max(1));
        Router {
            shared: Arc::new(Shared::new(config, routes, Arc::new(log))),
            spread,
            inboxes,
        }
    }

    /// Client connections served by each router thread (for tests and metrics).
    pub fn client_connections(&self) -> ClientConnections {
        ClientConnections(self.spread.serving.clone())
    }

    /// Requests in flight to dynos, by address (for tests and metrics).
    pub fn balancer(&self) -> Balancer {
        self.shared.balancer.clone()
    }

    /// Whether requests may still reach `addr`: it is in the current route table, or requests
    /// to it are in flight. Cheap; for draining a dyno before it stops.
    pub fn traffic_probe(&self) -> impl Fn(SocketAddr) -> bool + Send + Sync + 'static {
        let shared = self.shared.clone();
        // Once the router stops accepting, its table (no longer updated) sends nobody
        // anywhere: only requests in flight count.
        move |addr| {
            shared.balancer.outstanding(addr) > 0
                || (!shared.stopped.load(std::sync::atomic::Ordering::SeqCst)
                    && shared
                        .routes
                        .borrow()
                        .apps
                        .values()
                        .any(|app| app.backends.iter().any(|b| b.addr == addr)))
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
        let (stopping, stopped) = (self.shared.clone(), shutdown.clone());
        tokio::spawn(async move {
            stopped.cancelled().await;
            stopping
                .stopped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let plain = listener.into_std().context("the HTTP listener")?;
        let secure = match tls {
            Some((listener, config)) => Some((
                listener.into_std().context("the HTTPS listener")?,
                TlsAcceptor::from(config),
            )),
            None => None,
        };
        let mut workers = Vec::new();
        for (index, inbox) in self.inboxes.into_iter().enumerate() {
            let listeners = Listeners {
                plain: plain.try_clone().context("share the HTTP listener")?,
                secure: match &secure {
                    Some((listener, _)) => {
                        Some(listener.try_clone().context("share the HTTPS listener")?)
                    }
                    None => None,
                },
            };
            let worker = Worker {
                index,
                shared: self.shared.clone(),
                builder: builder.clone(),
                spread: self.spread.clone(),
                tls: secure.as_ref().map(|(_, acceptor)| acceptor.clone()),
                tracker: TaskTracker::new(),
                shutdown: shutdown.clone(),
            };
            let (done, finished) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name(format!("router-{index}"))
                .spawn(move || {
                    let _ = done.send(worker.run(listeners, inbox));
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

/// How many client connections each router thread serves. Cheap to clone.
#[derive(Clone)]
pub struct ClientConnections(Arc<[AtomicUsize]>);

impl ClientConnections {
    pub fn per_thread(&self) -> Vec<usize> {
        self.0.iter().map(|n| n.load(Ordering::Relaxed)).collect()
    }
}

/// The listeners every router thread accepts on.
struct Listeners {
    plain: std::net::TcpListener,
    /// Served with [`Worker::tls`].
    secure: Option<std::net::TcpListener>,
}

/// A client connection accepted by one router thread for another to serve.
struct Handoff {
    stream: std::net::TcpStream,
    serving: Serving,
    from: Origin,
}

/// Where an accepted connection came from.
#[derive(Clone, Copy)]
struct Origin {
    peer: SocketAddr,
    /// Accepted on the HTTPS listener.
    secure: bool,
    /// The port it was accepted on (the listener's).
    port: u16,
}

/// Spreads client connections evenly over the router threads. Every thread accepts, and a
/// burst of new connections is accepted by whichever thread wakes first (one thread took three
/// quarters of 64 connections, leaving a core idle); each accepted connection goes to the
/// thread serving the fewest, which is most often the one that accepted it.
#[derive(Clone)]
struct Spread {
    /// How many client connections each thread serves.
    serving: Arc<[AtomicUsize]>,
    /// Each thread's inbox of connections accepted by another.
    inboxes: Arc<[mpsc::UnboundedSender<Handoff>]>,
}

impl Spread {
    fn new(threads: usize) -> (Spread, Vec<mpsc::UnboundedReceiver<Handoff>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..threads).map(|_| mpsc::unbounded_channel()).unzip();
        let spread = Spread {
            serving: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
            inboxes: senders.into(),
        };
        (spread, receivers)
    }

    /// The thread to serve a connection that thread `me` accepted: `me` unless another serves
    /// fewer. The connection counts for that thread until the guard drops.
    fn pick(&self, me: usize) -> Serving {
        let mut thread = me;
        let mut fewest = self.serving[me].load(Ordering::Relaxed);
        for (index, serving) in self.serving.iter().enumerate() {
            let serving = serving.load(Ordering::Relaxed);
            if serving < fewest {
                (thread, fewest) = (index, serving);
            }
        }
        self.serving[thread].fetch_add(1, Ordering::Relaxed);
        Serving {
            spread: self.clone(),
            thread,
        }
    }
}

/// One client connection counted in [`Spread::serving`].
struct Serving {
    spread: Spread,
    thread: usize,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.spread.serving[self.thread].fetch_sub(1, Ordering::Relaxed);
    }
}

/// One router thread: a runtime of its own (no work stealing, no cross-thread wake-ups per
/// request, as an nginx worker) accepting on both listeners until shutdown, then letting its
/// requests in flight finish for up to [`DRAIN_TIMEOUT`].
struct Worker {
    index: usize,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    spread: Spread,
    /// For connections accepted on the HTTPS listener.
    tls: Option<TlsAcceptor>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Worker {
    fn run(
        self,
        listeners: Listeners,
        inbox: mpsc::UnboundedReceiver<Handoff>,
    ) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("build a router runtime")?;
        runtime.block_on(async move {
            // A timer that always ends within a second. Each request sets timers ending much
            // later (the request timeout, the next request's header timeout); when one of them
            // is the earliest the thread has, tokio wakes the thread's event loop through its
            // eventfd to recompute its sleep: a system call and a spurious wake-up per request.
            let heartbeat = tokio::spawn(async {
                let mut interval = tokio::time::interval(HEARTBEAT);
                loop {
                    interval.tick().await;
                }
            });
            let plain =
                TcpListener::from_std(listeners.plain).context("register the HTTP listener")?;
            let http = self.accept(plain, false);
            let https = async {
                match listeners.secure {
                    Some(listener) => {
                        let listener = TcpListener::from_std(listener)
                            .context("register the HTTPS listener")?;
                        self.accept(listener, true).await
                    }
                    None => Ok(()),
                }
            };
            let (http, https, ()) = tokio::join!(http, https, self.receive(inbox));
            self.shutdown.cancel();
            self.tracker.close();
            if tokio::time::timeout(DRAIN_TIMEOUT, self.tracker.wait())
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

    /// Accepts connections until shutdown, serving each here or handing it to the thread
    /// serving the fewest.
    async fn accept(&self, listener: TcpListener, secure: bool) -> anyhow::Result<()> {
        let local = listener.local_addr().context("listener address")?;
        tracing::info!(addr = %local, tls = secure, "router listening");
        loop {
            let accepted = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "router: accept failed");
                    tokio::select! {
                        () = self.shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    }
                }
            };
            let from = Origin {
                peer,
                secure,
                port: local.port(),
            };
            let serving = self.spread.pick(self.index);
            if serving.thread == self.index {
                self.serve(stream, from, serving);
                continue;
            }
            let thread = serving.thread;
            match stream.into_std() {
                Ok(stream) => {
                    let handoff = Handoff {
                        stream,
                        serving,
                        from,
                    };
                    if let Err(refused) = self.spread.inboxes[thread].send(handoff) {
                        // That thread has stopped accepting (the router is shutting down).
                        self.take(refused.0);
                    }
                }
                Err(error) => tracing::debug!(%peer, %error, "router: hand over a connection"),
            }
        }
    }

    /// Serves the connections other threads hand over, until shutdown.
    async fn receive(&self, mut inbox: mpsc::UnboundedReceiver<Handoff>) {
        loop {
            let handoff = tokio::select! {
                () = self.shutdown.cancelled() => {
                    // Connections accepted and handed here before the shutdown are served
                    // too: dropped, their clients would get a reset.
                    inbox.close();
                    while let Ok(handoff) = inbox.try_recv() {
                        self.take(handoff);
                    }
                    return;
                }
                handoff = inbox.recv() => handoff,
            };
            match handoff {
                Some(handoff) => self.take(handoff),
                None => return,
            }
        }
    }

    /// Serves a connection another thread accepted.
    fn take(&self, handoff: Handoff) {
        match TcpStream::from_std(handoff.stream) {
            Ok(stream) => self.serve(stream, handoff.from, handoff.serving),
            Err(error) => {
                let peer = handoff.from.peer;
                tracing::debug!(%peer, %error, "router: take over a connection");
            }
        }
    }

    /// Serves a connection on a task of its own.
    fn serve(&self, stream: TcpStream, from: Origin, serving: Serving) {
        let Origin { peer, secure, port } = from;
        let info = Arc::new(ConnInfo {
            thread: self.index,
            forwarded: Forwarded::new(peer.ip(), if secure { "https" } else { "http" }, port),
            shutdown: self.shutdown.clone(),
            tracker: self.tracker.clone(),
        });
        let shared = self.shared.clone();
        let builder = self.builder.clone();
        let tls = if secure { self.tls.clone() } else { None };
        self.tracker.spawn(async move {
            if let Err(error) = connection(stream, tls, shared, builder, info).await {
                tracing::debug!(%peer, %error, "client connection ended");
            }
            drop(serving);
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
    let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first_request = asked.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        first_request.store(true, std::sync::atomic::Ordering::Relaxed);
        let shared = shared.clone();
        let info = info.clone();
        async move { Ok::<_, Infallible>(proxy::handle(&shared, &info, req).await) }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => return served.map_err(|e| anyhow::anyhow!(e)),
        () = shutdown.cancelled() => {}
    }
    // A connection accepted just before the shutdown may not have sent its request yet: a
    // graceful shutdown now would close it unanswered. It gets a moment to ask first.
    let deadline = tokio::time::Instant::now() + FIRST_REQUEST_GRACE;
    while !asked.load(std::sync::atomic::Ordering::Relaxed)
        && tokio::time::Instant::now() < deadline
    {
        tokio::select! {
            served = conn.as_mut() => return served.map_err(|e| anyhow::anyhow!(e)),
            () = tokio::time::sleep(FIRST_REQUEST_POLL) => {}
        }
    }
    conn.as_mut().graceful_shutdown();
    conn.await.map_err(|e| anyhow::anyhow!(e))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(spread: &Spread) -> Vec<usize> {
        ClientConnections(spread.serving.clone()).per_thread()
    }

    #[test]
    fn a_burst_accepted_by_one_thread_is_spread_over_all() {
        let (spread, _inboxes) = Spread::new(3);
        // Thread 1 accepts six connections in a row.
        let guards: Vec<Serving> = (0..6).map(|_| spread.pick(1)).collect();
        let threads: Vec<usize> = guards.iter().map(|g| g.thread).collect();
        assert_eq!(threads, [1, 0, 2, 1, 0, 2]);
        assert_eq!(serving(&spread), [2, 2, 2]);
    }

    #[test]
    fn the_accepting_thread_keeps_a_connection_unless_another_serves_fewer() {
        let (spread, _inboxes) = Spread::new(2);
        let first = spread.pick(0);
        assert_eq!(first.thread, 0);
        // Thread 0 serves one, thread 1 none: thread 1 takes the next, whoever accepts it.
        assert_eq!(spread.pick(0).thread, 1);
        drop(first);
        assert_eq!(serving(&spread), [0, 0]);
        assert_eq!(
            spread.pick(1).thread,
            1,
            "a tie stays where it was accepted"
        );
    }
}
