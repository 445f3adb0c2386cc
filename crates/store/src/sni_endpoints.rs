//! SNI endpoints: an app's certificate chains and private keys, which the router serves for
//! the app's custom domains by SNI. The store keeps PEM text as given; the API validated it.

use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;
use wharf_model::SniEndpoint;

use crate::accounts::is_unique_violation;
use crate::apps::lock_app;
use crate::rows::{get_text, get_time, get_uuid, now, time_text};
use crate::{Result, Store, StoreError};

/// A certificate as the router needs it to answer a TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCertificate {
    pub id: Uuid,
    pub app_id: Uuid,
    /// PEM: the leaf certificate first, then its intermediates.
    pub certificate_chain: String,
    /// PEM.
    pub private_key: String,
    /// Changes whenever the certificate is replaced, so a cache can tell what is new.
    pub updated_at: OffsetDateTime,
}

const ENDPOINT_COLUMNS: &str =
    "id, app_id, name, certificate_chain, private_key, created_at, updated_at";

impl Store {
    /// Adds an SNI endpoint named `name` to the app. Conflict if the name is taken (the caller
    /// draws another).
    pub async fn add_sni_endpoint(
        &self,
        app_id: Uuid,
        name: &str,
        certificate_chain: &str,
        private_key: &str,
    ) -> Result<SniEndpoint> {
        let id = Uuid::new_v4();
        let created = now();
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO sni_endpoints
               (id, app_id, name, certificate_chain, private_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.to_string())
        .bind(app_id.to_string())
        .bind(name)
        .bind(certificate_chain)
        .bind(private_key)
        .bind(time_text(created))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(format!(
                    "An SNI endpoint named {name} exists already"
                )))
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(SniEndpoint {
            id,
            app_id,
            name: name.to_owned(),
            certificate_chain: certificate_chain.to_owned(),
            private_key: private_key.to_owned(),
            domains: Vec::new(),
            created_at: created,
            updated_at: created,
        })
    }

    /// The app's SNI endpoints, oldest first, each with the hostnames that use it.
    pub async fn sni_endpoints(&self, app_id: Uuid) -> Result<Vec<SniEndpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM sni_endpoints WHERE app_id = $1 ORDER BY created_at, name"
        ))
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut endpoints = rows
            .iter()
            .map(endpoint_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let domains = sqlx::query(
            "SELECT hostname, sni_endpoint_id FROM domains
             WHERE app_id = $1 AND sni_endpoint_id IS NOT NULL ORDER BY hostname",
        )
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        for row in &domains {
            let endpoint_id = get_uuid(row, "sni_endpoint_id")?;
            if let Some(endpoint) = endpoints.iter_mut().find(|e| e.id == endpoint_id) {
                endpoint.domains.push(get_text(row, "hostname")?);
            }
        }
        Ok(endpoints)
    }

    /// The app's SNI endpoint with this id or name, if there is one.
    pub async fn sni_endpoint(
        &self,
        app_id: Uuid,
        id_or_name: &str,
    ) -> Result<Option<SniEndpoint>> {
        let endpoints = self.sni_endpoints(app_id).await?;
        Ok(endpoints
            .into_iter()
            .find(|e| e.id.to_string() == id_or_name || e.name == id_or_name))
    }

    /// Replaces the endpoint's certificate chain and key. NotFound if the app has no such
    /// endpoint.
    pub async fn update_sni_endpoint(
        &self,
        app_id: Uuid,
        endpoint_id: Uuid,
        certificate_chain: &str,
        private_key: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let updated = sqlx::query(
            "UPDATE sni_endpoints SET certificate_chain = $3, private_key = $4, updated_at = $5
             WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id.to_string())
        .bind(endpoint_id.to_string())
        .bind(certificate_chain)
        .bind(private_key)
        .bind(time_text(now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(endpoint_gone());
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the endpoint; the app's domains that used it are left with none. NotFound if
    /// the app has no such endpoint.
    pub async fn remove_sni_endpoint(&self, app_id: Uuid, endpoint_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        sqlx::query(
            "UPDATE domains SET sni_endpoint_id = NULL, updated_at = $3
             WHERE app_id = $1 AND sni_endpoint_id = $2",
        )
        .bind(app_id.to_string())
        .bind(endpoint_id.to_string())
        .bind(time_text(now()))
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query("DELETE FROM sni_endpoints WHERE app_id = $1 AND id = $2")
            .bind(app_id.to_string())
            .bind(endpoint_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(endpoint_gone());
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every SNI endpoint on the server: the certificates the router serves by SNI. Read-only;
    /// compare `updated_at` to tell a replaced certificate from one already loaded. An error
    /// means the database failed (a caller keeps the certificates it had).
    pub async fn all_sni_endpoints(&self) -> Result<Vec<SniCertificate>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM sni_endpoints ORDER BY created_at, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        let certificates = rows
            .iter()
            .map(|row| {
                Ok(SniCertificate {
                    id: get_uuid(row, "id")?,
                    app_id: get_uuid(row, "app_id")?,
                    certificate_chain: get_text(row, "certificate_chain")?,
                    private_key: get_text(row, "private_key")?,
                    updated_at: get_time(row, "updated_at")?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(certificates)
    }
}

fn endpoint_from(row: &AnyRow) -> anyhow::Result<SniEndpoint> {
    Ok(SniEndpoint {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        name: get_text(row, "name")?,
        certificate_chain: get_text(row, "certificate_chain")?,
        private_key: get_text(row, "private_key")?,
        domains: Vec::new(),
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn endpoint_gone() -> StoreError {
    StoreError::NotFound("Couldn't find that SNI endpoint.".into())
}
