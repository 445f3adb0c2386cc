//! End-to-end add-ons under the dyno network: the real server with private PostgreSQL and
//! Redis add-on servers configured as an operator of an isolated Wharf should (passwords for
//! the dyno subnet, `support::addon_servers`), the real CLI, real pushes of fixture apps and
//! real dynos on their own network. A web process enqueues jobs on a Redis add-on that a
//! worker dyno processes; a release phase migrates a PostgreSQL add-on's database that the web
//! process then reads, through the router; apps' URLs name the dyno network's gateway, and a
//! dyno cannot log in to the add-on server as its superuser without a password; rotation
//! revokes the old credentials once the dynos restarted; destroying drops the database.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::addon_servers::{PrivatePostgres, PrivateRedis};
use support::fixture_apps::{
    config, gateway, host_and_port, push_fixture, run_in_dyno, wait_for_page,
};
use support::{http_json, Server, User};

/// How long a build (pip included) and a dyno's start may take.
const BUILD_DEADLINE: Duration = Duration::from_secs(300);
/// How long the tests wait for pages, jobs and revocations.
const DEADLINE: Duration = Duration::from_secs(120);

/// A server whose add-on services are private PostgreSQL and Redis servers asking its dyno
/// network for passwords. Fields drop in order: the server stops its dynos before the
/// add-on servers go.
struct Setup {
    server: Server,
    postgres: PrivatePostgres,
    redis: PrivateRedis,
    /// The dyno network's gateway, where dynos reach the add-on servers.
    gateway: String,
}

fn start(data_dir: &Path) -> Setup {
    let (_, subnet) = support::dyno_network(data_dir);
    let postgres = PrivatePostgres::start(&subnet);
    let redis = PrivateRedis::start();
    let server = Server::start_with(
        data_dir,
        &[
            ("WHARF_ADDON_POSTGRES_ADMIN_URL", &postgres.admin_url),
            ("WHARF_ADDON_REDIS_URL", &redis.admin_url),
        ],
    );
    assert_eq!(server.dyno_network, subnet);
    Setup {
        gateway: gateway(&subnet),
        server,
        postgres,
        redis,
    }
}

/// Runs `sql` with psql from this host. An app's URL names the gateway, so the connection
/// comes from the gateway's address, inside the dyno subnet: the server judges it by the
/// rules it has for dynos (passwords). A server that finds no pg_hba.conf line for it at all
/// fails the test, so that a refusal means the credentials were refused.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([url, "-Atqc", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("no pg_hba.conf entry"),
        "PostgreSQL judged this host's connection by no pg_hba.conf line: {stderr}"
    );
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
        false => Err(stderr),
    }
}

