//! Hosts that run dynos (Wharf's own, admins only), and what an agent and the control plane
//! say to each other about its lease.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /hosts/{host}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub id: String,
    pub name: String,
    /// `joining`, `up`, `draining` or `lost`.
    pub state: String,
    /// The memory it offers dynos, in MiB, as its agent last reported.
    pub memory_mb: Option<u64>,
    /// The memory its placed dynos reserve, in MiB.
    pub placed_memory_mb: u64,
    /// How many dynos of the formations are placed on it.
    pub dynos: u64,
    /// Where it is reached, as its agent last reported.
    pub address: Option<String>,
    pub epoch: i64,
    pub last_heartbeat_at: Option<String>,
    pub created_at: String,
}

/// `POST /hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCreate {
    pub name: String,
}

/// What `POST /hosts` answers: the only time the host's credential is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCreated {
    pub host: Host,
    /// The agent's credential; the control plane keeps only its hash.
    pub credential: String,
    /// The command that joins the host, run as root on it.
    pub join_command: String,
}

/// `PATCH /hosts/{host}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining: Option<bool>,
}

/// `PUT /agent/heartbeat`: what an agent reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The memory it offers dynos, in MiB.
    pub memory_mb: u64,
    /// Where the control plane and the other hosts reach it.
    pub address: String,
    /// The dynos it has now.
    #[serde(default)]
    pub dynos: Vec<AgentDyno>,
}

/// A dyno as an agent reports it with its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDyno {
    pub id: String,
    /// The app's id.
    pub app: String,
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: String,
    /// `starting`, `up`, `crashed`, `down` or `idle`.
    pub state: String,
    pub command: String,
    pub size: String,
    pub release_version: i64,
    pub updated_at: String,
    /// Where the control plane's router reaches an up web dyno (`address:port` on the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// The answer to a heartbeat: the agent's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The host's name.
    pub host: String,
    /// The host's epoch: when it changes, the agent held nothing of the earlier one (its
    /// dynos were placed elsewhere) and starts from a clean slate.
    pub epoch: i64,
    /// How long the lease lasts from when the agent sent the heartbeat, in milliseconds:
    /// the agent stops its dynos when it could not renew it in that time.
    pub lease_ms: u64,
    /// How often to send a heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// Whether it is draining.
    pub draining: bool,
    /// Changes whenever what any host should run may have changed: an agent whose last
    /// answer had another generation reads `GET /agent/desired` again.
    pub generation: u64,
}

/// `GET /agent/desired`: what the agent's host should run. An app not listed has no dyno
/// here: its dynos on the host stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDesired {
    /// The host's epoch this answer is for.
    pub epoch: i64,
    pub apps: Vec<AgentApp>,
    /// One-off dynos the control plane placed on the host (`wharf run`), each to start once:
    /// their apps are in `apps`, with the release they run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_offs: Vec<AgentOneOff>,
    /// Restarts and stops (`ps:restart`, `ps:stop`) of dynos on the host, each to take once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<AgentAction>,
}

/// A restart or stop of an app's dynos on the host: all of them, a process type's, or one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAction {
    /// Names the action, so that it is taken once.
    pub id: String,
    /// The app's id.
    pub app: String,
    /// Only this process type's dynos (`web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    /// Only this dyno (`web.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno: Option<String>,
    /// Stop rather than restart.
    pub stop: bool,
}

/// What an agent's `GET /agent/one-offs/{id}/attach` upgrades to: from then on the connection
/// carries the attached client's bytes both ways.
pub const ATTACH_PROTOCOL: &str = "wharf-attach";

/// A one-off dyno to start on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOneOff {
    /// The dyno's id.
    pub id: String,
    /// The app's id.
    pub app: String,
    /// `N` of its name, `run.N`.
    pub number: u32,
    pub command: String,
    /// Added to (and winning over) the release's config vars.
    pub env: Vec<(String, String)>,
    /// The size's name (`Basic`).
    pub size: String,
    /// Its stdio goes to the client that attaches (`GET /agent/one-offs/{id}/attach`), not to
    /// the log.
    pub attach: bool,
    /// With `attach`: in a PTY.
    pub tty: bool,
    /// Who asked.
    pub user: String,
}

