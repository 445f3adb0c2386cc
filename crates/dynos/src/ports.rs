//! `$PORT` allocation for web dynos: each gets a port of the configured range that no other
//! dyno holds and that nothing on the host has bound.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;

/// Hands out ports round-robin, so a port just released (perhaps still in a router's
/// connection pool) is the last to be reused. Each allocator starts at a random port of the
/// range: two servers on one host (or anything else allocating from the same range) would
/// otherwise hand out the same ports in the same order, and a dyno whose port another one
/// bound a moment earlier crashes on start.
#[derive(Debug)]
pub struct PortAllocator {
    range: Range<u16>,
    next: u16,
    held: HashSet<u16>,
}

impl PortAllocator {
    pub fn new(range: Range<u16>) -> PortAllocator {
        let len = range.end.saturating_sub(range.start).max(1);
        let start = range.start + rand::random::<u16>() % len;
        PortAllocator::starting_at(range, start)
    }

    /// An allocator whose first candidate is `start`.
    pub fn starting_at(range: Range<u16>, start: u16) -> PortAllocator {
        PortAllocator {
            next: if range.contains(&start) {
                start
            } else {
                range.start
            },
            range,
            held: HashSet::new(),
        }
    }

    /// A port in the range that is not held and passes `free` (a bind test on the host);
    /// `None` when every port is taken.
    pub fn allocate_with(&mut self, mut free: impl FnMut(u16) -> bool) -> Option<u16> {
        let len = usize::from(self.range.end.saturating_sub(self.range.start));
        for _ in 0..len {
            let port = self.next;
            self.next = if port + 1 >= self.range.end {
                self.range.start
            } else {
                port + 1
            };
            if !self.held.contains(&port) && free(port) {
                self.held.insert(port);
                return Some(port);
            }
        }
        None
    }

    /// Marks `port` as held (a dyno taken up from the last server listens on it).
    pub fn hold(&mut self, port: u16) {
        self.held.insert(port);
    }

    /// A port nothing on the host listens on (checked by binding it on all addresses).
    pub fn allocate(&mut self) -> Option<u16> {
        self.allocate_with(|port| TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok())
    }

    pub fn release(&mut self, port: u16) {
        self.held.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_skipping_held_and_bound_ports() {
        let mut ports = PortAllocator::starting_at(100..104, 100);
        assert_eq!(ports.allocate_with(|_| true), Some(100));
        assert_eq!(ports.allocate_with(|p| p != 101), Some(102));
        assert_eq!(ports.allocate_with(|_| true), Some(103));
        assert_eq!(ports.allocate_with(|_| true), Some(101));
        assert_eq!(ports.allocate_with(|_| true), None);
        ports.release(102);
        assert_eq!(ports.allocate_with(|_| true), Some(102));
        assert_eq!(PortAllocator::new(5..5).allocate_with(|_| true), None);
    }

    #[test]
    fn allocators_start_at_random_ports_and_wrap() {
        let starts: HashSet<Option<u16>> = (0..20)
            .map(|_| PortAllocator::new(20000..30000).allocate_with(|_| true))
            .collect();
        assert!(starts.len() > 1, "every allocator started at {starts:?}");
        let mut ports = PortAllocator::starting_at(100..103, 102);
        let order: Vec<_> = (0..3)
            .filter_map(|_| ports.allocate_with(|_| true))
            .collect();
        assert_eq!(order, [102, 100, 101]);
    }

    #[test]
    fn skips_a_port_in_use_on_the_host() {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        let bound = listener.local_addr().expect("address").port();
        let mut ports = PortAllocator::new(bound..bound.saturating_add(1));
        assert_eq!(ports.allocate(), None);
    }
}
