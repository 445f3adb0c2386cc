//! Wharf's log router: what dynos print and what the platform says about apps, as
//! [`LogLine`]s in Heroku's format, kept per app in a numbered ring ([`LogBuffer`]) that
//! survives restarts ([`persist`]), broadcast to live tails, forwarded to drains ([`Drains`]:
//! syslog and HTTPS, as logplex does), and the dynos' runtime metrics ([`metrics`]), which
//! also go, with the platform's events ([`events`]), to the metrics history when the server
//! keeps one.
//!
//! Invariants:
//! - Appending never waits: not for tails, drains or the disk. Each consumer has its own
//!   bounded backlog and loses its own oldest lines, and says so (`L10` for drains, a count of
//!   missed lines for tails).
//! - Every app's lines are numbered 1, 2, 3, ... without gaps or reuse, across restarts.
//! - This crate knows nothing of the store, the API or containers: the server restores drains
//!   and features from the store, and the dyno runner hands in cgroup readings.

mod buffer;
mod drain;
pub mod events;
mod line;
pub mod metrics;
mod outbox;
pub mod persist;
mod splitter;
pub mod syslog;

pub use buffer::{Entry, LogBuffer, Since, BROADCAST_CAPACITY};
pub use drain::{overflow_line, refused_line, DrainSpec, DrainTarget, Drains, DRAIN_QUEUE_LINES};
pub use line::{format_time, now_micros, LogLine, LogSource};
pub use metrics::Metrics;
pub use outbox::Outbox;
pub use splitter::LineSplitter;

/// Longer lines are split into lines of at most this many bytes.
pub const MAX_LINE_BYTES: usize = 10_000;
