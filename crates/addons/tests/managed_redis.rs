//! Managed Redis add-ons against real `redis-server` processes on loopback (ports
//! 26400-26599, data in temporary directories; run as root, as the servers run as `redis`):
//! Heroku's URL works as Heroku apps use it, the app gets a whole server but not its admin
//! commands, add-ons are apart, plans' memory holds, data outlives kills and restarts,
//! credentials rotate in two steps, and no password shows in errors.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;
use wharf_addons::managed_redis::{
    server_key, server_resource, ManagedRedis, ManagedRedisSettings,
};
use wharf_addons::resp::{Connection, Reply};
use wharf_addons::{
    AddonConfig, AddonEvent, Plan, Provider, Provisioned, Refused, Resource, Supervisor,
};

/// How long a test waits for a server to come back or go away.
const PATIENCE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// A Wharf's worth of managed Redis: a supervisor and the provider over `root`.
struct Wharf {
    supervisor: Supervisor,
    provider: ManagedRedis,
    events: UnboundedReceiver<AddonEvent>,
    exits: Arc<Mutex<Vec<String>>>,
}

fn settings(root: &Path, ports: (u16, u16)) -> ManagedRedisSettings {
    ManagedRedisSettings {
        root: root.join("addons").join("redis"),
        listen: "127.0.0.1".parse().unwrap(),
        ports,
        redis_server: "/usr/bin/redis-server".into(),
        user: "redis".into(),
    }
}

impl Wharf {
    fn start(root: &Path, ports: (u16, u16)) -> Wharf {
        assert!(
            is_root(),
            "these tests run servers as the redis user and must run as root"
        );
        let exits = Arc::new(Mutex::new(Vec::new()));
        let seen = exits.clone();
        let supervisor = Supervisor::new(Arc::new(move |key: &str, _| {
            seen.lock().unwrap().push(key.to_owned());
        }))
        .unwrap();
        let (sender, events) = tokio::sync::mpsc::unbounded_channel();
        let provider =
            ManagedRedis::new(settings(root, ports), supervisor.clone(), sender).unwrap();
        Wharf {
            supervisor,
            provider,
            events,
            exits,
        }
    }

    fn plan(&self, name: &str) -> Plan {
        self.provider.service().plan(Some(name)).unwrap().clone()
    }

    async fn provision(&self, resource: Resource) -> Provisioned {
        self.provider
            .provision(resource, &self.plan("mini"), &AddonConfig::new())
            .await
            .unwrap()
    }

    fn pid(&self, resource: Resource) -> Option<u32> {
        self.supervisor.pid(&server_key(resource))
    }

    fn events(&mut self) -> Vec<AddonEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }
}

/// A temporary directory the `redis` user may pass through.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn resource() -> Resource {
    Resource { id: Uuid::new_v4() }
}

/// `(password, host:port)` of a URL in Heroku's shape, which has no user name.
fn url_parts(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("redis://:")
        .unwrap_or_else(|| panic!("not redis://:PASSWORD@...: {url}"));
    let (password, address) = rest.split_once('@').unwrap();
    (password.to_owned(), address.to_owned())
}

/// Logs in as ioredis 4 does: `AUTH <password>`.
async fn login(url: &str) -> anyhow::Result<Connection> {
    let (password, address) = url_parts(url);
    let mut connection = Connection::connect(&address).await?;
    connection.command(&["AUTH", &password]).await?;
    Ok(connection)
}

/// Logs in as Wharf's own user, with the password in its root-only file.
async fn login_admin(root: &Path, resource: Resource, address: &str) -> Connection {
    let password =
        std::fs::read_to_string(addon_dir(root, resource).join("admin.password")).unwrap();
    let mut connection = Connection::connect(address).await.unwrap();
    connection
        .command(&["AUTH", "wharf", password.trim()])
        .await
        .unwrap();
    connection
}

fn addon_dir(root: &Path, resource: Resource) -> PathBuf {
    root.join("addons/redis")
        .join(resource.id.simple().to_string())
}