#[test]
fn web_dynos_enqueue_jobs_that_a_worker_dyno_processes_through_redis() {
    let data = tempfile::tempdir().unwrap();
    let setup = start(data.path());
    let server = &setup.server;
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "queue-app"]).ok();

    let created = user
        .run(&["addons:create", "heroku-redis", "-a", "queue-app"])
        .ok();
    assert!(
        created.contains("Creating heroku-redis on ⬢ queue-app... free"),
        "{created}"
    );
    assert!(
        created.contains("as REDIS_KEY_PREFIX, REDIS_URL"),
        "{created}"
    );
    let vars = config(&user, "queue-app");
    assert!(vars["REDIS_URL"]
        .as_str()
        .unwrap()
        .starts_with("redis://addon_"));
    // Dynos reach the private Redis at their network's gateway.
    assert_eq!(
        host_and_port(vars["REDIS_URL"].as_str().unwrap()),
        (setup.gateway.clone(), setup.redis.port)
    );
    let releases = user.run(&["releases", "-a", "queue-app"]).ok();
    assert!(releases.contains("Attach REDIS (@ref:redis-"), "{releases}");

    push_fixture(server, &key, "queue-app", "python-redis-queue");
    user.run(&["ps:scale", "worker=1", "-a", "queue-app"]).ok();
    wait_for_page(
        server,
        "queue-app",
        "/",
        "python-redis-queue",
        BUILD_DEADLINE,
    );
    for job in [3, 7] {
        let queued = wait_for_page(
            server,
            "queue-app",
            &format!("/jobs/{job}"),
            "queued",
            DEADLINE,
        );
        assert_eq!(queued.trim(), format!("queued job {job}"));
    }
    let result = wait_for_page(server, "queue-app", "/results/7", "49", DEADLINE);
    assert_eq!(result.trim(), "job 7 done by worker.1: 49");
    let result = wait_for_page(server, "queue-app", "/results/3", "9", DEADLINE);
    assert_eq!(result.trim(), "job 3 done by worker.1: 9");

    let listed = user.run(&["addons", "-a", "queue-app"]).ok();
    assert!(listed.contains("wharf-redis (redis-"), "{listed}");
    assert!(listed.contains("as REDIS"), "{listed}");
    assert!(!listed.contains("redis://"), "{listed}");

    // Destroying deletes the add-on's Redis user and keys.
    let url = vars["REDIS_URL"].as_str().unwrap();
    let redis_user = url["redis://".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    user.run(&[
        "addons:destroy",
        "REDIS",
        "-a",
        "queue-app",
        "--confirm",
        "queue-app",
    ])
    .ok();
    assert!(config(&user, "queue-app").get("REDIS_URL").is_none());
    let users = Command::new("redis-cli")
        .args(["-u", &setup.redis.admin_url, "ACL", "USERS"])
        .output()
        .unwrap();
    assert!(users.status.success());
    assert!(!String::from_utf8_lossy(&users.stdout).contains(&redis_user));
}

