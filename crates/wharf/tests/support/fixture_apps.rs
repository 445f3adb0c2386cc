//! Fixture apps (`buildpacks/test/fixtures/<name>`) pushed to a real server, and what tests
//! do with them: pages through the router, config vars, one-off dynos.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{commit_and_push, Outcome, Server, User};

/// The first address of `subnet` (`198.19.K.0/24` gives `198.19.K.1`).
pub fn gateway(subnet: &str) -> String {
    let (network, _) = subnet.split_once('/').unwrap();
    let network: Ipv4Addr = network.parse().unwrap();
    Ipv4Addr::from(u32::from(network) + 1).to_string()
}

/// The host and port of an add-on URL (`scheme://user:password@host:port[/database]`).
pub fn host_and_port(url: &str) -> (String, u16) {
    let (_, rest) = url.rsplit_once('@').unwrap();
    let authority = rest.split('/').next().unwrap();
    let (host, port) = authority.rsplit_once(':').unwrap();
    (host.to_owned(), port.parse().unwrap())
}

/// Pushes the fixture app `buildpacks/test/fixtures/<fixture>` to `app`; returns git's output.
pub fn push_fixture(server: &Server, key: &str, app: &str, fixture: &str) -> String {
    push_fixture_with(server, key, app, fixture, &[])
}

/// [`push_fixture`] with `files` (path, contents) written over the fixture's first.
pub fn push_fixture_with(
    server: &Server,
    key: &str,
    app: &str,
    fixture: &str,
    files: &[(&str, &str)],
) -> String {
    let repo = fixture_copy(fixture);
    for (path, contents) in files {
        std::fs::write(repo.path().join(path), contents).unwrap();
    }
    push_repo(server, key, app, repo.path())
}

/// A copy of the fixture app `buildpacks/test/fixtures/<fixture>` in a temp dir.
pub fn fixture_copy(fixture: &str) -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../buildpacks/test/fixtures")
        .join(fixture);
    let repo = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", source.display()))
        .arg(repo.path())
        .status()
        .unwrap();
    assert!(copied.success());
    repo
}

/// Commits what `repo` holds (a git repository, made if missing) and pushes it to `app`;
/// returns git's output, and fails the test if the push was refused.
pub fn push_repo(server: &Server, key: &str, app: &str, repo: &Path) -> String {
    let (pushed, text) = commit_and_push(server, key, app, repo);
    assert!(pushed, "push failed:\n{text}");
    text
}

/// One request without a body through the router: the status and body, or `None` when
/// nothing answered.
pub fn request(server: &Server, method: &str, app: &str, path: &str) -> Option<(u16, String)> {
    let authority = server.router_url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {app}.localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// One GET through the router: the status and body, or `None` when nothing answered.
pub fn get(server: &Server, app: &str, path: &str) -> Option<(u16, String)> {
    request(server, "GET", app, path)
}

/// Polls `path` until it answers 200 with a body containing `needle`.
pub fn wait_for_page(
    server: &Server,
    app: &str,
    path: &str,
    needle: &str,
    deadline: Duration,
) -> String {
    let until = Instant::now() + deadline;
    loop {
        let answer = get(server, app, path);
        if let Some((200, body)) = &answer {
            if body.contains(needle) {
                return body.clone();
            }
        }
        assert!(
            Instant::now() < until,
            "{app}{path} never answered {needle:?}; last answer {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn config(user: &User, app: &str) -> serde_json::Value {
    serde_json::from_str(&user.run(&["config", "--json", "-a", app]).ok()).unwrap()
}

/// Runs the shell command `command` in a one-off dyno of `app` as `user` (who trusts the
/// server's CA for the rendezvous): its exit status and output.
pub fn run_in_dyno(server: &Server, user: &User, app: &str, command: &str) -> Outcome {
    let config = user.home.path().join(".config/wharf");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::copy(server.data_dir.join("tls/ca.pem"), config.join("ca.pem")).unwrap();
    user.run(&["run", "--no-tty", "-a", app, "--", command])
}
