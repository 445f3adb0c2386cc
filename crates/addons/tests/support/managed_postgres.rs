//! The PostgreSQL cluster Wharf runs itself, as the contract suite's third provider: one per
//! test binary, started on first use (on a thread of its own, so that any test's runtime may
//! ask for it) and kept in the target dir between runs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use wharf_addons::managed_postgres::{self, ClusterSettings};
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::{Provider, Supervisor};

/// A test port of its own (the system's PostgreSQL is on 5432).
const PORT: u16 = 25435;

static PROVIDER: OnceLock<Arc<PostgresProvider>> = OnceLock::new();

fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract-managed-postgres")
}

pub fn provider() -> Arc<dyn Provider> {
    PROVIDER
        .get_or_init(|| {
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let supervisor = Supervisor::new(Arc::new(|_: &str, _| {})).unwrap();
                let (events, _) = tokio::sync::mpsc::unbounded_channel();
                let settings = ClusterSettings {
                    root: root(),
                    listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port: PORT,
                    bin_dir: None,
                    user: "postgres".into(),
                };
                Arc::new(
                    runtime
                        .block_on(managed_postgres::start(settings, supervisor, events))
                        .unwrap(),
                )
            })
            .join()
            .unwrap()
        })
        .clone()
}

/// Whether the managed cluster (when started) has the database `name`.
pub async fn database_exists(name: &str) -> bool {
    if PROVIDER.get().is_none() {
        return false;
    }
    let mut admin = PgConnectOptions::new_without_pgpass()
        .socket(root().join("run"))
        .port(PORT)
        .username("postgres")
        .database("postgres")
        .connect()
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await
        .unwrap()
        .is_some()
}
