//! This server's own addresses: every address on the host's interfaces, from the kernel's
//! tables in `/proc` (no `getifaddrs`, so no unsafe code and no extra crate). IPv4 comes from
//! `/proc/net/fib_trie` (its `host LOCAL` entries, which include whole local blocks such as
//! `127.0.0.0/8`), IPv6 from `/proc/net/if_inet6`. Both are the tables of the reading
//! process's network namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::cidr::Cidr;

const FIB_TRIE: &str = "/proc/net/fib_trie";
const IF_INET6: &str = "/proc/net/if_inet6";

/// Reads the addresses of this host's interfaces now.
pub fn read() -> Result<Vec<Cidr>, String> {
    let fib_trie = read_table(Path::new(FIB_TRIE))?;
    let mut own = local_ipv4(&fib_trie);
    // A host without IPv6 has no if_inet6.
    if Path::new(IF_INET6).exists() {
        own.extend(interface_ipv6(&read_table(Path::new(IF_INET6))?));
    }
    if own.is_empty() {
        return Err(format!("{FIB_TRIE} lists no local address"));
    }
    own.sort_by_key(|cidr| (cidr.network(), cidr.prefix()));
    own.dedup();
    Ok(own)
}

fn read_table(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("read {}: {error}", path.display()))
}

/// The blocks the kernel delivers locally: each leaf (`|-- 192.0.2.2`) followed by a
/// `/32 host LOCAL` line (or `/8 host LOCAL` for a whole local block).
pub(crate) fn local_ipv4(fib_trie: &str) -> Vec<Cidr> {
    let mut found = Vec::new();
    let mut leaf: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let line = line.trim();
        if let Some(address) = line.strip_prefix("|-- ") {
            leaf = address.trim().parse().ok();
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(prefix), Some(_scope), Some("LOCAL")) =
            (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Some(address), Some(prefix)) = (
            leaf,
            prefix.strip_prefix('/').and_then(|p| p.parse::<u8>().ok()),
        ) else {
            continue;
        };
        if let Ok(cidr) = Cidr::containing(IpAddr::V4(address), prefix) {
            found.push(cidr);
        }
    }
    found
}

/// Every address of `if_inet6`: 32 hex digits at the start of each line.
pub(crate) fn interface_ipv6(if_inet6: &str) -> Vec<Cidr> {
    if_inet6
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|hex| {
            u128::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 32)
        })
        .map(|bits| Cidr::host(IpAddr::V6(Ipv6Addr::from(bits))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE_TEXT: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.20.30.40
        /32 host LOCAL
";

    #[test]
    fn reads_local_blocks_from_the_fib_trie() {
        let found: Vec<String> = local_ipv4(FIB_TRIE_TEXT)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "127.0.0.0/8",
                "127.0.0.1/32",
                "192.0.2.2/32",
                "10.20.30.40/32"
            ]
        );
    }

    #[test]
    fn reads_interface_addresses_from_if_inet6() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000002 04 40 00 82     eth0
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
nonsense
";
        let found: Vec<String> = interface_ipv6(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, ["::1/128", "fd00::2/128", "fe80::fc:ff:fe00:1/128"]);
    }

    #[test]
    fn this_hosts_addresses_include_loopback() {
        let own = read().unwrap();
        assert!(
            own.iter().any(|c| c.contains("127.0.0.1".parse().unwrap())),
            "{own:?}"
        );
    }
}
