//! Router benchmark, on loopback only: requests/s and p50/p99 latency through the router
//! against straight to an upstream and through nginx (when installed: `apt-get install
//! nginx-light`) proxying to the same upstream with keep-alive, with 1, 64 and 256 keep-alive
//! connections; random against least-outstanding balancing over four upstreams (all equal;
//! one slow; each serving one request at a time); and session affinity on over the four equal
//! upstreams, for clients without a cookie (each response signs one) and with one (each
//! request's cookie is verified; they all reach one upstream). The proxy comparison also runs
//! the router with the metrics history on (`metrics on`: the log callback records every
//! request into a real `wharf_metrics::Recorder` flushing to a temp dir, as the server's does)
//! against the same router with the callback only formatting the line; the two are printed
//! side by side as a difference in requests/s and in CPU time per request.
//!
//! `cargo run --release -p wharf-router --example bench [-- --seconds N] [--rounds N] [--rust]
//! [--only TEXT] [--connections N] [--bridge]` (`--only` runs the rows whose name and
//! connection count contain TEXT, `--connections` those with N connections; `--bridge` puts
//! the proxy comparison's upstream in a network namespace on Wharf's dyno network, as a
//! dyno, so that its rows cross the veth pair and the bridge: as root).
//!
//! Load comes from `wrk` when it is installed (`apt-get install wrk`), else (or with `--rust`)
//! from a small load generator here, on its own thread. Each run is bounded by `--seconds`
//! (default 5); the proxy comparison runs `--rounds` times (default 3), interleaved, and shows
//! medians. Router lines are formatted (as the log callback would) and dropped. The proxy's
//! CPU time per request is the figure to compare on a shared machine: requests/s move with
//! whatever else runs, CPU time per request much less.

/// As in the `wharf` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
use wharf_router::{AffinityKey, AppRoutes, Backend, Balancing, RouteTable, Router, RouterConfig};

const HOST: &str = "bench.wharf.test";
/// Signs the session affinity cookies of the affinity rows.
const AFFINITY_KEY: &[u8] = b"bench affinity key";
const BODY: &[u8] = b"hello from a dyno\n";
/// Connections the upstreams accepted (the router's pool should keep this near the client
/// connection count).
static UPSTREAM_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// How long the slow upstream takes per request.
const SLOW_DELAY: Duration = Duration::from_millis(5);
/// How long a one-at-a-time upstream (a single-threaded app server) takes per request.
const SERIAL_DELAY: Duration = Duration::from_millis(1);

#[derive(Clone)]
struct Figures {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let number = |flag: &str, default: u64| -> anyhow::Result<u64> {
        match args.iter().position(|a| a == flag) {
            Some(i) => args
                .get(i + 1)
                .with_context(|| format!("{flag} needs a number"))?
                .parse()
                .with_context(|| flag.to_owned()),
            None => Ok(default),
        }
    };
    let seconds = number("--seconds", 5)?;
    let rounds = number("--rounds", 3)?.max(1);
    let use_wrk = !args.iter().any(|a| a == "--rust") && wrk_installed();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let only_connections = if args.iter().any(|a| a == "--connections") {
        Some(number("--connections", 0)? as usize)
    } else {
        None
    };
    let duration = Duration::from_secs(seconds.clamp(1, 60));
    // `--bridge`: the single upstream of the proxy comparison runs in a network namespace on
    // Wharf's dyno network, as a dyno does, so every row crosses the veth pair and the bridge
    // (as root). Without it, everything is on loopback.
    let bridge = args.iter().any(|a| a == "--bridge");
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
    // The metrics history of the `metrics on` rows, flushed by its own task on the upstreams'
    // runtime (as on the server, off the router's threads).
    let history_dir = tempfile::tempdir()?;
    let history = wharf_metrics::Recorder::open(history_dir.path(), 7)?;
    runtime.spawn(history.clone().run(shutdown.clone()));

