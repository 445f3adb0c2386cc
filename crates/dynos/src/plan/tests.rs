//! Tests of the reconcile plan: examples for each rule, and properties over random formations
//! and observed states with a model in which started dynos come up and stopped ones go away.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use time::macros::datetime;
use time::Duration;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn app_id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn desired_app(version: i64, formation: &[(&str, u32, DynoSize)]) -> DesiredApp {
    let formation: Vec<(&str, BTreeSet<u32>, DynoSize)> = formation
        .iter()
        .map(|(t, quantity, size)| (*t, DesiredProcess::first(*quantity, *size).numbers, *size))
        .collect();
    placed_app(version, &formation)
}

/// An app whose process types run the given numbers here (those placed on this host).
fn placed_app(version: i64, formation: &[(&str, BTreeSet<u32>, DynoSize)]) -> DesiredApp {
    DesiredApp {
        name: "demo".to_owned(),
        release: DesiredRelease {
            version,
            slug_id: Some(Uuid::from_u128(99)),
            config: ConfigVars::default(),
            commands: formation
                .iter()
                .map(|(t, _, _)| ((*t).to_owned(), format!("run-{t}")))
                .collect(),
            stack: "debian-12".to_owned(),
        },
        formation: formation
            .iter()
            .map(|(t, numbers, size)| {
                (
                    (*t).to_owned(),
                    DesiredProcess {
                        numbers: numbers.clone(),
                        size: *size,
                    },
                )
            })
            .collect(),
        asleep: false,
    }
}

fn desired(version: i64, formation: &[(&str, u32)]) -> Desired {
    let formation: Vec<_> = formation
        .iter()
        .map(|(t, q)| (*t, *q, DynoSize::Basic))
        .collect();
    Desired {
        apps: [(app_id(1), desired_app(version, &formation))].into(),
    }
}

fn dyno(name: &str, release: i64, state: DynoState) -> ObservedDyno {
    ObservedDyno {
        app: app_id(1),
        name: name.parse().unwrap(),
        release,
        size: DynoSize::Basic,
        state,
        started_at: NOW,
        crashes: 0,
        next_restart: None,
        cycle_at: None,
    }
}

fn observed(dynos: Vec<ObservedDyno>) -> Observed {
    Observed { now: NOW, dynos }
}

/// Actions as short strings: `start web.1 v2`, `stop web.1 v1 replaced`, `restart web.1 v1`.
fn check(desired: &Desired, dynos: Vec<ObservedDyno>, expected: &[&str]) {
    let actions: Vec<String> = plan(desired, &observed(dynos))
        .iter()
        .map(|action| match action {
            Action::Start { name, release, .. } => format!("start {name} v{release}"),
            Action::Restart {
                name,
                release,
                reason,
                ..
            } => format!("restart {name} v{release} {reason:?}").to_lowercase(),
            Action::Stop {
                name,
                release,
                reason,
                ..
            } => format!("stop {name} v{release} {reason:?}").to_lowercase(),
            Action::Idle { name, release, .. } => format!("idle {name} v{release}"),
        })
        .collect();
    assert_eq!(actions, expected);
}

#[test]
fn starts_the_formation_from_nothing() {
    check(
        &desired(2, &[("web", 2), ("worker", 1), ("clock", 0)]),
        vec![],
        &["start web.1 v2", "start web.2 v2", "start worker.1 v2"],
    );
}

#[test]
fn nothing_runs_without_a_slug_or_a_command() {
    let mut wanted = desired(1, &[("web", 1)]);
    wanted.apps.get_mut(&app_id(1)).unwrap().release.slug_id = None;
    check(&wanted, vec![], &[]);
    let mut wanted = desired(1, &[("web", 1)]);
    wanted
        .apps
        .get_mut(&app_id(1))
        .unwrap()
        .release
        .commands
        .clear();
    check(
        &wanted,
        vec![dyno("web.1", 1, DynoState::Up)],
        &["stop web.1 v1 scaleddown"],
    );
}

