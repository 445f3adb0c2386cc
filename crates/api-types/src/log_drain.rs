//! Log drains, app features (labs) and, Wharf-specific, dynos' runtime metrics samples.

use serde::{Deserialize, Serialize};

use crate::NamedRef;

/// `POST /apps/{app}/log-drains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDrainCreate {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDrain {
    /// Add-on drains are not supported: always `null`.
    pub addon: Option<NamedRef>,
    pub app: NamedRef,
    pub created_at: String,
    pub id: String,
    /// `d.<uuid>`: the syslog HOSTNAME of every line this drain sends.
    pub token: String,
    pub updated_at: String,
    pub url: String,
}

/// `PATCH /apps/{app}/features/{feature}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFeatureUpdate {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFeature {
    pub created_at: String,
    pub description: String,
    pub doc_url: String,
    pub enabled: bool,
    pub id: String,
    pub name: String,
    /// `public`, `beta` or `alpha`.
    pub state: String,
    pub updated_at: String,
    pub display_name: String,
    pub feedback_email: String,
}

/// One runtime metrics sample of a dyno (`GET /apps/{app}/dynos/{dyno}/metrics`, a Wharf
/// extension): load averages, memory in MB, pages as counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynoMetricsSample {
    pub at: String,
    pub load_avg_1m: f64,
    pub load_avg_5m: f64,
    pub load_avg_15m: f64,
    pub memory_total_mb: f64,
    pub memory_rss_mb: f64,
    pub memory_cache_mb: f64,
    pub memory_swap_mb: f64,
    /// `null` on cgroup v2, which has no such counter.
    pub memory_pgpgin: Option<u64>,
    pub memory_pgpgout: Option<u64>,
    pub memory_quota_mb: f64,
}
