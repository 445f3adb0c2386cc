//! End to end for the log router: a deployed app's output, its state changes, a router line
//! and an `app[api]` line in `wharf logs -t`, in order; filters; resuming a log session by
//! `Last-Event-ID`; lines, drains and features surviving a restart; syslog drains added and
//! removed with the CLI (at most five), their receiver in a network namespace the test makes
//! and the operator's `WHARF_OUTBOUND_ALLOW` opens, while drains to this server are refused;
//! runtime metrics with `labs:enable`.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use support::{
    deploy_procfile_app, http_json, http_request, wait_for, wharf_binary, Server, User, DEADLINE,
};
use wharf_outbound::test_net::TestNet;

/// `wharf logs ARGS` with the admin's key, as a child whose lines arrive on a channel.
fn tail(
    server: &Server,
    key: &str,
    args: &[&str],
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(wharf_binary())
        .arg("logs")
        .args(args)
        .env("WHARF_API_URL", &server.url)
        .env("WHARF_API_KEY", key)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

/// Reads lines until every needle has been seen in a line (in this order); returns them all.
fn read_until(lines: &mpsc::Receiver<String>, needles: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let mut next = 0;
    while next < needles.len() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(remaining)
            .unwrap_or_else(|_| panic!("no line with {:?} in time; saw {seen:#?}", needles[next]));
        if line.contains(needles[next]) {
            next += 1;
        }
        seen.push(line);
    }
    seen
}

/// The timestamp at the start of a log line.
fn time_of(line: &str) -> String {
    line.split(' ').next().unwrap().to_owned()
}

#[test]
fn an_apps_lines_reach_the_tail_in_order_and_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "logged"]).ok();

    let (mut follower, lines) = tail(&server, &key, &["-t", "-a", "logged"]);
    let _repo = deploy_procfile_app(&server, &key, "logged");
    wait_for(&server, &key, "logged", &["web.1"], 2);
    let response = http_request(&server.router_authority(), "logged.localhost", "/hello");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    user.run(&["config:set", "-a", "logged", "GREETING=hi"])
        .ok();
    let seen = read_until(
        &lines,
        &[
            "heroku[web.1]: Starting process with command `python3 server.py`",
            "app[web.1]: listening on",
            "heroku[web.1]: State changed from starting to up",
            "heroku[router]: at=info method=GET path=\"/hello\" host=logged.localhost",
            "app[api]: Set GREETING config vars by admin@localhost",
        ],
    );
    let times: Vec<String> = seen.iter().map(|l| time_of(l)).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "lines out of order: {seen:#?}");
    follower.kill().unwrap();
    follower.wait().unwrap();

    // Filters: a process type, and a source.
    let web = user
        .run(&["logs", "-a", "logged", "-n", "1500", "-d", "web"])
        .ok();
    assert!(web.lines().all(|l| l.contains("[web.1]: ")), "{web}");
    assert!(web.contains("app[web.1]: listening on"), "{web}");
    let heroku = user
        .run(&["logs", "-a", "logged", "-n", "1500", "-s", "heroku"])
        .ok();
    assert!(heroku.lines().all(|l| l.contains(" heroku[")), "{heroku}");
    assert!(heroku.contains("heroku[router]: "), "{heroku}");
    let router = user
        .run(&["logs", "-a", "logged", "-n", "1500", "-d", "router"])
        .ok();
    assert!(
        !router.is_empty() && router.lines().all(|l| l.contains("heroku[router]: ")),
        "{router}"
    );
    let last_two = user.run(&["logs", "-a", "logged", "-n", "2"]).ok();
    assert_eq!(last_two.lines().count(), 2, "{last_two}");

    // Every line as the API had it before a restart is still there after it, numbered alike.
    let before = session_events(&server, &key, "logged", None);
    assert!(before.len() > 5, "{before:#?}");
    drop(server);
    let server = Server::start(data.path());
    let after = session_events(&server, &key, "logged", None);
    assert!(after.len() >= before.len(), "{after:#?}");
    assert_eq!(&after[..before.len()], &before[..]);
}

