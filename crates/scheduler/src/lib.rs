//! The scheduler: the control plane's loop that places every formation's dynos on the hosts.
//!
//! It reads the demand (per app with code to run, each process type's dynos `1..=quantity`
//! with the memory of their size), the hosts (memory, and whether each is accepting: up and
//! not draining, by the control plane's clock) and the current placements, asks the pure
//! [`wharf_model::place`] for the next placements, and writes only what changed. It runs when
//! a change is announced (a formation, a release, a host) and every [`SCHEDULE_INTERVAL`]:
//! nothing announces that a lease ran out, so the tick is what notices a lost host.
//!
//! With no host registered (a one-host install), the scheduler does nothing: the server's own
//! dyno manager runs every formation. A control plane that starts waits [`START_GRACE`] before
//! its first pass, so that agents it could not hear while it was down have sent a heartbeat
//! to it before any of them is taken for lost.
//!
//! Invariants:
//! - The store's placements are the scheduler's alone to write; agents only read them.
//! - A slot moves only when placement says it must (its host is lost, draining, removed or
//!   too small): a formation change or a deploy moves nothing else.
//! - A failed pass changes nothing and is tried again at the next tick: the placements stay
//!   as they were, so dynos keep running where they are.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_model::{place, Demand, HostCapacity, Slot};
use wharf_store::{Change, Placed, Store, StoreError};

/// How often the scheduler looks again without being told: a lost host's dynos are placed
/// elsewhere within this of its lease running out.
pub const SCHEDULE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a starting scheduler waits before its first pass: a lease and a heartbeat.
pub const START_GRACE: Duration = Duration::from_secs(
    (wharf_model::LEASE.whole_seconds() + wharf_model::HEARTBEAT_INTERVAL.whole_seconds()) as u64,
);

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Slots added, moved, resized or removed.
    pub changed: usize,
    /// Slots no accepting host has room for.
    pub unplaced: Vec<Slot>,
    /// Hosts joined, but none holds a lease: nothing was placed (see [`schedule`]).
    pub no_lease: bool,
}

/// Places dynos until `shutdown`: at once, on every announced change, and every
/// [`SCHEDULE_INTERVAL`].
pub async fn run(store: Store, shutdown: CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = tokio::time::sleep(START_GRACE) => {}
    }
    let mut changes = store.changes();
    let mut tick = tokio::time::interval(SCHEDULE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unplaced_before = Vec::new();
    // While no host holds a lease (this control plane was cut off, or every host was),
    // nothing is placed; once one holds a lease again, the others get what a start gives them
    // before any is taken for lost: the first back would otherwise get every dyno of the
    // others, still running there.
    let mut outage = false;
    let mut resume_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = changes.next() => {}
            _ = tick.tick() => {}
        }
        match leased(&store).await {
            Ok(Some(false)) => {
                if !outage {
                    tracing::warn!("no host holds a lease: placing nothing until one does");
                }
                outage = true;
                resume_at = None;
                continue;
            }
            Ok(Some(true)) if outage => {
                outage = false;
                tracing::info!(
                    "a host holds a lease again: placing again in {} s",
                    START_GRACE.as_secs()
                );
                resume_at = Some(tokio::time::Instant::now() + START_GRACE);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!("place dynos: {error:#}");
                continue;
            }
        }
        if resume_at.is_some_and(|at| tokio::time::Instant::now() < at) {
            continue;
        }
        match schedule(&store, OffsetDateTime::now_utc()).await {
            Ok(pass) => {
                if pass.unplaced != unplaced_before {
                    if !pass.unplaced.is_empty() {
                        tracing::warn!(
                            dynos = pass.unplaced.len(),
                            "no host has room for some dynos: add a host or memory"
                        );
                    }
                    unplaced_before = pass.unplaced;
                }
            }
            Err(error) => tracing::warn!("place dynos: {error:#}"),
        }
    }
}