    let (direct, equal, uneven, serial, _network) = runtime.block_on(async {
        let fast = || upstream(Duration::ZERO, false, shutdown.clone(), None);
        let (direct, network) = if bridge {
            let network = wharf_network::DynoNetwork::start(wharf_network::test_settings()).await?;
            let attachment = network.attach().await?;
            let place = (attachment.namespace_path(), attachment.address());
            let direct = upstream(Duration::ZERO, false, shutdown.clone(), Some(place)).await?;
            (direct, Some((network, attachment)))
        } else {
            (fast().await?, None)
        };
        let mut equal = Vec::new();
        for _ in 0..4 {
            equal.push(fast().await?);
        }
        let mut uneven = vec![upstream(SLOW_DELAY, false, shutdown.clone(), None).await?];
        for _ in 0..3 {
            uneven.push(fast().await?);
        }
        let mut serial = Vec::new();
        for _ in 0..4 {
            serial.push(upstream(SERIAL_DELAY, true, shutdown.clone(), None).await?);
        }
        anyhow::Ok((direct, equal, uneven, serial, network))
    })?;

    let mut routers = Vec::new();
    for (balancing, backends, affinity, metrics) in [
        (Balancing::LeastOutstanding, vec![direct], false, None),
        (Balancing::Random, equal.clone(), false, None),
        (Balancing::LeastOutstanding, equal.clone(), false, None),
        (Balancing::Random, uneven.clone(), false, None),
        (Balancing::LeastOutstanding, uneven.clone(), false, None),
        (Balancing::Random, serial.clone(), false, None),
        (Balancing::LeastOutstanding, serial.clone(), false, None),
        (Balancing::LeastOutstanding, equal.clone(), true, None),
        (
            Balancing::LeastOutstanding,
            vec![direct],
            false,
            Some(history.clone()),
        ),
    ] {
        let addr = router_runtime.block_on(router(
            balancing,
            &backends,
            affinity,
            metrics,
            lines.clone(),
            shutdown.clone(),
        ))?;
        routers.push(addr);
    }

    let nginx = match Nginx::start(direct, NginxWork::Minimal)
        .and_then(|minimal| Ok([minimal, Nginx::start(direct, NginxWork::AsRouter)?]))
    {
        Ok(nginx) => nginx.into_iter().collect(),
        Err(error) => {
            println!("no nginx rows: {error:#}");
            Vec::new()
        }
    };

    println!(
        "load: {}, {}s per run; the upstreams, the router and nginx have 2 threads (workers) each, on 2 cores shared with the load;\n\
         the proxy comparison shows each figure's median of {rounds} rounds (dyno conns and errors: the sum); proxy CPU/req: the router's\n\
         threads' or nginx's workers' CPU time (user and system) per request\n",
        if use_wrk {
            "wrk -t1"
        } else {
            "built-in generator (1 thread)"
        },
        duration.as_secs()
    );
    println!(
        "{:<46} {:>6} {:>10} {:>10} {:>10} {:>7} {:>11} {:>12}",
        "run", "conns", "req/s", "p50", "p99", "errors", "dyno conns", "proxy CPU/req"
    );
    // The proxy comparison runs in rounds, each row once per round in turn, and prints each
    // row's median: a busy neighbour then slows every row of a round alike.
    let mut comparison = Vec::new();
    for connections in [1, 64, 256] {
        comparison.push(("direct to upstream", direct, connections));
        comparison.push(("through router (1 dyno)", routers[0], connections));
        comparison.push((METRICS_ON, routers[8], connections));
        for nginx in &nginx {
            comparison.push((nginx.work.row(), nginx.addr, connections));
        }
    }
    let balancing = [
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
        ("4 equal dynos, affinity, new clients", routers[7], 64),
        ("4 equal dynos, affinity, pinned clients", routers[7], 64),
    ];
    // The pinned clients' cookie: web.1 of the bench app.
    let pinned_cookie = format!(
        "{}={}",
        wharf_router::affinity::COOKIE,
        AffinityKey::new(AFFINITY_KEY).token(Uuid::nil(), Uuid::from_u128(1))
    );
    let selected = |(name, _, connections): &(&str, SocketAddr, usize)| {
        only.as_ref()
            .is_none_or(|o| format!("{name} {connections}").contains(o.as_str()))
            && only_connections.is_none_or(|n| n == *connections)
    };
    let comparison: Vec<_> = comparison.into_iter().filter(selected).collect();
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); comparison.len()];
    for _ in 0..rounds {
        for (row, &(_, addr, connections)) in comparison.iter().enumerate() {
            let proxy = if addr == direct {
                Proxy::None
            } else if let Some(nginx) = nginx.iter().find(|n| n.addr == addr) {
                Proxy::Nginx(nginx)
            } else {
                Proxy::Router
            };
            measured[row].push(measure(addr, connections, duration, use_wrk, proxy, None)?);
        }
    }
    let medians: Vec<Measured> = measured.into_iter().map(median).collect();
    for ((name, _, connections), run) in comparison.iter().zip(&medians) {
        print_row(name, *connections, run);
    }
    print_metrics_cost(&comparison, &medians);
    for (name, addr, connections) in balancing.into_iter().filter(selected) {
        let cookie = name.contains("pinned").then_some(pinned_cookie.as_str());
        let run = measure(addr, connections, duration, use_wrk, Proxy::Router, cookie)?;
        print_row(name, connections, &run);
    }
    println!("\nrouter lines written: {}", lines.load(Ordering::Relaxed));
    drop(nginx);
    shutdown.cancel();
    runtime.shutdown_timeout(Duration::from_secs(5));
    router_runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// The row of the router recording every request into the metrics history.
