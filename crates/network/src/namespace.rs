//! A network namespace per container: made by a short-lived thread that leaves the host's
//! namespace (`unshare`), configured from inside and outside over netlink, and kept alive by
//! a file descriptor the runtime joins through `/proc/<pid>/fd/<fd>`. Nothing is mounted: a
//! namespace goes when its last process and that descriptor are gone, so a killed server
//! leaves none behind (its veth pair goes with it).

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use anyhow::Context;

use crate::netlink::Netlink;

/// The name of a container's interface inside its namespace.
pub const INSIDE_NAME: &str = "eth0";

/// Where one container's interface goes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The host end of the veth pair.
    pub veth: String,
    pub bridge: u32,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// A configured namespace, alive while this is.
#[derive(Debug)]
pub struct Namespace {
    fd: OwnedFd,
}

impl Namespace {
    /// The path a runtime opens to join the namespace: this process's descriptor.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}

/// Makes the namespace of `plan`: loopback up, `eth0` with the address and a default route
/// through the gateway, the host end a port of the bridge, up and isolated. A few system
/// calls and netlink round trips, on a thread of its own (never a pooled one: `unshare`
/// moves the thread into the new namespace for good).
pub async fn create(plan: &Plan) -> anyhow::Result<Namespace> {
    let plan = plan.clone();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wharf-netns".to_owned())
        .spawn(move || {
            let _ = sender.send(create_on_this_thread(&plan));
        })
        .context("start a thread to make a network namespace")?;
    receiver
        .await
        .map_err(|_| anyhow::anyhow!("the thread making a network namespace panicked"))?
}

/// Runs on a thread that ends afterwards: `unshare` moves it into the new namespace for good.
fn create_on_this_thread(plan: &Plan) -> anyhow::Result<Namespace> {
    // A socket keeps the namespace it was opened in: this one stays the host's.
    let mut host = Netlink::open()?;
    // Sound: only the network namespace is unshared, and this thread ends right after;
    // nothing about file descriptors changes (the concern of `unshare_unsafe` is `FILES`).
    #[allow(deprecated)]
    rustix::thread::unshare(rustix::thread::UnshareFlags::NEWNET)
        .context("unshare the network namespace")?;
    let fd = rustix::fs::open(
        "/proc/thread-self/ns/net",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .context("open the new network namespace")?;
    let mut inside = Netlink::open()?;
    host.create_veth(&plan.veth, plan.bridge, INSIDE_NAME, fd.as_fd())?;
    let configured = (|| {
        host.isolate_port(&plan.veth)?;
        let links = inside.links()?;
        let index = |name: &str| links.iter().find(|link| link.name == name).map(|l| l.index);
        let loopback = index("lo").context("no loopback")?;
        let eth0 = index(INSIDE_NAME).context("the veth's inside end did not arrive")?;
        inside.set_up(loopback)?;
        inside.add_address(eth0, plan.address, plan.prefix)?;
        inside.set_up(eth0)?;
        inside.add_default_route(plan.gateway)?;
        host.forget_neighbour(plan.bridge, plan.address)
    })();
    if let Err(error) = configured {
        let _ = host.delete_link(&plan.veth);
        return Err(error);
    }
    Ok(Namespace { fd })
}