/// A log session's events as (id, line), read over a raw connection until it ends; with
/// `resume`, sent as `Last-Event-ID`.
fn session_events(
    server: &Server,
    key: &str,
    app: &str,
    resume: Option<&str>,
) -> Vec<(String, String)> {
    let (status, session) = http_json(
        &server.url,
        "POST",
        &format!("/apps/{app}/log-sessions"),
        key,
        &serde_json::json!({"lines": 1500}),
    );
    assert_eq!(status, 201, "{session}");
    let url = session["logplex_url"].as_str().unwrap();
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = TcpStream::connect(authority).unwrap();
    let resume = resume.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\n{resume}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let mut events = Vec::new();
    let mut id = String::new();
    for line in body.lines() {
        if let Some(value) = line.strip_prefix("id: ") {
            id = value.to_owned();
        } else if let Some(value) = line.strip_prefix("data: ") {
            events.push((id.clone(), value.to_owned()));
        }
    }
    events
}

#[test]
fn resuming_a_session_gives_exactly_the_lines_after_the_last_id() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "resumed"]).ok();
    for n in 0..12 {
        user.run(&["config:set", "-a", "resumed", &format!("N{n}=1")])
            .ok();
    }
    let all = session_events(&server, &key, "resumed", None);
    let ids: Vec<u64> = all.iter().map(|(id, _)| id.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids: {ids:?}");
    for cut in [0, 5, all.len() - 1] {
        let resumed = session_events(&server, &key, "resumed", Some(&all[cut].0));
        assert_eq!(resumed, all[cut + 1..], "after {}", all[cut].0);
    }
}

/// A syslog receiver on a free port of the namespace's address: the messages of the frames
/// it gets.
fn syslog_receiver(net: &TestNet) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener: TcpListener = net.listen(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(mut connection) = connection else {
                return;
            };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut data = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                while let Ok(n) = connection.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&chunk[..n]);
                    while let Some(space) = data.iter().position(|&b| b == b' ') {
                        let length: usize = std::str::from_utf8(&data[..space])
                            .unwrap()
                            .parse()
                            .unwrap();
                        if data.len() < space + 1 + length {
                            break;
                        }
                        let message =
                            String::from_utf8(data[space + 1..space + 1 + length].to_vec())
                                .unwrap();
                        sink.lock().unwrap().push(message);
                        data.drain(..space + 1 + length);
                    }
                }
            });
        }
    });
    (port, received)
}