#[test]
fn converged_is_quiet() {
    check(
        &desired(2, &[("web", 1), ("worker", 1)]),
        vec![
            dyno("web.1", 2, DynoState::Up),
            dyno("worker.1", 2, DynoState::Up),
        ],
        &[],
    );
}

#[test]
fn scale_down_stops_the_highest_numbers() {
    check(
        &desired(2, &[("web", 1)]),
        vec![
            dyno("web.1", 2, DynoState::Up),
            dyno("web.2", 2, DynoState::Up),
            dyno("web.3", 2, DynoState::Starting),
        ],
        &["stop web.2 v2 scaleddown", "stop web.3 v2 scaleddown"],
    );
}

/// One app whose web dynos here are `numbers` (the others are placed on other hosts).
fn web_numbers(version: i64, numbers: &[u32]) -> Desired {
    let numbers: BTreeSet<u32> = numbers.iter().copied().collect();
    Desired {
        apps: [(
            app_id(1),
            placed_app(version, &[("web", numbers, DynoSize::Basic)]),
        )]
        .into(),
    }
}

#[test]
fn only_the_numbers_placed_here_run() {
    let wanted = web_numbers(2, &[2, 5]);
    check(&wanted, vec![], &["start web.2 v2", "start web.5 v2"]);
    // web.1 is placed on another host now (or scaled away): it stops, whatever its release.
    check(
        &wanted,
        vec![
            dyno("web.1", 2, DynoState::Up),
            dyno("web.2", 2, DynoState::Up),
        ],
        &["stop web.1 v2 scaleddown", "start web.5 v2"],
    );
    check(
        &wanted,
        vec![
            dyno("web.1", 1, DynoState::Up),
            dyno("web.2", 2, DynoState::Up),
            dyno("web.5", 2, DynoState::Up),
        ],
        &["stop web.1 v1 scaleddown"],
    );
    // A preboot waits for every number here, and for no other.
    let wanted = web_numbers(3, &[2, 5]);
    check(
        &wanted,
        vec![
            dyno("web.2", 2, DynoState::Up),
            dyno("web.5", 2, DynoState::Up),
            dyno("web.2", 3, DynoState::Up),
            dyno("web.5", 3, DynoState::Starting),
        ],
        &[],
    );
    check(
        &wanted,
        vec![
            dyno("web.2", 2, DynoState::Up),
            dyno("web.5", 2, DynoState::Up),
            dyno("web.2", 3, DynoState::Up),
            dyno("web.5", 3, DynoState::Up),
        ],
        &["stop web.2 v2 replaced", "stop web.5 v2 replaced"],
    );
    // Nothing here: everything here stops, and an app with no web dynos here cannot sleep.
    let can_sleep = |numbers: &[u32]| {
        let numbers: BTreeSet<u32> = numbers.iter().copied().collect();
        placed_app(1, &[("web", numbers, DynoSize::Eco)]).can_sleep()
    };
    assert!(can_sleep(&[5]));
    assert!(!can_sleep(&[]));
    check(
        &web_numbers(2, &[]),
        vec![dyno("web.2", 2, DynoState::Up)],
        &["stop web.2 v2 scaleddown"],
    );
}

#[test]
fn the_preboot_bound_counts_the_numbers_here() {
    let app = placed_app(
        1,
        &[
            ("web", [2, 5].into(), DynoSize::Basic),
            ("worker", [3].into(), DynoSize::Basic),
        ],
    );
    assert_eq!(preboot_bound(&app), 5);
    assert_eq!(
        preboot_bound(&desired_app(1, &[("web", 3, DynoSize::Basic)])),
        6
    );
}

