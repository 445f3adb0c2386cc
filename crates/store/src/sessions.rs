//! The dashboard's log-in sessions. A session is opened with an API key and lives until it
//! expires, is closed, or its key is gone; the store keeps only the hash of its token, and the
//! CSRF token that the browser must echo on every change.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::accounts::Authenticated;
use crate::rows::{account_columns, account_from, get_text, get_time, get_uuid, now, time_text};
use crate::{Result, Store};

/// A live session: who it is, and what the browser must send back on changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub caller: Authenticated,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

impl Store {
    /// Opens a session for the key `key_id` until `expires_at`. Expired sessions of every
    /// account are swept on the way, so the table never outgrows the live ones.
    pub async fn open_session(
        &self,
        key_id: Uuid,
        token_hash: &str,
        csrf_token: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let now = time_text(now());
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, key_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(token_hash)
        .bind(key_id.to_string())
        .bind(csrf_token)
        .bind(&now)
        .bind(time_text(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live session whose token has this hash: not expired, and its key still there.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let row = sqlx::query(&format!(
            "SELECT s.key_id AS key_id, s.csrf_token AS csrf_token, s.expires_at AS expires_at, {}
             FROM sessions s
             JOIN api_keys k ON k.id = s.key_id
             JOIN accounts a ON a.id = k.account_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
            account_columns("a")
        ))
        .bind(token_hash)
        .bind(time_text(now()))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> Result<Session> {
            Ok(Session {
                caller: Authenticated {
                    account: account_from(&row, "a")?,
                    key_id: get_uuid(&row, "key_id")?,
                },
                csrf_token: get_text(&row, "csrf_token")?,
                expires_at: get_time(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    /// Closes the session whose token has this hash (nothing happens if there is none).
    pub async fn close_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
