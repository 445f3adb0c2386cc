//! Test support (feature `test-net`): a network namespace of the test's own, joined to this
//! one by a veth pair, so that a test's receivers (an rsyslog, an HTTPS server) have an
//! address that is not one of this host's. Drains can then reach them under the same policy
//! as production, with the namespace's block allowed, and traffic never leaves the machine.
//!
//! Each `TestNet` takes a free `/30` of `198.18.0.0/16`, the lower half of the benchmarking
//! block (never routed on the internet; the upper half, `198.19.0.0/16`, is Wharf's dyno
//! network by default): `.1` is this side of the pair (an address of this host, so the policy refuses
//! it), `.2` the namespace's side. Dropping it deletes the namespace, which deletes the pair.
//! Needs root and `ip` (iproute2).

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::cidr::Cidr;

/// The block test namespaces take their addresses from: what a test's policy allows.
pub const TEST_BLOCK: &str = "198.18.0.0/16";
/// Namespaces are named `wharf-test-<pid>-<n>`, so stale ones of dead test processes can be
/// found and deleted.
const PREFIX: &str = "wharf-test-";

/// Held while a namespace is made (released when the file closes).
const LOCK_FILE: &str = "/run/wharf-test-net.lock";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with one address, reachable from this one.
pub struct TestNet {
    name: String,
    /// This side of the veth pair (an address of this host).
    pub host: Ipv4Addr,
    /// The namespace's side: where its receivers listen.
    pub peer: Ipv4Addr,
}

