//! The PostgreSQL cluster Wharf runs itself, so that `wharf-postgresql` works without an
//! operator's server: created under Wharf's data dir on first start, run by the
//! [`Supervisor`] as the `postgres` user, and administered over its Unix socket.
//!
//! Under `root` (`<data dir>/addons/postgres`):
//! - `data/`: the cluster, made by `initdb` in `data.initializing/` and renamed once
//!   complete, so a crash during `initdb` is found (and `initdb` run again) at the next start;
//!   an existing cluster is kept with its data, and run by the binaries of its own major
//!   version;
//! - `run/`: the socket directory (owner `postgres`, mode 0700, socket mode 0700), reached
//!   by root and `postgres` alone: the only way in without a password, for the superuser alone
//!   (`local all postgres trust`);
//! - `backups/<add-on id>/`: the add-ons' backups, root's alone;
//! - `postgres.log`, `initdb.log`: the server's output.
//!
//! Invariants:
//! - Dynos reach the cluster at `listen:port` alone, where every role needs a password
//!   (`scram-sha-256`, the only `host` lines of `pg_hba.conf`, written at every start), so a
//!   probe finds [`crate::DynoAccess::PasswordRequired`]; add-on roles may connect to their
//!   own database only (`CONNECT` on `postgres` and `template1` is revoked from `PUBLIC`).
//! - The server's settings are command-line options, so what Wharf sets wins over
//!   `postgresql.conf` and `ALTER SYSTEM`; statements are never logged, not even failed ones
//!   (they may carry a password).
//! - It stops with Wharf: a fast shutdown (`SIGINT`) from [`crate::Provider::stop`], or the
//!   parent-death signal when Wharf is killed; a next start waits for a previous postmaster
//!   still shutting down (its own `postmaster.pid` check turns the new one away meanwhile, and
//!   the supervisor starts it again).

use std::ffi::OsString;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::postgres::{installed_bin_dir, ManagedCluster, PostgresProvider};
use crate::process::{ProcessSpec, StopSignal};
use crate::{Events, Supervisor};

/// The cluster's key in the [`Supervisor`] (what its exit callback is called with).
pub const SUPERVISOR_KEY: &str = "postgres";
/// The longest a start waits for the cluster to answer (crash recovery included).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a start checks whether the cluster answers.
const READY_POLL: Duration = Duration::from_millis(100);
/// Connections of the whole cluster: the plans' limits are per database (20 to 120), and
/// most apps stay well below theirs.
const MAX_CONNECTIONS: u32 = 500;
/// Kept for Wharf's superuser sessions when apps use up the rest.
const RESERVED_CONNECTIONS: u32 = 10;
/// Modest memory: the cluster shares the host with the dynos.
const SHARED_BUFFERS: &str = "128MB";
const WORK_MEM: &str = "4MB";
const MAINTENANCE_WORK_MEM: &str = "64MB";
/// Lines of the server's log in a start's error.
const LOG_TAIL_LINES: usize = 15;
/// The file in a cluster that names its major version.
const VERSION_FILE: &str = "PG_VERSION";

/// Where and how the cluster runs.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// `<data dir>/addons/postgres`: the cluster (`data/`), its socket dir (`run/`), backups
    /// (`backups/<add-on id>/`) and its log. Its parents must be searchable by `user`.
    pub root: PathBuf,
    /// Where dynos reach it: the dyno network's gateway (`127.0.0.1` in tests).
    pub listen: IpAddr,
    /// `WHARF_ADDON_POSTGRES_PORT`, 15432 by default.
    pub port: u16,
    /// `None`: the binaries of the cluster's major version, or the newest installed
    /// (`/usr/lib/postgresql/<N>/bin`) for a new cluster.
    pub bin_dir: Option<PathBuf>,
    /// The OS user it runs as, also the name of its superuser: `postgres`.
    pub user: String,
}

/// Paths under the root.
struct Layout {
    root: PathBuf,
    data: PathBuf,
    initializing: PathBuf,
    run: PathBuf,
    backups: PathBuf,
    log: PathBuf,
    initdb_log: PathBuf,
}

impl Layout {
    fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_owned(),
            data: root.join("data"),
            initializing: root.join("data.initializing"),
            run: root.join("run"),
            backups: root.join("backups"),
            log: root.join("postgres.log"),
            initdb_log: root.join("initdb.log"),
        }
    }
}

/// An OS user's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Account {
    uid: u32,
    gid: u32,
}

