//! The reconcile plan: a pure function from the desired state (per app: the current release
//! and, per process type, the numbers of the dynos this manager runs) and the observed state
//! (the dynos the manager has) to the actions that move one towards the other.
//!
//! The numbers: on one host a type of quantity Q runs `1..=Q`; with many hosts each manager
//! runs the numbers placed on its host (`web.2` and `web.5` here, the others elsewhere), and
//! every rule below holds for those numbers alone. A dyno whose number is not among them
//! (scaled down, or placed on another host) is stopped like one above the quantity.
//!
//! What a dyno "is", for the plan and its executor:
//! - **present**: the manager's registry holds it, in any state. A `crashed` dyno is present
//!   (waiting for its restart, without a container); a `down` dyno is present until its
//!   container is gone. Present dynos count against the numbers and against the preboot
//!   bound; a name is only started again once no present dyno of the same release holds it.
//! - **absent**: the registry has no entry for it (never started, or stopped and its container
//!   and per-dyno directory removed). Only absent dynos are started.
//! - **unknown**: a container with the dyno prefix that the registry does not know (left by an
//!   earlier server process, or one whose removal failed). Unknown dynos are never adopted and
//!   never planned for: the manager removes them at start-up and on every full pass.
//!
//! Dyno names are unique per app and release: during a preboot an old and a new `web.1` run
//! side by side (as on Heroku), told apart by their release.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;
use uuid::Uuid;
use wharf_model::{ConfigVars, DynoSize, ProcessTypes};

use crate::state::{DynoName, DynoState};

/// What should run: every app in scope, by id. An app in scope but missing here (deleted, or
/// without a release to run) gets all its dynos stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub apps: BTreeMap<Uuid, DesiredApp>,
}

/// One app's desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredApp {
    pub name: String,
    pub release: DesiredRelease,
    /// Process type to the numbers of its dynos this manager runs, and their size; types the
    /// release does not define never run.
    pub formation: BTreeMap<String, DesiredProcess>,
    /// Asleep for lack of traffic: its dynos of a size that sleeps go idle (no process, out
    /// of the routes); see [`DesiredApp::can_sleep`].
    pub asleep: bool,
}

impl DesiredApp {
    /// Whether the app falls asleep when it gets no traffic: it runs web dynos, of a size
    /// that sleeps (Eco). An app with only workers never sleeps (nothing would wake it).
    pub fn can_sleep(&self) -> bool {
        runnable(self)
            .get(PREBOOT_TYPE)
            .is_some_and(|web| !web.numbers.is_empty() && web.size.sleeps())
    }
}

/// The release dynos of an app should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRelease {
    pub version: i64,
    /// `None` for a release without code (an app's v1): nothing runs.
    pub slug_id: Option<Uuid>,
    pub config: ConfigVars,
    /// Process type to command.
    pub commands: ProcessTypes,
    /// The stack the slug was built on (a name the server may not offer: its dynos then run
    /// on the default stack); empty without a slug.
    pub stack: String,
}

/// The dynos of one process type this manager runs, and their size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredProcess {
    /// The numbers of the type's dynos that run here: `1..=quantity` on one host; on many,
    /// the numbers placed on this host (`{2, 5}`).
    pub numbers: BTreeSet<u32>,
    pub size: DynoSize,
}

impl DesiredProcess {
    /// The whole formation entry: dynos `1..=quantity`, as one host runs them.
    pub fn first(quantity: u32, size: DynoSize) -> DesiredProcess {
        DesiredProcess {
            numbers: (1..=quantity).collect(),
            size,
        }
    }
}

/// The dynos the manager has, as of `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub now: OffsetDateTime,
    pub dynos: Vec<ObservedDyno>,
}

