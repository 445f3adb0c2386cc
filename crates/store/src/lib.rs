//! Wharf's state store: accounts, apps, the release ledger, slugs, the formation,
//! collaborators, custom domains, SNI endpoints, registered buildpacks, and the hosts that run
//! dynos with their placements, in SQLite (the embedded default) or PostgreSQL.
//!
//! [`Store`] is one type over two SQL engines, reached through sqlx's `Any` driver. Every
//! statement is written in the subset of SQL both engines speak (`$1` parameters, `TEXT` and
//! `BIGINT` columns, timestamps as fixed-width RFC 3339 text), so each operation has one
//! implementation and the contract suite in `tests/` holds both engines to it.
//!
//! Invariants:
//! - Writes that belong together are one transaction: an app and its v1; a config change and
//!   its release; a rollback; a formation batch.
//! - Every write transaction starts by writing (locking the app's row where there is one), so
//!   per-app writers are serialized on both engines and SQLite never has to upgrade a read lock.
//! - Releases are appended with the next version under that lock; only a release's `status`
//!   ever changes afterwards (pending to succeeded or failed).
//! - A call returns only after its transaction committed: what the API acknowledged survives a
//!   SIGKILL (SQLite runs in WAL mode with `synchronous=FULL`).

mod accounts;
mod addons;
mod apps;
mod buildpack_registrations;
mod builds;
mod changes;
mod collaborators;
mod domains;
mod formation;
mod hosts;
mod log_drains;
mod releases;
mod rows;
mod schema;
mod sessions;
mod slugs;
mod sni_endpoints;
mod summaries;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use accounts::Authenticated;
pub use addons::NewAddon;
pub use apps::{AppAccess, Role};
pub use builds::BuildOutcome;
pub use changes::{Change, ChangeFeed, REREAD_INTERVAL};
pub use domains::DomainRoute;
pub use hosts::{HostReport, Placed};
pub use log_drains::{AppFeature, LogDrain};
pub use releases::{ReleaseOrder, ReleaseRange};
pub use sessions::Session;
pub use slugs::NewSlug;
pub use sni_endpoints::SniCertificate;
pub use summaries::{AppSummary, LiveRelease};

/// How long a SQLite writer waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
const SQLITE_POOL_SIZE: u32 = 4;
const POSTGRES_POOL_SIZE: u32 = 10;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors callers branch on. Anything else is [`StoreError::Other`]: the database failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Invalid(#[from] wharf_model::Invalid),
    #[error(transparent)]
    Scale(#[from] wharf_model::ScaleError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Other(anyhow::Error::new(error))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store. Cheap to clone: it is a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    announcer: changes::Announcer,
}

impl Store {
    /// Opens the database at `url` (`sqlite:///path/to/wharf.db` or `postgres://...`),
    /// creating a SQLite file if needed, and brings its schema up to date.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            anyhow::bail!(
                "unsupported database URL {url:?}: use sqlite:///path/to/file.db or postgres://..."
            );
        };
        let options = AnyConnectOptions::from_str(&connect_url(url, backend))
            .with_context(|| format!("parse database URL {}", redact(url)))?;
        let pool_options = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(SQLITE_POOL_SIZE)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"
                            )
                            .as_str(),
                        )
                        .await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(POSTGRES_POOL_SIZE),
        };
        let pool = pool_options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .with_context(|| format!("connect to {}", redact(url)))?;
        let store = Store {
            pool,
            backend,
            announcer: changes::Announcer::new(backend, url),
        };
        schema::migrate(&store).await.context("migrate schema")?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; waits for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// SQLite URLs get `mode=rwc` so that a fresh data dir gets a new file.
fn connect_url(url: &str, backend: Backend) -> String {
    match backend {
        Backend::Sqlite if !url.contains("mode=") => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}mode=rwc")
        }
        _ => url.to_owned(),
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://wharf:s3cret@db:5432/wharf"),
            "postgres://wharf:***@db:5432/wharf"
        );
        assert_eq!(
            redact("postgres://wharf@db/wharf"),
            "postgres://wharf@db/wharf"
        );
        assert_eq!(
            redact("sqlite:///var/lib/wharf.db"),
            "sqlite:///var/lib/wharf.db"
        );
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(
            connect_url("sqlite:///tmp/a.db", Backend::Sqlite),
            "sqlite:///tmp/a.db?mode=rwc"
        );
        assert_eq!(
            connect_url("sqlite:///tmp/a.db?mode=ro", Backend::Sqlite),
            "sqlite:///tmp/a.db?mode=ro"
        );
    }
}
