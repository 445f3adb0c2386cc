//! The dyno network against the real kernel: namespaces, veths on a bridge, the nftables
//! table, NAT and the DNS forwarder. Each check connects from inside a container's namespace
//! (a thread that joined it) to a place a dyno must or must not reach. Every destination is
//! on this host or in a network namespace the test made: nothing leaves the machine, even if
//! a rule were wrong (the metadata address is routed into a namespace of the test's own).
//! Needs root, `nft` and `ip`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use wharf_network::{DynoNetwork, Settings};
use wharf_outbound::test_net::{MetadataNet, TestNet};

const TIMEOUT: Duration = Duration::from_secs(2);

/// A name and a /24 of 198.19.0.0/16 of this test process's own: `198.19.1-40.0/24` are
/// these tests' (`test_settings` and the end-to-end harness take others).
fn unique(n: u32) -> (String, String) {
    let k = (std::process::id() * 7 + n) % 40 + 1;
    (format!("wnt{k}"), format!("198.19.{k}.0/24"))
}

/// Runs `f` on a thread that joined the network namespace at `path`.
fn inside<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = File::open(path).unwrap();
                rustix::thread::move_into_link_name_space(
                    namespace.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap();
                f()
            })
            .join()
            .unwrap()
    })
}

fn reaches(address: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&address, TIMEOUT) {
        Ok(mut stream) => {
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            answer == "hello"
        }
        Err(_) => false,
    }
}

/// A listener that greets every connection with "hello".
fn greeter(listener: TcpListener) -> SocketAddr {
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let peer = stream.peer_addr().unwrap();
            let _ = stream.write_all(b"hello");
            PEERS.lock().unwrap().push((address, peer));
        }
    });
    address
}

static PEERS: std::sync::Mutex<Vec<(SocketAddr, SocketAddr)>> = std::sync::Mutex::new(Vec::new());

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

