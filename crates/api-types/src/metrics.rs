//! Metrics history (a Wharf extension): `GET /apps/{app}/metrics/router`, `.../dynos` and
//! `.../events`, each with `?range=1h|24h|7d` (default `1h`). Points are at 60 s steps for
//! `1h` and `24h` and 600 s steps for `7d`, each named by its step's start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /apps/{app}/metrics/router`: the app's requests through the router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterMetrics {
    /// `1h`, `24h` or `7d`.
    pub range: String,
    pub step_seconds: u32,
    pub from: String,
    pub to: String,
    /// Only steps that had requests, oldest first.
    pub points: Vec<RouterMetricsPoint>,
    pub totals: RouterMetricsTotals,
    /// Requests per router error code over the range (`{"H12": 3}`).
    pub errors: BTreeMap<String, u64>,
}

/// One step of [`RouterMetrics`]. Latencies are the router's total time (connect + service)
/// in milliseconds; `null` when no request of the step reached a dyno.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterMetricsPoint {
    pub at: String,
    pub requests: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The whole range of [`RouterMetrics`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterMetricsTotals {
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// `GET /apps/{app}/metrics/dynos`: each dyno's memory and load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynoMetrics {
    pub range: String,
    pub step_seconds: u32,
    pub from: String,
    pub to: String,
    /// Dynos with samples in the range (also those since stopped), by name.
    pub dynos: Vec<DynoMetricsSeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynoMetricsSeries {
    /// `web.1`.
    pub dyno: String,
    /// The process type, `web`.
    #[serde(rename = "type")]
    pub process_type: String,
    /// Only steps with samples, oldest first.
    pub points: Vec<DynoMetricsPoint>,
}

/// One step of a dyno: memory the most of the step (MB), load the mean of its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynoMetricsPoint {
    pub at: String,
    pub memory_rss_mb: f64,
    pub memory_swap_mb: f64,
    pub memory_cache_mb: f64,
    pub memory_quota_mb: f64,
    pub load_avg_1m: f64,
}

/// `GET /apps/{app}/metrics/events`: what the platform did and saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsEvents {
    pub range: String,
    pub from: String,
    pub to: String,
    /// Oldest first (the newest 5,000 when there are more).
    pub events: Vec<MetricsEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsEvent {
    pub at: String,
    /// `deploy`, `rollback`, `config`, `scale`, `restart`, `crash`, `R14`, `R15`, or a router
    /// error code (`H12`).
    pub kind: String,
    /// The dyno it concerns, `null` for the app as a whole.
    pub dyno: Option<String>,
    pub message: String,
}
