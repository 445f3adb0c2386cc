//! The release ledger: appending releases (config changes, rollbacks, new slugs), reading them
//! by version, id or range.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{
    initial_quantity, Account, ConfigChanges, ConfigVars, DynoSize, ProcessTypes, Release,
    ReleaseStatus,
};

use crate::apps::{app_gone, lock_app};
use crate::rows::{
    account_columns, account_from, get_i64, get_json, get_opt_text, get_text, get_time, get_uuid,
    now, time_text, to_json,
};
use crate::{Result, Store, StoreError};

/// The process type that runs as the release phase rather than as part of the formation.
pub const RELEASE_PHASE_TYPE: &str = "release";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOrder {
    Ascending,
    Descending,
}

/// Which releases to list, in Heroku `Range` terms: `version [start]..[end]`, iterated in
/// `order`. `start` is where iteration begins (the highest version when descending) and is
/// skipped itself when `start_exclusive`; `end` is inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseRange {
    pub start: Option<i64>,
    pub start_exclusive: bool,
    pub end: Option<i64>,
    pub order: ReleaseOrder,
    pub limit: u32,
}

/// A release about to be appended (the store picks id and version).
pub(crate) struct ReleaseInsert {
    pub description: String,
    pub slug_id: Option<Uuid>,
    pub config: ConfigVars,
    pub addon_plan_names: Vec<String>,
    pub status: ReleaseStatus,
    pub user: Account,
}

fn release_select() -> String {
    format!(
        "SELECT r.id, r.app_id, r.version, r.description, r.slug_id, r.config,
                r.addon_plan_names, r.status, r.created_at, {}
         FROM releases r JOIN accounts u ON u.id = r.user_id",
        account_columns("u")
    )
}

fn release_from(row: &AnyRow, current_version: Option<i64>) -> anyhow::Result<Release> {
    let version = get_i64(row, "version")?;
    Ok(Release {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        version,
        description: get_text(row, "description")?,
        slug_id: get_opt_text(row, "slug_id")?
            .map(|id| Uuid::parse_str(&id))
            .transpose()?,
        config: get_json(row, "config")?,
        addon_plan_names: get_json(row, "addon_plan_names")?,
        status: ReleaseStatus::parse(&get_text(row, "status")?)?,
        user: account_from(row, "u")?,
        created_at: get_time(row, "created_at")?,
        current: Some(version) == current_version,
    })
}

impl Store {
    /// The app's live release: its newest succeeded one. Every app has one from creation on.
    pub async fn current_release(&self, app_id: Uuid) -> Result<Release> {
        let row = sqlx::query(&format!(
            "{} WHERE r.app_id = $1 AND r.status = 'succeeded' ORDER BY r.version DESC LIMIT 1",
            release_select()
        ))
        .bind(app_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(app_gone)?;
        let version = get_i64(&row, "version")?;
        Ok(release_from(&row, Some(version))?)
    }

    async fn current_version(&self, app_id: Uuid) -> Result<Option<i64>> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM releases WHERE app_id = $1 AND status = 'succeeded'",
        )
        .bind(app_id.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(version)
    }

    /// Releases in `range`, at most `range.limit` of them.
    pub async fn list_releases(&self, app_id: Uuid, range: &ReleaseRange) -> Result<Vec<Release>> {
        let (after, before, direction) = match range.order {
            ReleaseOrder::Ascending => (">", "<=", "ASC"),
            ReleaseOrder::Descending => ("<", ">=", "DESC"),
        };
        let start_op = match (range.start_exclusive, after) {
            (true, op) => op,
            (false, ">") => ">=",
            (false, _) => "<=",
        };
        let rows = sqlx::query(&format!(
            "{} WHERE r.app_id = $1
               AND ($2 IS NULL OR r.version {start_op} $2)
               AND ($3 IS NULL OR r.version {before} $3)
             ORDER BY r.version {direction} LIMIT $4",
            release_select()
        ))
        .bind(app_id.to_string())
        .bind(range.start)
        .bind(range.end)
        .bind(i64::from(range.limit))
        .fetch_all(&self.pool)
        .await?;
        let current = self.current_version(app_id).await?;
        Ok(rows
            .iter()
            .map(|row| release_from(row, current))
            .collect::<anyhow::Result<_>>()?)
    }