#[test]
fn web_preboots_a_new_release() {
    let wanted = desired(3, &[("web", 2)]);
    // New dynos start beside the old ones.
    check(
        &wanted,
        vec![
            dyno("web.1", 2, DynoState::Up),
            dyno("web.2", 2, DynoState::Up),
        ],
        &["start web.1 v3", "start web.2 v3"],
    );
    // Old ones stay while any new one is not up.
    check(
        &wanted,
        vec![
            dyno("web.1", 2, DynoState::Up),
            dyno("web.2", 2, DynoState::Up),
            dyno("web.1", 3, DynoState::Up),
            dyno("web.2", 3, DynoState::Starting),
        ],
        &[],
    );
    // Then they stop.
    check(
        &wanted,
        vec![
            dyno("web.1", 2, DynoState::Up),
            dyno("web.2", 2, DynoState::Up),
            dyno("web.1", 3, DynoState::Up),
            dyno("web.2", 3, DynoState::Up),
        ],
        &["stop web.1 v2 replaced", "stop web.2 v2 replaced"],
    );
}

#[test]
fn a_deploy_during_a_preboot_replaces_the_booting_dynos() {
    // v2 was booting next to v1 when v3 came: v2 serves nothing and holds v3's place.
    check(
        &desired(3, &[("web", 1)]),
        vec![
            dyno("web.1", 1, DynoState::Up),
            dyno("web.1", 2, DynoState::Starting),
        ],
        &["stop web.1 v2 replaced"],
    );
    // Both old ones up: the older stops, the newer serves until v3 is up.
    check(
        &desired(3, &[("web", 1)]),
        vec![
            dyno("web.1", 1, DynoState::Up),
            dyno("web.1", 2, DynoState::Up),
        ],
        &["stop web.1 v1 replaced"],
    );
    check(
        &desired(3, &[("web", 1)]),
        vec![dyno("web.1", 2, DynoState::Up)],
        &["start web.1 v3"],
    );
}

#[test]
fn a_new_release_that_never_comes_up_keeps_the_old_one() {
    let mut crashed = dyno("web.1", 3, DynoState::Crashed);
    crashed.crashes = 2;
    crashed.next_restart = Some(NOW + Duration::seconds(20));
    check(
        &desired(3, &[("web", 1)]),
        vec![dyno("web.1", 2, DynoState::Up), crashed],
        &[],
    );
}

#[test]
fn other_types_roll_one_at_a_time() {
    let wanted = desired(3, &[("worker", 2)]);
    check(
        &wanted,
        vec![
            dyno("worker.1", 2, DynoState::Up),
            dyno("worker.2", 2, DynoState::Up),
        ],
        &["stop worker.1 v2 replaced"],
    );
    check(
        &wanted,
        vec![
            dyno("worker.1", 2, DynoState::Down),
            dyno("worker.2", 2, DynoState::Up),
        ],
        &[],
    );
    check(
        &wanted,
        vec![dyno("worker.2", 2, DynoState::Up)],
        &["stop worker.2 v2 replaced", "start worker.1 v3"],
    );
}

#[test]
fn crashed_dynos_restart_after_their_cool_off() {
    let mut waiting = dyno("web.1", 2, DynoState::Crashed);
    waiting.next_restart = Some(NOW + Duration::seconds(5));
    let mut due = dyno("worker.1", 2, DynoState::Crashed);
    due.next_restart = Some(NOW);
    let wanted = desired(2, &[("web", 1), ("worker", 1)]);
    check(
        &wanted,
        vec![waiting.clone(), due.clone()],
        &["restart worker.1 v2 crashed"],
    );
    assert_eq!(
        next_wake(&observed(vec![waiting, due])),
        Some(NOW + Duration::seconds(5))
    );
}

#[test]
fn dynos_cycle_when_due() {
    let mut due = dyno("web.1", 2, DynoState::Up);
    due.cycle_at = Some(NOW - Duration::seconds(1));
    check(
        &desired(2, &[("web", 1)]),
        vec![due],
        &["restart web.1 v2 cycling"],
    );
}

#[test]
fn a_size_change_replaces_in_place() {
    let mut wanted = desired(2, &[("web", 1)]);
    wanted
        .apps
        .get_mut(&app_id(1))
        .unwrap()
        .formation
        .get_mut("web")
        .unwrap()
        .size = DynoSize::Standard2X;
    check(
        &wanted,
        vec![dyno("web.1", 2, DynoState::Up)],
        &["stop web.1 v2 replaced"],
    );
    check(&wanted, vec![dyno("web.1", 2, DynoState::Down)], &[]);
}

