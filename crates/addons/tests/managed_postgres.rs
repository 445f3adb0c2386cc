//! The PostgreSQL cluster Wharf runs itself, with real PostgreSQL binaries on loopback test
//! ports: it starts fresh and again with its data (after a stop, after Wharf dies, after its
//! postmaster is killed), asks every app for a password, and enforces the plans (connections,
//! storage with writes revoked so that the app cannot take them back) and keeps backups
//! that capture, reset, restore and retention work with.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;
use wharf_addons::exposure::{self, DynoAccess};
use wharf_addons::managed_postgres::{self, ClusterSettings, SUPERVISOR_KEY};
use wharf_addons::postgres::{installed_bin_dir, PostgresProvider};
use wharf_addons::{
    AddonConfig, AddonEvent, DynoNetwork, Limits, Plan, Provider, Provisioned, Refused, Resource,
    Supervisor,
};

/// The cluster most tests share, kept in the target dir between runs (a start finds it).
const SHARED_PORT: u16 = 25432;
/// A cluster made, stopped and restarted by one test.
const RESTART_PORT: u16 = 25433;
/// How long a test waits for a restarted server.
const RESTART_WAIT: Duration = Duration::from_secs(90);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Cluster {
    provider: Arc<PostgresProvider>,
    root: PathBuf,
    port: u16,
    events: Mutex<(UnboundedReceiver<AddonEvent>, Vec<AddonEvent>)>,
}

static SHARED: tokio::sync::OnceCell<Cluster> = tokio::sync::OnceCell::const_new();

fn settings(root: &Path, port: u16) -> ClusterSettings {
    ClusterSettings {
        root: root.to_owned(),
        listen: LOOPBACK,
        port,
        bin_dir: None,
        user: "postgres".into(),
    }
}

fn supervisor() -> Supervisor {
    Supervisor::new(Arc::new(|_: &str, _| {})).unwrap()
}

async fn shared() -> &'static Cluster {
    SHARED
        .get_or_init(|| async {
            let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("managed-postgres-shared");
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            let started = Instant::now();
            let provider =
                managed_postgres::start(settings(&root, SHARED_PORT), supervisor(), sender)
                    .await
                    .unwrap();
            eprintln!("shared cluster up in {:?}", started.elapsed());
            Cluster {
                provider: Arc::new(provider),
                root,
                port: SHARED_PORT,
                events: Mutex::new((receiver, Vec::new())),
            }
        })
        .await
}

impl Cluster {
    /// The cluster's superuser over its socket, in `database`.
    async fn admin(&self, database: &str) -> PgConnection {
        admin_connection(&self.root, self.port, database).await
    }

    /// The events about `resource` so far (taken).
    fn events(&self, resource: Resource) -> Vec<String> {
        let mut events = self.events.lock().unwrap();
        let (receiver, seen) = &mut *events;
        while let Ok(event) = receiver.try_recv() {
            seen.push(event);
        }
        let (mine, others) = std::mem::take(seen)
            .into_iter()
            .partition(|event| event.resource == resource.id);
        *seen = others;
        mine.into_iter()
            .map(|event: AddonEvent| {
                assert_eq!(event.source, "postgres");
                event.message
            })
            .collect()
    }
}

async fn admin_connection(root: &Path, port: u16, database: &str) -> PgConnection {
    PgConnectOptions::new_without_pgpass()
        .socket(root.join("run"))
        .port(port)
        .username("postgres")
        .database(database)
        .disable_statement_logging()
        .connect()
        .await
        .unwrap()
}

fn resource() -> Resource {
    Resource { id: Uuid::new_v4() }
}

fn plan(provider: &PostgresProvider, name: &str) -> Plan {
    provider.service().plan(Some(name)).unwrap().clone()
}

/// A plan of the tests' own, with `limits`.
fn test_plan(limits: Limits) -> Plan {
    Plan {
        name: "test".into(),
        description: "a plan of the tests".into(),
        default: false,
        limits,
    }
}

