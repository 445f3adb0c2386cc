//! End to end: a control plane and three agent hosts on one machine. Each host is a network
//! namespace the test makes, on a LAN the test makes (a bridge in a namespace of its own, with
//! the control plane's namespace on it too; addresses in `198.18.0.0/16`), running the real
//! `wharf agent` with its own data dir, dyno network, containers and router; the control plane
//! is the real `wharf server`. A formation spreads over the hosts and nothing runs on the
//! control plane; every host's router reaches the dynos on every host; a deploy and a control
//! plane restart under load fail no request; a host killed with SIGKILL and cut off has its
//! dynos placed and started on the others while a request loop counts failures; a partitioned
//! agent fences itself (its dynos stop) while its dynos come up elsewhere, and comes back to a
//! clean slate; a drain under load moves a host's dynos away; a control plane gone silent
//! for longer than a lease stops no dyno and fails no request. Nothing leaves the machine:
//! every address is loopback or the test's own.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::hosts::{
    all_dynos, control_plane, deploy_app, host_state, scale, spread, wait_for_spread,
    wharf_scheduler_grace, AgentHost, Load, Silence, MOVE_DEADLINE,
};
use support::{http_json, Server};
use wharf_outbound::test_net::TestLan;

#[test]
fn a_formation_spreads_over_hosts_and_survives_losing_them() {
    let data = tempfile::tempdir().unwrap();
    let lan = TestLan::create().unwrap();
    let (server, api_listen) = control_plane(data.path(), &[]);
    let api_port: u16 = api_listen.rsplit(':').next().unwrap().parse().unwrap();
    let key = server.admin_key();

    let mut hosts: Vec<AgentHost> = (1..=3u8)
        .map(|i| AgentHost::join(&server, &lan, &format!("host-{i}"), i))
        .collect();
    let repo = deploy_app(&server, "spread");
    scale(&server, "spread", 3);

    // One web dyno on each host, and none on the control plane.
    let everywhere = |spread: &BTreeMap<String, Vec<String>>| {
        spread.values().all(|dynos| dynos.len() == 1) && all_dynos(spread).len() == 3
    };
    let took = wait_for_spread(&hosts.iter().collect::<Vec<_>>(), "web 1/1/1", everywhere);
    eprintln!("formation of 3 up over 3 hosts in {took:?}");
    assert_eq!(
        all_dynos(&spread(&hosts.iter().collect::<Vec<_>>())),
        ["web.1", "web.2", "web.3"]
    );
    assert!(support::runtime_containers(data.path()).is_empty());
    // Each runs the app's code, fetched from the control plane: its web process answers.
    for host in &hosts {
        let deadline = Instant::now() + MOVE_DEADLINE;
        loop {
            let answers = host.answers();
            if answers.len() == 1
                && answers
                    .values()
                    .all(|body| body.contains("Hello from procfile-only"))
            {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {answers:?}", host.name);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // `ps` on the control plane shows them up, each with its host.
    wait_for_ps(&server, |seen| {
        let on_hosts: BTreeSet<&str> = seen.values().map(|(_, host, _)| host.as_str()).collect();
        seen.len() == 3
            && seen.values().all(|(state, _, _)| state == "up")
            && on_hosts.len() == 3
            && !on_hosts.contains("")
    });
    let ps = support::User::new(&server.url, Some(&key)).run(&["ps", "-a", "spread"]);
    let ps = ps.ok();
    assert!(ps.contains("on host-1") && ps.contains("on host-3"), "{ps}");
    // Traffic through the control plane's router reaches them on their hosts, at the
    // hosts' published ports: a run of requests, each answered.
    support::http_request_until(&server.router_authority(), "spread.localhost", "/", 200);
    for _ in 0..30 {
        let response = support::http_request(&server.router_authority(), "spread.localhost", "/");
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        assert!(response.contains("Hello from procfile-only"), "{response}");
    }
    // So does traffic through host-1's own router: to the dyno on its own host and to those
    // on the other two.
    let router = hosts[0].router();
    support::http_request_until(&router, "spread.localhost", "/", 200);
    for n in 0..60 {
        let response =
            support::http_request(&router, "spread.localhost", &format!("/via-host-1/{n}"));
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        assert!(response.contains("Hello from procfile-only"), "{response}");
    }

    // Their output, and host-1's router lines, reach the app's log on the control plane.
    let deadline = Instant::now() + MOVE_DEADLINE;
    loop {
        let logs = support::User::new(&server.url, Some(&key))
            .run(&["logs", "-a", "spread", "-n", "1500"])
            .ok();
        let routed: BTreeSet<&str> = logs
            .lines()
            .filter(|line| line.contains("heroku[router]: at=info method=GET path=\"/via-host-1/"))
            .filter_map(|line| line.split(" dyno=").nth(1)?.split(' ').next())
            .collect();
        if (1..=3).all(|n| logs.contains(&format!("app[web.{n}]: listening on")))
            && routed == BTreeSet::from(["web.1", "web.2", "web.3"])
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host-1's router reached {routed:?}; the log has {logs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Their runtime metrics and the hosts' routers' requests reach the control plane: the
    // dyno's recent samples, and the metrics history the dashboard charts.
    let deadline = Instant::now() + MOVE_DEADLINE;
    loop {
        let (_, samples) = http_json(
            &server.url,
            "GET",
            "/apps/spread/dynos/web.2/metrics",
            &key,
            &serde_json::json!({}),
        );
        let (_, history) = http_json(
            &server.url,
            "GET",
            "/apps/spread/metrics/dynos?range=1h",
            &key,
            &serde_json::json!({}),
        );
        let charted: BTreeSet<&str> = history["dynos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|dyno| !dyno["points"].as_array().unwrap().is_empty())
            .filter_map(|dyno| dyno["dyno"].as_str())
            .collect();
        // The requests through host-1's router count with the control plane's router's.
        let (_, requests) = http_json(
            &server.url,
            "GET",
            "/apps/spread/metrics/router?range=1h",
            &key,
            &serde_json::json!({}),
        );
        if samples
            .as_array()
            .is_some_and(|samples| !samples.is_empty())
            && charted == BTreeSet::from(["web.1", "web.2", "web.3"])
            && requests["totals"]["requests"].as_u64().unwrap_or(0) >= 30 + 60
        {
            assert!(
                samples[0]["memory_quota_mb"].as_f64().unwrap() > 0.0,
                "{samples}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "samples: {samples}; history: {history}; requests: {requests}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for host in &hosts {
        // Each found its own address: the one it reaches the control plane from.
        assert_eq!(
            host_state(&server, &host.name)["address"],
            host.net.peer.to_string()
        );
        assert_eq!(host_state(&server, &host.name)["state"], "up");
        assert_eq!(host_state(&server, &host.name)["dynos"], 1);
    }

    // A deploy while requests go through host-2's router: each dyno is replaced (preboot,
    // across hosts as on one) and no request fails.
    let released = release_of(&server, "web.1");
    let load = Load::start(&hosts[1].router(), "spread.localhost");
    support::git(
        repo.path(),
        &["commit", "--quiet", "--allow-empty", "-m", "again"],
    );
    let authority = server.url.strip_prefix("http://").unwrap();
    support::git(
        repo.path(),
        &[
            "push",
            "--quiet",
            &format!("http://git:{key}@{authority}/spread.git"),
            "main",
        ],
    );
    wait_for_ps(&server, |seen| {
        seen.len() == 3
            && seen
                .values()
                .all(|(state, _, release)| state == "up" && *release > released)
    });
    wait_for_spread(
        &hosts.iter().collect::<Vec<_>>(),
        "old dynos gone",
        |spread| all_dynos(spread).len() == 3,
    );
    // The routers' tables have moved on too.
    std::thread::sleep(Duration::from_secs(3));
    let (ok, failed) = load.stop();
    // Each host keeps the new release's slug alone: the old one went with its dynos.
    let deadline = Instant::now() + MOVE_DEADLINE;
    while hosts.iter().any(|host| host.packed_slugs().len() != 1) {
        let kept: Vec<Vec<String>> = hosts.iter().map(AgentHost::packed_slugs).collect();
        assert!(Instant::now() < deadline, "slugs kept: {kept:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let kept: BTreeSet<Vec<String>> = hosts.iter().map(AgentHost::packed_slugs).collect();
    assert_eq!(kept.len(), 1, "the hosts keep different slugs: {kept:?}");
    eprintln!("deploy under load: {ok} requests answered, failed: {failed:?}");
    assert!(ok > 0);
    assert!(
        failed.is_empty(),
        "failed during the deploy: {failed:?}; {}",
        router_errors(&server)
    );

    // The control plane restarts while requests go through host-3's router: the agents keep
    // their dynos (the same containers), the routers keep routing with the table they had,
    // no request fails, and once it is back every host is up and nothing moved.
    let containers: Vec<Vec<String>> = hosts
        .iter()
        .map(|host| support::runtime_containers(host.data.path()))
        .collect();
    let load = Load::start(&hosts[2].router(), "spread.localhost");
    server.terminate(Duration::from_secs(60));
    let server = Server::start_with(data.path(), &[("WHARF_API_LISTEN", &api_listen)]);
    // Past the scheduler's start grace and a lease, with room: had any host been taken for
    // lost, its dyno would have moved by now.
    std::thread::sleep(wharf_scheduler_grace() + Duration::from_secs(4));
    let (ok, failed) = load.stop();
    eprintln!("control plane restart under load: {ok} requests answered, failed: {failed:?}");
    assert!(ok > 0);
    assert!(
        failed.is_empty(),
        "failed during the restart: {failed:?}; {}",
        router_errors(&server)
    );
    for (host, before) in hosts.iter().zip(&containers) {
        assert_eq!(&support::runtime_containers(host.data.path()), before);
        assert_eq!(host_state(&server, &host.name)["state"], "up");
        assert_eq!(host_state(&server, &host.name)["epoch"], 1);
    }

    // host-1 dies: killed, and its link cut, while requests go through host-2's router. Its
    // web dyno comes up on another host. Only a request in flight to host-1 when it died may
    // fail (this client sends one at a time); one the router sends there later finds no
    // connection, and the router tries another dyno.
    let lost_dyno = hosts[0].dynos()[0].clone();
    let load = Load::start(&hosts[1].router(), "spread.localhost");
    std::thread::sleep(Duration::from_secs(1));
    let died = Instant::now();
    hosts[0].kill();
    hosts[0].cut();
    let survivors = [&hosts[1], &hosts[2]];
    wait_for_spread(&survivors, "host-1's dyno elsewhere", |spread| {
        all_dynos(spread).len() == 3
    });
    eprintln!(
        "host death to its dyno ({lost_dyno}) running elsewhere: {:?}",
        died.elapsed()
    );
    assert_eq!(host_state(&server, "host-1")["state"], "lost");
    // The app is served from the remaining hosts.
    let response =
        support::http_request_until(&server.router_authority(), "spread.localhost", "/", 200);
    assert!(response.contains("Hello from procfile-only"), "{response}");
    std::thread::sleep(Duration::from_secs(3));
    let (ok, failed) = load.stop();
    eprintln!("host death under load: {ok} requests answered, failed: {failed:?}");
    if !failed.is_empty() {
        eprintln!("{}", router_errors(&server));
    }
    assert!(ok > 0);
    assert!(
        failed.values().sum::<u32>() <= 1,
        "failed as host-1 died: {failed:?}; {}",
        router_errors(&server)
    );
    // What the dead host left is removed by its holders once its data dir goes.
    let dead = hosts.remove(0);
    drop(dead);

    // host-2 is cut off but keeps running: it fences itself (its dynos stop there), and its
    // dynos come up on host-3.
    hosts[0].cut();
    wait_for_spread(&[&hosts[0]], "host-2 fenced", |spread| {
        all_dynos(spread).is_empty()
    });
    wait_for_spread(&[&hosts[1]], "every dyno on host-3", |spread| {
        all_dynos(spread).len() == 3
    });
    // Back on the network, host-2 gets a new epoch and a clean slate: nothing moves back
    // (placement is stable) until something needs it.
    hosts[0].mend();
    let deadline = Instant::now() + MOVE_DEADLINE;
    while host_state(&server, "host-2")["state"] != "up" {
        assert!(Instant::now() < deadline, "host-2 never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(host_state(&server, "host-2")["epoch"], 2);
    assert!(hosts[0].dynos().is_empty());

    // Draining host-3 moves its dynos to host-2, each new one up before its old one stops,
    // while requests keep coming through host-2's router and the control plane's: none
    // fails.
    let router = hosts[0].router();
    support::http_request_until(&router, "spread.localhost", "/", 200);
    let loads = [
        Load::start(&router, "spread.localhost"),
        Load::start(&server.router_authority(), "spread.localhost"),
    ];
    let (status, body) = http_json(
        &server.url,
        "PATCH",
        "/hosts/host-3",
        &key,
        &serde_json::json!({ "draining": true }),
    );
    assert_eq!(status, 200, "{body}");
    wait_for_spread(&[&hosts[0], &hosts[1]], "host-3 drained", |spread| {
        spread["host-2"].len() == 3 && spread["host-3"].is_empty()
    });
    // And the routers' tables have moved on too.
    std::thread::sleep(Duration::from_secs(3));
    for (load, through) in loads
        .into_iter()
        .zip(["host-2's router", "the control plane's"])
    {
        let (ok, failed) = load.stop();
        eprintln!("drain under load through {through}: {ok} requests answered, failed: {failed:?}");
        assert!(ok > 0);
        assert!(
            failed.is_empty(),
            "failed during the drain: {failed:?}; {}",
            router_errors(&server)
        );
    }

    // The control plane goes silent (hung, or its machine unreachable) for longer than a
    // lease, while requests go through host-3's router to the dynos on host-2. Each agent
    // finds the other silent to it too, so neither fences itself: no dyno stops, no request
    // fails, and once the control plane is back nothing has moved.
    let containers = support::runtime_containers(hosts[0].data.path());
    let load = Load::start(&hosts[1].router(), "spread.localhost");
    let silence = Silence::start(api_port);
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        support::runtime_containers(hosts[0].data.path()),
        containers
    );
    drop(silence);
    let deadline = Instant::now() + MOVE_DEADLINE;
    // host-3 still drains.
    while host_state(&server, "host-2")["state"] != "up"
        || host_state(&server, "host-3")["state"] != "draining"
    {
        assert!(Instant::now() < deadline, "the hosts never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let (ok, failed) = load.stop();
    eprintln!("control plane silent under load: {ok} requests answered, failed: {failed:?}");
    assert!(ok > 0);
    assert!(
        failed.is_empty(),
        "failed while the control plane was silent: {failed:?}; {}",
        router_errors(&server)
    );
    assert_eq!(
        support::runtime_containers(hosts[0].data.path()),
        containers
    );
    assert_eq!(hosts[0].dynos().len(), 3);

    // `ps:restart` reaches the dynos on their host: each runs in a new container, and the app
    // answers again; a dyno no host has is not found.
    let user = support::User::new(&server.url, Some(&key));
    user.run(&["ps:restart", "-a", "spread"]).ok();
    let deadline = Instant::now() + MOVE_DEADLINE;
    loop {
        let now = support::runtime_containers(hosts[0].data.path());
        if now.len() == 3 && now.iter().all(|container| !containers.contains(container)) {
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {now:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    support::http_request_until(&hosts[1].router(), "spread.localhost", "/", 200);
    let missing = user.run(&["ps:restart", "web.9", "-a", "spread"]).failed();
    assert!(missing.contains("web.9"), "{missing}");
}

#[test]
fn an_eco_app_on_a_host_sleeps_and_wakes_and_its_one_offs_run_there() {
    let data = tempfile::tempdir().unwrap();
    let lan = TestLan::create().unwrap();
    let (server, _) = control_plane(data.path(), &[("WHARF_ECO_SLEEP_AFTER", "4")]);
    let key = server.admin_key();
    // Its own dyno network (index 7): the other test's hosts may run beside it.
    let host = AgentHost::join(&server, &lan, "host-1", 7);
    let _repo = deploy_app(&server, "sleepy");
    let (status, body) = http_json(
        &server.url,
        "PATCH",
        "/apps/sleepy/formation",
        &key,
        &serde_json::json!({ "updates": [{ "type": "web", "quantity": 1, "size": "Eco" }] }),
    );
    assert_eq!(status, 200, "{body}");
    let router = host.router();
    let response = support::http_request_until(&router, "sleepy.localhost", "/", 200);
    assert!(response.contains("Hello from procfile-only"), "{response}");

    // No request for the control plane's sleep time: the dyno on the host goes idle.
    wait_for_ps_of(&server, "sleepy", |seen| {
        seen.get("web.1")
            .is_some_and(|(state, host, _)| state == "idle" && host == "host-1")
    });
    // Its process stops once no router sends it requests.
    wait_for_spread(&[&host], "the idle dyno stopped", |spread| {
        all_dynos(spread).is_empty()
    });
    // A request through the host's router wakes it, and is answered once it is up.
    let woken = Instant::now();
    let response = support::http_request(&router, "sleepy.localhost", "/");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    assert!(response.contains("Hello from procfile-only"), "{response}");
    eprintln!(
        "a request to a sleeping app on a host answered in {:?}",
        woken.elapsed()
    );
    assert_eq!(host.dynos(), ["web.1"]);
    // Asleep again, then woken through the control plane's router.
    wait_for_ps_of(&server, "sleepy", |seen| {
        seen.get("web.1")
            .is_some_and(|(state, _, _)| state == "idle")
    });
    let response = support::http_request(&server.router_authority(), "sleepy.localhost", "/");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");

    // `wharf run` starts the one-off dyno on the host; the client attaches to it through the
    // control plane's rendezvous, which hands its connection to the host's agent.
    let user = support::User::new(&server.url, Some(&key));
    let config = user.home.path().join(".config/wharf");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::copy(server.data_dir.join("tls/ca.pem"), config.join("ca.pem")).unwrap();
    let ran = user.run(&[
        "run",
        "--no-tty",
        "-a",
        "sleepy",
        "--",
        "echo hello-from-$(hostname)-$((6*7)) && cat /proc/self/cgroup >/dev/null",
    ]);
    let output = ran.ok();
    assert!(output.contains("hello-from-"), "{output}");
    assert!(output.contains("-42"), "{output}");
    assert!(support::runtime_containers(data.path()).is_empty());
    // Detached, its output reaches the app's log from the host.
    user.run(&[
        "run:detached",
        "-a",
        "sleepy",
        "--",
        "echo detached-$((6*7))",
    ])
    .ok();
    let deadline = Instant::now() + MOVE_DEADLINE;
    loop {
        let logs = user.run(&["logs", "-a", "sleepy", "-n", "200"]).ok();
        if logs.contains("detached-42") {
            assert!(logs.contains("app[run."), "{logs}");
            break;
        }
        assert!(Instant::now() < deadline, "the log has {logs}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The app's dynos as `ps` on the control plane sees them: name to (state, host, release).
type Seen = BTreeMap<String, (String, String, i64)>;

/// Polls the control plane's dyno list until `check` holds of it.
fn wait_for_ps(server: &Server, check: impl Fn(&Seen) -> bool) {
    wait_for_ps_of(server, "spread", check);
}

fn wait_for_ps_of(server: &Server, app: &str, check: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + MOVE_DEADLINE;
    loop {
        let seen = ps_of(server, app);
        if check(&seen) {
            return;
        }
        assert!(Instant::now() < deadline, "ps shows {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ps(server: &Server) -> Seen {
    ps_of(server, "spread")
}

fn ps_of(server: &Server, app: &str) -> Seen {
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
        .map(|dyno| {
            (
                dyno["name"].as_str().unwrap().to_owned(),
                (
                    dyno["state"].as_str().unwrap().to_owned(),
                    dyno["host"].as_str().unwrap_or("").to_owned(),
                    dyno["release"]["version"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The release the dyno `name` runs.
fn release_of(server: &Server, name: &str) -> i64 {
    ps(server)[name].2
}

/// The app log's router lines with an error code (the last 20), for a failure's message.
fn router_errors(server: &Server) -> String {
    // Hosts ship their routers' lines every 250 ms.
    std::thread::sleep(Duration::from_secs(1));
    let logs = support::User::new(&server.url, Some(&server.admin_key()))
        .run(&["logs", "-a", "spread", "-n", "1500"])
        .ok();
    let errors: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("heroku[router]") && line.contains(" code="))
        .collect();
    format!(
        "router errors in the log: {:?}",
        &errors[errors.len().saturating_sub(20)..]
    )
}
