//! Registered buildpacks: the directories on the server an admin named, so that apps may use
//! them by name. The store keeps the name and the directory; whether the directory is a
//! buildpack is checked by the API when an admin registers it, and by the builder when it runs.

use sqlx::any::AnyRow;
use wharf_model::{Account, BuildpackName, BuildpackRegistration};

use crate::accounts::is_unique_violation;
use crate::rows::{account_columns, account_from, get_text, get_time, now, time_text};
use crate::{Result, Store, StoreError};

fn registration_select() -> String {
    format!(
        "SELECT r.name, r.dir, r.created_at, {}
         FROM buildpack_registrations r JOIN accounts u ON u.id = r.created_by",
        account_columns("u")
    )
}

fn registration_from(row: &AnyRow) -> anyhow::Result<BuildpackRegistration> {
    Ok(BuildpackRegistration {
        name: get_text(row, "name")?,
        dir: get_text(row, "dir")?,
        created_at: get_time(row, "created_at")?,
        created_by: account_from(row, "u")?,
    })
}

impl Store {
    /// Registers the directory `dir` as the buildpack `name`. Invalid unless `name` is a
    /// [`BuildpackName`]; Conflict if a buildpack of that name is registered already. Does not
    /// look at `dir`: the caller checked it.
    pub async fn register_buildpack(
        &self,
        name: &str,
        dir: &str,
        created_by: &Account,
    ) -> Result<BuildpackRegistration> {
        let name = BuildpackName::parse(name)?;
        let registration = BuildpackRegistration {
            name: name.to_string(),
            dir: dir.to_owned(),
            created_at: now(),
            created_by: created_by.clone(),
        };
        let inserted = sqlx::query(
            "INSERT INTO buildpack_registrations (name, dir, created_at, created_by)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&registration.name)
        .bind(&registration.dir)
        .bind(time_text(registration.created_at))
        .bind(created_by.id.to_string())
        .execute(&self.pool)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
                "A buildpack named {name} is registered already: unregister it first \
                 (`wharf buildpacks:unregister {name}`) or choose another name."
            ))),
            other => other.map(drop).map_err(StoreError::from),
        }?;
        Ok(registration)
    }

    /// The buildpack registered as `name`, if any.
    pub async fn buildpack_registration(
        &self,
        name: &str,
    ) -> Result<Option<BuildpackRegistration>> {
        let row = sqlx::query(&format!("{} WHERE r.name = $1", registration_select()))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| registration_from(&row)).transpose()?)
    }

    /// Every registered buildpack, by name.
    pub async fn buildpack_registrations(&self) -> Result<Vec<BuildpackRegistration>> {
        let rows = sqlx::query(&format!("{} ORDER BY r.name", registration_select()))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(registration_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Forgets the buildpack registered as `name` and returns it; NotFound if there is none.
    /// Apps that list it keep it in their lists: their next build fails and says why.
    pub async fn unregister_buildpack(&self, name: &str) -> Result<BuildpackRegistration> {
        let not_found = || {
            StoreError::NotFound(format!(
                "No buildpack named {name:?} is registered: `wharf buildpacks:registered` lists \
                 them."
            ))
        };
        // Two statements, no transaction: what was read is returned only if this call is the
        // one that deleted it (a concurrent unregister gets NotFound).
        let registration = self
            .buildpack_registration(name)
            .await?
            .ok_or_else(not_found)?;
        let deleted = sqlx::query("DELETE FROM buildpack_registrations WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(not_found());
        }
        Ok(registration)
    }
}
