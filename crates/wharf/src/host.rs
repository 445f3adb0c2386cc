//! What every host that runs dynos sets up the same way, the one-host server and an agent
//! alike: the settings of its dynos, network, disks and stacks, and the holder binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// How a host runs dynos.
#[derive(clap::Args, Debug, Clone)]
pub struct DynoArgs {
    /// Seconds between runtime metrics samples of each dyno (logged for apps with the
    /// log-runtime-metrics feature)
    #[arg(long, env = "WHARF_METRICS_INTERVAL", default_value_t = 20)]
    pub metrics_interval: u64,
    /// Seconds a web dyno has to accept connections on $PORT before it is killed (R10)
    #[arg(long, env = "WHARF_BOOT_TIMEOUT", default_value_t = 60)]
    pub boot_timeout: u64,
    /// Hours after which every dyno is restarted ("Cycling", with up to 30 minutes of
    /// jitter); 0 turns cycling off
    #[arg(long, env = "WHARF_DYNO_CYCLE_HOURS", default_value_t = 24)]
    pub dyno_cycle_hours: u64,
    /// The subnet dynos and builds get their addresses from (their gateway, the host, is its
    /// first address); refused when it overlaps a network of the host
    #[arg(long, env = "WHARF_DYNO_NETWORK", default_value = wharf_network::DEFAULT_SUBNET)]
    pub dyno_network: String,
    /// Internal networks dynos and builds may reach: comma-separated CIDRs, each optionally
    /// with :PORT (10.1.0.0/16,192.168.1.5:5432). The internet is always reachable; the host,
    /// other dynos and link-local addresses (cloud metadata) never are
    #[arg(long, env = "WHARF_DYNO_ALLOW", default_value = "")]
    pub dyno_allow: String,
    /// The DNS resolvers dynos' queries are relayed to (comma-separated addresses); empty:
    /// the host's, from /etc/resolv.conf
    #[arg(long, env = "WHARF_DYNO_RESOLVERS", default_value = "")]
    pub dyno_resolvers: String,
    /// The name of the dyno network's bridge and of its nftables table (`inet <name>`)
    #[arg(long, env = "WHARF_NETWORK_NAME", default_value = wharf_network::DEFAULT_NAME)]
    pub network_name: String,
    /// The disk pool's size in GiB: all that dynos' and builds' capped disks may take of the
    /// data dir's filesystem together (default: an existing pool's size, else half the free
    /// space there)
    #[arg(long, env = "WHARF_DISK_POOL_GB")]
    pub disk_pool_gb: Option<u64>,
    /// The Debian mirror built stacks (debian-13) are made from (default: the host's apt
    /// mirror, else http://deb.debian.org/debian)
    #[arg(long, env = "WHARF_STACK_MIRROR")]
    pub stack_mirror: Option<String>,
    /// Where the packages built stacks are made of are cached between builds of a stack
    /// (default: <data-dir>/stacks/cache)
    #[arg(long, env = "WHARF_STACK_CACHE")]
    pub stack_cache: Option<PathBuf>,
    /// A built stack older than this many days is built again (new containers start on the
    /// new version; the old one is removed once no container uses it)
    #[arg(long, env = "WHARF_STACK_MAX_AGE_DAYS", default_value_t = 30)]
    pub stack_max_age_days: u64,
    /// Stop every dyno when the server stops (SIGTERM, the stop timeout, SIGKILL), leaving
    /// no container behind. By default a stopping server leaves the formation running, and
    /// the next start on the same data dir takes it up without restarting a dyno
    #[arg(long, env = "WHARF_STOP_DYNOS")]
    pub stop_dynos: bool,
    /// A dyno left running with no server for this many seconds is stopped and removed by
    /// its holder, as is one whose data dir is gone: nothing runs on after a server that
    /// never comes back
    #[arg(long, env = "WHARF_DYNO_ORPHAN_AFTER", default_value_t = 900)]
    pub dyno_orphan_after: u64,
    /// The holder each dyno runs under (default: `wharf-shim` beside this binary)
    #[arg(long, env = "WHARF_SHIM")]
    pub shim: Option<PathBuf>,
}