/// Whether any host holds a lease now; `None` when no host joined.
async fn leased(store: &Store) -> anyhow::Result<Option<bool>> {
    let hosts = store.hosts().await.context("read the hosts")?;
    Ok((!hosts.is_empty()).then(|| holds_lease(&hosts, OffsetDateTime::now_utc())))
}

/// Whether any of `hosts` holds a lease at `now` (up or draining).
fn holds_lease(hosts: &[wharf_model::Host], now: OffsetDateTime) -> bool {
    hosts.iter().any(|host| {
        matches!(
            host.state(now),
            wharf_model::HostState::Up | wharf_model::HostState::Draining
        )
    })
}

/// One pass: places every demanded slot and writes what changed, announcing it.
pub async fn schedule(store: &Store, now: OffsetDateTime) -> anyhow::Result<Pass> {
    let hosts = store.hosts().await.context("read the hosts")?;
    // No host at all (one host: the server runs everything), or none holding a lease: then
    // this control plane is more likely the one cut off (or was down), no host could take a
    // dyno, and the hosts keep running theirs (see the agent's `peers.rs`): nothing moves.
    if hosts.is_empty() {
        return Ok(Pass::default());
    }
    if !holds_lease(&hosts, now) {
        return Ok(Pass {
            no_lease: true,
            ..Pass::default()
        });
    }
    let hosts: Vec<HostCapacity> = hosts
        .iter()
        .map(|host| HostCapacity {
            id: host.id,
            memory_mb: host.memory_mb.unwrap_or(0),
            accepting: host.accepting(now),
        })
        .collect();
    let demand = demand(store).await?;
    let placed_now = store.placements().await.context("read the placements")?;
    let current: BTreeMap<Slot, Uuid> = placed_now
        .iter()
        .map(|(slot, placed)| (slot.clone(), placed.host))
        .collect();
    let placement = place(&demand, &hosts, &current);
    let memory: BTreeMap<&Slot, u64> = demand.iter().map(|d| (&d.slot, d.memory_mb)).collect();
    let mut next: BTreeMap<Slot, Placed> = placement
        .assigned
        .into_iter()
        .map(|(slot, host)| {
            let memory_mb = memory[&slot];
            (slot, Placed { host, memory_mb })
        })
        .collect();
    // A slot no accepting host has room for stays where it is when its host is not
    // accepting (lost, or draining): nobody else could run it meanwhile, and a host that
    // comes back (a control plane that lost every lease but a draining host's, say) keeps
    // running it rather than stop it.
    let accepting: std::collections::HashSet<Uuid> = hosts
        .iter()
        .filter(|host| host.accepting)
        .map(|host| host.id)
        .collect();
    for slot in &placement.unplaced {
        if let Some(placed) = placed_now.get(slot) {
            if !accepting.contains(&placed.host) {
                next.insert(slot.clone(), *placed);
            }
        }
    }
    let changed = store
        .set_placements(&next, now)
        .await
        .context("write the placements")?;
    if changed > 0 {
        tracing::info!(changed, "placed dynos");
        if let Err(error) = store.announce(Change::Hosts).await {
            tracing::warn!("announce new placements: {error}");
        }
    }
    Ok(Pass {
        changed,
        unplaced: placement.unplaced,
        no_lease: false,
    })
}

/// Every dyno the formations ask for: per app with a release to run, each process type the
/// release defines, numbers `1..=quantity`, with the memory of its size.
async fn demand(store: &Store) -> anyhow::Result<Vec<Demand>> {
    let mut demand = Vec::new();
    for app in store.all_apps().await.context("list apps")? {
        let formation = match store.formation(app.id).await {
            Ok(formation) => formation,
            // Deleted since it was listed: it asks for nothing.
            Err(StoreError::NotFound(_)) => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("read the formation of {}", app.name))
            }
        };
        for entry in formation {
            for number in 1..=entry.quantity {
                demand.push(Demand {
                    slot: Slot {
                        app: app.id,
                        process_type: entry.process_type.as_str().to_owned(),
                        number,
                    },
                    memory_mb: entry.size.memory_mb(),
                });
            }
        }
    }
    Ok(demand)
}
