//! End to end: the real `wharf server`, driven by the real `wharf` CLI, as users would.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;
use support::{http_json, Server, User};

/// Records a slug with these process types and releases it, through the API.
fn deploy_process_types(server: &Server, key: &str, app: &str, types: serde_json::Value) {
    let (status, slug) = http_json(
        &server.url,
        "POST",
        &format!("/apps/{app}/slugs"),
        key,
        &json!({ "process_types": types, "commit": "0123456789abcdef" }),
    );
    assert_eq!(status, 201, "{slug}");
    let (status, release) = http_json(
        &server.url,
        "POST",
        &format!("/apps/{app}/releases"),
        key,
        &json!({ "slug": slug["id"] }),
    );
    assert_eq!(status, 201, "{release}");
}

#[test]
fn the_cli_drives_apps_config_releases_and_scaling() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    assert!(
        server
            .stdout
            .iter()
            .any(|l| l.contains("created the admin account admin@localhost")),
        "a fresh server says it created the admin: {:?}",
        server.stdout
    );
    let key_file = data.path().join("admin-api-key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = server.admin_key();

    // Logging in writes ~/.netrc; later commands need no key in the environment.
    let admin = User::new(&server.url, None);
    admin.run(&["auth:whoami"]).failed();
    let login = admin
        .run(&["login", "--email", "admin@localhost", "--api-key", &key])
        .ok();
    assert!(login.contains("Logged in as admin@localhost"), "{login}");
    let netrc = std::fs::read_to_string(admin.home.path().join(".netrc")).unwrap();
    assert!(netrc.contains(&key), "{netrc}");
    assert_eq!(admin.run(&["auth:whoami"]).ok().trim(), "admin@localhost");

    let created = admin.run(&["apps:create", "myapp"]).ok();
    assert!(created.contains("Creating ⬢ myapp... done"), "{created}");
    assert!(
        created.contains(&format!("{}/myapp.git", server.url)),
        "{created}"
    );
    let taken = admin.run(&["apps:create", "myapp"]).failed();
    assert!(taken.contains("Name myapp is already taken"), "{taken}");
    let invalid = admin.run(&["apps:create", "My_App"]).failed();
    assert!(invalid.contains("lowercase"), "{invalid}");

    let set = admin
        .run(&["config:set", "A=1", "URL=postgres://x?a=b", "-a", "myapp"])
        .ok();
    assert!(set.contains("done, v2"), "{set}");
    assert_eq!(
        admin.run(&["config:get", "URL", "-a", "myapp"]).ok().trim(),
        "postgres://x?a=b"
    );
    let unset = admin.run(&["config:unset", "A", "-a", "myapp"]).ok();
    assert!(unset.contains("done, v3"), "{unset}");
    let config: serde_json::Value =
        serde_json::from_str(&admin.run(&["config", "--json", "-a", "myapp"]).ok()).unwrap();
    assert_eq!(config, json!({"URL": "postgres://x?a=b"}));
    let bad = admin
        .run(&["config:set", "BAD-KEY=1", "-a", "myapp"])
        .failed();
    assert!(bad.contains("BAD-KEY"), "{bad}");

    let releases = admin.run(&["releases", "-a", "myapp"]).ok();
    assert!(releases.contains("Current: v3"), "{releases}");
    for line in [
        "v3  Remove A config vars",
        "v2  Set A, URL config vars",
        "v1  Initial release",
    ] {
        assert!(releases.contains(line), "{line:?} in {releases}");
    }
    let rollback = admin.run(&["rollback", "v2", "-a", "myapp"]).ok();
    assert!(rollback.contains("to v2... done, v4"), "{rollback}");
    assert_eq!(
        admin.run(&["config:get", "A", "-a", "myapp"]).ok().trim(),
        "1"
    );
    let info = admin.run(&["releases:info", "v4", "-a", "myapp"]).ok();
    assert!(info.contains("Rollback to v2"), "{info}");

    // Scaling needs process types: release a slug that defines them.
    let refused = admin.run(&["ps:scale", "web=2", "-a", "myapp"]).failed();
    assert!(refused.contains("no process types"), "{refused}");
    deploy_process_types(
        &server,
        &key,
        "myapp",
        json!({"web": "serve", "worker": "work"}),
    );
    let scaled = admin
        .run(&["ps:scale", "web=2", "worker+1", "-a", "myapp"])
        .ok();
    assert!(
        scaled.contains("now running web at 2:Basic, worker at 1:Basic"),
        "{scaled}"
    );
    let resized = admin
        .run(&["ps:scale", "worker=3:standard-2x", "-a", "myapp"])
        .ok();
    assert!(resized.contains("worker at 3:Standard-2X"), "{resized}");
    let unknown = admin.run(&["ps:scale", "clock=1", "-a", "myapp"]).failed();
    assert!(
        unknown.contains("this app's process types are web, worker"),
        "{unknown}"
    );
    let formation = admin.run(&["ps:scale", "-a", "myapp"]).ok();
    assert!(formation.contains("web=2:Basic"), "{formation}");
    assert!(formation.contains("worker=3:Standard-2X"), "{formation}");

    let on = admin.run(&["maintenance:on", "-a", "myapp"]).ok();
    assert!(on.contains("Enabling maintenance mode"), "{on}");
    assert_eq!(admin.run(&["maintenance", "-a", "myapp"]).ok().trim(), "on");

    // A second user sees nothing of the admin's app until given access.
    let created = admin
        .run(&["users:create", "alice@example.com", "--json"])
        .ok();
    let alice_key = serde_json::from_str::<serde_json::Value>(&created).unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = User::new(&server.url, Some(&alice_key));
    assert_eq!(alice.run(&["auth:whoami"]).ok().trim(), "alice@example.com");
    let hidden = alice.run(&["config", "-a", "myapp"]).failed();
    assert!(hidden.contains("Couldn't find that app."), "{hidden}");
    assert!(alice.run(&["apps"]).ok().contains("You have no apps."));
    let denied = alice.run(&["users:create", "mallory@example.com"]).failed();
    assert!(denied.contains("Only admins"), "{denied}");

    admin
        .run(&["access:add", "alice@example.com", "-a", "myapp"])
        .ok();
    let access = admin.run(&["access", "-a", "myapp"]).ok();
    assert!(
        access.contains("alice@example.com") && access.contains("collaborator"),
        "{access}"
    );
    assert_eq!(
        alice.run(&["config:get", "URL", "-a", "myapp"]).ok().trim(),
        "postgres://x?a=b"
    );
    let collaborated = alice.run(&["apps"]).ok();
    assert!(collaborated.contains("myapp"), "{collaborated}");
    let not_owner = alice
        .run(&["apps:destroy", "myapp", "--confirm", "myapp"])
        .failed();
    assert!(not_owner.contains("Only the owner"), "{not_owner}");
    admin
        .run(&["access:remove", "alice@example.com", "-a", "myapp"])
        .ok();
    alice.run(&["config", "-a", "myapp"]).failed();

    let destroyed = admin
        .run(&["apps:destroy", "myapp", "--confirm", "myapp"])
        .ok();
    assert!(destroyed.contains("Destroying ⬢ myapp"), "{destroyed}");
    assert!(admin
        .run(&["apps:info", "-a", "myapp"])
        .failed()
        .contains("Couldn't find that app."));
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "durable"]).ok();
    user.run(&["config:set", "SECRET=kept", "-a", "durable"])
        .ok();
    user.run(&["rollback", "v1", "-a", "durable"]).ok();
    user.run(&["config:set", "LAST=write", "-a", "durable"])
        .ok();
    server.kill();

    let server = Server::start(data.path());
    assert_eq!(server.admin_key(), key, "a restart keeps the admin's key");
    assert!(
        !server
            .stdout
            .iter()
            .any(|l| l.contains("created the admin")),
        "a restart creates no second admin"
    );
    let user = User::new(&server.url, Some(&key));
    let config: serde_json::Value =
        serde_json::from_str(&user.run(&["config", "--json", "-a", "durable"]).ok()).unwrap();
    assert_eq!(config, json!({"LAST": "write"}));
    let releases = user.run(&["releases", "-a", "durable"]).ok();
    assert!(releases.contains("Current: v4"), "{releases}");
    assert!(releases.contains("v3  Rollback to v1"), "{releases}");
}

