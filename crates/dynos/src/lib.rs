//! Wharf's dyno manager: runs each app's formation as dynos (containers of the release's slug),
//! restarts crashed ones, replaces them on new releases, and publishes routes and log lines.
//!
//! Functional core, imperative shell:
//! - [`plan`] is pure: from the desired state (per app, the current release and the numbers of
//!   each process type's dynos that run here) and the observed state (the dynos the manager
//!   has) it computes [`Action`]s.
//! - [`DynoManager`] is the shell: it reads the desired state from its [`DesiredSource`] (the
//!   store, [`StoreSource`], or a control plane's API), the observed state from its own
//!   registry, runs the plan's actions (re-reading the registry before each), and supervises
//!   each dyno's container.
//!
//! Invariants:
//! - Start-up is reconcile from nothing: every container whose id starts with [`DYNO_PREFIX`]
//!   is removed first, with its per-dyno directory, so only the formation runs afterwards.
//! - A dyno is listed in the [`RouteTable`] only while it is `up`; it leaves the table before it
//!   is sent SIGTERM.
//! - Nothing a dyno writes outlives its container: `/app` is an overlay whose upper directory is
//!   removed when the dyno stops; the extracted slug below it is shared and never written.
//! - What users see is data ([`LogLine`]); platform diagnostics go to `tracing`.
//!
//! Choices worth knowing:
//! - A dyno's cgroup memory limit is twice its size's quota ([`MEMORY_LIMIT_FACTOR`]): above
//!   the quota it gets R14 warnings (memory sampled every `stats_interval`), at the limit the
//!   kernel kills it (R15). Dynos never swap.
//! - During a preboot an old and a new `web.1` exist side by side (as on Heroku): names are
//!   unique per app and release, and both may be in the route table until the old one stops.
//! - Dynos share the host's network, each web dyno on its own `$PORT` from `port_range`.
//! - [`DynoManager::stop`] and [`DynoManager::restart`] return once the old processes are gone
//!   (at most the stop timeout plus a grace period).
//! - One-off dynos (`run.N`, [`DynoManager::run_one_off`]) live in the same registry but outside
//!   the formation: the plan never sees them, they are never restarted, and they are removed
//!   when their process exits (or after an hour without input or output).
//!
//! Layout under the data dir: `slugs/extracted/<slug-id>/` (shared, read-only lower dirs),
//! `dynos/<container-id>/{upper,work,bundle}` (one per running process, removed with it), and
//! `wharf/bin/wharf` (bound read-only at `/wharf` in every dyno).

mod activity;
mod adopt;
mod desired;
mod disks;
mod executor;
mod lifecycle;
mod logs;
mod manager;
mod messages;
mod metrics;
mod one_off;
mod plan;
mod ports;
mod registry;
mod routes;
mod runner;
mod schedule;
mod slugs;
mod source;
mod state;
mod traffic;

pub use desired::StoreSource;
pub use disks::SPARES as SPARE_DISKS;
pub use logs::{LineSplitter, LogBuffer, LogLine, LogSource, MAX_LINE_BYTES};
pub use manager::{DynoInfo, DynoManager, DynoManagerConfig};
pub use messages::memory_usage;
pub use one_off::{
    exit_line, free_number as free_one_off_number, serve_attached, AttachHandle, Attached, OneOff,
    OneOffError, OneOffRequest, END_OF_INPUT, EXIT_MARKER, GREETING, GREETING_PAUSE, IDLE_TIMEOUT,
    ONE_OFF_TYPE,
};
pub use plan::{
    next_wake, plan, Action, Desired, DesiredApp, DesiredProcess, DesiredRelease, Observed,
    ObservedDyno, RestartReason, StopReason,
};
pub use ports::PortAllocator;
pub use routes::{route_table, RouteTable};
pub use runner::{container_id, DYNO_PREFIX, MEMORY_LIMIT_FACTOR};
pub use schedule::{crashes_after_exit, restart_delay, COOL_OFF_BASE, COOL_OFF_MAX};
pub use source::{DesiredRead, DesiredSource};
pub use state::{DynoName, DynoState, Target};
pub use traffic::TrafficProbe;
