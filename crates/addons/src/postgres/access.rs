//! Plan limits on an add-on's database: connection limits, and write access revoked over the
//! plan's storage limit and restored under it (how, and why an app cannot undo it: see
//! [`crate::postgres`]).

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

use super::info::human_size;
use super::sql::{database_exists, execute, ident, terminate, Column};
use super::{connection_limit, PostgresProvider};
use crate::{AddonEvent, Plan, Resource};

const MB: u64 = 1024 * 1024;
/// Schemas of the system, which no grant of Wharf's touches.
const USER_SCHEMAS: &str = "nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'";

/// The pattern of the resource's generation login roles (`addon_<hex>_<n>`).
fn generation_pattern(resource: Resource) -> String {
    format!("^{}_[0-9]+$", resource.base_name())
}

/// The resource's login roles, every generation (not a restore role).
pub(super) async fn generation_roles(
    admin: &mut PgConnection,
    resource: Resource,
) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname ~ $1 ORDER BY rolname")
        .bind(generation_pattern(resource))
        .fetch_all(&mut *admin)
        .await
        .context("list login roles")
}

/// Whether the resource's writes are revoked: some login role is not a member of the owner
/// role.
pub(super) async fn writes_revoked(
    admin: &mut PgConnection,
    resource: Resource,
) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_roles login, pg_roles owner \
         WHERE owner.rolname = $2 AND login.rolname ~ $1 \
         AND NOT pg_has_role(login.oid, owner.oid, 'MEMBER'))",
    )
    .bind(generation_pattern(resource))
    .bind(resource.base_name())
    .fetch_one(&mut *admin)
    .await
    .context("look up write access")
}

/// Whether a revocation finished: its last step grants `CONNECT` to every login role.
async fn revocation_complete(admin: &mut PgConnection, resource: Resource) -> anyhow::Result<bool> {
    let complete: Option<bool> = sqlx::query_scalar(
        "SELECT bool_and(has_database_privilege(login.oid, database.oid, 'CONNECT')) \
         FROM pg_roles login, pg_database database \
         WHERE database.datname = $2 AND login.rolname ~ $1",
    )
    .bind(generation_pattern(resource))
    .bind(resource.base_name())
    .fetch_one(&mut *admin)
    .await
    .context("look up the revocation")?;
    Ok(complete.unwrap_or(true))
}

/// Gives the database and every login role the connection limit `limit` (`-1`: none),
/// where they differ from it (the database's owner may change the database's).
pub(super) async fn set_connection_limits(
    admin: &mut PgConnection,
    resource: Resource,
    limit: i32,
) -> anyhow::Result<()> {
    let database = resource.base_name();
    let current: Option<i32> =
        sqlx::query_scalar("SELECT datconnlimit FROM pg_database WHERE datname = $1")
            .bind(&database)
            .fetch_optional(&mut *admin)
            .await
            .context("look up the connection limit")?;
    if current.is_some_and(|current| current != limit) {
        execute(
            admin,
            &format!("ALTER DATABASE {database} CONNECTION LIMIT {limit}"),
        )
        .await?;
    }
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_roles WHERE rolname ~ $1 AND rolconnlimit <> $2",
    )
    .bind(generation_pattern(resource))
    .bind(limit)
    .fetch_all(&mut *admin)
    .await
    .context("look up connection limits")?;
    for role in roles {
        execute(
            admin,
            &format!("ALTER ROLE {role} CONNECTION LIMIT {limit}"),
        )
        .await?;
    }
    Ok(())
}

async fn database_size(admin: &mut PgConnection, database: &str) -> anyhow::Result<u64> {
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size($1::text)")
        .bind(database)
        .fetch_one(&mut *admin)
        .await
        .context("measure the database")?;
    Ok(u64::try_from(size).unwrap_or(0))
}

/// The user schemas of the database `in_database` is connected to, unquoted.
async fn user_schemas(in_database: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar(&format!(
        "SELECT nspname::text FROM pg_namespace WHERE {USER_SCHEMAS}"
    ))
    .fetch_all(&mut *in_database)
    .await
    .context("list schemas")
}

