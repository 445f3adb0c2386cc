//! End to end: `git push` of small apps to a real `wharf server`, built by the built-in
//! buildpacks in real containers, and the releases they make.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use support::{http_json, Server, User};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../buildpacks/test/fixtures")
}

/// A git repository holding a copy of `source`, with one commit.
fn repository(source: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", source.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
    commit(dir.path(), "first");
    dir
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    output
}

fn commit(dir: &Path, message: &str) {
    assert!(git(dir, &["add", "-A"]).status.success());
    let output = git(dir, &["commit", "--quiet", "--allow-empty", "-m", message]);
    assert!(output.status.success(), "{output:?}");
}

fn head(dir: &Path) -> String {
    String::from_utf8(git(dir, &["rev-parse", "HEAD"]).stdout)
        .unwrap()
        .trim()
        .to_owned()
}

/// The app's git URL with the key as the Basic auth password, as Heroku's helper sends it.
fn remote(server: &Server, key: &str, app: &str) -> String {
    let authority = server.url.strip_prefix("http://").unwrap();
    format!("http://git:{key}@{authority}/{app}.git")
}

struct Push {
    ok: bool,
    output: String,
    seconds: f64,
}

fn push(dir: &Path, url: &str, refspec: &str) -> Push {
    let started = Instant::now();
    let output = git(dir, &["push", url, refspec]);
    Push {
        ok: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn remote_head(url: &str) -> String {
    let output = Command::new("git")
        .args(["ls-remote", url, "refs/heads/main"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Polls the router for `host` until the page contains `needle` (the dyno is up).
fn wait_for_page(server: &Server, host: &str, needle: &str) -> String {
    use std::io::{Read, Write};
    let authority = server.router_url.strip_prefix("http://").unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut response = String::new();
        if let Ok(mut stream) = std::net::TcpStream::connect(authority) {
            let _ = write!(
                stream,
                "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.read_to_string(&mut response);
        }
        if response.contains(needle) || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[track_caller]
fn assert_has(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "{needle:?} missing from:\n{haystack}"
        );
    }
}

#[test]
fn pushes_build_with_the_builtin_buildpacks_and_release() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    let mut timings = Vec::new();

    for (fixture, detected, types) in [
        ("python-flask", "Python app detected", "web"),
        ("nodejs-express-less", "Node.js app detected", "web"),
        ("static-site", "Static app detected", "web"),
        ("procfile-only", "Procfile app detected", "web"),
    ] {
        let app = format!("e2e-{}", fixture.split('-').next().unwrap());
        user.run(&["apps:create", &app]).ok();
        let repo = repository(&fixtures().join(fixture));
        let url = remote(&server, &key, &app);
        let first = push(repo.path(), &url, "HEAD:main");
        assert!(first.ok, "{fixture}: {}", first.output);
        let pushed = head(repo.path());
        assert_has(
            &first.output,
            &[
                "remote: -----> Building on the debian-12 stack",
                &format!("remote: -----> {detected}"),
                "remote: -----> Compressing...",
                "remote:        Done: ",
                "remote: -----> Launching...",
                "remote:        Released v2",
                &format!(
                    "remote:        http://{app}.localhost:{}/ deployed to Wharf",
                    server.router_url.rsplit(':').next().unwrap()
                ),
            ],
        );
        assert_eq!(remote_head(&url), pushed);
        let releases = user.run(&["releases", "-a", &app]).ok();
        assert_has(&releases, &[&format!("v2  Deploy {}", &pushed[..7])]);
        let formation = user.run(&["ps:scale", "-a", &app]).ok();
        assert_has(&formation, &[&format!("{types}=1:Basic")]);
        let info: serde_json::Value =
            serde_json::from_str(&user.run(&["apps:info", "--json", "-a", &app]).ok()).unwrap();
        assert!(info["slug_size"].as_i64().unwrap() > 0, "{info}");
        assert!(info["repo_size"].as_i64().unwrap() > 0, "{info}");
        // The release runs: its web dyno answers through the router.
        let greeting = format!("Hello from {fixture} on Wharf");
        let body = wait_for_page(&server, &format!("{app}.localhost"), &greeting);
        assert!(body.contains(&greeting), "{body}");

        // A second push of new code reuses the build cache.
        commit(repo.path(), "second");
        let second = push(repo.path(), &url, "HEAD:main");
        assert!(second.ok, "{fixture} again: {}", second.output);
        assert_has(&second.output, &["Released v3"]);
        timings.push((fixture, first.seconds, second.seconds));
    }
    eprintln!("build times (first push, cached rebuild), seconds:");
    for (fixture, first, second) in &timings {
        eprintln!("  {fixture:<22} {first:>6.1} {second:>6.1}");
    }
}

#[test]
fn broken_pushes_are_rejected_and_the_running_release_stays() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "fragile"]).ok();
    let repo = repository(&fixtures().join("procfile-only"));
    let url = remote(&server, &key, "fragile");
    assert!(push(repo.path(), &url, "HEAD:main").ok);
    let good = head(repo.path());

    // A malformed Procfile fails the build with its line number.
    std::fs::write(
        repo.path().join("Procfile"),
        "web: python3 server.py\nworker python3 x.py\n",
    )
    .unwrap();
    commit(repo.path(), "broken procfile");
    let broken = push(repo.path(), &url, "HEAD:main");
    assert!(!broken.ok, "{}", broken.output);
    assert_has(
        &broken.output,
        &["Procfile line 2", "pre-receive hook declined"],
    );
    assert_eq!(remote_head(&url), good, "the branch did not move");
    let releases = user.run(&["releases", "-a", "fragile"]).ok();
    assert_has(&releases, &["Current: v2"]);

    // A failing compile (pip cannot find a package) fails the push the same way.
    let python = repository(&fixtures().join("python-flask"));
    std::fs::write(
        python.path().join("requirements.txt"),
        "wharf-no-such-package-exists==9.9.9\n",
    )
    .unwrap();
    commit(python.path(), "bad requirements");
    user.run(&["apps:create", "fragile-py"]).ok();
    let failed = push(
        python.path(),
        &remote(&server, &key, "fragile-py"),
        "HEAD:main",
    );
    assert!(!failed.ok);
    assert_has(
        &failed.output,
        &[
            "Python app detected",
            "failed to compile",
            "pre-receive hook declined",
        ],
    );
    assert_eq!(remote_head(&remote(&server, &key, "fragile-py")), "");
    let releases = user.run(&["releases", "-a", "fragile-py"]).ok();
    assert_has(&releases, &["Current: v1"]);

    // Other branches are refused with a message.
    let branch = push(repo.path(), &url, "HEAD:refs/heads/feature");
    assert!(!branch.ok);
    assert_has(
        &branch.output,
        &["Wharf builds main or master", "git push wharf feature:main"],
    );

    // A wrong key is refused before anything runs.
    let stranger = push(
        repo.path(),
        &remote(&server, "wrong-key", "fragile"),
        "HEAD:main",
    );
    assert!(!stranger.ok);
    let builds: serde_json::Value = http_json(
        &server.url,
        "GET",
        "/apps/fragile/builds",
        &key,
        &serde_json::json!({}),
    )
    .1;
    assert_eq!(builds.as_array().unwrap().len(), 2, "{builds}");
}

#[test]
fn third_party_buildpacks_follow_the_contract() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "greeter"]).ok();
    user.run(&["config:set", "GREETING=ahoy", "-a", "greeter"])
        .ok();
    register_fixture(&server, &key, "hello");
    register_fixture(&server, &key, "shout");
    let (status, body) = http_json(
        &server.url,
        "PUT",
        "/apps/greeter/buildpack-installations",
        &key,
        &serde_json::json!({"updates": [{"buildpack": "hello"}]}),
    );
    assert_eq!(status, 200, "{body}");

    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("hello.txt"), "hi").unwrap();
    std::fs::write(source.path().join(".slugignore"), "*.psd\n").unwrap();
    std::fs::write(source.path().join("art.psd"), "big").unwrap();
    git(source.path(), &["init", "--quiet", "--initial-branch=main"]);
    commit(source.path(), "hello");
    let url = remote(&server, &key, "greeter");
    let first = push(source.path(), &url, "HEAD:main");
    assert!(first.ok, "{}", first.output);
    assert_has(
        &first.output,
        &[
            "Hello app detected",
            "Compiling with the hello buildpack",
            "build number 1 with STACK=debian-12",
        ],
    );
    commit(source.path(), "again");
    let second = push(source.path(), &url, "HEAD:main");
    assert!(second.ok, "{}", second.output);
    assert_has(&second.output, &["build number 2"]);

    assert!(
        !second.output.contains("Permission denied"),
        "{}",
        second.output
    );
    let formation = user.run(&["ps:scale", "-a", "greeter"]).ok();
    assert_has(&formation, &["web=1:Basic", "worker=0:Basic"]);

    // Two buildpacks: the second sees what the first exported; the Procfile sets the types,
    // since the last buildpack (which has no bin/release) gives no defaults.
    let (status, body) = http_json(
        &server.url,
        "PUT",
        "/apps/greeter/buildpack-installations",
        &key,
        &serde_json::json!({"updates": [
            {"buildpack": "hello"},
            {"buildpack": "shout"},
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    std::fs::write(source.path().join("Procfile"), "web: bin/greet\n").unwrap();
    commit(source.path(), "procfile");
    let third = push(source.path(), &url, "HEAD:main");
    assert!(third.ok, "{}", third.output);
    assert_has(
        &third.output,
        &["Shouting: HELLO_BUILDPACK_RAN=yes", "Released v5"],
    );
    let formation = user.run(&["ps:scale", "-a", "greeter"]).ok();
    assert_has(&formation, &["web=1:Basic"]);
    assert!(!formation.contains("worker"), "{formation}");
}

/// The directory of one of the test buildpacks in tests/fixtures/buildpacks.
fn fixture_buildpack(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildpacks")
        .join(name)
}

/// Registers the test buildpack `name` under its own name, with the admin's key (once per
/// server: registering it again answers 409).
fn register_fixture(server: &Server, admin_key: &str, name: &str) {
    let (status, body) = http_json(
        &server.url,
        "POST",
        "/buildpack-registrations",
        admin_key,
        &serde_json::json!({"name": name, "dir": fixture_buildpack(name).to_str().unwrap()}),
    );
    assert!(status == 201 || status == 409, "{status}: {body}");
}

/// Points the app at one of the test buildpacks, registered by the admin and added by name.
fn use_buildpack(server: &Server, key: &str, app: &str, name: &str) {
    register_fixture(server, key, name);
    let (status, body) = http_json(
        &server.url,
        "PUT",
        &format!("/apps/{app}/buildpack-installations"),
        key,
        &serde_json::json!({"updates": [{"buildpack": name}]}),
    );
    assert_eq!(status, 200, "{body}");
}

/// The message of a refused buildpack list, with the buildpack asked for replaced by `ASKED`.
fn refusal(server: &Server, key: &str, app: &str, buildpack: &str) -> String {
    let (status, body) = http_json(
        &server.url,
        "PUT",
        &format!("/apps/{app}/buildpack-installations"),
        key,
        &serde_json::json!({"updates": [{"buildpack": buildpack}]}),
    );
    assert_eq!(status, 422, "{buildpack}: {body}");
    body["message"]
        .as_str()
        .unwrap()
        .replace(buildpack, "ASKED")
}

#[test]
fn server_directories_are_buildpacks_only_once_an_admin_registers_them() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin_key = server.admin_key();
    let admin = User::new(&server.url, Some(&admin_key));
    let created: serde_json::Value = serde_json::from_str(
        &admin
            .run(&["users:create", "dev@example.com", "--json"])
            .ok(),
    )
    .unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "trusty"]).ok();
    let hello = fixture_buildpack("hello");
    let hello = hello.to_str().unwrap();

    // A path on the server is refused with one message, whether or not it exists, and the
    // message says what to do.
    let existing = refusal(&server, &key, "trusty", "/usr/share");
    assert_eq!(existing, refusal(&server, &key, "trusty", "/no/such/dir"));
    assert_eq!(existing, refusal(&server, &key, "trusty", hello));
    assert_has(
        &existing,
        &["wharf buildpacks:register NAME DIR", "git URL"],
    );
    let refused = user
        .run(&["buildpacks:add", "/usr/share", "-a", "trusty"])
        .failed();
    assert_has(&refused, &["is not one Wharf can use"]);
    for url in ["file:///usr/share", "ssh://git@example.com/bp.git"] {
        let refused = user.run(&["buildpacks:add", url, "-a", "trusty"]).failed();
        assert_has(&refused, &["file:// and ssh:// URLs are refused"]);
    }

    // Only an admin registers; then the app uses it by name, and the directory never shows.
    let denied = user.run(&["buildpacks:register", "hello", hello]).failed();
    assert_has(&denied, &["Only admins"]);
    assert!(!denied.contains("hello/bin"), "{denied}");
    let registered = admin.run(&["buildpacks:register", "hello", hello]).ok();
    assert_has(&registered, &["Registered buildpack hello", hello]);
    let listed = user.run(&["buildpacks:registered"]).ok();
    assert_has(&listed, &["hello"]);
    assert!(!listed.contains(hello), "{listed}");
    assert_has(&admin.run(&["buildpacks:registered"]).ok(), &[hello]);
    user.run(&["buildpacks:add", "hello", "-a", "trusty"]).ok();
    assert_has(
        &user.run(&["buildpacks", "-a", "trusty"]).ok(),
        &["1. hello"],
    );

    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("hello.txt"), "hi").unwrap();
    git(source.path(), &["init", "--quiet", "--initial-branch=main"]);
    commit(source.path(), "hello");
    let url = remote(&server, &key, "trusty");
    let built = push(source.path(), &url, "HEAD:main");
    assert!(built.ok, "{}", built.output);
    assert_has(&built.output, &["Hello app detected", "Released v2"]);

    // Unregistered, the app's next build fails and says why; the running release stays.
    admin.run(&["buildpacks:unregister", "hello"]).ok();
    commit(source.path(), "again");
    let failed = push(source.path(), &url, "HEAD:main");
    assert!(!failed.ok, "{}", failed.output);
    assert_has(&failed.output, &["\"hello\" is no longer registered"]);
    assert!(!failed.output.contains(hello), "{}", failed.output);
    assert_has(
        &user.run(&["releases", "-a", "trusty"]).ok(),
        &["Current: v2"],
    );
}