const METRICS_ON: &str = "through router (1 dyno), metrics on";

/// What the metrics history costs the router: `metrics on` against the same router without
/// it, per connection count, as differences in requests/s and CPU time per request.
fn print_metrics_cost(rows: &[(&str, SocketAddr, usize)], medians: &[Measured]) {
    let find = |name: &str, connections: usize| {
        rows.iter()
            .zip(medians)
            .find(|((n, _, c), _)| *n == name && *c == connections)
            .map(|(_, run)| run)
    };
    let mut printed_title = false;
    for connections in [1, 64, 256] {
        let (Some(off), Some(on)) = (
            find("through router (1 dyno)", connections),
            find(METRICS_ON, connections),
        ) else {
            continue;
        };
        if !printed_title {
            println!("\nmetrics history on against off (medians; + is more):");
            printed_title = true;
        }
        let change = |on: f64, off: f64| {
            if off > 0.0 {
                format!("{:+.1}%", (on - off) / off * 100.0)
            } else {
                "-".to_owned()
            }
        };
        let cpu = match (on.proxy_cpu, off.proxy_cpu) {
            (Some(on), Some(off)) => format!(
                "{:.1}us against {:.1}us ({})",
                on.as_secs_f64() * 1e6,
                off.as_secs_f64() * 1e6,
                change(on.as_secs_f64(), off.as_secs_f64())
            ),
            _ => "-".to_owned(),
        };
        println!(
            "  {connections:>3} conns: req/s {:.0} against {:.0} ({}), router CPU/req {cpu}",
            on.figures.requests_per_second,
            off.figures.requests_per_second,
            change(
                on.figures.requests_per_second,
                off.figures.requests_per_second
            ),
        );
    }
}

/// Which proxy a row goes through, for its CPU time.
#[derive(Clone, Copy)]
enum Proxy<'a> {
    None,
    Router,
    Nginx(&'a Nginx),
}

/// One row's run.
#[derive(Clone)]
struct Measured {
    figures: Figures,
    /// Connections the upstream accepted during the run.
    dyno_connections: u64,
    /// CPU time the proxy used per request.
    proxy_cpu: Option<Duration>,
}

fn measure(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    use_wrk: bool,
    proxy: Proxy<'_>,
    cookie: Option<&str>,
) -> anyhow::Result<Measured> {
    let proxy_cpu = || match proxy {
        Proxy::None => None,
        Proxy::Router => router_cpu_time(),
        Proxy::Nginx(nginx) => nginx.cpu_time(),
    };
    let connections_before = UPSTREAM_CONNECTIONS.load(Ordering::Relaxed);
    let cpu_before = proxy_cpu();
    let figures = if use_wrk {
        wrk(addr, connections, duration, cookie)?
    } else {
        generate(addr, connections, duration, cookie)?
    };
    let requests = (figures.requests_per_second * duration.as_secs_f64()).max(1.0);
    let proxy_cpu = cpu_before
        .zip(proxy_cpu())
        .map(|(before, after)| (after - before).div_f64(requests));
    Ok(Measured {
        figures,
        dyno_connections: UPSTREAM_CONNECTIONS.load(Ordering::Relaxed) - connections_before,
        proxy_cpu,
    })
}

