//! `wharf-postgresql` (also `heroku-postgresql`): a database per add-on on a PostgreSQL server
//! the operator runs, reached through an admin URL (`WHARF_ADDON_POSTGRES_ADMIN_URL`).
//!
//! For an add-on with base name `addon_<hex>` the provider creates:
//! - a `NOLOGIN` role `addon_<hex>` that owns the database `addon_<hex>` and everything in it;
//! - a login role `addon_<hex>_<generation>` with a random password, a member of the owner role
//!   and set to act as it (`ALTER ROLE ... SET role`), so the tables it creates belong to the
//!   owner role and survive a rotation;
//! - `CONNECT` on the database revoked from `PUBLIC`, so no other add-on's role (nor any other
//!   non-superuser) can connect to it.
//!
//! Rotation adds the next generation's login role; revoking the previous ones terminates their
//! connections and drops them. Deprovisioning disables every login, terminates connections and
//! drops the database and the roles.
//!
//! The operator's `pg_hba.conf` must ask for passwords (`scram-sha-256`) on the address dynos
//! use: under `trust` the isolation rests on `CONNECT` privileges and dropped roles alone
//! (a probe checks it: see [`crate::exposure`]).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use anyhow::Context;
use futures_util::future::BoxFuture;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::exposure::{self, AddonServer, Protocol};
use crate::{random_password, AddonConfig, Plan, Provider, Provisioned, Resource, Service};

/// The setting that names the admin URL, for errors.
const SETTING: &str = "WHARF_ADDON_POSTGRES_ADMIN_URL";

pub struct PostgresProvider {
    admin: PgConnectOptions,
    /// Where dynos reach the server: the host in apps' URLs.
    host: String,
    port: u16,
    /// Set when the provider was told where dynos reach the server.
    dyno_server: Option<AddonServer>,
    service: Service,
}

/// The server's address from its admin URL, resolved once: where the server wiring finds out
/// where dynos reach it ([`exposure::dyno_address`]).
pub async fn server_address(admin_url: &str) -> anyhow::Result<SocketAddr> {
    let admin = parse(admin_url)?;
    let host = admin.get_host();
    anyhow::ensure!(
        !host.starts_with('/'),
        "{SETTING} names a Unix socket ({host}), which dynos cannot reach: name the server's \
         TCP address (postgres://postgres@127.0.0.1:5432/postgres)"
    );
    exposure::resolve(host, admin.get_port(), SETTING).await
}

fn parse(admin_url: &str) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(admin_url)
        .with_context(|| format!("parse the PostgreSQL add-on admin URL ({SETTING})"))?
        .disable_statement_logging())
}

impl PostgresProvider {
    /// A provider administering the server at `admin_url` (a role that may create roles and
    /// databases, e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Apps' URLs name
    /// `app_host` (where dynos reach the server), or with `None` the admin URL's host.
    pub fn new(admin_url: &str, app_host: Option<IpAddr>) -> anyhow::Result<PostgresProvider> {
        let admin = parse(admin_url)?;
        let port = admin.get_port();
        Ok(PostgresProvider {
            host: app_host.map_or_else(|| admin.get_host().to_owned(), |host| host.to_string()),
            port,
            dyno_server: app_host.map(|host| AddonServer {
                protocol: Protocol::Postgres,
                address: SocketAddr::new(host, port),
            }),
            admin,
            service: Service {
                name: "wharf-postgresql".into(),
                aliases: vec!["heroku-postgresql".into()],
                human_name: "Wharf Postgres".into(),
                default_attachment: "DATABASE".into(),
                attachment_prefix: "HEROKU_POSTGRESQL".into(),
                addon_name_prefix: "postgresql".into(),
                plans: vec![
                    plan("mini", "A database of its own on the shared server", true),
                    plan(
                        "essential-0",
                        "Same as mini (for Heroku app.json files)",
                        false,
                    ),
                    plan(
                        "standard-0",
                        "Same as mini (for Heroku app.json files)",
                        false,
                    ),
                ],
            },
        })
    }

