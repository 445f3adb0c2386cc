//! The formation: quantity and size per process type of the current release.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{
    apply_formation_updates, DynoSize, FormationEntry, FormationUpdate, ProcessType, ProcessTypes,
};

use crate::apps::lock_app;
use crate::releases::RELEASE_PHASE_TYPE;
use crate::rows::{get_i64, get_text, get_time, get_uuid, now, time_text};
use crate::{Result, Store};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Store {
    /// The formation of the current release's process types, by type. Types that the current
    /// release does not define are not listed (their entries are kept for when a release
    /// defines them again).
    pub async fn formation(&self, app_id: Uuid) -> Result<Vec<FormationEntry>> {
        let mut tx = self.pool.begin().await?;
        let (entries, _) = read_formation(&mut tx, app_id).await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// Applies `updates` all or nothing and returns the entries that changed.
    pub async fn update_formation(
        &self,
        app_id: Uuid,
        updates: &[FormationUpdate],
    ) -> Result<Vec<FormationEntry>> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let (entries, defined) = read_formation(&mut tx, app_id).await?;
        let changed = apply_formation_updates(&entries, &defined, updates, now())?;
        for entry in &changed {
            sqlx::query(
                "UPDATE formations SET quantity = $3, size = $4, updated_at = $5
                 WHERE app_id = $1 AND process_type = $2",
            )
            .bind(app_id.to_string())
            .bind(entry.process_type.as_str())
            .bind(i64::from(entry.quantity))
            .bind(entry.size.name())
            .bind(time_text(entry.updated_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

/// The formation entries of the current release's types, and those types with their commands.
async fn read_formation(
    tx: &mut Tx<'_>,
    app_id: Uuid,
) -> Result<(Vec<FormationEntry>, ProcessTypes)> {
    let process_types: Option<String> = sqlx::query_scalar(&format!(
        "SELECT s.process_types FROM apps ap
           JOIN releases r ON {CURRENT_RELEASE_JOIN}
           LEFT JOIN slugs s ON s.id = r.slug_id
         WHERE ap.id = $1"
    ))
    .bind(app_id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    let mut defined: ProcessTypes = match process_types {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| anyhow::Error::new(e).context("parse process types"))?,
        None => ProcessTypes::new(),
    };
    defined.remove(RELEASE_PHASE_TYPE);
    let rows = sqlx::query(
        "SELECT id, process_type, quantity, size, created_at, updated_at FROM formations
         WHERE app_id = $1 ORDER BY process_type",
    )
    .bind(app_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let entries = rows
        .iter()
        .filter_map(|row| entry_from(row, &defined).transpose())
        .collect::<anyhow::Result<_>>()?;
    Ok((entries, defined))
}

/// `r` is the current release of `ap`, as a join condition.
pub(crate) const CURRENT_RELEASE_JOIN: &str = "r.id = (SELECT r2.id FROM releases r2
     WHERE r2.app_id = ap.id AND r2.status = 'succeeded' ORDER BY r2.version DESC LIMIT 1)";

pub(crate) fn entry_from(
    row: &AnyRow,
    defined: &ProcessTypes,
) -> anyhow::Result<Option<FormationEntry>> {
    let process_type = get_text(row, "process_type")?;
    let Some(command) = defined.get(&process_type) else {
        return Ok(None);
    };
    let quantity = get_i64(row, "quantity")?;
    Ok(Some(FormationEntry {
        id: get_uuid(row, "id")?,
        process_type: ProcessType::parse(&process_type)?,
        quantity: u32::try_from(quantity)?,
        size: DynoSize::parse(&get_text(row, "size")?)?,
        command: command.clone(),
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    }))
}
