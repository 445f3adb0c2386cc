//! Builds and the buildpacks an app asks for.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{Account, Build, BuildStatus};

use crate::apps::lock_app;
use crate::rows::{
    account_columns, account_from, get_json, get_opt_text, get_text, get_time, get_uuid, now,
    time_text, to_json,
};
use crate::{Result, Store, StoreError};

/// What finishing a build records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    pub status: BuildStatus,
    pub buildpacks: Vec<String>,
    pub slug_id: Option<Uuid>,
    pub release_id: Option<Uuid>,
}

fn build_select() -> String {
    format!(
        "SELECT b.id, b.app_id, b.status, b.source_url, b.source_version, b.buildpacks,
                b.slug_id, b.release_id, b.output_token, b.created_at, b.updated_at,
                (SELECT s.stack FROM slugs s WHERE s.id = b.slug_id) AS slug_stack, {}
         FROM builds b JOIN accounts u ON u.id = b.user_id",
        account_columns("u")
    )
}

fn parse_id(text: Option<String>) -> anyhow::Result<Option<Uuid>> {
    Ok(text.map(|t| Uuid::parse_str(&t)).transpose()?)
}

fn build_from(row: &AnyRow) -> anyhow::Result<Build> {
    Ok(Build {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        status: BuildStatus::parse(&get_text(row, "status")?)?,
        source_url: get_opt_text(row, "source_url")?,
        source_version: get_opt_text(row, "source_version")?,
        buildpacks: get_json(row, "buildpacks")?,
        slug_id: parse_id(get_opt_text(row, "slug_id")?)?,
        stack: get_opt_text(row, "slug_stack")?,
        release_id: parse_id(get_opt_text(row, "release_id")?)?,
        user: account_from(row, "u")?,
        output_token: get_text(row, "output_token")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

impl Store {
    /// Records a new, pending build.
    pub async fn create_build(
        &self,
        app_id: Uuid,
        user: &Account,
        source_url: Option<&str>,
        source_version: Option<&str>,
        output_token: &str,
    ) -> Result<Build> {
        let build = Build {
            id: Uuid::new_v4(),
            app_id,
            status: BuildStatus::Pending,
            source_url: source_url.map(str::to_owned),
            source_version: source_version.map(str::to_owned),
            buildpacks: Vec::new(),
            slug_id: None,
            stack: None,
            release_id: None,
            user: user.clone(),
            output_token: output_token.to_owned(),
            created_at: now(),
            updated_at: now(),
        };
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        sqlx::query(
            "INSERT INTO builds (id, app_id, status, source_url, source_version, buildpacks,
                 slug_id, release_id, user_id, output_token, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $8, $9, $9)",
        )
        .bind(build.id.to_string())
        .bind(app_id.to_string())
        .bind(build.status.as_str())
        .bind(build.source_url.clone())
        .bind(build.source_version.clone())
        .bind(to_json(&build.buildpacks))
        .bind(user.id.to_string())
        .bind(output_token)
        .bind(time_text(build.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(build)
    }

    /// Ends a pending build. Conflict unless it is pending.
    pub async fn finish_build(&self, build_id: Uuid, outcome: &BuildOutcome) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE builds SET status = $2, buildpacks = $3, slug_id = $4, release_id = $5,
                 updated_at = $6
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(build_id.to_string())
        .bind(outcome.status.as_str())
        .bind(to_json(&outcome.buildpacks))
        .bind(outcome.slug_id.map(|id| id.to_string()))
        .bind(outcome.release_id.map(|id| id.to_string()))
        .bind(time_text(now()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::Conflict("That build is not pending.".into()));
        }
        Ok(())
    }

    /// Marks every pending build failed: called on start-up, when no build can be running.
    /// Returns how many there were.
    pub async fn fail_interrupted_builds(&self) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE builds SET status = 'failed', updated_at = $1 WHERE status = 'pending'",
        )
        .bind(time_text(now()))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The source URLs of every pending build (on any app): the sources that are still to be
    /// read, which must not expire yet.
    pub async fn pending_build_sources(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT source_url FROM builds WHERE status = 'pending' AND source_url IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The app's builds, newest first.
    pub async fn builds(&self, app_id: Uuid) -> Result<Vec<Build>> {
        let rows = sqlx::query(&format!(
            "{} WHERE b.app_id = $1 ORDER BY b.created_at DESC, b.id",
            build_select()
        ))
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(build_from).collect::<anyhow::Result<_>>()?)
    }

    pub async fn build(&self, app_id: Uuid, id: Uuid) -> Result<Option<Build>> {
        let row = sqlx::query(&format!(
            "{} WHERE b.app_id = $1 AND b.id = $2",
            build_select()
        ))
        .bind(app_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| build_from(&row)).transpose()?)
    }

    /// The build whose output stream URL carries `token`.
    pub async fn build_by_output_token(&self, token: &str) -> Result<Option<Build>> {
        let row = sqlx::query(&format!("{} WHERE b.output_token = $1", build_select()))
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| build_from(&row)).transpose()?)
    }

    /// The buildpacks the app asks for, in order (empty: detect over the built-in ones).
    pub async fn buildpacks(&self, app_id: Uuid) -> Result<Vec<String>> {
        let urls: Vec<String> =
            sqlx::query_scalar("SELECT url FROM app_buildpacks WHERE app_id = $1 ORDER BY ordinal")
                .bind(app_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        Ok(urls)
    }

    /// Replaces the app's buildpack list.
    pub async fn set_buildpacks(&self, app_id: Uuid, urls: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        sqlx::query("DELETE FROM app_buildpacks WHERE app_id = $1")
            .bind(app_id.to_string())
            .execute(&mut *tx)
            .await?;
        for (ordinal, url) in urls.iter().enumerate() {
            sqlx::query("INSERT INTO app_buildpacks (app_id, ordinal, url) VALUES ($1, $2, $3)")
                .bind(app_id.to_string())
                .bind(ordinal as i64)
                .bind(url)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
