//! Which web dyno gets a request: the pure choice over candidates, and the little state it
//! reads (requests outstanding per dyno, dynos quarantined after refusing a connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::FxBuildHasher;

use crate::table::Backend;

/// How long a dyno that refused a connection (or never accepted one) gets no new requests,
/// unless every other dyno is quarantined too.
pub const QUARANTINE: Duration = Duration::from_secs(5);

/// How requests are spread over an app's web dynos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balancing {
    /// Uniformly at random.
    Random,
    /// The dyno with the fewest requests in flight through this router (ties at random).
    /// The default: as fast as random with equal dynos (see `examples/bench.rs`), and it
    /// keeps requests away from a slow or stuck dyno.
    #[default]
    LeastOutstanding,
}

/// Apps with up to this many web dynos have their candidates chosen from without an
/// allocation.
const CANDIDATES_ON_STACK: usize = 16;

/// One dyno as the choice sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidate {
    /// Requests in flight to it.
    pub outstanding: u32,
    /// It refused a connection a moment ago.
    pub quarantined: bool,
    /// This request already failed to connect to it.
    pub tried: bool,
}

/// The index of the dyno to use, or `None` when every one was tried. Quarantined dynos are
/// used only when no other is left (so one refused connection never turns into an outage).
/// `random` is a random number, for the random choice and for ties.
pub fn pick(candidates: &[Candidate], balancing: Balancing, random: u64) -> Option<usize> {
    let untried = || candidates.iter().enumerate().filter(|(_, c)| !c.tried);
    let any_healthy = untried().any(|(_, c)| !c.quarantined);
    let eligible = || untried().filter(move |(_, c)| !any_healthy || !c.quarantined);
    let count = eligible().count();
    if count == 0 {
        return None;
    }
    match balancing {
        Balancing::Random => eligible()
            .nth((random % count as u64) as usize)
            .map(|(i, _)| i),
        Balancing::LeastOutstanding => {
            let least = eligible().map(|(_, c)| c.outstanding).min()?;
            let ties = eligible().filter(|(_, c)| c.outstanding == least).count();
            eligible()
                .filter(|(_, c)| c.outstanding == least)
                .nth((random % ties as u64) as usize)
                .map(|(i, _)| i)
        }
    }
}

/// Outstanding counts and quarantines per dyno address. Cheap to clone.
#[derive(Clone, Default)]
pub struct Balancer {
    state: Arc<Mutex<HashMap<SocketAddr, DynoState, FxBuildHasher>>>,
}

#[derive(Debug, Default)]
struct DynoState {
    outstanding: u32,
    quarantined_until: Option<Instant>,
}

impl Balancer {
    /// Picks a dyno among `backends` (skipping the addresses in `tried`) and counts a request
    /// in flight to it until the returned guard is dropped. `preferred` (the dyno a client's
    /// session affinity cookie names) is picked when it is neither tried nor quarantined,
    /// however busy; otherwise the choice is `balancing`'s.
    pub fn choose(
        &self,
        backends: &[Backend],
        tried: &[SocketAddr],
        balancing: Balancing,
        preferred: Option<usize>,
    ) -> Option<(usize, Outstanding)> {
        let random = rand::random::<u64>();
        let mut now = None;
        let mut state = self.state.lock().expect("balancer lock poisoned");
        let mut candidate = |b: &Backend| {
            let dyno = state.get(&b.addr);
            Candidate {
                outstanding: dyno.map_or(0, |d| d.outstanding),
                quarantined: dyno
                    .and_then(|d| d.quarantined_until)
                    .is_some_and(|until| until > *now.get_or_insert_with(Instant::now)),
                tried: tried.contains(&b.addr),
            }
        };
        let preferred = preferred.filter(|&index| {
            backends.get(index).is_some_and(|backend| {
                let preferred = candidate(backend);
                !preferred.tried && !preferred.quarantined
            })
        });
        let index = if let Some(index) = preferred {
            Some(index)
        } else if backends.len() <= CANDIDATES_ON_STACK {
            let mut candidates = [Candidate::default(); CANDIDATES_ON_STACK];
            for (slot, backend) in candidates.iter_mut().zip(backends) {
                *slot = candidate(backend);
            }
            pick(&candidates[..backends.len()], balancing, random)
        } else {
            let candidates: Vec<Candidate> = backends.iter().map(candidate).collect();
            pick(&candidates, balancing, random)
        }?;
        let addr = backends[index].addr;
        state.entry(addr).or_default().outstanding += 1;
        Some((
            index,
            Outstanding {
                balancer: self.clone(),
                addr,
            },
        ))
    }

