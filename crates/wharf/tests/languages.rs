//! Runtimes the apps ask for, installed by the built-in buildpacks' runtime steps through real
//! build containers: a Python the stack lacks, from the server's Python mirror (a CPython built
//! once from Debian's source by `buildpacks/test/python-mirror.sh`, served from a network
//! namespace standing in for the mirror's host), cached for the next build; the Node.js
//! `engines.node` names, from the npm registry. Dynos run what the build chose.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::fixture_apps::{push_fixture, push_fixture_with, run_in_dyno, wait_for_page};
use support::{Server, User};

/// How long a page of a freshly deployed app may take to answer.
const DEADLINE: Duration = Duration::from_secs(120);
/// Where the mirror listens in its namespace.
const MIRROR_PORT: u16 = 8080;

/// The mirror's directory, built on first use (minutes, once per machine).
fn python_mirror() -> String {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../buildpacks/test/python-mirror.sh");
    let output = Command::new(script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "python-mirror.sh failed");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout.lines().last().unwrap().trim().to_owned()
}

/// The version `python-mirror.sh` builds, read from its list.
fn mirror_version(dir: &str) -> String {
    let list: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(dir).join("download-metadata.json")).unwrap(),
    )
    .unwrap();
    let entry = list.as_object().unwrap().values().next().unwrap();
    format!("{}.{}.{}", entry["major"], entry["minor"], entry["patch"])
}

/// An HTTP server that stops with the test.
struct Mirror(std::process::Child);

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_python_the_stack_lacks_comes_from_the_mirror_once() {
    let dir = python_mirror();
    let version = mirror_version(&dir);
    let net = wharf_outbound::test_net::TestNet::create().unwrap();
    let _mirror = Mirror(
        net.command("python3")
            .args(["-I", "-m", "http.server", "--bind", &net.peer.to_string()])
            .args(["--directory", &dir, &MIRROR_PORT.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let until = Instant::now() + DEADLINE;
    while std::net::TcpStream::connect((net.peer, MIRROR_PORT)).is_err() {
        assert!(Instant::now() < until, "the mirror did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A runtime cache of this test's own, so that the install path runs every time.
    let data = tempfile::tempdir().unwrap();
    let runtimes = data.path().join("runtimes");
    let mirror_url = format!("http://{}:{MIRROR_PORT}", net.peer);
    let allow = format!("{}/32:{MIRROR_PORT}", net.peer);
    let server = Server::start_with(
        &data.path().join("wharf"),
        &[
            ("WHARF_PYTHON_MIRROR", &mirror_url),
            ("WHARF_DYNO_ALLOW", &allow),
            ("WHARF_RUNTIMES_DIR", runtimes.to_str().unwrap()),
        ],
    );
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["create", "newer-python"]).ok();
    let minor = version.rsplit_once('.').unwrap().0;
    let files = [(".python-version", minor)];

    let first = push_fixture_with(&server, &key, "newer-python", "python-flask", &files);
    assert!(
        first.contains(&format!(
            "Resolved .python-version \"{minor}\" to {version}"
        )),
        "{first}"
    );
    assert!(first.contains("from the server's Python mirror"), "{first}");
    wait_for_page(
        &server,
        "newer-python",
        "/",
        "Hello from python-flask",
        DEADLINE,
    );
    let seen = run_in_dyno(
        &server,
        &user,
        "newer-python",
        "python --version; command -v python",
    )
    .ok();
    assert!(seen.contains(&format!("Python {version}")), "{seen}");
    assert!(seen.contains("/app/.heroku/python/bin/python"), "{seen}");
    // The unit is in the stack's cache, complete, and nothing half-installed is left.
    let unit = runtimes.join("debian-12/python").join(&version);
    assert!(unit.join("bin/python3").is_file(), "{}", unit.display());
    let leftovers: Vec<_> = std::fs::read_dir(runtimes.join("debian-12/python"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A second app on the server builds from the cache.
    user.run(&["create", "newer-python-2"]).ok();
    let second = push_fixture_with(&server, &key, "newer-python-2", "python-flask", &files);
    assert!(
        second.contains(&format!("Using cached Python {version}")),
        "{second}"
    );
    assert!(
        !second.contains("from the server's Python mirror"),
        "{second}"
    );
}

#[test]
fn node_comes_in_the_version_engines_names() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["create", "engines-node"]).ok();
    let output = push_fixture(&server, &key, "engines-node", "nodejs-express-less");
    // `Resolved engines.node ">=18" to X (the newest matching)`
    let resolved = output
        .lines()
        .find_map(|line| line.split_once("Resolved engines.node \">=18\" to "))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no resolution in the build output:\n{output}"));
    let stack = Command::new("/usr/bin/node")
        .arg("--version")
        .output()
        .unwrap();
    let stack = String::from_utf8(stack.stdout).unwrap();
    let seen = run_in_dyno(
        &server,
        &user,
        "engines-node",
        "node --version; command -v node",
    )
    .ok();
    assert!(seen.contains(&format!("v{resolved}\n")), "{seen}");
    assert!(seen.contains("/app/.heroku/node/bin/node"), "{seen}");
    assert_ne!(
        stack.trim(),
        format!("v{resolved}"),
        "the stack's Node.js was not asked for"
    );
    wait_for_page(
        &server,
        "engines-node",
        "/",
        "nodejs-express-less",
        DEADLINE,
    );
}