fn links() -> String {
    String::from_utf8(
        Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

fn tables() -> String {
    String::from_utf8(
        Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

/// A DNS server on a loopback address, standing in for the host's resolver (a
/// systemd-resolved at 127.0.0.53): it answers each query with its bytes and "!".
fn loopback_resolver() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        loop {
            let (length, from) = socket.recv_from(&mut buffer).unwrap();
            let mut answer = buffer[..length].to_vec();
            answer.push(b'!');
            socket.send_to(&answer, from).unwrap();
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_reach_the_internet_their_addons_and_dns_only() {
    let (name, subnet) = unique(0);
    let internet = TestNet::create().unwrap();
    let lan = TestNet::create().unwrap();
    let metadata = MetadataNet::create().unwrap();
    let resolver = loopback_resolver();

    // Host services: one on every address standing in for an add-on server, one for
    // everything else of the host (PostgreSQL with trust, the API, ...).
    let addon = greeter(TcpListener::bind("0.0.0.0:0").unwrap());
    // A server of a range of add-on ports (a `redis-server` per add-on).
    let ranged_addon = greeter(TcpListener::bind("0.0.0.0:0").unwrap());
    let host_service = greeter(TcpListener::bind("0.0.0.0:0").unwrap());
    let internet_service = greeter(internet.listen(0).unwrap());
    let lan_service = greeter(lan.listen(0).unwrap());
    let metadata_service = greeter(metadata.listen(80).unwrap());

    let mut settings = Settings::parse(
        &name,
        &subnet,
        &internet.peer.to_string(),
        &resolver.to_string(),
    )
    .unwrap();
    let gateway = settings.subnet.gateway();
    settings.addon_endpoints = vec![std::net::SocketAddrV4::new(gateway, addon.port())];
    settings.addon_port_ranges = vec![(ranged_addon.port() - 1, ranged_addon.port())];
    let network = DynoNetwork::start(settings).await.unwrap();
    assert_eq!(network.gateway(), gateway);
    let bridge_mac = || std::fs::read_to_string(format!("/sys/class/net/{name}/address")).unwrap();
    let mac = bridge_mac();
    let a = network.attach().await.unwrap();
    let b = network.attach().await.unwrap();
    assert_ne!(a.address(), b.address());
    // Containers cache it as their gateway's: ports coming and going never change it.
    assert_eq!(bridge_mac(), mac);
    let b_service = inside(&b.namespace_path(), || {
        greeter(TcpListener::bind((b.address(), 0)).unwrap())
    });
    let a_path = a.namespace_path();

    let at = |ip: Ipv4Addr, port: u16| SocketAddr::from((ip, port));
    let results = inside(&a_path, || {
        let dns = {
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            socket.set_read_timeout(Some(TIMEOUT)).unwrap();
            socket.send_to(b"\x42\x42q", (gateway, 53)).unwrap();
            let mut buffer = [0u8; 64];
            socket.recv(&mut buffer).map(|n| buffer[..n].to_vec()).ok()
        };
        (
            reaches(at(gateway, addon.port())),
            reaches(at(gateway, ranged_addon.port())),
            reaches(at(gateway, host_service.port())),
            reaches(at(internet.host, host_service.port())),
            reaches(b_service),
            reaches(internet_service),
            reaches(lan_service),
            reaches(metadata_service),
            dns,
        )
    });
    let (
        addon_ok,
        ranged_addon_ok,
        gateway_service,
        host_lan_address,
        other_container,
        internet_ok,
        lan_ok,
        metadata_ok,
        dns,
    ) = results;
    assert!(addon_ok, "the add-on port on the gateway is open");
    assert!(
        ranged_addon_ok,
        "a port of an add-on range on the gateway is open"
    );
    assert!(!gateway_service, "no other port of the host at the gateway");
    assert!(
        !host_lan_address,
        "no port of the host at its other addresses"
    );
    assert!(!other_container, "no other container");
    assert!(internet_ok, "the (allowed) internet, through NAT");
    assert!(!lan_ok, "no internal network the operator did not allow");
    assert!(!metadata_ok, "never the metadata address");
    assert_eq!(
        dns.as_deref(),
        Some(&b"\x42\x42q!"[..]),
        "DNS through the host's loopback resolver"
    );
    let nat_source = PEERS
        .lock()
        .unwrap()
        .iter()
        .find(|(listener, _)| *listener == internet_service)
        .map(|(_, peer)| peer.ip());
    assert_eq!(
        nat_source,
        Some(std::net::IpAddr::V4(internet.host)),
        "the internet sees the host's address, not the container's"
    );

    // Released with their attachments; the table and bridge go with a clean close.
    let (veth_a, veth_b) = (
        format!("wv{:08x}", u32::from(a.address())),
        format!("wv{:08x}", u32::from(b.address())),
    );
    assert!(links().contains(&veth_a));
    drop((a, b));
    // Deleted on a thread of their own: a deletion takes the kernel tens of milliseconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while links().contains(&veth_a) || links().contains(&veth_b) {
        assert!(std::time::Instant::now() < deadline, "{}", links());
        std::thread::sleep(Duration::from_millis(20));
    }
    network.close().await;
    assert!(!tables().contains(&format!("inet {name}\n")));
    assert!(!links().contains(&format!(": {name}:")));
}

/// Set in the child process that plays the server killed with SIGKILL.
const CHILD: &str = "WHARF_NETWORK_TEST_CHILD";

/// The server that gets killed: it starts the network, attaches two containers and says
/// where they are, then waits to be killed. A no-op unless run by the test below.
#[tokio::test(flavor = "multi_thread")]
async fn killed_server_child() {
    let Ok(network) = std::env::var(CHILD) else {
        return;
    };
    let (name, subnet) = network.split_once(' ').unwrap();
    let settings = Settings::parse(name, subnet, "", "127.0.0.1").unwrap();
    let network = DynoNetwork::start(settings).await.unwrap();
    let attachments = [
        network.attach().await.unwrap(),
        network.attach().await.unwrap(),
    ];
    for attachment in &attachments {
        println!(
            "ATTACHED wv{:08x} {}",
            u32::from(attachment.address()),
            attachment.namespace_path().display()
        );
    }
    std::io::stdout().flush().unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_servers_veths_wait_for_adoption_then_go() {
    let (name, subnet) = unique(1);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_server_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{name} {subnet}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut veths = Vec::new();
    let mut containers = Vec::new();
    while veths.len() < 2 {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut lines, &mut line).unwrap() > 0,
            "child ended"
        );
        // libtest may print its "test ... " before the test's own output on one line.
        if let Some((_, rest)) = line.trim().split_once("ATTACHED ") {
            let (veth, path) = rest.split_once(' ').unwrap();
            veths.push(veth.to_owned());
            // A process in the namespace, as a container keeps running when its server dies.
            containers.push(
                Command::new("nsenter")
                    .args([&format!("--net={path}"), "sleep", "600"])
                    .spawn()
                    .unwrap(),
            );
        }
    }
    std::thread::sleep(Duration::from_millis(200)); // nsenter joined the namespaces
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        veths.iter().all(|veth| links().contains(veth.as_str())),
        "{}",
        links()
    );

    // The next start keeps the veths of containers that still run, for the dyno manager to
    // take up; those it does not take up go with `release_survivors`.
    let settings = Settings::parse(&name, &subnet, "", "127.0.0.1").unwrap();
    let again = DynoNetwork::start(settings).await.unwrap();
    let survivors: Vec<String> = again
        .survivors()
        .iter()
        .map(|address| format!("wv{:08x}", u32::from(*address)))
        .collect();
    let mut expected = veths.clone();
    expected.sort();
    assert_eq!(survivors, expected);
    assert!(
        veths.iter().all(|veth| links().contains(veth.as_str())),
        "{}",
        links()
    );
    // A survivor's address is never handed out again while it is one.
    let fresh = again.attach().await.unwrap();
    assert!(!survivors.contains(&format!("wv{:08x}", u32::from(fresh.address()))));
    drop(fresh);
    let adopted = again.adopt(again.survivors()[0]).unwrap();
    assert!(again.adopt(adopted.address()).is_err(), "adopted once only");
    again.release_survivors().await;
    assert!(again.survivors().is_empty());
    let after = links();
    for mut container in containers {
        let _ = container.kill();
        let _ = container.wait();
    }
    let (kept, released) = (
        format!("wv{:08x}", u32::from(adopted.address())),
        veths
            .iter()
            .find(|veth| **veth != format!("wv{:08x}", u32::from(adopted.address()))),
    );
    assert!(
        after.contains(kept.as_str()),
        "the adopted veth stays: {after}"
    );
    assert!(
        released.is_some_and(|veth| !after.contains(veth.as_str())),
        "the other is released: {after}"
    );
    drop(adopted);
    assert_eq!(tables().matches(&format!("inet {name}\n")).count(), 1);
    let addresses = String::from_utf8(
        Command::new("ip")
            .args(["-o", "-4", "addr", "show", "dev", &name])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(addresses.lines().count(), 1, "{addresses}");
    again.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subnet_overlapping_the_hosts_networks_is_refused() {
    let test_net = TestNet::create().unwrap();
    let octets = test_net.host.octets();
    let subnet = format!("{}.{}.{}.0/24", octets[0], octets[1], octets[2]);
    let settings = Settings::parse("wntoverlap", &subnet, "", "127.0.0.1").unwrap();
    let error = DynoNetwork::start(settings).await.expect_err("refused");
    let message = format!("{error:#}");
    assert!(message.contains("overlaps the host's route"), "{message}");
    assert!(message.contains("WHARF_DYNO_NETWORK"), "{message}");
    assert!(!tables().contains("inet wntoverlap\n"));
    assert!(!links().contains(": wntoverlap:"));
}

/// A network the host routes to is the operator's (a LAN, a VPN), whatever its block: here a
/// documentation block, which on its own counts as internet, on a namespace of the test's.
#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_own_networks_are_refused_whatever_their_block() {
    let tag = format!("{}", std::process::id() % 100_000);
    let name = format!("wnt-lan-{tag}");
    let (outside, inside_link) = (format!("wlo{tag}"), format!("wli{tag}"));
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    ip(&["netns", "add", &name]);
    let _cleanup = NetnsOnDrop(name.clone());
    ip(&[
        "link",
        "add",
        &outside,
        "type",
        "veth",
        "peer",
        "name",
        &inside_link,
        "netns",
        &name,
    ]);
    ip(&["addr", "add", "198.51.100.1/30", "dev", &outside]);
    ip(&["link", "set", &outside, "up"]);
    for args in [
        vec!["addr", "add", "198.51.100.2/30", "dev", &inside_link],
        vec!["link", "set", &inside_link, "up"],
        vec!["link", "set", "lo", "up"],
    ] {
        let mut all = vec!["netns", "exec", &name, "ip"];
        all.extend(args);
        ip(&all);
    }
    let lan_service = greeter(inside(Path::new(&format!("/run/netns/{name}")), || {
        TcpListener::bind("198.51.100.2:0").unwrap()
    }));

    let (network_name, subnet) = unique(2);
    let settings = Settings::parse(&network_name, &subnet, "", "127.0.0.1").unwrap();
    let network = DynoNetwork::start(settings).await.unwrap();
    let a = network.attach().await.unwrap();
    assert!(reaches(lan_service), "the host itself reaches its LAN");
    assert!(
        !inside(&a.namespace_path(), || reaches(lan_service)),
        "a container does not"
    );
    drop(a);
    network.close().await;
}

struct NetnsOnDrop(String);

impl Drop for NetnsOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// One container cannot take connection tracking from the others: past
/// `CONNECTIONS_PER_CONTAINER` open connections its new ones are refused, while another
/// container still connects.
#[tokio::test(flavor = "multi_thread")]
async fn a_container_opening_thousands_of_connections_is_held_to_its_limit() {
    let internet = TestNet::create().unwrap();
    let listener = internet.listen(0).unwrap();
    let service = listener.local_addr().unwrap();
    // Accepts and keeps every connection open.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let (name, subnet) = unique(3);
    let settings =
        Settings::parse(&name, &subnet, &internet.peer.to_string(), "127.0.0.1").unwrap();
    let network = DynoNetwork::start(settings).await.unwrap();
    let (greedy, other) = (
        network.attach().await.unwrap(),
        network.attach().await.unwrap(),
    );
    let limit = wharf_network::CONNECTIONS_PER_CONTAINER as usize;
    let (opened, refused) = inside(&greedy.namespace_path(), || {
        let mut open = Vec::new();
        let mut refused = 0;
        for _ in 0..limit + 20 {
            match TcpStream::connect_timeout(&service, TIMEOUT) {
                Ok(stream) => open.push(stream),
                Err(_) => refused += 1,
            }
        }
        (open, refused)
    });
    assert_eq!(opened.len(), limit, "{refused} refused");
    assert_eq!(refused, 20);
    assert!(
        inside(&other.namespace_path(), || TcpStream::connect_timeout(
            &service, TIMEOUT
        )
        .is_ok()),
        "another container still connects"
    );
    drop(opened);
    drop((greedy, other));
    network.close().await;
}