#[test]
fn builds_are_held_to_their_memory_disk_and_time_limits() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        data.path(),
        &[
            ("WHARF_BUILD_MEMORY_MB", "128"),
            ("WHARF_BUILD_TIMEOUT", "5"),
            ("WHARF_BUILD_DISK_MB", "64"),
        ],
    );
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("README"), "limits").unwrap();
    git(source.path(), &["init", "--quiet", "--initial-branch=main"]);
    commit(source.path(), "limits");

    user.run(&["apps:create", "hungry"]).ok();
    use_buildpack(&server, &key, "hungry", "hog");
    let hungry = push(source.path(), &remote(&server, &key, "hungry"), "HEAD:main");
    assert!(!hungry.ok, "{}", hungry.output);
    assert_has(
        &hungry.output,
        &["Allocating 600 MB", "ran out of memory (limit 128 MB)"],
    );

    user.run(&["apps:create", "greedy"]).ok();
    use_buildpack(&server, &key, "greedy", "filler");
    let greedy = push(source.path(), &remote(&server, &key, "greedy"), "HEAD:main");
    assert!(!greedy.ok, "{}", greedy.output);
    assert_has(
        &greedy.output,
        &[
            "Writing 100 MB to /app",
            "No space left on device",
            "remote:  !     The build used all of its 64 MiB disk (/app): remove files",
        ],
    );
    // The build's capped dir went with the build.
    let pool = std::fs::read_dir(data.path().join("disk/mnt")).unwrap();
    let left: Vec<_> = pool
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("build-"))
        .collect();
    assert_eq!(left, Vec::<String>::new());

    user.run(&["apps:create", "sleepy"]).ok();
    use_buildpack(&server, &key, "sleepy", "sleeper");
    let sleepy = push(source.path(), &remote(&server, &key, "sleepy"), "HEAD:main");
    assert!(!sleepy.ok, "{}", sleepy.output);
    assert_has(
        &sleepy.output,
        &[
            "Sleeping",
            "Build timed out after 5 seconds and was stopped",
        ],
    );
    assert!(
        sleepy.seconds < 60.0,
        "the build was stopped, not waited out"
    );
    let leftovers = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "runc --root {0}/runtime list -q; crun --root {0}/runtime list -q",
            data.path().display()
        ))
        .output()
        .unwrap();
    let leftovers = String::from_utf8_lossy(&leftovers.stdout);
    assert!(
        !leftovers.contains("build-"),
        "no build container is left: {leftovers}"
    );
}

