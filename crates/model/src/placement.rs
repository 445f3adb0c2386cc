//! Placement: a pure function that decides which host runs each dyno of every app's formation.
//!
//! What placement works with:
//! - a **slot** is one dyno of a formation, named by app, process type and number (`web.3`),
//!   whatever release it runs; a **demand** is a slot and the memory its size reserves;
//! - a host is **accepting** while it takes dynos; a host that is lost or draining is not: it
//!   gets no new slot and keeps none. A host's **free memory** is its memory less what the
//!   slots on it reserve.
//!
//! The rules, in this order:
//! 1. **Keep.** A slot stays on its current host when that host is listed and accepting and
//!    has room for it: kept slots are taken in slot order (app, process type, number), and a
//!    slot that would push its host past its memory is not kept but placed by rule 2. A slot
//!    after it may still be kept, if it fits. Current hosts of slots not demanded, and current
//!    hosts that are not listed, are ignored.
//! 2. **Place.** The other slots, in slot order, each go to an accepting host whose free memory
//!    is at least the slot's memory, choosing by, in order: fewest slots of the same app and
//!    process type (a process type spreads over hosts, so a lost host takes few of its dynos);
//!    fewest slots of the same app; most free memory; lowest host id (a tie is broken the same
//!    way every time).
//! 3. **Unplaced.** A slot that no accepting host has room for is unplaced.
//!
//! So every demanded slot ends up either assigned or unplaced, never both; no host is given
//! more than its memory; and placing again with the result as the current hosts changes
//! nothing.
//!
//! Duplicates: the first demand for a slot (in slice order) is the one that counts, and the
//! first host of an id likewise; later ones are ignored. Apart from that choice, the order of
//! `demand` and `hosts` in their slices does not change the result: both are sorted first.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use uuid::Uuid;

/// One dyno of a formation: app, process type and number (`web.3` is number 3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub app: Uuid,
    pub process_type: String,
    pub number: u32,
}

/// A slot to place and the memory its size reserves ([`crate::DynoSize::memory_mb`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub slot: Slot,
    pub memory_mb: u64,
}

/// A host as placement sees it. `accepting` is false for a host that is lost or draining:
/// it gets no new slot and keeps none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapacity {
    pub id: Uuid,
    pub memory_mb: u64,
    pub accepting: bool,
}

/// The outcome: every demanded slot is in exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub assigned: BTreeMap<Slot, Uuid>,
    /// Slots no accepting host has room for, in slot order.
    pub unplaced: Vec<Slot>,
}

/// Decides the host of every demanded slot, by the rules in the module doc: keep what fits
/// where it is, spread the rest, list what fits nowhere.
pub fn place(
    demand: &[Demand],
    hosts: &[HostCapacity],
    current: &BTreeMap<Slot, Uuid>,
) -> Placement {
    let demand = first_demand_per_slot(demand);
    let mut hosts = accepting_hosts(hosts);
    let mut placement = Placement::default();

    let mut to_place = Vec::new();
    for (&slot, &memory_mb) in &demand {
        let kept_on = current
            .get(slot)
            .and_then(|id| hosts.get_mut(id))
            .filter(|host| host.fits(memory_mb));
        match kept_on {
            Some(host) => {
                host.take(slot, memory_mb);
                placement.assigned.insert(slot.clone(), host.id);
            }
            None => to_place.push((slot, memory_mb)),
        }
    }

    for (slot, memory_mb) in to_place {
        let best = hosts
            .values_mut()
            .filter(|host| host.fits(memory_mb))
            .min_by_key(|host| host.preference(slot));
        match best {
            Some(host) => {
                host.take(slot, memory_mb);
                placement.assigned.insert(slot.clone(), host.id);
            }
            None => placement.unplaced.push(slot.clone()),
        }
    }
    placement
}

/// The demand by slot, in slot order; the first demand for a slot wins.
fn first_demand_per_slot(demand: &[Demand]) -> BTreeMap<&Slot, u64> {
    let mut by_slot = BTreeMap::new();
    for entry in demand {
        by_slot.entry(&entry.slot).or_insert(entry.memory_mb);
    }
    by_slot
}

/// The accepting hosts by id, each empty; the first host of an id wins, accepting or not.
fn accepting_hosts<'a>(hosts: &[HostCapacity]) -> BTreeMap<Uuid, HostLoad<'a>> {
    let mut by_id: BTreeMap<Uuid, &HostCapacity> = BTreeMap::new();
    for host in hosts {
        by_id.entry(host.id).or_insert(host);
    }
    by_id
        .into_values()
        .filter(|host| host.accepting)
        .map(|host| {
            let load = HostLoad {
                id: host.id,
                free_mb: host.memory_mb,
                per_process_type: BTreeMap::new(),
                per_app: BTreeMap::new(),
            };
            (host.id, load)
        })
        .collect()
}

/// An accepting host while placement fills it.
struct HostLoad<'a> {
    id: Uuid,
    free_mb: u64,
    per_process_type: BTreeMap<(Uuid, &'a str), usize>,
    per_app: BTreeMap<Uuid, usize>,
}

impl<'a> HostLoad<'a> {
    fn fits(&self, memory_mb: u64) -> bool {
        self.free_mb >= memory_mb
    }

    /// Puts `slot` on the host; the caller has checked that it [`fits`](Self::fits).
    fn take(&mut self, slot: &'a Slot, memory_mb: u64) {
        self.free_mb -= memory_mb;
        *self
            .per_process_type
            .entry((slot.app, slot.process_type.as_str()))
            .or_default() += 1;
        *self.per_app.entry(slot.app).or_default() += 1;
    }

    /// How much placement wants `slot` here: lower is better (rule 2).
    fn preference(&self, slot: &Slot) -> (usize, usize, Reverse<u64>, Uuid) {
        let same_process_type = self
            .per_process_type
            .get(&(slot.app, slot.process_type.as_str()))
            .copied()
            .unwrap_or_default();
        let same_app = self.per_app.get(&slot.app).copied().unwrap_or_default();
        (same_process_type, same_app, Reverse(self.free_mb), self.id)
    }
}

#[cfg(test)]
mod tests;
