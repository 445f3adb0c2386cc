//! The nftables table of Wharf's own (`table inet <name>`): what dynos and builds may reach,
//! NAT to the internet, and per-dyno limits. The ruleset is a pure function of the settings
//! (unit-tested), loaded with one `nft -f -` transaction that replaces whatever table of that
//! name a killed server left, so there is always exactly one and no stale rule. Nothing else
//! of the host's rules is read, flushed or changed.
//!
//! Which rule keeps which promise (a packet is dropped if any base chain drops it, so this
//! table can only take away, never open what the operator's own rules close):
//! - `input`: a container reaches nothing of the host (any address, any port: loopback
//!   services, the LAN address, Wharf's listeners) but the gateway's DNS port and the add-on
//!   ports; replies to connections the host opened (the router's) pass.
//! - `forward`, `oifname <bridge>`: nothing opens a connection to a container, not the
//!   outside, not another container through the gateway (isolated bridge ports already keep
//!   containers apart on the link).
//! - `forward`, from the bridge: per-container packet rate and connection count limits; the
//!   operator's `WHARF_DYNO_ALLOW` and remote add-on servers pass; every other special-use or
//!   internal block (link-local metadata, RFC 1918, CGNAT, benchmarking, reserved, ...; not
//!   the documentation blocks, which are nobody's network) and every network the host routes
//!   to but by its default route (its LAN, VPNs, other bridges) is refused; the internet
//!   passes.
//! - `postrouting`: containers' connections (arriving from the bridge) leave with the host's
//!   address (masquerade); the host's own connections from the gateway address keep it.
//! - With `keep_host_unrouted` (Wharf turned `ip_forward` on), forwarding that involves no
//!   container is dropped, so the host routes for nobody else because of Wharf.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Stdio;

use anyhow::{bail, Context};

use crate::settings::{v4_cidr, Settings};

/// Connections one container may have tracked at once (new ones are refused above it).
pub const CONNECTIONS_PER_CONTAINER: u32 = 4096;
/// Packets per second one container may send through the host (bursts of
/// [`PACKET_BURST`]); more are dropped.
pub const PACKETS_PER_SECOND: u32 = 50_000;
pub const PACKET_BURST: u32 = 10_000;

/// What the ruleset is made from.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub settings: &'a Settings,
    /// Drop forwarded traffic that involves no container (Wharf turned forwarding on).
    pub keep_host_unrouted: bool,
    /// Networks the host routes to (its LAN, VPNs, other bridges): refused like the
    /// special blocks, whatever their addresses, unless allowed.
    pub host_networks: &'a [(Ipv4Addr, u8)],
}