async fn provision(provider: &PostgresProvider, resource: Resource, plan: &Plan) -> Provisioned {
    provider
        .provision(resource, plan, &AddonConfig::new())
        .await
        .unwrap()
}

async fn app(provisioned: &Provisioned) -> anyhow::Result<PgConnection> {
    Ok(PgConnection::connect(&provisioned.config["URL"]).await?)
}

async fn run(connection: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(sql).execute(&mut *connection).await?;
    Ok(())
}

async fn count(connection: &mut PgConnection, table: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *connection)
        .await?)
}

fn refusal(error: &anyhow::Error) -> String {
    error
        .downcast_ref::<Refused>()
        .unwrap_or_else(|| panic!("not a refusal: {error:#}"))
        .0
        .clone()
}

/// `url` with another password.
fn with_password(url: &str, password: &str) -> String {
    let (scheme_user, rest) = url.split_once(':').unwrap();
    let (user_part, after) = rest.rsplit_once('@').unwrap();
    let user = user_part.split(':').next().unwrap();
    format!("{scheme_user}:{user}:{password}@{after}")
}

/// `url` naming another database.
fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{database}")
}

#[tokio::test]
async fn apps_get_working_urls_and_nothing_without_a_password() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let resource = resource();
    let started = Instant::now();
    let provisioned = provision(provider, resource, &plan(provider, "mini")).await;
    eprintln!("provisioned in {:?}", started.elapsed());
    let url = &provisioned.config["URL"];
    let base = resource.base_name();
    assert!(
        url.starts_with(&format!("postgres://{base}_1:"))
            && url.ends_with(&format!("@127.0.0.1:{SHARED_PORT}/{base}")),
        "{}",
        url.replace(&support_password(url), "***")
    );
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "CREATE TABLE greetings (text TEXT); INSERT INTO greetings VALUES ('hello')",
    )
    .await
    .unwrap();
    assert_eq!(count(&mut connection, "greetings").await.unwrap(), 1);

    let wrong = PgConnection::connect(&with_password(url, "not-the-password"))
        .await
        .err()
        .unwrap();
    assert!(
        wrong.to_string().contains("password authentication failed"),
        "{wrong}"
    );
    let superuser = PgConnection::connect(&format!(
        "postgres://postgres@127.0.0.1:{SHARED_PORT}/postgres"
    ))
    .await;
    assert!(
        superuser.is_err(),
        "the superuser got in over TCP without a password"
    );
    let report = exposure::probe(
        provider.dyno_server().unwrap(),
        &DynoNetwork {
            gateway: Ipv4Addr::LOCALHOST,
            subnet: (Ipv4Addr::new(127, 0, 0, 0), 8),
        },
    )
    .await;
    assert_eq!(
        report.access,
        DynoAccess::PasswordRequired,
        "{}",
        report.message
    );
    for database in ["postgres", "template1"] {
        let elsewhere = PgConnection::connect(&with_database(url, database))
            .await
            .err()
            .unwrap();
        assert!(
            elsewhere
                .to_string()
                .contains("permission denied for database"),
            "{elsewhere}"
        );
    }
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

fn support_password(url: &str) -> String {
    let userinfo = url.split("://").nth(1).unwrap().split('@').next().unwrap();
    userinfo.split(':').nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn connections_beyond_the_plan_are_refused() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let resource = resource();
    let plan = test_plan(Limits {
        connections: Some(3),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app(&provisioned).await.unwrap());
    }
    let refused = app(&provisioned).await.err().unwrap();
    assert!(
        refused.to_string().contains("too many connections"),
        "{refused}"
    );
    // The app owns its database and may raise the database's limit: its role's still holds,
    // and the next check puts the database's back.
    run(
        &mut open[0],
        &format!(
            "ALTER DATABASE {} CONNECTION LIMIT -1",
            resource.base_name()
        ),
    )
    .await
    .unwrap();
    let refused = app(&provisioned).await.err().unwrap();
    assert!(
        refused.to_string().contains("too many connections"),
        "{refused}"
    );
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    // Wharf's own sessions do not count.
    let mut admin = cluster.admin(&resource.base_name()).await;
    let limit: i32 = sqlx::query_scalar("SELECT datconnlimit FROM pg_database WHERE datname = $1")
        .bind(resource.base_name())
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(limit, 3);
    // A rotation's new role has the same limit.
    let rotated = provider.rotate(resource, &provisioned.state).await.unwrap();
    let limit: i32 = sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
        .bind(format!("{}_2", resource.base_name()))
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(limit, 3);
    drop(open);
    drop(admin);
    provider
        .deprovision(resource, &rotated.state)
        .await
        .unwrap();
}