/// Whether deleting rows runs only PostgreSQL's own code: no triggers (a `SECURITY DEFINER`
/// trigger function writes with its owner's rights, and cascaded deletes fire triggers as
/// the table's owner), no rules (they run with the table owner's rights), no foreign key
/// that sets a default (an expression evaluated as the owner).
async fn deletes_are_contained(in_database: &mut PgConnection) -> anyhow::Result<bool> {
    sqlx::query_scalar(&format!(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_trigger WHERE NOT tgisinternal) \
         AND NOT EXISTS (SELECT 1 FROM pg_rewrite rule \
             JOIN pg_class class ON class.oid = rule.ev_class \
             JOIN pg_namespace ON pg_namespace.oid = class.relnamespace \
             WHERE rule.rulename <> '_RETURN' AND {USER_SCHEMAS}) \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'd')"
    ))
    .fetch_one(&mut *in_database)
    .await
    .context("look for triggers and rules")
}

impl PostgresProvider {
    /// Checks every resource against its plan: puts the connection limits back where they
    /// were changed, revokes writes of databases over the storage limit and restores them
    /// once back under (each change told as an [`AddonEvent`]). Idempotent; resources whose
    /// database is gone are skipped. Every resource is checked even when one fails; the
    /// error then names those that failed, to be checked again next time.
    pub async fn enforce_limits(&self, resources: &[(Resource, Plan)]) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        for (resource, plan) in resources {
            if let Err(error) = self.enforce(*resource, plan).await {
                failures.push(format!("add-on {}: {error:#}", resource.id));
            }
        }
        match failures.is_empty() {
            true => Ok(()),
            false => anyhow::bail!("check plan limits: {}", failures.join("; ")),
        }
    }

    async fn enforce(&self, resource: Resource, plan: &Plan) -> anyhow::Result<()> {
        let database = resource.base_name();
        let mut admin = self.locked_admin(resource).await?;
        if !database_exists(&mut admin, &database).await? {
            return Ok(());
        }
        set_connection_limits(&mut admin, resource, connection_limit(plan)).await?;
        let limit = plan.limits.storage_mb.map(|limit| limit.saturating_mul(MB));
        let revoked = writes_revoked(&mut admin, resource).await?;
        let mut size = database_size(&mut admin, &database).await?;
        if revoked && limit.is_some_and(|limit| size > limit) {
            // Space freed by DELETE returns once vacuumed (a table's empty pages at its end),
            // and the app may not vacuum what it does not own.
            let mut in_database = self.admin(Some(&database)).await?;
            execute(&mut in_database, "VACUUM")
                .await
                .context("vacuum the database")?;
            in_database.close().await.ok();
            size = database_size(&mut admin, &database).await?;
        }
        let over = limit.is_some_and(|limit| size > limit);
        let roles = generation_roles(&mut admin, resource).await?;
        let sizes = format!(
            "{} of {}",
            human_size(size),
            limit.map_or_else(|| "no limit".to_owned(), human_size)
        );
        match (over, revoked) {
            (true, false) => {
                let deletes = self.revoke_writes(&mut admin, resource, &roles).await?;
                self.event(resource, revoked_message(plan, &sizes, deletes));
            }
            (true, true) => {
                if !revocation_complete(&mut admin, resource).await? {
                    self.revoke_writes(&mut admin, resource, &roles).await?;
                }
            }
            (false, true) => {
                self.restore_writes(&mut admin, resource, &roles).await?;
                self.event(
                    resource,
                    format!(
                        "the database is back under the {} plan's storage limit ({sizes}): \
                         INSERT, UPDATE and CREATE work again",
                        plan.name
                    ),
                );
            }
            (false, false) => {}
        }
        admin.close().await.ok();
        Ok(())
    }

    fn event(&self, resource: Resource, message: String) {
        tracing::info!(addon = %resource.id, message, "add-on event");
        if let Some(events) = &self.events {
            let _ = events.send(AddonEvent {
                resource: resource.id,
                source: "postgres",
                message,
            });
        }
    }

    /// Revokes the writes of `roles` (login roles of `resource`): they leave the owner role
    /// and their sessions end; in the database they own nothing, hold nothing but reading
    /// (and deleting, when that runs none of the app's code), and at last may connect again.
    /// Idempotent; an interrupted revocation is finished by the next check. Returns whether
    /// the roles may delete.
    pub(super) async fn revoke_writes(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
        roles: &[String],
    ) -> anyhow::Result<bool> {
        if roles.is_empty() {
            return Ok(true);
        }
        let owner = resource.base_name();
        for role in roles {
            // While the role is no member and has no CONNECT of its own, it cannot connect:
            // nothing happens in the database until the last step.
            execute(admin, &format!("REVOKE {owner} FROM {role}")).await?;
            execute(admin, &format!("ALTER ROLE {role} RESET role")).await?;
            terminate(admin, Column::User, role).await?;
        }
        let list = roles.join(", ");
        let mut in_database = self.admin(Some(&owner)).await?;
        execute(
            &mut in_database,
            &format!("REASSIGN OWNED BY {list} TO {owner}"),
        )
        .await
        .context("hand the login roles' objects to the owner")?;
        let deletes = deletes_are_contained(&mut in_database).await?;
        let reading = match deletes {
            true => "SELECT, DELETE, TRUNCATE",
            false => "SELECT",
        };
        for schema in user_schemas(&mut in_database).await? {
            let schema = ident(&schema);
            for statement in [
                format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC, {list}"),
                format!("GRANT USAGE ON SCHEMA {schema} TO {list}"),
                format!("REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC, {list}"),
                format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM PUBLIC, {list}"),
                format!("GRANT {reading} ON ALL TABLES IN SCHEMA {schema} TO {list}"),
                format!("GRANT SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {list}"),
            ] {
                execute(&mut in_database, &statement).await?;
            }
        }
        // `regprocedure` is the server's own quoting of a function and its argument types.
        let definers: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT pg_proc.oid::regprocedure::text FROM pg_proc \
             JOIN pg_namespace ON pg_namespace.oid = pg_proc.pronamespace \
             WHERE pg_proc.prosecdef AND {USER_SCHEMAS}"
        ))
        .fetch_all(&mut in_database)
        .await
        .context("list security definer functions")?;
        for function in definers {
            execute(
                &mut in_database,
                &format!("REVOKE EXECUTE ON ROUTINE {function} FROM PUBLIC, {list}"),
            )
            .await?;
        }
        in_database.close().await.ok();
        for role in roles {
            execute(
                admin,
                &format!("GRANT CONNECT ON DATABASE {owner} TO {role}"),
            )
            .await?;
        }
        Ok(deletes)
    }

    /// Gives `roles` their writes back: members of the owner role again, acting as it, with
    /// the grants of the revocation taken away; their sessions end so that new ones act as
    /// the owner.
    async fn restore_writes(
        &self,
        admin: &mut PgConnection,
        resource: Resource,
        roles: &[String],
    ) -> anyhow::Result<()> {
        if roles.is_empty() {
            return Ok(());
        }
        let owner = resource.base_name();
        for role in roles {
            execute(admin, &format!("GRANT {owner} TO {role}")).await?;
            execute(admin, &format!("ALTER ROLE {role} SET role = {owner}")).await?;
        }
        let list = roles.join(", ");
        let mut in_database = self.admin(Some(&owner)).await?;
        for schema in user_schemas(&mut in_database).await? {
            let schema = ident(&schema);
            for statement in [
                format!("REVOKE ALL ON SCHEMA {schema} FROM {list}"),
                format!("REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {list}"),
                format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {list}"),
            ] {
                execute(&mut in_database, &statement).await?;
            }
        }
        in_database.close().await.ok();
        for role in roles {
            execute(
                admin,
                &format!("REVOKE CONNECT ON DATABASE {owner} FROM {role}"),
            )
            .await?;
            terminate(admin, Column::User, role).await?;
        }
        Ok(())
    }
}

fn revoked_message(plan: &Plan, sizes: &str, deletes: bool) -> String {
    let still = match deletes {
        true => {
            "SELECT, DELETE and TRUNCATE still work: TRUNCATE frees space at once, DELETE once \
             the table is vacuumed"
        }
        false => {
            "SELECT still works; DELETE and TRUNCATE do not, as the database has triggers or \
             rules that would run with the owner's rights"
        }
    };
    format!(
        "the database is over the {} plan's storage limit ({sizes}): INSERT, UPDATE and CREATE \
         are revoked. {still}. Free space (or run pg:reset, or move to a bigger plan); writes \
         come back at the next check once the database is under the limit",
        plan.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revocation_says_what_still_works() {
        let plan = crate::Plan {
            name: "mini".into(),
            description: String::new(),
            default: true,
            limits: crate::Limits::default(),
        };
        let message = revoked_message(&plan, "1.1 GB of 1 GB", true);
        assert!(message.contains("over the mini plan's storage limit (1.1 GB of 1 GB)"));
        assert!(message.contains("SELECT, DELETE and TRUNCATE still work"));
        let message = revoked_message(&plan, "x", false);
        assert!(message.contains("DELETE and TRUNCATE do not"));
    }
}