#[test]
fn deleted_apps_stop_everything() {
    check(
        &Desired::default(),
        vec![
            dyno("web.1", 2, DynoState::Up),
            dyno("web.2", 2, DynoState::Down),
        ],
        &["stop web.1 v2 appremoved"],
    );
}

fn eco_app(version: i64, asleep: bool) -> Desired {
    let mut app = desired_app(
        version,
        &[("web", 2, DynoSize::Eco), ("worker", 1, DynoSize::Eco)],
    );
    app.asleep = asleep;
    Desired {
        apps: [(app_id(1), app)].into(),
    }
}

fn eco(name: &str, release: i64, state: DynoState) -> ObservedDyno {
    ObservedDyno {
        size: DynoSize::Eco,
        ..dyno(name, release, state)
    }
}

#[test]
fn only_apps_with_eco_web_dynos_can_sleep() {
    let can_sleep = |formation: &[(&str, u32, DynoSize)]| desired_app(1, formation).can_sleep();
    assert!(can_sleep(&[("web", 1, DynoSize::Eco)]));
    assert!(can_sleep(&[
        ("web", 1, DynoSize::Eco),
        ("worker", 1, DynoSize::Basic)
    ]));
    assert!(!can_sleep(&[("web", 1, DynoSize::Basic)]));
    assert!(!can_sleep(&[("web", 0, DynoSize::Eco)]));
    assert!(!can_sleep(&[("worker", 1, DynoSize::Eco)]));
}

#[test]
fn an_asleep_app_idles_its_dynos() {
    check(
        &eco_app(2, true),
        vec![
            eco("web.1", 2, DynoState::Up),
            eco("web.2", 2, DynoState::Starting),
            eco("worker.1", 2, DynoState::Idle),
        ],
        &["idle web.1 v2", "idle web.2 v2"],
    );
    // A crashed dyno waits for the wake; a missing one starts, to go idle once up.
    check(
        &eco_app(2, true),
        vec![eco("web.1", 2, DynoState::Crashed)],
        &["start web.2 v2", "start worker.1 v2"],
    );
}

#[test]
fn an_awake_app_restarts_its_idle_dynos() {
    check(
        &eco_app(2, false),
        vec![
            eco("web.1", 2, DynoState::Idle),
            eco("web.2", 2, DynoState::Idle),
            eco("worker.1", 2, DynoState::Idle),
        ],
        &[
            "restart web.1 v2 waking",
            "restart web.2 v2 waking",
            "restart worker.1 v2 waking",
        ],
    );
}

#[test]
fn only_sleeping_sizes_go_idle() {
    let mut wanted = desired_app(
        2,
        &[("web", 1, DynoSize::Eco), ("worker", 1, DynoSize::Basic)],
    );
    wanted.asleep = true;
    check(
        &Desired {
            apps: [(app_id(1), wanted)].into(),
        },
        vec![
            eco("web.1", 2, DynoState::Up),
            dyno("worker.1", 2, DynoState::Up),
        ],
        &["idle web.1 v2"],
    );
}

// Properties, with a model of the executor and the dynos.

/// The world after one round: the plan's actions applied, then started dynos come up and
/// stopped ones go away.
fn apply(dynos: &mut Vec<ObservedDyno>, actions: &[Action], now: OffsetDateTime) {
    for action in actions {
        match action {
            Action::Start {
                app,
                name,
                release,
                size,
            } => dynos.push(ObservedDyno {
                app: *app,
                name: name.clone(),
                release: *release,
                size: *size,
                state: DynoState::Starting,
                started_at: now,
                crashes: 0,
                next_restart: None,
                cycle_at: None,
            }),
            Action::Restart {
                app, name, release, ..
            } => {
                let dyno = find(dynos, *app, name, *release);
                dyno.state = DynoState::Starting;
                dyno.cycle_at = None;
            }
            Action::Stop {
                app, name, release, ..
            } => find(dynos, *app, name, *release).state = DynoState::Down,
            Action::Idle { app, name, release } => {
                find(dynos, *app, name, *release).state = DynoState::Idle;
            }
        }
    }
}