/// What an app whose writes are revoked could change: rows of its tables, large objects,
/// tables.
async fn contents(connection: &mut PgConnection) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT ARRAY[(SELECT count(*) FROM big), (SELECT count(*) FROM mine), \
         (SELECT count(*) FROM pg_largeobject_metadata), \
         (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)]",
    )
    .fetch_one(connection)
    .await
    .unwrap()
}

#[tokio::test]
async fn writes_are_revoked_over_the_storage_limit_and_restored_under_it() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let resource = resource();
    let owner = resource.base_name();
    let login = format!("{owner}_1");
    // An empty database takes about 7.5 MB.
    let plan = test_plan(Limits {
        storage_mb: Some(10),
        connections: Some(20),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        &format!(
            "CREATE TABLE big (id INT PRIMARY KEY, v TEXT);
             INSERT INTO big SELECT i, repeat(md5(i::text), 30) FROM generate_series(1, 6000) i;
             CREATE FUNCTION sneaky() RETURNS void SECURITY DEFINER LANGUAGE sql
                 AS 'INSERT INTO big VALUES (-3, ''through the owner'')';
             GRANT INSERT, UPDATE ON big TO PUBLIC;
             GRANT INSERT, UPDATE ON big TO {login};
             GRANT CREATE ON SCHEMA public TO PUBLIC;
             SET ROLE NONE;
             CREATE TABLE mine (x INT);
             SET ROLE {owner};"
        ),
    )
    .await
    .unwrap();
    let mine: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'mine'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert_eq!(mine, login, "the login role owns a table of its own");
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    let events = cluster.events(resource);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains("over the test plan's storage limit")
            && events[0].contains("INSERT, UPDATE and CREATE are revoked"),
        "{events:?}"
    );
    assert!(
        count(&mut connection, "big").await.is_err(),
        "a session from before the revocation survived"
    );

    let mut connection = app(&provisioned).await.unwrap();
    assert_eq!(count(&mut connection, "big").await.unwrap(), 6000);
    for (attempt, sql) in [
        ("insert", "INSERT INTO big VALUES (-1, 'more')".to_owned()),
        (
            "update",
            "UPDATE big SET v = 'changed' WHERE id = 1".to_owned(),
        ),
        ("create a table", "CREATE TABLE more (x INT)".to_owned()),
        (
            "create a temporary table",
            "CREATE TEMP TABLE more (x INT)".to_owned(),
        ),
        ("grant itself", format!("GRANT INSERT ON big TO {login}")),
        (
            "grant the public",
            "GRANT INSERT ON big TO PUBLIC".to_owned(),
        ),
        ("become the owner", format!("SET ROLE {owner}")),
        (
            "turn read-only off",
            "SET default_transaction_read_only = off; INSERT INTO big VALUES (-1, 'more')"
                .to_owned(),
        ),
        ("write through a definer", "SELECT sneaky()".to_owned()),
        (
            "write its own table",
            "INSERT INTO mine VALUES (1)".to_owned(),
        ),
        (
            "grant itself its own table",
            format!("GRANT ALL ON mine TO {login}; INSERT INTO mine VALUES (1)"),
        ),
        (
            "write a large object",
            "SELECT lo_from_bytea(0, 'x')".to_owned(),
        ),
        (
            "raise its connection limit",
            format!("ALTER DATABASE {owner} CONNECTION LIMIT -1"),
        ),
        (
            "act as the owner at the next login",
            format!("ALTER ROLE {login} SET role = {owner}"),
        ),
    ] {
        // Some attempts fail, some are warnings (a grant without the right to grant): what
        // counts is that the attempt writes nothing and writing still fails.
        let before = contents(&mut connection).await;
        run(&mut connection, &format!("BEGIN; {sql}; COMMIT"))
            .await
            .ok();
        run(&mut connection, "ROLLBACK").await.ok();
        let written = run(&mut connection, "INSERT INTO big VALUES (-2, 'after')").await;
        assert!(written.is_err(), "the app writes after trying to {attempt}");
        assert_eq!(contents(&mut connection).await, before, "{attempt}");
    }
    let mut fresh = app(&provisioned).await.unwrap();
    assert!(run(&mut fresh, "INSERT INTO big VALUES (-1, 'again')")
        .await
        .is_err());
    let info = provider
        .info(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    let access = info
        .iter()
        .find(|(label, _)| label == "Write access")
        .unwrap();
    assert!(access.1.starts_with("revoked"), "{info:?}");
    // Checking again changes nothing and says nothing.
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    assert_eq!(cluster.events(resource), Vec::<String>::new());
    assert_eq!(count(&mut fresh, "big").await.unwrap(), 6000);

    run(&mut fresh, "DELETE FROM big").await.unwrap();
    drop(fresh);
    drop(connection);
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    let events = cluster.events(resource);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("back under"), "{events:?}");
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "INSERT INTO big VALUES (-1, 'writable'); CREATE TABLE again (x INT); INSERT INTO again VALUES (1)",
    )
    .await
    .unwrap();
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert_eq!(owners, [owner]);
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn deletes_stay_revoked_where_they_would_run_the_app_s_code() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let resource = resource();
    let plan = test_plan(Limits {
        storage_mb: Some(10),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    // A trigger that writes with the owner's rights whenever a row is deleted.
    run(
        &mut connection,
        "CREATE TABLE big (id INT PRIMARY KEY, v TEXT);
         INSERT INTO big SELECT i, repeat(md5(i::text), 30) FROM generate_series(1, 6000) i;
         CREATE TABLE grows (v TEXT);
         CREATE FUNCTION grow() RETURNS trigger SECURITY DEFINER LANGUAGE plpgsql
             AS 'BEGIN INSERT INTO grows SELECT repeat(''x'', 1000) FROM generate_series(1, 100); RETURN OLD; END';
         CREATE TRIGGER grow BEFORE DELETE ON big FOR EACH ROW EXECUTE FUNCTION grow();",
    )
    .await
    .unwrap();
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    let events = cluster.events(resource);
    assert!(
        events.len() == 1 && events[0].contains("DELETE and TRUNCATE do not"),
        "{events:?}"
    );
    let mut connection = app(&provisioned).await.unwrap();
    assert_eq!(count(&mut connection, "big").await.unwrap(), 6000);
    assert!(run(&mut connection, "DELETE FROM big WHERE id = 1")
        .await
        .is_err());
    assert!(run(&mut connection, "TRUNCATE grows").await.is_err());
    assert_eq!(count(&mut connection, "grows").await.unwrap(), 0);
    drop(connection);
    // pg:reset is a way back under.
    provider.reset(resource, &provisioned.state).await.unwrap();
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    assert!(cluster.events(resource)[0].contains("back under"));
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "CREATE TABLE fresh (x INT); INSERT INTO fresh VALUES (1)",
    )
    .await
    .unwrap();
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_backup_brings_back_what_a_reset_removed() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let resource = resource();
    let plan = plan(provider, "mini");
    let provisioned = provision(provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT);
         INSERT INTO notes (body) SELECT 'note ' || i FROM generate_series(1, 1000) i;
         SELECT lo_from_bytea(4242, 'a large object');",
    )
    .await
    .unwrap();

    let started = Instant::now();
    let backup = backups.capture(resource, &plan).await.unwrap();
    eprintln!(
        "captured {} ({} bytes) in {:?}",
        backup.name,
        backup.size,
        started.elapsed()
    );
    assert_eq!(backup.name, "b001");
    assert!(backup.size > 0);
    assert_eq!(backups.list(resource).await.unwrap(), [backup]);
    let file = backups.file(resource, "b001").await.unwrap();
    assert_eq!(
        file,
        cluster
            .root
            .join("backups")
            .join(resource.id.simple().to_string())
            .join("b001.dump")
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // What users' tools read.
    let listing = std::process::Command::new(installed_bin_dir(None).unwrap().join("pg_restore"))
        .arg("--list")
        .arg(&file)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("TABLE public notes"));

    let started = Instant::now();
    provider.reset(resource, &provisioned.state).await.unwrap();
    eprintln!("reset in {:?}", started.elapsed());
    assert!(
        count(&mut connection, "notes").await.is_err(),
        "a session survived the reset"
    );
    let mut connection = app(&provisioned).await.unwrap();
    let gone = count(&mut connection, "notes").await.err().unwrap();
    assert!(gone.to_string().contains("does not exist"), "{gone}");
    run(&mut connection, "CREATE TABLE after_reset (x INT)")
        .await
        .unwrap();
    drop(connection);

    let started = Instant::now();
    backups.restore(resource, resource, "b001").await.unwrap();
    eprintln!("restored in {:?}", started.elapsed());
    let mut connection = app(&provisioned).await.unwrap();
    assert_eq!(count(&mut connection, "notes").await.unwrap(), 1000);
    assert!(count(&mut connection, "after_reset").await.is_err());
    run(
        &mut connection,
        "INSERT INTO notes (body) VALUES ('after the restore')",
    )
    .await
    .unwrap();
    let object: Vec<u8> = sqlx::query_scalar("SELECT lo_get(4242)")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(object, b"a large object");
    let owner: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'notes'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert_eq!(owner, resource.base_name());
    // No role of the restore is left.
    let mut admin = cluster.admin("postgres").await;
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1",
    )
    .bind(resource.base_name())
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        roles,
        [resource.base_name(), format!("{}_1", resource.base_name())]
    );

    let info = provider
        .info(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    let password = support_password(&provisioned.config["URL"]);
    for (label, value) in &info {
        assert!(!value.contains(&password) && !label.contains(&password));
    }
    let row = |label: &str| {
        info.iter()
            .find(|(name, _)| name == label)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("no {label} in {info:?}"))
    };
    assert_eq!(row("Plan"), "mini");
    assert_eq!(row("Tables"), "1");
    assert_eq!(row("Backups"), "1 / 2");
    assert_eq!(row("Connections"), "1 / 20");
    assert_eq!(row("Credential generation"), "1");
    assert_eq!(row("Write access"), "ok");
    assert!(row("Data size").contains(" / 1 GB ("), "{info:?}");
    assert!(row("PostgreSQL version").starts_with("15"), "{info:?}");
    eprintln!("{info:#?}");
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
    assert!(!file.exists());
}