/// Creates the cluster if missing (`initdb`), starts it through the supervisor, waits until
/// it answers, and returns the provider for it.
pub async fn start(
    settings: ClusterSettings,
    supervisor: Supervisor,
    events: Events,
) -> anyhow::Result<PostgresProvider> {
    let layout = Layout::new(&settings.root);
    check_path(&layout.root)?;
    let account = account(&settings.user).await?;
    prepare_directories(&layout, account)?;
    let existing = cluster_version(&layout)?;
    if existing.is_some() {
        let owner = std::fs::metadata(&layout.data)
            .with_context(|| format!("look at {}", layout.data.display()))?
            .uid();
        anyhow::ensure!(
            owner == account.uid,
            "the PostgreSQL cluster in {} belongs to uid {owner}, not to {} (uid {}): chown -R it",
            layout.data.display(),
            settings.user,
            account.uid
        );
    }
    let bin_dir = match &settings.bin_dir {
        Some(bin_dir) => bin_dir.clone(),
        None => installed_bin_dir(existing)?,
    };
    if existing.is_none() {
        initdb(&layout, &bin_dir, account, &settings.user).await?;
    }
    write_hba(&layout, account, &settings.user)?;
    // The server's messages name the apps' tables and roles: root's to read.
    create_private(&layout.log)?;
    let spec = ProcessSpec {
        program: bin_dir.join("postgres"),
        args: server_args(&settings, &layout),
        uid: account.uid,
        gid: account.gid,
        dir: layout.data.clone(),
        log: layout.log.clone(),
        stop_signal: StopSignal::Int,
    };
    supervisor
        .ensure(SUPERVISOR_KEY, spec)
        .await
        .context("start the PostgreSQL cluster")?;
    let admin = PgConnectOptions::new_without_pgpass()
        .socket(&layout.run)
        .port(settings.port)
        .username(&settings.user)
        .database("postgres")
        .disable_statement_logging();
    let mut connection = wait_until_ready(&layout, &supervisor, &admin).await?;
    // Add-on roles reach their own database alone.
    sqlx::raw_sql("REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC")
        .execute(&mut connection)
        .await
        .context("close the cluster's own databases to add-on roles")?;
    connection.close().await.ok();
    Ok(PostgresProvider::managed(ManagedCluster {
        socket_dir: layout.run,
        superuser: settings.user,
        listen: settings.listen,
        port: settings.port,
        bin_dir,
        backups: layout.backups,
        supervisor,
        key: SUPERVISOR_KEY.to_owned(),
        events,
    }))
}

/// PostgreSQL's list settings (`unix_socket_directories`) split at commas.
fn check_path(root: &Path) -> anyhow::Result<()> {
    let text = root
        .to_str()
        .with_context(|| format!("{} is not UTF-8", root.display()))?;
    anyhow::ensure!(
        root.is_absolute() && !text.contains([',', '"', '\'', '\\']),
        "the PostgreSQL cluster's directory {text} must be absolute, without commas, quotes \
         or backslashes"
    );
    Ok(())
}

/// The ids of the OS user `name` (`getent`, so that users from NSS count too).
async fn account(name: &str) -> anyhow::Result<Account> {
    let output = tokio::process::Command::new("getent")
        .args(["passwd", name])
        .stdin(Stdio::null())
        .output()
        .await
        .context("run getent")?;
    let line = String::from_utf8_lossy(&output.stdout);
    parse_passwd(&line).with_context(|| {
        format!("there is no OS user {name} to run PostgreSQL as: install PostgreSQL's package")
    })
}

/// `name:x:uid:gid:...` to its ids.
fn parse_passwd(line: &str) -> Option<Account> {
    let mut fields = line.trim().split(':');
    let uid = fields.nth(2)?.parse().ok()?;
    let gid = fields.next()?.parse().ok()?;
    Some(Account { uid, gid })
}

fn prepare_directories(layout: &Layout, account: Account) -> anyhow::Result<()> {
    std::fs::create_dir_all(&layout.root)
        .with_context(|| format!("create {}", layout.root.display()))?;
    // Searchable, not readable, by the postgres user: it needs its way to data/ and run/.
    set_mode(&layout.root, 0o711)?;
    check_reachable(&layout.root, account)?;
    let run = &layout.run;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run)
        .with_context(|| format!("create {}", run.display()))?;
    std::os::unix::fs::chown(run, Some(account.uid), Some(account.gid))
        .with_context(|| format!("hand {} to the postgres user", run.display()))?;
    set_mode(run, 0o700)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&layout.backups)
        .with_context(|| format!("create {}", layout.backups.display()))?;
    set_mode(&layout.backups, 0o700)
}