    async fn admin(&self, database: Option<&str>) -> anyhow::Result<PgConnection> {
        let options = match database {
            Some(database) => self.admin.clone().database(database),
            None => self.admin.clone(),
        };
        PgConnection::connect_with(&options)
            .await
            .context("connect to the PostgreSQL add-on server")
    }

    /// An admin connection holding the resource's advisory lock until it closes, so that
    /// calls for one resource (a rotation's revocation and a destroy, or two servers) never
    /// interleave.
    async fn locked_admin(&self, resource: Resource) -> anyhow::Result<PgConnection> {
        let mut admin = self.admin(None).await?;
        let (key, _) = resource.id.as_u64_pair();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key as i64)
            .execute(&mut admin)
            .await
            .context("lock the add-on's resource")?;
        Ok(admin)
    }

    /// Creates (or gives a new password to) the login role of `generation`.
    async fn login_role(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
        generation: i64,
    ) -> anyhow::Result<Provisioned> {
        let owner = resource.base_name();
        let role = format!("{owner}_{generation}");
        let password = random_password();
        // Keep the statement that carries the password out of the server's own log when it
        // logs statements (allowed for superusers; for others the setting stays as it is).
        if let Err(error) = execute(admin, "SET log_statement = 'none'").await {
            tracing::debug!(error = format!("{error:#}"), "statement logging stays on");
        }
        let verb = match role_exists(admin, &role).await? {
            true => "ALTER",
            false => "CREATE",
        };
        execute(
            admin,
            &format!("{verb} ROLE {role} LOGIN PASSWORD {}", literal(&password)),
        )
        .await
        .with_context(|| format!("{} login role", verb.to_lowercase()))?;
        execute(admin, &format!("GRANT {owner} TO {role}")).await?;
        execute(admin, &format!("ALTER ROLE {role} SET role = {owner}")).await?;
        let url = format!(
            "postgres://{role}:{password}@{}:{}/{owner}",
            url_host(&self.host),
            self.port
        );
        Ok(Provisioned {
            config: AddonConfig::from([("URL".to_owned(), url)]),
            state: json!({ "generation": generation }),
        })
    }

    /// The login roles of the resource, every generation.
    async fn login_roles(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
    ) -> anyhow::Result<Vec<String>> {
        let prefix = format!("{}_", resource.base_name());
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)")
                .bind(prefix)
                .fetch_all(&mut *admin)
                .await
                .context("list login roles")?;
        Ok(roles)
    }

    /// Stops `role` logging in, ends its sessions, hands anything it owns in the database to
    /// the owner role, and drops it.
    async fn drop_login_role(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
        role: &str,
    ) -> anyhow::Result<()> {
        execute(admin, &format!("ALTER ROLE {role} NOLOGIN")).await?;
        terminate(admin, "usename", role).await?;
        let owner = resource.base_name();
        if database_exists(admin, &owner).await? {
            let mut in_database = self.admin(Some(&owner)).await?;
            execute(
                &mut in_database,
                &format!("REASSIGN OWNED BY {role} TO {owner}"),
            )
            .await?;
            execute(&mut in_database, &format!("DROP OWNED BY {role}")).await?;
            in_database.close().await.ok();
        }
        execute(admin, &format!("DROP ROLE IF EXISTS {role}")).await
    }
}

fn plan(name: &str, description: &str, default: bool) -> Plan {
    Plan {
        name: name.into(),
        description: description.into(),
        default,
        limits: crate::Limits::default(),
    }
}

fn generation(state: &serde_json::Value) -> anyhow::Result<i64> {
    state
        .get("generation")
        .and_then(serde_json::Value::as_i64)
        .context("the add-on's provider state has no credential generation")
}

impl Provider for PostgresProvider {
    fn service(&self) -> &Service {
        &self.service
    }

    fn dyno_server(&self) -> Option<AddonServer> {
        self.dyno_server
    }

