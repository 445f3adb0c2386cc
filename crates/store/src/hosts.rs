//! Hosts that run dynos, their leases, and where each dyno of every formation is placed.
//!
//! A host's credential is stored only as a hash. Lease times are written by the control
//! plane alone, from its own clock (see `wharf_model::host`). The placements are the
//! scheduler's answer: one row per dyno slot (app, process type, number) naming its host; a
//! host's agent runs exactly the slots placed on it.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;
use wharf_model::{Host, HostName, Slot};

use crate::accounts::is_unique_violation;
use crate::rows::{get_i64, get_opt_i64, get_opt_text, get_text, get_time, get_uuid, time_text};
use crate::{Backend, Result, Store, StoreError};

/// Arbitrary key for the PostgreSQL advisory lock that serializes writers of the placements
/// (one scheduler at a time, even with several control-plane processes).
const PLACEMENT_LOCK_KEY: i64 = 0x0057_4841_5250;

const HOST_COLUMNS: &str = "id, name, memory_mb, address, draining, epoch, last_heartbeat_at, \
                            lease_expires_at, created_at";

/// Where a dyno slot is placed, and the memory its size reserves there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub host: Uuid,
    pub memory_mb: u64,
}

/// What an agent reports with each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// The memory it offers dynos, in MiB.
    pub memory_mb: u64,
    /// Where the control plane and other hosts reach it.
    pub address: String,
    /// The dynos it has, as a JSON document the store keeps as it is.
    pub dynos: String,
}