/// Each figure's median over the runs.
fn median(runs: Vec<Measured>) -> Measured {
    fn middle<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        values[values.len() / 2]
    }
    let pick = |f: fn(&Measured) -> f64| middle(runs.iter().map(f).collect());
    Measured {
        figures: Figures {
            requests_per_second: pick(|m| m.figures.requests_per_second),
            p50: Duration::from_secs_f64(pick(|m| m.figures.p50.as_secs_f64())),
            p99: Duration::from_secs_f64(pick(|m| m.figures.p99.as_secs_f64())),
            errors: runs.iter().map(|m| m.figures.errors).sum(),
        },
        dyno_connections: runs.iter().map(|m| m.dyno_connections).sum(),
        proxy_cpu: runs.iter().all(|m| m.proxy_cpu.is_some()).then(|| {
            Duration::from_secs_f64(pick(|m| m.proxy_cpu.map_or(0.0, |d| d.as_secs_f64())))
        }),
    }
}

fn print_row(name: &str, connections: usize, run: &Measured) {
    println!(
        "{:<46} {:>6} {:>10.0} {:>10} {:>10} {:>7} {:>11} {:>12}",
        name,
        connections,
        run.figures.requests_per_second,
        show(run.figures.p50),
        show(run.figures.p99),
        run.figures.errors,
        run.dyno_connections,
        run.proxy_cpu.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.1}us", d.as_secs_f64() * 1e6)
        ),
    );
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

/// A listener on loopback, or (`place`) at an address inside a network namespace: the socket
/// is made by a thread that joined the namespace, and stays there.
fn listen(place: Option<(std::path::PathBuf, std::net::Ipv4Addr)>) -> anyhow::Result<TcpListener> {
    let Some((namespace, address)) = place else {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        return Ok(socket.listen(BACKLOG)?);
    };
    let runtime = tokio::runtime::Handle::current();
    let std_listener = std::thread::spawn(move || -> anyhow::Result<std::net::TcpListener> {
        let _runtime = runtime.enter();
        let file = std::fs::File::open(&namespace)?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from((address, 0)))?;
        let listener = socket.listen(BACKLOG)?;
        Ok(listener.into_std()?)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the listening thread panicked"))??;
    Ok(TcpListener::from_std(std_listener)?)
}

/// A tiny upstream answering every request with [`BODY`] after `delay`; `one_at_a_time`
/// makes it serve one request at a time, like a single-threaded app server.
async fn upstream(
    delay: Duration,
    one_at_a_time: bool,
    shutdown: CancellationToken,
    place: Option<(std::path::PathBuf, std::net::Ipv4Addr)>,
) -> anyhow::Result<SocketAddr> {
    let listener = listen(place)?;
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
    session_affinity: bool,
    metrics: Option<wharf_metrics::Recorder>,
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
                    id: Uuid::from_u128(n as u128 + 1),
                    dyno: format!("web.{}", n + 1),
                    addr: *addr,
                })
                .collect(),
            session_affinity,
        },
    );
    let (routes, routes_rx) = watch::channel(Arc::new(table));
    let mut config = RouterConfig::new("wharf.test");
    config.balancing = balancing;
    config.threads = 2;
    config.affinity_key = AffinityKey::new(AFFINITY_KEY);
    let router = Router::new(config, routes_rx, move |app, line| {
        // As the server's sink: the request into the history, then the line.
        if let Some(history) = &metrics {
            let total = match (line.connect, line.service) {
                (None, None) => None,
                (connect, service) => {
                    Some(connect.unwrap_or_default() + service.unwrap_or_default())
                }
            };
            history.record_request(app, line.status, total, line.error.map(|e| e.code()));
        }
        std::hint::black_box(line.message());
        lines.fetch_add(1, Ordering::Relaxed);
    });
    let listener = listen(None)?;
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

/// CPU time (user and system) that the router's threads have used.
fn router_cpu_time() -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        if stat.contains("(router-") {
            total += cpu_time(&stat)?;
        }
    }
    Some(total)
}

