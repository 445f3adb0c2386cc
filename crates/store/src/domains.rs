//! Custom domains: hostnames, unique across the server, that route to one app, each optionally
//! served with one of the app's SNI endpoints.

use sqlx::any::AnyRow;
use uuid::Uuid;
use wharf_model::{Domain, Hostname, SniEndpointRef};

use crate::accounts::is_unique_violation;
use crate::apps::lock_app;
use crate::rows::{get_opt_text, get_text, get_time, get_uuid, now, time_text};
use crate::{Result, Store, StoreError};

/// The only kind the `domains` table holds today; the app's own `<app>.<base-domain>` host is
/// not stored (the API lists it as kind `heroku`).
const KIND_CUSTOM: &str = "custom";

/// A custom domain as the router needs it: which app a hostname routes to and which SNI
/// endpoint (if any) serves its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRoute {
    pub hostname: String,
    pub app_id: Uuid,
    pub sni_endpoint_id: Option<Uuid>,
}

const DOMAIN_SELECT: &str = "SELECT d.id, d.app_id, d.hostname, d.created_at, d.updated_at,
       s.id AS sni_id, s.name AS sni_name
     FROM domains d LEFT JOIN sni_endpoints s ON s.id = d.sni_endpoint_id";

fn domain_from(row: &AnyRow) -> anyhow::Result<Domain> {
    let sni_endpoint = match get_opt_text(row, "sni_id")? {
        Some(_) => Some(SniEndpointRef {
            id: get_uuid(row, "sni_id")?,
            name: get_text(row, "sni_name")?,
        }),
        None => None,
    };
    Ok(Domain {
        id: get_uuid(row, "id")?,
        app_id: get_uuid(row, "app_id")?,
        hostname: get_text(row, "hostname")?,
        sni_endpoint,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

impl Store {
    /// Adds `hostname` to the app, served with the app's SNI endpoint `sni_endpoint_id` if
    /// given. Conflict if the hostname is on this app or another app already (the message does
    /// not name the other app); NotFound if the endpoint is not the app's.
    pub async fn add_domain(
        &self,
        app_id: Uuid,
        hostname: &Hostname,
        sni_endpoint_id: Option<Uuid>,
    ) -> Result<Domain> {
        let id = Uuid::new_v4();
        let created = now();
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT app_id FROM domains WHERE hostname = $1")
                .bind(hostname.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(owner) = owner {
            return Err(hostname_taken(hostname, owner == app_id.to_string()));
        }
        if let Some(endpoint) = sni_endpoint_id {
            check_endpoint(&mut tx, app_id, endpoint).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO domains (id, app_id, hostname, kind, sni_endpoint_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.to_string())
        .bind(app_id.to_string())
        .bind(hostname.as_str())
        .bind(KIND_CUSTOM)
        .bind(sni_endpoint_id.map(|e| e.to_string()))
        .bind(time_text(created))
        .execute(&mut *tx)
        .await;
        match inserted {
            // Another app's writer added it between our check and insert.
            Err(error) if is_unique_violation(&error) => {
                return Err(hostname_taken(hostname, false))
            }
            other => other?,
        };
        let domain = fetch_domain(&mut tx, app_id, &id.to_string()).await?;
        tx.commit().await?;
        domain.ok_or_else(domain_gone)
    }

    /// The app's custom domains, oldest first.
    pub async fn domains(&self, app_id: Uuid) -> Result<Vec<Domain>> {
        let rows = sqlx::query(&format!(
            "{DOMAIN_SELECT} WHERE d.app_id = $1 ORDER BY d.created_at, d.hostname"
        ))
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(domain_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// The app's custom domain with this id or hostname (any case), if there is one.
    pub async fn domain(&self, app_id: Uuid, id_or_hostname: &str) -> Result<Option<Domain>> {
        let mut conn = self.pool.acquire().await?;
        fetch_domain(&mut conn, app_id, &id_or_hostname.to_ascii_lowercase()).await
    }

    /// Points the domain at the app's SNI endpoint `sni_endpoint_id`, or at none. NotFound if
    /// the domain or the endpoint is not the app's.
    pub async fn set_domain_sni_endpoint(
        &self,
        app_id: Uuid,
        domain_id: Uuid,
        sni_endpoint_id: Option<Uuid>,
    ) -> Result<Domain> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        if let Some(endpoint) = sni_endpoint_id {
            check_endpoint(&mut tx, app_id, endpoint).await?;
        }
        let updated = sqlx::query(
            "UPDATE domains SET sni_endpoint_id = $3, updated_at = $4 WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id.to_string())
        .bind(domain_id.to_string())
        .bind(sni_endpoint_id.map(|e| e.to_string()))
        .bind(time_text(now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(domain_gone());
        }
        let domain = fetch_domain(&mut tx, app_id, &domain_id.to_string()).await?;
        tx.commit().await?;
        domain.ok_or_else(domain_gone)
    }

    /// Removes the custom domain from the app. NotFound if the app has no such domain.
    pub async fn remove_domain(&self, app_id: Uuid, domain_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_app(&mut tx, app_id).await?;
        let removed = sqlx::query("DELETE FROM domains WHERE app_id = $1 AND id = $2")
            .bind(app_id.to_string())
            .bind(domain_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(domain_gone());
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every custom domain on the server, by hostname: the router's custom-domain table.
    /// Read-only and cheap enough to call on every route-table rebuild; an error means the
    /// database failed (a caller keeps the table it had).
    pub async fn all_domains(&self) -> Result<Vec<DomainRoute>> {
        let rows =
            sqlx::query("SELECT hostname, app_id, sni_endpoint_id FROM domains ORDER BY hostname")
                .fetch_all(&self.pool)
                .await?;
        let routes = rows
            .iter()
            .map(|row| {
                Ok(DomainRoute {
                    hostname: get_text(row, "hostname")?,
                    app_id: get_uuid(row, "app_id")?,
                    sni_endpoint_id: match get_opt_text(row, "sni_endpoint_id")? {
                        Some(_) => Some(get_uuid(row, "sni_endpoint_id")?),
                        None => None,
                    },
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(routes)
    }
}

async fn fetch_domain(
    conn: &mut sqlx::AnyConnection,
    app_id: Uuid,
    id_or_hostname: &str,
) -> Result<Option<Domain>> {
    let row = sqlx::query(&format!(
        "{DOMAIN_SELECT} WHERE d.app_id = $1 AND (d.id = $2 OR d.hostname = $2)"
    ))
    .bind(app_id.to_string())
    .bind(id_or_hostname)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|row| domain_from(&row)).transpose()?)
}

/// NotFound unless `endpoint_id` is one of the app's SNI endpoints.
async fn check_endpoint(
    conn: &mut sqlx::AnyConnection,
    app_id: Uuid,
    endpoint_id: Uuid,
) -> Result<()> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT id FROM sni_endpoints WHERE app_id = $1 AND id = $2")
            .bind(app_id.to_string())
            .bind(endpoint_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(
            "Couldn't find that SNI endpoint.".into(),
        )),
    }
}

fn hostname_taken(hostname: &Hostname, on_this_app: bool) -> StoreError {
    if on_this_app {
        StoreError::Conflict(format!("{hostname} is already added to this app"))
    } else {
        StoreError::Conflict(format!(
            "{hostname} is already in use by another app; remove it there first, \
             or ask that app's owner to"
        ))
    }
}

fn domain_gone() -> StoreError {
    StoreError::NotFound("Couldn't find that domain.".into())
}