fn text(reply: Reply) -> String {
    reply
        .text()
        .unwrap_or_else(|| panic!("not text: {reply:?}"))
}

fn integer(reply: Reply) -> i64 {
    match reply {
        Reply::Integer(value) => value,
        other => panic!("not an integer: {other:?}"),
    }
}

/// Polls `check` until it gives a value, for at most [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(POLL).await;
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn kill_hard(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `(uid of the process, its name)`.
fn process_owner(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn herokus_url_works_and_the_app_has_a_whole_server_but_no_admin_commands() {
    let root = data_dir();
    let wharf = Wharf::start(root.path(), (26400, 26409));
    let service = wharf.provider.service();
    assert_eq!(
        (
            service.name.as_str(),
            service.aliases.as_slice(),
            service.default_attachment.as_str(),
            service.attachment_prefix.as_str(),
            service.addon_name_prefix.as_str(),
        ),
        (
            "wharf-redis",
            &["heroku-redis".to_owned()][..],
            "REDIS",
            "HEROKU_REDIS",
            "redis"
        )
    );
    assert_eq!(service.plan(None).unwrap().name, "mini");
    assert_eq!(
        wharf.provider.dyno_port_range(),
        Some(("127.0.0.1".parse().unwrap(), 26400, 26409))
    );
    assert!(wharf.provider.dyno_server().is_none());

    let resource = resource();
    let started = Instant::now();
    let provisioned = wharf.provision(resource).await;
    eprintln!("provisioned in {:?}", started.elapsed());
    let url = &provisioned.config["URL"];
    assert_eq!(provisioned.config.len(), 1);
    let (password, address) = url_parts(url);
    assert_eq!(address, "127.0.0.1:26400");
    assert!(password.len() >= 32 && password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(!provisioned.state.to_string().contains(&password));

    let mut app = login(url).await.unwrap();
    let mut named = Connection::connect(&address).await.unwrap();
    named
        .command(&["AUTH", "default", &password])
        .await
        .unwrap();
    assert_eq!(
        text(app.command(&["ACL", "WHOAMI"]).await.unwrap()),
        "default"
    );
    assert!(text(app.command(&["INFO"]).await.unwrap()).contains("redis_version:"));
    app.command(&["SET", "zero", "0"]).await.unwrap();
    app.command(&["SELECT", "1"]).await.unwrap();
    app.command(&["SET", "one", "1"]).await.unwrap();
    let keys = app.command(&["KEYS", "*"]).await.unwrap();
    assert_eq!(
        keys,
        Reply::Array(Some(vec![Reply::Bulk(Some(b"one".to_vec()))]))
    );
    app.command(&["FLUSHDB"]).await.unwrap();
    assert_eq!(integer(app.command(&["DBSIZE"]).await.unwrap()), 0);
    app.command(&["SELECT", "0"]).await.unwrap();
    assert_eq!(integer(app.command(&["DBSIZE"]).await.unwrap()), 1);
    let script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    assert_eq!(
        integer(
            app.command(&["EVAL", script, "1", "zero", "5"])
                .await
                .unwrap()
        ),
        5
    );
    app.command(&["FLUSHALL"]).await.unwrap();
    app.command(&["CLIENT", "SETNAME", "worker-1"])
        .await
        .unwrap();
    assert!(text(app.command(&["CLIENT", "LIST"]).await.unwrap()).contains("name=worker-1"));
    // Pub/Sub: a subscriber gets what another connection publishes (its next reply).
    let mut subscriber = login(url).await.unwrap();
    subscriber.command(&["SUBSCRIBE", "jobs"]).await.unwrap();
    assert_eq!(
        integer(named.command(&["PUBLISH", "jobs", "hello"]).await.unwrap()),
        1
    );
    let message = subscriber.raw(&["PING"]).await.unwrap();
    assert_eq!(
        message,
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"message".to_vec())),
            Reply::Bulk(Some(b"jobs".to_vec())),
            Reply::Bulk(Some(b"hello".to_vec())),
        ]))
    );

    for denied in [
        &["CONFIG", "GET", "maxmemory"][..],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["DEBUG", "SLEEP", "0"],
        &["SHUTDOWN", "NOSAVE"],
        &["MODULE", "LIST"],
        &["ACL", "SETUSER", "default", "nopass"],
        &["ACL", "LIST"],
        &["REPLICAOF", "127.0.0.1", "6379"],
        &["SLAVEOF", "127.0.0.1", "6379"],
        &["MIGRATE", "127.0.0.1", "6379", "zero", "0", "1000"],
        &["BGSAVE"],
        &["BGREWRITEAOF"],
        &["SAVE"],
        &["FAILOVER"],
        &["SYNC"],
    ] {
        let reply = app.raw(denied).await.unwrap();
        assert!(
            matches!(&reply, Reply::Error(message) if message.starts_with("NOPERM") || message.contains("not allowed")),
            "{denied:?}: {reply:?}"
        );
    }
    assert_eq!(text(app.command(&["PING"]).await.unwrap()), "PONG");

    // The server runs as the redis user, with the plan's limits, only where it was told.
    let pid = wharf.pid(resource).unwrap();
    let dir = addon_dir(root.path(), resource);
    let data = std::fs::symlink_metadata(dir.join("data")).unwrap();
    assert_eq!(process_owner(pid), data.uid());
    assert_ne!(data.uid(), 0);
    assert_eq!(data.mode() & 0o777, 0o700);
    for secret in ["admin.password", "app.password"] {
        let metadata = std::fs::metadata(dir.join(secret)).unwrap();
        assert_eq!(
            (metadata.uid(), metadata.mode() & 0o777),
            (0, 0o600),
            "{secret}"
        );
    }
    let acl = std::fs::read_to_string(dir.join("users.acl")).unwrap();
    assert!(!acl.contains(&password), "a password in the ACL file");
    let mut admin = login_admin(root.path(), resource, &address).await;
    for (name, value) in [
        ("maxmemory", "26214400"),
        ("maxclients", "22"),
        ("maxmemory-policy", "noeviction"),
        ("bind", "127.0.0.1"),
        ("protected-mode", "yes"),
        ("appendonly", "yes"),
        ("appendfsync", "everysec"),
        ("save", ""),
    ] {
        let reply = admin.command(&["CONFIG", "GET", name]).await.unwrap();
        let Reply::Array(Some(pair)) = reply else {
            panic!("CONFIG GET {name}")
        };
        assert_eq!(pair[1].text().as_deref(), Some(value), "{name}");
    }

    let rows = wharf
        .provider
        .info(resource, &wharf.plan("mini"), &provisioned.state)
        .await
        .unwrap();
    let row = |label: &str| {
        rows.iter()
            .find(|(name, _)| name == label)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("no {label} in {rows:?}"))
    };
    assert_eq!(row("Plan"), "mini");
    assert_eq!(row("Status"), "available");
    assert!(row("Version").starts_with('7'), "{rows:?}");
    assert_eq!(row("Maxmemory policy"), "noeviction");
    assert!(row("Memory").ends_with("of 25 MB"), "{rows:?}");
    assert!(row("Clients").ends_with("of 20"), "{rows:?}");
    assert_eq!(row("Keys"), "0");
    assert_eq!(row("Port"), "26400");
    assert!(row("Persistence").contains("append-only"), "{rows:?}");
    assert!(!format!("{rows:?}").contains(&password));

    wharf
        .provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn add_ons_cannot_reach_each_other() {
    let root = data_dir();
    let wharf = Wharf::start(root.path(), (26410, 26419));
    let (a, b) = (resource(), resource());
    let provisioned_a = wharf.provision(a).await;
    let provisioned_b = wharf.provision(b).await;
    let (password_a, address_a) = url_parts(&provisioned_a.config["URL"]);
    let (password_b, address_b) = url_parts(&provisioned_b.config["URL"]);
    assert_ne!(address_a, address_b);
    assert_ne!(password_a, password_b);
    let mut app_b = login(&provisioned_b.config["URL"]).await.unwrap();
    app_b.command(&["SET", "secret", "b's"]).await.unwrap();
    // a's password at b's server, as `AUTH <password>` and as `default`.
    let mut intruder = Connection::connect(&address_b).await.unwrap();
    assert!(intruder.command(&["AUTH", &password_a]).await.is_err());
    assert!(intruder
        .command(&["AUTH", "default", &password_a])
        .await
        .is_err());
    assert!(intruder.command(&["GET", "secret"]).await.is_err());
    // a's own server has none of b's keys.
    let mut app_a = login(&provisioned_a.config["URL"]).await.unwrap();
    assert_eq!(
        app_a.command(&["GET", "secret"]).await.unwrap(),
        Reply::Bulk(None)
    );
    assert_eq!(integer(app_a.command(&["DBSIZE"]).await.unwrap()), 0);
    for (resource, provisioned) in [(a, provisioned_a), (b, provisioned_b)] {
        wharf
            .provider
            .deprovision(resource, &provisioned.state)
            .await
            .unwrap();
    }
}

