//! Tests of placement: examples for each rule as small tables, and properties over random
//! hosts, formations and current hosts.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::DynoSize;

/// Apps by name; a slot of `shop` is written `web.1`, one of another app `blog:web.1`.
const APPS: [&str; 3] = ["shop", "blog", "mail"];

fn app_id(name: &str) -> Uuid {
    let index = APPS.iter().position(|app| *app == name).unwrap();
    Uuid::from_u128(index as u128 + 1)
}

fn app_name(id: Uuid) -> &'static str {
    APPS[id.as_u128() as usize - 1]
}

/// Hosts are named by one letter; their ids sort as their names do.
fn host_id(name: &str) -> Uuid {
    let [letter] = name.as_bytes() else {
        panic!("a host name is one letter: {name}")
    };
    Uuid::from_u128(0x100 + u128::from(*letter))
}

fn host_name(id: Uuid) -> char {
    char::from(u8::try_from(id.as_u128() - 0x100).unwrap())
}

/// `web.1` (of `shop`) or `blog:web.1`.
fn slot(label: &str) -> Slot {
    let (app, dyno) = label.split_once(':').unwrap_or(("shop", label));
    let (process_type, number) = dyno.split_once('.').unwrap();
    Slot {
        app: app_id(app),
        process_type: process_type.to_owned(),
        number: number.parse().unwrap(),
    }
}

fn label(slot: &Slot) -> String {
    let dyno = format!("{}.{}", slot.process_type, slot.number);
    match app_name(slot.app) {
        "shop" => dyno,
        app => format!("{app}:{dyno}"),
    }
}

/// Slots `1..=quantity` of each process type (`web`, or `blog:web`) at its size.
fn formation(entries: &[(&str, u32, DynoSize)]) -> Vec<Demand> {
    entries
        .iter()
        .flat_map(|(process_type, quantity, size)| {
            (1..=*quantity).map(move |number| Demand {
                slot: slot(&format!("{process_type}.{number}")),
                memory_mb: size.memory_mb(),
            })
        })
        .collect()
}

/// Hosts as (name, memory in MiB, accepting).
fn hosts(table: &[(&str, u64, bool)]) -> Vec<HostCapacity> {
    table
        .iter()
        .map(|(name, memory_mb, accepting)| HostCapacity {
            id: host_id(name),
            memory_mb: *memory_mb,
            accepting: *accepting,
        })
        .collect()
}

/// Current hosts as (slot, host name).
fn current(table: &[(&str, &str)]) -> BTreeMap<Slot, Uuid> {
    table
        .iter()
        .map(|(label, host)| (slot(label), host_id(host)))
        .collect()
}

/// One line per listed host, `a: web.1 web.4` (in slot order), then `unplaced: web.5` when a
/// slot is unplaced.
fn render(placement: &Placement, hosts: &[HostCapacity]) -> Vec<String> {
    let mut lines: BTreeMap<char, Vec<String>> = hosts
        .iter()
        .map(|host| (host_name(host.id), Vec::new()))
        .collect();
    for (slot, host) in &placement.assigned {
        lines.entry(host_name(*host)).or_default().push(label(slot));
    }
    let mut rendered: Vec<String> = lines
        .into_iter()
        .map(|(host, slots)| format!("{host}: {}", slots.join(" ")).trim_end().to_owned())
        .collect();
    if !placement.unplaced.is_empty() {
        let slots: Vec<String> = placement.unplaced.iter().map(label).collect();
        rendered.push(format!("unplaced: {}", slots.join(" ")));
    }
    rendered
}

fn check(
    host_table: &[(&str, u64, bool)],
    demand: &[Demand],
    current_table: &[(&str, &str)],
    expected: &[&str],
) {
    let hosts = hosts(host_table);
    let placement = place(demand, &hosts, &current(current_table));
    assert_eq!(render(&placement, &hosts), expected);
}

const BASIC: DynoSize = DynoSize::Basic;

#[test]
fn three_empty_hosts_share_a_process_type() {
    let three = [("a", 4096, true), ("b", 4096, true), ("c", 4096, true)];
    check(
        &three,
        &formation(&[("web", 3, BASIC)]),
        &[],
        &["a: web.1", "b: web.2", "c: web.3"],
    );
    check(
        &three,
        &formation(&[("web", 4, BASIC)]),
        &[],
        &["a: web.1 web.4", "b: web.2", "c: web.3"],
    );
}

