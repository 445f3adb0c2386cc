//! End-to-end add-ons on a fresh server with no add-on settings at all: Wharf runs the servers
//! itself (a `redis-server` per Redis add-on, one PostgreSQL cluster under its data dir), on
//! the dyno network's gateway. A bull-style queue (a client that takes `REDIS_URL` as Heroku
//! hands it out, calls INFO and uses keys of its own choosing) carries jobs from a web dyno to
//! a worker dyno; another app's dyno can neither log in to that Redis nor see its keys; the
//! data survives `kill -9` of the Redis server and of Wharf. A release phase migrates a
//! PostgreSQL add-on the web process reads; a backup, a reset and a restore give the rows
//! back; another user cannot restore from a backup of an app they cannot see.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::fixture_apps::{
    config, gateway, get, host_and_port, push_fixture, run_in_dyno, wait_for_page,
};
use support::{Server, User};

/// How long a build (pip included) and a dyno's start may take.
const BUILD_DEADLINE: Duration = Duration::from_secs(300);
/// How long the tests wait for pages, jobs and restarts.
const DEADLINE: Duration = Duration::from_secs(120);

/// redis-cli on the app's `REDIS_URL`, as `wharf redis:cli` runs it in a one-off dyno
/// (redis-cli 7.0 reads no user name as an empty one: the URL names `default`).
const REDIS_CLI: &str = r#"redis-cli --no-auth-warning -u "$(printf '%s' "$REDIS_URL" | sed 's#^\(rediss*\)://:#\1://default:#')""#;

/// The processes working in `needle` (a directory under a test's data dir) or whose command
/// line names it.
fn processes_naming(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let works_there =
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(needle));
        if (works_there || cmdline.contains(needle)) && !cmdline.contains("setpriv") {
            found.push(pid);
        }
    }
    found
}

