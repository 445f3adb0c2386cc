//! `wharf-postgresql` (also `heroku-postgresql`): a database per add-on, on the PostgreSQL
//! cluster Wharf runs itself ([`crate::managed_postgres`]) or on a server the operator runs,
//! reached through an admin URL (`WHARF_ADDON_POSTGRES_ADMIN_URL`).
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
//! drops the database, the roles and the add-on's backups.
//!
//! Plans, the same on both kinds of server:
//!
//! | plan             | storage | connections | backups kept |
//! |------------------|---------|-------------|--------------|
//! | `mini` (default) | 1 GB    | 20          | 2            |
//! | `essential-0`    | 1 GB    | 20          | 5            |
//! | `essential-1`    | 10 GB   | 20          | 5            |
//! | `essential-2`    | 32 GB   | 40          | 5            |
//! | `standard-0`     | 64 GB   | 120         | 25           |
//!
//! - Connections: every login role has the plan's `CONNECTION LIMIT` (a role cannot change
//!   its own; the database's limit, which its owner may change, is set too and put back by
//!   every check), so connection `n + 1` is refused by PostgreSQL itself ("too many
//!   connections for role"). Wharf's superuser sessions are not counted.
//! - Storage: [`PostgresProvider::enforce_limits`] measures `pg_database_size`; over the
//!   limit, writes are revoked (see below), back under they are restored, and an
//!   [`AddonEvent`](crate::AddonEvent) tells the app's users each time.
//! - Backups: `pg_dump` custom format files kept by Wharf, the plan's count of them (see
//!   `postgres/backups.rs`); kept for an operator's server too when
//!   [`PostgresProvider::with_backups`] says where.
//!
//! Wharf's admin sessions set `role`, `search_path`, timeouts and read-only mode at
//! connection start, where they win over what an app set on its database (its owner role may
//! `ALTER DATABASE ... SET role`, which would make a superuser's session act as the app).
//! On an operator's server, the admin should be a superuser: reading every app's tables for
//! a backup, handing objects between roles and the large-object grants need one.
//!
//! Write revocation (Heroku's: no INSERT, UPDATE or CREATE; SELECT, DELETE and TRUNCATE
//! still work, to get back under the limit): the login roles stop being members of the owner
//! role (so nothing the owner may do is theirs, and no `SET ROLE` or `GRANT` gets it back:
//! granting needs ownership), their `role` setting is reset and their sessions ended; in the
//! database whatever they came to own is handed to the owner, every privilege held by them
//! or `PUBLIC` on schemas, tables and sequences is revoked, `EXECUTE` on the owner's
//! `SECURITY DEFINER` functions too (they would write with the owner's rights), and they get
//! `USAGE` on the schemas, `SELECT` on tables and sequences, and `DELETE` and `TRUNCATE` on
//! tables unless the database has triggers, rules or `ON DELETE SET DEFAULT` keys (code that
//! runs with the owner's rights when rows are deleted). Large objects are written only
//! through functions granted to the owner role alone. `CONNECT` granted to the login roles
//! is the revocation's last step. What remains beyond reach: code PostgreSQL itself runs as
//! the owner later (an expression index's function when autovacuum analyzes a table).
//!
//! The operator's `pg_hba.conf` must ask for passwords (`scram-sha-256`) on the address dynos
//! use: under `trust` the isolation rests on `CONNECT` privileges and dropped roles alone
//! (a probe checks it: see [`crate::exposure`]).

mod access;
mod backups;
mod busy;
mod database;
mod endpoint;
mod info;
mod plans;
mod sql;
mod tools;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::exposure::{self, AddonServer, Protocol};
use crate::{
    random_password, AddonConfig, Backups, Events, Plan, Provider, Provisioned, Resource, Service,
    Supervisor,
};
use busy::{Activity, Busy};
use endpoint::{percent_decode, ssl_mode_name, Endpoint};
use sql::{database_exists, execute, literal, role_exists, terminate, url_host, Column};
pub use tools::installed_bin_dir;
pub(crate) use tools::Tools;

/// The setting that names the admin URL, for errors.
const SETTING: &str = "WHARF_ADDON_POSTGRES_ADMIN_URL";
/// How long a stopping cluster may take to write its data out before it is killed.
const CLUSTER_STOP_GRACE: Duration = Duration::from_secs(20);

