//! Log drains (where an app's log lines are forwarded) and app features (labs flags such as
//! `log-runtime-metrics`).

use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::accounts::is_unique_violation;
use crate::apps::lock_app;
use crate::rows::{get_i64, get_text, get_time, get_uuid, now, time_text};
use crate::{Result, Store, StoreError};

/// A log drain as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDrain {
    pub id: Uuid,
    pub app_id: Uuid,
    /// `d.<uuid>`: how the drain's receiver tells this app's lines apart.
    pub token: String,
    pub url: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// An app's setting of one feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFeature {
    pub app_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const DRAIN_COLUMNS: &str = "id, app_id, token, url, created_at, updated_at";

fn drain_from(row: &AnyRow) -> anyhow::Result<LogDrain> {
    Ok(LogDrain {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        token: get_text(row, "token")?,
        url: get_text(row, "url")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn feature_from(row: &AnyRow) -> anyhow::Result<AppFeature> {
    Ok(AppFeature {
        app_id: get_uuid(row, "app_id")?,
        name: get_text(row, "name")?,
        enabled: get_i64(row, "enabled")? != 0,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

impl Store {
    /// Adds a drain to the app. Conflict if the app has that URL already or has `max` drains.
    pub async fn add_log_drain(&self, app_id: Uuid, url: &str, max: usize) -> Result<LogDrain> {
        let at = now();
        let drain = LogDrain {
            id: Uuid::new_v4(),
            app_id,
            token: format!("d.{}", Uuid::new_v4()),
            url: url.to_owned(),
            created_at: at,
            updated_at: at,
        };
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_drains WHERE app_id = $1")
            .bind(app_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max {
            return Err(StoreError::Conflict(format!(
                "This app has {count} log drains, the most it may have: remove one first."
            )));
        }
        let inserted = sqlx::query(
            "INSERT INTO log_drains (id, app_id, token, url, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(drain.id.to_string())
        .bind(app_id.to_string())
        .bind(&drain.token)
        .bind(&drain.url)
        .bind(time_text(at))
        .bind(time_text(at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(format!(
                    "The drain {url} has already been added to this app."
                )))
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(drain)
    }

    /// The app's drains, oldest first.
    pub async fn log_drains(&self, app_id: Uuid) -> Result<Vec<LogDrain>> {
        let rows = sqlx::query(&format!(
            "SELECT {DRAIN_COLUMNS} FROM log_drains WHERE app_id = $1 ORDER BY created_at, id"
        ))
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(drain_from).collect::<anyhow::Result<_>>()?)
    }

    /// Every app's drains (what the server starts with).
    pub async fn all_log_drains(&self) -> Result<Vec<LogDrain>> {
        let rows = sqlx::query(&format!(
            "SELECT {DRAIN_COLUMNS} FROM log_drains ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(drain_from).collect::<anyhow::Result<_>>()?)
    }

    /// Removes the app's drain with this id, URL or token. NotFound if it has none such.
    pub async fn remove_log_drain(&self, app_id: Uuid, id_or_url: &str) -> Result<LogDrain> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {DRAIN_COLUMNS} FROM log_drains
             WHERE app_id = $1 AND (id = $2 OR url = $2 OR token = $2)"
        ))
        .bind(app_id.to_string())
        .bind(id_or_url)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "No drain {id_or_url} on this app."
            )));
        };
        let drain = drain_from(&row)?;
        sqlx::query("DELETE FROM log_drains WHERE id = $1")
            .bind(drain.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(drain)
    }

    /// Turns a feature on or off for the app.
    pub async fn set_app_feature(
        &self,
        app_id: Uuid,
        name: &str,
        enabled: bool,
    ) -> Result<AppFeature> {
        let at = time_text(now());
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let updated = sqlx::query(
            "UPDATE app_features SET enabled = $3, updated_at = $4 WHERE app_id = $1 AND name = $2",
        )
        .bind(app_id.to_string())
        .bind(name)
        .bind(i64::from(enabled))
        .bind(&at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            sqlx::query(
                "INSERT INTO app_features (app_id, name, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(app_id.to_string())
            .bind(name)
            .bind(i64::from(enabled))
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(
            "SELECT app_id, name, enabled, created_at, updated_at FROM app_features
             WHERE app_id = $1 AND name = $2",
        )
        .bind(app_id.to_string())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(feature_from(&row)?)
    }

    /// The features the app has set (features it never set are absent).
    pub async fn app_features(&self, app_id: Uuid) -> Result<Vec<AppFeature>> {
        let rows = sqlx::query(
            "SELECT app_id, name, enabled, created_at, updated_at FROM app_features
             WHERE app_id = $1 ORDER BY name",
        )
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(feature_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Every app's setting of the feature `name` (what the server starts with).
    pub async fn all_app_features(&self, name: &str) -> Result<Vec<AppFeature>> {
        let rows = sqlx::query(
            "SELECT app_id, name, enabled, created_at, updated_at FROM app_features
             WHERE name = $1",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(feature_from)
            .collect::<anyhow::Result<_>>()?)
    }
}
