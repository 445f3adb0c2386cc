//! Add-ons and their attachments. An add-on is recorded (`provisioning`) before its provider
//! is called and removed only after the provider destroyed the resource, so no resource ever
//! exists without a record; every change to an app's config vars that an add-on makes is one
//! transaction with its release.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{
    attach_description, detach_description, rotate_description, Account, Addon, AddonAttachment,
    AddonState, ConfigChanges, ReleaseStatus,
};

use crate::apps::lock_app;
use crate::releases::{current_in, insert_release, ReleaseInsert};
use crate::rows::{get_json, get_text, get_time, get_uuid, now, time_text, to_json};
use crate::{Result, Store, StoreError};

/// An add-on about to be recorded.
pub struct NewAddon {
    pub app_id: Uuid,
    pub name: String,
    pub service: String,
    pub plan: String,
    pub attachment_name: String,
}

const ADDON_SELECT: &str = "SELECT a.id, a.name, a.app_id, p.name AS app_name, a.service, a.plan,
        a.state, a.provider_state, a.config, a.attachment_name, a.created_at, a.updated_at
    FROM addons a JOIN apps p ON p.id = a.app_id";

const ATTACHMENT_SELECT: &str = "SELECT t.id, t.name, t.app_id, p.name AS app_name,
        t.addon_id, a.name AS addon_name, a.app_id AS addon_app_id,
        q.name AS addon_app_name, t.created_at, t.updated_at
    FROM addon_attachments t
    JOIN apps p ON p.id = t.app_id
    JOIN addons a ON a.id = t.addon_id
    JOIN apps q ON q.id = a.app_id";

