//! Many-host benchmarks (run as root on a prepared host: `scripts/bench-hosts`): a control
//! plane and three agent hosts in network namespaces of the bench's own, as the end-to-end
//! tests make them.
//!
//! - `ps:scale web=1→30` until all 30 are up: over three agent hosts, against the same scale
//!   on a one-host server in the same run (the baseline);
//! - a host's death (SIGKILL and its link cut) until every dyno it ran is up on the others,
//!   with the scheduler's lease (4 s) in it;
//! - requests to one web dyno on an agent host (through its published port) through the
//!   control plane's router, through another agent host's router and through its own host's
//!   router, against the one-host server's router to a dyno on its own host.
//!
//! Prints Markdown.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::hosts::{control_plane, deploy_app, scale, AgentHost};
use support::{http_json, Server};
use wharf_outbound::test_net::TestLan;

const DYNOS: u32 = 30;
const DEADLINE: Duration = Duration::from_secs(600);

/// The app's dynos that are up, with their hosts (`None` on the server itself).
fn up(server: &Server, app: &str) -> Vec<(String, Option<String>)> {
    let (status, listed) = http_json(
        &server.url,
        "GET",
        &format!("/apps/{app}/dynos"),
        &server.admin_key(),
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{listed}");
    listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|dyno| dyno["state"] == "up")
        .map(|dyno| {
            (
                dyno["name"].as_str().unwrap().to_owned(),
                dyno["host"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < DEADLINE, "{what} took too long");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

fn deploy(server: &Server, app: &str) -> tempfile::TempDir {
    let repo = deploy_app(server, app);
    wait_until("the first web dyno", || up(server, app).len() == 1);
    repo
}

fn main() {
    // The baseline: one host, the server's own dyno manager.
    let one_host_data = tempfile::tempdir().unwrap();
    let one_host = Server::start(one_host_data.path());
    let _repo = deploy(&one_host, "bench-one");
    scale(&one_host, "bench-one", DYNOS);
    let one_host_scale = wait_until("30 dynos on one host", || {
        up(&one_host, "bench-one").len() == DYNOS as usize
    });
    scale(&one_host, "bench-one", 1);
    wait_until("1 dyno on one host", || {
        up(&one_host, "bench-one").len() == 1
    });

    // Three agent hosts.
    let data = tempfile::tempdir().unwrap();
    let (server, _) = control_plane(data.path(), &[]);
    let lan = TestLan::create().unwrap();
    let mut hosts: Vec<AgentHost> = (1..=3u8)
        .map(|i| AgentHost::join(&server, &lan, &format!("host-{i}"), i))
        .collect();
    let _repo = deploy(&server, "bench-many");
    scale(&server, "bench-many", DYNOS);
    let many_scale = wait_until("30 dynos over 3 hosts", || {
        up(&server, "bench-many").len() == DYNOS as usize
    });
    let on_first = up(&server, "bench-many")
        .iter()
        .filter(|(_, host)| host.as_deref() == Some("host-1"))
        .count();
    let died = Instant::now();
    hosts[0].kill();
    hosts[0].cut();
    wait_until("host-1's dynos up elsewhere", || {
        let now = up(&server, "bench-many");
        now.len() == DYNOS as usize
            && now
                .iter()
                .all(|(_, host)| host.as_deref() != Some("host-1"))
    });
    let replaced = died.elapsed();
    scale(&server, "bench-many", 1);
    wait_until("1 dyno on another host", || {
        let now = up(&server, "bench-many");
        now.len() == 1 && now[0].1.is_some()
    });
    let dyno_host = up(&server, "bench-many")[0].1.clone().unwrap();
    let own = hosts.iter().find(|host| host.name == dyno_host).unwrap();
    let other = hosts[1..]
        .iter()
        .find(|host| host.name != dyno_host)
        .unwrap();
    let same_host = load(&one_host.router_authority(), "bench-one.localhost");
    let control_plane = load(&server.router_authority(), "bench-many.localhost");
    let other_router = load(&other.router(), "bench-many.localhost");
    let own_router = load(&own.router(), "bench-many.localhost");

    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| `ps:scale web=1→{DYNOS}` until all up, one host (baseline) | {:.1} s |",
        one_host_scale.as_secs_f64()
    );
    println!(
        "| `ps:scale web=1→{DYNOS}` until all up, over 3 agent hosts | {:.1} s |",
        many_scale.as_secs_f64()
    );
    println!(
        "| host death to its {on_first} web dynos up on the other hosts (lease 4 s included) | {:.1} s |",
        replaced.as_secs_f64()
    );
    for (label, (rate, p50, p99)) in [
        (
            "router to a dyno on its own host (one host, baseline)",
            same_host,
        ),
        (
            "control plane's router to a dyno on an agent host",
            control_plane,
        ),
        ("a host's router to a dyno on another host", other_router),
        (
            "a host's router to a dyno on its own host (its published port)",
            own_router,
        ),
    ] {
        println!(
            "| {label}: {THREADS} clients × {REQUESTS} requests | {rate:.0} req/s, p50 {:.2} ms, p99 {:.2} ms |",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
}

const THREADS: usize = 4;
const REQUESTS: usize = 500;

/// `THREADS` clients each sending `REQUESTS` GETs (a connection each) through the router at
/// `authority` for `host`: requests per second, and the median and 99th percentile latency.
fn load(authority: &str, host: &str) -> (f64, Duration, Duration) {
    support::http_request_until(authority, host, "/", 200);
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (authority, host) = (authority.to_owned(), host.to_owned());
            std::thread::spawn(move || {
                (0..REQUESTS)
                    .map(|_| {
                        let sent = Instant::now();
                        let response = support::http_request(&authority, &host, "/");
                        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
                        sent.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |fraction: f64| {
        latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)]
    };
    (
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
    )
}
