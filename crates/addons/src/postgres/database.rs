//! The add-on's database as a whole: its settings, and replacing it with another (a reset's
//! empty one, a restore's) by a swap of names that an interruption cannot lose.
//!
//! A swap renames `addon_<hex>` to `addon_<hex>_replaced`, the replacement
//! `addon_<hex>_restoring` to `addon_<hex>`, and drops the replaced one. Should Wharf stop in
//! between, [`PostgresProvider::recover`] (at start-up, and before the next provision, reset
//! or restore) names the replaced database back when the add-on's is missing, allows
//! connections again, and drops what is left over.

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

use super::access;
use super::sql::{database_exists, execute, execute_if_allowed, role_exists, terminate, Column};
use super::{Activity, PostgresProvider};
use crate::{Refused, Resource};

/// The functions that create or write large objects (stored in the database, counted in its
/// size): granted to the owner role alone, so that login roles whose writes are revoked
/// cannot use them (they run without any table privilege).
const LARGE_OBJECT_WRITERS: [&str; 7] = [
    "lo_creat(integer)",
    "lo_create(oid)",
    "lo_from_bytea(oid, bytea)",
    "lo_put(oid, bigint, bytea)",
    "lowrite(integer, bytea)",
    "lo_truncate(integer, integer)",
    "lo_truncate64(integer, bigint)",
];

/// The replacement being filled by a reset or a restore.
pub(super) fn replacement(resource: Resource) -> String {
    format!("{}_restoring", resource.base_name())
}

/// The add-on's database during a swap.
fn replaced(resource: Resource) -> String {
    format!("{}_replaced", resource.base_name())
}

/// Every database the resource may have.
pub(super) fn names(resource: Resource) -> [String; 3] {
    [
        resource.base_name(),
        replacement(resource),
        replaced(resource),
    ]
}

/// The role a restore logs in as: a member of the owner role, never a superuser.
pub(super) fn restore_role(resource: Resource) -> String {
    format!("{}_restore", resource.base_name())
}

impl PostgresProvider {
    /// Gives `database` (the add-on's, or its replacement) the add-on's settings: nothing for
    /// `PUBLIC`, the connection limit, large objects written by the owner role alone.
    pub(super) async fn prepare_database(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
        database: &str,
        connection_limit: i32,
    ) -> anyhow::Result<()> {
        let owner = resource.base_name();
        execute(
            admin,
            &format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
        )
        .await
        .context("revoke public access")?;
        execute(
            admin,
            &format!("ALTER DATABASE {database} CONNECTION LIMIT {connection_limit}"),
        )
        .await
        .context("set the connection limit")?;
        let mut in_database = self.admin(Some(database)).await?;
        for function in LARGE_OBJECT_WRITERS {
            // An operator's server may not let a non-superuser admin change these: its add-ons
            // then keep PostgreSQL's default.
            execute_if_allowed(
                &mut in_database,
                &format!("REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC"),
            )
            .await;
            execute_if_allowed(
                &mut in_database,
                &format!("GRANT EXECUTE ON FUNCTION {function} TO {owner}"),
            )
            .await;
        }
        in_database.close().await.ok();
        Ok(())
    }

    /// Finishes what an interrupted swap or restore left: the add-on's database named back
    /// and open to connections, leftovers dropped (not those of a reset or restore running
    /// now).
    pub(super) async fn recover(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
    ) -> anyhow::Result<()> {
        let database = resource.base_name();
        let replaced = replaced(resource);
        if !database_exists(admin, &database).await? && database_exists(admin, &replaced).await? {
            tracing::warn!(addon = %resource.id, "an interrupted swap is undone");
            execute(
                admin,
                &format!("ALTER DATABASE {replaced} RENAME TO {database}"),
            )
            .await
            .context("name the replaced database back")?;
        }
        let closed: Option<bool> =
            sqlx::query_scalar("SELECT NOT datallowconn FROM pg_database WHERE datname = $1")
                .bind(&database)
                .fetch_optional(&mut *admin)
                .await
                .context("look up the database")?;
        if closed == Some(true) {
            execute(
                admin,
                &format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true"),
            )
            .await?;
        }
        execute(
            admin,
            &format!("DROP DATABASE IF EXISTS {replaced} WITH (FORCE)"),
        )
        .await?;
        let running = matches!(
            self.busy.activity(resource),
            Some(Activity::Restoring | Activity::Resetting)
        );
        if !running {
            let replacement = replacement(resource);
            execute(
                admin,
                &format!("DROP DATABASE IF EXISTS {replacement} WITH (FORCE)"),
            )
            .await?;
            let role = restore_role(resource);
            if role_exists(admin, &role).await? {
                self.drop_login_role(admin, resource, &role).await?;
            }
        }
        Ok(())
    }

    /// Creates an empty replacement for the add-on's database, with its settings.
    /// [`Refused`] when the add-on has no database.
    pub(super) async fn create_replacement(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
    ) -> anyhow::Result<String> {
        let database = resource.base_name();
        let limit: Option<i32> =
            sqlx::query_scalar("SELECT datconnlimit FROM pg_database WHERE datname = $1")
                .bind(&database)
                .fetch_optional(&mut *admin)
                .await
                .context("look up the database")?;
        let Some(limit) = limit else {
            return Err(
                Refused("the add-on has no database (is it still being created?)".into()).into(),
            );
        };
        let replacement = replacement(resource);
        execute(
            admin,
            &format!("DROP DATABASE IF EXISTS {replacement} WITH (FORCE)"),
        )
        .await?;
        execute(
            admin,
            &format!("CREATE DATABASE {replacement} OWNER {database}"),
        )
        .await
        .context("create the replacement database")?;
        self.prepare_database(admin, resource, &replacement, limit)
            .await?;
        Ok(replacement)
    }

    /// Puts the replacement in the place of the add-on's database (whose sessions end) and
    /// drops the old one; the login roles keep working, with their access as it was.
    pub(super) async fn swap(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
    ) -> anyhow::Result<()> {
        let database = resource.base_name();
        let replaced = replaced(resource);
        let replacement = replacement(resource);
        // No new sessions between the end of the old ones and the rename.
        execute(
            admin,
            &format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false"),
        )
        .await?;
        terminate(admin, Column::Database, &database).await?;
        execute(
            admin,
            &format!("ALTER DATABASE {database} RENAME TO {replaced}"),
        )
        .await
        .context("set the database aside")?;
        execute(
            admin,
            &format!("ALTER DATABASE {replacement} RENAME TO {database}"),
        )
        .await
        .context("put the replacement in place")?;
        execute(admin, &format!("DROP DATABASE {replaced} WITH (FORCE)"))
            .await
            .context("drop the replaced database")?;
        if access::writes_revoked(admin, resource).await? {
            let roles = access::generation_roles(admin, resource).await?;
            self.revoke_writes(admin, resource, &roles).await?;
        }
        Ok(())
    }
}
