//! Stacks end to end: an app set to debian-13 with `wharf stack:set` builds on a root filesystem
//! debootstrap made on first use (from the test machine's shared .deb cache), serves from it,
//! and its one-off dynos see Debian 13 and its Python 3.13 with nothing of the host's `/usr`;
//! set back to debian-12 it builds and runs on the host's Debian 12 again, and a rollback to
//! the debian-13 release runs on debian-13 again.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::fixture_apps::{fixture_copy, push_repo, run_in_dyno, wait_for_page};
use support::{Server, User};

/// How long a page of a freshly deployed app may take to answer.
const DEADLINE: Duration = Duration::from_secs(120);
const APP: &str = "stacked";
const PAGE: &str = "Hello from python-flask";
/// What a dyno is asked: its Debian release, its Python, and whether a binary the host has in
/// `/usr` (PostgreSQL's client, from `scripts/deps.sh`) and debian-13 lacks is there.
const PROBE: &str = "cat /etc/os-release; python3 --version; \
     if test -e /usr/bin/psql; then echo host-psql-visible; else echo no-host-psql; fi";

/// The app's current release version.
fn current_version(user: &User) -> i64 {
    let releases: serde_json::Value =
        serde_json::from_str(&user.run(&["releases", "--json", "-a", APP]).ok()).unwrap();
    releases
        .as_array()
        .unwrap()
        .iter()
        .find(|release| release["current"] == true)
        .and_then(|release| release["version"].as_i64())
        .unwrap()
}

/// Bytes under `dir`, as `du` counts them (apparent sizes).
fn disk_usage(dir: &Path) -> u64 {
    let output = Command::new("du")
        .args(["-sb", "--"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn an_app_moves_to_debian_13_and_back() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&data.path().join("wharf"));
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["create", APP]).ok();
    assert_eq!(
        user.run(&["stack", "-a", APP]).ok(),
        format!("=== ⬢ {APP} Available Stacks\n* debian-12\n  debian-13\n")
    );
    let refused = user.run(&["stack:set", "heroku-24", "-a", APP]).failed();
    assert!(
        refused
            .contains("Stack \"heroku-24\" is not available: choose one of debian-12, debian-13"),
        "{refused}"
    );
    assert_eq!(
        user.run(&["stack:set", "debian-13", "-a", APP]).ok(),
        format!(
            "Setting stack to debian-13... done\n\
             You will need to redeploy ⬢ {APP} for the change to take effect.\n\
             Run git push wharf main to trigger a new build on ⬢ {APP}.\n"
        )
    );
    // Nothing is built yet: the app runs nothing, so its stack is the next build's.
    assert_eq!(
        user.run(&["stack", "-a", APP]).ok(),
        format!("=== ⬢ {APP} Available Stacks\n  debian-12\n* debian-13\n")
    );

    // Python 3.13 is debian-13's own: the build downloads no Python.
    let repo = fixture_copy("python-flask");
    let python_version = repo.path().join(".python-version");
    assert_eq!(
        std::fs::read_to_string(&python_version).unwrap().trim(),
        "3.11"
    );
    std::fs::write(&python_version, "3.13\n").unwrap();
    let started = Instant::now();
    let first = push_repo(&server, &key, APP, repo.path());
    let first_push = started.elapsed();
    assert!(
        first.contains("Preparing the debian-13 stack (first use)"),
        "{first}"
    );
    assert!(
        !first.contains("from the server's Python mirror"),
        "{first}"
    );
    wait_for_page(&server, APP, "/", PAGE, DEADLINE);
    let trixie = current_version(&user);
    let seen = run_in_dyno(&server, &user, APP, PROBE).ok();
    assert!(seen.contains("VERSION_CODENAME=trixie"), "{seen}");
    assert!(seen.contains("Python 3.13."), "{seen}");
    assert!(seen.contains("no-host-psql"), "{seen}");
    let versions = data.path().join("wharf/stacks/debian-13");
    let built: Vec<_> = std::fs::read_dir(&versions)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(built.len(), 1, "one version of debian-13: {built:?}");
    let rootfs = built[0].join("rootfs");
    assert!(rootfs.join("usr/bin/python3.13").exists());
    eprintln!(
        "stacks: first debian-13 push (stack build from the .deb cache, pip install, slug) took \
         {:.0} s; the root filesystem holds {} MB",
        first_push.as_secs_f64(),
        disk_usage(&rootfs) / 1_000_000
    );

    // The second build on debian-13 finds the stack ready.
    let started = Instant::now();
    std::fs::write(repo.path().join("again.txt"), "again\n").unwrap();
    let again = push_repo(&server, &key, APP, repo.path());
    eprintln!(
        "stacks: second debian-13 push took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(!again.contains("Preparing the debian-13 stack"), "{again}");

    // Back to debian-12 (the host's Debian 12 and its Python 3.11, as the fixture asks).
    user.run(&["stack:set", "debian-12", "-a", APP]).ok();
    assert_eq!(
        user.run(&["stack", "-a", APP]).ok(),
        format!("=== ⬢ {APP} Available Stacks\n  debian-12 (active on next deploy)\n* debian-13\n")
    );
    std::fs::write(&python_version, "3.11\n").unwrap();
    let back = push_repo(&server, &key, APP, repo.path());
    assert!(!back.contains("Preparing the debian-12 stack"), "{back}");
    wait_for_page(&server, APP, "/", PAGE, DEADLINE);
    let seen = run_in_dyno(&server, &user, APP, PROBE).ok();
    assert!(seen.contains("VERSION_CODENAME=bookworm"), "{seen}");
    assert!(seen.contains("Python 3.11."), "{seen}");
    assert!(seen.contains("host-psql-visible"), "{seen}");
    // Each build names the stack it ran on, newest first.
    let builds: serde_json::Value =
        serde_json::from_str(&user.run(&["builds", "--json", "-a", APP]).ok()).unwrap();
    let stacks: Vec<&str> = builds
        .as_array()
        .unwrap()
        .iter()
        .map(|build| build["stack"].as_str().unwrap())
        .collect();
    assert_eq!(stacks, ["debian-12", "debian-13", "debian-13"]);
    assert_eq!(
        user.run(&["stack", "-a", APP]).ok(),
        format!("=== ⬢ {APP} Available Stacks\n* debian-12\n  debian-13\n")
    );

    // A rollback runs the debian-13 slug on debian-13 again; the next build stays debian-12.
    user.run(&["rollback", &format!("v{trixie}"), "-a", APP])
        .ok();
    wait_for_page(&server, APP, "/", PAGE, DEADLINE);
    let seen = run_in_dyno(&server, &user, APP, PROBE).ok();
    assert!(seen.contains("VERSION_CODENAME=trixie"), "{seen}");
    assert!(seen.contains("Python 3.13."), "{seen}");
    assert!(seen.contains("no-host-psql"), "{seen}");
    assert_eq!(
        user.run(&["stack", "-a", APP]).ok(),
        format!("=== ⬢ {APP} Available Stacks\n  debian-12 (active on next deploy)\n* debian-13\n")
    );
}
