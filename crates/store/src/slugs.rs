//! Slugs: the compiled app archives that releases point at.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{ProcessTypes, Slug};

use crate::apps::lock_app;
use crate::rows::{
    get_json, get_opt_i64, get_opt_text, get_text, get_time, get_uuid, now, time_text, to_json,
};
use crate::{Result, Store};

/// What a caller supplies to record a slug; the store assigns id and time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSlug {
    pub process_types: ProcessTypes,
    pub commit: Option<String>,
    pub commit_description: Option<String>,
    pub buildpack_provided_description: Option<String>,
    pub stack: String,
    pub size: Option<i64>,
    pub checksum: Option<String>,
}

const SLUG_COLUMNS: &str = "id, app_id, process_types, commit_sha, commit_description,
    buildpack_description, stack, size, checksum, created_at";

fn slug_from(row: &AnyRow) -> anyhow::Result<Slug> {
    Ok(Slug {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        process_types: get_json(row, "process_types")?,
        commit: get_opt_text(row, "commit_sha")?,
        commit_description: get_opt_text(row, "commit_description")?,
        buildpack_provided_description: get_opt_text(row, "buildpack_description")?,
        stack: get_text(row, "stack")?,
        size: get_opt_i64(row, "size")?,
        checksum: get_opt_text(row, "checksum")?,
        created_at: get_time(row, "created_at")?,
    })
}

impl Store {
    pub async fn create_slug(&self, app_id: Uuid, slug: NewSlug) -> Result<Slug> {
        let id = Uuid::new_v4();
        let created_at = now();
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        sqlx::query(&format!(
            "INSERT INTO slugs ({SLUG_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(id.to_string())
        .bind(app_id.to_string())
        .bind(to_json(&slug.process_types))
        .bind(slug.commit.clone())
        .bind(slug.commit_description.clone())
        .bind(slug.buildpack_provided_description.clone())
        .bind(slug.stack.clone())
        .bind(slug.size)
        .bind(slug.checksum.clone())
        .bind(time_text(created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Slug {
            id,
            app_id,
            process_types: slug.process_types,
            commit: slug.commit,
            commit_description: slug.commit_description,
            buildpack_provided_description: slug.buildpack_provided_description,
            stack: slug.stack,
            size: slug.size,
            checksum: slug.checksum,
            created_at,
        })
    }

    pub async fn slug(&self, app_id: Uuid, id: Uuid) -> Result<Option<Slug>> {
        let row = sqlx::query(&format!(
            "SELECT {SLUG_COLUMNS} FROM slugs WHERE app_id = $1 AND id = $2"
        ))
        .bind(app_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| slug_from(&row)).transpose()?)
    }
}