#[test]
fn the_release_phase_gates_the_release() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "phased"]).ok();
    user.run(&["config:set", "MIGRATION=42", "-a", "phased"])
        .ok();
    let repo = repository(&fixtures().join("procfile-only"));
    let url = remote(&server, &key, "phased");
    let procfile = std::fs::read_to_string(repo.path().join("Procfile")).unwrap();

    std::fs::write(
        repo.path().join("Procfile"),
        format!("{procfile}release: echo \"migrating to $MIGRATION as $DYNO\"; exit 3\n"),
    )
    .unwrap();
    commit(repo.path(), "failing release phase");
    let failed = push(repo.path(), &url, "HEAD:main");
    assert!(!failed.ok, "{}", failed.output);
    assert_has(
        &failed.output,
        &[
            "Running release command...",
            "migrating to 42 as release.3",
            "release command exited with status 3",
        ],
    );
    let releases = user.run(&["releases", "-a", "phased"]).ok();
    assert_has(&releases, &["Current: v2"]);

    std::fs::write(
        repo.path().join("Procfile"),
        format!("{procfile}release: echo \"migrated to $MIGRATION\"\n"),
    )
    .unwrap();
    commit(repo.path(), "working release phase");
    let ok = push(repo.path(), &url, "HEAD:main");
    assert!(ok.ok, "{}", ok.output);
    assert_has(&ok.output, &["migrated to 42", "Released v4"]);
    let releases = user.run(&["releases", "-a", "phased"]).ok();
    assert_has(&releases, &["Current: v4"]);
    let formation = user.run(&["ps:scale", "-a", "phased"]).ok();
    assert!(
        !formation.contains("release="),
        "the release phase is not a process type: {formation}"
    );
}