fn settle(dynos: &mut Vec<ObservedDyno>) {
    dynos.retain(|d| d.state != DynoState::Down);
    for dyno in dynos.iter_mut() {
        if dyno.state == DynoState::Starting {
            dyno.state = DynoState::Up;
        }
    }
}

fn find<'a>(
    dynos: &'a mut [ObservedDyno],
    app: Uuid,
    name: &DynoName,
    release: i64,
) -> &'a mut ObservedDyno {
    let matching: Vec<usize> = (0..dynos.len())
        .filter(|i| dynos[*i].app == app && dynos[*i].name == *name && dynos[*i].release == release)
        .collect();
    assert_eq!(matching.len(), 1, "exactly one present {name} v{release}");
    &mut dynos[matching[0]]
}

fn converged(desired: &Desired, dynos: &[ObservedDyno]) -> bool {
    let mut expected = BTreeSet::new();
    for (app, wanted) in &desired.apps {
        for (process_type, process) in runnable(wanted) {
            for n in &process.numbers {
                expected.insert((
                    *app,
                    DynoName::new(process_type, *n),
                    wanted.release.version,
                ));
            }
        }
    }
    let actual: BTreeSet<_> = dynos
        .iter()
        .filter(|d| d.state == DynoState::Up)
        .map(|d| (d.app, d.name.clone(), d.release))
        .collect();
    actual == expected && dynos.len() == expected.len()
}

fn no_duplicates(dynos: &[ObservedDyno]) -> bool {
    let keys: BTreeSet<_> = dynos
        .iter()
        .map(|d| (d.app, d.name.clone(), d.release))
        .collect();
    keys.len() == dynos.len()
}

fn size_strategy() -> impl Strategy<Value = DynoSize> {
    prop::sample::select(vec![DynoSize::Eco, DynoSize::Basic, DynoSize::Standard2X])
}

fn state_strategy() -> impl Strategy<Value = DynoState> {
    prop::sample::select(vec![
        DynoState::Starting,
        DynoState::Up,
        DynoState::Crashed,
        DynoState::Down,
        DynoState::Idle,
    ])
}

const TYPES: [&str; 3] = ["web", "worker", "clock"];

/// An app's formation: quantities 0..5 per type, sizes, and which types the release defines.
fn formation_strategy() -> impl Strategy<Value = Vec<(&'static str, u32, DynoSize)>> {
    prop::collection::vec((0u32..5, size_strategy(), prop::bool::weighted(0.85)), 3).prop_map(
        |entries| {
            TYPES
                .iter()
                .zip(entries)
                .filter(|(_, (_, _, defined))| *defined)
                .map(|(t, (quantity, size, _))| (*t, quantity, size))
                .collect()
        },
    )
}

/// An app's process types with the numbers that run here: any subset of `1..=8` per type,
/// sizes, and which types the release defines.
fn numbers_strategy() -> impl Strategy<Value = Vec<(&'static str, BTreeSet<u32>, DynoSize)>> {
    prop::collection::vec(
        (
            prop::collection::btree_set(1u32..=8, 0..=8),
            size_strategy(),
            prop::bool::weighted(0.85),
        ),
        3,
    )
    .prop_map(|entries| {
        TYPES
            .iter()
            .zip(entries)
            .filter(|(_, (_, _, defined))| *defined)
            .map(|(t, (numbers, size, _))| (*t, numbers, size))
            .collect()
    })
}

