//! Router benchmark, on loopback only: requests/s and p50/p99 latency through the router
//! against straight to an upstream and through nginx (when installed: `apt-get install
//! nginx-light`) proxying to the same upstream with keep-alive, with 1, 64 and 256 keep-alive
//! connections; and random against least-outstanding balancing over four upstreams (all
//! equal; one slow; each serving one request at a time).
//!
//! `cargo run --release -p wharf-router --example bench [-- --seconds N] [--rust] [--only TEXT]`
//! (`--only` runs the rows whose name and connection count contain TEXT).
//!
//! Load comes from `wrk` when it is installed (`apt-get install wrk`), else (or with `--rust`)
//! from a small load generator here, on its own thread. Each run is bounded by `--seconds`
//! (default 5). Router lines are formatted (as the log callback would) and dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_router::{AppRoutes, Backend, Balancing, RouteTable, Router, RouterConfig};

const HOST: &str = "bench.wharf.test";
const BODY: &[u8] = b"hello from a dyno\n";
/// Connections the upstreams accepted (the router's pool should keep this near the client
/// connection count).
static UPSTREAM_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// How long the slow upstream takes per request.
const SLOW_DELAY: Duration = Duration::from_millis(5);
/// How long a one-at-a-time upstream (a single-threaded app server) takes per request.
const SERIAL_DELAY: Duration = Duration::from_millis(1);

struct Figures {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = match args.iter().position(|a| a == "--seconds") {
        Some(i) => args
            .get(i + 1)
            .context("--seconds needs a number")?
            .parse()
            .context("--seconds")?,
        None => 5,
    };
    let use_wrk = !args.iter().any(|a| a == "--rust") && wrk_installed();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let duration = Duration::from_secs(seconds.clamp(1, 60));
    // The upstreams and the router each get a runtime of two threads, as nginx gets two
    // worker processes of its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let router_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("router")
        .enable_all()
        .build()?;
    let shutdown = CancellationToken::new();
    let lines = Arc::new(AtomicU64::new(0));

    let (direct, equal, uneven, serial) = runtime.block_on(async {
        let fast = || upstream(Duration::ZERO, false, shutdown.clone());
        let direct = fast().await?;
        let mut equal = Vec::new();
        for _ in 0..4 {
            equal.push(fast().await?);
        }
        let mut uneven = vec![upstream(SLOW_DELAY, false, shutdown.clone()).await?];
        for _ in 0..3 {
            uneven.push(fast().await?);
        }
        let mut serial = Vec::new();
        for _ in 0..4 {
            serial.push(upstream(SERIAL_DELAY, true, shutdown.clone()).await?);
        }
        anyhow::Ok((direct, equal, uneven, serial))
    })?;

    let mut routers = Vec::new();
    for (balancing, backends) in [
        (Balancing::LeastOutstanding, vec![direct]),
        (Balancing::Random, equal.clone()),
        (Balancing::LeastOutstanding, equal.clone()),
        (Balancing::Random, uneven.clone()),
        (Balancing::LeastOutstanding, uneven.clone()),
        (Balancing::Random, serial.clone()),
        (Balancing::LeastOutstanding, serial.clone()),
    ] {
        let addr = router_runtime.block_on(router(
            balancing,
            &backends,
            lines.clone(),
            shutdown.clone(),
        ))?;
        routers.push(addr);
    }

    let nginx = match Nginx::start(direct) {
        Ok(nginx) => Some(nginx),
        Err(error) => {
            println!("no nginx rows: {error:#}");
            None
        }
    };

    println!(
        "load: {}, {}s per run; the upstreams, the router and nginx have 2 threads (workers) each, on 2 cores shared with the load\n",
        if use_wrk {
            "wrk -t1"
        } else {
            "built-in generator (1 thread)"
        },
        duration.as_secs()
    );
    println!(
        "{:<46} {:>6} {:>10} {:>10} {:>10} {:>7} {:>11}",
        "run", "conns", "req/s", "p50", "p99", "errors", "dyno conns"
    );
    let mut runs = vec![
        ("direct to upstream", direct, 1),
        ("through router (1 dyno)", routers[0], 1),
        ("direct to upstream", direct, 64),
        ("through router (1 dyno)", routers[0], 64),
        ("direct to upstream", direct, 256),
        ("through router (1 dyno)", routers[0], 256),
        ("4 equal dynos, random", routers[1], 64),
        ("4 equal dynos, least-outstanding", routers[2], 64),
        ("4 dynos, one 5 ms slower, random", routers[3], 64),
        (
            "4 dynos, one 5 ms slower, least-outstanding",
            routers[4],
            64,
        ),
        ("4 one-at-a-time 1 ms dynos, random", routers[5], 4),
        (
            "4 one-at-a-time 1 ms dynos, least-outstanding",
            routers[6],
            4,
        ),
    ];
    if let Some(nginx) = &nginx {
        for (at, connections) in [(2, 1), (5, 64), (8, 256)] {
            runs.insert(at, ("through nginx (1 dyno)", nginx.addr, connections));
        }
    }
    for (name, addr, connections) in runs {
        if only
            .as_ref()
            .is_some_and(|o| !format!("{name} {connections}").contains(o.as_str()))
        {
            continue;
        }
        let connections_before = UPSTREAM_CONNECTIONS.load(Ordering::Relaxed);
        let figures = if use_wrk {
            wrk(addr, connections, duration)?
        } else {
            generate(addr, connections, duration)?
        };
        println!(
            "{:<46} {:>6} {:>10.0} {:>10} {:>10} {:>7} {:>11}",
            name,
            connections,
            figures.requests_per_second,
            show(figures.p50),
            show(figures.p99),
            figures.errors,
            UPSTREAM_CONNECTIONS.load(Ordering::Relaxed) - connections_before,
        );
    }
    println!("\nrouter lines written: {}", lines.load(Ordering::Relaxed));
    drop(nginx);
    shutdown.cancel();
    runtime.shutdown_timeout(Duration::from_secs(5));
    router_runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

fn show(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}us", d.as_micros())
    } else {
        format!("{:.2}ms", d.as_secs_f64() * 1000.0)
    }
}