/// One present dyno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDyno {
    pub app: Uuid,
    pub name: DynoName,
    pub release: i64,
    pub size: DynoSize,
    pub state: DynoState,
    /// When its current (or last) process started.
    pub started_at: OffsetDateTime,
    /// Crashes in a row (see [`crate::restart_delay`]).
    pub crashes: u32,
    /// When a crashed dyno may restart.
    pub next_restart: Option<OffsetDateTime>,
    /// When a running dyno is due for its daily cycling; `None` when cycling is off.
    pub cycle_at: Option<OffsetDateTime>,
}

/// Why a dyno restarts in place (same name, same release, a new process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// It crashed and its cool-off is over.
    Crashed,
    /// Its daily cycling is due.
    Cycling,
    /// It is idle and its app is awake again.
    Waking,
}

/// Why a dyno stops for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Its number is not among the type's numbers here (scaled down, or placed on another
    /// host), or the type left the formation.
    ScaledDown,
    /// A dyno of the current release and size takes its place.
    Replaced,
    /// Its app is gone or has no release to run.
    AppRemoved,
}

/// One step towards the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an absent dyno of `release`.
    Start {
        app: Uuid,
        name: DynoName,
        release: i64,
        size: DynoSize,
    },
    /// Run a present dyno's process again.
    Restart {
        app: Uuid,
        name: DynoName,
        release: i64,
        reason: RestartReason,
    },
    /// Stop a present dyno's process and keep the dyno, idle, until its app wakes.
    Idle {
        app: Uuid,
        name: DynoName,
        release: i64,
    },
    /// Stop a present dyno and remove it.
    Stop {
        app: Uuid,
        name: DynoName,
        release: i64,
        reason: StopReason,
    },
}

impl Action {
    pub fn app(&self) -> Uuid {
        match self {
            Action::Start { app, .. }
            | Action::Restart { app, .. }
            | Action::Idle { app, .. }
            | Action::Stop { app, .. } => *app,
        }
    }
}

/// The process type that boots preboot-style (new dynos up before old ones stop).
const PREBOOT_TYPE: &str = "web";

/// The actions that move `observed` towards `desired`, for the apps in either.
///
/// Per process type with numbers N (those of its dynos that run here: `1..=quantity` on one
/// host), size S, current release R:
/// - Dynos whose number is not in N, and crashed dynos of an older release or size, are
///   stopped.
/// - A crashed dyno of R whose cool-off is over restarts; an up one past its cycling time too.
/// - `web` boots preboot-style: the absent `web.n` (n in N) of R start next to the old dynos,
///   and the old dynos stop only once every `web.n` of R is up. A new release that never
///   comes up leaves the old dynos running. (A size change alone replaces in place.) Old dynos
///   that are not up, and all but the newest up old dyno of a number, stop at once: they
///   serve nothing, and would hold the places the new release needs.
/// - Other types roll: while no dyno of the type is starting or stopping, the lowest-numbered
///   old dyno stops; a free number (no present dyno of any release holds it) starts.
/// - An app never has more dynos present than its numbers here plus its web numbers here:
///   starts wait until stopped dynos are gone.
/// - An asleep app's current dynos of a size that sleeps go idle, and none restarts; one that
///   is missing (its app fell asleep while it was replaced) starts, to go idle in turn, so that
///   `ps` shows the formation. Once the app is awake, its idle dynos restart in place.
pub fn plan(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut by_app: BTreeMap<Uuid, Vec<&ObservedDyno>> = BTreeMap::new();
    for dyno in &observed.dynos {
        by_app.entry(dyno.app).or_default().push(dyno);
    }
    for app in desired.apps.keys() {
        by_app.entry(*app).or_default();
    }
    let mut actions = Vec::new();
    for (app, dynos) in by_app {
        match desired.apps.get(&app) {
            Some(wanted) => plan_app(app, wanted, &dynos, observed.now, &mut actions),
            None => actions.extend(
                dynos
                    .iter()
                    .filter(|d| d.state != DynoState::Down)
                    .map(|d| Action::Stop {
                        app,
                        name: d.name.clone(),
                        release: d.release,
                        reason: StopReason::AppRemoved,
                    }),
            ),
        }
    }
    actions
}

