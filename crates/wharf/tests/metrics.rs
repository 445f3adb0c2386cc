//! End to end: the metrics history of a real app. Requests through the router show up per
//! status class, the web dyno's memory is sampled, a config change and a scale are events,
//! `wharf metrics` prints them, and all of it survives a restart of the server.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fixture_apps::{get, push_fixture_with, wait_for_page};
use support::{http_json, wait_for, Server, User, DEADLINE};

/// The fixture's web process, answering `/status/NNN` with that status.
const STATUS_SERVER: &str = r#""""Answers GET /status/NNN with status NNN and anything else with 200."""

import http.server
import os


class Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path[len("/status/"):])
        body = b"status %d\n" % status
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Status).serve_forever()
"#;

const APP: &str = "metered";
/// Samples every second, so that the test sees them at once.
const SETTINGS: &[(&str, &str)] = &[("WHARF_METRICS_INTERVAL", "1")];

fn metrics(server: &Server, key: &str, what: &str) -> Value {
    let (status, body) = http_json(
        &server.url,
        "GET",
        &format!("/apps/{APP}/metrics/{what}?range=1h"),
        key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// Requests per status class over the router answer's points: [2xx, 3xx, 4xx, 5xx].
fn classes(router: &Value) -> [u64; 4] {
    let points = router["points"].as_array().unwrap();
    ["status_2xx", "status_3xx", "status_4xx", "status_5xx"].map(|field| {
        points
            .iter()
            .map(|point| point[field].as_u64().unwrap())
            .sum()
    })
}

/// Polls `what` until `done` holds; returns that answer.
fn poll(server: &Server, key: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = metrics(server, key, what);
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "metrics/{what} never got there: {answer:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn event_kinds(events: &Value) -> BTreeSet<String> {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The web dyno's points' times.
fn web_points(dynos: &Value) -> Vec<String> {
    dynos["dynos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|dyno| dyno["dyno"] == "web.1")
        .flat_map(|dyno| dyno["points"].as_array().unwrap().clone())
        .map(|point| point["at"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_apps_requests_dynos_and_events_are_kept_and_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), SETTINGS);
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", APP]).ok();
    push_fixture_with(
        &server,
        &key,
        APP,
        "procfile-only",
        &[("server.py", STATUS_SERVER)],
    );
    wait_for_page(&server, APP, "/", "status 200", DEADLINE);

    // What reached the app so far (the page above), then a known mix on top.
    let before = classes(&poll(&server, &key, "router", |r| classes(r)[0] > 0));
    let mix = [(200, 5), (302, 3), (404, 2), (500, 4)];
    for (status, times) in mix {
        for _ in 0..times {
            let answer = get(&server, APP, &format!("/status/{status}"));
            assert_eq!(answer.map(|(s, _)| s), Some(status));
        }
    }
    let expected = [before[0] + 5, before[1] + 3, before[2] + 2, before[3] + 4];
    let router = poll(&server, &key, "router", |r| classes(r) == expected);
    assert_eq!(
        router["totals"]["requests"].as_u64().unwrap(),
        expected.iter().sum::<u64>()
    );
    assert!(
        router["totals"]["p50_ms"].as_f64().unwrap() > 0.0,
        "{router:#}"
    );
    assert_eq!(router["errors"], serde_json::json!({}), "{router:#}");

    // The web dyno's memory, sampled every second.
    let dynos = poll(&server, &key, "dynos", |d| !web_points(d).is_empty());
    let web = dynos["dynos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|dyno| dyno["dyno"] == "web.1")
        .unwrap()
        .clone();
    assert_eq!(web["type"], "web");
    let point = &web["points"][0];
    assert!(point["memory_rss_mb"].as_f64().unwrap() > 0.0, "{web:#}");
    assert!(point["memory_quota_mb"].as_f64().unwrap() > 0.0, "{web:#}");
    assert!(point["load_avg_1m"].as_f64().is_some(), "{web:#}");

    // A config change and a scale are events, beside the deploy.
    user.run(&["config:set", "FOO=bar", "-a", APP]).ok();
    user.run(&["ps:scale", "web=2", "-a", APP]).ok();
    let events = poll(&server, &key, "events", |e| {
        ["deploy", "config", "scale"]
            .iter()
            .all(|kind| event_kinds(e).contains(*kind))
    });
    let messages: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Set FOO config vars by ")),
        "{events:#}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("Scaled to web@2:")),
        "{events:#}"
    );
    wait_for(&server, &key, APP, &["web.1", "web.2"], 3);

    // The CLI: all three answers as one JSON object, and as tables.
    let printed: Value =
        serde_json::from_str(&user.run(&["metrics", "-a", APP, "--json"]).ok()).unwrap();
    assert_eq!(classes(&printed["router"]), expected);
    assert!(!web_points(&printed["dynos"]).is_empty());
    assert!(event_kinds(&printed["events"]).contains("scale"));
    let text = user.run(&["metrics", "-a", APP, "--range", "24h"]).ok();
    for needle in [
        "Router, last 24h",
        "p95",
        "Dynos, last 24h",
        "web.1",
        "Events",
        "scale",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    let refused = user.run(&["metrics", "-a", APP, "--range", "2h"]).failed();
    assert!(refused.contains("1h"), "{refused}");

    // A restart on the same data dir: the history is still there.
    let first_sample = web_points(&metrics(&server, &key, "dynos"))[0].clone();
    let total = expected.iter().sum::<u64>();
    server.terminate(Duration::from_secs(60));
    let server = Server::start_with(data.path(), SETTINGS);
    let router = metrics(&server, &key, "router");
    assert_eq!(classes(&router), expected, "{router:#}");
    assert_eq!(router["totals"]["requests"].as_u64().unwrap(), total);
    let dynos = metrics(&server, &key, "dynos");
    assert_eq!(web_points(&dynos).first(), Some(&first_sample), "{dynos:#}");
    let events = metrics(&server, &key, "events");
    for kind in ["deploy", "config", "scale"] {
        assert!(event_kinds(&events).contains(kind), "{kind}: {events:#}");
    }
}
