//! End to end through the router: an Eco app sleeps when it gets no traffic and the next
//! request wakes it and is served; deploys and scaling down while requests flow drop none;
//! custom domains route to their app, over HTTPS with their own certificates by SNI.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{
    deploy_procfile_app, dynos, http_json, http_request, http_request_until, runtime_containers,
    wait_for, Server, User, DEADLINE,
};

/// The app's log (the last 1,500 lines), as `wharf logs` prints it.
fn log(server: &Server, key: &str, app: &str) -> String {
    User::new(&server.url, Some(key))
        .run(&["logs", "-n", "1500", "-a", app])
        .ok()
}

#[test]
fn an_idle_eco_app_wakes_on_a_request() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &[("WHARF_ECO_SLEEP_AFTER", "2")]);
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    for app in ["sleepy", "awake"] {
        user.run(&["apps:create", app]).ok();
        let _repo = deploy_procfile_app(&server, &key, app);
    }
    let (status, body) = http_json(
        &server.url,
        "PATCH",
        "/apps/sleepy/formation/web",
        &key,
        &serde_json::json!({"size": "eco"}),
    );
    assert_eq!(status, 200, "{body}");

    // Two seconds without a request: the Eco app's dyno goes idle and its container goes.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = dynos(&server, &key, "sleepy");
        if now.len() == 1 && now[0].1 == "idle" {
            break;
        }
        assert!(Instant::now() < deadline, "never idled: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + DEADLINE;
    while runtime_containers(data.path()).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the idle dyno's container stays: {:?}",
            runtime_containers(data.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The Basic app never sleeps.
    wait_for(&server, &key, "awake", &["web.1"], 2);

    // The next request wakes it: held, then served.
    let started = Instant::now();
    let response = http_request(&server.router_authority(), "sleepy.localhost", "/wake");
    let waited = started.elapsed();
    assert!(
        response.lines().next().unwrap().ends_with(" 200 OK"),
        "{response}"
    );
    assert!(response.contains("Hello from procfile-only on Wharf"));
    eprintln!("woke and served in {waited:?}");
    wait_for(&server, &key, "sleepy", &["web.1"], 2);

    let log = log(&server, &key, "sleepy");
    let web: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("heroku[web.1]: ").map(|(_, m)| m))
        .collect();
    // The first time it slept (it may sleep again before the log is read).
    let idling = web.iter().position(|m| *m == "Idling").expect(&log);
    let expected = [
        "Idling",
        "State changed from up to idle",
        "Unidling",
        "State changed from idle to starting",
    ];
    let order: Vec<usize> = expected
        .iter()
        .map(|m| {
            let at = web[idling..].iter().position(|l| l == m);
            idling + at.unwrap_or_else(|| panic!("no {m:?} after Idling: {log}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{log}");
    assert!(
        web[idling..].contains(&"State changed from starting to up"),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("heroku[router]: at=info")
            && l.contains("path=\"/wake\"")
            && l.contains("status=200")),
        "{log}"
    );
}

/// Sends GETs over one keep-alive connection until `stop`; returns (ok, failed responses).
fn keep_requesting(router: String, stop: Arc<AtomicBool>) -> (u32, Vec<String>) {
    let (mut ok, mut failed) = (0, Vec::new());
    let connect = || {
        let stream = TcpStream::connect(&router).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        BufReader::new(stream)
    };
    let mut conn = connect();
    while !stop.load(Ordering::Relaxed) {
        let sent = write!(
            conn.get_mut(),
            "GET /load HTTP/1.1\r\nHost: steady.localhost\r\n\r\n"
        );
        let mut status = String::new();
        if sent.is_err() || conn.read_line(&mut status).unwrap_or(0) == 0 {
            failed.push(format!("connection closed: {sent:?}"));
            conn = connect();
            continue;
        }
        let mut length = 0;
        let mut close = false;
        loop {
            let mut header = String::new();
            conn.read_line(&mut header).unwrap();
            let header = header.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            close |= header == "connection: close";
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body).unwrap();
        if status.contains(" 200 ") {
            ok += 1;
        } else {
            failed.push(format!(
                "{} {}",
                status.trim(),
                String::from_utf8_lossy(&body)
            ));
        }
        if close {
            conn = connect();
        }
    }
    (ok, failed)
}

#[test]
fn deploys_and_scaling_down_drop_no_request() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "steady"]).ok();
    let repo = deploy_procfile_app(&server, &key, "steady");
    user.run(&["ps:scale", "web=3", "-a", "steady"]).ok();
    wait_for(&server, &key, "steady", &["web.1", "web.2", "web.3"], 2);

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (router, stop) = (server.router_authority(), stop.clone());
            std::thread::spawn(move || keep_requesting(router, stop))
        })
        .collect();

    // Two deploys (a new release each: every dyno replaced, preboot), then a scale-down.
    user.run(&["config:set", "ROUND=1", "-a", "steady"]).ok();
    wait_for(&server, &key, "steady", &["web.1", "web.2", "web.3"], 3);
    std::fs::write(repo.path().join("CHANGES"), "second deploy\n").unwrap();
    support::git(repo.path(), &["add", "CHANGES"]);
    support::git(repo.path(), &["commit", "--quiet", "-m", "second"]);
    let authority = server.url.strip_prefix("http://").unwrap();
    support::git(
        repo.path(),
        &[
            "push",
            "--quiet",
            &format!("http://git:{key}@{authority}/steady.git"),
            "main",
        ],
    );
    wait_for(&server, &key, "steady", &["web.1", "web.2", "web.3"], 4);
    user.run(&["ps:scale", "web=1", "-a", "steady"]).ok();
    wait_for(&server, &key, "steady", &["web.1"], 4);
    // The old dynos are gone, not just out of the table.
    let deadline = Instant::now() + DEADLINE;
    while runtime_containers(data.path()).len() != 1 {
        assert!(Instant::now() < deadline, "old dynos still running");
        std::thread::sleep(Duration::from_millis(100));
    }

    stop.store(true, Ordering::Relaxed);
    let (mut total, mut failed) = (0, Vec::new());
    for client in clients {
        let (ok, failures) = client.join().unwrap();
        total += ok;
        failed.extend(failures);
    }
    if !failed.is_empty() {
        let log = log(&server, &key, "steady");
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("at=error") || l.contains("heroku[web"))
            .collect();
        panic!(
            "{} of {} requests failed, the first: {:?}\n{}",
            failed.len(),
            total as usize + failed.len(),
            failed.first(),
            errors.join("\n")
        );
    }
    assert!(total > 100, "only {total} requests were sent");
    eprintln!("{total} requests, none failed");
}