    pub async fn release_by_version(&self, app_id: Uuid, version: i64) -> Result<Option<Release>> {
        let row = sqlx::query(&format!(
            "{} WHERE r.app_id = $1 AND r.version = $2",
            release_select()
        ))
        .bind(app_id.to_string())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        self.with_current(app_id, row).await
    }

    pub async fn release_by_id(&self, app_id: Uuid, id: Uuid) -> Result<Option<Release>> {
        let row = sqlx::query(&format!(
            "{} WHERE r.app_id = $1 AND r.id = $2",
            release_select()
        ))
        .bind(app_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        self.with_current(app_id, row).await
    }

    async fn with_current(&self, app_id: Uuid, row: Option<AnyRow>) -> Result<Option<Release>> {
        let Some(row) = row else { return Ok(None) };
        let current = self.current_version(app_id).await?;
        Ok(Some(release_from(&row, current)?))
    }

    /// Applies `changes` to the current config vars and appends a release with the result,
    /// in one transaction. Returns the new config and the release, or no release when nothing
    /// changed.
    pub async fn set_config(
        &self,
        app_id: Uuid,
        changes: &ConfigChanges,
        user: &Account,
    ) -> Result<(ConfigVars, Option<Release>)> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let current = current_in(&mut tx, app_id).await?;
        let Some((config, description)) = current.config.apply(changes)? else {
            return Ok((current.config, None));
        };
        let release = insert_release(
            &mut tx,
            app_id,
            ReleaseInsert {
                description,
                slug_id: current.slug_id,
                config: config.clone(),
                addon_plan_names: current.addon_plan_names,
                status: ReleaseStatus::Succeeded,
                user: user.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok((config, Some(release)))
    }

    /// Appends a release that copies the slug and config vars of `target` ("Rollback to
    /// v3"), but keeps the config vars of the add-ons attached now (add-ons are not rolled
    /// back). The target must be a succeeded release of this app.
    pub async fn rollback(&self, app_id: Uuid, target: Uuid, user: &Account) -> Result<Release> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let row = sqlx::query(&format!(
            "{} WHERE r.app_id = $1 AND r.id = $2",
            release_select()
        ))
        .bind(app_id.to_string())
        .bind(target.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound("Couldn't find that release.".into()))?;
        let target = release_from(&row, None)?;
        if !target.eligible_for_rollback() {
            return Err(StoreError::Conflict(format!(
                "Release v{} {}: only succeeded releases can be rolled back to",
                target.version, target.status
            )));
        }
        let (addon_vars, addon_plan_names) =
            crate::addons::attached_config_in(&mut tx, app_id).await?;
        let addon_vars = ConfigChanges::parse(
            addon_vars
                .iter()
                .map(|(key, value)| (key.as_str(), value.clone())),
        )?;
        let config = match target.config.apply(&addon_vars)? {
            Some((config, _)) => config,
            None => target.config.clone(),
        };
        let release = insert_release(
            &mut tx,
            app_id,
            ReleaseInsert {
                description: target.rollback_description(),
                slug_id: target.slug_id,
                config,
                addon_plan_names,
                status: ReleaseStatus::Succeeded,
                user: user.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(release)
    }

    /// Appends a release of `slug_id` with the current config vars. A release created
    /// `Pending` (waiting for its release phase) goes live only through
    /// [`Store::finish_release`].
    pub async fn release_slug(
        &self,
        app_id: Uuid,
        slug_id: Uuid,
        description: &str,
        status: ReleaseStatus,
        user: &Account,
    ) -> Result<Release> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let slug_exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM slugs WHERE app_id = $1 AND id = $2")
                .bind(app_id.to_string())
                .bind(slug_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if slug_exists.is_none() {
            return Err(StoreError::NotFound("Couldn't find that slug.".into()));
        }
        let current = current_in(&mut tx, app_id).await?;
        let release = insert_release(
            &mut tx,
            app_id,
            ReleaseInsert {
                description: description.to_owned(),
                slug_id: Some(slug_id),
                config: current.config,
                addon_plan_names: current.addon_plan_names,
                status,
                user: user.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(release)
    }

    /// Ends a pending release's release phase: `Succeeded` makes it live, `Failed` keeps it
    /// from ever going live. Conflict unless the release is pending.
    pub async fn finish_release(
        &self,
        app_id: Uuid,
        release_id: Uuid,
        status: ReleaseStatus,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let updated = sqlx::query(
            "UPDATE releases SET status = $3 WHERE app_id = $1 AND id = $2 AND status = 'pending'",
        )
        .bind(app_id.to_string())
        .bind(release_id.to_string())
        .bind(status.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::Conflict("That release is not pending.".into()));
        }
        if status == ReleaseStatus::Succeeded {
            let slug_id: Option<String> =
                sqlx::query_scalar("SELECT slug_id FROM releases WHERE id = $1")
                    .bind(release_id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(slug_id) = slug_id {
                ensure_formation(&mut tx, app_id, &slug_id).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) async fn current_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    app_id: Uuid,
) -> Result<Release> {
    let row = sqlx::query(&format!(
        "{} WHERE r.app_id = $1 AND r.status = 'succeeded' ORDER BY r.version DESC LIMIT 1",
        release_select()
    ))
    .bind(app_id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(app_gone)?;
    Ok(release_from(&row, None)?)
}

/// Appends a release with the next version. The caller holds the app's lock (or created the
/// app in this transaction), so no other writer can take the same version. A succeeded
/// release with a slug also gives any process type it introduces a formation entry.
pub(crate) async fn insert_release(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    app_id: Uuid,
    release: ReleaseInsert,
) -> Result<Release> {
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app_id = $1")
            .bind(app_id.to_string())
            .fetch_one(&mut **tx)
            .await?;
    let id = Uuid::new_v4();
    let created_at = now();
    sqlx::query(
        "INSERT INTO releases (id, app_id, version, description, slug_id, config,
             addon_plan_names, status, user_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id.to_string())
    .bind(app_id.to_string())
    .bind(version)
    .bind(&release.description)
    .bind(release.slug_id.map(|s| s.to_string()))
    .bind(to_json(&release.config))
    .bind(to_json(&release.addon_plan_names))
    .bind(release.status.as_str())
    .bind(release.user.id.to_string())
    .bind(time_text(created_at))
    .execute(&mut **tx)
    .await?;
    if let (Some(slug_id), ReleaseStatus::Succeeded) = (release.slug_id, release.status) {
        ensure_formation(tx, app_id, &slug_id.to_string()).await?;
    }
    Ok(Release {
        id,
        app_id,
        version,
        description: release.description,
        slug_id: release.slug_id,
        config: release.config,
        addon_plan_names: release.addon_plan_names,
        status: release.status,
        user: release.user,
        created_at,
        current: release.status == ReleaseStatus::Succeeded,
    })
}

/// Gives every process type of the slug (but the release phase) a formation entry if it has
/// none: one web dyno, zero of anything else. Existing entries keep their quantity and size.
async fn ensure_formation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    app_id: Uuid,
    slug_id: &str,
) -> Result<()> {
    let process_types: String = sqlx::query_scalar("SELECT process_types FROM slugs WHERE id = $1")
        .bind(slug_id)
        .fetch_one(&mut **tx)
        .await?;
    let process_types: ProcessTypes = serde_json::from_str(&process_types)
        .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("parse process types")))?;
    let at = time_text(now());
    for process_type in process_types.keys().filter(|t| *t != RELEASE_PHASE_TYPE) {
        sqlx::query(
            "INSERT INTO formations (id, app_id, process_type, quantity, size, created_at,
                 updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $6
             WHERE NOT EXISTS (SELECT 1 FROM formations WHERE app_id = $2 AND process_type = $3)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(app_id.to_string())
        .bind(process_type.as_str())
        .bind(i64::from(initial_quantity(process_type)))
        .bind(DynoSize::DEFAULT.name())
        .bind(&at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