pub struct PostgresProvider {
    /// Wharf's own connection: a superuser (or a role that may create roles and databases).
    admin: PgConnectOptions,
    /// Where `pg_dump` reaches the server as the admin, and the admin's password.
    admin_endpoint: Endpoint,
    admin_password: Option<String>,
    /// Where `pg_restore` reaches the server as a restore role, with a password.
    restore_endpoint: Endpoint,
    /// Where dynos reach the server: the host in apps' URLs.
    host: String,
    port: u16,
    /// Set when the provider was told where dynos reach the server.
    dyno_server: Option<AddonServer>,
    service: Service,
    events: Option<Events>,
    /// Where backups are kept (`<dir>/<add-on id>/b001.dump`); `None`: no backups.
    backups: Option<PathBuf>,
    tools: Tools,
    /// The cluster this provider runs, stopped by [`Provider::stop`].
    cluster: Option<(Supervisor, String)>,
    busy: Busy,
}

/// The server's address from its admin URL, resolved once: where the server wiring finds out
/// where dynos reach it ([`exposure::dyno_address`]).
pub async fn server_address(admin_url: &str) -> anyhow::Result<SocketAddr> {
    let admin = parse(admin_url)?;
    let host = admin.get_host();
    anyhow::ensure!(
        !host.starts_with('/') && admin.get_socket().is_none(),
        "{SETTING} names a Unix socket ({host}), which dynos cannot reach: name the server's \
         TCP address (postgres://postgres@127.0.0.1:5432/postgres)"
    );
    exposure::resolve(host, admin.get_port(), SETTING).await
}

fn parse(admin_url: &str) -> anyhow::Result<PgConnectOptions> {
    PgConnectOptions::from_str(admin_url)
        .with_context(|| format!("parse the PostgreSQL add-on admin URL ({SETTING})"))
}

/// What [`crate::managed_postgres::start`] hands the provider of its cluster.
pub(crate) struct ManagedCluster {
    pub socket_dir: PathBuf,
    /// The cluster's superuser, trusted over the socket alone.
    pub superuser: String,
    pub listen: IpAddr,
    pub port: u16,
    pub bin_dir: PathBuf,
    pub backups: PathBuf,
    pub supervisor: Supervisor,
    pub key: String,
    pub events: Events,
}

fn service() -> Service {
    Service {
        name: "wharf-postgresql".into(),
        aliases: vec!["heroku-postgresql".into()],
        human_name: "Wharf Postgres".into(),
        default_attachment: "DATABASE".into(),
        attachment_prefix: "HEROKU_POSTGRESQL".into(),
        addon_name_prefix: "postgresql".into(),
        plans: plans::plans(),
    }
}