/// Writes 64 KiB values under `prefix` until `count` are written or one is refused.
async fn fill(app: &mut Connection, prefix: &str, count: usize) -> Result<(), (usize, String)> {
    let value = "x".repeat(64 * 1024);
    for n in 0..count {
        if let Reply::Error(message) = app
            .raw(&["SET", &format!("{prefix}{n}"), &value])
            .await
            .unwrap()
        {
            return Err((n, message));
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_plans_memory_holds_and_a_policy_makes_room() {
    let root = data_dir();
    let wharf = Wharf::start(root.path(), (26420, 26429));
    let resource = resource();
    let provisioned = wharf.provision(resource).await;
    let url = &provisioned.config["URL"];
    let mut app = login(url).await.unwrap();
    // 25 MB hold fewer than 400 values of 64 KiB: noeviction refuses writes.
    let (written, message) = fill(&mut app, "a", 800).await.unwrap_err();
    assert!(message.starts_with("OOM"), "{message}");
    assert!(
        (100..400).contains(&written),
        "{written} values fit in 25 MB"
    );

    let plan = wharf.plan("mini");
    let refuse = |settings: &[(&str, &str)]| {
        let settings: AddonConfig = settings
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let provider = &wharf.provider;
        let (plan, state) = (&plan, &provisioned.state);
        async move {
            let error = provider
                .configure(resource, plan, state, &settings)
                .await
                .unwrap_err();
            error.downcast::<Refused>().unwrap().0
        }
    };
    let unknown = refuse(&[("maxmemory-policy", "lru-please")]).await;
    assert!(
        unknown.contains("allkeys-lru") && unknown.contains("volatile-ttl"),
        "{unknown}"
    );
    let other = refuse(&[("maxmemory", "1gb")]).await;
    assert!(other.contains("maxmemory-policy"), "{other}");

    let settings = AddonConfig::from([("maxmemory-policy".to_owned(), "allkeys-lru".to_owned())]);
    let state = wharf
        .provider
        .configure(resource, &plan, &provisioned.state, &settings)
        .await
        .unwrap();
    assert_eq!(state["maxmemory_policy"], "allkeys-lru");
    fill(&mut app, "b", 800).await.unwrap();
    let kept = integer(app.command(&["DBSIZE"]).await.unwrap());
    assert!(kept < 400, "{kept} keys kept: nothing was evicted");
    let rows = wharf.provider.info(resource, &plan, &state).await.unwrap();
    assert!(
        rows.contains(&("Maxmemory policy".to_owned(), "allkeys-lru".to_owned())),
        "{rows:?}"
    );

    // The policy outlives a restart by the supervisor (it is in the config file).
    let pid = wharf.pid(resource).unwrap();
    kill_hard(pid);
    let mut admin = eventually("the server is back", || async {
        let (_, address) = url_parts(url);
        let restarted = wharf.pid(resource).is_some_and(|new| new != pid);
        let password =
            std::fs::read_to_string(addon_dir(root.path(), resource).join("admin.password"))
                .ok()?;
        let mut connection = Connection::connect(&address).await.ok()?;
        connection
            .command(&["AUTH", "wharf", password.trim()])
            .await
            .ok()?;
        restarted.then_some(connection)
    })
    .await;
    let reply = admin
        .command(&["CONFIG", "GET", "maxmemory-policy"])
        .await
        .unwrap();
    assert_eq!(
        reply,
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"maxmemory-policy".to_vec())),
            Reply::Bulk(Some(b"allkeys-lru".to_vec())),
        ]))
    );
    wharf.provider.deprovision(resource, &state).await.unwrap();
}