#[test]
fn web_and_worker_spread_independently() {
    check(
        &[("a", 4096, true), ("b", 4096, true), ("c", 4096, true)],
        &formation(&[("web", 2, BASIC), ("worker", 2, BASIC)]),
        &[],
        &["a: web.1 worker.2", "b: web.2", "c: worker.1"],
    );
    // `a` already runs both web dynos (`b` joined since): the workers still spread over both.
    check(
        &[("a", 4096, true), ("b", 4096, true)],
        &formation(&[("web", 2, BASIC), ("worker", 2, BASIC)]),
        &[("web.1", "a"), ("web.2", "a")],
        &["a: web.1 web.2 worker.2", "b: worker.1"],
    );
}

#[test]
fn ties_go_to_the_fewest_of_the_app_then_the_most_free_memory_then_the_lowest_id() {
    // `a` has the most free memory, but already a dyno of the app.
    check(
        &[("a", 8192, true), ("b", 2048, true)],
        &formation(&[("clock", 1, BASIC), ("web", 1, BASIC)]),
        &[("clock.1", "a")],
        &["a: clock.1", "b: web.1"],
    );
    // Another app's web dynos count only for the memory they take: `a` still has the most.
    check(
        &[("a", 8192, true), ("b", 4096, true)],
        &formation(&[("web", 1, BASIC), ("blog:web", 1, BASIC)]),
        &[],
        &["a: web.1 blog:web.1", "b:"],
    );
    // `b` and `c` have the most free memory, and `b` the lower id.
    check(
        &[("a", 2048, true), ("b", 4096, true), ("c", 4096, true)],
        &formation(&[("web", 1, BASIC)]),
        &[],
        &["a:", "b: web.1", "c:"],
    );
}

#[test]
fn a_slot_goes_only_where_it_fits() {
    // Performance-L reserves 14336 MiB.
    check(
        &[("a", 8192, true), ("b", 16384, true), ("c", 16384, true)],
        &formation(&[("web", 3, DynoSize::PerformanceL)]),
        &[],
        &["a:", "b: web.1", "c: web.2", "unplaced: web.3"],
    );
    check(
        &[("a", 1024, true)],
        &formation(&[("web", 1, DynoSize::PerformanceM), ("worker", 3, BASIC)]),
        &[],
        &["a: worker.1 worker.2", "unplaced: web.1 worker.3"],
    );
}

#[test]
fn scaling_up_keeps_the_dynos_where_they_are() {
    // A fresh placement would spread web.1 and web.2; kept, they stay together on `c`.
    check(
        &[("a", 4096, true), ("b", 4096, true), ("c", 4096, true)],
        &formation(&[("web", 5, BASIC)]),
        &[("web.1", "c"), ("web.2", "c")],
        &["a: web.3 web.5", "b: web.4", "c: web.1 web.2"],
    );
}

#[test]
fn a_host_that_stops_accepting_loses_its_slots() {
    // `b` is draining (or lost): its dynos move, the others stay. `worker.1` then goes where
    // the app has fewer dynos.
    check(
        &[("a", 4096, true), ("b", 4096, false), ("c", 4096, true)],
        &formation(&[("web", 3, BASIC), ("worker", 1, BASIC)]),
        &[
            ("web.1", "a"),
            ("web.2", "b"),
            ("web.3", "c"),
            ("worker.1", "b"),
        ],
        &["a: web.1 web.2", "b:", "c: web.3 worker.1"],
    );
}

#[test]
fn a_host_that_shrank_keeps_what_fits_in_slot_order() {
    // `a` has 1536 MiB: web.1 (1024) fits, web.2 would not, worker.1 (512) still does.
    check(
        &[("a", 1536, true), ("b", 4096, true)],
        &formation(&[("web", 2, DynoSize::Standard2X), ("worker", 1, BASIC)]),
        &[("web.1", "a"), ("web.2", "a"), ("worker.1", "a")],
        &["a: web.1 worker.1", "b: web.2"],
    );
}