/// Where stacks are and how built ones are made, from the host's settings.
pub fn stacks_config(data_dir: &Path, args: &DynoArgs) -> wharf_containers::StacksConfig {
    let mut config = wharf_containers::StacksConfig::new(data_dir);
    if let Some(mirror) = &args.stack_mirror {
        config.mirror = mirror.trim_end_matches('/').to_owned();
    }
    if let Some(cache) = &args.stack_cache {
        config.cache_dir = cache.clone();
    }
    config.max_age = Duration::from_secs(args.stack_max_age_days.saturating_mul(24 * 60 * 60));
    config
}

/// How often built stacks are checked for their age and unused versions removed.
const STACK_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Builds again the stacks older than their maximum age and removes versions no container
/// uses, every [`STACK_MAINTENANCE_INTERVAL`] (the first time at start).
pub async fn maintain_stacks(
    stacks: wharf_containers::Stacks,
    runtime: wharf_containers::Runtime,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(STACK_MAINTENANCE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            result = stacks.maintain(&runtime) => if let Err(error) = result {
                tracing::error!(error = format!("{error:#}"), "maintain the stacks");
            }
        }
    }
}

/// The dynos' holder: `--shim`, else `wharf-shim` beside this binary.
pub fn shim_binary(args: &DynoArgs) -> anyhow::Result<PathBuf> {
    let path = match &args.shim {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("find the running executable")?
            .with_file_name("wharf-shim"),
    };
    if !path.is_file() {
        anyhow::bail!(
            "the dynos' holder {} is missing: install it beside wharf (scripts/start does), \
             or name it with WHARF_SHIM",
            path.display()
        );
    }
    Ok(path)
}

/// The pool that caps what dynos (and, on the server, builds) write: `--disk-pool-gb`, else
/// a size that fits the data dir's filesystem.
pub async fn open_disk_pool(
    data_dir: &Path,
    args: &DynoArgs,
) -> anyhow::Result<wharf_disk::DiskPool> {
    let disk_dir = data_dir.join("disk");
    let disk_size = match args.disk_pool_gb {
        Some(gb) => gb.saturating_mul(1024 * 1024 * 1024),
        None => wharf_disk::DiskPool::default_size(&disk_dir)?,
    };
    wharf_disk::DiskPool::open(&disk_dir, disk_size)
        .await
        .context("open the disk pool that caps dynos' and builds' disks")
}

/// `runtime` running each dyno detached under a holder of its own, so that dynos outlive
/// this process.
pub fn held(
    runtime: &wharf_containers::Runtime,
    args: &DynoArgs,
) -> anyhow::Result<wharf_containers::Runtime> {
    Ok(runtime.clone().with_holder(wharf_containers::HolderConfig {
        binary: shim_binary(args)?,
        orphan_after: Duration::from_secs(args.dyno_orphan_after),
        stop_grace: wharf_dynos::DynoManagerConfig::DEFAULT_STOP_TIMEOUT,
    }))
}

/// The dyno manager's settings from the host's.
pub fn manager_config(
    data_dir: &Path,
    args: &DynoArgs,
    network: &wharf_network::DynoNetwork,
    disk: &wharf_disk::DiskPool,
) -> wharf_dynos::DynoManagerConfig {
    wharf_dynos::DynoManagerConfig {
        boot_timeout: Duration::from_secs(args.boot_timeout),
        cycle_after: (args.dyno_cycle_hours > 0)
            .then(|| Duration::from_secs(args.dyno_cycle_hours * 60 * 60)),
        network: Some(network.clone()),
        disk: Some(disk.clone()),
        leave_running: !args.stop_dynos,
        ..wharf_dynos::DynoManagerConfig::new(data_dir)
    }
}
