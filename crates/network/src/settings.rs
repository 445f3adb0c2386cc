//! The operator's settings for the dyno network, parsed with messages that say what to do:
//! the subnet (`WHARF_DYNO_NETWORK`), the name of the bridge and table
//! (`WHARF_NETWORK_NAME`), and the internal networks dynos may reach (`WHARF_DYNO_ALLOW`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use anyhow::{bail, Context};
use wharf_outbound::{AllowList, Cidr};

/// The default dyno subnet: the upper half of `198.18.0.0/15`, the block RFC 2544 sets
/// aside for benchmarking. It is never routed on the internet and, unlike RFC 1918 and
/// `100.64.0.0/10`, offices, clouds and VPNs do not number their networks from it.
pub const DEFAULT_SUBNET: &str = "198.19.0.0/16";
/// The default name of the bridge and of the nftables table.
pub const DEFAULT_NAME: &str = "wharf";

/// An IPv4 subnet for dynos: the first address is the gateway (the host's bridge), the
/// rest up to the broadcast address go to containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// `a.b.c.d/n` with `n` from 8 to 28, and no host bits set.
    pub fn parse(text: &str) -> anyhow::Result<Subnet> {
        let (address, prefix) = text.trim().split_once('/').with_context(|| {
            format!("dyno network {text:?} is not a CIDR: write it as 198.19.0.0/16")
        })?;
        let network: Ipv4Addr = address.parse().with_context(|| {
            format!("dyno network {text:?}: {address:?} is not an IPv4 address")
        })?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|prefix| (8..=28).contains(prefix))
            .with_context(|| {
                format!(
                    "dyno network {text:?}: the prefix length must be 8 to 28 (a /28 holds 13 \
                     containers)"
                )
            })?;
        let subnet = Subnet { network, prefix };
        if u32::from(network) & !subnet.mask() != 0 {
            bail!(
                "dyno network {text:?} has host bits set: did you mean {}?",
                Subnet {
                    network: Ipv4Addr::from(u32::from(network) & subnet.mask()),
                    prefix
                }
            );
        }
        if !matches!(
            wharf_outbound::classify(IpAddr::V4(network)),
            wharf_outbound::Class::Internal(_)
        ) {
            bail!(
                "dyno network {text:?} is not an internal network: use a private or special-use \
                 block (the default is {DEFAULT_SUBNET})"
            );
        }
        Ok(subnet)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The host's address on the bridge: the first of the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// How many containers the subnet holds.
    pub fn capacity(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 3
    }

    /// The `n`th container address (0-based, below [`Subnet::capacity`]).
    pub fn container_address(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 2 + n)
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    /// Whether `network/prefix` and this subnet share an address.
    pub fn overlaps(&self, network: Ipv4Addr, prefix: u8) -> bool {
        let shorter = prefix.min(self.prefix);
        let mask = if shorter == 0 {
            0
        } else {
            u32::MAX << (32 - shorter)
        };
        u32::from(network) & mask == u32::from(self.network) & mask
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Everything the dyno network is made from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bridge's name and the nftables table's (`inet <name>`).
    pub name: String,
    pub subnet: Subnet,
    /// Internal networks dynos may reach (`WHARF_DYNO_ALLOW`), IPv4 only.
    pub allow: AllowList,
    /// Add-on servers as dynos reach them: the gateway's ports for servers on this host,
    /// others at their own address. The firewall opens exactly these.
    pub addon_endpoints: Vec<SocketAddrV4>,
    /// Ranges of the gateway's ports (inclusive) where servers Wharf runs per add-on listen
    /// (a `redis-server` each): opened like `addon_endpoints`.
    pub addon_port_ranges: Vec<(u16, u16)>,
    /// The resolvers the DNS forwarder relays to (`WHARF_DYNO_RESOLVERS`); empty: the
    /// host's, from its `/etc/resolv.conf`.
    pub resolvers: Vec<SocketAddr>,
}