impl TestNet {
    /// Creates the namespace and the pair, with the first free `/30` of [`TEST_BLOCK`].
    pub fn create() -> Result<TestNet, String> {
        let (_lock, start, name, id) = new_namespace()?;
        let (outside, inside) = (format!("wo{id}"), format!("wi{id}"));
        let block = free_block(start, 30)?;
        let (host, peer) = (nth(block, 1), nth(block, 2));
        ip(&["netns", "add", &name])?;
        let net = TestNet { name, host, peer };
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &net.name,
        ])?;
        ip(&["addr", "add", &format!("{host}/30"), "dev", &outside])?;
        ip(&["link", "set", &outside, "up"])?;
        net.exec(&["addr", "add", &format!("{peer}/30"), "dev", &inside])?;
        net.exec(&["link", "set", &inside, "up"])?;
        net.exec(&["link", "set", "lo", "up"])?;
        Ok(net)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A TCP listener inside the namespace on the peer address (`port` 0: any free port).
    /// The socket is made by a thread that joined the namespace; it stays there, and any
    /// thread may accept on it.
    pub fn listen(&self, port: u16) -> std::io::Result<TcpListener> {
        listen_in(&self.name, self.peer, port)
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`; `ip` execs it, so
    /// the child is the program itself).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A new namespace's name and the id its links are named by.
fn namespace_name() -> (String, String) {
    let pid = std::process::id();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    (
        format!("{PREFIX}{pid}-{n}"),
        format!("{:x}", (pid << 8) ^ n),
    )
}

/// Before a namespace takes addresses: the machine-wide lock (held until the returned file
/// closes: one creation at a time, so that two never take the same block) with stale
/// namespaces gone, where to start looking for a free block, the name and the id.
fn new_namespace() -> Result<(File, u32, String, String), String> {
    let lock = File::create(LOCK_FILE).map_err(|error| format!("create {LOCK_FILE}: {error}"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|error| format!("lock {LOCK_FILE}: {error}"))?;
    remove_stale();
    let (name, id) = namespace_name();
    let start = std::process::id()
        .wrapping_mul(64)
        .wrapping_add(COUNTER.load(Ordering::SeqCst));
    Ok((lock, start, name, id))
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("run ip (iproute2): {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// The first block of `prefix` bits in the test block, from `start` on, with no address of
/// this host in it: its network address.
fn free_block(start: u32, prefix: u32) -> Result<Ipv4Addr, String> {
    let own = crate::own::read()?;
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    // `198.18.0.0/16` only: `198.19.0.0/16` holds dyno networks.
    let blocks: u32 = 1 << (prefix - 16);
    for offset in 0..blocks {
        let network = base + ((start.wrapping_add(offset) % blocks) << (32 - prefix));
        let block = Cidr::containing(IpAddr::V4(Ipv4Addr::from(network)), prefix as u8)?;
        let taken = own
            .iter()
            .any(|cidr| block.covers(cidr) || cidr.covers(&block));
        if !taken {
            return Ok(Ipv4Addr::from(network));
        }
    }
    Err(format!("no free /{prefix} left in {TEST_BLOCK}"))
}

/// The `n`th address of the block at `network`.
fn nth(network: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(network) + n)
}

/// A LAN of the test's own: a namespace holding a bridge (the switch), with this namespace on
/// it at `.1` of a free `/24` of [`TEST_BLOCK`] and a namespace per [`TestLan::join`] at the
/// next addresses. Members reach each other over the bridge, never through this namespace's
/// forwarding or firewall. Dropping it deletes the bridge's namespace (and so this side's
/// link); each member's namespace goes with its [`TestNet`].
pub struct TestLan {
    name: String,
    /// This namespace's address on the LAN.
    pub host: Ipv4Addr,
    network: Ipv4Addr,
    members: AtomicU32,
}

/// The bridge in a [`TestLan`]'s namespace.
const LAN_BRIDGE: &str = "lan0";

impl TestLan {
    pub fn create() -> Result<TestLan, String> {
        let (_lock, start, name, id) = new_namespace()?;
        let network = free_block(start, 24)?;
        ip(&["netns", "add", &name])?;
        let lan = TestLan {
            name,
            host: nth(network, 1),
            network,
            members: AtomicU32::new(1),
        };
        lan.exec(&["link", "add", LAN_BRIDGE, "type", "bridge"])?;
        lan.exec(&["link", "set", LAN_BRIDGE, "up"])?;
        let (outside, inside) = (format!("wo{id}"), format!("wl{id}"));
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &lan.name,
        ])?;
        lan.exec(&["link", "set", &inside, "master", LAN_BRIDGE, "up"])?;
        ip(&["addr", "add", &format!("{}/24", lan.host), "dev", &outside])?;
        ip(&["link", "set", &outside, "up"])?;
        Ok(lan)
    }

    /// A new namespace on the LAN, at its next address (`host` is this namespace's).
    pub fn join(&self) -> Result<TestNet, String> {
        let member = self.members.fetch_add(1, Ordering::SeqCst) + 1;
        if member > 254 {
            return Err("a test LAN holds 253 members".to_owned());
        }
        let (name, id) = namespace_name();
        ip(&["netns", "add", &name])?;
        let net = TestNet {
            name,
            host: self.host,
            peer: nth(self.network, member),
        };
        let (outside, inside) = (format!("wl{id}"), format!("wi{id}"));
        ip(&[
            "-n", &self.name, "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            "netns", &net.name,
        ])?;
        self.exec(&["link", "set", &outside, "master", LAN_BRIDGE, "up"])?;
        net.exec(&["addr", "add", &format!("{}/24", net.peer), "dev", &inside])?;
        net.exec(&["link", "set", &inside, "up"])?;
        net.exec(&["link", "set", "lo", "up"])?;
        Ok(net)
    }

    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for TestLan {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Deletes the namespaces of test processes that died before dropping theirs.
fn remove_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Where cloud metadata services answer.
pub const METADATA_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// A namespace holding the cloud metadata address, `169.254.169.254`, with this host's route
/// to that address pointing into it: whatever a firewall under test does, packets to it
/// cannot leave the machine. The route is the host's, so one exists at a time: `create`
/// waits (up to a minute) for another process's to go. Dropping it deletes the namespace,
/// its veth pair and the route.
pub struct MetadataNet {
    name: String,
}

impl MetadataNet {
    pub fn create() -> Result<MetadataNet, String> {
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{pid}-{n}");
        let id = format!("{:x}", (pid << 8) ^ n);
        let (outside, inside) = (format!("mo{id}"), format!("mi{id}"));
        ip(&["netns", "add", &name])?;
        let net = MetadataNet { name };
        let address = format!("{METADATA_ADDRESS}/32");
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &net.name,
        ])?;
        ip(&["link", "set", &outside, "up"])?;
        for args in [
            vec!["addr", "add", &address, "dev", &inside],
            vec!["link", "set", &inside, "up"],
            vec!["link", "set", "lo", "up"],
            vec!["route", "add", "default", "dev", &inside],
        ] {
            let mut all = vec!["netns", "exec", &net.name, "ip"];
            all.extend(args);
            ip(&all)?;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Err(error) = ip(&["route", "add", &address, "dev", &outside]) {
            if std::time::Instant::now() > deadline {
                return Err(format!("route {address} into the namespace: {error}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(net)
    }

    /// A TCP listener inside the namespace on the metadata address.
    pub fn listen(&self, port: u16) -> std::io::Result<TcpListener> {
        listen_in(&self.name, METADATA_ADDRESS, port)
    }
}

impl Drop for MetadataNet {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A TCP listener on `address:port` made by a thread that joined namespace `name`; it stays
/// there, and any thread may accept on it.
fn listen_in(name: &str, address: Ipv4Addr, port: u16) -> std::io::Result<TcpListener> {
    let path = format!("/run/netns/{name}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = File::open(&path)?;
                rustix::thread::move_into_link_name_space(
                    namespace.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                TcpListener::bind((address, port))
            })
            .join()
            .expect("the listening thread does not panic")
    })
}
