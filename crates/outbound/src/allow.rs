//! The operator's allow list (`WHARF_OUTBOUND_ALLOW`): internal networks, each optionally for
//! one port, that tenants' URLs may reach. It can open internal and special-use blocks only:
//! an entry that lies wholly in loopback, link-local, multicast, "this network" or the
//! broadcast address is an error, because the policy refuses those whatever the list says.

use std::fmt;
use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::class::{embedded_ipv4, NEVER_V4, NEVER_V6};

/// One allowed block, for every port or for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowEntry {
    pub cidr: Cidr,
    pub port: Option<u16>,
}

impl AllowEntry {
    fn matches(&self, address: IpAddr, port: u16) -> bool {
        self.cidr.contains(address) && self.port.is_none_or(|p| p == port)
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.cidr.network()) {
            (None, _) => write!(f, "{}", self.cidr),
            (Some(port), IpAddr::V4(_)) => write!(f, "{}:{port}", self.cidr),
            (Some(port), IpAddr::V6(_)) => write!(f, "[{}]:{port}", self.cidr),
        }
    }
}

/// The blocks the operator opened. Empty by default: no internal network is reachable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowEntry>,
}

impl AllowList {
    /// Parses the setting: comma-separated `CIDR` or `CIDR:PORT` entries (`10.0.0.0/8`,
    /// `192.168.1.5/32:514`, `10.1.2.3:514`, `fd00::/8`, `[fd00::5]:514` or `fd00::5/128:514`).
    /// A bare address is one address. Blank entries are skipped. The error names the entry
    /// and what is wrong with it.
    pub fn parse(setting: &str) -> Result<AllowList, String> {
        let mut entries = Vec::new();
        for text in setting.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let entry =
                parse_entry(text).map_err(|why| format!("{text:?} is not a CIDR: {why}"))?;
            if let Some(what) = never_block(&entry.cidr) {
                return Err(format!(
                    "{text:?} is {what}, which tenants' URLs may never reach: the allow list opens \
                     internal networks only (run a local receiver in a container or network \
                     namespace with an address of its own, and allow that)"
                ));
            }
            entries.push(entry);
        }
        Ok(AllowList { entries })
    }

    pub fn entries(&self) -> &[AllowEntry] {
        &self.entries
    }

    /// Whether an entry opens `address` on `port`. An IPv6 form that carries an IPv4 address
    /// matches the entries of that IPv4 address too.
    pub fn allows(&self, address: IpAddr, port: u16) -> bool {
        let carried = match address {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(|(_, v4)| IpAddr::V4(v4)),
            IpAddr::V4(_) => None,
        };
        self.entries.iter().any(|entry| {
            entry.matches(address, port) || carried.is_some_and(|v4| entry.matches(v4, port))
        })
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self.entries.iter().map(ToString::to_string).collect();
        f.write_str(&entries.join(","))
    }
}

fn parse_entry(text: &str) -> Result<AllowEntry, String> {
    // `[ADDRESS or CIDR]:PORT`
    if let Some(bracketed) = text.strip_prefix('[') {
        let (inside, rest) = bracketed.split_once(']').ok_or("a '[' without its ']'")?;
        let port = match rest {
            "" => None,
            rest => Some(parse_port(rest.strip_prefix(':').ok_or_else(|| {
                format!("{rest:?} after ']': write [ADDRESS]:PORT")
            })?)?),
        };
        return Ok(AllowEntry {
            cidr: Cidr::parse(inside)?,
            port,
        });
    }
    // `ADDRESS/PREFIX` or `ADDRESS/PREFIX:PORT`
    if let Some((address, rest)) = text.split_once('/') {
        let (prefix, port) = match rest.split_once(':') {
            Some((prefix, port)) => (prefix, Some(parse_port(port)?)),
            None => (rest, None),
        };
        return Ok(AllowEntry {
            cidr: Cidr::parse(&format!("{address}/{prefix}"))?,
            port,
        });
    }
    // A bare address, or `IPv4:PORT`.
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(AllowEntry {
            cidr: Cidr::host(address),
            port: None,
        });
    }
    match text.rsplit_once(':') {
        Some((address, port)) if !address.contains(':') => Ok(AllowEntry {
            cidr: Cidr::parse(address)?,
            port: Some(parse_port(port)?),
        }),
        _ => Err(format!(
            "{text:?} is not an IPv4 or IPv6 address (write ADDRESS/PREFIX, optionally :PORT)"
        )),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("the port {text:?} is not a port number (1-65535)")),
    }
}