    /// Gives `addr` no new requests for [`QUARANTINE`] (unless nothing else is left).
    pub fn quarantine(&self, addr: SocketAddr) {
        let mut state = self.state.lock().expect("balancer lock poisoned");
        state.entry(addr).or_default().quarantined_until = Some(Instant::now() + QUARANTINE);
    }

    /// Forgets dynos that are no longer routed to and have nothing in flight.
    pub fn retain(&self, routed: impl Fn(&SocketAddr) -> bool) {
        let mut state = self.state.lock().expect("balancer lock poisoned");
        state.retain(|addr, dyno| dyno.outstanding > 0 || routed(addr));
    }

    /// Is `addr` quarantined now (for tests and metrics)?
    pub fn quarantined(&self, addr: SocketAddr) -> bool {
        let state = self.state.lock().expect("balancer lock poisoned");
        state
            .get(&addr)
            .and_then(|d| d.quarantined_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Requests in flight to `addr` (for tests and metrics).
    pub fn outstanding(&self, addr: SocketAddr) -> u32 {
        let state = self.state.lock().expect("balancer lock poisoned");
        state.get(&addr).map_or(0, |d| d.outstanding)
    }
}

/// A request in flight to a dyno; dropping it ends the count.
pub struct Outstanding {
    balancer: Balancer,
    addr: SocketAddr,
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        let mut state = self.balancer.state.lock().expect("balancer lock poisoned");
        if let Some(dyno) = state.get_mut(&self.addr) {
            dyno.outstanding = dyno.outstanding.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(outstanding: u32, quarantined: bool, tried: bool) -> Candidate {
        Candidate {
            outstanding,
            quarantined,
            tried,
        }
    }

    /// Every index `pick` returns over many random numbers, sorted.
    fn picks(candidates: &[Candidate], balancing: Balancing) -> Vec<usize> {
        let mut seen: Vec<usize> = (0..64)
            .filter_map(|r| pick(candidates, balancing, r))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    }

    #[test]
    fn least_outstanding() {
        let check = |cs: &[Candidate], expected: &[usize]| {
            assert_eq!(picks(cs, Balancing::LeastOutstanding), expected, "{cs:?}");
        };
        check(
            &[c(3, false, false), c(1, false, false), c(2, false, false)],
            &[1],
        );
        check(
            &[c(1, false, false), c(1, false, false), c(2, false, false)],
            &[0, 1],
        );
        check(&[c(0, true, false), c(5, false, false)], &[1]);
        check(&[c(0, false, true), c(5, false, false)], &[1]);
        // Every dyno quarantined: use them anyway.
        check(&[c(2, true, false), c(1, true, false)], &[1]);
        // Quarantined but the only one not yet tried.
        check(&[c(0, false, true), c(0, true, false)], &[1]);
        check(&[c(0, false, true), c(0, true, true)], &[]);
        check(&[], &[]);
    }

    #[test]
    fn random() {
        let check = |cs: &[Candidate], expected: &[usize]| {
            assert_eq!(picks(cs, Balancing::Random), expected, "{cs:?}");
        };
        check(
            &[c(3, false, false), c(1, false, false), c(2, false, false)],
            &[0, 1, 2],
        );
        check(
            &[c(3, false, false), c(1, true, false), c(2, false, true)],
            &[0],
        );
        check(&[c(3, true, false), c(1, true, false)], &[0, 1]);
        check(&[c(0, false, true)], &[]);
    }

    #[test]
    fn random_is_uniform_enough() {
        let cs = [c(0, false, false); 4];
        let mut counts = [0u32; 4];
        for r in 0..4000 {
            counts[pick(&cs, Balancing::Random, r).expect("a candidate")] += 1;
        }
        assert_eq!(counts, [1000; 4]);
    }

    fn backend(n: u16) -> Backend {
        Backend {
            id: uuid::Uuid::from_u128(n.into()),
            dyno: format!("web.{n}"),
            addr: SocketAddr::from(([127, 0, 0, 1], 6000 + n)),
        }
    }

    #[test]
    fn counts_outstanding_and_quarantines() {
        let balancer = Balancer::default();
        let backends = [backend(1), backend(2)];
        let (first, a) = balancer
            .choose(&backends, &[], Balancing::LeastOutstanding, None)
            .expect("a dyno");
        let (second, b) = balancer
            .choose(&backends, &[], Balancing::LeastOutstanding, None)
            .expect("a dyno");
        assert_ne!(first, second, "the idle dyno gets the second request");
        assert_eq!(balancer.outstanding(backends[first].addr), 1);
        drop(a);
        assert_eq!(balancer.outstanding(backends[first].addr), 0);
        drop(b);

        balancer.quarantine(backends[0].addr);
        assert!(balancer.quarantined(backends[0].addr));
        assert!(!balancer.quarantined(backends[1].addr));
        for _ in 0..20 {
            let (index, _) = balancer
                .choose(&backends, &[], Balancing::Random, None)
                .expect("a dyno");
            assert_eq!(index, 1);
        }
        let tried = [backends[1].addr];
        let (index, _) = balancer
            .choose(&backends, &tried, Balancing::Random, None)
            .expect("the quarantined dyno, as nothing else is left");
        assert_eq!(index, 0);

        balancer.retain(|_| false);
        assert_eq!(balancer.outstanding(backends[0].addr), 0);
    }

    #[test]
    fn a_preferred_dyno_is_picked_unless_tried_or_quarantined() {
        let balancer = Balancer::default();
        let backends = [backend(1), backend(2)];
        let choose = |tried: &[SocketAddr], preferred| {
            balancer
                .choose(&backends, tried, Balancing::LeastOutstanding, preferred)
                .map(|(index, _)| index)
        };
        // However busy it is.
        let _busy: Vec<_> = (0..5)
            .map(|_| {
                balancer
                    .choose(&backends, &[], Balancing::LeastOutstanding, Some(0))
                    .expect("a dyno")
            })
            .collect();
        assert_eq!(balancer.outstanding(backends[0].addr), 5);
        assert_eq!(choose(&[], Some(0)), Some(0));
        assert_eq!(choose(&[], None), Some(1), "the idle one, by balancing");
        // Tried already (it refused the connection): another dyno.
        assert_eq!(choose(&[backends[0].addr], Some(0)), Some(1));
        // Out of range (the table changed): balancing decides.
        assert_eq!(choose(&[], Some(7)), Some(1));
        balancer.quarantine(backends[0].addr);
        assert_eq!(choose(&[], Some(0)), Some(1));
    }

    proptest::proptest! {
        #[test]
        fn picks_an_untried_healthy_dyno_when_there_is_one(
            dynos in proptest::collection::vec((0u32..4, proptest::bool::ANY, proptest::bool::ANY), 0..8),
            random in proptest::num::u64::ANY,
            least in proptest::bool::ANY,
        ) {
            let candidates: Vec<Candidate> = dynos.iter().map(|&(o, q, t)| c(o, q, t)).collect();
            let balancing = if least { Balancing::LeastOutstanding } else { Balancing::Random };
            match pick(&candidates, balancing, random) {
                None => proptest::prop_assert!(candidates.iter().all(|c| c.tried)),
                Some(index) => {
                    let chosen = candidates[index];
                    proptest::prop_assert!(!chosen.tried);
                    let eligible: Vec<&Candidate> = candidates
                        .iter()
                        .filter(|c| !c.tried && (chosen.quarantined || !c.quarantined))
                        .collect();
                    if chosen.quarantined {
                        proptest::prop_assert!(candidates.iter().all(|c| c.tried || c.quarantined));
                    }
                    if least {
                        proptest::prop_assert!(eligible.iter().all(|c| c.outstanding >= chosen.outstanding));
                    }
                }
            }
        }
    }
}
