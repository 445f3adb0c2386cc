//! End to end: a pushed app runs as dynos in real containers, kept to its formation across
//! scaling, new releases and a SIGKILL of the server.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{
    deploy_procfile_app, http_get, http_json, http_request, runtime_containers, wait_for, Server,
    User, DEADLINE,
};

/// The ports the app's web dynos said they listen on, from its log.
fn ports(server: &Server, key: &str, app: &str) -> BTreeSet<u16> {
    let (_, session) = http_json(
        &server.url,
        "POST",
        &format!("/apps/{app}/log-sessions"),
        key,
        &serde_json::json!({"lines": 1500, "source": "app"}),
    );
    let url = session["logplex_url"].as_str().unwrap();
    let text = http_get(url);
    text.lines()
        .filter_map(|line| line.split("listening on ").nth(1))
        .filter_map(|port| port.trim().parse().ok())
        .collect()
}

#[test]
fn dynos_follow_the_formation_releases_and_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "runner"]).ok();
    let _repo = deploy_procfile_app(&server, &key, "runner");
    wait_for(&server, &key, "runner", &["web.1"], 2);

    user.run(&["ps:scale", "web=3", "-a", "runner"]).ok();
    wait_for(&server, &key, "runner", &["web.1", "web.2", "web.3"], 2);
    let ports = ports(&server, &key, "runner");
    assert_eq!(ports.len(), 3, "three dynos on distinct ports: {ports:?}");
    // Each in a network namespace of its own, at an address of the server's dyno network:
    // every address serves one of the ports (the others are refused at once).
    let addresses = support::container_addresses(&server.data_dir, "dyno-");
    assert_eq!(addresses.len(), 3, "{addresses:?}");
    let mut served = 0;
    for address in addresses.values() {
        for port in &ports {
            if std::net::TcpStream::connect((*address, *port)).is_ok() {
                let body = http_get(&format!("http://{address}:{port}/"));
                assert!(body.contains("Hello from procfile-only on Wharf"), "{body}");
                served += 1;
            }
        }
    }
    assert_eq!(
        served, 3,
        "each dyno serves its own port at its own address"
    );

    // Through the router: requests for runner.localhost reach the dynos, and each leaves a
    // router line in the app's log.
    let router = server
        .router_url
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    for _ in 0..6 {
        let response = http_request(&router, "runner.localhost", "/hello");
        assert!(
            response.lines().next().unwrap().ends_with(" 200 OK"),
            "{response}"
        );
        assert!(
            response.contains("Hello from procfile-only on Wharf"),
            "{response}"
        );
    }
    let unknown = http_request(&router, "nothing.localhost", "/");
    assert!(
        unknown.lines().next().unwrap().contains(" 404 "),
        "{unknown}"
    );
    let (_, session) = http_json(
        &server.url,
        "POST",
        "/apps/runner/log-sessions",
        &key,
        &serde_json::json!({"lines": 1500, "dyno": "router"}),
    );
    let log = http_get(session["logplex_url"].as_str().unwrap());
    let router_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("heroku[router]: at=info"))
        .collect();
    assert_eq!(router_lines.len(), 6, "{log}");
    assert!(
        router_lines[0].contains("method=GET path=\"/hello\" host=runner.localhost"),
        "{log}"
    );
    assert!(router_lines[0].contains("status=200"), "{log}");

    // A config change is a new release: every dyno is replaced, the formation kept.
    user.run(&["config:set", "GREETING=hi", "-a", "runner"])
        .ok();
    wait_for(&server, &key, "runner", &["web.1", "web.2", "web.3"], 3);

    user.run(&["ps:scale", "web=2", "-a", "runner"]).ok();
    wait_for(&server, &key, "runner", &["web.1", "web.2"], 3);

    // SIGKILL: the dynos outlive the server; a new server starts from nothing and runs
    // exactly the formation again, with no leftovers.
    server.kill();
    let server = Server::start(data.path());
    wait_for(&server, &key, "runner", &["web.1", "web.2"], 3);
    let deadline = Instant::now() + DEADLINE;
    while runtime_containers(data.path()).len() != 2 {
        assert!(
            Instant::now() < deadline,
            "leftovers: {:?}",
            runtime_containers(data.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let (status, _) = http_json(
        &server.url,
        "DELETE",
        "/apps/runner/dynos/web.1",
        &key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 202);
    wait_for(&server, &key, "runner", &["web.1", "web.2"], 3);

    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:destroy", "runner", "--confirm", "runner"])
        .ok();
    let deadline = Instant::now() + DEADLINE;
    while !runtime_containers(data.path()).is_empty() {
        assert!(Instant::now() < deadline, "a destroyed app's dynos stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}
