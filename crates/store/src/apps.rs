//! Apps and who may see them: the owner and collaborators.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{Account, App, AppName, ConfigVars, ReleaseStatus, StackName};

use crate::accounts::is_unique_violation;
use crate::releases::{insert_release, ReleaseInsert};
use crate::rows::{
    account_columns, account_from, get_i64, get_opt_i64, get_opt_text, get_text, get_time,
    get_uuid, now, parse_time, time_text,
};
use crate::{Result, Store, StoreError};

/// How an account relates to an app it can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Collaborator,
}

/// An app as one account sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAccess {
    pub app: App,
    pub role: Role,
}

/// The succeeded release with the highest version: the one that is live.
pub(crate) const CURRENT_RELEASE: &str =
    "r.app_id = ap.id AND r.status = 'succeeded' ORDER BY r.version DESC LIMIT 1";

fn app_select() -> String {
    format!(
        "SELECT ap.id, ap.name, ap.maintenance, ap.repo_size, ap.created_at, ap.updated_at,
           ap.build_stack, {},
           (SELECT s.size FROM releases r LEFT JOIN slugs s ON s.id = r.slug_id
             WHERE {CURRENT_RELEASE}) AS slug_size,
           (SELECT s.stack FROM releases r LEFT JOIN slugs s ON s.id = r.slug_id
             WHERE {CURRENT_RELEASE}) AS release_stack,
           (SELECT r.created_at FROM releases r WHERE {CURRENT_RELEASE}) AS released_at
         FROM apps ap JOIN accounts o ON o.id = ap.owner_id",
        account_columns("o")
    )
}

/// Apps the account `$1` owns or collaborates on.
pub(crate) const VISIBLE_TO: &str = "(ap.owner_id = $1 OR EXISTS (SELECT 1 FROM collaborators c
     WHERE c.app_id = ap.id AND c.account_id = $1))";

fn app_from(row: &AnyRow) -> anyhow::Result<App> {
    let name = get_text(row, "name")?;
    Ok(App {
        id: get_uuid(row, "id")?,
        name: AppName::parse(&name)?,
        owner: account_from(row, "o")?,
        maintenance: get_i64(row, "maintenance")? != 0,
        repo_size: get_opt_i64(row, "repo_size")?,
        slug_size: get_opt_i64(row, "slug_size")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
        released_at: get_opt_text(row, "released_at")?
            .map(|t| parse_time(&t))
            .transpose()?,
        build_stack: StackName::parse(&get_text(row, "build_stack")?)?,
        release_stack: get_opt_text(row, "release_stack")?,
    })
}

fn access_from(row: &AnyRow, account: &Account) -> anyhow::Result<AppAccess> {
    let app = app_from(row)?;
    let role = if app.owner.id == account.id {
        Role::Owner
    } else {
        Role::Collaborator
    };
    Ok(AppAccess { app, role })
}