#[test]
fn stale_current_hosts_are_ignored() {
    // `z` is not listed; web.9 is no longer demanded, so it does not count on `a`.
    check(
        &[("a", 4096, true), ("b", 4096, true)],
        &formation(&[("web", 2, BASIC)]),
        &[("web.1", "z"), ("web.9", "a")],
        &["a: web.1", "b: web.2"],
    );
}

#[test]
fn the_first_demand_for_a_slot_and_the_first_host_of_an_id_count() {
    let mut demand = formation(&[("web", 1, BASIC)]);
    demand.extend(formation(&[("web", 1, DynoSize::PerformanceL)]));
    check(
        &[("a", 1024, true), ("b", 16384, false), ("b", 16384, true)],
        &demand,
        &[],
        &["a: web.1", "b:"],
    );
}

fn reversed<T: Clone>(items: &[T]) -> Vec<T> {
    items.iter().rev().cloned().collect()
}

#[test]
fn the_order_of_the_inputs_does_not_change_the_result() {
    // `a` has room for one of the two: the first in slot order (web.1), whatever the order of
    // the demand; of the equal `b` and `c`, `b` has the lowest id, whatever the host order.
    let demand = formation(&[("web", 1, DynoSize::Standard2X), ("worker", 2, BASIC)]);
    let hosts = hosts(&[("a", 1024, true), ("b", 512, true), ("c", 512, true)]);
    let expected = ["a: web.1", "b: worker.1", "c: worker.2"];
    for demand in [demand.clone(), reversed(&demand)] {
        for hosts in [hosts.clone(), reversed(&hosts)] {
            let placement = place(&demand, &hosts, &BTreeMap::new());
            assert_eq!(render(&placement, &hosts), expected);
        }
    }
}

// Properties.

const TYPES: [&str; 3] = ["web", "worker", "clock"];

/// Memory enough for any demand generated here (108 Performance-L dynos take 1.5 TiB).
const AMPLE_MB: u64 = 16 << 20;

/// 1 to 6 hosts of 0 to 16384 MiB in steps of 512, accepting or not, in random order.
fn hosts_strategy() -> impl Strategy<Value = Vec<HostCapacity>> {
    prop::collection::vec((0u64..=32, any::<bool>()), 1..=6)
        .prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(index, (steps, accepting))| HostCapacity {
                    id: Uuid::from_u128(0x100 + index as u128),
                    memory_mb: steps * 512,
                    accepting,
                })
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

/// 1 to 3 apps, each with a quantity (0 to 12) and a size per process type.
fn formations_strategy() -> impl Strategy<Value = Vec<(Uuid, &'static str, u32, DynoSize)>> {
    let entry = (0u32..=12, prop::sample::select(DynoSize::ALL.to_vec()));
    prop::collection::vec(prop::collection::vec(entry, TYPES.len()), 1..=3).prop_map(|apps| {
        apps.into_iter()
            .enumerate()
            .flat_map(|(index, entries)| {
                let app = Uuid::from_u128(index as u128 + 1);
                TYPES
                    .iter()
                    .zip(entries)
                    .map(move |(process_type, (quantity, size))| {
                        (app, *process_type, quantity, size)
                    })
            })
            .collect()
    })
}

fn demand_of(formations: &[(Uuid, &str, u32, DynoSize)]) -> Vec<Demand> {
    formations
        .iter()
        .flat_map(|(app, process_type, quantity, size)| {
            (1..=*quantity).map(move |number| Demand {
                slot: Slot {
                    app: *app,
                    process_type: (*process_type).to_owned(),
                    number,
                },
                memory_mb: size.memory_mb(),
            })
        })
        .collect()
}

/// Where a current entry points: a listed host (by index) or an unknown one.
#[derive(Debug, Clone)]
enum Target {
    Listed(usize),
    Unknown(u128),
}

/// Current hosts for random slots of the apps: some demanded, some not (numbers above the
/// quantity), on listed hosts or unknown ones.
fn current_strategy() -> impl Strategy<Value = Vec<(u128, usize, u32, Target)>> {
    let target = prop_oneof![
        4 => (0usize..6).prop_map(Target::Listed),
        1 => (0u128..3).prop_map(|offset| Target::Unknown(0x900 + offset)),
    ];
    prop::collection::vec((1u128..=3, 0..TYPES.len(), 1u32..=14, target), 0..40)
}

