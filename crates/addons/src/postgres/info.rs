//! What `pg:info` shows of an add-on's database: its plan and limits against what it uses,
//! its server's version, its backups and credentials' generation. Never a credential.

use anyhow::Context;
use sqlx::Connection;

use super::access;
use super::sql::database_exists;
use super::{generation, PostgresProvider};
use crate::{Plan, Resource};

const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];

/// `7.4 MB`, `1 GB`, `120 MB`: one decimal below ten, none above (and none when whole).
pub(super) fn human_size(bytes: u64) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = match value < 10.0 && unit > 0 {
        true => format!("{value:.1}"),
        false => format!("{value:.0}"),
    };
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

/// `used / limit` (with the share of the limit used), or `used` without a limit.
fn against(used: String, limit: Option<String>, share: Option<f64>) -> String {
    match (limit, share) {
        (Some(limit), Some(share)) => format!("{used} / {limit} ({share:.2}%)"),
        (Some(limit), None) => format!("{used} / {limit}"),
        (None, _) => used,
    }
}

impl PostgresProvider {
    pub(super) async fn info_rows(
        &self,
        resource: Resource,
        plan: &Plan,
        state: &serde_json::Value,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let database = resource.base_name();
        let mut admin = self.admin(None).await?;
        let mut rows = vec![("Plan".to_owned(), plan.name.clone())];
        if !database_exists(&mut admin, &database).await? {
            rows.push((
                "Status".into(),
                "unavailable: the database does not exist".into(),
            ));
            return Ok(rows);
        }
        let version: String = sqlx::query_scalar("SELECT current_setting('server_version')")
            .fetch_one(&mut admin)
            .await
            .context("look up the server's version")?;
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size($1::text)")
            .bind(&database)
            .fetch_one(&mut admin)
            .await
            .context("measure the database")?;
        let connections: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND backend_type = 'client backend'",
        )
        .bind(&database)
        .fetch_one(&mut admin)
        .await
        .context("count connections")?;
        let revoked = access::writes_revoked(&mut admin, resource).await?;
        admin.close().await.ok();
        let mut in_database = self.admin(Some(&database)).await?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class JOIN pg_namespace ON pg_namespace.oid = relnamespace \
             WHERE relkind IN ('r', 'p') AND nspname NOT LIKE 'pg\\_%' \
             AND nspname <> 'information_schema'",
        )
        .fetch_one(&mut in_database)
        .await
        .context("count tables")?;
        in_database.close().await.ok();

        let size = u64::try_from(size).unwrap_or(0);
        let limit = plan.limits.storage_mb.map(|limit| limit * 1024 * 1024);
        rows.push(("Status".into(), "available".into()));
        rows.push(("PostgreSQL version".into(), version));
        rows.push((
            "Data size".into(),
            against(
                human_size(size),
                limit.map(human_size),
                limit.map(|limit| size as f64 * 100.0 / limit.max(1) as f64),
            ),
        ));
        rows.push(("Tables".into(), tables.to_string()));
        rows.push((
            "Connections".into(),
            against(
                connections.to_string(),
                plan.limits.connections.map(|limit| limit.to_string()),
                None,
            ),
        ));
        if self.backups.is_some() {
            let kept = self.backup_list(resource).await?.len();
            rows.push((
                "Backups".into(),
                against(
                    kept.to_string(),
                    plan.limits.backups.map(|limit| limit.to_string()),
                    None,
                ),
            ));
        }
        if let Ok(generation) = generation(state) {
            rows.push(("Credential generation".into(), generation.to_string()));
        }
        rows.push((
            "Write access".into(),
            match revoked {
                false => "ok".into(),
                true => "revoked: the database is over the plan's storage limit".into(),
            },
        ));
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_heroku_s() {
        let check = |bytes: u64, expected: &str| assert_eq!(human_size(bytes), expected);
        check(0, "0 B");
        check(1000, "1000 B");
        check(7_708_007, "7.4 MB");
        check(1024 * 1024 * 1024, "1 GB");
        check(1536 * 1024 * 1024, "1.5 GB");
        check(120 * 1024 * 1024 + 400_000, "120 MB");
        check(64 * 1024 * 1024 * 1024, "64 GB");
    }

    #[test]
    fn usage_against_a_limit() {
        assert_eq!(
            against("7.4 MB".into(), Some("1 GB".into()), Some(0.7234)),
            "7.4 MB / 1 GB (0.72%)"
        );
        assert_eq!(against("3".into(), Some("20".into()), None), "3 / 20");
        assert_eq!(against("3".into(), None, None), "3");
    }
}