/// One app with dynos placed on the agent's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentApp {
    pub id: String,
    pub name: String,
    pub release: AgentRelease,
    /// Per process type: the numbers of its dynos placed here, and their size.
    pub formation: std::collections::BTreeMap<String, AgentProcess>,
    /// The app had no request for the control plane's Eco sleep time: its Eco web dynos
    /// sleep (go idle) until a router wakes it.
    #[serde(default)]
    pub asleep: bool,
}

/// The release an app's dynos run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRelease {
    pub version: i64,
    /// `None` for a release without code.
    pub slug: Option<AgentSlug>,
    pub config: std::collections::BTreeMap<String, String>,
    /// Process type to command.
    pub commands: std::collections::BTreeMap<String, String>,
}

/// A slug an agent fetches (`GET /agent/slugs/{id}`) and checks before it runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSlug {
    pub id: String,
    /// `SHA256:<hex>` of the archive.
    pub checksum: String,
    pub stack: String,
}

/// The dynos of one process type placed on the agent's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProcess {
    pub numbers: Vec<u32>,
    /// The size's name (`Basic`).
    pub size: String,
}

/// `POST /agent/logs`: the lines a host's dynos and platform wrote, per app, and its dynos'
/// runtime metrics samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentLogs {
    pub apps: Vec<AgentAppLog>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<AgentSample>,
    /// The requests its router finished, for the apps' metrics history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<AgentRequest>,
}

/// One request a host's router finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRequest {
    /// The app's id.
    pub app: String,
    /// When it finished, in Unix seconds.
    pub at: i64,
    pub status: u16,
    /// Connect plus service time, in microseconds; none when no dyno was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_us: Option<u64>,
    /// The router error code (`H12`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One runtime metrics sample of a dyno on the host (its cgroup, read every interval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSample {
    /// The app's id.
    pub app: String,
    /// The dyno (`web.1`).
    pub dyno: String,
    pub dyno_id: String,
    /// RFC 3339, to the microsecond.
    pub at: String,
    pub load_avg_1m: f64,
    pub load_avg_5m: f64,
    pub load_avg_15m: f64,
    pub cpu_time_ns: u64,
    /// Bytes.
    pub memory_total: u64,
    pub memory_rss: u64,
    pub memory_cache: u64,
    pub memory_swap: u64,
    /// Pages (cgroup v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_pgpgin: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_pgpgout: Option<u64>,
    /// The dyno size's memory, in bytes.
    pub memory_quota: u64,
}

/// One app's lines from one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAppLog {
    /// The app's id.
    pub app: String,
    /// Lines that never reached the control plane: the host's buffer overflowed while it
    /// could not reach it.
    pub dropped: u64,
    pub lines: Vec<AgentLogLine>,
}

/// One line, as the host's log buffer holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLogLine {
    /// RFC 3339, to the microsecond.
    pub at: String,
    /// `app` or `heroku`.
    pub source: String,
    /// The dyno (`web.1`).
    pub process: String,
    pub message: String,
}

/// `GET /agent/routes`: what every host's router needs to route every app, as the control
/// plane's router has it. Names, domains and where web dynos are published; never config,
/// releases or certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRoutes {
    /// Changes whenever anything else here does (an agent asks for the table after the one it
    /// has, and waits until there is one).
    pub version: u64,
    pub apps: Vec<AgentRouteApp>,
    /// Custom hostname (lowercase, maybe `*.example.com`) to app name.
    pub domains: BTreeMap<String, String>,
    /// The addresses of the hosts that joined (whatever their lease): besides the control
    /// plane, the only peers a host's published ports accept (their routers).
    pub hosts: Vec<String>,
    /// The addresses of the hosts holding a lease: those a host asks before it fences itself
    /// for silence.
    #[serde(default)]
    pub leased: Vec<String>,
}

/// One app as a router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRouteApp {
    pub id: String,
    pub name: String,
    pub maintenance: bool,
    /// How many web dynos the formation asks for.
    pub web_quantity: u32,
    /// Every web dyno is crashed.
    pub crashed: bool,
    /// Web dynos are starting.
    pub booting: bool,
    pub session_affinity: bool,
    /// The web dynos that are up, each at its host's published port.
    pub backends: Vec<AgentBackend>,
}

/// One up web dyno, where routers reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentBackend {
    pub id: String,
    /// `web.1`.
    pub dyno: String,
    /// `address:port` on its host.
    pub upstream: String,
}
