//! Wharf's agent: what runs on each host that joined a control plane. It renews the host's
//! lease with a heartbeat, fences itself (runs nothing) when the lease ran out in silence,
//! reads what the control plane placed on its host and fetches the slugs that needs, checked
//! against their SHA-256. The dyno manager it feeds ([`RemoteSource`]) is the one a one-host
//! server runs; only where it learns what to run differs.
//!
//! Invariants:
//! - The agent takes what to run from the control plane's API alone, with its host's
//!   credential; never from the store or another agent. Other hosts are asked one thing, and
//!   only when its lease ran out in silence: whether the control plane is silent to them too
//!   (`peers.rs`). Their answer can only keep its dynos running; it opens nothing of this
//!   host to them.
//! - While fenced, every read of the desired state asks for nothing, so the dyno manager stops
//!   every dyno; the fence goes up no later than the control plane's lease for the host ends
//!   (see `lease.rs`), and only on silence: a control plane that answers, even with an error,
//!   is not replacing this host's dynos. It stays down when every other host answers that the
//!   control plane is silent to it too: then no host holds a lease, and a control plane with
//!   no host holding a lease moves nothing.
//! - A slug is used only once its whole archive is on disk and its SHA-256 is the one the
//!   control plane's store recorded when it was built.

pub mod client;
pub mod lease;
pub mod logs;
pub mod one_offs;
pub mod peers;
pub mod publish;
pub mod source;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
pub use wharf_api_types::AgentDyno;
use wharf_api_types::Heartbeat;

pub use client::ControlPlane;
pub use lease::{Lease, Outcome};
pub use peers::Peers;
pub use publish::Publisher;
pub use source::RemoteSource;

/// How often to send a heartbeat until the control plane says.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// What the agent reports of its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// The memory it offers dynos, in MiB.
    pub memory_mb: u64,
    /// Where the control plane and other hosts reach it.
    pub address: String,
}

/// What the agent tells the dyno manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// What this host should run may have changed (a new generation or epoch): read again.
    Changed,
    /// The fence went up (`true`: run nothing) or down.
    Fenced(bool),
}

/// What the agent reports of the dynos its host has now.
pub type Observer = Box<dyn Fn() -> Vec<AgentDyno> + Send + Sync>;

/// One host's agent.
pub struct Agent {
    control_plane: ControlPlane,
    report: HostReport,
    fenced: Arc<AtomicBool>,
    observer: Option<Observer>,
    /// The other hosts, asked before the fence goes up for silence.
    peers: Option<Peers>,
    /// Whether the last check found every other host silent too (logged once per outage).
    holding_off: AtomicBool,
    /// The one-off dynos placed on this host and the actions on its dynos, as the last read
    /// of its desired state said.
    orders: Arc<tokio::sync::watch::Sender<one_offs::Orders>>,
}

impl Agent {
    /// An agent that starts fenced: it runs nothing until its first lease.
    pub fn new(control_plane: ControlPlane, report: HostReport) -> Agent {
        Agent {
            control_plane,
            report,
            fenced: Arc::new(AtomicBool::new(true)),
            observer: None,
            peers: None,
            holding_off: AtomicBool::new(false),
            orders: Arc::new(tokio::sync::watch::Sender::new(one_offs::Orders::default())),
        }
    }

    /// The one-off dynos placed on this host and the actions on its dynos, as each read of
    /// its desired state says.
    pub fn orders(&self) -> tokio::sync::watch::Receiver<one_offs::Orders> {
        self.orders.subscribe()
    }

    /// Asks `peers` before fencing for silence: when every other host finds the control
    /// plane silent too, the dynos run on (see `peers.rs`).
    pub fn with_peers(mut self, peers: Peers) -> Agent {
        self.peers = Some(peers);
        self
    }

    /// Reports, with each heartbeat, the dynos `observer` lists (for `ps` on the control
    /// plane).
    pub fn with_observer(mut self, observer: Observer) -> Agent {
        self.observer = Some(observer);
        self
    }

    /// The desired source for this host's dyno manager.
    pub fn source(&self) -> RemoteSource {
        RemoteSource::new(
            self.control_plane.clone(),
            self.fenced.clone(),
            self.orders.clone(),
        )
    }

    /// Whether the agent runs nothing now.
    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// Sends heartbeats until `shutdown`, raising and lowering the fence, and calls `signal`
    /// when the manager should read again.
    pub async fn run(&self, signal: impl Fn(Signal) + Send, shutdown: CancellationToken) {
        let mut lease = Lease::new();
        let mut interval = DEFAULT_HEARTBEAT;
        let mut seen: Option<(u64, i64)> = None;
        loop {
            let report = Heartbeat {
                memory_mb: self.report.memory_mb,
                address: self.report.address.clone(),
                dynos: self
                    .observer
                    .as_ref()
                    .map(|observe| observe())
                    .unwrap_or_default(),
            };
            let sent = Instant::now();
            let heartbeat = self.control_plane.heartbeat(&report);
            tokio::pin!(heartbeat);
            let (outcome, answer) = loop {
                // Wake at the lease's end even while an attempt is still out: the fence must
                // not wait for a timeout.
                let ends_at = lease
                    .ends_at()
                    .map(Instant::from_std)
                    .filter(|at| *at > Instant::now());
                let lease_end = async {
                    match ends_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    answer = &mut heartbeat => break answer,
                    () = lease_end => self.update_fence(&lease, &signal).await,
                }
            };
            lease.record(sent.into_std(), outcome);
            if let (Outcome::Renewed { .. }, Some(peers)) = (outcome, &self.peers) {
                peers.renewed();
            }
            if let Some(answer) = answer {
                interval = Duration::from_millis(answer.heartbeat_ms.clamp(100, 10_000));
                let now_seen = (answer.generation, answer.epoch);
                if let Some((_, epoch)) = seen {
                    if epoch != answer.epoch {
                        tracing::warn!(
                            epoch = answer.epoch,
                            "this host was lost and is back: starting from a clean slate"
                        );
                    }
                }
                if seen != Some(now_seen) {
                    seen = Some(now_seen);
                    signal(Signal::Changed);
                }
            }
            self.update_fence(&lease, &signal).await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(sent + interval) => {}
            }
        }
    }

    async fn update_fence(&self, lease: &Lease, signal: &impl Fn(Signal)) {
        let now = std::time::Instant::now();
        let mut fenced = lease.fenced(now);
        // About to fence for silence alone: not if every other host meets silence too.
        if fenced && lease.fenced_by_silence(now) && !self.fenced() {
            if let Some(peers) = &self.peers {
                if peers.all_silent().await {
                    if !self.holding_off.swap(true, Ordering::SeqCst) {
                        tracing::warn!(
                            "the lease ran out, but the control plane is silent to every host:                              it can place nothing elsewhere, so the dynos here run on"
                        );
                    }
                    fenced = false;
                }
            }
        }
        if !lease.fenced_by_silence(now) {
            self.holding_off.store(false, Ordering::SeqCst);
        }
        if self.fenced.swap(fenced, Ordering::SeqCst) != fenced {
            if fenced {
                tracing::warn!(
                    "the lease ran out with the control plane silent: stopping every dyno here"
                );
            } else {
                tracing::info!("holding a lease: running what the control plane placed here");
            }
            signal(Signal::Fenced(fenced));
        }
    }
}