#[tokio::test]
async fn a_backup_of_another_add_on_restores_into_this_one() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let plan = plan(provider, "mini");
    let (a, b) = (resource(), resource());
    let provisioned_a = provision(provider, a, &plan).await;
    let provisioned_b = provision(provider, b, &plan).await;
    let mut connection_a = app(&provisioned_a).await.unwrap();
    run(
        &mut connection_a,
        "CREATE TABLE shared (x INT); INSERT INTO shared SELECT generate_series(1, 10)",
    )
    .await
    .unwrap();
    backups.capture(a, &plan).await.unwrap();
    backups.restore(b, a, "b001").await.unwrap();
    let mut connection_b = app(&provisioned_b).await.unwrap();
    assert_eq!(count(&mut connection_b, "shared").await.unwrap(), 10);
    run(&mut connection_b, "INSERT INTO shared VALUES (11)")
        .await
        .unwrap();
    assert_eq!(count(&mut connection_a, "shared").await.unwrap(), 10);
    // The backup stays a's.
    assert_eq!(backups.list(b).await.unwrap(), []);
    drop((connection_a, connection_b));
    provider.deprovision(a, &provisioned_a.state).await.unwrap();
    provider.deprovision(b, &provisioned_b.state).await.unwrap();
}

#[tokio::test]
async fn the_plan_s_count_of_backups_is_kept_and_names_are_never_reused() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let resource = resource();
    let plan = test_plan(Limits {
        backups: Some(2),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    for expected in ["b001", "b002", "b003"] {
        assert_eq!(
            backups.capture(resource, &plan).await.unwrap().name,
            expected
        );
    }
    let names: Vec<String> = backups
        .list(resource)
        .await
        .unwrap()
        .into_iter()
        .map(|backup| backup.name)
        .collect();
    assert_eq!(names, ["b002", "b003"]);
    let removed = backups.file(resource, "b001").await.err().unwrap();
    assert!(refusal(&removed).contains("no backup b001"));
    assert_eq!(backups.capture(resource, &plan).await.unwrap().name, "b004");
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_and_unknown_backup_names_are_refused() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let plan = plan(provider, "mini");
    let (mine, other) = (resource(), resource());
    let provisioned_mine = provision(provider, mine, &plan).await;
    let provisioned_other = provision(provider, other, &plan).await;
    backups.capture(other, &plan).await.unwrap();
    for name in [
        "",
        "b",
        "../b001",
        "b001/../../b001",
        "b001.dump",
        "B001",
        "b-1",
        "b1234567890",
    ] {
        let refused = backups.file(mine, name).await.err().unwrap();
        assert_eq!(refusal(&refused), "backup names look like b001", "{name:?}");
        let refused = backups.restore(mine, other, name).await.err().unwrap();
        assert_eq!(refusal(&refused), "backup names look like b001", "{name:?}");
    }
    let unknown = backups.restore(mine, mine, "b001").await.err().unwrap();
    let message = refusal(&unknown);
    assert!(message.contains("no backup b001"), "{message}");
    assert!(!message.contains(&other.id.simple().to_string()) && !message.contains("other"));
    let unknown = backups.file(other, "b999").await.err().unwrap();
    assert!(refusal(&unknown).contains("no backup b999"));
    provider
        .deprovision(mine, &provisioned_mine.state)
        .await
        .unwrap();
    provider
        .deprovision(other, &provisioned_other.state)
        .await
        .unwrap();
}

/// Waits until `pg_dump` waits for a lock in the cluster.
async fn pg_dump_waiting(cluster: &Cluster) -> i32 {
    let mut admin = cluster.admin("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'",
        )
        .fetch_optional(&mut admin)
        .await
        .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "pg_dump never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_destroy_waits_for_a_capture_and_a_failed_capture_leaves_nothing() {
    let cluster = shared().await;
    let provider = cluster.provider.clone();
    let resource = resource();
    let plan = plan(&provider, "mini");
    let provisioned = provision(&provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    run(&mut connection, "CREATE TABLE busy (x INT)")
        .await
        .unwrap();
    // The app holds a lock that pg_dump waits for.
    run(
        &mut connection,
        "BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE",
    )
    .await
    .unwrap();
    let capture = tokio::spawn({
        let provider = provider.clone();
        let plan = plan.clone();
        async move { provider.backups().unwrap().capture(resource, &plan).await }
    });
    let pg_dump = pg_dump_waiting(cluster).await;
    let refused = provider
        .deprovision(resource, &provisioned.state)
        .await
        .err()
        .unwrap();
    assert!(
        refusal(&refused).ends_with("a backup is being captured; try again when it finishes"),
        "{refused}"
    );
    assert!(
        count(&mut connection, "busy").await.is_ok(),
        "the refused destroy touched the database"
    );
    // The capture fails midway.
    let mut admin = cluster.admin("postgres").await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pg_dump)
        .execute(&mut admin)
        .await
        .unwrap();
    assert!(capture.await.unwrap().is_err());
    let dir = cluster
        .root
        .join("backups")
        .join(resource.id.simple().to_string());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('b'))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(
        provider.backups().unwrap().list(resource).await.unwrap(),
        []
    );

    run(&mut connection, "COMMIT").await.unwrap();
    let backup = provider
        .backups()
        .unwrap()
        .capture(resource, &plan)
        .await
        .unwrap();
    assert_eq!(
        backup.name, "b002",
        "a failed capture's number is not reused"
    );
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
    assert!(!dir.exists());
}

