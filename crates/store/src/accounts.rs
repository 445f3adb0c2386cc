//! Accounts and their API keys. Keys are stored only as hashes; the store never sees one in
//! the clear.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{Account, Email};

use crate::rows::{account_columns, account_from, get_uuid, now, time_text};
use crate::{Result, Store, StoreError};

/// An API key's hash and the account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub account: Account,
    pub key_id: Uuid,
}

impl Store {
    /// Whether any account exists (a fresh server has none).
    pub async fn has_accounts(&self) -> Result<bool> {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM accounts LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Creates the first account, an admin holding one key, unless any account exists.
    /// Returns `None` when there was already an account. Safe to call on every start.
    pub async fn bootstrap_admin(&self, email: &Email, key_hash: &str) -> Result<Option<Account>> {
        let account = new_account(email, true);
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, email, admin, created_at, updated_at)
             SELECT $1, $2, $3, $4, $4 WHERE NOT EXISTS (SELECT 1 FROM accounts)",
        )
        .bind(account.id.to_string())
        .bind(account.email.as_str())
        .bind(1_i64)
        .bind(time_text(account.created_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        insert_key(
            &mut tx,
            account.id,
            key_hash,
            "admin key created on first start",
        )
        .await?;
        tx.commit().await?;
        Ok(Some(account))
    }

    /// Creates an account with its first API key. Conflict if the e-mail address is taken.
    pub async fn create_account(
        &self,
        email: &Email,
        admin: bool,
        key_hash: &str,
        key_description: &str,
    ) -> Result<Account> {
        let account = new_account(email, admin);
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, email, admin, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(account.id.to_string())
        .bind(account.email.as_str())
        .bind(i64::from(admin))
        .bind(time_text(account.created_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(format!(
                    "An account with the e-mail address {email} already exists"
                )))
            }
            other => other?,
        };
        insert_key(&mut tx, account.id, key_hash, key_description).await?;
        tx.commit().await?;
        Ok(account)
    }

    /// The account holding the key with this hash, if any.
    pub async fn authenticate(&self, key_hash: &str) -> Result<Option<Authenticated>> {
        let row = sqlx::query(&format!(
            "SELECT k.id AS key_id, {} FROM api_keys k JOIN accounts a ON a.id = k.account_id
             WHERE k.key_hash = $1",
            account_columns("a")
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> Result<Authenticated> {
            Ok(Authenticated {
                account: account_from(&row, "a")?,
                key_id: get_uuid(&row, "key_id")?,
            })
        })
        .transpose()
    }

    /// Every account, by e-mail address.
    pub async fn all_accounts(&self) -> Result<Vec<Account>> {
        let rows: Vec<AnyRow> = sqlx::query(&format!(
            "SELECT {} FROM accounts a ORDER BY a.email",
            account_columns("a")
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| account_from(row, "a"))
            .collect::<anyhow::Result<_>>()?)
    }

    pub async fn account_by_email(&self, email: &Email) -> Result<Option<Account>> {
        self.account_where("a.email = $1", email.as_str()).await
    }

    pub async fn account_by_id(&self, id: Uuid) -> Result<Option<Account>> {
        self.account_where("a.id = $1", &id.to_string()).await
    }

    async fn account_where(&self, condition: &str, value: &str) -> Result<Option<Account>> {
        let row: Option<AnyRow> = sqlx::query(&format!(
            "SELECT {} FROM accounts a WHERE {condition}",
            account_columns("a")
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| account_from(&row, "a")).transpose()?)
    }
}

fn new_account(email: &Email, admin: bool) -> Account {
    Account {
        id: Uuid::new_v4(),
        email: email.clone(),
        admin,
        created_at: now(),
    }
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: Uuid,
    key_hash: &str,
    description: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, account_id, key_hash, description, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(account_id.to_string())
    .bind(key_hash)
    .bind(description)
    .bind(time_text(now()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
