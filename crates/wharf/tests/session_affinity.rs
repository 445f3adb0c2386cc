//! End to end: `wharf features:enable http-session-affinity` on an app scaled to `web=2` whose
//! dynos keep polling sessions in memory (as socket.io's polling transport does). With the
//! feature on, a client that keeps its cookie reaches the same dyno every time (every poll
//! finds its session); without the cookie requests spread over both dynos; with the feature
//! off no cookie is set. Restarting the pinned dyno fails no request: its client is served by
//! the other dyno and pinned to it anew.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{dynos, git, Server, User, DEADLINE};

/// A web process that says which dyno it is and keeps polling sessions in its memory:
/// `/handshake` makes one, `/poll?sid=...` answers 400 `Session ID unknown` for a session it
/// does not hold (socket.io's answer on a dyno the handshake did not reach). It waits two
/// seconds before it listens, so that a restarted dyno is down for a while.
const SERVER_PY: &str = r#"
import http.server, os, time, uuid, urllib.parse

SESSIONS = set()
DYNO = os.environ["DYNO"]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        status, body = 200, DYNO
        if url.path == "/handshake":
            sid = uuid.uuid4().hex
            SESSIONS.add(sid)
            body = DYNO + " " + sid
        elif url.path == "/poll":
            if query.get("sid", [""])[0] not in SESSIONS:
                status, body = 400, DYNO + " Session ID unknown"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

time.sleep(2)
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const APP: &str = "sticky";

struct Reply {
    status: u16,
    /// The `heroku-session-affinity=...` pair of a `Set-Cookie`, and the whole header.
    set_cookie: Option<(String, String)>,
    body: String,
}

/// A GET through the router, with `cookie` as the `Cookie` header.
fn get(server: &Server, path: &str, cookie: Option<&str>) -> Reply {
    let mut stream = std::net::TcpStream::connect(server.router_authority()).unwrap();
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {APP}.localhost\r\n{cookie}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let set_cookie = lines
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value)
        .find(|value| value.starts_with("heroku-session-affinity="))
        .map(|value| {
            (
                value.split(';').next().unwrap().to_owned(),
                value.to_owned(),
            )
        });
    Reply {
        status,
        set_cookie,
        body: body.to_owned(),
    }
}

/// The dyno that answered (the first word of every body).
fn dyno(reply: &Reply) -> String {
    reply.body.split(' ').next().unwrap().to_owned()
}

/// The names of the app's `up` web dynos.
fn up(server: &Server, key: &str) -> Vec<String> {
    dynos(server, key, APP)
        .into_iter()
        .filter(|(name, state, _)| name.starts_with("web.") && state == "up")
        .map(|(name, _, _)| name)
        .collect()
}

fn wait_for_up(server: &Server, key: &str, count: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = up(server, key);
        if now.len() == count {
            return;
        }
        assert!(Instant::now() < deadline, "{count} web dynos up? {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn push(server: &Server, key: &str, dir: &Path) {
    std::fs::write(dir.join("Procfile"), "web: python3 server.py\n").unwrap();
    std::fs::write(dir.join("server.py"), SERVER_PY).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "-m", "app"]);
    let authority = server.url.strip_prefix("http://").unwrap();
    let remote = format!("http://git:{key}@{authority}/{APP}.git");
    git(dir, &["push", "--quiet", &remote, "main"]);
}

/// The line of `wharf features` about session affinity.
fn feature_line(features: &str) -> &str {
    features
        .lines()
        .find(|line| line.contains("http-session-affinity"))
        .unwrap_or_else(|| panic!("not listed: {features}"))
}

/// How many of `n` GETs of `path` with `cookie` each dyno answered.
fn spread(server: &Server, path: &str, cookie: Option<&str>, n: usize) -> BTreeMap<String, usize> {
    let mut served = BTreeMap::new();
    for _ in 0..n {
        let reply = get(server, path, cookie);
        assert_eq!(reply.status, 200, "{}", reply.body);
        *served.entry(dyno(&reply)).or_default() += 1;
    }
    served
}

#[test]
fn session_affinity_keeps_a_client_on_its_dyno() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", APP]).ok();
    let repo = tempfile::tempdir().unwrap();
    push(&server, &key, repo.path());
    user.run(&["ps:scale", "web=2", "-a", APP]).ok();
    wait_for_up(&server, &key, 2);

    // Off by default, as on Heroku: no cookie, and a session's polls fail on the other dyno.
    let features = user.run(&["features", "-a", APP]).ok();
    assert!(feature_line(&features).starts_with("[ ]"), "{features}");
    let served = spread(&server, "/", None, 40);
    assert_eq!(served.len(), 2, "{served:?}");
    let reply = get(&server, "/", None);
    assert!(reply.set_cookie.is_none(), "{:?}", reply.set_cookie);

    let enabled = user
        .run(&["features:enable", "http-session-affinity", "-a", APP])
        .ok();
    assert!(enabled.contains("http-session-affinity"), "{enabled}");
    let features = user.run(&["features", "-a", APP]).ok();
    assert!(feature_line(&features).starts_with("[+]"), "{features}");

    // The router learns it without a restart: a cookie comes with the next responses.
    let deadline = Instant::now() + DEADLINE;
    let (handshake, cookie) = loop {
        let reply = get(&server, "/handshake", None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        if let Some((cookie, whole)) = reply.set_cookie.clone() {
            assert_eq!(
                whole.strip_prefix(cookie.as_str()),
                Some("; Path=/; HttpOnly"),
                "{whole}"
            );
            break (reply, cookie);
        }
        assert!(Instant::now() < deadline, "never set a cookie");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (pinned, sid) = handshake.body.split_once(' ').unwrap();
    let pinned = pinned.to_owned();
    for _ in 0..20 {
        let reply = get(&server, &format!("/poll?sid={sid}"), Some(&cookie));
        assert_eq!(
            (reply.status, dyno(&reply)),
            (200, pinned.clone()),
            "{}",
            reply.body
        );
        assert!(reply.set_cookie.is_none(), "already pinned");
    }
    // Without the cookie jar, requests still spread over both dynos.
    let served = spread(&server, "/", None, 40);
    assert_eq!(served.len(), 2, "{served:?}");
    // A forged cookie is replaced, and pins nothing.
    let forged = format!("heroku-session-affinity={}", "A".repeat(43));
    let reply = get(&server, "/", Some(&forged));
    assert_eq!(reply.status, 200);
    assert!(reply.set_cookie.is_some_and(|(c, _)| c != forged));

    // The pinned dyno restarts: its client is served by the other one (no error) and pinned
    // there from then on, also once the restarted dyno is back.
    user.run(&["ps:restart", &pinned, "-a", APP]).ok();
    let reply = get(&server, "/", Some(&cookie));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let other = dyno(&reply);
    assert_ne!(other, pinned);
    let (cookie, _) = reply.set_cookie.expect("pinned anew");
    wait_for_up(&server, &key, 2);
    let served = spread(&server, "/", Some(&cookie), 20);
    assert_eq!(served, BTreeMap::from([(other, 20)]));

    // Off again: no cookie.
    user.run(&["features:disable", "http-session-affinity", "-a", APP])
        .ok();
    let deadline = Instant::now() + DEADLINE;
    while get(&server, "/", None).set_cookie.is_some() {
        assert!(Instant::now() < deadline, "still sets cookies");
        std::thread::sleep(Duration::from_millis(20));
    }
    let served = spread(&server, "/", Some(&cookie), 40);
    assert_eq!(served.len(), 2, "the cookie pins nothing now: {served:?}");
    drop(repo);
}
