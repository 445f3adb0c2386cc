//! What an IP address is, as a destination: pure, from tables of special-use blocks (IANA's
//! IPv4 and IPv6 special-purpose registries), with IPv4 addresses embedded in IPv6 forms
//! judged as the IPv4 address they reach.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cidr::Cidr;

/// What a destination address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An address of the internet at large: allowed.
    Public,
    /// Reaches this host, its link or a group: refused whatever the operator allows.
    Never(Never),
    /// An internal or special-use network: refused unless the operator allows it.
    Internal(Range),
}

/// Addresses that are never a destination for a tenant's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Never {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `0.0.0.0`, `::`: connecting there reaches this host.
    Unspecified,
    /// The rest of `0.0.0.0/8` ("this network").
    ThisNetwork,
    /// `169.254.0.0/16` (where cloud metadata services answer, at `169.254.169.254`),
    /// `fe80::/10`.
    LinkLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
}

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Never::Loopback => "a loopback address of this server",
            Never::Unspecified => "the unspecified address, which reaches this server",
            Never::ThisNetwork => "an address of \"this network\" (0.0.0.0/8)",
            Never::LinkLocal => {
                "a link-local address (169.254.0.0/16 or fe80::/10, where cloud metadata services answer)"
            }
            Never::Multicast => "a multicast address",
            Never::Broadcast => "the broadcast address",
        })
    }
}

/// An internal or special-use block and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub cidr: Cidr,
    pub name: &'static str,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.cidr, self.name)
    }
}

/// An IPv6 form that carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:a.b.c.d`: the socket connects to the IPv4 address itself.
    Mapped,
    /// `::a.b.c.d` (deprecated).
    Compatible,
    /// `64:ff9b::a.b.c.d`: a NAT64 gateway connects to the IPv4 address.
    Nat64,
    /// `2002:aabb:ccdd::/48`: 6to4, tunnelled to the IPv4 address.
    SixToFour,
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Embedding::Mapped => "IPv4-mapped",
            Embedding::Compatible => "IPv4-compatible",
            Embedding::Nat64 => "NAT64",
            Embedding::SixToFour => "6to4",
        })
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
    Cidr::v4(Ipv4Addr::new(a, b, c, d), prefix)
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16, prefix: u8) -> Cidr {
    Cidr::v6(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// IPv4 blocks that are never a destination, most specific first.
pub(crate) const NEVER_V4: &[(Cidr, Never)] = &[
    (v4(0, 0, 0, 0, 32), Never::Unspecified),
    (v4(255, 255, 255, 255, 32), Never::Broadcast),
    (v4(0, 0, 0, 0, 8), Never::ThisNetwork),
    (v4(127, 0, 0, 0, 8), Never::Loopback),
    (v4(169, 254, 0, 0, 16), Never::LinkLocal),
    (v4(224, 0, 0, 0, 4), Never::Multicast),
];

/// IPv6 blocks that are never a destination (embedded IPv4 forms are judged by their IPv4
/// address).
pub(crate) const NEVER_V6: &[(Cidr, Never)] = &[
    (v6(0, 0, 0, 0, 0, 0, 0, 0, 128), Never::Unspecified),
    (v6(0, 0, 0, 0, 0, 0, 0, 1, 128), Never::Loopback),
    (v6(0xfe80, 0, 0, 0, 0, 0, 0, 0, 10), Never::LinkLocal),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0, 8), Never::Multicast),
];

/// IPv4 blocks that are internal or special-use: private networks, shared address space,
/// benchmarking, documentation, reserved.
pub(crate) const INTERNAL_V4: &[Range] = &[
    Range {
        cidr: v4(10, 0, 0, 0, 8),
        name: "private network",
    },
    Range {
        cidr: v4(100, 64, 0, 0, 10),
        name: "carrier-grade NAT shared address space",
    },
    Range {
        cidr: v4(172, 16, 0, 0, 12),
        name: "private network",
    },
    Range {
        cidr: v4(192, 0, 0, 0, 24),
        name: "IETF protocol assignments",
    },
    Range {
        cidr: v4(192, 0, 2, 0, 24),
        name: "documentation",
    },
    Range {
        cidr: v4(192, 88, 99, 0, 24),
        name: "6to4 relay anycast",
    },
    Range {
        cidr: v4(192, 168, 0, 0, 16),
        name: "private network",
    },
    Range {
        cidr: v4(198, 18, 0, 0, 15),
        name: "benchmarking",
    },
    Range {
        cidr: v4(198, 51, 100, 0, 24),
        name: "documentation",
    },
    Range {
        cidr: v4(203, 0, 113, 0, 24),
        name: "documentation",
    },
    Range {
        cidr: v4(240, 0, 0, 0, 4),
        name: "reserved",
    },
];

