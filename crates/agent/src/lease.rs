//! The agent's view of its lease: when it ends, and whether the agent must fence itself
//! (stop its dynos) because another host may be running them.
//!
//! The rule: the lease a heartbeat renewed lasts `lease` from the moment the agent *sent* that
//! heartbeat, on the agent's own monotonic clock. The control plane counts the same lease from
//! when it *received* the heartbeat, which is later: the agent's lease always ends first, so a
//! cut-off agent starts stopping its dynos no later than the control plane places them
//! elsewhere.
//!
//! Fence on silence, not on refusal: an agent fences when its lease ran out and its last
//! attempts met silence (a timeout, an unreachable network), because then the control plane
//! may be up and replacing its dynos. When the control plane answered but could not renew the
//! lease (it refused the connection, or answered 5xx because it or its store is down), nobody
//! is replacing anything (placement runs in the control plane, on the store): the agent keeps
//! its dynos, so a control-plane restart or outage never stops a dyno. A control plane starts
//! by granting every host a fresh lease, so agents it could not hear while it was down are not
//! taken for lost.

use std::time::{Duration, Instant};

/// How a heartbeat ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Renewed: the lease lasts this long from when the heartbeat was sent.
    Renewed { lease: Duration },
    /// The control plane was reached but renewed nothing: it refused the connection or
    /// answered with a server error (it, or its store, is down).
    Refused,
    /// No answer: a timeout, or the network did not reach the control plane.
    Silent,
    /// The control plane does not know this host's credential (removed): it runs nothing.
    Revoked,
}

/// The agent's lease, as it stands.
#[derive(Debug, Clone)]
pub struct Lease {
    /// When the current lease ends; `None` before the first renewal.
    ends_at: Option<Instant>,
    /// Whether the last attempt after `ends_at` met silence.
    silent: bool,
    revoked: bool,
}

impl Default for Lease {
    fn default() -> Self {
        Lease::new()
    }
}

impl Lease {
    pub fn new() -> Lease {
        Lease {
            ends_at: None,
            silent: false,
            revoked: false,
        }
    }

    /// Records how the heartbeat sent at `sent_at` ended.
    pub fn record(&mut self, sent_at: Instant, outcome: Outcome) {
        match outcome {
            Outcome::Renewed { lease } => {
                let ends_at = sent_at + lease;
                // A late answer to an older heartbeat never shortens a newer renewal.
                self.ends_at = Some(self.ends_at.map_or(ends_at, |current| current.max(ends_at)));
                self.silent = false;
                self.revoked = false;
            }
            Outcome::Refused => self.silent = false,
            Outcome::Silent => self.silent = true,
            Outcome::Revoked => self.revoked = true,
        }
    }

    /// Whether the agent must run no dyno at `now`: its credential was revoked, or its lease
    /// ran out while the control plane was silent, or it never held one.
    pub fn fenced(&self, now: Instant) -> bool {
        if self.revoked {
            return true;
        }
        match self.ends_at {
            None => true,
            Some(ends_at) => now >= ends_at && self.silent,
        }
    }

    /// Whether the agent is fenced at `now` by silence alone: it held a lease, its
    /// credential stands, and the lease ran out while the control plane was silent.
    pub fn fenced_by_silence(&self, now: Instant) -> bool {
        !self.revoked
            && self
                .ends_at
                .is_some_and(|ends_at| now >= ends_at && self.silent)
    }

    /// When the lease ends, if it was ever held.
    pub fn ends_at(&self) -> Option<Instant> {
        self.ends_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(4);

    fn renewed() -> Outcome {
        Outcome::Renewed { lease: LEASE }
    }

    #[test]
    fn an_agent_runs_nothing_before_its_first_lease() {
        let start = Instant::now();
        let mut lease = Lease::new();
        assert!(lease.fenced(start));
        lease.record(start, Outcome::Refused);
        assert!(lease.fenced(start));
        lease.record(start, renewed());
        assert!(!lease.fenced(start));
    }

    #[test]
    fn the_lease_counts_from_sending() {
        let sent = Instant::now();
        let mut lease = Lease::new();
        // The answer came 3 s late: the lease still ends 4 s after sending.
        lease.record(sent, renewed());
        assert_eq!(lease.ends_at(), Some(sent + LEASE));
        lease.record(sent + Duration::from_secs(1), Outcome::Silent);
        assert!(!lease.fenced(sent + LEASE - Duration::from_millis(1)));
        assert!(lease.fenced(sent + LEASE));
    }

    #[test]
    fn silence_fences_and_refusal_does_not() {
        let sent = Instant::now();
        let after = sent + LEASE + Duration::from_secs(10);
        let mut refused = Lease::new();
        refused.record(sent, renewed());
        refused.record(sent + Duration::from_secs(5), Outcome::Refused);
        assert!(
            !refused.fenced(after),
            "a control plane that is down replaces nothing"
        );
        // Silence after the refusals: the control plane may be up and cut off from us.
        refused.record(sent + Duration::from_secs(6), Outcome::Silent);
        assert!(refused.fenced(after));
        // A renewal ends the fence.
        refused.record(after, renewed());
        assert!(!refused.fenced(after));
    }

    #[test]
    fn a_late_answer_never_shortens_the_lease() {
        let first = Instant::now();
        let second = first + Duration::from_secs(1);
        let mut lease = Lease::new();
        lease.record(second, renewed());
        lease.record(first, renewed());
        assert_eq!(lease.ends_at(), Some(second + LEASE));
    }

    #[test]
    fn a_revoked_credential_fences_at_once() {
        let now = Instant::now();
        let mut lease = Lease::new();
        lease.record(now, renewed());
        lease.record(now, Outcome::Revoked);
        assert!(lease.fenced(now));
    }
}
