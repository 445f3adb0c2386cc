//! The PostgreSQL cluster Wharf runs itself, with real PostgreSQL binaries on loopback test
//! ports: it starts fresh and again with its data (after a stop, after Wharf dies, after its
//! postmaster is killed) and asks every app for a password (here); it enforces the plans
//! (`limits`) and keeps backups (`backups`). Most tests share one cluster, kept in the
//! target dir between runs.
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
use wharf_addons::postgres::PostgresProvider;
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

#[path = "managed_postgres/backups.rs"]
mod backups;
#[path = "managed_postgres/limits.rs"]
mod limits;

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