fn current_of(raw: &[(u128, usize, u32, Target)], hosts: &[HostCapacity]) -> BTreeMap<Slot, Uuid> {
    raw.iter()
        .map(|(app, type_index, number, target)| {
            let host = match target {
                Target::Listed(index) => hosts[index % hosts.len()].id,
                Target::Unknown(id) => Uuid::from_u128(*id),
            };
            let slot = Slot {
                app: Uuid::from_u128(*app),
                process_type: TYPES[*type_index].to_owned(),
                number: *number,
            };
            (slot, host)
        })
        .collect()
}

fn memory_of(demand: &[Demand]) -> BTreeMap<&Slot, u64> {
    demand
        .iter()
        .map(|entry| (&entry.slot, entry.memory_mb))
        .collect()
}

/// Each accepting host's memory less what its assigned slots reserve (`None` past zero).
fn free_memory(
    placement: &Placement,
    demand: &[Demand],
    hosts: &[HostCapacity],
) -> BTreeMap<Uuid, Option<u64>> {
    let memory = memory_of(demand);
    hosts
        .iter()
        .filter(|host| host.accepting)
        .map(|host| {
            let used: u64 = placement
                .assigned
                .iter()
                .filter(|(_, id)| **id == host.id)
                .map(|(slot, _)| memory[slot])
                .sum();
            (host.id, host.memory_mb.checked_sub(used))
        })
        .collect()
}