#[test]
fn concurrent_pushes_to_one_app_never_interleave() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "contended"]).ok();
    let url = remote(&server, &key, "contended");
    let first = repository(&fixtures().join("procfile-only"));
    let second = repository(&fixtures().join("procfile-only"));
    std::fs::write(second.path().join("extra.txt"), "another history").unwrap();
    commit(second.path(), "second");
    let pushes: Vec<Push> = std::thread::scope(|scope| {
        let a = scope.spawn(|| push(first.path(), &url, "HEAD:main"));
        let b = scope.spawn(|| push(second.path(), &url, "HEAD:main"));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let succeeded: Vec<&Push> = pushes.iter().filter(|p| p.ok).collect();
    assert!(
        !succeeded.is_empty(),
        "{}\n{}",
        pushes[0].output,
        pushes[1].output
    );
    for push in &pushes {
        if !push.ok {
            // The loser waited for the winner's build, then found main had moved; or git
            // itself refused its non-fast-forward update.
            assert!(
                push.output.contains("moved while this push waited")
                    || push.output.contains("non-fast-forward")
                    || push.output.contains("fetch first"),
                "{}",
                push.output
            );
        }
    }
    let releases = user.run(&["releases", "--json", "-a", "contended"]).ok();
    let releases: serde_json::Value = serde_json::from_str(&releases).unwrap();
    let versions: Vec<i64> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        versions.len(),
        1 + succeeded.len(),
        "one release per successful push: {versions:?}"
    );
}

