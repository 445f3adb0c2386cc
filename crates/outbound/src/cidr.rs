//! An address block (`10.0.0.0/8`, `fe80::/10`): parsing with messages that say what is wrong,
//! and membership.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network address and a prefix length, with no bits set beyond the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// For tables of well-known blocks; `network` must have no bits set beyond `prefix`.
    pub(crate) const fn v4(network: Ipv4Addr, prefix: u8) -> Cidr {
        Cidr {
            network: IpAddr::V4(network),
            prefix,
        }
    }

    /// For tables of well-known blocks; `network` must have no bits set beyond `prefix`.
    pub(crate) const fn v6(network: Ipv6Addr, prefix: u8) -> Cidr {
        Cidr {
            network: IpAddr::V6(network),
            prefix,
        }
    }

    /// One address as a block of its own (`/32` or `/128`).
    pub fn host(address: IpAddr) -> Cidr {
        Cidr {
            network: address,
            prefix: bits(address),
        }
    }

    /// The block of `prefix` bits that holds `address` (bits beyond the prefix are cleared).
    pub fn containing(address: IpAddr, prefix: u8) -> Result<Cidr, String> {
        check_prefix(address, prefix)?;
        Ok(Cidr {
            network: masked(address, prefix),
            prefix,
        })
    }

    /// Parses `ADDRESS/PREFIX`, or a bare address (one address). Bits set beyond the prefix
    /// are an error rather than silently cleared: `10.0.0.1/8` is most likely a typo.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IPv4 or IPv6 address"))?;
        let Some(prefix) = prefix else {
            return Ok(Cidr::host(address));
        };
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("the prefix length {prefix:?} is not a number"))?;
        let cidr = Cidr::containing(address, prefix)?;
        if cidr.network != address {
            return Err(format!(
                "{address} has bits set beyond its /{prefix} prefix: write {cidr}"
            ));
        }
        Ok(cidr)
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `address` is in this block (never across IPv4 and IPv6).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                masked(address, self.prefix) == self.network
            }
            _ => false,
        }
    }

    /// Whether every address of `inner` is in this block.
    pub fn covers(&self, inner: &Cidr) -> bool {
        inner.prefix >= self.prefix && self.contains(inner.network)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn bits(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn check_prefix(address: IpAddr, prefix: u8) -> Result<(), String> {
    let (family, max) = match address {
        IpAddr::V4(_) => ("IPv4", 32),
        IpAddr::V6(_) => ("IPv6", 128),
    };
    if prefix > max {
        return Err(format!(
            "an {family} prefix is at most /{max}, not /{prefix}"
        ));
    }
    Ok(())
}

fn masked(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<&str, &str>) {
        match (Cidr::parse(text), expected) {
            (Ok(cidr), Ok(shown)) => assert_eq!(cidr.to_string(), shown, "{text}"),
            (Err(error), Err(part)) => assert!(error.contains(part), "{text}: {error}"),
            (got, _) => panic!("{text}: {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn parses_blocks_and_says_what_is_wrong() {
        check("10.0.0.0/8", Ok("10.0.0.0/8"));
        check("10.1.2.3", Ok("10.1.2.3/32"));
        check("0.0.0.0/0", Ok("0.0.0.0/0"));
        check("fd00::/8", Ok("fd00::/8"));
        check("::1", Ok("::1/128"));
        check("10.0.0.0/33", Err("an IPv4 prefix is at most /32, not /33"));
        check("fd00::/129", Err("an IPv6 prefix is at most /128"));
        check(
            "10.0.0.1/8",
            Err("bits set beyond its /8 prefix: write 10.0.0.0/8"),
        );
        check("10.0.0/8", Err("\"10.0.0\" is not an IPv4 or IPv6 address"));
        check("10.0.0.0/x", Err("prefix length \"x\" is not a number"));
        check("", Err("is not an IPv4 or IPv6 address"));
    }

    #[test]
    fn membership_stays_within_a_family() {
        let private = Cidr::parse("172.16.0.0/12").unwrap();
        assert!(private.contains("172.31.255.255".parse().unwrap()));
        assert!(!private.contains("172.32.0.0".parse().unwrap()));
        assert!(!private.contains("::ffff:172.16.0.1".parse().unwrap()));
        let everything = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(everything.contains("255.255.255.255".parse().unwrap()));
        assert!(!everything.contains("::".parse().unwrap()));
        assert!(private.covers(&Cidr::parse("172.20.0.0/16").unwrap()));
        assert!(!private.covers(&Cidr::parse("172.0.0.0/8").unwrap()));
        assert!(Cidr::parse("::/0")
            .unwrap()
            .covers(&Cidr::parse("fe80::/10").unwrap()));
    }
}