/// The whole transaction: create the table if missing, delete it, create it anew.
pub fn ruleset(plan: &Plan<'_>) -> String {
    let settings = plan.settings;
    let (name, bridge) = (&settings.name, &settings.name);
    let subnet = settings.subnet;
    let gateway = subnet.gateway();
    let mut host_ports: Vec<u16> = Vec::new();
    let mut remote: Vec<SocketAddrV4> = Vec::new();
    for endpoint in &settings.addon_endpoints {
        if *endpoint.ip() == gateway {
            host_ports.push(endpoint.port());
        } else {
            remote.push(*endpoint);
        }
    }
    host_ports.sort_unstable();
    host_ports.dedup();
    let mut host_port_elements: Vec<String> = host_ports.iter().map(u16::to_string).collect();
    host_port_elements.extend(
        settings
            .addon_port_ranges
            .iter()
            .map(|(low, high)| format!("{low}-{high}")),
    );
    let mut allow_all = Vec::new();
    let mut allow_ports = Vec::new();
    for entry in settings.allow.entries() {
        if let Some((network, prefix)) = v4_cidr(&entry.cidr) {
            match entry.port {
                None => allow_all.push(format!("{network}/{prefix}")),
                Some(port) => allow_ports.push(format!("{network}/{prefix} . {port}")),
            }
        }
    }
    allow_ports.extend(
        remote
            .iter()
            .map(|e| format!("{}/32 . {}", e.ip(), e.port())),
    );
    // The documentation blocks are assigned to no network, internal or not, so refusing them
    // protects nothing; labs and test networks use them for the internet's stand-in.
    let special: Vec<String> = wharf_outbound::special_v4_blocks()
        .iter()
        .filter(|(_, what)| what != "documentation")
        .filter_map(|(cidr, _)| v4_cidr(cidr))
        .chain(plan.host_networks.iter().copied())
        .map(|(network, prefix)| format!("{network}/{prefix}"))
        .collect();

    let mut out = String::new();
    let _ = writeln!(out, "table inet {name} {{}}\ndelete table inet {name}");
    let _ = writeln!(out, "table inet {name} {{");
    let _ = writeln!(
        out,
        "  set special {{ type ipv4_addr; flags interval; auto-merge; elements = {{ {} }} }}",
        special.join(", ")
    );
    set(
        &mut out,
        "allow_all",
        "ipv4_addr; flags interval",
        &allow_all,
    );
    set(
        &mut out,
        "allow_ports",
        "ipv4_addr . inet_service; flags interval",
        &allow_ports,
    );
    set(
        &mut out,
        "host_ports",
        "inet_service; flags interval; auto-merge",
        &host_port_elements,
    );
    let _ = writeln!(
        out,
        "  set connections {{ type ipv4_addr; size 65535; flags dynamic; }}\n  \
         set rates {{ type ipv4_addr; size 65535; flags dynamic,timeout; timeout 1m; }}"
    );
    let _ = writeln!(
        out,
        "  chain input {{\n    type filter hook input priority filter - 10; policy accept;\n    \
         iifname != \"{bridge}\" accept\n    \
         ct state established,related accept\n    \
         ip daddr {gateway} meta l4proto {{ tcp, udp }} th dport 53 accept\n    \
         ip daddr {gateway} tcp dport @host_ports accept\n    \
         meta l4proto tcp reject with tcp reset\n    \
         reject with icmpx admin-prohibited\n  }}"
    );
    let unrouted = if plan.keep_host_unrouted {
        format!("    iifname != \"{bridge}\" drop\n")
    } else {
        format!("    iifname != \"{bridge}\" accept\n")
    };
    let _ = writeln!(
        out,
        "  chain forward {{\n    type filter hook forward priority filter - 10; policy accept;\n    \
         oifname \"{bridge}\" ct state established,related accept\n    \
         oifname \"{bridge}\" meta l4proto tcp reject with tcp reset\n    \
         oifname \"{bridge}\" reject with icmpx admin-prohibited\n\
         {unrouted}    \
         ct state established,related accept\n    \
         ip saddr != {subnet} drop\n    \
         update @rates {{ ip saddr limit rate over {PACKETS_PER_SECOND}/second burst {PACKET_BURST} packets }} drop\n    \
         ct state new add @connections {{ ip saddr ct count over {CONNECTIONS_PER_CONTAINER} }} reject with icmpx admin-prohibited\n    \
         ip daddr @allow_all accept\n    \
         ip daddr . th dport @allow_ports accept\n    \
         ip daddr @special reject with icmpx admin-prohibited\n    \
         meta nfproto ipv6 reject with icmpx admin-prohibited\n    \
         accept\n  }}"
    );
    let _ = writeln!(
        out,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         iifname \"{bridge}\" ip saddr {subnet} oifname != \"{bridge}\" masquerade\n  }}\n}}"
    );
    out
}

fn set(out: &mut String, name: &str, typ: &str, elements: &[String]) {
    if elements.is_empty() {
        let _ = writeln!(out, "  set {name} {{ type {typ}; }}");
    } else {
        let _ = writeln!(
            out,
            "  set {name} {{ type {typ}; elements = {{ {} }} }}",
            elements.join(", ")
        );
    }
}

/// Loads a ruleset (one atomic transaction).
pub async fn apply(ruleset: &str) -> anyhow::Result<()> {
    let ruleset = ruleset.to_owned();
    blocking(move || nft(&["-f", "-"], Some(&ruleset))).await
}