fn wait_for_message(received: &Arc<Mutex<Vec<String>>>, needle: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if received.lock().unwrap().iter().any(|m| m.contains(needle)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no drained line with {needle:?}; got {:#?}",
            received.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn drains_and_runtime_metrics_with_the_cli() {
    let data = tempfile::tempdir().unwrap();
    // The receiver's one address is open to drains, as an operator opens a log collector's.
    let net = TestNet::create().unwrap();
    let allow = net.peer.to_string();
    let settings = [
        ("WHARF_METRICS_INTERVAL", "1"),
        ("WHARF_OUTBOUND_ALLOW", allow.as_str()),
    ];
    let server = Server::start_with(data.path(), &settings);
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "drained"]).ok();
    let (port, received) = syslog_receiver(&net);
    let url = format!("syslog://{}:{port}", net.peer);
    let added = user.run(&["drains:add", &url, "-a", "drained"]).ok();
    assert!(
        added.contains(&format!("Successfully added drain {url}")),
        "{added}"
    );
    let listed = user.run(&["drains", "-a", "drained"]).ok();
    let token = listed
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{url} (")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{listed}"))
        .to_owned();
    assert!(token.starts_with("d."), "{token}");

    user.run(&["config:set", "-a", "drained", "A=1"]).ok();
    wait_for_message(&received, &format!("{token} app api - - Set A config vars"));

    // Never this server, whatever the operator opened.
    let api_port = server.url.rsplit(':').next().unwrap().to_owned();
    let own = user
        .run(&[
            "drains:add",
            &format!("syslog://localhost:{api_port}"),
            "-a",
            "drained",
        ])
        .failed();
    assert!(
        own.contains("drain host \"localhost\" resolves to ")
            && own.contains(
                "a loopback address of this server: drains must point at hosts outside this server"
            ),
        "{own}"
    );

    // Five at most.
    for n in 1..5 {
        user.run(&[
            "drains:add",
            &format!("syslog://{}:{}", net.peer, 9 + n),
            "-a",
            "drained",
        ])
        .ok();
    }
    let sixth = user
        .run(&[
            "drains:add",
            &format!("syslog://{}:20", net.peer),
            "-a",
            "drained",
        ])
        .failed();
    assert!(sixth.contains("the most it may have"), "{sixth}");
    let bad = user
        .run(&["drains:add", "ftp://example.com:21", "-a", "drained"])
        .failed();
    assert!(bad.contains("syslog://"), "{bad}");
    for n in 1..5 {
        user.run(&[
            "drains:remove",
            &format!("syslog://{}:{}", net.peer, 9 + n),
            "-a",
            "drained",
        ])
        .ok();
    }

    // Runtime metrics: off until the app turns them on.
    let labs = user.run(&["labs", "-a", "drained"]).ok();
    assert!(
        labs.contains("[ ]") && labs.contains("log-runtime-metrics"),
        "{labs}"
    );
    user.run(&["labs:enable", "log-runtime-metrics", "-a", "drained"])
        .ok();
    let labs = user.run(&["labs", "-a", "drained"]).ok();
    assert!(labs.contains("[+]"), "{labs}");
    let _repo = deploy_procfile_app(&server, &key, "drained");
    wait_for(&server, &key, "drained", &["web.1"], 3);
    wait_for_message(&received, "heroku web.1 - - source=web.1 dyno=heroku.");
    let (status, samples) = http_json(
        &server.url,
        "GET",
        "/apps/drained/dynos/web.1/metrics",
        &key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{samples}");
    let first = &samples.as_array().unwrap()[0];
    assert!(
        first["memory_total_mb"].as_f64().unwrap() > 0.0,
        "{samples}"
    );
    assert!(
        first["memory_quota_mb"].as_f64().unwrap() > 0.0,
        "{samples}"
    );

    // The drain and the feature survive a restart.
    drop(server);
    received.lock().unwrap().clear();
    let server = Server::start_with(data.path(), &settings);
    let user = User::new(&server.url, Some(&key));
    user.run(&["config:set", "-a", "drained", "B=2"]).ok();
    wait_for_message(&received, &format!("{token} app api - - Set B config vars"));
    wait_for(&server, &key, "drained", &["web.1"], 4);
    wait_for_message(&received, "sample#memory_rss=");
    let removed = user.run(&["drains:remove", &token, "-a", "drained"]).ok();
    assert!(
        removed.contains(&format!("Successfully removed drain {url}")),
        "{removed}"
    );
    let listed = user.run(&["drains", "-a", "drained"]).ok();
    assert!(listed.contains("has no drains"), "{listed}");
}

#[test]
fn a_bad_outbound_allow_list_stops_the_server_at_start_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    for (setting, expected) in [
        (
            "10.0.0.0/33",
            "wharf: WHARF_OUTBOUND_ALLOW: \"10.0.0.0/33\" is not a CIDR: an IPv4 prefix is at most /32, not /33",
        ),
        (
            "10.0.0.0/8,127.0.0.1:514",
            "wharf: WHARF_OUTBOUND_ALLOW: \"127.0.0.1:514\" is a loopback address of this server, which tenants' URLs may never reach",
        ),
    ] {
        let output = Command::new(wharf_binary())
            .arg("server")
            .env("WHARF_DATA_DIR", data.path())
            .env("WHARF_OUTBOUND_ALLOW", setting)
            .env("WHARF_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{setting}: {stderr}");
        assert!(stderr.starts_with(expected), "{setting}: {stderr}");
    }
}