impl PostgresProvider {
    /// A provider administering the server at `admin_url` (a role that may create roles and
    /// databases, e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Apps' URLs name
    /// `app_host` (where dynos reach the server), or with `None` the admin URL's host. Keeps
    /// no backups unless [`PostgresProvider::with_backups`] says where.
    pub fn new(admin_url: &str, app_host: Option<IpAddr>) -> anyhow::Result<PostgresProvider> {
        let admin = parse(admin_url)?;
        let port = admin.get_port();
        let endpoint = Endpoint {
            host: match admin.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => admin.get_host().to_owned(),
            },
            port,
            ssl_mode: Some(ssl_mode_name(admin.get_ssl_mode())),
        };
        let admin_password = admin
            .to_url_lossy()
            .password()
            .map(percent_decode)
            .transpose()?;
        Ok(PostgresProvider {
            host: app_host.map_or_else(|| admin.get_host().to_owned(), |host| host.to_string()),
            port,
            dyno_server: app_host.map(|host| AddonServer {
                protocol: Protocol::Postgres,
                address: SocketAddr::new(host, port),
            }),
            admin: sql::admin_options(admin),
            admin_endpoint: endpoint.clone(),
            admin_password,
            restore_endpoint: endpoint,
            service: service(),
            events: None,
            backups: None,
            tools: Tools::new(None),
            cluster: None,
            busy: Busy::default(),
        })
    }

    /// Keeps backups of the add-ons under `dir` (`<dir>/<add-on id>/b001.dump`, readable by
    /// root alone), taken with the newest installed `pg_dump` unless
    /// [`PostgresProvider::with_bin_dir`] names another.
    pub fn with_backups(mut self, dir: PathBuf) -> PostgresProvider {
        self.backups = Some(dir);
        self
    }

    /// Takes `pg_dump` and `pg_restore` from `bin_dir` (at least the server's version).
    pub fn with_bin_dir(mut self, bin_dir: PathBuf) -> PostgresProvider {
        self.tools = Tools::new(Some(bin_dir));
        self
    }

    /// Sends what the apps' users should hear of (writes revoked over the plan's storage,
    /// and restored) to `events`.
    pub fn with_events(mut self, events: Events) -> PostgresProvider {
        self.events = Some(events);
        self
    }

    /// The provider of a cluster Wharf runs: admin over its socket, apps at `listen:port`.
    pub(crate) fn managed(cluster: ManagedCluster) -> PostgresProvider {
        let admin = PgConnectOptions::new_without_pgpass()
            .socket(&cluster.socket_dir)
            .port(cluster.port)
            .username(&cluster.superuser)
            .database("postgres");
        PostgresProvider {
            admin: sql::admin_options(admin),
            admin_endpoint: Endpoint {
                host: cluster.socket_dir.display().to_string(),
                port: cluster.port,
                ssl_mode: None,
            },
            admin_password: None,
            restore_endpoint: Endpoint {
                host: cluster.listen.to_string(),
                port: cluster.port,
                ssl_mode: Some("disable"),
            },
            host: cluster.listen.to_string(),
            port: cluster.port,
            dyno_server: Some(AddonServer {
                protocol: Protocol::Postgres,
                address: SocketAddr::new(cluster.listen, cluster.port),
            }),
            service: service(),
            events: Some(cluster.events),
            backups: Some(cluster.backups),
            tools: Tools::new(Some(cluster.bin_dir)),
            cluster: Some((cluster.supervisor, cluster.key)),
            busy: Busy::default(),
        }
    }

    async fn admin(&self, database: Option<&str>) -> anyhow::Result<PgConnection> {
        match database {
            Some(database) => sql::connect(&self.admin.clone().database(database)).await,
            None => sql::connect(&self.admin).await,
        }
    }

    /// An admin connection holding the resource's advisory lock until it closes, so that
    /// calls for one resource (a rotation's revocation and a destroy, a limit check and a
    /// reset) never interleave.
    async fn locked_admin(&self, resource: Resource) -> anyhow::Result<PgConnection> {
        let mut admin = self.admin(None).await?;
        let (key, _) = resource.id.as_u64_pair();
        // Waits as long as another call for the resource takes (a restore's swap, a check
        // that vacuums), not the admin sessions' lock timeout.
        execute(&mut admin, "SET lock_timeout = 0").await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key as i64)
            .execute(&mut admin)
            .await
            .context("lock the add-on's resource")?;
        execute(&mut admin, "RESET lock_timeout").await?;
        Ok(admin)
    }

    /// Creates (or gives a new password to) the login role of `generation`, allowed
    /// `connection_limit` connections (`-1`: no limit). While the resource's writes are
    /// revoked, the new role gets the revoked access too.
    async fn login_role(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
        generation: i64,
        connection_limit: i32,
    ) -> anyhow::Result<Provisioned> {
        let owner = resource.base_name();
        let role = format!("{owner}_{generation}");
        let password = random_password();
        let revoked = access::writes_revoked(admin, resource).await?;
        quiet_statements(admin).await;
        let verb = match role_exists(admin, &role).await? {
            true => "ALTER",
            false => "CREATE",
        };
        execute(
            admin,
            &format!(
                "{verb} ROLE {role} LOGIN CONNECTION LIMIT {connection_limit} PASSWORD {}",
                literal(&password)
            ),
        )
        .await
        .with_context(|| format!("{} login role", verb.to_lowercase()))?;
        execute(admin, &format!("GRANT {owner} TO {role}")).await?;
        execute(admin, &format!("ALTER ROLE {role} SET role = {owner}")).await?;
        if revoked {
            self.revoke_writes(admin, resource, std::slice::from_ref(&role))
                .await
                .context("revoke writes of the new login role")?;
        }
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

    /// Every role of the resource but the owner: each generation's login role, and a restore
    /// role an interrupted restore left.
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
        terminate(admin, Column::User, role).await?;
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

    /// Creates the owner role and the database if missing (finishing an interrupted swap
    /// first) and gives the database its settings.
    async fn ensure_database(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
        plan: &Plan,
    ) -> anyhow::Result<()> {
        let owner = resource.base_name();
        self.recover(admin, resource).await?;
        if !role_exists(admin, &owner).await? {
            execute(admin, &format!("CREATE ROLE {owner} NOLOGIN"))
                .await
                .context("create owner role")?;
        }
        if !database_exists(admin, &owner).await? {
            execute(admin, &format!("CREATE DATABASE {owner} OWNER {owner}"))
                .await
                .context("create database")?;
        }
        self.prepare_database(admin, resource, &owner, connection_limit(plan))
            .await
    }
}