/// Deletes the table `name` (nothing when there is none). Blocking: run at shutdown.
pub fn remove_blocking(name: &str) -> anyhow::Result<()> {
    let ruleset = format!("table inet {name} {{}}\ndelete table inet {name}\n");
    nft(&["-f", "-"], Some(&ruleset))
}

/// Whether `nft` runs here: a clear error (what to install) when it does not.
pub async fn check_available() -> anyhow::Result<()> {
    blocking(|| nft(&["--version"], None)).await.context(
        "nftables is needed for the dyno firewall: install it (Debian: apt-get install nftables)",
    )
}

async fn blocking(run: impl FnOnce() -> anyhow::Result<()> + Send + 'static) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(run)
        .await
        .context("run nft: task failed")?
}

/// Runs `nft` with `args`, `input` on its stdin.
fn nft(args: &[&str], input: Option<&str>) -> anyhow::Result<()> {
    let mut child = std::process::Command::new("nft")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("run nft")?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).context("write to nft")?;
    }
    let output = child.wait_with_output().context("wait for nft")?;
    if !output.status.success() {
        bail!(
            "nft {}: {} (is the kernel missing nf_tables, nf_nat or nf_conncount modules?)",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(allow: &str) -> Settings {
        let mut settings = Settings::parse("wt7", "198.19.7.0/24", allow, "").unwrap();
        settings.addon_endpoints = vec![
            "198.19.7.1:5432".parse().unwrap(),
            "198.19.7.1:6379".parse().unwrap(),
            "10.9.8.7:5433".parse().unwrap(),
        ];
        settings.addon_port_ranges = vec![(16400, 16999)];
        settings
    }

    #[test]
    fn ruleset_replaces_the_table_and_opens_exactly_the_addons() {
        let settings = settings("198.18.0.4/30,10.1.0.0/16:443");
        let rules = ruleset(&Plan {
            settings: &settings,
            keep_host_unrouted: true,
            host_networks: &[(Ipv4Addr::new(192, 0, 2, 0), 24)],
        });
        assert!(
            rules.contains("192.0.2.0/24"),
            "the host's own LAN, whatever its block"
        );
        assert!(rules.starts_with("table inet wt7 {}\ndelete table inet wt7\ntable inet wt7 {"));
        assert!(rules.contains(
            "set host_ports { type inet_service; flags interval; auto-merge; \
             elements = { 5432, 6379, 16400-16999 } }"
        ));
        assert!(rules.contains("elements = { 10.1.0.0/16 . 443, 10.9.8.7/32 . 5433 }"));
        assert!(rules.contains(
            "set allow_all { type ipv4_addr; flags interval; elements = { 198.18.0.4/30 } }"
        ));
        for refused in [
            "169.254.0.0/16",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "198.18.0.0/15",
            "127.0.0.0/8",
        ] {
            assert!(rules.contains(refused), "{refused}");
        }
        assert!(
            !rules.contains("203.0.113.0/24"),
            "documentation blocks are nobody's network"
        );
        assert!(rules.contains("ip daddr 198.19.7.1 meta l4proto { tcp, udp } th dport 53 accept"));
        assert!(rules.contains("iifname != \"wt7\" drop"));
        // Containers' connections only: the host's own from the gateway address (the add-on
        // probes') keep their source.
        assert!(
            rules.contains("iifname \"wt7\" ip saddr 198.19.7.0/24 oifname != \"wt7\" masquerade")
        );
        let open = ruleset(&Plan {
            settings: &settings,
            keep_host_unrouted: false,
            host_networks: &[],
        });
        assert!(open.contains("iifname != \"wt7\" accept\n    ct state"));
    }

    #[test]
    fn empty_sets_have_no_elements() {
        let mut settings = settings("");
        settings.addon_endpoints.clear();
        settings.addon_port_ranges.clear();
        let rules = ruleset(&Plan {
            settings: &settings,
            keep_host_unrouted: false,
            host_networks: &[],
        });
        assert!(rules.contains("set host_ports { type inet_service; flags interval; auto-merge; }"));
        assert!(rules.contains("set allow_all { type ipv4_addr; flags interval; }"));
    }
}