/// A GET over HTTPS to `authority`, asking for `server_name` by SNI and trusting only `root`
/// (PEM); the response as text, or the TLS error.
fn https_get(authority: &str, server_name: &str, root: &str) -> Result<String, rustls::Error> {
    let mut conn = support::tls_client(root, server_name);
    let mut tcp = TcpStream::connect(authority).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let request =
        format!("GET /secure HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n");
    if let Err(error) = tls.write_all(request.as_bytes()) {
        let inner = error.into_inner().unwrap();
        return Err(*inner.downcast::<rustls::Error>().unwrap());
    }
    let mut response = Vec::new();
    // The router closes without close_notify on some paths; what was read counts.
    let _ = tls.read_to_end(&mut response);
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn custom_domains_route_with_their_certificates() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "shop"]).ok();
    let _repo = deploy_procfile_app(&server, &key, "shop");
    wait_for(&server, &key, "shop", &["web.1"], 2);

    let certificate = rcgen::generate_simple_self_signed(vec!["www.shop.test".to_owned()]).unwrap();
    let (status, endpoint) = http_json(
        &server.url,
        "POST",
        "/apps/shop/sni-endpoints",
        &key,
        &serde_json::json!({
            "certificate_chain": certificate.cert.pem(),
            "private_key": certificate.signing_key.serialize_pem(),
        }),
    );
    assert_eq!(status, 201, "{endpoint}");
    for hostname in ["www.shop.test", "*.api.shop.test"] {
        let (status, body) = http_json(
            &server.url,
            "POST",
            "/apps/shop/domains",
            &key,
            &serde_json::json!({"hostname": hostname, "sni_endpoint": null}),
        );
        assert_eq!(status, 201, "{body}");
    }

    let router = server.router_authority();
    // The router reads each change moments after the API answered it.
    http_request_until(&router, "www.shop.test", "/", 200);
    let wildcard = http_request_until(&router, "v2.api.shop.test", "/", 200);
    assert!(
        wildcard.contains("Hello from procfile-only on Wharf"),
        "{wildcard}"
    );
    let too_deep = http_request(&router, "a.v2.api.shop.test", "/");
    assert!(
        too_deep.lines().next().unwrap().contains(" 404 "),
        "{too_deep}"
    );

    // HTTPS: the custom domain gets its own certificate, an app host the server's.
    let secure = server.router_tls_url.strip_prefix("https://").unwrap();
    let own = certificate.cert.pem();
    let deadline = Instant::now() + DEADLINE;
    let response = loop {
        match https_get(secure, "www.shop.test", &own) {
            Ok(response) => break response,
            Err(error) => assert!(Instant::now() < deadline, "never served: {error}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("Hello from procfile-only on Wharf"));
    let ca = std::fs::read_to_string(data.path().join("tls/ca.pem")).unwrap();
    let response = https_get(secure, "shop.localhost", &ca).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        https_get(secure, "shop.localhost", &own).is_err(),
        "an app host is not served the custom domain's certificate"
    );
    let log = log(&server, &key, "shop");
    assert!(
        log.lines().any(|l| l.contains("heroku[router]: at=info")
            && l.contains("host=www.shop.test")
            && l.contains("protocol=https")),
        "{log}"
    );
}