    fn provision<'a>(
        &'a self,
        resource: Resource,
        _plan: &'a Plan,
        _options: &'a AddonConfig,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let mut admin = self.locked_admin(resource).await?;
            let owner = resource.base_name();
            if !role_exists(&mut admin, &owner).await? {
                execute(&mut admin, &format!("CREATE ROLE {owner} NOLOGIN"))
                    .await
                    .context("create owner role")?;
            }
            if !database_exists(&mut admin, &owner).await? {
                execute(
                    &mut admin,
                    &format!("CREATE DATABASE {owner} OWNER {owner}"),
                )
                .await
                .context("create database")?;
            }
            execute(
                &mut admin,
                &format!("REVOKE ALL ON DATABASE {owner} FROM PUBLIC"),
            )
            .await
            .context("revoke public access")?;
            let provisioned = self.login_role(&mut admin, resource, 1).await?;
            admin.close().await.ok();
            Ok(provisioned)
        })
    }

    fn rotate<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let next = generation(state)? + 1;
            let mut admin = self.locked_admin(resource).await?;
            let provisioned = self.login_role(&mut admin, resource, next).await?;
            admin.close().await.ok();
            Ok(provisioned)
        })
    }

    fn revoke_previous<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let current = format!("{}_{}", resource.base_name(), generation(state)?);
            let mut admin = self.locked_admin(resource).await?;
            for role in self.login_roles(&mut admin, resource).await? {
                if role != current {
                    self.drop_login_role(&mut admin, resource, &role)
                        .await
                        .with_context(|| format!("revoke login role {role}"))?;
                }
            }
            admin.close().await.ok();
            Ok(())
        })
    }

    fn deprovision<'a>(
        &'a self,
        resource: Resource,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let owner = resource.base_name();
            let mut admin = self.locked_admin(resource).await?;
            let roles = self.login_roles(&mut admin, resource).await?;
            // Logins first, so that access ends at once even if a later step fails.
            for role in &roles {
                execute(&mut admin, &format!("ALTER ROLE {role} NOLOGIN")).await?;
            }
            terminate(&mut admin, "datname", &owner).await?;
            execute(
                &mut admin,
                &format!("DROP DATABASE IF EXISTS {owner} WITH (FORCE)"),
            )
            .await
            .context("drop database")?;
            for role in &roles {
                execute(&mut admin, &format!("DROP ROLE IF EXISTS {role}")).await?;
            }
            execute(&mut admin, &format!("DROP ROLE IF EXISTS {owner}")).await?;
            admin.close().await.ok();
            Ok(())
        })
    }
}

async fn execute(admin: &mut PgConnection, statement: &str) -> anyhow::Result<()> {
    // Statements may hold a password: the error names only the statement's first words.
    let what: String = statement
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let statement = statement.to_owned();
    sqlx::Executor::execute(&mut *admin, statement.as_str())
        .await
        .with_context(|| format!("PostgreSQL refused {what}"))?;
    Ok(())
}

async fn role_exists(admin: &mut PgConnection, role: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(role.to_owned())
        .fetch_optional(&mut *admin)
        .await
        .context("look up role")?;
    Ok(row.is_some())
}

async fn database_exists(admin: &mut PgConnection, database: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(database.to_owned())
        .fetch_optional(&mut *admin)
        .await
        .context("look up database")?;
    Ok(row.is_some())
}

/// Ends every session whose `column` (`usename` or `datname`) is `value`.
async fn terminate(admin: &mut PgConnection, column: &str, value: &str) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE {column} = $1 AND pid <> pg_backend_pid()"
    ))
    .bind(value.to_owned())
    .fetch_all(&mut *admin)
    .await
    .context("terminate sessions")?;
    Ok(())
}

/// A SQL string literal (passwords are alphanumeric, but quote properly anyway).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// IPv6 addresses need brackets in URLs.
fn url_host(host: &str) -> String {
    match host.contains(':') {
        true => format!("[{host}]"),
        false => host.to_owned(),
    }
}
