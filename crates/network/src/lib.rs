//! The dyno network: every container Wharf starts (formation, one-off and release-phase
//! dynos, build steps) gets a network namespace of its own, joined by a veth pair to a bridge
//! of Wharf's own on the host, with an address of the operator's subnet
//! (`WHARF_DYNO_NETWORK`). An nftables table of Wharf's own decides what containers reach
//! (`firewall.rs`), NAT takes them to the internet, and a DNS forwarder on the gateway relays
//! to the host's resolvers (`dns.rs`).
//!
//! Invariants:
//! - Start-up keeps what running containers use and nothing else: a bridge that already has
//!   exactly the gateway's subnet stays, with the veths on it (their containers outlived the
//!   last server: [`DynoNetwork::survivors`], each either taken up with
//!   [`DynoNetwork::adopt`] or deleted by [`DynoNetwork::release_survivors`]); any other
//!   bridge of the name is made again, stray veths are deleted, and the table is replaced in
//!   one transaction. A clean stop removes the table and the bridge, unless containers are
//!   left running for the next server ([`DynoNetwork::leave_running`]).
//! - Nothing of the operator's is changed but `net.ipv4.ip_forward` (turned on when off, and
//!   then the table keeps the host from routing anything but containers' traffic); a subnet
//!   that overlaps a route or address of the host is refused at start.
//! - A container's namespace exists only while its descriptor ([`Attachment`]) or its
//!   processes do: nothing is mounted, so nothing outlives a killed server but the links,
//!   which the next start removes.
//! - Netlink only, in process: no `ip` command per container.

mod dns;
mod firewall;
mod namespace;
mod netlink;
mod settings;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

pub use firewall::{CONNECTIONS_PER_CONTAINER, PACKETS_PER_SECOND, PACKET_BURST};
pub use settings::{Settings, Subnet, DEFAULT_NAME, DEFAULT_SUBNET};

use crate::netlink::Netlink;

/// Host ends of containers' veth pairs are named this plus the container's address in hex
/// (unique on the host: subnets of two servers never overlap).
const VETH_PREFIX: &str = "wv";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// The kernel's main routing table.
const MAIN_TABLE: u32 = 254;
/// The host's resolvers, which the DNS forwarder relays to.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The network every container joins. Cheap to clone.
#[derive(Clone)]
pub struct DynoNetwork {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DynoNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynoNetwork")
            .field("name", &self.inner.settings.name)
            .field("subnet", &self.inner.settings.subnet)
            .finish()
    }
}

struct Inner {
    settings: Settings,
    bridge: u32,
    addresses: Mutex<Addresses>,
    shutdown: CancellationToken,
    /// Set by [`DynoNetwork::leave_running`]: the links and the table stay at the end.
    left_running: std::sync::atomic::AtomicBool,
}

/// Container addresses in use, handed out round-robin so that an address just released (and
/// perhaps still in a neighbour cache or a connection pool) is the last to be reused.
struct Addresses {
    next: u32,
    held: HashSet<u32>,
    /// Addresses whose veths were on the bridge at start, not yet adopted or released
    /// (also in `held`).
    survivors: HashSet<u32>,
}