/// Present dynos of up to two apps, unique per (app, name, release), numbered up to
/// `max_number`.
fn dynos_strategy(max_number: u32) -> impl Strategy<Value = Vec<ObservedDyno>> {
    prop::collection::vec(
        (
            1u128..3,
            0usize..3,
            1u32..=max_number,
            1i64..4,
            size_strategy(),
            state_strategy(),
            0u32..4,
            prop::option::of(-30i64..30),
            prop::option::of(-30i64..30),
        ),
        0..14,
    )
    .prop_map(|raw| {
        let mut dynos: Vec<ObservedDyno> = Vec::new();
        for (app, t, number, release, size, state, crashes, restart, cycle) in raw {
            let name = DynoName::new(TYPES[t], number);
            if dynos
                .iter()
                .any(|d| d.app == app_id(app) && d.name == name && d.release == release)
            {
                continue;
            }
            dynos.push(ObservedDyno {
                app: app_id(app),
                name,
                release,
                size,
                state,
                started_at: NOW,
                crashes,
                next_restart: restart.map(|s| NOW + Duration::seconds(s)),
                cycle_at: cycle.map(|s| NOW + Duration::seconds(s)),
            });
        }
        dynos
    })
}

/// Up to two apps whose process types run any numbers here.
fn placed_strategy() -> impl Strategy<Value = Desired> {
    (
        numbers_strategy(),
        1i64..5,
        prop::option::of((numbers_strategy(), 1i64..5)),
    )
        .prop_map(|(first, version, second)| {
            let mut apps = BTreeMap::new();
            apps.insert(app_id(1), placed_app(version, &first));
            if let Some((formation, version)) = second {
                apps.insert(app_id(2), placed_app(version, &formation));
            }
            Desired { apps }
        })
}

fn desired_strategy() -> impl Strategy<Value = Desired> {
    (
        formation_strategy(),
        1i64..5,
        prop::option::of((formation_strategy(), 1i64..5)),
    )
        .prop_map(|(first, version, second)| {
            let mut apps = BTreeMap::new();
            apps.insert(app_id(1), desired_app(version, &first));
            if let Some((formation, version)) = second {
                apps.insert(app_id(2), desired_app(version, &formation));
            }
            Desired { apps }
        })
}

