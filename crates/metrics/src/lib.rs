//! Wharf's metrics history: per app and minute, the router's requests (count by status class,
//! a latency histogram, router error codes) and each dyno's memory and load, plus the
//! platform's events (deploys, scaling, crashes, R14, router errors), kept in day files under
//! `<data-dir>/metrics/<app-id>/` for a retention (7 days unless configured) and read back as
//! series at 60 s or 600 s steps.
//!
//! Invariants:
//! - This crate knows nothing of the store, the API, containers or the router: the router
//!   hands in each request's status and time, the dyno manager its samples, the log router
//!   the platform's events.
//! - Recording a request never waits on IO and, but once a minute, never allocates.
//! - Files are named from app ids and dates only; nothing follows a symbolic link.
//! - A torn last line (a SIGKILL mid-write) is skipped; every other line survives restarts.

pub mod event;
pub mod format;
pub mod histogram;
pub mod minute;
pub mod query;
pub mod recorder;
pub mod storage;

pub use event::{Event, EventKind};
pub use histogram::Histogram;
pub use minute::{DynoMinute, DynoSample, ErrorCounts, RouterCode, RouterMinute};
pub use query::{DynoPoint, DynoSeries, Range, RouterSeries, Window};
pub use recorder::Recorder;
pub use storage::DEFAULT_RETENTION_DAYS;