impl DynoNetwork {
    /// Sets the network up (see the crate's invariants), or says clearly why it cannot: a
    /// subnet that overlaps the host's networks, a missing `nft`, a kernel without the
    /// modules. Needs root.
    pub async fn start(settings: Settings) -> anyhow::Result<DynoNetwork> {
        firewall::check_available().await?;
        let (name, subnet) = (settings.name.clone(), settings.subnet);
        let Links {
            bridge,
            host_networks,
            survivors,
        } = tokio::task::spawn_blocking(move || prepare_links(&name, subnet))
            .await
            .context("prepare the bridge: task failed")??;
        let shutdown = CancellationToken::new();
        let turned_forwarding_on = std::sync::atomic::AtomicBool::new(false);
        let configured = async {
            let keep_host_unrouted = enable_forwarding()?;
            turned_forwarding_on.store(keep_host_unrouted, std::sync::atomic::Ordering::SeqCst);
            let ruleset = firewall::ruleset(&firewall::Plan {
                settings: &settings,
                keep_host_unrouted,
                host_networks: &host_networks,
            });
            firewall::apply(&ruleset)
                .await
                .with_context(|| format!("load the nftables table inet {}", settings.name))?;
            let resolvers = match settings.resolvers.is_empty() {
                true => {
                    dns::upstreams(&std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default())
                }
                false => settings.resolvers.clone(),
            };
            dns::serve(subnet.gateway(), resolvers, shutdown.clone()).await
        };
        if let Err(error) = configured.await {
            // Never a half-configured host: the bridge (and a table, if one was loaded) go, and
            // forwarding is off again if Wharf turned it on.
            shutdown.cancel();
            if turned_forwarding_on.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = std::fs::write(IP_FORWARD, "0");
            }
            let name = settings.name.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let _ = firewall::remove_blocking(&name);
                let _ = remove_links(&name, true);
            })
            .await;
            return Err(error);
        }
        tracing::info!(
            subnet = %subnet,
            bridge = %settings.name,
            gateway = %subnet.gateway(),
            "dyno network ready: table inet {} filters what containers reach",
            settings.name
        );
        Ok(DynoNetwork {
            inner: Arc::new(Inner {
                settings,
                bridge,
                addresses: Mutex::new(Addresses {
                    next: 0,
                    held: survivors.clone(),
                    survivors,
                }),
                shutdown,
                left_running: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The host as containers see it: their default route, DNS server and the address of
    /// add-on servers that run on the host.
    pub fn gateway(&self) -> Ipv4Addr {
        self.inner.settings.subnet.gateway()
    }

    /// A namespace for one container, with an address and its links. Released (links
    /// deleted, address free again) when the [`Attachment`] is dropped: keep it until the
    /// container is gone.
    pub async fn attach(&self) -> anyhow::Result<Attachment> {
        let address = self.allocate()?;
        let veth = veth_name(address);
        let plan = namespace::Plan {
            veth: veth.clone(),
            bridge: self.inner.bridge,
            address,
            prefix: self.inner.settings.subnet.prefix(),
            gateway: self.gateway(),
        };
        // Made before the namespace, so that a failure releases the address.
        let mut attachment = Attachment {
            network: self.inner.clone(),
            address,
            veth,
            namespace: None,
            owns_veth: false,
        };
        attachment.namespace = Some(namespace::create(&plan).await?);
        without_ipv6(&attachment.veth);
        Ok(attachment)
    }

    /// Addresses of the containers whose veths were on the bridge when the network started
    /// (they outlived the last server), not yet adopted or released.
    pub fn survivors(&self) -> Vec<Ipv4Addr> {
        let subnet = self.inner.settings.subnet;
        let mut survivors: Vec<Ipv4Addr> = self
            .addresses()
            .survivors
            .iter()
            .map(|n| subnet.container_address(*n))
            .collect();
        survivors.sort();
        survivors
    }

    /// Takes up the place of a container that outlived the last server (one of
    /// [`DynoNetwork::survivors`]), released like any attachment when dropped. Nothing here
    /// holds its namespace: it lives as long as the container's processes.
    pub fn adopt(&self, address: Ipv4Addr) -> anyhow::Result<Attachment> {
        let subnet = self.inner.settings.subnet;
        let n = u32::from(address).wrapping_sub(u32::from(subnet.container_address(0)));
        if !self.addresses().survivors.remove(&n) {
            bail!("{address} is not the address of a container that outlived the last server");
        }
        Ok(Attachment {
            network: self.inner.clone(),
            address,
            veth: veth_name(address),
            namespace: None,
            owns_veth: true,
        })
    }

    /// Deletes the veths of the survivors nobody adopted (their containers are gone or
    /// being removed) and frees their addresses.
    pub async fn release_survivors(&self) {
        let subnet = self.inner.settings.subnet;
        let left: Vec<u32> = self.addresses().survivors.drain().collect();
        let veths: Vec<String> = left
            .iter()
            .map(|n| veth_name(subnet.container_address(*n)))
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            let Ok(mut netlink) = Netlink::open() else {
                return;
            };
            for veth in veths {
                if let Err(error) = netlink.delete_link(&veth) {
                    tracing::warn!(veth = %veth, "delete a leftover veth: {error:#}");
                }
            }
        })
        .await;
        let mut addresses = self.addresses();
        for n in left {
            addresses.held.remove(&n);
        }
    }

    /// Leaves the bridge, the veths and the table in place when this server ends, for the
    /// containers it leaves running (the next server adopts them). The DNS relay still ends
    /// with the server.
    pub fn leave_running(&self) {
        self.inner
            .left_running
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, Addresses> {
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn allocate(&self) -> anyhow::Result<Ipv4Addr> {
        let subnet = self.inner.settings.subnet;
        let capacity = subnet.capacity();
        let mut addresses = self
            .inner
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for _ in 0..capacity {
            let n = addresses.next;
            addresses.next = (n + 1) % capacity;
            if addresses.held.insert(n) {
                return Ok(subnet.container_address(n));
            }
        }
        bail!(
            "every address of the dyno network {subnet} is in use ({capacity} containers): \
             give WHARF_DYNO_NETWORK a larger subnet"
        )
    }

    /// Removes the table and the bridge (clean shutdown, after every container stopped).
    /// Also done when the last handle (and attachment) goes; a killed server's are removed
    /// by the next start.
    pub async fn close(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.remove()).await;
    }

    /// [`DynoNetwork::close`], blocking the calling thread (for a `Drop`).
    pub fn close_blocking(&self) {
        self.inner.remove();
    }
}

impl Inner {
    fn remove(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        self.shutdown.cancel();
        // Containers an earlier server left, not yet taken up: this server ends before it
        // got to them (it failed to start), and the next one takes them up.
        let unclaimed = !self
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .survivors
            .is_empty();
        if unclaimed || self.left_running.load(std::sync::atomic::Ordering::SeqCst) {
            tracing::info!(
                bridge = %self.settings.name,
                "the dyno network stays for the containers left running"
            );
            return;
        }
        let name = &self.settings.name;
        if let Err(error) = firewall::remove_blocking(name) {
            tracing::warn!("remove the nftables table inet {name}: {error:#}");
        }
        if let Err(error) = remove_links(name, true) {
            tracing::warn!("remove the dyno network's links: {error:#}");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.remove();
    }
}

/// One container's place on the network: its namespace (joined by the runtime through
/// [`Attachment::namespace_path`]) and address.
pub struct Attachment {
    network: Arc<Inner>,
    address: Ipv4Addr,
    veth: String,
    namespace: Option<namespace::Namespace>,
    /// Adopted: its veth is deleted on release though no namespace is held here.
    owns_veth: bool,
}

impl Attachment {
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The path an OCI runtime joins the namespace by (valid while this lives).
    pub fn namespace_path(&self) -> PathBuf {
        self.namespace
            .as_ref()
            .map(namespace::Namespace::path)
            .unwrap_or_default()
    }

    /// The DNS server containers use.
    pub fn nameserver(&self) -> Ipv4Addr {
        self.network.settings.subnet.gateway()
    }

    /// Leaves the container's place to it (it runs on after this server): its veth stays,
    /// for the next server to [`DynoNetwork::adopt`].
    pub fn leave(mut self) {
        self.namespace = None;
        self.owns_veth = false;
    }
}

impl Drop for Attachment {
    /// The namespace goes with its last process, and its veth pair would follow it
    /// asynchronously; deleting the pair at once frees the name and the bridge port. That
    /// takes the kernel tens of milliseconds (it waits for the network stack to let go of
    /// the device), so it runs on a thread of its own, and the address is free again only
    /// once the pair is gone (its veth is named after it).
    fn drop(&mut self) {
        let had_namespace = self.namespace.take().is_some() || self.owns_veth;
        let (network, address, veth) = (self.network.clone(), self.address, self.veth.clone());
        let release = move || {
            if had_namespace {
                if let Err(error) =
                    Netlink::open().and_then(|mut netlink| netlink.delete_link(&veth))
                {
                    tracing::warn!(veth = %veth, "delete veth: {error:#}");
                }
            }
            let subnet = network.settings.subnet;
            let n = u32::from(address) - u32::from(subnet.container_address(0));
            network
                .addresses
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .held
                .remove(&n);
        };
        if !had_namespace {
            release();
        } else if let Err(error) = std::thread::Builder::new()
            .name("wharf-veth-del".to_owned())
            .spawn(release)
        {
            tracing::warn!("start a thread to delete a veth: {error}");
        }
    }
}

/// Turns IPv6 off on a host link of the network (the bridge, a veth's host end): containers
/// have IPv4 alone, and a link-local IPv6 address there would be one more address of the
/// host for them to try. A host without IPv6 has nothing to turn off.
fn without_ipv6(link: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    if std::path::Path::new(&path).exists() {
        if let Err(error) = std::fs::write(&path, "1") {
            tracing::warn!(link, "turn IPv6 off: {error}");
        }
    }
}

fn veth_name(address: Ipv4Addr) -> String {
    format!("{VETH_PREFIX}{:08x}", u32::from(address))
}

/// Removes what a killed server left, refuses a subnet that overlaps the host's networks,
/// and makes the bridge with exactly the gateway address, up. Its index, and the networks
/// the host routes to (its main table's routes but the default), which containers may not
/// reach unless the operator allows them: the host's LAN, VPNs, other bridges.
fn prepare_links(name: &str, subnet: Subnet) -> anyhow::Result<Links> {
    let mut netlink = Netlink::open()?;
    let existing = netlink.link_index(name)?;
    // A bridge of this subnet already (a server that left containers running, or was
    // killed): kept, with the veths on it, whose containers may be adopted.
    let keep = existing.is_some_and(|index| {
        netlink.routes().is_ok_and(|routes| {
            routes.iter().any(|route| {
                route.device == Some(index)
                    && route.table == MAIN_TABLE
                    && route.destination == subnet.network()
                    && route.prefix == subnet.prefix()
            })
        })
    });
    let survivors = if keep {
        keep_links(name, subnet)?
    } else {
        remove_links(name, false)?;
        HashSet::new()
    };
    let bridge = netlink.link_index(name)?;
    let routes = netlink.routes()?;
    let host_networks = routes
        .iter()
        .filter(|route| route.table == MAIN_TABLE && route.prefix > 0)
        .filter(|route| !(route.device.is_some() && route.device == bridge))
        .map(|route| (route.destination, route.prefix))
        .collect();
    for route in routes {
        let ours = route.device.is_some() && route.device == bridge;
        // The local table's broadcast and address routes of other links count: an address
        // of the host inside the subnet overlaps as much as a route does.
        if !ours && route.prefix > 0 && subnet.overlaps(route.destination, route.prefix) {
            bail!(
                "the dyno network {subnet} overlaps the host's route to {}/{} (table {}): \
                 choose another subnet with WHARF_DYNO_NETWORK (the default {DEFAULT_SUBNET} is \
                 a benchmarking block that LANs do not use)",
                route.destination,
                route.prefix,
                route.table
            );
        }
    }
    if let (true, Some(bridge)) = (keep, bridge) {
        netlink.set_up(bridge)?;
        return Ok(Links {
            bridge,
            host_networks,
            survivors,
        });
    }
    if bridge.is_some() {
        // Recreated so that it has the gateway address alone, whatever a run with another
        // subnet gave it.
        netlink.delete_link(name)?;
    }
    // Locally administered, unicast, and the gateway's address in it: unique per host.
    let [a, b, c, d] = subnet.gateway().octets();
    let bridge = netlink.create_bridge(name, [0x02, 0x77, a, b, c, d])?;
    without_ipv6(name);
    netlink.add_address(bridge, subnet.gateway(), subnet.prefix())?;
    netlink.set_up(bridge)?;
    Ok(Links {
        bridge,
        host_networks,
        survivors,
    })
}

/// The bridge as start-up left it: its index, the networks the host routes to, and the
/// addresses (offsets in the subnet) of the veths kept on it.
struct Links {
    bridge: u32,
    host_networks: Vec<(Ipv4Addr, u8)>,
    survivors: HashSet<u32>,
}

/// Deletes the stray veths (named like a container's, on no bridge) and returns the
/// addresses (as offsets in `subnet`) of the veths on bridge `name`.
fn keep_links(name: &str, subnet: Subnet) -> anyhow::Result<HashSet<u32>> {
    let mut netlink = Netlink::open()?;
    let links = netlink.links()?;
    let bridge = links.iter().find(|link| link.name == name).map(|l| l.index);
    let first = u32::from(subnet.container_address(0));
    let mut survivors = HashSet::new();
    for link in links.iter().filter(|link| is_veth_name(&link.name)) {
        let on_bridge = bridge.is_some() && link.master == bridge;
        let n = u32::from_str_radix(&link.name[VETH_PREFIX.len()..], 16)
            .map_or(u32::MAX, |address| address.wrapping_sub(first));
        if on_bridge && n < subnet.capacity() {
            survivors.insert(n);
        } else if link.master.is_none() || on_bridge {
            netlink.delete_link(&link.name)?;
        }
    }
    Ok(survivors)
}

/// Deletes every veth attached to bridge `name` and every unattached one named like a
/// container's; with `bridge_too`, the bridge itself.
fn remove_links(name: &str, bridge_too: bool) -> anyhow::Result<()> {
    let mut netlink = Netlink::open()?;
    let links = netlink.links()?;
    let bridge = links.iter().find(|link| link.name == name).map(|l| l.index);
    for link in &links {
        let on_bridge = bridge.is_some() && link.master == bridge;
        let stray = link.master.is_none() && is_veth_name(&link.name);
        if on_bridge || stray {
            netlink.delete_link(&link.name)?;
        }
    }
    if bridge_too && bridge.is_some() {
        netlink.delete_link(name)?;
    }
    Ok(())
}

fn is_veth_name(name: &str) -> bool {
    name.strip_prefix(VETH_PREFIX)
        .is_some_and(|hex| hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Turns IPv4 forwarding on (NAT for containers needs it); true when Wharf turned it on,
/// so that the firewall keeps the host from forwarding anything else.
fn enable_forwarding() -> anyhow::Result<bool> {
    let current =
        std::fs::read_to_string(IP_FORWARD).with_context(|| format!("read {IP_FORWARD}"))?;
    if current.trim() == "1" {
        return Ok(false);
    }
    std::fs::write(IP_FORWARD, "1").with_context(|| format!("turn on {IP_FORWARD}"))?;
    tracing::info!(
        "turned on net.ipv4.ip_forward for the dyno network's NAT; forwarding that involves no \
         container stays dropped"
    );
    Ok(true)
}

/// Settings for a test's own network: a name and a `/24` of `198.19.41-100.0/16` that no
/// other network of this process has (other tests take other parts of the block), and no DNS
/// (a closed loopback port).
#[cfg(feature = "test-support")]
pub fn test_settings() -> Settings {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let k = (std::process::id().wrapping_mul(13).wrapping_add(n * 7)) % 60 + 41;
    Settings::parse(
        &format!("wts{k}"),
        &format!("198.19.{k}.0/24"),
        "",
        "127.0.0.1:9",
    )
    .expect("valid test settings")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names() {
        let name = veth_name(Ipv4Addr::new(198, 19, 0, 2));
        assert_eq!(name, "wvc6130002");
        assert!(name.len() <= 15);
        assert!(is_veth_name(&name));
        assert!(!is_veth_name("wvc61300"));
        assert!(!is_veth_name("eth0"));
    }
}
