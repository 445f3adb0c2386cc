//! Test harness: a router on 127.0.0.1:0 with a route table the test controls and the router
//! lines it wrote, tiny hyper upstreams (dynos), and small HTTP clients.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_router::{AppRoutes, Backend, RouteTable, Router, RouterConfig, Timeouts};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestBody = BoxBody<Bytes, BoxError>;

/// How long a test waits for something that should happen at once.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const BASE_DOMAIN: &str = "wharf.test";

pub fn full(text: impl Into<Bytes>) -> TestBody {
    Full::new(text.into()).map_err(|e| match e {}).boxed()
}

pub fn empty() -> TestBody {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A body fed through a channel, a chunk at a time.
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

pub fn channel_body() -> (mpsc::Sender<Bytes>, TestBody) {
    let (tx, rx) = mpsc::channel(16);
    (tx, ChannelBody(rx).boxed())
}

// ---------------------------------------------------------------------------------------
// Upstreams

type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>
        + Send
        + Sync,
>;

/// A tiny HTTP/1.1 server standing in for a web dyno.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Connections it accepted.
    pub connections: Arc<AtomicUsize>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Upstream {
    pub async fn start<F, Fut>(handler: F) -> Upstream
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve_upstream(
            listener,
            handler,
            connections.clone(),
            stop.clone(),
        ));
        Upstream {
            addr,
            connections,
            stop,
            task,
        }
    }

    /// Answers every request with `text`.
    pub async fn text(text: &'static str) -> Upstream {
        Upstream::start(move |_req| async move { Response::new(full(text)) }).await
    }

    /// Stops accepting, lets requests in flight finish, and waits until it has.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

async fn serve_upstream(
    listener: TcpListener,
    handler: Handler,
    connections: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted.unwrap(),
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let handler = handler.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// A free port on 127.0.0.1 with nothing listening on it.
pub async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------
// Route tables

pub fn app_id(name: &str) -> Uuid {
    // A stable id per name: its bytes, padded.
    let mut bytes = [0u8; 16];
    for (slot, byte) in bytes.iter_mut().zip(name.bytes()) {
        *slot = byte;
    }
    Uuid::from_bytes(bytes)
}

pub fn app(name: &str, backends: &[SocketAddr]) -> (String, AppRoutes) {
    (
        name.to_owned(),
        AppRoutes {
            app_id: app_id(name),
            maintenance: false,
            web_quantity: backends.len().max(1) as u32,
            crashed: false,
            booting: false,
            backends: backends
                .iter()
                .enumerate()
                .map(|(n, addr)| Backend {
                    id: Uuid::from_u128(n as u128 + 1),
                    dyno: format!("web.{}", n + 1),
                    addr: *addr,
                })
                .collect(),
            session_affinity: false,
        },
    )
}

pub fn table(apps: impl IntoIterator<Item = (String, AppRoutes)>) -> RouteTable {
    RouteTable {
        apps: apps.into_iter().collect(),
        domains: Default::default(),
    }
}

// ---------------------------------------------------------------------------------------
// The router

/// Short timeouts, so each error can be provoked quickly.
pub fn test_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_millis(800),
        response_idle: Duration::from_millis(800),
        client_idle: Duration::from_millis(800),
        boot: Duration::from_millis(800),
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub routes: watch::Sender<Arc<RouteTable>>,
    pub logs: Arc<Mutex<Vec<(Uuid, String)>>>,
    log_count: watch::Receiver<usize>,
    pub shutdown: CancellationToken,
    pub balancer: wharf_router::balance::Balancer,
    pub held: wharf_router::HeldRequests,
    pub connections: wharf_router::server::ClientConnections,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    pub async fn start(table: RouteTable) -> Harness {
        Harness::with(table, |_| {}, None).await
    }

    pub async fn with(
        table: RouteTable,
        configure: impl FnOnce(&mut RouterConfig),
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Harness {
        let mut config = RouterConfig::new(BASE_DOMAIN);
        config.timeouts = test_timeouts();
        configure(&mut config);
        let (routes, routes_rx) = watch::channel(Arc::new(table));
        let logs: Arc<Mutex<Vec<(Uuid, String)>>> = Arc::default();
        let (count_tx, log_count) = watch::channel(0usize);
        let sink = logs.clone();
        let router = Router::new(config, routes_rx, move |app, line| {
            let mut logs = sink.lock().unwrap();
            logs.push((app, line.to_string()));
            count_tx.send_replace(logs.len());
        });
        let balancer = router.balancer();
        let held = router.held_requests();
        let connections = router.client_connections();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tls_addr, tls) = match tls {
            Some(config) => {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                (
                    Some(listener.local_addr().unwrap()),
                    Some((listener, config)),
                )
            }
            None => (None, None),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(router.serve(listener, tls, shutdown.clone()));
        Harness {
            addr,
            tls_addr,
            routes,
            logs,
            log_count,
            shutdown,
            balancer,
            held,
            connections,
            task,
        }
    }

    pub fn set_table(&self, table: RouteTable) {
        self.routes.send_replace(Arc::new(table));
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Waits (up to [`DEADLINE`]) until `n` router lines were written; returns them all.
    pub async fn wait_for_lines(&self, n: usize) -> Vec<String> {
        let mut count = self.log_count.clone();
        tokio::time::timeout(DEADLINE, count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} router lines, got {:?}", self.log_lines()))
            .unwrap();
        self.log_lines()
    }

    /// Waits for the first router line and returns it.
    pub async fn one_line(&self) -> String {
        self.wait_for_lines(1).await.remove(0)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Waits (checking every few milliseconds, up to [`DEADLINE`]) until `condition` holds.
pub async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The parts of a router line that change from run to run (request ids, timings) blanked,
/// for comparing lines in tests.
pub fn steady(line: &str) -> String {
    line.split(' ')
        .map(|field| match field.split_once('=') {
            Some(("request_id", _)) => "request_id=*".to_owned(),
            Some((key @ ("connect" | "service"), value)) if value.ends_with("ms") => {
                format!("{key}=*ms")
            }
            _ => field.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// Clients

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// An HTTP/1.1 keep-alive client connection to the router.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<TestBody>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).await.unwrap()).await
    }

    pub async fn from_stream(stream: TcpStream) -> Client {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Client { sender }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> hyper::Result<Response<Incoming>> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    pub async fn get(&mut self, host: &str, path: &str) -> hyper::Result<Reply> {
        let response = self.send(get(host, path)).await?;
        read(response).await
    }
}

pub fn get(host: &str, path: &str) -> Request<TestBody> {
    Request::builder()
        .uri(path)
        .header("host", host)
        .body(empty())
        .unwrap()
}

pub async fn read(response: Response<Incoming>) -> hyper::Result<Reply> {
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One GET on a new connection.
pub async fn get_once(addr: SocketAddr, host: &str, path: &str) -> Reply {
    Client::connect(addr).await.get(host, path).await.unwrap()
}

pub fn app_host(app: &str) -> String {
    format!("{app}.{BASE_DOMAIN}")
}