/// Keeps statements that carry a password out of the server's own log, both when it logs
/// statements and when it logs failed ones (allowed for superusers; for others the settings
/// stay as they are).
async fn quiet_statements(admin: &mut PgConnection) {
    for setting in ["log_statement = 'none'", "log_min_error_statement = panic"] {
        if let Err(error) = execute(admin, &format!("SET {setting}")).await {
            tracing::debug!(error = format!("{error:#}"), "statement logging stays on");
        }
    }
}

/// A plan's connection limit as PostgreSQL writes it (`-1`: none).
fn connection_limit(plan: &Plan) -> i32 {
    plan.limits
        .connections
        .and_then(|limit| i32::try_from(limit).ok())
        .unwrap_or(-1)
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
        plan: &'a Plan,
        _options: &'a AddonConfig,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let mut admin = self.locked_admin(resource).await?;
            self.ensure_database(&mut admin, resource, plan).await?;
            let provisioned = self
                .login_role(&mut admin, resource, 1, connection_limit(plan))
                .await?;
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
            let current = generation(state)?;
            let mut admin = self.locked_admin(resource).await?;
            // The plan is not at hand: the new role gets the current one's limit.
            let limit: Option<i32> =
                sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
                    .bind(format!("{}_{current}", resource.base_name()))
                    .fetch_optional(&mut admin)
                    .await
                    .context("look up the connection limit")?;
            let provisioned = self
                .login_role(&mut admin, resource, current + 1, limit.unwrap_or(-1))
                .await?;
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

    fn busy(&self, resource: Resource) -> Option<String> {
        self.busy
            .activity(resource)
            .map(|activity| activity.describe().to_owned())
    }

    fn deprovision<'a>(
        &'a self,
        resource: Resource,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let _busy = self
                .busy
                .claim(resource, Activity::Destroying, "destroy the add-on")?;
            let owner = resource.base_name();
            let mut admin = self.locked_admin(resource).await?;
            let roles = self.login_roles(&mut admin, resource).await?;
            // Logins first, so that access ends at once even if a later step fails.
            for role in &roles {
                execute(&mut admin, &format!("ALTER ROLE {role} NOLOGIN")).await?;
            }
            for database in database::names(resource) {
                terminate(&mut admin, Column::Database, &database).await?;
                execute(
                    &mut admin,
                    &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
                )
                .await
                .context("drop database")?;
            }
            for role in &roles {
                execute(&mut admin, &format!("DROP ROLE IF EXISTS {role}")).await?;
            }
            execute(&mut admin, &format!("DROP ROLE IF EXISTS {owner}")).await?;
            admin.close().await.ok();
            self.delete_backups(resource).await
        })
    }

    fn resume<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut admin = self.locked_admin(resource).await?;
            self.recover(&mut admin, resource).await?;
            let owner = resource.base_name();
            if database_exists(&mut admin, &owner).await? {
                self.prepare_database(&mut admin, resource, &owner, connection_limit(plan))
                    .await?;
                access::set_connection_limits(&mut admin, resource, connection_limit(plan)).await?;
            }
            admin.close().await.ok();
            Ok(())
        })
    }

    fn info<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<Vec<(String, String)>>> {
        Box::pin(self.info_rows(resource, plan, state))
    }

    fn reset<'a>(
        &'a self,
        resource: Resource,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let _busy = self
                .busy
                .claim(resource, Activity::Resetting, "reset the database")?;
            let mut admin = self.locked_admin(resource).await?;
            self.recover(&mut admin, resource).await?;
            self.create_replacement(&mut admin, resource).await?;
            self.swap(&mut admin, resource).await?;
            admin.close().await.ok();
            Ok(())
        })
    }

    fn backups(&self) -> Option<&dyn Backups> {
        match self.backups {
            Some(_) => Some(self),
            None => None,
        }
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some((supervisor, key)) = &self.cluster {
                if let Err(error) = supervisor.stop(key, CLUSTER_STOP_GRACE).await {
                    tracing::warn!(error = format!("{error:#}"), "stop the PostgreSQL cluster");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_passwords_are_decoded_from_the_url() {
        let provider =
            PostgresProvider::new("postgres://admin:s%40cret@db.example:6543/postgres", None)
                .unwrap();
        assert_eq!(provider.admin_password.as_deref(), Some("s@cret"));
        assert_eq!(provider.admin_endpoint.host, "db.example");
        assert_eq!(provider.admin_endpoint.port, 6543);
    }
}