/// User and system time from a `/proc/.../stat` line (clock ticks of 10 ms).
fn cpu_time(stat: &str) -> Option<Duration> {
    // The fields after the command name, which ends with the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn wrk_installed() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

fn wrk(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    cookie: Option<&str>,
) -> anyhow::Result<Figures> {
    let output = Command::new("wrk")
        .args(["-t1", "--latency", "-H", &format!("Host: {HOST}")])
        .args(
            cookie
                .map(|cookie| ["-H".to_owned(), format!("Cookie: {cookie}")])
                .into_iter()
                .flatten(),
        )
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
fn generate(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    cookie: Option<&str>,
) -> anyhow::Result<Figures> {
    let cookie = cookie.map(str::to_owned);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let deadline = Instant::now() + duration;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let cookie = cookie.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                while Instant::now() < deadline {
                    let mut request = Request::builder().uri("/").header("host", HOST);
                    if let Some(cookie) = &cookie {
                        request = request.header("cookie", cookie.as_str());
                    }
                    let request = request.body(Empty::<Bytes>::new())?;
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

/// What nginx does for each request besides proxying it.
#[derive(Clone, Copy)]
enum NginxWork {
    /// Only `Host`, `X-Forwarded-For` and `X-Request-Start` set; no access log.
    Minimal,
    /// What the router does: the request id kept or made, every forwarding header and `Via`
    /// both ways, and a line per request in the router's format (written to a file through a
    /// 256 KiB buffer; the router's lines are formatted and dropped).
    AsRouter,
}

impl NginxWork {
    fn row(self) -> &'static str {
        match self {
            NginxWork::Minimal => "through nginx, minimal (1 dyno)",
            NginxWork::AsRouter => "through nginx, as the router (1 dyno)",
        }
    }

    /// The `http` block's settings and the `location` block's.
    fn config(self, dir: &std::path::Path) -> (String, &'static str) {
        match self {
            NginxWork::Minimal => (
                "access_log off;".to_owned(),
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Request-Start $msec;",
            ),
            NginxWork::AsRouter => (
                format!(
                    "map $http_x_request_id $id {{ \"\" $request_id; default $http_x_request_id; }}\n\
                     log_format router 'at=info method=$request_method path=\"$request_uri\" host=$host \
                     request_id=$id fwd=\"$remote_addr\" dyno=web.1 connect=$upstream_connect_time \
                     service=$upstream_response_time status=$status bytes=$bytes_sent protocol=$scheme';\n\
                     access_log {}/access.log router buffer=256k;",
                    dir.display()
                ),
                "proxy_set_header X-Request-Id $id;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto $scheme;\n\
                 proxy_set_header X-Forwarded-Port $server_port;\n\
                 proxy_set_header X-Request-Start $msec;\n\
                 proxy_set_header Via \"1.1 nginx\";\n\
                 add_header Via \"1.1 nginx\";",
            ),
        }
    }
}

/// nginx as a reverse proxy to one upstream, as a production nginx in front of an app: two
/// workers (the router has two threads), keep-alive to the upstream.
struct Nginx {
    addr: SocketAddr,
    work: NginxWork,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstream: SocketAddr, work: NginxWork) -> anyhow::Result<Nginx> {
        let binary = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok())
            .context("nginx is not installed (apt-get install nginx-light)")?;
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.path().display();
        let (http, location) = work.config(dir.path());
        let config = format!(
            "worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  {http}\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             upstream dyno {{ server {upstream}; keepalive 256; keepalive_requests 1000000; }}\n\
             server {{\n    listen 127.0.0.1:{port} backlog={BACKLOG};\n    location / {{\n\
             proxy_pass http://dyno;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
             proxy_set_header Host $host;\n      {location}\n    }}\n  }}\n}}\n"
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
            work,
            child,
            _dir: dir,
        })
    }
}

impl Nginx {
    /// CPU time (user and system) that nginx's workers have used.
    fn cpu_time(&self) -> Option<Duration> {
        let master = self.child.id().to_string();
        let mut total = Duration::ZERO;
        for process in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(stat) = std::fs::read_to_string(process.path().join("stat")) else {
                continue;
            };
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if parent == Some(master.as_str()) {
                total += cpu_time(&stat)?;
            }
        }
        Some(total)
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