fn addon_from(row: &AnyRow) -> anyhow::Result<Addon> {
    Ok(Addon {
        id: get_uuid(row, "id")?,
        name: get_text(row, "name")?,
        app_id: get_uuid(row, "app_id")?,
        app_name: get_text(row, "app_name")?,
        service: get_text(row, "service")?,
        plan: get_text(row, "plan")?,
        state: AddonState::parse(&get_text(row, "state")?)?,
        provider_state: get_text(row, "provider_state")?,
        config: get_json(row, "config")?,
        attachment_name: get_text(row, "attachment_name")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn attachment_from(row: &AnyRow) -> anyhow::Result<AddonAttachment> {
    Ok(AddonAttachment {
        id: get_uuid(row, "id")?,
        name: get_text(row, "name")?,
        app_id: get_uuid(row, "app_id")?,
        app_name: get_text(row, "app_name")?,
        addon_id: get_uuid(row, "addon_id")?,
        addon_name: get_text(row, "addon_name")?,
        addon_app_id: get_uuid(row, "addon_app_id")?,
        addon_app_name: get_text(row, "addon_app_name")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

fn addon_gone() -> StoreError {
    StoreError::NotFound("Couldn't find that add-on.".into())
}

impl Store {
    /// Records a new add-on in state `provisioning`, before its provider is called. Conflict
    /// when the attachment name is taken on the app (by an attachment or another add-on being
    /// provisioned) or its `<NAME>_URL` config var is already set.
    pub async fn create_addon(&self, new: &NewAddon) -> Result<Addon> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, new.app_id).await?;
        let taken = attachment_names_in(&mut tx, new.app_id).await?;
        if taken.contains(&new.attachment_name) {
            return Err(StoreError::Conflict(format!(
                "The name {} is already used by another add-on on this app: choose another \
                 with --as NAME",
                new.attachment_name
            )));
        }
        let url_var = wharf_model::config_var_name(&new.attachment_name, "URL");
        if current_in(&mut tx, new.app_id)
            .await?
            .config
            .as_map()
            .contains_key(&url_var)
        {
            return Err(StoreError::Conflict(format!(
                "The config var {url_var} is already set on this app: unset it, or choose \
                 another attachment name with --as NAME"
            )));
        }
        let id = Uuid::new_v4();
        let at = time_text(now());
        let inserted = sqlx::query(
            "INSERT INTO addons (id, name, app_id, service, plan, state, provider_state, config,
                 attachment_name, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, 'provisioning', 'null', '{}', $6, $7, $7
             WHERE NOT EXISTS (SELECT 1 FROM addons WHERE name = $2)",
        )
        .bind(id.to_string())
        .bind(&new.name)
        .bind(new.app_id.to_string())
        .bind(&new.service)
        .bind(&new.plan)
        .bind(&new.attachment_name)
        .bind(&at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "The add-on name {} is already taken: choose another with --name",
                new.name
            )));
        }
        let addon = addon_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(addon)
    }

    /// Ends provisioning: stores the provider's state and config, attaches the add-on to its
    /// app under its attachment name, and sets the config vars in a release ("Attach DATABASE
    /// (@ref:postgresql-curved-12345)"). Returns no release when the add-on was already
    /// provisioned (a retry).
    pub async fn finish_provisioning(
        &self,
        addon_id: Uuid,
        provider_state: &str,
        config: &BTreeMap<String, String>,
        user: &Account,
    ) -> Result<(Addon, Option<wharf_model::Release>)> {
        let app_id = self
            .addon_by_id(addon_id)
            .await?
            .ok_or_else(addon_gone)?
            .app_id;
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let addon = addon_in(&mut tx, addon_id).await?;
        if addon.state != AddonState::Provisioning {
            return Ok((addon, None));
        }
        let at = time_text(now());
        sqlx::query(
            "UPDATE addons SET state = 'provisioned', provider_state = $2, config = $3,
                 updated_at = $4 WHERE id = $1",
        )
        .bind(addon_id.to_string())
        .bind(provider_state)
        .bind(to_json(config))
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        let addon = addon_in(&mut tx, addon_id).await?;
        insert_attachment(&mut tx, &addon, app_id, &addon.attachment_name).await?;
        let release = config_release(
            &mut tx,
            app_id,
            addon
                .config_vars(&addon.attachment_name)
                .into_iter()
                .map(|(key, value)| (key, Some(value)))
                .collect(),
            attach_description(&addon.attachment_name, &addon.name),
            user,
        )
        .await?;
        tx.commit().await?;
        Ok((addon, Some(release)))
    }

    /// Forgets an add-on whose provisioning failed (after its provider cleaned up).
    pub async fn forget_addon(&self, addon_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM addon_attachments WHERE addon_id = $1")
            .bind(addon_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM addons WHERE id = $1")
            .bind(addon_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn addon_by_id(&self, addon_id: Uuid) -> Result<Option<Addon>> {
        let row = sqlx::query(&format!("{ADDON_SELECT} WHERE a.id = $1"))
            .bind(addon_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(addon_from).transpose()?)
    }

    /// The add-ons an app sees: attached to it, or created by it (still provisioning, or
    /// being destroyed), oldest first.
    pub async fn list_addons(&self, app_id: Uuid) -> Result<Vec<Addon>> {
        let rows = sqlx::query(&format!(
            "{ADDON_SELECT} WHERE a.app_id = $1 OR a.id IN
                 (SELECT addon_id FROM addon_attachments WHERE app_id = $1)
             ORDER BY a.created_at, a.name"
        ))
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(addon_from).collect::<anyhow::Result<_>>()?)
    }

    /// One of the add-ons an app sees, by add-on name, id, or the name it is attached as.
    pub async fn find_addon(&self, app_id: Uuid, name_or_id: &str) -> Result<Option<Addon>> {
        let attached_as: Option<String> = sqlx::query_scalar(
            "SELECT addon_id FROM addon_attachments WHERE app_id = $1 AND name = $2",
        )
        .bind(app_id.to_string())
        .bind(name_or_id.to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?;
        Ok(self.list_addons(app_id).await?.into_iter().find(|addon| {
            addon.name == name_or_id
                || addon.id.to_string() == name_or_id
                || attached_as.as_deref() == Some(addon.id.to_string().as_str())
        }))
    }

    /// Every add-on, for start-up reconciliation.
    pub async fn all_addons(&self) -> Result<Vec<Addon>> {
        let rows = sqlx::query(&format!("{ADDON_SELECT} ORDER BY a.created_at"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(addon_from).collect::<anyhow::Result<_>>()?)
    }

    /// The app's attachments, oldest first.
    pub async fn list_attachments(&self, app_id: Uuid) -> Result<Vec<AddonAttachment>> {
        self.attachments_where("t.app_id = $1", &app_id.to_string())
            .await
    }

    /// The add-on's attachments, oldest first.
    pub async fn addon_attachments(&self, addon_id: Uuid) -> Result<Vec<AddonAttachment>> {
        self.attachments_where("t.addon_id = $1", &addon_id.to_string())
            .await
    }

    /// The attachments on every app `account` owns or collaborates on.
    pub async fn attachments_for_account(&self, account: &Account) -> Result<Vec<AddonAttachment>> {
        self.attachments_where(
            "(p.owner_id = $1 OR t.app_id IN
                 (SELECT app_id FROM collaborators WHERE account_id = $1))",
            &account.id.to_string(),
        )
        .await
    }

    async fn attachments_where(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Vec<AddonAttachment>> {
        let rows = sqlx::query(&format!(
            "{ATTACHMENT_SELECT} WHERE {condition} ORDER BY t.created_at, t.name"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(attachment_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Attaches a provisioned add-on to `app_id` as `name`, setting its config vars in a
    /// release. Conflict when the name is taken on that app.
    pub async fn attach_addon(
        &self,
        addon_id: Uuid,
        app_id: Uuid,
        name: &str,
        user: &Account,
    ) -> Result<(AddonAttachment, wharf_model::Release)> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let addon = addon_in(&mut tx, addon_id).await?;
        if addon.state != AddonState::Provisioned {
            return Err(StoreError::Conflict(format!(
                "The add-on {} is {}: only provisioned add-ons can be attached",
                addon.name, addon.state
            )));
        }
        if attachment_names_in(&mut tx, app_id)
            .await?
            .iter()
            .any(|taken| taken == name)
        {
            return Err(StoreError::Conflict(format!(
                "The name {name} is already used by another add-on on this app: choose another \
                 with --as NAME"
            )));
        }
        let attachment_id = insert_attachment(&mut tx, &addon, app_id, name).await?;
        let release = config_release(
            &mut tx,
            app_id,
            addon
                .config_vars(name)
                .into_iter()
                .map(|(key, value)| (key, Some(value)))
                .collect(),
            attach_description(name, &addon.name),
            user,
        )
        .await?;
        let attachment = attachment_in(&mut tx, attachment_id).await?;
        tx.commit().await?;
        Ok((attachment, release))
    }

    /// Removes one attachment and its config vars in a release. Conflict for an add-on's last
    /// attachment (destroy the add-on instead).
    pub async fn detach_addon(
        &self,
        attachment_id: Uuid,
        user: &Account,
    ) -> Result<(AddonAttachment, wharf_model::Release)> {
        let attachment = self
            .attachments_where("t.id = $1", &attachment_id.to_string())
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound("Couldn't find that add-on attachment.".into()))?;
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, attachment.app_id).await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM addon_attachments WHERE addon_id = $1")
                .bind(attachment.addon_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        if count <= 1 {
            return Err(StoreError::Conflict(format!(
                "{} is the last attachment of {}: destroy the add-on with addons:destroy instead",
                attachment.name, attachment.addon_name
            )));
        }
        let addon = addon_in(&mut tx, attachment.addon_id).await?;
        let release =
            remove_attachment(&mut tx, &addon, attachment.app_id, &attachment.name, user).await?;
        tx.commit().await?;
        Ok((attachment, release))
    }

    /// Starts destroying an add-on: removes every attachment and its config vars (one release
    /// per attached app) and marks it `deprovisioning`, in one transaction. Returns the
    /// releases with their apps' ids. The caller then has the provider destroy the resource and
    /// calls [`Store::forget_addon`].
    pub async fn begin_deprovisioning(
        &self,
        addon_id: Uuid,
        user: &Account,
    ) -> Result<Vec<(Uuid, wharf_model::Release)>> {
        let attachments = self.addon_attachments(addon_id).await?;
        let addon = self.addon_by_id(addon_id).await?.ok_or_else(addon_gone)?;
        let mut apps: Vec<Uuid> = attachments.iter().map(|t| t.app_id).collect();
        apps.push(addon.app_id);
        apps.sort_unstable();
        apps.dedup();
        let mut tx = self.pool.begin().await?;
        // Locks in a fixed order, so two destroys never wait for each other.
        for app_id in &apps {
            lock_app(&mut tx, *app_id).await?;
        }
        let addon = addon_in(&mut tx, addon_id).await?;
        let mut releases = Vec::new();
        for attachment in &attachments {
            let release =
                remove_attachment(&mut tx, &addon, attachment.app_id, &attachment.name, user)
                    .await?;
            releases.push((attachment.app_id, release));
        }
        sqlx::query("UPDATE addons SET state = 'deprovisioning', updated_at = $2 WHERE id = $1")
            .bind(addon_id.to_string())
            .bind(time_text(now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(releases)
    }

    /// Stores the provider's new state for an add-on whose config did not change (its
    /// settings changed).
    pub async fn set_addon_provider_state(
        &self,
        addon_id: Uuid,
        provider_state: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE addons SET provider_state = $2, updated_at = $3 WHERE id = $1")
            .bind(addon_id.to_string())
            .bind(provider_state)
            .bind(time_text(now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores rotated credentials and sets them on every attached app, one release each.
    pub async fn rotate_addon(
        &self,
        addon_id: Uuid,
        provider_state: &str,
        config: &BTreeMap<String, String>,
        user: &Account,
    ) -> Result<Vec<(Uuid, wharf_model::Release)>> {
        let attachments = self.addon_attachments(addon_id).await?;
        let mut apps: Vec<Uuid> = attachments.iter().map(|t| t.app_id).collect();
        apps.sort_unstable();
        apps.dedup();
        let mut tx = self.pool.begin().await?;
        for app_id in &apps {
            lock_app(&mut tx, *app_id).await?;
        }
        sqlx::query(
            "UPDATE addons SET provider_state = $2, config = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(addon_id.to_string())
        .bind(provider_state)
        .bind(to_json(config))
        .bind(time_text(now()))
        .execute(&mut *tx)
        .await?;
        let addon = addon_in(&mut tx, addon_id).await?;
        let mut releases = Vec::new();
        for attachment in &attachments {
            let release = config_release(
                &mut tx,
                attachment.app_id,
                addon
                    .config_vars(&attachment.name)
                    .into_iter()
                    .map(|(key, value)| (key, Some(value)))
                    .collect(),
                rotate_description(&attachment.name, &addon.name),
                user,
            )
            .await?;
            releases.push((attachment.app_id, release));
        }
        tx.commit().await?;
        Ok(releases)
    }
}

async fn addon_in(tx: &mut Tx<'_>, addon_id: Uuid) -> Result<Addon> {
    let row = sqlx::query(&format!("{ADDON_SELECT} WHERE a.id = $1"))
        .bind(addon_id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(addon_gone)?;
    Ok(addon_from(&row)?)
}

async fn attachment_in(tx: &mut Tx<'_>, attachment_id: Uuid) -> Result<AddonAttachment> {
    let row = sqlx::query(&format!("{ATTACHMENT_SELECT} WHERE t.id = $1"))
        .bind(attachment_id.to_string())
        .fetch_one(&mut **tx)
        .await?;
    Ok(attachment_from(&row)?)
}

/// Names taken on the app: its attachments, and add-ons it is still provisioning.
async fn attachment_names_in(tx: &mut Tx<'_>, app_id: Uuid) -> Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM addon_attachments WHERE app_id = $1
         UNION SELECT attachment_name FROM addons WHERE app_id = $1 AND state = 'provisioning'",
    )
    .bind(app_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    Ok(names)
}

async fn insert_attachment(
    tx: &mut Tx<'_>,
    addon: &Addon,
    app_id: Uuid,
    name: &str,
) -> Result<Uuid> {
    let id = Uuid::new_v4();
    let at = time_text(now());
    sqlx::query(
        "INSERT INTO addon_attachments (id, addon_id, app_id, name, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id.to_string())
    .bind(addon.id.to_string())
    .bind(app_id.to_string())
    .bind(name)
    .bind(&at)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

async fn remove_attachment(
    tx: &mut Tx<'_>,
    addon: &Addon,
    app_id: Uuid,
    name: &str,
    user: &Account,
) -> Result<wharf_model::Release> {
    sqlx::query("DELETE FROM addon_attachments WHERE app_id = $1 AND name = $2")
        .bind(app_id.to_string())
        .bind(name)
        .execute(&mut **tx)
        .await?;
    config_release(
        tx,
        app_id,
        addon
            .config_var_names(name)
            .into_iter()
            .map(|key| (key, None))
            .collect(),
        detach_description(name, &addon.name),
        user,
    )
    .await
}

/// Appends a release of the current slug with `changes` applied to the config vars and the
/// add-on plans now attached to the app. The caller holds the app's lock.
async fn config_release(
    tx: &mut Tx<'_>,
    app_id: Uuid,
    changes: Vec<(String, Option<String>)>,
    description: String,
    user: &Account,
) -> Result<wharf_model::Release> {
    let current = current_in(tx, app_id).await?;
    let changes = ConfigChanges::parse(
        changes
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone())),
    )?;
    let config = match current.config.apply(&changes)? {
        Some((config, _)) => config,
        None => current.config,
    };
    let mut plans: Vec<String> = sqlx::query_scalar(
        "SELECT a.service || ':' || a.plan FROM addon_attachments t
         JOIN addons a ON a.id = t.addon_id WHERE t.app_id = $1 ORDER BY t.created_at, t.name",
    )
    .bind(app_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    plans.dedup();
    insert_release(
        tx,
        app_id,
        ReleaseInsert {
            description,
            slug_id: current.slug_id,
            config,
            addon_plan_names: plans,
            status: ReleaseStatus::Succeeded,
            user: user.clone(),
        },
    )
    .await
}

/// The config vars the app's attachments give it now, and their plans: a rollback keeps these
/// whatever the target release had, so it never brings back revoked credentials nor drops a
/// live add-on's URL (add-ons themselves are not rolled back, as on Heroku).
pub(crate) async fn attached_config_in(
    tx: &mut Tx<'_>,
    app_id: Uuid,
) -> Result<(Vec<(String, Option<String>)>, Vec<String>)> {
    let rows = sqlx::query(
        "SELECT t.name AS attachment, a.config, a.service, a.plan FROM addon_attachments t
         JOIN addons a ON a.id = t.addon_id WHERE t.app_id = $1 ORDER BY t.created_at, t.name",
    )
    .bind(app_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut changes = Vec::new();
    let mut plans: Vec<String> = Vec::new();
    for row in &rows {
        let attachment = get_text(row, "attachment")?;
        let config: BTreeMap<String, String> = get_json(row, "config")?;
        for (suffix, value) in config {
            changes.push((
                wharf_model::config_var_name(&attachment, &suffix),
                Some(value),
            ));
        }
        plans.push(format!(
            "{}:{}",
            get_text(row, "service")?,
            get_text(row, "plan")?
        ));
    }
    plans.dedup();
    Ok((changes, plans))
}