/// Opens `path` to append, created readable by root alone.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("set the mode of {}", path.display()))
}

/// Fails, saying which, when a parent of `root` is not searchable by `account` (a private
/// temporary or home directory): PostgreSQL would fail with less to go on.
fn check_reachable(root: &Path, account: Account) -> anyhow::Result<()> {
    for parent in root.ancestors().skip(1) {
        let metadata =
            std::fs::metadata(parent).with_context(|| format!("look at {}", parent.display()))?;
        let mode = metadata.mode();
        let searchable = match (metadata.uid() == account.uid, metadata.gid() == account.gid) {
            (true, _) => mode & 0o100 != 0,
            (false, true) => mode & 0o010 != 0,
            (false, false) => mode & 0o001 != 0,
        };
        anyhow::ensure!(
            searchable,
            "the postgres user cannot reach {}: {} is not searchable by it (chmod o+x it, or \
             keep Wharf's data elsewhere)",
            root.display(),
            parent.display()
        );
    }
    Ok(())
}

/// The major version of the cluster under `layout`, `None` when there is none yet.
fn cluster_version(layout: &Layout) -> anyhow::Result<Option<u32>> {
    match std::fs::read_to_string(layout.data.join(VERSION_FILE)) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("read {}", layout.data.join(VERSION_FILE).display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            anyhow::ensure!(
                !layout.data.exists(),
                "{} exists but holds no PostgreSQL cluster: move it away",
                layout.data.display()
            );
            Ok(None)
        }
        Err(error) => Err(error).context("read the cluster's version"),
    }
}

/// Makes a new cluster in `data.initializing/` (anything an interrupted run left there goes)
/// and renames it to `data/` once complete.
async fn initdb(
    layout: &Layout,
    bin_dir: &Path,
    account: Account,
    superuser: &str,
) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(&layout.initializing) {
        Ok(()) => tracing::warn!("an interrupted initdb is run again"),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).context("remove an interrupted initdb's files"),
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&layout.initializing)
        .with_context(|| format!("create {}", layout.initializing.display()))?;
    std::os::unix::fs::chown(&layout.initializing, Some(account.uid), Some(account.gid))
        .context("hand the new cluster's directory to the postgres user")?;
    let log = create_private(&layout.initdb_log)?;
    let errors = log.try_clone().context("duplicate the log file")?;
    let status = tokio::process::Command::new("setpriv")
        .arg(format!("--reuid={}", account.uid))
        .arg(format!("--regid={}", account.gid))
        .arg("--clear-groups")
        .arg("--")
        .arg(bin_dir.join("initdb"))
        .args(initdb_args(&layout.initializing, superuser))
        .current_dir(&layout.initializing)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(errors)
        .status()
        .await
        .context("run initdb (with setpriv)")?;
    anyhow::ensure!(
        status.success(),
        "initdb failed ({status}); its output is in {}",
        layout.initdb_log.display()
    );
    std::fs::rename(&layout.initializing, &layout.data).context("put the new cluster in place")?;
    std::fs::File::open(&layout.root)
        .and_then(|root| root.sync_all())
        .context("write the new cluster's directory to disk")?;
    Ok(())
}

fn initdb_args(data: &Path, superuser: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-D".into(), data.into()];
    for arg in [
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--data-checksums",
        "--no-instructions",
    ] {
        args.push(arg.into());
    }
    args.push(format!("--username={superuser}").into());
    args
}

/// `pg_hba.conf`: the superuser over the socket without a password, everyone else over TCP
/// with one.
fn hba_conf(superuser: &str) -> String {
    format!(
        "# Written by Wharf at every start: changes here are lost.\n\
         local all {superuser} trust\n\
         host all all 0.0.0.0/0 scram-sha-256\n\
         host all all ::/0 scram-sha-256\n"
    )
}

fn write_hba(layout: &Layout, account: Account, superuser: &str) -> anyhow::Result<()> {
    let path = layout.data.join("pg_hba.conf");
    let temporary = layout.data.join("pg_hba.conf.wharf");
    std::fs::write(&temporary, hba_conf(superuser))
        .with_context(|| format!("write {}", temporary.display()))?;
    std::os::unix::fs::chown(&temporary, Some(account.uid), Some(account.gid))
        .context("hand pg_hba.conf to the postgres user")?;
    set_mode(&temporary, 0o600)?;
    std::fs::rename(&temporary, &path).with_context(|| format!("write {}", path.display()))
}