#[test]
fn a_release_phase_migrates_the_database_the_web_process_reads() {
    let data = tempfile::tempdir().unwrap();
    let setup = start(data.path());
    let server = &setup.server;
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "pg-app"]).ok();
    user.run(&["apps:create", "pg-other"]).ok();

    let created = user
        .run(&["addons:create", "heroku-postgresql", "-a", "pg-app"])
        .ok();
    assert!(created.contains("as DATABASE_URL"), "{created}");
    let other = user
        .run(&["addons:create", "heroku-postgresql", "-a", "pg-other"])
        .ok();
    assert!(other.contains("as DATABASE_URL"), "{other}");
    let url = config(&user, "pg-app")["DATABASE_URL"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_url = config(&user, "pg-other")["DATABASE_URL"]
        .as_str()
        .unwrap()
        .to_owned();
    // Dynos reach the private PostgreSQL at their network's gateway.
    for url in [&url, &other_url] {
        assert_eq!(
            host_and_port(url),
            (setup.gateway.clone(), setup.postgres.port)
        );
    }

    let output = push_fixture(server, &key, "pg-app", "python-postgres-release");
    assert!(output.contains("migration done"), "{output}");
    let page = wait_for_page(
        server,
        "pg-app",
        "/",
        "migrated by the release phase",
        BUILD_DEADLINE,
    );
    assert!(page.contains("python-postgres-release"), "{page}");

    // A dyno reaches the add-on server but cannot log in as its superuser without a password
    // (the server trusts only its own loopback; psql never prompts without a terminal).
    let superuser = format!(
        "postgres://postgres@{}:{}/postgres",
        setup.gateway, setup.postgres.port
    );
    let refused = run_in_dyno(
        server,
        &user,
        "pg-app",
        &format!("psql -w -Atc \"SELECT 'logged in'\" {superuser}"),
    );
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        !refused.stdout.lines().any(|line| line == "logged in"),
        "{refused:?}"
    );
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("no password supplied"), "{refused:?}");

    // One app's role cannot reach the other app's database.
    let (other_base, _) = other_url.rsplit_once('/').unwrap();
    let (_, database) = url.rsplit_once('/').unwrap();
    let crossed = psql(&format!("{other_base}/{database}"), "SELECT 1");
    assert!(
        crossed.is_err(),
        "pg-other's role connected to pg-app's database"
    );
    assert_eq!(
        psql(&url, "SELECT count(*) FROM greetings"),
        Ok("1".to_owned())
    );

    // Rotation: new credentials in a new release; the old ones stop once the dynos restarted.
    user.run(&[
        "pg:credentials:rotate",
        "-a",
        "pg-app",
        "--confirm",
        "pg-app",
    ])
    .ok();
    let rotated = config(&user, "pg-app")["DATABASE_URL"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, url);
    let until = Instant::now() + DEADLINE;
    while psql(&url, "SELECT 1").is_ok() {
        assert!(Instant::now() < until, "the old credentials still work");
        std::thread::sleep(Duration::from_millis(500));
    }
    let dynos = support::dynos(server, &key, "pg-app");
    let newest: serde_json::Value =
        serde_json::from_str(&user.run(&["releases:info", "--json", "-a", "pg-app"]).ok()).unwrap();
    let version = newest["version"].as_i64().unwrap();
    assert!(
        dynos.iter().all(|(_, _, release)| *release >= version),
        "revoked before the dynos restarted: {dynos:?}"
    );
    wait_for_page(
        server,
        "pg-app",
        "/",
        "migrated by the release phase",
        DEADLINE,
    );
    assert_eq!(
        psql(&rotated, "SELECT count(*) FROM greetings"),
        Ok("1".to_owned())
    );

    // Passwords stay out of listings and the app's log.
    let (status, listed) = http_json(
        &server.url,
        "GET",
        "/apps/pg-app/addons",
        &key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains("postgres://"), "{listed}");
    let logs = user.run(&["logs", "-a", "pg-app", "-n", "200"]).ok();
    let password = rotated
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert!(!logs.contains(password), "a password is in the log");

    // Destroying removes the config var in a release and drops the database.
    user.run(&[
        "addons:destroy",
        "DATABASE",
        "-a",
        "pg-app",
        "--confirm",
        "pg-app",
    ])
    .ok();
    assert!(config(&user, "pg-app").get("DATABASE_URL").is_none());
    let releases = user.run(&["releases", "-a", "pg-app"]).ok();
    assert!(
        releases.contains("Detach DATABASE (@ref:postgresql-"),
        "{releases}"
    );
    assert!(psql(&rotated, "SELECT 1").is_err());
    assert_eq!(
        psql(
            &setup.postgres.admin_url,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{database}'")
        ),
        Ok("0".to_owned())
    );
    user.run(&["apps:destroy", "pg-other", "--confirm", "pg-other"])
        .ok();
    assert!(psql(&other_url, "SELECT 1").is_err());
}

/// An add-on server that trusts the dyno network (any dyno could log in as `postgres`) is
/// said to be open, and no add-on is provisioned on it: the server's probe comes from the
/// gateway address, as a dyno's connection would.
#[test]
fn a_postgresql_trusting_the_dyno_network_gets_no_add_ons() {
    let data = tempfile::tempdir().unwrap();
    let (_, subnet) = support::dyno_network(data.path());
    let postgres = PrivatePostgres::start_with(&subnet, "trust");
    let server = Server::start_with(
        data.path(),
        &[("WHARF_ADDON_POSTGRES_ADMIN_URL", &postgres.admin_url)],
    );
    let admin = User::new(&server.url, Some(&server.admin_key()));
    let (status, services) = http_json(
        &server.url,
        "GET",
        "/addon-services",
        &server.admin_key(),
        &serde_json::Value::Null,
    );
    assert_eq!(status, 200, "{services}");
    let postgresql = services
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["name"] == "wharf-postgresql")
        .unwrap_or_else(|| panic!("{services}"));
    assert_eq!(postgresql["dyno_access"]["state"], "open", "{postgresql}");
    admin.run(&["apps:create", "trusting"]).ok();
    let refused = admin
        .run(&["addons:create", "heroku-postgresql", "-a", "trusting"])
        .failed();
    assert!(
        refused.contains("WHARF_ADDONS_ALLOW_OPEN_SERVERS"),
        "{refused}"
    );
    drop(server);
    drop(postgres);
}
