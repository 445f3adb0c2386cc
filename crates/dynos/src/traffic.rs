//! Draining a web dyno before it stops: the router is asked whether requests may still reach
//! the dyno's port, and SIGTERM waits until none can.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Whether requests may still reach this address: it is in the router's current table, or a
/// request to it is in flight.
pub type TrafficProbe = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// How often a draining dyno's traffic is checked.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// The router's view of traffic to dynos, once the server has wired it.
#[derive(Default)]
pub(crate) struct Traffic {
    probe: OnceLock<TrafficProbe>,
}

impl Traffic {
    pub fn set(&self, probe: TrafficProbe) {
        if self.probe.set(probe).is_err() {
            tracing::warn!("the traffic probe was already set; keeping the first");
        }
    }

    /// Returns once no request can reach the dyno on `port` any more, or after `limit`. A
    /// router that took its table just before the dyno left it picks a dyno within
    /// microseconds, so the probe must say "idle" twice, a poll apart.
    pub async fn drained(&self, addr: SocketAddr, limit: Duration) {
        let Some(probe) = self.probe.get() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + limit;
        let mut quiet = 0;
        while quiet < 2 && tokio::time::Instant::now() < deadline {
            quiet = if probe(addr) { 0 } else { quiet + 1 };
            if quiet < 2 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_traffic_to_end() {
        let traffic = Traffic::default();
        traffic
            .drained(
                SocketAddr::from(([198, 19, 0, 2], 20000)),
                Duration::from_secs(30),
            )
            .await;
        let busy_checks = Arc::new(AtomicU32::new(3));
        let seen = busy_checks.clone();
        traffic.set(Arc::new(move |addr: SocketAddr| {
            assert_eq!(addr.port(), 20000);
            seen.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }));
        let started = tokio::time::Instant::now();
        traffic
            .drained(
                SocketAddr::from(([198, 19, 0, 2], 20000)),
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(busy_checks.load(Ordering::SeqCst), 0);
        assert_eq!(
            started.elapsed(),
            DRAIN_POLL * 4,
            "three busy polls, then two quiet"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_limit() {
        let traffic = Traffic::default();
        traffic.set(Arc::new(|_| true));
        let started = tokio::time::Instant::now();
        traffic
            .drained(
                SocketAddr::from(([198, 19, 0, 2], 20000)),
                Duration::from_secs(1),
            )
            .await;
        assert!(started.elapsed() >= Duration::from_secs(1));
    }
}