/// Waits until `provisioned`'s credentials read `expected` rows of `kept` again.
async fn data_back(provisioned: &Provisioned, expected: i64) {
    let deadline = Instant::now() + RESTART_WAIT;
    loop {
        let outcome = match app(provisioned).await {
            Ok(mut connection) => count(&mut connection, "kept").await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(rows) => {
                assert_eq!(rows, expected);
                return;
            }
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not come back: {error:#}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn the_cluster_comes_back_with_its_data_after_a_stop_a_dead_wharf_and_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("postgres");
    // What a crash during initdb leaves.
    std::fs::create_dir_all(root.join("data.initializing")).unwrap();
    std::fs::write(root.join("data.initializing/PG_VERSION"), "15\n").unwrap();
    let (events, _receiver) = tokio::sync::mpsc::unbounded_channel();

    let supervisor = supervisor();
    let started = Instant::now();
    let provider = managed_postgres::start(
        settings(&root, RESTART_PORT),
        supervisor.clone(),
        events.clone(),
    )
    .await
    .unwrap();
    eprintln!("new cluster up in {:?}", started.elapsed());
    assert!(!root.join("data.initializing").exists());
    assert!(root.join("data/PG_VERSION").is_file());
    let run_dir = std::fs::metadata(root.join("run")).unwrap();
    assert_eq!(run_dir.permissions().mode() & 0o777, 0o700);
    let resource = resource();
    let provisioned = provision(&provider, resource, &plan(&provider, "mini")).await;
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "CREATE TABLE kept (x INT); INSERT INTO kept VALUES (1), (2)",
    )
    .await
    .unwrap();
    drop(connection);

    provider.stop().await;
    drop(provider);
    assert!(!supervisor.supervises(SUPERVISOR_KEY));
    assert!(
        app(&provisioned).await.is_err(),
        "the cluster still answers after a stop"
    );
    let started = Instant::now();
    let provider = managed_postgres::start(
        settings(&root, RESTART_PORT),
        supervisor.clone(),
        events.clone(),
    )
    .await
    .unwrap();
    eprintln!("stopped cluster up again in {:?}", started.elapsed());
    data_back(&provisioned, 2).await;

    // Wharf dies: the thread that started the server ends, which sends it the parent-death
    // signal; a new Wharf starts at once, while the old server may still shut down.
    drop(provider);
    drop(supervisor);
    let supervisor = self::supervisor();
    let started = Instant::now();
    let provider = managed_postgres::start(
        settings(&root, RESTART_PORT),
        supervisor.clone(),
        events.clone(),
    )
    .await
    .unwrap();
    eprintln!("cluster up after its Wharf died in {:?}", started.elapsed());
    data_back(&provisioned, 2).await;

    let pid = supervisor.pid(SUPERVISOR_KEY).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    data_back(&provisioned, 2).await;
    eprintln!("killed server answered again after {:?}", started.elapsed());
    assert_ne!(supervisor.pid(SUPERVISOR_KEY), Some(pid));

    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
    provider.stop().await;
}