/// The formation an app can run: nothing without a slug, and only types the release defines.
fn runnable(wanted: &DesiredApp) -> BTreeMap<&str, &DesiredProcess> {
    if wanted.release.slug_id.is_none() {
        return BTreeMap::new();
    }
    wanted
        .formation
        .iter()
        .filter(|(process_type, _)| wanted.release.commands.contains_key(*process_type))
        .map(|(process_type, process)| (process_type.as_str(), process))
        .collect()
}

/// The most dynos an app may have present: its dynos here plus a second set of web dynos.
pub fn preboot_bound(wanted: &DesiredApp) -> usize {
    let formation = runnable(wanted);
    let total: usize = formation.values().map(|p| p.numbers.len()).sum();
    let web = formation.get(PREBOOT_TYPE).map_or(0, |p| p.numbers.len());
    total + web
}

fn plan_app(
    app: Uuid,
    wanted: &DesiredApp,
    dynos: &[&ObservedDyno],
    now: OffsetDateTime,
    actions: &mut Vec<Action>,
) {
    let formation = runnable(wanted);
    let release = wanted.release.version;
    let mut budget = preboot_bound(wanted).saturating_sub(dynos.len());
    let mut types: BTreeSet<&str> = formation.keys().copied().collect();
    types.extend(dynos.iter().map(|d| d.name.process_type()));
    // Web first: its starts are what a deploy waits for.
    let mut ordered: Vec<&str> = types.into_iter().collect();
    ordered.sort_by_key(|t| (*t != PREBOOT_TYPE, *t));

    let none = BTreeSet::new();
    for process_type in ordered {
        let (numbers, size) = formation
            .get(process_type)
            .map_or((&none, None), |p| (&p.numbers, Some(p.size)));
        let of_type: Vec<&ObservedDyno> = dynos
            .iter()
            .copied()
            .filter(|d| d.name.process_type() == process_type)
            .collect();
        let plan = TypePlan {
            app,
            process_type,
            release,
            numbers,
            size,
            dynos: &of_type,
            now,
            asleep: wanted.asleep && size.is_some_and(DynoSize::sleeps),
        };
        plan.run(&mut budget, actions);
    }
}

/// Planning for one process type of one app.
struct TypePlan<'a> {
    app: Uuid,
    process_type: &'a str,
    release: i64,
    /// The numbers of the type's dynos that run here.
    numbers: &'a BTreeSet<u32>,
    /// `None` when the type is not in the runnable formation (no numbers).
    size: Option<DynoSize>,
    dynos: &'a [&'a ObservedDyno],
    now: OffsetDateTime,
    /// The app is asleep and this type's dynos sleep.
    asleep: bool,
}

