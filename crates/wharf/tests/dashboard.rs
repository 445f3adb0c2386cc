//! The dashboard in a real browser: Debian's Chromium, driven by Playwright
//! (`tests/browser/dashboard.test.mjs`, `playwright-core` pinned by its lock file, no browser
//! download), against the real `wharf server` with a real app and its dynos. The browser side
//! checks every page it drives against the API; screenshots of the main pages are kept in
//! `target/test-artefacts/dashboard/`.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support::fixture_apps::push_fixture_with;
use support::{http_json, wait_for, Server};

/// Where Debian puts its Chromium (`apt-get install chromium`; `scripts/test` installs it).
const CHROMIUM: &str = "/usr/bin/chromium";

/// A web process that writes each request's path, decoded, to its log: a tenant's log line
/// that holds markup, quotes and an ANSI escape.
const SERVER_PY: &str = r#"
import http.server, os, sys, urllib.parse

class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = urllib.parse.unquote(self.path)
        print(f"request {path} \"quoted\" \x1b[31mred\x1b[0m", flush=True)
        body = b"hello from the dashboard test app\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Echo).serve_forever()
"#;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `npm ci` when `node_modules` is missing or older than the lock file.
fn install_playwright() {
    let dir = browser_dir();
    let installed = dir.join("node_modules/playwright-core/package.json");
    let stale = match (
        std::fs::metadata(&installed).and_then(|m| m.modified()),
        std::fs::metadata(dir.join("package-lock.json")).and_then(|m| m.modified()),
    ) {
        (Ok(installed), Ok(lock)) => installed < lock,
        _ => true,
    };
    if stale {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("run npm (scripts/deps.sh installs it)");
        assert!(status.success(), "npm ci in {}", dir.display());
    }
}

fn create_user(server: &Server, admin: &str, email: &str) -> String {
    let (status, body) = http_json(
        &server.url,
        "POST",
        "/users",
        admin,
        &json!({"email": email}),
    );
    assert_eq!(status, 201, "{body}");
    body["api_key"].as_str().unwrap().to_owned()
}

#[test]
fn the_dashboard_works_in_chromium_against_a_real_server() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    );
    install_playwright();
    let data = tempfile::tempdir().unwrap();
    // Samples every second, so the metrics page has points within the test.
    let server = Server::start_with(data.path(), &[("WHARF_METRICS_INTERVAL", "1")]);
    let admin = server.admin_key();
    let owner = create_user(&server, &admin, "owner@example.com");
    let other = create_user(&server, &admin, "other@example.com");
    let (status, body) = http_json(
        &server.url,
        "POST",
        "/apps",
        &owner,
        &json!({"name": "dash"}),
    );
    assert_eq!(status, 201, "{body}");
    push_fixture_with(
        &server,
        &owner,
        "dash",
        "procfile-only",
        &[("server.py", SERVER_PY)],
    );
    wait_for(&server, &owner, "dash", &["web.1"], 2);

    let router = server.router_authority();
    let port = router.rsplit_once(':').unwrap().1;
    let screenshots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artefacts/dashboard");
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).unwrap();
    let output = Command::new("node")
        .arg("dashboard.test.mjs")
        .current_dir(browser_dir())
        .env("WHARF_URL", &server.url)
        .env("WHARF_EMAIL", "owner@example.com")
        .env("WHARF_API_KEY", &owner)
        .env("WHARF_APP", "dash")
        .env("WHARF_APP_URL", format!("http://dash.localhost:{port}"))
        .env("WHARF_ROUTER_ADDRESS", &router)
        .env("WHARF_APP_HOST", "dash.localhost")
        .env("WHARF_OTHER_EMAIL", "other@example.com")
        .env("WHARF_OTHER_API_KEY", &other)
        .env("WHARF_ADMIN_EMAIL", "admin@localhost")
        .env("WHARF_ADMIN_API_KEY", &admin)
        .env("SCREENSHOT_DIR", &screenshots)
        .env("CHROMIUM", CHROMIUM)
        .output()
        .expect("run node (scripts/deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The main pages, each a real picture.
    let shots: Vec<_> = std::fs::read_dir(&screenshots)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "png"))
        .filter(|path| std::fs::metadata(path).is_ok_and(|m| m.len() > 1000))
        .collect();
    assert!(shots.len() >= 8, "screenshots: {shots:?}");
}
