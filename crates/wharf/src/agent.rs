//! `wharf agent`: runs, on a host that joined a control plane (`wharf hosts:add`), the dynos
//! the control plane places there. The host's dyno network, disks, stacks and holders are set
//! up as `wharf server` sets up its own; what to run comes from the control plane's API with
//! the host's credential, never from the store.

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wharf_agent::{Agent, ControlPlane, HostReport, Peers, Publisher, Signal};
use wharf_dynos::DynoManager;
use wharf_router::{RouteTable, Router, RouterConfig};

/// How often dynos that left the route table are checked for unpublishing.
const UNPUBLISH_CHECK: Duration = Duration::from_millis(250);
/// Memory an agent keeps for its host when it offers the rest to dynos.
const HOST_RESERVE_MB: u64 = 1024;
/// How long the agent waits for its first lease before it gives up starting.
const FIRST_LEASE_DEADLINE: Duration = Duration::from_secs(60);
/// How long the dyno manager gets to let go of (or stop) its dynos at shutdown.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(50);

#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The control plane's API URL, as `wharf hosts:add` printed it
    #[arg(long, env = "WHARF_CONTROL_PLANE")]
    pub control_plane: String,
    /// The host's credential, as `wharf hosts:add` printed it (from the environment only, so
    /// that it shows in no process list)
    #[arg(skip = std::env::var("WHARF_HOST_CREDENTIAL").ok())]
    pub credential: Option<String>,
    /// Where the control plane reaches this host (its address on the LAN; default: the
    /// address this host reaches the control plane from)
    #[arg(long, env = "WHARF_HOST_ADDRESS")]
    pub address: Option<String>,
    /// The memory this host offers dynos, in MiB (default: all but 1 GiB of its memory)
    #[arg(long, env = "WHARF_HOST_MEMORY_MB")]
    pub memory_mb: Option<u64>,
    /// Ports on the host's address where its web dynos are published to the routers (one
    /// each; only the control plane and the hosts that joined may connect)
    #[arg(long, env = "WHARF_PUBLISH_PORTS", default_value = "20000-29999")]
    pub publish_ports: String,
    /// The port, on the host's address, where agents ask each other whether the control
    /// plane is silent to them too (before fencing themselves)
    #[arg(long, env = "WHARF_PEER_PORT", default_value_t = wharf_agent::peers::DEFAULT_PORT)]
    pub peer_port: u16,
    /// Address this host's router listens on for app traffic (it routes every app, to web
    /// dynos on any host)
    #[arg(long, env = "WHARF_ROUTER_LISTEN", default_value = "0.0.0.0:8080")]
    pub router_listen: String,
    /// Apps are served at <app>.<base-domain> (as the control plane's `--base-domain`)
    #[arg(long, env = "WHARF_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,
    /// Where the agent keeps its state: slugs, dynos' disks, stacks
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "/var/lib/wharf-agent")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub dyno: crate::host::DynoArgs,
}