impl Store {
    /// Adds a host that authenticates with the credential of hash `credential_hash`.
    /// Conflict if the name is taken.
    pub async fn add_host(
        &self,
        name: &HostName,
        credential_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Host> {
        let host = Host {
            id: Uuid::new_v4(),
            name: name.clone(),
            memory_mb: None,
            address: None,
            draining: false,
            epoch: 1,
            last_heartbeat_at: None,
            lease_expires_at: None,
            created_at: now,
        };
        let inserted = sqlx::query(
            "INSERT INTO hosts (id, name, credential_hash, draining, epoch, created_at)
             VALUES ($1, $2, $3, 0, $4, $5)",
        )
        .bind(host.id.to_string())
        .bind(name.as_str())
        .bind(credential_hash)
        .bind(host.epoch)
        .bind(time_text(now))
        .execute(&self.pool)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
                "A host named {name} exists already: pick another name, or remove it first \
                 with `wharf hosts:remove {name}`"
            ))),
            other => {
                other?;
                Ok(host)
            }
        }
    }

    /// Every host, by name.
    pub async fn hosts(&self) -> Result<Vec<Host>> {
        let rows: Vec<AnyRow> =
            sqlx::query(&format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY name"))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(host_from).collect::<anyhow::Result<_>>()?)
    }

    pub async fn host(&self, name: &str) -> Result<Option<Host>> {
        let row: Option<AnyRow> =
            sqlx::query(&format!("SELECT {HOST_COLUMNS} FROM hosts WHERE name = $1"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(host_from).transpose()?)
    }

    /// Removes a host, revoking its credential, with its placements (the scheduler places
    /// those dynos again). NotFound if there is no such host.
    pub async fn remove_host(&self, name: &str) -> Result<Host> {
        let mut tx = self.pool.begin().await?;
        // Write first, so that SQLite takes its write lock before the read.
        sqlx::query("UPDATE hosts SET draining = draining WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let row: Option<AnyRow> =
            sqlx::query(&format!("SELECT {HOST_COLUMNS} FROM hosts WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Err(host_not_found(name));
        };
        let host = host_from(&row)?;
        sqlx::query("DELETE FROM dyno_placements WHERE host_id = $1")
            .bind(host.id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM hosts WHERE id = $1")
            .bind(host.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(host)
    }

    /// Starts or ends draining a host. NotFound if there is no such host.
    pub async fn set_host_draining(&self, name: &str, draining: bool) -> Result<Host> {
        let row: Option<AnyRow> = sqlx::query(&format!(
            "UPDATE hosts SET draining = $2 WHERE name = $1 RETURNING {HOST_COLUMNS}"
        ))
        .bind(name)
        .bind(i64::from(draining))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(host_from(&row)?),
            None => Err(host_not_found(name)),
        }
    }

    /// Records a heartbeat from the host holding the credential of hash `credential_hash`,
    /// received at `now` (the control plane's clock): renews its lease to `now + lease` and
    /// records its report. A host whose lease had run out starts a new epoch. `None` when no
    /// host holds the credential (never issued, or revoked by `hosts:remove`).
    pub async fn host_heartbeat(
        &self,
        credential_hash: &str,
        report: &HostReport,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<Option<Host>> {
        let memory_mb = i64::try_from(report.memory_mb).map_err(|_| {
            StoreError::Invalid(wharf_model::Invalid::new(format!(
                "memory of {} MiB is more than a host can offer",
                report.memory_mb
            )))
        })?;
        let row: Option<AnyRow> = sqlx::query(&format!(
            "UPDATE hosts SET
                epoch = CASE WHEN lease_expires_at IS NOT NULL AND lease_expires_at <= $2
                             THEN epoch + 1 ELSE epoch END,
                last_heartbeat_at = $2,
                lease_expires_at = $3,
                memory_mb = $4,
                address = $5,
                dynos = $6
             WHERE credential_hash = $1
             RETURNING {HOST_COLUMNS}"
        ))
        .bind(credential_hash)
        .bind(time_text(now))
        .bind(time_text(now + lease))
        .bind(memory_mb)
        .bind(&report.address)
        .bind(&report.dynos)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(host_from).transpose()?)
    }

    /// Every host with the dynos it last reported (a JSON document, as it was reported).
    pub async fn host_reports(&self) -> Result<Vec<(Host, String)>> {
        let rows: Vec<AnyRow> = sqlx::query(&format!(
            "SELECT {HOST_COLUMNS}, dynos FROM hosts ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((host_from(row)?, get_text(row, "dynos")?)))
            .collect::<anyhow::Result<_>>()?)
    }

    /// The dynos host `id` last reported (a JSON document, as it was reported), if it exists.
    pub async fn host_report(&self, id: Uuid) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT dynos FROM hosts WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The host holding the credential of hash `credential_hash`, if any.
    pub async fn host_by_credential(&self, credential_hash: &str) -> Result<Option<Host>> {
        let row: Option<AnyRow> = sqlx::query(&format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE credential_hash = $1"
        ))
        .bind(credential_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(host_from).transpose()?)
    }

    /// Every dyno slot's host.
    pub async fn placements(&self) -> Result<BTreeMap<Slot, Placed>> {
        let rows: Vec<AnyRow> = sqlx::query(PLACEMENT_QUERY).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(placement_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Makes the placements exactly `placements`, writing only the rows that change, in one
    /// transaction; writers are serialized. Returns how many slots were added, changed
    /// (moved or resized) or removed.
    pub async fn set_placements(
        &self,
        placements: &BTreeMap<Slot, Placed>,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PLACEMENT_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        } else {
            // SQLite: take the write lock first, so the read below is what gets replaced.
            sqlx::query("DELETE FROM dyno_placements WHERE 1 = 0")
                .execute(&mut *tx)
                .await?;
        }
        let rows: Vec<AnyRow> = sqlx::query(PLACEMENT_QUERY).fetch_all(&mut *tx).await?;
        let current: BTreeMap<Slot, Placed> = rows
            .iter()
            .map(placement_from)
            .collect::<anyhow::Result<_>>()?;
        let mut changed = 0;
        for slot in current
            .keys()
            .filter(|slot| !placements.contains_key(*slot))
        {
            delete_placement(&mut tx, slot).await?;
            changed += 1;
        }
        for (slot, placed) in placements {
            if current.get(slot) == Some(placed) {
                continue;
            }
            let memory_mb = i64::try_from(placed.memory_mb).map_err(|_| {
                anyhow::anyhow!("memory of {} MiB is out of range", placed.memory_mb)
            })?;
            if current.contains_key(slot) {
                delete_placement(&mut tx, slot).await?;
            }
            sqlx::query(
                "INSERT INTO dyno_placements
                    (app_id, process_type, number, host_id, memory_mb, placed_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(slot.app.to_string())
            .bind(&slot.process_type)
            .bind(i64::from(slot.number))
            .bind(placed.host.to_string())
            .bind(memory_mb)
            .bind(time_text(now))
            .execute(&mut *tx)
            .await?;
            changed += 1;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

async fn delete_placement(tx: &mut sqlx::Transaction<'_, sqlx::Any>, slot: &Slot) -> Result<()> {
    sqlx::query(
        "DELETE FROM dyno_placements WHERE app_id = $1 AND process_type = $2 AND number = $3",
    )
    .bind(slot.app.to_string())
    .bind(&slot.process_type)
    .bind(i64::from(slot.number))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn host_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!(
        "Couldn't find a host named {name}: `wharf hosts` lists them"
    ))
}

const PLACEMENT_QUERY: &str = "SELECT app_id, process_type, number, host_id, memory_mb
                               FROM dyno_placements ORDER BY app_id, process_type, number";

fn placement_from(row: &AnyRow) -> anyhow::Result<(Slot, Placed)> {
    let number = get_i64(row, "number")?;
    let memory_mb = get_i64(row, "memory_mb")?;
    let slot = Slot {
        app: get_uuid(row, "app_id")?,
        process_type: get_text(row, "process_type")?,
        number: u32::try_from(number)
            .map_err(|_| anyhow::anyhow!("stored dyno number {number} is out of range"))?,
    };
    let placed = Placed {
        host: get_uuid(row, "host_id")?,
        memory_mb: u64::try_from(memory_mb)
            .map_err(|_| anyhow::anyhow!("stored memory {memory_mb} is negative"))?,
    };
    Ok((slot, placed))
}

fn host_from(row: &AnyRow) -> anyhow::Result<Host> {
    let name = get_text(row, "name")?;
    let memory_mb = get_opt_i64(row, "memory_mb")?
        .map(|m| u64::try_from(m).map_err(|_| anyhow::anyhow!("stored memory {m} is negative")))
        .transpose()?;
    Ok(Host {
        id: get_uuid(row, "id")?,
        name: HostName::parse(&name)
            .map_err(|e| anyhow::anyhow!("stored host name {name:?}: {e}"))?,
        memory_mb,
        address: get_opt_text(row, "address")?,
        draining: get_i64(row, "draining")? != 0,
        epoch: get_i64(row, "epoch")?,
        last_heartbeat_at: get_opt_text(row, "last_heartbeat_at")?
            .map(|t| crate::rows::parse_time(&t))
            .transpose()?,
        lease_expires_at: get_opt_text(row, "lease_expires_at")?
            .map(|t| crate::rows::parse_time(&t))
            .transpose()?,
        created_at: get_time(row, "created_at")?,
    })
}