/// Rounds of plan, apply, settle reach the desired numbers within `rounds`; from then on the
/// plan is empty; no round duplicates a name or exceeds the preboot bound; an old web dyno
/// still serving stops only once the new ones are all up.
fn converges_within_bounds(
    desired: &Desired,
    initial: Vec<ObservedDyno>,
    rounds: usize,
) -> Result<(), TestCaseError> {
    let mut dynos = initial;
    let mut now = NOW;
    for _ in 0..rounds {
        let observed = Observed {
            now,
            dynos: dynos.clone(),
        };
        let actions = plan(desired, &observed);
        if actions.is_empty() && converged(desired, &dynos) {
            break;
        }

        let mut starts = BTreeSet::new();
        for action in &actions {
            if let Action::Start { app, name, .. } = action {
                prop_assert!(starts.insert((*app, name.clone())), "two starts of {name}");
            }
        }
        for (app, wanted) in &desired.apps {
            let before = dynos.iter().filter(|d| d.app == *app).count();
            let mut after = dynos.clone();
            apply(&mut after, &actions, now);
            let count = after.iter().filter(|d| d.app == *app).count();
            prop_assert!(
                count <= before.max(preboot_bound(wanted)),
                "{count} dynos present, bound {}",
                preboot_bound(wanted)
            );
            for action in &actions {
                if let Action::Stop {
                    app: a,
                    name,
                    reason: StopReason::Replaced,
                    release,
                } = action
                {
                    let none = BTreeSet::new();
                    let numbers = runnable(wanted).get("web").map_or(&none, |p| &p.numbers);
                    // An old dyno still serving: up, and the newest up old dyno of its name.
                    let old = dynos.iter().any(|d| {
                        d.app == *a
                            && d.name == *name
                            && d.release == *release
                            && d.release != wanted.release.version
                            && d.state == DynoState::Up
                    }) && !dynos.iter().any(|d| {
                        d.app == *a
                            && d.name == *name
                            && d.release > *release
                            && d.release != wanted.release.version
                            && d.state == DynoState::Up
                    });
                    if *a == *app && name.is_web() && old && numbers.contains(&name.number()) {
                        let all_up = numbers.iter().all(|n| {
                            dynos.iter().any(|d| {
                                d.app == *app
                                    && d.name == DynoName::new("web", *n)
                                    && d.release == wanted.release.version
                                    && d.state == DynoState::Up
                            })
                        });
                        prop_assert!(
                            all_up,
                            "stopped old {name} before the new web dynos were up"
                        );
                    }
                }
            }
        }
        apply(&mut dynos, &actions, now);
        prop_assert!(no_duplicates(&dynos), "duplicate names: {dynos:?}");
        settle(&mut dynos);
        // Cool-offs end between rounds.
        now += Duration::minutes(21);
    }
    prop_assert!(
        converged(desired, &dynos),
        "not converged after {rounds} rounds: {dynos:?}"
    );
    let observed = Observed {
        now,
        dynos: dynos.clone(),
    };
    prop_assert_eq!(plan(desired, &observed), vec![]);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// On one host (every type runs `1..=quantity`), from any observed state, the plan
    /// converges within bounds (see [`converges_within_bounds`]).
    #[test]
    fn converges_on_one_host(desired in desired_strategy(), initial in dynos_strategy(6)) {
        let max_quantity = 5;
        converges_within_bounds(&desired, initial, 2 * max_quantity + 6)?;
    }

    /// With any numbers placed here per type (subsets of `1..=8`), and present dynos of any
    /// number, exactly those numbers end up running, within the same bounds.
    #[test]
    fn converges_to_the_numbers_placed_here(
        desired in placed_strategy(),
        initial in dynos_strategy(9),
    ) {
        let max_number = 8;
        converges_within_bounds(&desired, initial, 2 * max_number + 6)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// An asleep app starts a dyno of a size that sleeps only where none is present, and
    /// once it starts none, every current one of them is idle (or crashed, waiting for the
    /// wake, or going away); once awake again it converges as any app does.
    #[test]
    fn asleep_apps_run_no_sleeping_dynos(desired in desired_strategy(), initial in dynos_strategy(6)) {
        let mut asleep = desired.clone();
        for app in asleep.apps.values_mut() {
            app.asleep = true;
        }
        let mut dynos = initial;
        for _ in 0..16 {
            let actions = plan(&asleep, &Observed { now: NOW, dynos: dynos.clone() });
            let starts = actions.iter().any(|a| matches!(a, Action::Start { .. }));
            for action in &actions {
                if let Action::Start { app, name, release, .. } = action {
                    prop_assert!(!dynos.iter().any(|d| d.app == *app && d.name == *name
                        && d.release == *release), "started {name} over a present one");
                }
            }
            apply(&mut dynos, &actions, NOW);
            if !starts {
                break;
            }
            settle(&mut dynos);
        }
        for dyno in &dynos {
            let Some(wanted) = asleep.apps.get(&dyno.app) else { continue };
            let current = runnable(wanted).get(dyno.name.process_type()).is_some_and(|p| {
                p.size == dyno.size && p.size.sleeps() && p.numbers.contains(&dyno.name.number())
            }) && dyno.release == wanted.release.version;
            prop_assert!(!current || matches!(dyno.state, DynoState::Idle | DynoState::Crashed | DynoState::Down),
                "{} is {} while its app sleeps", dyno.name, dyno.state);
        }
        settle(&mut dynos);
        let mut now = NOW;
        for _ in 0..16 {
            let actions = plan(&desired, &Observed { now, dynos: dynos.clone() });
            if actions.is_empty() && converged(&desired, &dynos) {
                break;
            }
            apply(&mut dynos, &actions, now);
            settle(&mut dynos);
            now += Duration::minutes(21);
        }
        prop_assert!(converged(&desired, &dynos), "not converged after waking: {dynos:?}");
    }
}