/// Listen backlog for the router and the upstreams, as servers set it in production
/// (tokio's `bind` uses 128, which a burst of new connections overflows, and a dropped SYN
/// costs a second).
const BACKLOG: u32 = 1024;

fn listen() -> anyhow::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(socket.listen(BACKLOG)?)
}

/// A tiny upstream answering every request with [`BODY`] after `delay`; `one_at_a_time`
/// makes it serve one request at a time, like a single-threaded app server.
async fn upstream(
    delay: Duration,
    one_at_a_time: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = listen()?;
    let addr = listener.local_addr()?;
    let busy = Arc::new(tokio::sync::Mutex::new(()));
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let _ = stream.set_nodelay(true);
            UPSTREAM_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            let busy = busy.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let busy = busy.clone();
                    async move {
                        let _serving = if one_at_a_time {
                            Some(busy.lock_owned().await)
                        } else {
                            None
                        };
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn router(
    balancing: Balancing,
    backends: &[SocketAddr],
    lines: Arc<AtomicU64>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let mut table = RouteTable::default();
    table.apps.insert(
        "bench".to_owned(),
        AppRoutes {
            app_id: Uuid::nil(),
            maintenance: false,
            web_quantity: backends.len() as u32,
            crashed: false,
            booting: false,
            backends: backends
                .iter()
                .enumerate()
                .map(|(n, addr)| Backend {
                    dyno: format!("web.{}", n + 1),
                    addr: *addr,
                })
                .collect(),
        },
    );
    let (routes, routes_rx) = watch::channel(Arc::new(table));
    let mut config = RouterConfig::new("wharf.test");
    config.balancing = balancing;
    config.threads = 2;
    let router = Router::new(config, routes_rx, move |_app, line| {
        std::hint::black_box(line.to_string());
        lines.fetch_add(1, Ordering::Relaxed);
    });
    let listener = listen()?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        // Keeps the table's sender alive as long as the router runs.
        let _routes = routes;
        if let Err(error) = router.serve(listener, None, shutdown).await {
            eprintln!("router: {error:#}");
        }
    });
    Ok(addr)
}

fn wrk_installed() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

fn wrk(addr: SocketAddr, connections: usize, duration: Duration) -> anyhow::Result<Figures> {
    let output = Command::new("wrk")
        .args(["-t1", "--latency", "-H", &format!("Host: {HOST}")])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg(format!("http://{addr}/"))
        .output()
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {text} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let requests_per_second: f64 = field("Requests/sec:")
        .context("wrk printed no Requests/sec")?
        .parse()?;
    let p50 = parse_wrk_duration(field("50%").context("wrk printed no p50")?)?;
    let p99 = parse_wrk_duration(field("99%").context("wrk printed no p99")?)?;
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .flat_map(|l| l.split(|c: char| !c.is_ascii_digit()))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    Ok(Figures {
        requests_per_second,
        p50,
        p99,
        errors,
    })
}

/// `123.45us`, `1.23ms`, `2.00s`.
fn parse_wrk_duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .context("a unit")?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => bail!("unknown unit in {text}"),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// The built-in load generator: `connections` keep-alive connections, each sending requests
/// back to back for `duration`, on a runtime of its own.
fn generate(addr: SocketAddr, connections: usize, duration: Duration) -> anyhow::Result<Figures> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let deadline = Instant::now() + duration;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                while Instant::now() < deadline {
                    let request = Request::builder()
                        .uri("/")
                        .header("host", HOST)
                        .body(Empty::<Bytes>::new())?;
                    let started = Instant::now();
                    sender.ready().await?;
                    let response = sender.send_request(request).await?;
                    let ok = response.status().is_success();
                    response.into_body().collect().await?;
                    latencies.push(started.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                anyhow::Ok((latencies, errors))
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut l, e) = task.await??;
            latencies.append(&mut l);
            errors += e;
        }
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Ok(Figures {
            requests_per_second: latencies.len() as f64 / duration.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
            errors,
        })
    })
}

/// nginx as a reverse proxy to one upstream, as a production nginx in front of an app: two
/// workers (the router has two threads), keep-alive to the upstream, no access log (the
/// router's lines are formatted but not written either).
struct Nginx {
    addr: SocketAddr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstream: SocketAddr) -> anyhow::Result<Nginx> {
        let binary = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok())
            .context("nginx is not installed (apt-get install nginx-light)")?;
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.path().display();
        let config = format!(
            "worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             upstream dyno {{ server {upstream}; keepalive 256; }}\n\
             server {{\n    listen 127.0.0.1:{port} backlog={BACKLOG};\n    location / {{\n\
             proxy_pass http://dyno;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
             proxy_set_header Host $host;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             proxy_set_header X-Request-Start $msec;\n    }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config)?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("start nginx")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx {
            addr,
            child,
            _dir: dir,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would leave them running).
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