/// A line on standard output, for the operator (and the tests).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::server::init_logging();
    let credential = args.credential.clone().context(
        "set WHARF_HOST_CREDENTIAL to the credential `wharf hosts:add` printed for this host",
    )?;
    let control_plane = ControlPlane::new(&args.control_plane, credential)?;
    let control_plane_addresses = control_plane_addresses(&args.control_plane).await?;
    let address: std::net::IpAddr = match &args.address {
        Some(address) => address.parse().with_context(|| {
            format!(
                "--address {address:?} is not an IP address: give the address the control \
                 plane reaches this host at"
            )
        })?,
        None => local_address_towards(&control_plane_addresses)?,
    };
    let publisher = Publisher::new(
        address,
        wharf_agent::publish::parse_ports(&args.publish_ports)?,
        control_plane_addresses,
    );
    let _data_dir_lock = crate::data_dir::lock(&args.data_dir)?;
    crate::data_dir::prepare(&args.data_dir)?;
    let mut signals = crate::server::ShutdownSignals::listen()?;
    let memory_mb = match args.memory_mb {
        Some(memory_mb) => memory_mb,
        None => host_memory_mb()?.saturating_sub(HOST_RESERVE_MB),
    };

    let network_settings = wharf_network::Settings::parse(
        &args.dyno.network_name,
        &args.dyno.dyno_network,
        &args.dyno.dyno_allow,
        &args.dyno.dyno_resolvers,
    )?;
    let network = wharf_network::DynoNetwork::start(network_settings)
        .await
        .context("set up the dyno network")?;
    let disk = crate::host::open_disk_pool(&args.data_dir, &args.dyno).await?;
    let runtime = wharf_containers::Runtime::detect(&args.data_dir.join("runtime"))
        .await
        .context("find a container runtime (crun or runc): run `scripts/start` to install one")?;
    let stacks =
        wharf_containers::Stacks::new(crate::host::stacks_config(&args.data_dir, &args.dyno));
    let unfinished = stacks.clone();
    tokio::task::spawn_blocking(move || unfinished.remove_unfinished())
        .await
        .context("remove unfinished stack builds: task failed")??;
    stacks
        .get(wharf_model::StackName::DEFAULT)
        .await
        .context("prepare the default stack")?;
    let runtime = crate::host::held(&runtime, &args.dyno)?;

    let (shipper_control_plane, route_control_plane, wake_control_plane, one_off_control_plane) = (
        control_plane.clone(),
        control_plane.clone(),
        control_plane.clone(),
        control_plane.clone(),
    );
    let peers = Peers::new(address, args.peer_port);
    let peer_listener = tokio::net::TcpListener::bind((address, args.peer_port))
        .await
        .with_context(|| {
            format!(
                "listen for other hosts on {address}:{} (WHARF_PEER_PORT)",
                args.peer_port
            )
        })?;
    let agent = Agent::new(
        control_plane,
        HostReport {
            memory_mb,
            address: address.to_string(),
        },
    )
    .with_peers(peers.clone());
    let dynos = DynoManager::with_source(
        Arc::new(agent.source()),
        wharf_dynos::DynoManagerConfig {
            // The control plane says when an app sleeps: it sees every router's requests.
            sleep_after: None,
            ..crate::host::manager_config(&args.data_dir, &args.dyno, &network, &disk)
        },
        runtime.clone(),
        stacks.clone(),
    );
    dynos
        .logs()
        .metrics()
        .set_interval(Duration::from_secs(args.dyno.metrics_interval));
    let shipped_logs = dynos.logs().clone();
    // A stopping web dyno gets SIGTERM once its host no longer publishes it and its traffic
    // ended: what the router sent it finishes.
    let probe = publisher.clone();
    dynos.watch_traffic(Arc::new(move |address| probe.busy(address)));
    let (observed, published) = (dynos.clone(), publisher.clone());
    let orders = agent.orders();
    let agent = Arc::new(agent.with_observer(Box::new(move || report(&observed, &published))));
    let shutdown = CancellationToken::new();
    let (heartbeats, signal_dynos, heartbeat_shutdown) =
        (agent.clone(), dynos.clone(), shutdown.clone());
    let heartbeat = tokio::spawn(async move {
        heartbeats
            // A new generation or epoch, or the fence going up or down: the manager reads
            // what this host runs again.
            .run(
                move |_: Signal| signal_dynos.reconcile_all(),
                heartbeat_shutdown,
            )
            .await;
    });
    // The dyno manager starts once the host holds a lease: it takes up the dynos a previous
    // agent left running, which needs the control plane's word on what this host runs.
    let deadline = tokio::time::Instant::now() + FIRST_LEASE_DEADLINE;
    while agent.fenced() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no lease from the control plane at {} within {} s: check the URL, the credential \
             and that this host reaches it",
            args.control_plane,
            FIRST_LEASE_DEADLINE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    say!(
        "wharf agent: holding a lease from {}; running the dynos placed on this host ({} MiB offered, reached at {})",
        args.control_plane,
        memory_mb,
        address
    );
    tokio::spawn(crate::host::maintain_stacks(
        stacks,
        runtime,
        shutdown.clone(),
    ));
    // Lines go out until the dyno manager is done, so that its dynos' last lines do too.
    let shipper_shutdown = CancellationToken::new();
    let requests = Arc::new(wharf_logs::Outbox::new(wharf_agent::logs::OUTBOX_REQUESTS));
    let shipper = tokio::spawn(wharf_agent::logs::ship(
        shipper_control_plane,
        shipped_logs,
        requests.clone(),
        shipper_shutdown.clone(),
    ));
    // The router: every app, from the control plane's table, to dynos on any host. It
    // serves once it has a table (connections wait in the listener's queue until then).
    let router_listener =
        crate::server::listen_with_backlog(&args.router_listen, crate::server::ROUTER_BACKLOG)
            .await
            .with_context(|| format!("listen for app traffic on {}", args.router_listen))?;
    let router_address = router_listener
        .local_addr()
        .context("read the router's address")?;
    let (tables, routes) = tokio::sync::watch::channel(Arc::new(RouteTable::default()));
    let (first_table, has_table) = tokio::sync::watch::channel(false);
    tokio::spawn(peers.clone().serve(peer_listener, shutdown.clone()));
    tokio::spawn(crate::agent_router::follow(
        route_control_plane,
        publisher.clone(),
        peers,
        tables,
        first_table,
        shutdown.clone(),
    ));
    let router = Router::new(
        RouterConfig {
            wake: Some(crate::agent_router::forward_wakes(
                wake_control_plane,
                shutdown.clone(),
            )),
            ..RouterConfig::new(args.base_domain.clone())
        },
        routes,
        crate::agent_router::log_sink(dynos.clone(), requests.clone()),
    );
    let router_shutdown = shutdown.clone();
    tokio::spawn(async move {
        crate::server::wait_for_routes(has_table).await;
        if let Err(error) = router.serve(router_listener, None, router_shutdown).await {
            tracing::error!(error = format!("{error:#}"), "route app traffic");
        }
    });
    say!("wharf agent: routing app traffic on http://{router_address}");
    tokio::spawn(publish(dynos.clone(), publisher, shutdown.clone()));
    tokio::spawn(wharf_agent::one_offs::run(
        dynos.clone(),
        one_off_control_plane,
        orders,
        shutdown.clone(),
    ));
    let manager_shutdown = shutdown.clone();
    let manager = tokio::spawn(dynos.clone().run(manager_shutdown));
    let _ = std::io::stdout().flush();

    let name = signals.recv().await;
    tracing::info!(signal = name, "stopping the agent");
    shutdown.cancel();
    let ran = tokio::time::timeout(SHUTDOWN_DEADLINE, manager)
        .await
        .context("the dyno manager outlived the shutdown deadline")?
        .context("run the dyno manager: task failed")?;
    heartbeat.abort();
    shipper_shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), shipper).await;
    // Left running, the dynos keep the bridge, the table and their disks (the network knows,
    // and leaves them); stopped, nothing of theirs is left.
    network.close().await;
    if args.dyno.stop_dynos {
        if let Err(error) = disk.close().await {
            tracing::warn!(error = format!("{error:#}"), "unmount the disk pool");
        }
    }
    tracing::info!("stopped");
    ran
}