/// What kind of never-reachable block wholly holds `cidr`, if one does (an IPv4-mapped block
/// is judged as its IPv4 block).
fn never_block(cidr: &Cidr) -> Option<String> {
    let mut blocks: Vec<(Cidr, String)> = Vec::new();
    for (block, never) in NEVER_V4.iter().chain(NEVER_V6) {
        blocks.push((*block, never.to_string()));
    }
    for (block, never) in NEVER_V4 {
        if let IpAddr::V4(network) = block.network() {
            let mapped =
                Cidr::containing(IpAddr::V6(network.to_ipv6_mapped()), block.prefix() + 96)
                    .expect("an IPv4 prefix plus 96 is an IPv6 prefix");
            blocks.push((mapped, format!("the IPv4-mapped form of {never}")));
        }
    }
    blocks
        .into_iter()
        .find(|(block, _)| block.covers(cidr))
        .map(|(_, what)| what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(setting: &str, expected: Result<&str, &str>) {
        match (AllowList::parse(setting), expected) {
            (Ok(list), Ok(shown)) => assert_eq!(list.to_string(), shown, "{setting}"),
            (Err(error), Err(part)) => assert!(error.contains(part), "{setting}: {error}"),
            (got, _) => panic!("{setting}: {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn parses_the_setting_and_says_what_is_wrong() {
        check("", Ok(""));
        check(" , ", Ok(""));
        check("10.0.0.0/8", Ok("10.0.0.0/8"));
        check(
            "10.0.0.0/8, 192.168.1.5/32:514 ,10.1.2.3:6514",
            Ok("10.0.0.0/8,192.168.1.5/32:514,10.1.2.3/32:6514"),
        );
        check("fd00::/8", Ok("fd00::/8"));
        check("fd00::5", Ok("fd00::5/128"));
        check("[fd00::5]:514", Ok("[fd00::5/128]:514"));
        check("fd00::/8:443", Ok("[fd00::/8]:443"));
        check("[fd00::/8]:443", Ok("[fd00::/8]:443"));
        check("0.0.0.0/0", Ok("0.0.0.0/0"));
        check(
            "10.0.0.0/33",
            Err("\"10.0.0.0/33\" is not a CIDR: an IPv4 prefix is at most /32, not /33"),
        );
        check(
            "10.0.0.1/8",
            Err("\"10.0.0.1/8\" is not a CIDR: 10.0.0.1 has bits set beyond its /8 prefix: write 10.0.0.0/8"),
        );
        check("10.0.0.0/8:0", Err("the port \"0\" is not a port number"));
        check(
            "10.0.0.0/8:70000",
            Err("the port \"70000\" is not a port number"),
        );
        check("logs.internal", Err("\"logs.internal\" is not a CIDR"));
        check("10.0.0.0/8;192.168.0.0/16", Err("is not a CIDR"));
        check("[fd00::5", Err("a '[' without its ']'"));
        check("[fd00::5]514", Err("after ']'"));
        check(
            "127.0.0.1/32:514",
            Err("\"127.0.0.1/32:514\" is a loopback address of this server"),
        );
        check("127.0.0.0/8", Err("is a loopback address"));
        check("::1", Err("is a loopback address"));
        check(
            "::ffff:127.0.0.1",
            Err("the IPv4-mapped form of a loopback address"),
        );
        check("169.254.169.254", Err("is a link-local address"));
        check("fe80::/64", Err("is a link-local address"));
        check("224.0.0.0/4", Err("multicast"));
        check("0.0.0.0", Err("the unspecified address"));
        check("::", Err("the unspecified address"));
    }

    #[test]
    fn entries_open_their_block_on_their_port() {
        let list = AllowList::parse("10.0.0.0/8,192.168.1.5:514").unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(list.allows(ip("10.9.8.7"), 1));
        assert!(list.allows(ip("::ffff:10.9.8.7"), 443));
        assert!(list.allows(ip("192.168.1.5"), 514));
        assert!(!list.allows(ip("192.168.1.5"), 515));
        assert!(!list.allows(ip("192.168.1.6"), 514));
        assert!(!list.allows(ip("11.0.0.1"), 514));
        assert!(!AllowList::default().allows(ip("10.0.0.1"), 514));
    }
}
