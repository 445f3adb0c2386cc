//! Collaborators: accounts given access to an app they do not own.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{Account, App, AppName, Collaborator};

use crate::accounts::is_unique_violation;
use crate::apps::lock_app;
use crate::rows::{account_columns, account_from, get_text, get_time, get_uuid, now, time_text};
use crate::{Result, Store, StoreError};

fn collaborator_from(row: &AnyRow) -> anyhow::Result<Collaborator> {
    Ok(Collaborator {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        app_name: AppName::parse(&get_text(row, "app_name")?)?,
        account: account_from(row, "c")?,
        created_at: get_time(row, "created_at")?,
    })
}

impl Store {
    /// Gives `account` access to `app`. Conflict if it already has access.
    pub async fn add_collaborator(&self, app: &App, account: &Account) -> Result<Collaborator> {
        if app.owner.id == account.id {
            return Err(StoreError::Conflict(format!(
                "{} owns {} already",
                account.email, app.name
            )));
        }
        let collaborator = Collaborator {
            id: Uuid::new_v4(),
            app_id: app.id,
            app_name: app.name.clone(),
            account: account.clone(),
            created_at: now(),
        };
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app.id).await?;
        let inserted = sqlx::query(
            "INSERT INTO collaborators (id, app_id, account_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(collaborator.id.to_string())
        .bind(app.id.to_string())
        .bind(account.id.to_string())
        .bind(time_text(collaborator.created_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(format!(
                    "{} is already a collaborator on {}",
                    account.email, app.name
                )))
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(collaborator)
    }

    /// Takes `account_id`'s access to the app away. NotFound if it had none.
    pub async fn remove_collaborator(&self, app_id: Uuid, account_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let removed =
            sqlx::query("DELETE FROM collaborators WHERE app_id = $1 AND account_id = $2")
                .bind(app_id.to_string())
                .bind(account_id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if removed == 0 {
            return Err(StoreError::NotFound(
                "Couldn't find that collaborator.".into(),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The app's collaborators (not its owner), by e-mail address.
    pub async fn collaborators(&self, app_id: Uuid) -> Result<Vec<Collaborator>> {
        let rows = sqlx::query(&format!(
            "SELECT cl.id, cl.app_id, ap.name AS app_name, cl.created_at, {}
             FROM collaborators cl
               JOIN accounts c ON c.id = cl.account_id
               JOIN apps ap ON ap.id = cl.app_id
             WHERE cl.app_id = $1 ORDER BY c.email",
            account_columns("c")
        ))
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(collaborator_from)
            .collect::<anyhow::Result<_>>()?)
    }
}