/// IPv6 blocks that are internal or special-use, inside or outside global unicast.
pub(crate) const INTERNAL_V6: &[Range] = &[
    Range {
        cidr: v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0, 48),
        name: "local-use NAT64",
    },
    Range {
        cidr: v6(0x100, 0, 0, 0, 0, 0, 0, 0, 64),
        name: "discard-only",
    },
    Range {
        cidr: v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 23),
        name: "IETF protocol assignments, Teredo and benchmarking",
    },
    Range {
        cidr: v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32),
        name: "documentation",
    },
    Range {
        cidr: v6(0x3fff, 0, 0, 0, 0, 0, 0, 0, 20),
        name: "documentation",
    },
    Range {
        cidr: v6(0x5f00, 0, 0, 0, 0, 0, 0, 0, 16),
        name: "segment routing",
    },
    Range {
        cidr: v6(0xfc00, 0, 0, 0, 0, 0, 0, 0, 7),
        name: "unique local network",
    },
    Range {
        cidr: v6(0xfec0, 0, 0, 0, 0, 0, 0, 0, 10),
        name: "site-local network",
    },
];

/// IPv6 addresses outside these blocks (global unicast, `2000::/3`) are not assigned to the
/// internet at all: they are judged internal.
const GLOBAL_UNICAST: Cidr = v6(0x2000, 0, 0, 0, 0, 0, 0, 0, 3);
const UNASSIGNED_V6: Range = Range {
    cidr: v6(0, 0, 0, 0, 0, 0, 0, 0, 0),
    name: "outside global unicast 2000::/3",
};

/// What `address` is as a destination.
pub fn classify(address: IpAddr) -> Class {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> Class {
    let ip = IpAddr::V4(address);
    if let Some((_, never)) = NEVER_V4.iter().find(|(cidr, _)| cidr.contains(ip)) {
        return Class::Never(*never);
    }
    match INTERNAL_V4.iter().find(|range| range.cidr.contains(ip)) {
        Some(range) => Class::Internal(*range),
        None => Class::Public,
    }
}

fn classify_v6(address: Ipv6Addr) -> Class {
    let ip = IpAddr::V6(address);
    if let Some((_, never)) = NEVER_V6.iter().find(|(cidr, _)| cidr.contains(ip)) {
        return Class::Never(*never);
    }
    if let Some((_, v4)) = embedded_ipv4(address) {
        return classify_v4(v4);
    }
    if let Some(range) = INTERNAL_V6.iter().find(|range| range.cidr.contains(ip)) {
        return Class::Internal(*range);
    }
    if GLOBAL_UNICAST.contains(ip) {
        Class::Public
    } else {
        Class::Internal(UNASSIGNED_V6)
    }
}

/// Every IPv4 block that is not the internet, with what it is: the never-reached ones
/// (named as [`Never`] shows them) and the internal ones.
pub fn special_v4_blocks() -> Vec<(Cidr, String)> {
    NEVER_V4
        .iter()
        .map(|(cidr, never)| (*cidr, never.to_string()))
        .chain(
            INTERNAL_V4
                .iter()
                .map(|range| (range.cidr, range.name.to_owned())),
        )
        .collect()
}

/// The IPv4 address an IPv6 address carries, in the forms that reach it: IPv4-mapped,
/// IPv4-compatible, NAT64's well-known prefix and 6to4. (`::` and `::1` are not
/// IPv4-compatible forms.)
pub fn embedded_ipv4(address: Ipv6Addr) -> Option<(Embedding, Ipv4Addr)> {
    let bits = u128::from(address);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let segments = address.segments();
    if bits >> 32 == 0xffff {
        Some((Embedding::Mapped, low))
    } else if bits >> 32 == 0 && bits > 1 {
        Some((Embedding::Compatible, low))
    } else if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        Some((Embedding::Nat64, low))
    } else if segments[0] == 0x2002 {
        Some((
            Embedding::SixToFour,
            Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