impl Settings {
    /// Parses the settings; `addon_endpoints` and `addon_port_ranges` are filled in by the
    /// caller.
    pub fn parse(
        name: &str,
        subnet: &str,
        allow: &str,
        resolvers: &str,
    ) -> anyhow::Result<Settings> {
        let valid_name = !name.is_empty()
            && name.len() <= 12
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-');
        if !valid_name {
            bail!(
                "network name {name:?}: use 1 to 12 characters of [a-z0-9-] (it names the bridge \
                 and the nftables table)"
            );
        }
        let subnet = Subnet::parse(subnet)?;
        let allow = AllowList::parse(allow).map_err(|why| {
            anyhow::anyhow!("WHARF_DYNO_ALLOW: {why} (example: 10.1.2.0/24,192.168.5.10:5432)")
        })?;
        if let Some(entry) = allow
            .entries()
            .iter()
            .find(|entry| matches!(entry.cidr.network(), IpAddr::V6(_)))
        {
            bail!("WHARF_DYNO_ALLOW: {entry} is IPv6, but dynos have IPv4 addresses only");
        }
        if let Some(entry) = allow.entries().iter().find(|entry| {
            let IpAddr::V4(network) = entry.cidr.network() else {
                return false;
            };
            subnet.overlaps(network, entry.cidr.prefix())
        }) {
            bail!(
                "WHARF_DYNO_ALLOW: {entry} overlaps the dyno network {subnet}: dynos never reach \
                 each other"
            );
        }
        let resolvers = resolvers
            .split(',')
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse::<SocketAddr>()
                    .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "WHARF_DYNO_RESOLVERS: {text:?} is not an address (example: \
                             127.0.0.53 or 10.0.0.2:53)"
                        )
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Settings {
            name: name.to_owned(),
            subnet,
            allow,
            addon_endpoints: Vec::new(),
            addon_port_ranges: Vec::new(),
            resolvers,
        })
    }
}

/// The IPv4 network of an allow entry.
pub(crate) fn v4_cidr(cidr: &Cidr) -> Option<(Ipv4Addr, u8)> {
    match cidr.network() {
        IpAddr::V4(network) => Some((network, cidr.prefix())),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn error(result: anyhow::Result<impl fmt::Debug>) -> String {
        format!("{:#}", result.unwrap_err())
    }

    #[test]
    fn subnets() {
        let subnet = Subnet::parse(DEFAULT_SUBNET).unwrap();
        assert_eq!(subnet.gateway(), Ipv4Addr::new(198, 19, 0, 1));
        assert_eq!(subnet.container_address(0), Ipv4Addr::new(198, 19, 0, 2));
        assert_eq!(subnet.capacity(), 65533);
        assert_eq!(
            subnet.container_address(subnet.capacity() - 1),
            Ipv4Addr::new(198, 19, 255, 254)
        );
        assert!(subnet.contains(Ipv4Addr::new(198, 19, 3, 4)));
        assert!(!subnet.contains(Ipv4Addr::new(198, 18, 3, 4)));
        assert!(subnet.overlaps(Ipv4Addr::new(198, 16, 0, 0), 12));
        assert!(subnet.overlaps(Ipv4Addr::new(198, 19, 7, 0), 24));
        assert!(!subnet.overlaps(Ipv4Addr::new(198, 18, 0, 0), 16));
        assert!(subnet.overlaps(Ipv4Addr::UNSPECIFIED, 0));
        assert!(error(Subnet::parse("198.19.0.1/16")).contains("did you mean 198.19.0.0/16"));
        assert!(error(Subnet::parse("198.19.0.0")).contains("not a CIDR"));
        assert!(error(Subnet::parse("198.19.0.0/30")).contains("8 to 28"));
        assert!(error(Subnet::parse("8.8.0.0/16")).contains("not an internal network"));
        assert!(error(Subnet::parse("nonsense/16")).contains("not an IPv4 address"));
    }

    #[test]
    fn settings() {
        let settings = Settings::parse(
            "wharf",
            DEFAULT_SUBNET,
            "10.0.0.0/8,192.168.1.5:5432",
            "127.0.0.53",
        );
        let settings = settings.unwrap();
        assert_eq!(settings.allow.entries().len(), 2);
        assert_eq!(settings.resolvers, ["127.0.0.53:53".parse().unwrap()]);
        assert!(error(Settings::parse("wharf", DEFAULT_SUBNET, "", "dns")).contains("\"dns\""));
        assert!(error(Settings::parse("Wharf", DEFAULT_SUBNET, "", "")).contains("[a-z0-9-]"));
        assert!(
            error(Settings::parse("wharf", DEFAULT_SUBNET, "10.0.0.0/33", ""))
                .contains("10.0.0.0/33")
        );
        assert!(error(Settings::parse(
            "wharf",
            DEFAULT_SUBNET,
            "169.254.169.254",
            ""
        ))
        .contains("never"));
        assert!(error(Settings::parse("wharf", DEFAULT_SUBNET, "fd00::/8", "")).contains("IPv6"));
        assert!(error(Settings::parse(
            "wharf",
            DEFAULT_SUBNET,
            "198.19.4.0/24",
            ""
        ))
        .contains("overlaps"));
    }
}