#[test]
fn source_tarballs_deploy_without_git() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "tarball"]).ok();
    let source = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!(
            "{}/.",
            fixtures().join("nodejs-express-less").display()
        ))
        .arg(source.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(source.path().join(".slugignore"), "notes/\n").unwrap();
    std::fs::create_dir(source.path().join("notes")).unwrap();
    std::fs::write(source.path().join("notes/todo.md"), "left out").unwrap();
    let dir = source.path().to_str().unwrap();

    let deployed = user.run(&["deploy", dir, "-a", "tarball"]).ok();
    assert_has(
        &deployed,
        &[
            "-----> Building on the debian-12 stack",
            "Node.js app detected",
            "Released v2",
        ],
    );
    let builds = user.run(&["builds", "-a", "tarball"]).ok();
    assert_has(&builds, &["succeeded", "admin@localhost"]);
    let output = user.run(&["builds:output", "-a", "tarball"]).ok();
    assert_has(&output, &["Node.js app detected", "deployed to Wharf"]);
    let info: serde_json::Value =
        serde_json::from_str(&user.run(&["builds:info", "--json", "-a", "tarball"]).ok()).unwrap();
    assert_eq!(info["status"], "succeeded", "{info}");
    assert!(info["release"]["id"].is_string(), "{info}");

    // Nothing to detect: the build fails, the CLI says so, and v2 keeps running.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README"), "no app here").unwrap();
    let failed = user.run(&["deploy", empty.path().to_str().unwrap(), "-a", "tarball"]);
    assert_ne!(failed.code, 0);
    assert_has(&failed.stdout, &["No default language could be detected"]);
    assert_has(&failed.stderr, &["Build failed"]);
    let releases = user.run(&["releases", "-a", "tarball"]).ok();
    assert_has(&releases, &["Current: v2"]);

    user.run(&["buildpacks:add", "heroku/nodejs", "-a", "tarball"])
        .ok();
    assert_has(
        &user.run(&["buildpacks", "-a", "tarball"]).ok(),
        &["1. heroku/nodejs"],
    );
    let refused = user
        .run(&["buildpacks:add", "relative/path", "-a", "tarball"])
        .failed();
    assert_has(&refused, &["is not one Wharf can use"]);
    user.run(&[
        "builds:cache:purge",
        "--confirm",
        "tarball",
        "-a",
        "tarball",
    ])
    .ok();
    let again = user.run(&["deploy", dir, "-a", "tarball"]).ok();
    assert_has(&again, &["Released v3"]);
}