impl Store {
    /// Creates an app owned by `owner`, with its v1 "Initial release", in one transaction.
    /// Conflict if the name is taken.
    pub async fn create_app(&self, name: &AppName, owner: &Account) -> Result<App> {
        let id = Uuid::new_v4();
        let created = now();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO apps (id, name, owner_id, maintenance, repo_size, created_at, updated_at,
                 build_stack)
             VALUES ($1, $2, $3, 0, NULL, $4, $4, $5)",
        )
        .bind(id.to_string())
        .bind(name.as_str())
        .bind(owner.id.to_string())
        .bind(time_text(created))
        .bind(StackName::DEFAULT.as_str())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => return Err(name_taken(name)),
            other => other?,
        };
        insert_release(
            &mut tx,
            id,
            ReleaseInsert {
                description: "Initial release".into(),
                slug_id: None,
                config: ConfigVars::default(),
                addon_plan_names: Vec::new(),
                status: ReleaseStatus::Succeeded,
                user: owner.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(App {
            id,
            name: name.clone(),
            owner: owner.clone(),
            maintenance: false,
            repo_size: None,
            slug_size: None,
            created_at: created,
            updated_at: created,
            released_at: Some(created),
            build_stack: StackName::DEFAULT,
            release_stack: None,
        })
    }

    /// The app named (or with the id) `name_or_id` if `account` owns it or collaborates on it.
    /// Apps the account may not see are `None`, exactly like apps that do not exist.
    pub async fn app_for(&self, account: &Account, name_or_id: &str) -> Result<Option<AppAccess>> {
        let row = sqlx::query(&format!(
            "{} WHERE {VISIBLE_TO} AND (ap.name = $2 OR ap.id = $2)",
            app_select()
        ))
        .bind(account.id.to_string())
        .bind(name_or_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| access_from(&row, account)).transpose()?)
    }

    /// Every app `account` owns or collaborates on, by name.
    pub async fn list_apps(&self, account: &Account) -> Result<Vec<AppAccess>> {
        let rows = sqlx::query(&format!(
            "{} WHERE {VISIBLE_TO} ORDER BY ap.name",
            app_select()
        ))
        .bind(account.id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| access_from(row, account))
            .collect::<anyhow::Result<_>>()?)
    }

    /// Every app on this server, by name (for the platform's own subsystems).
    pub async fn all_apps(&self) -> Result<Vec<App>> {
        let rows = sqlx::query(&format!("{} ORDER BY ap.name", app_select()))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(app_from).collect::<anyhow::Result<_>>()?)
    }

    /// Renames the app and/or sets maintenance mode. Conflict if the new name is taken.
    pub async fn update_app(
        &self,
        app_id: Uuid,
        name: Option<&AppName>,
        maintenance: Option<bool>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE apps SET name = COALESCE($2, name), maintenance = COALESCE($3, maintenance),
                 updated_at = $4
             WHERE id = $1",
        )
        .bind(app_id.to_string())
        .bind(name.map(|n| n.as_str().to_owned()))
        .bind(maintenance.map(i64::from))
        .bind(time_text(now()))
        .execute(&mut *tx)
        .await;
        match updated {
            Err(error) if is_unique_violation(&error) => {
                return Err(name_taken(name.expect("only a rename can conflict")))
            }
            Ok(done) if done.rows_affected() == 0 => return Err(app_gone()),
            other => other?,
        };
        tx.commit().await?;
        Ok(())
    }

    /// Sets the stack the app's next build runs on. Idempotent.
    pub async fn set_build_stack(&self, app_id: Uuid, stack: StackName) -> Result<()> {
        let updated =
            sqlx::query("UPDATE apps SET build_stack = $2, updated_at = $3 WHERE id = $1")
                .bind(app_id.to_string())
                .bind(stack.as_str())
                .bind(time_text(now()))
                .execute(&self.pool)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(app_gone());
        }
        Ok(())
    }

    /// Deletes the app and everything that belongs to it.
    pub async fn delete_app(&self, app_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let id = app_id.to_string();
        // Domains first: they refer to the app's SNI endpoints.
        for table in [
            "log_drains",
            "app_features",
            "domains",
            "sni_endpoints",
            // Add-ons this app created are destroyed by the API before it deletes the app;
            // attachments of other apps' add-ons just go.
            "addon_attachments",
            "formations",
            "dyno_placements",
            "collaborators",
            "app_buildpacks",
            "builds",
            "releases",
            "slugs",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE app_id = $1"))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(app_gone());
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Records the size of the app's git repository.
    pub async fn set_repo_size(&self, app_id: Uuid, bytes: i64) -> Result<()> {
        sqlx::query("UPDATE apps SET repo_size = $2 WHERE id = $1")
            .bind(app_id.to_string())
            .bind(bytes)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Takes the app's row lock: the first statement of every per-app write transaction, so that
/// writers to one app queue up (and SQLite takes its write lock before any read).
pub(crate) async fn lock_app(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    app_id: Uuid,
) -> Result<()> {
    let locked = sqlx::query("UPDATE apps SET updated_at = $2 WHERE id = $1")
        .bind(app_id.to_string())
        .bind(time_text(now()))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if locked == 0 {
        return Err(app_gone());
    }
    Ok(())
}

fn name_taken(name: &AppName) -> StoreError {
    StoreError::Conflict(format!("Name {name} is already taken"))
}

pub(crate) fn app_gone() -> StoreError {
    StoreError::NotFound("Couldn't find that app.".into())
}