/// Keeps the host's up web dynos published (the dyno manager's route table) until
/// `shutdown`.
async fn publish(dynos: DynoManager, publisher: Publisher, shutdown: CancellationToken) {
    let mut routes = dynos.routes();
    loop {
        let wanted: HashSet<SocketAddr> = routes
            .borrow_and_update()
            .values()
            .flatten()
            .map(|(_, address)| *address)
            .collect();
        publisher.sync(&wanted).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = routes.changed() => if changed.is_err() { return },
            // Dynos that left go once their delay is over.
            () = tokio::time::sleep(UNPUBLISH_CHECK) => {}
        }
    }
}

/// The addresses of the control plane's host: the only peers published dynos accept.
async fn control_plane_addresses(url: &str) -> anyhow::Result<HashSet<std::net::IpAddr>> {
    let parsed = reqwest::Url::parse(url)
        .with_context(|| format!("parse the control plane's URL {url:?}"))?;
    let host = parsed
        .host_str()
        .with_context(|| format!("the control plane's URL {url:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addresses: HashSet<std::net::IpAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("resolve the control plane's host {host}"))?
        .map(|address| address.ip())
        .collect();
    anyhow::ensure!(
        !addresses.is_empty(),
        "the control plane's host {host} has no address"
    );
    Ok(addresses)
}

/// The address this host reaches the control plane from: what the kernel picks as the source
/// towards it (a UDP socket's `connect` sends nothing).
fn local_address_towards(
    control_plane: &HashSet<std::net::IpAddr>,
) -> anyhow::Result<std::net::IpAddr> {
    let target = control_plane
        .iter()
        .min()
        .context("the control plane has no address")?;
    let unspecified: std::net::IpAddr = match target {
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = std::net::UdpSocket::bind((unspecified, 0)).context("open a UDP socket")?;
    socket
        .connect((*target, 9))
        .with_context(|| format!("find the route to the control plane at {target}"))?;
    Ok(socket
        .local_addr()
        .context("read the socket's address")?
        .ip())
}

/// The host's dynos as its heartbeat reports them, each up web dyno with where the control
/// plane's router reaches it.
fn report(dynos: &DynoManager, publisher: &Publisher) -> Vec<wharf_agent::AgentDyno> {
    dynos
        .all_dynos()
        .into_iter()
        .map(|(app, dyno)| wharf_agent::AgentDyno {
            upstream: dyno
                .address
                .filter(|_| dyno.state == wharf_dynos::DynoState::Up)
                .and_then(|address| publisher.published(address))
                .map(|address| address.to_string()),
            id: dyno.id.to_string(),
            app: app.to_string(),
            name: dyno.name,
            process_type: dyno.process_type,
            state: dyno.state.to_string(),
            command: dyno.command,
            size: dyno.size.name().to_owned(),
            release_version: dyno.release_version,
            updated_at: dyno
                .updated_at
                .replace_nanosecond(0)
                .expect("zero nanoseconds is valid")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("UTC times always format"),
        })
        .collect()
}

/// The host's memory, in MiB, from `/proc/meminfo`.
fn host_memory_mb() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("read /proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .context("find MemTotal in /proc/meminfo")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_address_is_the_source_towards_the_control_plane() {
        let loopback: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
        assert_eq!(
            local_address_towards(&[loopback].into()).expect("a route to loopback"),
            loopback
        );
        assert!(local_address_towards(&HashSet::new()).is_err());
    }
}
