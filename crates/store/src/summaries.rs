//! One read for a list of apps with what a dashboard shows beside each: its formation and its
//! live release. Three queries whatever the number of apps, so the list stays fast on a
//! server with hundreds of them.

use std::collections::HashMap;

use uuid::Uuid;
use wharf_model::{Account, FormationEntry, ProcessTypes};

use crate::apps::{AppAccess, VISIBLE_TO};
use crate::formation::{entry_from, CURRENT_RELEASE_JOIN};
use crate::releases::RELEASE_PHASE_TYPE;
use crate::rows::{get_i64, get_opt_text, get_text, get_time, get_uuid};
use crate::{Result, Store};

/// An app as the apps list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSummary {
    pub access: AppAccess,
    /// The current release's process types' formation, by type.
    pub formation: Vec<FormationEntry>,
    pub release: LiveRelease,
}

/// The live release, in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRelease {
    pub version: i64,
    pub description: String,
    pub created_at: time::OffsetDateTime,
}

impl Store {
    /// Every app `account` owns or collaborates on, by name, with its formation and live
    /// release.
    pub async fn app_summaries(&self, account: &Account) -> Result<Vec<AppSummary>> {
        let apps = self.list_apps(account).await?;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT ap.id AS app_id, r.version, r.description, r.created_at, s.process_types
             FROM apps ap
               JOIN releases r ON {CURRENT_RELEASE_JOIN}
               LEFT JOIN slugs s ON s.id = r.slug_id
             WHERE {VISIBLE_TO}"
        ))
        .bind(account.id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut releases = HashMap::new();
        for row in &rows {
            let mut defined: ProcessTypes = match get_opt_text(row, "process_types")? {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| anyhow::Error::new(e).context("parse process types"))?,
                None => ProcessTypes::new(),
            };
            defined.remove(RELEASE_PHASE_TYPE);
            let release = LiveRelease {
                version: get_i64(row, "version")?,
                description: get_text(row, "description")?,
                created_at: get_time(row, "created_at")?,
            };
            releases.insert(get_uuid(row, "app_id")?, (release, defined));
        }
        let rows = sqlx::query(&format!(
            "SELECT f.app_id, f.id, f.process_type, f.quantity, f.size, f.created_at,
                    f.updated_at
             FROM formations f JOIN apps ap ON ap.id = f.app_id
             WHERE {VISIBLE_TO} ORDER BY f.process_type"
        ))
        .bind(account.id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut formations: HashMap<Uuid, Vec<FormationEntry>> = HashMap::new();
        for row in &rows {
            let app_id = get_uuid(row, "app_id")?;
            let Some((_, defined)) = releases.get(&app_id) else {
                continue;
            };
            if let Some(entry) = entry_from(row, defined)? {
                formations.entry(app_id).or_default().push(entry);
            }
        }
        Ok(apps
            .into_iter()
            .filter_map(|access| {
                // An app deleted between the reads is left out.
                let (release, _) = releases.remove(&access.app.id)?;
                let formation = formations.remove(&access.app.id).unwrap_or_default();
                Some(AppSummary {
                    access,
                    formation,
                    release,
                })
            })
            .collect())
    }
}
