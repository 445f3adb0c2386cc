//! Hosts that run dynos: the validated host name, the host record, and the lease rule that
//! says whether a host is up, draining or lost.
//!
//! The lease rule: a host holds a lease that each heartbeat renews to `LEASE` past the
//! moment the control plane received it. Every lease time is taken and compared on the control
//! plane's clock alone, so hosts' clocks never need to agree. An agent counts its own lease
//! from the moment it *sent* the heartbeat that renewed it, which is never later than the
//! moment the control plane received it: the agent's lease always ends first, so an agent cut
//! off from the control plane stops its dynos before the control plane places them elsewhere.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::Invalid;

const NAME_MAX: usize = 63;

/// How often an agent sends a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::seconds(1);

/// How long a heartbeat keeps a host's lease: four missed heartbeats, so a busy network or a
/// slow store does not lose a host, and short enough that a dead host's web dynos are
/// replaced within ten seconds of its death plus their boot.
pub const LEASE: Duration = Duration::seconds(4);

// A lease outlives several heartbeats, so one lost heartbeat never loses a host.
const _: () = assert!(LEASE.whole_seconds() >= 3 * HEARTBEAT_INTERVAL.whole_seconds());

/// A host name, as a DNS label: `^[a-z][a-z0-9-]{0,62}$`, not ending with a dash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HostName(String);

impl HostName {
    pub fn parse(name: &str) -> Result<HostName, Invalid> {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if (1..=NAME_MAX).contains(&name.len())
            && valid_chars
            && starts_with_letter
            && !name.ends_with('-')
        {
            Ok(HostName(name.to_owned()))
        } else {
            Err(Invalid::new(format!(
                "Host name {name:?} is invalid: a host name must start with a letter, contain \
                 only lowercase letters, digits and dashes, not end with a dash, and be at most \
                 {NAME_MAX} characters long"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        HostName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A host as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub id: Uuid,
    pub name: HostName,
    /// The memory it offers dynos, in MiB, as its agent last reported; `None` until its
    /// first heartbeat.
    pub memory_mb: Option<u64>,
    /// Where the control plane and other hosts reach it, as its agent last reported.
    pub address: Option<String>,
    /// Set by `hosts:drain`: it gets no dynos and its dynos move elsewhere.
    pub draining: bool,
    /// Counts the host's comebacks: a heartbeat after its lease ran out starts a new epoch,
    /// in which it holds no dyno of an earlier one (a clean slate).
    pub epoch: i64,
    pub last_heartbeat_at: Option<OffsetDateTime>,
    /// When its lease ends, on the control plane's clock; `None` before its first heartbeat.
    pub lease_expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// What a host is doing, for placement and for `wharf hosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Added, and its agent has not sent a heartbeat yet.
    Joining,
    /// Its lease is current: it runs dynos and gets new ones.
    Up,
    /// Its lease is current and an operator drains it: it gets no new dynos, and its dynos
    /// move to other hosts.
    Draining,
    /// Its lease ran out: its dynos are placed elsewhere; it gets a clean slate when it
    /// comes back.
    Lost,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Joining => "joining",
            HostState::Up => "up",
            HostState::Draining => "draining",
            HostState::Lost => "lost",
        }
    }
}

impl Host {
    /// The host's state at `now` (the control plane's clock).
    pub fn state(&self, now: OffsetDateTime) -> HostState {
        match self.lease_expires_at {
            None => HostState::Joining,
            Some(expires) if expires <= now => HostState::Lost,
            Some(_) if self.draining => HostState::Draining,
            Some(_) => HostState::Up,
        }
    }

    /// Whether placement may keep and put dynos on it at `now`.
    pub fn accepting(&self, now: OffsetDateTime) -> bool {
        self.state(now) == HostState::Up
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-06 12:00 UTC);

    #[test]
    fn host_names_are_dns_labels() {
        for good in ["a", "host-1", "worker7", &"h".repeat(63)] {
            assert_eq!(HostName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "1host",
            "Host",
            "host-",
            "ho_st",
            "ho.st",
            &"h".repeat(64),
        ] {
            let error = HostName::parse(bad).unwrap_err();
            assert!(error.0.contains("Host name"), "{error}");
        }
    }

    fn host(lease_expires_at: Option<OffsetDateTime>, draining: bool) -> Host {
        Host {
            id: Uuid::from_u128(1),
            name: HostName::parse("h1").unwrap(),
            memory_mb: Some(4096),
            address: None,
            draining,
            epoch: 1,
            last_heartbeat_at: None,
            lease_expires_at,
            created_at: NOW,
        }
    }

    #[test]
    fn state_follows_the_lease() {
        let check = |expires: Option<OffsetDateTime>, draining, expected| {
            assert_eq!(host(expires, draining).state(NOW), expected);
            assert_eq!(
                host(expires, draining).accepting(NOW),
                expected == HostState::Up
            );
        };
        check(None, false, HostState::Joining);
        check(None, true, HostState::Joining);
        check(Some(NOW + LEASE), false, HostState::Up);
        check(Some(NOW + LEASE), true, HostState::Draining);
        // The lease ends at its expiry: a host is lost from that instant on.
        check(Some(NOW), false, HostState::Lost);
        check(Some(NOW - Duration::seconds(1)), true, HostState::Lost);
    }
}