impl TypePlan<'_> {
    fn is_current(&self, dyno: &ObservedDyno) -> bool {
        dyno.release == self.release && Some(dyno.size) == self.size
    }

    fn stop(&self, dyno: &ObservedDyno, reason: StopReason) -> Action {
        Action::Stop {
            app: self.app,
            name: dyno.name.clone(),
            release: dyno.release,
            reason,
        }
    }

    fn run(&self, budget: &mut usize, actions: &mut Vec<Action>) {
        let live: Vec<&ObservedDyno> = self
            .dynos
            .iter()
            .copied()
            .filter(|d| d.state != DynoState::Down)
            .collect();
        let mut outdated = Vec::new();
        for dyno in live {
            let elsewhere = !self.numbers.contains(&dyno.name.number());
            if self.is_current(dyno) {
                if elsewhere {
                    actions.push(self.stop(dyno, StopReason::ScaledDown));
                } else if self.asleep {
                    if matches!(dyno.state, DynoState::Up | DynoState::Starting) {
                        actions.push(Action::Idle {
                            app: self.app,
                            name: dyno.name.clone(),
                            release: dyno.release,
                        });
                    }
                } else if let Some(reason) = self.restart_reason(dyno) {
                    actions.push(Action::Restart {
                        app: self.app,
                        name: dyno.name.clone(),
                        release: dyno.release,
                        reason,
                    });
                }
            } else if elsewhere {
                actions.push(self.stop(dyno, StopReason::ScaledDown));
            } else if dyno.state == DynoState::Crashed || dyno.release == self.release {
                // Serving nothing, or only a size change: no reason to keep it for a preboot.
                actions.push(self.stop(dyno, StopReason::Replaced));
            } else {
                outdated.push(dyno);
            }
        }
        outdated.sort_by_key(|d| (d.name.number(), d.release));

        let free: Vec<u32> = if self.process_type == PREBOOT_TYPE {
            if self.all_current_up() {
                actions.extend(outdated.iter().map(|d| self.stop(d, StopReason::Replaced)));
            } else {
                // Of the old dynos only one up dyno per number keeps serving until the new
                // ones are up (the newest); others serve nothing, and keeping them would hold
                // the places the new release needs (two quick deploys in a row).
                for (i, dyno) in outdated.iter().enumerate() {
                    let newer_up = outdated[i + 1..]
                        .iter()
                        .any(|d| d.name.number() == dyno.name.number() && d.state == DynoState::Up);
                    if dyno.state != DynoState::Up || newer_up {
                        actions.push(self.stop(dyno, StopReason::Replaced));
                    }
                }
            }
            // A number is free for the new release once no present dyno of it holds it.
            self.numbers
                .iter()
                .copied()
                .filter(|n| {
                    !self
                        .dynos
                        .iter()
                        .any(|d| d.name.number() == *n && d.release == self.release)
                })
                .collect()
        } else {
            let busy = self
                .dynos
                .iter()
                .any(|d| matches!(d.state, DynoState::Starting | DynoState::Down));
            if let (false, Some(first)) = (busy, outdated.first()) {
                actions.push(self.stop(first, StopReason::Replaced));
            }
            self.numbers
                .iter()
                .copied()
                .filter(|n| !self.dynos.iter().any(|d| d.name.number() == *n))
                .collect()
        };
        let Some(size) = self.size else { return };
        for number in free {
            if *budget == 0 {
                return;
            }
            *budget -= 1;
            actions.push(Action::Start {
                app: self.app,
                name: DynoName::new(self.process_type, number),
                release: self.release,
                size,
            });
        }
    }

    /// Whether each of the numbers has an up dyno of the current release and size.
    fn all_current_up(&self) -> bool {
        self.numbers.iter().all(|n| {
            self.dynos.iter().any(|d| {
                d.name.number() == *n
                    && self.is_current(d)
                    && matches!(d.state, DynoState::Up | DynoState::Idle)
            })
        })
    }

    fn restart_reason(&self, dyno: &ObservedDyno) -> Option<RestartReason> {
        match dyno.state {
            DynoState::Crashed if dyno.next_restart.is_none_or(|at| at <= self.now) => {
                Some(RestartReason::Crashed)
            }
            DynoState::Up if dyno.cycle_at.is_some_and(|at| at <= self.now) => {
                Some(RestartReason::Cycling)
            }
            DynoState::Idle => Some(RestartReason::Waking),
            _ => None,
        }
    }
}

/// The earliest time after `now` at which [`plan`] would act on its own: a crashed dyno's
/// restart or a dyno's cycling. The manager sleeps no longer than this.
pub fn next_wake(observed: &Observed) -> Option<OffsetDateTime> {
    observed
        .dynos
        .iter()
        .filter_map(|d| match d.state {
            DynoState::Crashed => d.next_restart,
            DynoState::Up => d.cycle_at,
            _ => None,
        })
        .filter(|at| *at > observed.now)
        .min()
}

#[cfg(test)]
mod tests;