fn server_args(settings: &ClusterSettings, layout: &Layout) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-D".into(), layout.data.clone().into()];
    let settings = [
        ("listen_addresses", settings.listen.to_string()),
        ("port", settings.port.to_string()),
        ("unix_socket_directories", layout.run.display().to_string()),
        ("unix_socket_permissions", "0700".to_owned()),
        ("password_encryption", "scram-sha-256".to_owned()),
        ("ssl", "off".to_owned()),
        ("max_connections", MAX_CONNECTIONS.to_string()),
        (
            "superuser_reserved_connections",
            RESERVED_CONNECTIONS.to_string(),
        ),
        ("shared_buffers", SHARED_BUFFERS.to_owned()),
        ("work_mem", WORK_MEM.to_owned()),
        ("maintenance_work_mem", MAINTENANCE_WORK_MEM.to_owned()),
        ("log_statement", "none".to_owned()),
        ("log_min_error_statement", "panic".to_owned()),
        ("log_line_prefix", "%m [%p] %q%u@%d ".to_owned()),
    ];
    for (name, value) in settings {
        args.push("-c".into());
        args.push(format!("{name}={value}").into());
    }
    args
}

/// Waits until the postmaster the supervisor started (not a previous one still shutting
/// down) answers over the socket; fails after [`START_TIMEOUT`] with the end of its log.
async fn wait_until_ready(
    layout: &Layout,
    supervisor: &Supervisor,
    admin: &PgConnectOptions,
) -> anyhow::Result<PgConnection> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last_error = String::from("not started yet");
    loop {
        let ours = supervisor.pid(SUPERVISOR_KEY);
        if ours.is_some() && ours == postmaster_pid(layout) {
            match PgConnection::connect_with(admin).await {
                Ok(mut connection) => {
                    match sqlx::raw_sql("SELECT 1").execute(&mut connection).await {
                        Ok(_) => return Ok(connection),
                        Err(error) => last_error = error.to_string(),
                    }
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the PostgreSQL cluster did not answer within {} s ({last_error}); the end of \
                 {}:\n{}",
                START_TIMEOUT.as_secs(),
                layout.log.display(),
                log_tail(&layout.log)
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// The process id in the cluster's `postmaster.pid`.
fn postmaster_pid(layout: &Layout) -> Option<u32> {
    std::fs::read_to_string(layout.data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        assert_eq!(
            parse_passwd(
                "postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n"
            ),
            Some(Account { uid: 101, gid: 104 })
        );
        assert_eq!(parse_passwd(""), None);
        assert_eq!(parse_passwd("postgres:x:abc:104::/:/bin/sh"), None);
    }

    #[test]
    fn hba_asks_everyone_but_the_superuser_on_the_socket_for_a_password() {
        let hba = hba_conf("postgres");
        let rules: Vec<&str> = hba.lines().filter(|line| !line.starts_with('#')).collect();
        assert_eq!(
            rules,
            [
                "local all postgres trust",
                "host all all 0.0.0.0/0 scram-sha-256",
                "host all all ::/0 scram-sha-256",
            ]
        );
    }

    #[test]
    fn the_server_listens_where_it_is_told_and_logs_no_statement() {
        let settings = ClusterSettings {
            root: "/var/lib/wharf/addons/postgres".into(),
            listen: "198.19.0.1".parse().unwrap(),
            port: 15432,
            bin_dir: None,
            user: "postgres".into(),
        };
        let args: Vec<String> = server_args(&settings, &Layout::new(&settings.root))
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        for expected in [
            "listen_addresses=198.19.0.1",
            "port=15432",
            "unix_socket_directories=/var/lib/wharf/addons/postgres/run",
            "unix_socket_permissions=0700",
            "password_encryption=scram-sha-256",
            "log_min_error_statement=panic",
        ] {
            assert!(
                args.iter().any(|arg| arg == expected),
                "{expected}: {args:?}"
            );
        }
        assert_eq!(args[..2], ["-D", "/var/lib/wharf/addons/postgres/data"]);
    }

    #[test]
    fn paths_postgres_cannot_list_are_refused() {
        assert!(check_path(Path::new("/var/lib/wharf/addons/postgres")).is_ok());
        assert!(check_path(Path::new("relative/postgres")).is_err());
        assert!(check_path(Path::new("/var/lib/a,b")).is_err());
    }
}
