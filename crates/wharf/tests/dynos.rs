//! End to end: a pushed app runs as dynos in real containers, kept to its formation across
//! scaling, new releases and a SIGKILL of the server.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{deploy_procfile_app, http_json, Server, User};

const DEADLINE: Duration = Duration::from_secs(60);

/// The app's dynos as (name, state, release version).
fn dynos(server: &Server, key: &str, app: &str) -> Vec<(String, String, i64)> {
    let (status, body) = http_json(
        &server.url,
        "GET",
        &format!("/apps/{app}/dynos"),
        key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
                d["release"]["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Polls until the app runs exactly `names`, all `up`, of `version`.
fn wait_for(server: &Server, key: &str, app: &str, names: &[&str], version: i64) {
    let wanted: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = dynos(server, key, app);
        let up: BTreeSet<String> = now
            .iter()
            .filter(|(_, state, v)| state == "up" && *v == version)
            .map(|(name, _, _)| name.clone())
            .collect();
        if up == wanted && now.len() == names.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {wanted:?} at v{version}, have {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

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

/// A GET to `authority` for `host`, the whole response as text.
fn http_request(authority: &str, host: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn runtime_containers(data: &Path) -> Vec<String> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "runc --root {0}/runtime list -q 2>/dev/null; crun --root {0}/runtime list -q 2>/dev/null",
            data.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|id| id.starts_with("dyno-"))
        .map(str::to_owned)
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
    for port in &ports {
        let body = http_get(&format!("http://127.0.0.1:{port}/"));
        assert!(body.contains("Hello from procfile-only on Wharf"), "{body}");
    }

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
