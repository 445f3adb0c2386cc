//! Clients of provisioned resources for the contract suite: they log in with the credentials
//! a provider handed out, as an app's dyno would.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod managed_postgres;
pub mod managed_redis;

use std::sync::Arc;

use sqlx::{Connection, PgConnection};
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::redis::{key_prefix, RedisProvider};
use wharf_addons::resp::{self, Reply};
use wharf_addons::{AddonConfig, Provider, Resource};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redis,
}

pub fn postgres_url() -> String {
    std::env::var("WHARF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("WHARF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn postgres_provider() -> Arc<dyn Provider> {
    Arc::new(PostgresProvider::new(&postgres_url(), None).unwrap())
}

pub fn redis_provider() -> Arc<dyn Provider> {
    Arc::new(RedisProvider::new(&redis_url(), None).unwrap())
}

/// The password in `scheme://user:password@host...`.
pub fn password(url: &str) -> String {
    let userinfo = url.split("://").nth(1).unwrap().split('@').next().unwrap();
    userinfo.split(':').nth(1).unwrap().to_owned()
}

/// `(user, password, host:port)` of a Redis URL.
fn redis_parts(url: &str) -> (String, String, String) {
    let rest = url.strip_prefix("redis://").unwrap();
    let (userinfo, address) = rest.rsplit_once('@').unwrap();
    let (user, password) = userinfo.split_once(':').unwrap();
    (user.to_owned(), password.to_owned(), address.to_owned())
}

/// Logs in as a client does with a Redis URL: `AUTH user password`, or `AUTH password` when
/// the URL names no user (Heroku's shape, the `default` user).
async fn redis_login(
    address: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<resp::Connection> {
    let mut connection = resp::Connection::connect(address).await?;
    match user.is_empty() {
        true => connection.command(&["AUTH", password]).await?,
        false => connection.command(&["AUTH", user, password]).await?,
    };
    Ok(connection)
}

pub enum Client {
    Postgres(PgConnection),
    Redis(resp::Connection, String),
}

impl Client {
    pub async fn connect(kind: Kind, config: &AddonConfig) -> anyhow::Result<Client> {
        let url = &config["URL"];
        match kind {
            Kind::Postgres => Ok(Client::Postgres(PgConnection::connect(url).await?)),
            Kind::Redis => {
                let (user, password, address) = redis_parts(url);
                let connection = redis_login(&address, &user, &password).await?;
                let prefix = config.get("KEY_PREFIX").cloned().unwrap_or_default();
                Ok(Client::Redis(connection, prefix))
            }
        }
    }

    /// Logs in with `a`'s credentials and tries to read `b`'s data.
    pub async fn cross_access(
        kind: Kind,
        a: &AddonConfig,
        b: &AddonConfig,
    ) -> anyhow::Result<Option<String>> {
        match kind {
            Kind::Postgres => {
                let database_b = b["URL"].rsplit('/').next().unwrap();
                let (base_a, _) = a["URL"].rsplit_once('/').unwrap();
                let mut connection =
                    PgConnection::connect(&format!("{base_a}/{database_b}")).await?;
                Ok(sqlx::query_scalar("SELECT v FROM kv WHERE k = 'secret'")
                    .fetch_optional(&mut connection)
                    .await?)
            }
            Kind::Redis => {
                // At b's server (a server of its own, or the one they share).
                let (user, password, _) = redis_parts(&a["URL"]);
                let (_, _, address) = redis_parts(&b["URL"]);
                let mut connection = redis_login(&address, &user, &password).await?;
                let prefix = b.get("KEY_PREFIX").cloned().unwrap_or_default();
                Ok(connection
                    .command(&["GET", &format!("{prefix}secret")])
                    .await?
                    .text())
            }
        }
    }

    pub async fn write_and_read(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        match self {
            Client::Postgres(connection) => {
                sqlx::raw_sql("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
                    .execute(&mut *connection)
                    .await?;
                sqlx::query(
                    "INSERT INTO kv (k, v) VALUES ($1, $2)
                     ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                )
                .bind(key)
                .bind(value)
                .execute(&mut *connection)
                .await?;
            }
            Client::Redis(connection, prefix) => {
                connection
                    .command(&["SET", &format!("{prefix}{key}"), value])
                    .await?;
            }
        }
        anyhow::ensure!(self.read(key).await?.as_deref() == Some(value));
        Ok(())
    }

    pub async fn read(&mut self, key: &str) -> anyhow::Result<Option<String>> {
        match self {
            Client::Postgres(connection) => Ok(sqlx::query_scalar("SELECT v FROM kv WHERE k = $1")
                .bind(key)
                .fetch_optional(&mut *connection)
                .await?),
            Client::Redis(connection, prefix) => Ok(connection
                .command(&["GET", &format!("{prefix}{key}")])
                .await?
                .text()),
        }
    }
}

/// Whether the resource's data is still on the server (its database, or any of its keys).
pub async fn resource_exists(kind: Kind, resource: Resource) -> bool {
    match kind {
        Kind::Postgres => {
            let mut admin = PgConnection::connect(&postgres_url()).await.unwrap();
            sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(resource.base_name())
                .fetch_optional(&mut admin)
                .await
                .unwrap()
                .is_some()
                || managed_postgres::database_exists(&resource.base_name()).await
        }
        Kind::Redis if managed_redis::exists(resource) => true,
        Kind::Redis => {
            let address = redis_url()
                .strip_prefix("redis://")
                .unwrap()
                .rsplit('@')
                .next()
                .unwrap()
                .to_owned();
            let mut admin = resp::Connection::connect(&address).await.unwrap();
            let pattern = format!("{}*", key_prefix(resource));
            let reply = admin
                .command(&["SCAN", "0", "MATCH", &pattern, "COUNT", "100000"])
                .await
                .unwrap();
            match reply {
                Reply::Array(Some(parts)) => {
                    !matches!(parts.get(1), Some(Reply::Array(Some(keys))) if keys.is_empty())
                }
                _ => panic!("unexpected SCAN reply"),
            }
        }
    }
}
