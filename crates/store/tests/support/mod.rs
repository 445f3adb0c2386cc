//! Fresh, throwaway stores for the contract suite: a SQLite file in a temp dir, or a new
//! PostgreSQL database created on the server at `WHARF_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards.

use sqlx::{Connection, Executor};
use wharf_model::{Account, App, AppName, Email};
use wharf_store::Store;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestStore {
    pub store: Store,
    /// Where it is, for a test that opens it again (as another process would).
    #[allow(dead_code)] // Not every test crate uses it.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("create temp dir");
    let url = format!("sqlite://{}/wharf.db", dir.path().display());
    let store = Store::open(&url).await.expect("open SQLite store");
    TestStore {
        store,
        url,
        cleanup: Cleanup::Sqlite(dir),
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("WHARF_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

pub async fn postgres() -> TestStore {
    sqlx::any::install_default_drivers();
    let admin_url = postgres_admin_url();
    let database = format!("wharf_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed for these tests: connect to {admin_url}: {e}. \
                 Run scripts/setup (see README) or set WHARF_TEST_POSTGRES_URL"
            )
        });
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await
        .expect("create test database");
    let url = database_url(&admin_url, &database);
    let store = Store::open(&url).await.expect("open PostgreSQL store");
    TestStore {
        store,
        url,
        cleanup: Cleanup::Postgres {
            admin_url,
            database,
        },
    }
}

/// `admin_url` with its database path replaced by `database`.
fn database_url(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            let (admin_url, database) = (admin_url.clone(), database.clone());
            // Drop runs outside any runtime we may block: use a thread with its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build runtime");
                runtime.block_on(async move {
                    let mut admin = sqlx::AnyConnection::connect(&admin_url).await?;
                    admin
                        .execute(
                            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str(),
                        )
                        .await?;
                    Ok::<_, sqlx::Error>(())
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop test database: {dropped:?}");
            }
        }
    }
}

#[test]
fn database_url_swaps_the_path() {
    assert_eq!(
        database_url("postgres://postgres@127.0.0.1:5432/postgres", "t"),
        "postgres://postgres@127.0.0.1:5432/t"
    );
    assert_eq!(
        database_url("postgres://u:p@h/db?sslmode=disable", "t"),
        "postgres://u:p@h/t?sslmode=disable"
    );
    assert_eq!(
        database_url("postgres://h:5432", "t"),
        "postgres://h:5432/t"
    );
}

/// Runs each named `async fn(&Store)` of the test crate once on a fresh SQLite store and once
/// on a fresh PostgreSQL database.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::support::sqlite().await;
                    crate::$name(&db.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::support::postgres().await;
                    crate::$name(&db.store).await;
                }
            )*
        }
    };
}

/// A new account `<app>@example.com` owning a new app named `app`.
#[allow(dead_code)] // Not every test crate uses it.
pub async fn owned_app(store: &Store, app: &str) -> (Account, App) {
    let email = format!("{app}@example.com");
    let account = store
        .create_account(
            &Email::parse(&email).expect("a test e-mail"),
            false,
            &format!("hash-of-{email}"),
            "test",
        )
        .await
        .expect("create the account");
    let app = store
        .create_app(&AppName::parse(app).expect("a test app name"), &account)
        .await
        .expect("create the app");
    (account, app)
}