/// Reads `count` keys `k<n>` back as `v<n>`.
async fn has_keys(url: &str, count: usize) -> Option<()> {
    let mut app = login(url).await.ok()?;
    for n in 0..count {
        let value = app.command(&["GET", &format!("k{n}")]).await.ok()?;
        if value.text() != Some(format!("v{n}")) {
            return None;
        }
    }
    Some(())
}

#[tokio::test]
async fn data_outlives_a_killed_server_and_a_restart_of_wharf() {
    let root = data_dir();
    let ports = (26430, 26439);
    let mut wharf = Wharf::start(root.path(), ports);
    let resource = resource();
    let provisioned = wharf.provision(resource).await;
    let url = provisioned.config["URL"].clone();
    let plan = wharf.plan("mini");
    let mut app = login(&url).await.unwrap();
    for n in 0..100 {
        app.command(&["SET", &format!("k{n}"), &format!("v{n}")])
            .await
            .unwrap();
    }
    drop(app);

    // Killed: the supervisor starts it again, with its data.
    let pid = wharf.pid(resource).unwrap();
    kill_hard(pid);
    eventually("a new server with the data", || async {
        let restarted = wharf.pid(resource).is_some_and(|new| new != pid);
        has_keys(&url, 100).await.filter(|_| restarted)
    })
    .await;
    assert_eq!(
        wharf.exits.lock().unwrap().as_slice(),
        [server_key(resource)]
    );
    assert_eq!(server_resource(&server_key(resource)), Some(resource));

    // Wharf stops cleanly and starts again: a new provider resumes the server.
    let pid = wharf.pid(resource).unwrap();
    wharf.provider.stop().await;
    assert!(!alive(pid));
    assert!(login(&url).await.is_err());
    assert!(wharf.events().is_empty());
    drop(wharf);
    let mut wharf = Wharf::start(root.path(), ports);
    wharf
        .provider
        .resume(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    assert!(has_keys(&url, 100).await.is_some(), "the data after resume");
    wharf
        .provider
        .revoke_previous(resource, &provisioned.state)
        .await
        .unwrap();
    assert!(wharf.events().is_empty(), "a clean stop was reported");

    // The server dies with no one to restart it (the machine stopped): resuming says so.
    let pid = wharf.pid(resource).unwrap();
    kill_hard(pid);
    drop(wharf);
    eventually("the killed server is gone", || async {
        (!alive(pid)).then_some(())
    })
    .await;
    let mut wharf = Wharf::start(root.path(), ports);
    wharf
        .provider
        .resume(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    assert!(
        has_keys(&url, 100).await.is_some(),
        "the data after a kill and resume"
    );
    let events = wharf.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].resource, events[0].source),
        (resource.id, "redis")
    );
    assert!(
        events[0].message.contains("without shutting down cleanly"),
        "{events:?}"
    );
    // Resuming what runs is harmless.
    wharf
        .provider
        .resume(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    wharf
        .provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn rotation_keeps_both_passwords_until_the_old_is_revoked() {
    let root = data_dir();
    let wharf = Wharf::start(root.path(), (26440, 26449));
    let resource = resource();
    let old = wharf.provision(resource).await;
    let mut old_session = login(&old.config["URL"]).await.unwrap();
    old_session
        .command(&["SET", "before", "rotation"])
        .await
        .unwrap();

    let new = wharf.provider.rotate(resource, &old.state).await.unwrap();
    assert_ne!(old.config["URL"], new.config["URL"]);
    assert_eq!(
        url_parts(&old.config["URL"]).1,
        url_parts(&new.config["URL"]).1
    );
    assert_eq!(new.state["generation"], 2);
    let mut new_session = login(&new.config["URL"]).await.unwrap();
    assert_eq!(
        text(new_session.command(&["GET", "before"]).await.unwrap()),
        "rotation"
    );
    login(&old.config["URL"]).await.unwrap();
    old_session.command(&["PING"]).await.unwrap();

    // Both survive a restart of the server before the revocation.
    let pid = wharf.pid(resource).unwrap();
    kill_hard(pid);
    eventually("the server is back with both passwords", || async {
        let restarted = wharf.pid(resource).is_some_and(|new| new != pid);
        login(&old.config["URL"]).await.ok()?;
        login(&new.config["URL"]).await.ok()?;
        restarted.then_some(())
    })
    .await;
    let mut old_session = login(&old.config["URL"]).await.unwrap();

    wharf
        .provider
        .revoke_previous(resource, &new.state)
        .await
        .unwrap();
    let Err(refused) = login(&old.config["URL"]).await else {
        panic!("the old password still logs in")
    };
    assert!(format!("{refused:#}").contains("WRONGPASS"), "{refused:#}");
    assert!(
        old_session.command(&["GET", "before"]).await.is_err(),
        "an old session survived"
    );
    let mut new_session = login(&new.config["URL"]).await.unwrap();
    new_session
        .command(&["SET", "after", "rotation"])
        .await
        .unwrap();

    // Nothing left to revoke: the call changes nothing and closes no connection.
    wharf
        .provider
        .revoke_previous(resource, &new.state)
        .await
        .unwrap();
    assert_eq!(
        text(new_session.command(&["GET", "after"]).await.unwrap()),
        "rotation"
    );

    // The revocation outlives a restart.
    let pid = wharf.pid(resource).unwrap();
    kill_hard(pid);
    eventually("the server is back with the new password alone", || async {
        let restarted = wharf.pid(resource).is_some_and(|new| new != pid);
        login(&new.config["URL"]).await.ok()?;
        restarted.then_some(())
    })
    .await;
    assert!(login(&old.config["URL"]).await.is_err());
    wharf
        .provider
        .deprovision(resource, &new.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn deprovisioning_removes_the_server_and_its_directory() {
    let root = data_dir();
    let wharf = Wharf::start(root.path(), (26450, 26459));
    let resource = resource();
    let provisioned = wharf.provision(resource).await;
    let mut app = login(&provisioned.config["URL"]).await.unwrap();
    app.command(&["SET", "doomed", "data"]).await.unwrap();
    let pid = wharf.pid(resource).unwrap();
    wharf
        .provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
    assert!(!alive(pid));
    assert!(!wharf.supervisor.supervises(&server_key(resource)));
    assert!(app.command(&["GET", "doomed"]).await.is_err());
    assert!(login(&provisioned.config["URL"]).await.is_err());
    assert!(!addon_dir(root.path(), resource).exists());
    wharf
        .provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
    // Its port is free for the next add-on.
    let next = Resource { id: Uuid::new_v4() };
    let again = wharf.provision(next).await;
    assert_eq!(
        url_parts(&again.config["URL"]).1,
        url_parts(&provisioned.config["URL"]).1
    );
    assert!(login(&again.config["URL"]).await.is_ok());
    wharf
        .provider
        .deprovision(next, &again.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn provisioning_again_finds_the_same_server_and_data() {
    let root = data_dir();
    let wharf = Wharf::start(root.path(), (26460, 26469));
    let resource = resource();
    let first = wharf.provision(resource).await;
    login(&first.config["URL"])
        .await
        .unwrap()
        .command(&["SET", "kept", "yes"])
        .await
        .unwrap();
    let second = wharf.provision(resource).await;
    assert_eq!(first, second);
    // As after a crash between starting the server and storing the add-on.
    wharf
        .supervisor
        .stop(&server_key(resource), Duration::from_secs(10))
        .await
        .unwrap();
    let third = wharf.provision(resource).await;
    assert_eq!(first, third);
    let mut app = login(&third.config["URL"]).await.unwrap();
    assert_eq!(text(app.command(&["GET", "kept"]).await.unwrap()), "yes");
    wharf
        .provider
        .deprovision(resource, &third.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn no_password_shows_in_errors_logs_or_state() {
    let root = data_dir();
    let wharf = Wharf::start(root.path(), (26470, 26479));
    let resource = resource();
    let plan = wharf.plan("mini");
    let provisioned = wharf.provision(resource).await;
    let rotated = wharf
        .provider
        .rotate(resource, &provisioned.state)
        .await
        .unwrap();
    let dir = addon_dir(root.path(), resource);
    let admin = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let secrets = [
        url_parts(&provisioned.config["URL"]).0,
        url_parts(&rotated.config["URL"]).0,
        admin.trim().to_owned(),
    ];
    let check = |what: &str, text: &str| {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a password in {what}: {text}"
            );
        }
    };
    check("the state", &rotated.state.to_string());

    // A stopped server: calls that need it fail, saying why without a password.
    wharf
        .supervisor
        .stop(&server_key(resource), Duration::from_secs(10))
        .await
        .unwrap();
    let settings = AddonConfig::from([("maxmemory-policy".to_owned(), "volatile-lru".to_owned())]);
    let mut errors = vec![
        wharf
            .provider
            .rotate(resource, &rotated.state)
            .await
            .unwrap_err(),
        wharf
            .provider
            .revoke_previous(resource, &rotated.state)
            .await
            .unwrap_err(),
        wharf
            .provider
            .configure(resource, &plan, &rotated.state, &settings)
            .await
            .unwrap_err(),
    ];
    let refused = format!("{:#}", errors[0]);
    assert!(refused.contains("Connection refused"), "{refused}");
    let rows = wharf
        .provider
        .info(resource, &plan, &rotated.state)
        .await
        .unwrap();
    assert!(
        rows.contains(&("Status".to_owned(), "stopped".to_owned())),
        "{rows:?}"
    );
    check("info", &format!("{rows:?}"));
    // A server logging in with a wrong admin password.
    wharf
        .provider
        .resume(resource, &plan, &rotated.state)
        .await
        .unwrap();
    let (_, address) = url_parts(&rotated.config["URL"]);
    let mut app = login(&rotated.config["URL"]).await.unwrap();
    let wrong = app
        .command(&["AUTH", "wharf", &secrets[0]])
        .await
        .unwrap_err();
    errors.push(wrong);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(log.contains("Ready to accept connections"), "{log}");
    check("the server's log", &log);
    for file in ["redis.conf", "users.acl"] {
        check(file, &std::fs::read_to_string(dir.join(file)).unwrap());
    }
    // A removed add-on.
    wharf
        .provider
        .deprovision(resource, &rotated.state)
        .await
        .unwrap();
    errors.push(
        wharf
            .provider
            .rotate(resource, &rotated.state)
            .await
            .unwrap_err(),
    );
    errors.push(
        wharf
            .provider
            .info(resource, &plan, &rotated.state)
            .await
            .unwrap_err(),
    );
    errors.push(
        wharf
            .provider
            .resume(resource, &plan, &rotated.state)
            .await
            .unwrap_err(),
    );
    for error in &errors {
        check("an error", &format!("{error:#} {error:?}"));
    }
    assert!(Connection::connect(&address).await.is_err());
}

#[tokio::test]
async fn a_full_disk_is_reported_and_refuses_writes() {
    let root = data_dir();
    // A 4 MB file system for the add-ons' data, unmounted however the test ends.
    struct Mount(PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let mount = Mount(root.path().join("addons"));
    std::fs::create_dir(&mount.0).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs"])
        .arg(&mount.0)
        .status()
        .unwrap();
    assert!(status.success(), "mount a tmpfs");
    let mut wharf = Wharf::start(root.path(), (26480, 26489));
    let resource = resource();
    let plan = wharf.plan("mini");
    let provisioned = wharf.provision(resource).await;
    let mut app = login(&provisioned.config["URL"]).await.unwrap();
    // 200 values of 64 KiB fit in the plan's memory, not on the disk.
    let (_, refusal) = fill(&mut app, "k", 200).await.unwrap_err();
    assert!(refusal.starts_with("MISCONF"), "{refusal}");
    let rows = wharf
        .provider
        .info(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    let persistence = rows
        .iter()
        .find(|(label, _)| label == "Persistence")
        .unwrap();
    assert!(persistence.1.contains("MISCONF"), "{rows:?}");
    // Reported once.
    wharf
        .provider
        .info(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    let events = wharf.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].message.contains("disk"), "{events:?}");
    wharf
        .provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_redis_server_or_user_is_named() {
    let root = data_dir();
    let supervisor = Supervisor::new(Arc::new(|_: &str, _| {})).unwrap();
    let (sender, _events) = tokio::sync::mpsc::unbounded_channel();
    let attempt = |settings: ManagedRedisSettings| match ManagedRedis::new(
        settings,
        supervisor.clone(),
        sender.clone(),
    ) {
        Ok(_) => panic!("accepted"),
        Err(error) => format!("{error:#}"),
    };
    let mut missing_program = settings(root.path(), (26490, 26499));
    missing_program.redis_server = "/nonexistent/redis-server".into();
    let message = attempt(missing_program);
    assert!(message.contains("Debian package redis-server"), "{message}");
    let mut missing_user = settings(root.path(), (26490, 26499));
    missing_user.user = "no-such-wharf-user".into();
    let message = attempt(missing_user);
    assert!(
        message.contains("no-such-wharf-user") && message.contains("does not exist"),
        "{message}"
    );
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let message = attempt(settings(closed.path(), (26490, 26499)));
    assert!(message.contains("cannot pass through"), "{message}");
    let open = data_dir();
    let open_root = settings(open.path(), (26490, 26499)).root;
    std::fs::create_dir_all(&open_root).unwrap();
    std::fs::set_permissions(&open_root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let message = attempt(settings(open.path(), (26490, 26499)));
    assert!(message.contains("nobody else may write"), "{message}");
    let message = attempt(settings(root.path(), (26499, 26490)));
    assert!(message.contains("WHARF_ADDON_REDIS_PORTS"), "{message}");
}

#[tokio::test]
async fn an_ipv6_address_is_bracketed_in_the_url() {
    let root = data_dir();
    let exits = Arc::new(|_: &str, _| {});
    let supervisor = Supervisor::new(exits).unwrap();
    let (sender, _events) = tokio::sync::mpsc::unbounded_channel();
    let mut settings = settings(root.path(), (26500, 26509));
    settings.listen = "::1".parse().unwrap();
    let provider = ManagedRedis::new(settings, supervisor, sender).unwrap();
    let resource = resource();
    let plan = provider.service().plan(None).unwrap().clone();
    let provisioned = provider
        .provision(resource, &plan, &AddonConfig::new())
        .await
        .unwrap();
    let (_, address) = url_parts(&provisioned.config["URL"]);
    assert_eq!(address, "[::1]:26500");
    let mut app = login(&provisioned.config["URL"]).await.unwrap();
    assert_eq!(text(app.command(&["PING"]).await.unwrap()), "PONG");
    // Only where it was told: not on IPv4 loopback.
    assert!(Connection::connect("127.0.0.1:26500").await.is_err());
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}