/// Waits until exactly one process names `needle`, and returns it.
fn one_process_naming(needle: &str) -> u32 {
    let until = Instant::now() + DEADLINE;
    loop {
        let found = processes_naming(needle);
        if let [pid] = found.as_slice() {
            return *pid;
        }
        assert!(
            Instant::now() < until,
            "not one process names {needle}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_until_gone(needle: &str) {
    let until = Instant::now() + DEADLINE;
    while !processes_naming(needle).is_empty() {
        assert!(Instant::now() < until, "a process still names {needle}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `addons:create SERVICE -a APP`, timed.
fn create_addon(user: &User, service: &str, app: &str) -> Duration {
    let started = Instant::now();
    let created = user.run(&["addons:create", service, "-a", app]).ok();
    let took = started.elapsed();
    assert!(
        created.contains(&format!("Creating {service} on ⬢ {app}")),
        "{created}"
    );
    println!("addons:create {service}: {} ms", took.as_millis());
    took
}

/// The password of a `redis://:PASSWORD@host:port` URL.
fn redis_password(url: &str) -> &str {
    let rest = url.strip_prefix("redis://:").unwrap();
    rest.split_once('@').unwrap().0
}

/// Where an add-on's server keeps its files: `<data>/addons/redis/<id>`.
fn redis_dir(data: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(data.join("addons/redis")) {
        Ok(entries) => entries.flatten().map(|entry| entry.path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_bull_style_queue_runs_on_a_redis_of_its_own_that_survives_crashes() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "queue-app"]).ok();
    user.run(&["apps:create", "other-app"]).ok();

    create_addon(&user, "heroku-redis", "queue-app");
    let url = config(&user, "queue-app")["REDIS_URL"]
        .as_str()
        .unwrap()
        .to_owned();
    // Heroku's shape: a password and no user name, at the dyno network's gateway.
    assert!(url.starts_with("redis://:"), "{url}");
    let (host, port) = host_and_port(&url);
    assert_eq!(host, gateway(&server.dyno_network));
    let dirs = redis_dir(data.path());
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let addon_dir = dirs[0].to_string_lossy().into_owned();
    let first_pid = one_process_naming(&addon_dir);

    push_fixture(&server, &key, "queue-app", "python-bull-queue");
    user.run(&["ps:scale", "worker=1", "-a", "queue-app"]).ok();
    wait_for_page(
        &server,
        "queue-app",
        "/",
        "python-bull-queue",
        BUILD_DEADLINE,
    );
    let queued = wait_for_page(&server, "queue-app", "/jobs/7", "queued", DEADLINE);
    assert_eq!(queued.trim(), "queued job 1: square 7");
    let result = wait_for_page(&server, "queue-app", "/results/1", "49", DEADLINE);
    assert_eq!(result.trim(), "job 1 done by worker.1: 49");
    let keys = wait_for_page(&server, "queue-app", "/keys", "bull:", DEADLINE);
    assert_eq!(
        keys.trim(),
        "bull:squares:1 bull:squares:completed bull:squares:id"
    );

    let info = user.run(&["redis:info", "-a", "queue-app"]).ok();
    assert!(info.contains("wharf-redis:mini"), "{info}");
    assert!(!info.contains(redis_password(&url)), "{info}");

    // Another app's Redis is another server: its password opens only its own, and its own
    // holds none of the first app's keys.
    create_addon(&user, "heroku-redis", "other-app");
    let other_url = config(&user, "other-app")["REDIS_URL"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other_port) = host_and_port(&other_url);
    assert_ne!(other_port, port);
    let _other_repo = support::deploy_procfile_app(&server, &key, "other-app");
    let crossed = run_in_dyno(
        &server,
        &user,
        "other-app",
        &format!(
            "redis-cli --no-auth-warning -u redis://:{}@{host}:{port} GET bull:squares:1",
            redis_password(&other_url)
        ),
    );
    let said = format!("{}{}", crossed.stdout, crossed.stderr);
    assert!(said.contains("WRONGPASS"), "{crossed:?}");
    let own = run_in_dyno(&server, &user, "other-app", &format!("{REDIS_CLI} DBSIZE"));
    assert_eq!(own.code, 0, "{own:?}");
    assert_eq!(own.stdout.lines().last(), Some("0"), "{own:?}");

    // `kill -9` of the add-on's server: started again, with its data.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let until = Instant::now() + DEADLINE;
    loop {
        let found = processes_naming(&addon_dir);
        if found.len() == 1 && found[0] != first_pid {
            break;
        }
        assert!(
            Instant::now() < until,
            "the Redis server was not restarted: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let result = wait_for_page(&server, "queue-app", "/results/1", "49", DEADLINE);
    assert_eq!(result.trim(), "job 1 done by worker.1: 49");
    let logs = user.run(&["logs", "-a", "queue-app", "-n", "300"]).ok();
    assert!(logs.contains("heroku[redis]"), "{logs}");

    // `kill -9` of Wharf: its add-on servers stop with it and come back with their data.
    server.kill();
    wait_until_gone(&addon_dir);
    let server = Server::start(data.path());
    let user = User::new(&server.url, Some(&key));
    one_process_naming(&addon_dir);
    let result = wait_for_page(&server, "queue-app", "/results/1", "49", DEADLINE);
    assert_eq!(result.trim(), "job 1 done by worker.1: 49");

    // Destroying stops the server and deletes its data.
    user.run(&[
        "addons:destroy",
        "REDIS",
        "-a",
        "queue-app",
        "--confirm",
        "queue-app",
    ])
    .ok();
    wait_until_gone(&addon_dir);
    assert!(!Path::new(&addon_dir).exists());
    drop(server);
}

#[test]
fn postgres_out_of_the_box_migrates_backs_up_resets_and_restores() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "pg-app"]).ok();

    create_addon(&user, "heroku-postgresql", "pg-app");
    let url = config(&user, "pg-app")["DATABASE_URL"]
        .as_str()
        .unwrap()
        .to_owned();
    let (host, port) = host_and_port(&url);
    assert_eq!(host, gateway(&server.dyno_network));
    assert_eq!(port, 15432);

    let output = push_fixture(&server, &key, "pg-app", "python-postgres-release");
    assert!(output.contains("migration done"), "{output}");
    wait_for_page(
        &server,
        "pg-app",
        "/",
        "migrated by the release phase",
        BUILD_DEADLINE,
    );

    // The cluster's superuser is no way in for a dyno.
    let refused = run_in_dyno(
        &server,
        &user,
        "pg-app",
        &format!("psql -w -Atc \"SELECT 'logged in'\" postgres://postgres@{host}:{port}/postgres"),
    );
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        !refused.stdout.lines().any(|line| line == "logged in"),
        "{refused:?}"
    );

    let info = user.run(&["pg:info", "-a", "pg-app"]).ok();
    assert!(info.contains("wharf-postgresql:mini"), "{info}");
    assert!(!info.contains("postgres://"), "{info}");

    // Backup, reset, restore: the rows come back.
    let captured = user.run(&["pg:backups:capture", "-a", "pg-app"]).ok();
    assert!(captured.contains("b001"), "{captured}");
    user.run(&["pg:reset", "-a", "pg-app", "--confirm", "pg-app"])
        .ok();
    let until = Instant::now() + DEADLINE;
    loop {
        match get(&server, "pg-app", "/") {
            Some((500, body)) if body.contains("greetings") => break,
            answer => assert!(
                Instant::now() < until,
                "the table is still there after pg:reset: {answer:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    user.run(&[
        "pg:backups:restore",
        "b001",
        "-a",
        "pg-app",
        "--confirm",
        "pg-app",
    ])
    .ok();
    wait_for_page(
        &server,
        "pg-app",
        "/",
        "migrated by the release phase",
        DEADLINE,
    );
    let listed = user.run(&["pg:backups", "-a", "pg-app"]).ok();
    assert!(listed.contains("b001"), "{listed}");
    let dump = user.home.path().join("latest.dump");
    user.run(&[
        "pg:backups:download",
        "-a",
        "pg-app",
        "-o",
        dump.to_str().unwrap(),
    ])
    .ok();
    let bytes = std::fs::read(&dump).unwrap();
    assert!(
        bytes.starts_with(b"PGDMP"),
        "not a pg_dump custom-format file"
    );

    // Someone else cannot restore from this app's backups.
    let created = user
        .run(&["users:create", "someone@example.com", "--json"])
        .ok();
    let someone_key = serde_json::from_str::<serde_json::Value>(&created).unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let someone = User::new(&server.url, Some(&someone_key));
    someone.run(&["apps:create", "their-app"]).ok();
    create_addon(&someone, "heroku-postgresql", "their-app");
    let stolen = someone
        .run(&[
            "pg:backups:restore",
            "pg-app::b001",
            "-a",
            "their-app",
            "--confirm",
            "their-app",
        ])
        .failed();
    assert!(stolen.contains("Couldn't find that app"), "{stolen}");

    // The add-on servers' users pass through the data dir to `addons/`; all else but the
    // binary dynos run (`wharf/`) is root's.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(data.path()), 0o711);
    assert_eq!(mode(&data.path().join("addons")), 0o711);
    for entry in std::fs::read_dir(data.path()).unwrap().flatten() {
        if entry.file_name() != "addons" && entry.file_name() != "wharf" {
            assert_eq!(mode(&entry.path()) & 0o077, 0, "{:?}", entry.path());
        }
    }

    // `kill -9` of Wharf: the cluster stops with it and comes back with the data.
    server.kill();
    let cluster = data.path().join("addons/postgres");
    wait_until_gone(&cluster.to_string_lossy());
    let server = Server::start(data.path());
    wait_for_page(
        &server,
        "pg-app",
        "/",
        "migrated by the release phase",
        DEADLINE,
    );
}