fn ample(hosts: &[HostCapacity]) -> Vec<HostCapacity> {
    hosts
        .iter()
        .map(|host| HostCapacity {
            memory_mb: AMPLE_MB,
            ..host.clone()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No host gets more than its memory, and only accepting hosts get slots.
    #[test]
    fn capacity(
        hosts in hosts_strategy(),
        formations in formations_strategy(),
        raw_current in current_strategy(),
    ) {
        let demand = demand_of(&formations);
        let placement = place(&demand, &hosts, &current_of(&raw_current, &hosts));
        let free = free_memory(&placement, &demand, &hosts);
        for (host, free_mb) in &free {
            prop_assert!(free_mb.is_some(), "host {host} is given more than its memory");
        }
        for (slot, host) in &placement.assigned {
            prop_assert!(free.contains_key(host), "{slot:?} on {host}, not an accepting host");
        }
    }

    /// Each demanded slot is either assigned or unplaced, once; nothing else is.
    #[test]
    fn completeness(
        hosts in hosts_strategy(),
        formations in formations_strategy(),
        raw_current in current_strategy(),
    ) {
        let demand = demand_of(&formations);
        let placement = place(&demand, &hosts, &current_of(&raw_current, &hosts));
        let demanded: Vec<&Slot> = memory_of(&demand).into_keys().collect();
        let mut outcome: Vec<&Slot> =
            placement.assigned.keys().chain(&placement.unplaced).collect();
        outcome.sort();
        prop_assert_eq!(outcome, demanded);
        let mut sorted = placement.unplaced.clone();
        sorted.sort();
        prop_assert_eq!(&placement.unplaced, &sorted, "unplaced slots are in slot order");
    }

    /// A slot is unplaced only if no accepting host has room for it once placement is done.
    #[test]
    fn no_needless_unplaced(
        hosts in hosts_strategy(),
        formations in formations_strategy(),
        raw_current in current_strategy(),
    ) {
        let demand = demand_of(&formations);
        let placement = place(&demand, &hosts, &current_of(&raw_current, &hosts));
        let memory = memory_of(&demand);
        let free = free_memory(&placement, &demand, &hosts);
        for slot in &placement.unplaced {
            for (host, free_mb) in &free {
                prop_assert!(free_mb.unwrap_or(0) < memory[slot],
                    "{slot:?} unplaced, host {host} has {free_mb:?} MiB free");
            }
        }
    }

    /// When the slots that `current` puts on an accepting host fit on it together, they all
    /// stay there.
    #[test]
    fn stability(
        hosts in hosts_strategy(),
        formations in formations_strategy(),
        raw_current in current_strategy(),
    ) {
        let demand = demand_of(&formations);
        let current = current_of(&raw_current, &hosts);
        let placement = place(&demand, &hosts, &current);
        for host in hosts.iter().filter(|host| host.accepting) {
            let on_host: Vec<&Demand> = demand
                .iter()
                .filter(|entry| current.get(&entry.slot) == Some(&host.id))
                .collect();
            if on_host.iter().map(|entry| entry.memory_mb).sum::<u64>() > host.memory_mb {
                continue;
            }
            for entry in on_host {
                prop_assert_eq!(placement.assigned.get(&entry.slot), Some(&host.id),
                    "{:?} left {}", entry.slot, host.id);
            }
        }
    }

    /// Placing again with the result as the current hosts changes nothing.
    #[test]
    fn idempotence(
        hosts in hosts_strategy(),
        formations in formations_strategy(),
        raw_current in current_strategy(),
    ) {
        let demand = demand_of(&formations);
        let first = place(&demand, &hosts, &current_of(&raw_current, &hosts));
        let second = place(&demand, &hosts, &first.assigned);
        prop_assert_eq!(second.assigned, first.assigned);
    }

    /// With ample memory, adding slots of higher numbers moves none of the earlier ones.
    #[test]
    fn scale_up_moves_nothing(
        hosts in hosts_strategy(),
        formations in formations_strategy(),
        raw_current in current_strategy(),
        added in prop::collection::vec(0u32..=4, 9),
    ) {
        let hosts = ample(&hosts);
        let before = demand_of(&formations);
        let first = place(&before, &hosts, &current_of(&raw_current, &hosts));
        let scaled: Vec<_> = formations
            .iter()
            .zip(added)
            .map(|((app, process_type, quantity, size), more)| {
                (*app, *process_type, quantity + more, *size)
            })
            .collect();
        let second = place(&demand_of(&scaled), &hosts, &first.assigned);
        for (slot, host) in &first.assigned {
            prop_assert_eq!(second.assigned.get(slot), Some(host), "{:?} moved", slot);
        }
    }

    /// From nothing, on accepting hosts with ample memory, each process type of each app
    /// spreads evenly: its counts per host differ by at most one.
    #[test]
    fn spread(hosts in hosts_strategy(), formations in formations_strategy()) {
        let hosts: Vec<_> = ample(&hosts)
            .into_iter()
            .map(|host| HostCapacity { accepting: true, ..host })
            .collect();
        let demand = demand_of(&formations);
        let placement = place(&demand, &hosts, &BTreeMap::new());
        for (app, process_type, _, _) in &formations {
            let counts: Vec<usize> = hosts
                .iter()
                .map(|host| {
                    placement
                        .assigned
                        .iter()
                        .filter(|(slot, id)| {
                            slot.app == *app && slot.process_type == *process_type && **id == host.id
                        })
                        .count()
                })
                .collect();
            let most = counts.iter().max().copied().unwrap_or(0);
            let fewest = counts.iter().min().copied().unwrap_or(0);
            prop_assert!(most - fewest <= 1, "{app} {process_type}: {counts:?}");
        }
    }

    /// Shuffling the demand and the hosts changes nothing.
    #[test]
    fn order_does_not_matter(
        hosts in hosts_strategy(),
        formations in formations_strategy(),
        raw_current in current_strategy(),
        demand_keys in prop::collection::vec(any::<u64>(), 108),
        host_keys in prop::collection::vec(any::<u64>(), 6),
    ) {
        let demand = demand_of(&formations);
        let current = current_of(&raw_current, &hosts);
        let placement = place(&demand, &hosts, &current);
        let shuffled_demand = permuted(&demand, &demand_keys);
        let shuffled_hosts = permuted(&hosts, &host_keys);
        prop_assert_eq!(place(&shuffled_demand, &shuffled_hosts, &current), placement);
    }
}

/// `items` in the order of `keys` (one random key per item, ties kept in place).
fn permuted<T: Clone>(items: &[T], keys: &[u64]) -> Vec<T> {
    let mut indexed: Vec<(u64, usize)> =
        (0..items.len()).map(|index| (keys[index], index)).collect();
    indexed.sort();
    indexed
        .into_iter()
        .map(|(_, index)| items[index].clone())
        .collect()
}
