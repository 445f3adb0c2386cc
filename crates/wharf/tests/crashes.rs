//! End to end: a server killed with SIGKILL in the middle of a build leaves its work dir, the
//! push's archive and the build's container behind; the next start on the same data dir
//! removes them all, fails the interrupted build, and expires sources past their hour.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::{git, http_json, runtime_containers_named, Server, User, DEADLINE};

/// The entries of `<data>/builds` whose names start with `prefix`.
fn builds_entries(data: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(data.join("builds")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .map(|entry| entry.path())
        .collect()
}

/// The build work dirs: in the disk pool (`<data>/disk/mnt/build-<id>`), or plain ones in
/// `<data>/builds` (`work-<id>`) on a server without a pool.
fn work_dirs(data: &Path) -> Vec<PathBuf> {
    let mut dirs = builds_entries(data, "work-");
    if let Ok(entries) = std::fs::read_dir(data.join("disk/mnt")) {
        dirs.extend(
            entries
                .flatten()
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("build-"))
                .map(|entry| entry.path()),
        );
    }
    dirs
}

/// A new Builds API source of `app` with `bytes` uploaded; returns its file in the data dir.
fn source(server: &Server, key: &str, app: &str, bytes: &str) -> PathBuf {
    let (status, body) = http_json(
        &server.url,
        "POST",
        &format!("/apps/{app}/sources"),
        key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 201, "{body}");
    let put_url = body["source_blob"]["put_url"].as_str().unwrap();
    let path = put_url.strip_prefix(&server.url).unwrap();
    // The upload URL's secret is its credential; the answer has no body.
    let authority = server.url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{bytes}",
        bytes.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    let token = path.rsplit('/').next().unwrap();
    let file = server.data_dir.join("sources").join(token);
    assert!(file.is_file(), "{}", file.display());
    file
}

#[test]
fn a_restart_removes_what_a_killed_build_left() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "crashy"]).ok();
    let sleeper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildpacks/sleeper");
    user.run(&["buildpacks:register", "sleeper", sleeper.to_str().unwrap()])
        .ok();
    user.run(&["buildpacks:add", "sleeper", "-a", "crashy"])
        .ok();

    // Two sources: one past its hour, one fresh.
    let stale = source(&server, &key, "crashy", "stale tarball");
    let fresh = source(&server, &key, "crashy", "fresh tarball");
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(2 * 60 * 60))
        .unwrap();

    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("README"), "sleeps").unwrap();
    git(repo.path(), &["init", "--quiet", "--initial-branch=main"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "--quiet", "-m", "sleep"]);
    let authority = server.url.strip_prefix("http://").unwrap();
    let mut push = Command::new("git")
        .args([
            "push",
            &format!("http://git:{key}@{authority}/crashy.git"),
            "main",
        ])
        .current_dir(repo.path())
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The sleeper's bin/compile runs: its container, the work dir and the archive exist.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let compiling = runtime_containers_named(data.path(), "build-")
            .iter()
            .any(|id| id.contains("-compile-"));
        let work = work_dirs(data.path());
        let archives = builds_entries(data.path(), "push-");
        if compiling && work.len() == 1 && archives.len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the build never reached bin/compile: containers {:?}, work {work:?}, archives \
             {archives:?}",
            runtime_containers_named(data.path(), "")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    server.kill();
    let _ = push.kill();
    let _ = push.wait();
    // SIGKILL gave the server no chance to clean up.
    let left_containers = runtime_containers_named(data.path(), "build-");
    let left_work = work_dirs(data.path());
    let left_archives = builds_entries(data.path(), "push-");
    assert!(!left_containers.is_empty());
    assert_eq!(left_work.len(), 1);
    assert_eq!(left_archives.len(), 1);

    let server = Server::start(data.path());
    assert_eq!(
        runtime_containers_named(data.path(), "build-"),
        Vec::<String>::new()
    );
    assert!(!left_work[0].exists(), "{}", left_work[0].display());
    assert!(!left_archives[0].exists(), "{}", left_archives[0].display());
    assert!(!stale.exists(), "a source past its hour is removed");
    assert!(fresh.exists(), "a fresh source stays");
    // The build's log stays, and the build is recorded as failed.
    assert_eq!(builds_entries(data.path(), "").len(), 1);
    let (status, builds) = http_json(
        &server.url,
        "GET",
        "/apps/crashy/builds",
        &key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{builds}");
    assert_eq!(builds[0]["status"], "failed", "{builds}");
}
