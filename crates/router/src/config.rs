//! The router's settings: the base domain, how requests are balanced, Heroku's timeouts,
//! where wake signals for idle apps go, and the key of session affinity cookies.

use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::affinity::AffinityKey;
use crate::balance::Balancing;

/// H19: how long connecting to a dyno may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// H12: how long a dyno may take to send response headers.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// H15: how long a streaming response may send nothing (a rolling window).
pub const RESPONSE_IDLE_TIMEOUT: Duration = Duration::from_secs(55);
/// H28: how long a client may send nothing of a request body a dyno is reading (a rolling
/// window); also how long an idle client connection stays open between requests.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(55);
/// H20: how long a request for a booting (or waking) app is held for a web dyno to come up.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(75);

/// The router's timeouts; [`Timeouts::default`] gives Heroku's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
    pub response_idle: Duration,
    pub client_idle: Duration,
    pub boot: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: CONNECT_TIMEOUT,
            request: REQUEST_TIMEOUT,
            response_idle: RESPONSE_IDLE_TIMEOUT,
            client_idle: CLIENT_IDLE_TIMEOUT,
            boot: BOOT_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Apps are served at `<app>.<base_domain>` (`wharf.localhost`).
    pub base_domain: String,
    pub balancing: Balancing,
    pub timeouts: Timeouts,
    /// Told an app's id when a request arrives for a booting (or idle) app with no web dyno
    /// up, once until one comes up (or the request times out). The dyno manager starts its
    /// dynos; the router holds the request meanwhile.
    pub wake: Option<mpsc::Sender<Uuid>>,
    /// Threads accepting and serving client connections, each with a runtime of its own.
    pub threads: usize,
    /// Signs session affinity cookies (the server keeps one across restarts).
    pub affinity_key: AffinityKey,
}

impl RouterConfig {
    /// Heroku's timeouts, least-outstanding balancing, no wake signals, a random affinity key.
    pub fn new(base_domain: impl Into<String>) -> RouterConfig {
        RouterConfig {
            base_domain: base_domain.into(),
            balancing: Balancing::default(),
            timeouts: Timeouts::default(),
            wake: None,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            affinity_key: AffinityKey::random(),
        }
    }
}