#[test]
fn the_server_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_server_on_postgresql_keeps_the_same_contract() {
    use std::process::Command;
    let admin_url = std::env::var("WHARF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let database = format!("wharf_e2e_{}", std::process::id());
    let psql = |sql: &str| {
        let status = Command::new("psql")
            .args([admin_url.as_str(), "-qAtc", sql])
            .status()
            .expect("run psql (scripts/test installs it)");
        assert!(status.success(), "psql {sql}");
    };
    psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {database}"));
    let (base, _) = admin_url.rsplit_once('/').expect("a URL with a database");
    let url = format!("{base}/{database}");

    let data = tempfile::tempdir().unwrap();
    // A dyno network of its own, as the harness gives every server.
    let (network_name, dyno_network) = support::dyno_network(data.path());
    // Spawned as every test server is (free ports, a clean stop that leaves nothing), with
    // the database on PostgreSQL.
    let mut child = support::server_command(data.path(), &network_name, &dyno_network)
        .args(["--database-url", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let api_url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("wharf: API listening on ")
                .map(str::to_owned)
        })
        .expect("the server says where it listens");
    let key = std::fs::read_to_string(data.path().join("admin-api-key")).unwrap();
    let user = User::new(&api_url, Some(key.trim()));
    user.run(&["apps:create", "on-postgres"]).ok();
    let set = user
        .run(&["config:set", "WHERE=postgres", "-a", "on-postgres"])
        .ok();
    assert!(set.contains("done, v2"), "{set}");
    assert_eq!(
        user.run(&["config:get", "WHERE", "-a", "on-postgres"])
            .ok()
            .trim(),
        "postgres"
    );
    // A clean stop: the server removes its network and unmounts its disk pool.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
    psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (network_name, dyno_network) = support::dyno_network(data.path());
    let second = support::server_command(data.path(), &network_name, &dyno_network)
        .output()
        .unwrap();
    assert!(!second.status.success(), "{second:?}");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another wharf server (process ")
            && said.contains("is running on the data dir"),
        "{said}"
    );
    // The first one is untouched: it still answers, and stops cleanly.
    let (status, _) = http_json(&server.url, "GET", "/health", "", &json!({}));
    assert_eq!(status, 200);
    assert!(server.terminate(Duration::from_secs(30)).success());
    // Once it is gone, the data dir is free again, a `kill -9` included.
    let again = Server::start(data.path());
    again.kill();
    let last = Server::start(data.path());
    assert!(last.terminate(Duration::from_secs(30)).success());
}
