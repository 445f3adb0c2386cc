//! `wharf server`: settings, start-up (data dir, store, first admin), the subsystems, and a
//! graceful shutdown on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wharf_api::auth::{generate_api_key, hash_api_key};

use crate::handover;

/// A line on standard output, for the operator (and the tests): a closed stdout (a
/// successor started by a server whose output is gone) loses the line, never the server.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
use wharf_api::{ApiConfig, ApiState};
use wharf_build::builder::{Builder, BuilderConfig};
use wharf_dynos::{DynoManager, DynoManagerConfig};
use wharf_router::{CertResolver, Router, RouterConfig};

use crate::routing;
use wharf_store::Store;
use wharf_tls::Tls;

/// How long the router waits for its first table with the dynos a previous server left.
const ROUTES_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long subsystems get to finish after a shutdown signal: longer than a dyno's 30 s
/// between SIGTERM and SIGKILL, so that the dyno manager can stop every dyno.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(50);
/// The file, in the data dir, that holds the first admin's API key.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Where Wharf keeps all its state: database, repositories, slugs, caches
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "/var/lib/wharf")]
    pub data_dir: PathBuf,
    /// Address the API (and git) listens on
    #[arg(long, env = "WHARF_API_LISTEN", default_value = "127.0.0.1:5000")]
    pub api_listen: String,
    /// Address the API (and git) listens on over TLS, with the server's certificate: Heroku's
    /// CLI pushes to `https://<api host>/<app>.git`
    #[arg(long, env = "WHARF_API_TLS_LISTEN", default_value = "127.0.0.1:5443")]
    pub api_tls_listen: String,
    /// Address the rendezvous (TLS) listens on, where `wharf run` attaches to one-off dynos
    #[arg(
        long,
        env = "WHARF_RENDEZVOUS_LISTEN",
        default_value = "127.0.0.1:5001"
    )]
    pub rendezvous_listen: String,
    /// Address the router listens on for app traffic
    #[arg(long, env = "WHARF_ROUTER_LISTEN", default_value = "127.0.0.1:8080")]
    pub router_listen: String,
    /// Address the router listens on for HTTPS app traffic (certificates by SNI: each custom
    /// domain's, else the server's own for <app>.<base-domain>)
    #[arg(
        long,
        env = "WHARF_ROUTER_TLS_LISTEN",
        default_value = "127.0.0.1:8443"
    )]
    pub router_tls_listen: String,
    /// Apps are served at <app>.<base-domain>
    #[arg(long, env = "WHARF_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,
    /// The state database: a postgres:// URL, or sqlite:///path (default: wharf.db in the data dir)
    #[arg(long, env = "WHARF_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The API's URL as clients reach it (default: from the API listen address)
    #[arg(long, env = "WHARF_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The longest a build may run, in seconds
    #[arg(long, env = "WHARF_BUILD_TIMEOUT", default_value_t = 900)]
    pub build_timeout: u64,
    /// Memory for a build's containers, in MB
    #[arg(long, env = "WHARF_BUILD_MEMORY_MB", default_value_t = 2048)]
    pub build_memory_mb: u64,
    /// The largest slug a build may produce, in MB
    #[arg(long, env = "WHARF_SLUG_LIMIT_MB", default_value_t = 500)]
    pub slug_limit_mb: u64,
    /// Seconds without a request after which an app with Eco web dynos sleeps (its dynos stop
    /// until the next request); 0 keeps every app awake
    #[arg(long, env = "WHARF_ECO_SLEEP_AFTER", default_value_t = 1800)]
    pub eco_sleep_after: u64,
    /// Log lines each app keeps for `wharf logs`
    #[arg(long, env = "WHARF_LOG_LINES", default_value_t = 1500)]
    pub log_lines: usize,

    /// Days of metrics history kept per app (router figures, dyno memory and load, events,
    /// in <data-dir>/metrics)
    #[arg(
        long,
        env = "WHARF_METRICS_RETENTION_DAYS",
        default_value_t = wharf_metrics::DEFAULT_RETENTION_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=366)
    )]
    pub metrics_retention_days: u32,
    /// Seconds a dashboard log-in lasts
    #[arg(long, env = "WHARF_SESSION_LIFETIME", default_value_t = 12 * 3600)]
    pub session_lifetime: u64,
    /// E-mail address of the admin account a fresh server creates
    #[arg(long, env = "WHARF_ADMIN_EMAIL", default_value = "admin@localhost")]
    pub admin_email: String,
    /// Admin URL of an operator's PostgreSQL server that `wharf-postgresql`
    /// (`heroku-postgresql`) add-ons get their databases on (a role that may create roles and
    /// databases), instead of the cluster Wharf runs itself under its data dir. Dynos reach
    /// the server at this URL's host and port
    #[arg(long, env = "WHARF_ADDON_POSTGRES_ADMIN_URL")]
    pub addon_postgres_admin_url: Option<String>,
    /// The port of the PostgreSQL cluster Wharf runs for `wharf-postgresql` add-ons, on the
    /// dyno network's gateway
    #[arg(long, env = "WHARF_ADDON_POSTGRES_PORT", default_value_t = 15432)]
    pub addon_postgres_port: u16,
    /// Admin URL of an operator's Redis server that `wharf-redis` (`heroku-redis`) add-ons get
    /// an ACL user and key prefix on (redis://[user:password@]host:port, a user that may run
    /// ACL), instead of a `redis-server` of their own each
    #[arg(long, env = "WHARF_ADDON_REDIS_URL")]
    pub addon_redis_url: Option<String>,
    /// The ports (FIRST-LAST) of the `redis-server` Wharf runs for each `wharf-redis` add-on,
    /// on the dyno network's gateway: one add-on per port
    #[arg(long, env = "WHARF_ADDON_REDIS_PORTS", default_value = "16400-16999")]
    pub addon_redis_ports: String,
    /// Provision add-ons even on a server that lets dynos in without a password (a PostgreSQL
    /// that trusts the dyno network, a Redis whose default user has none): the operator
    /// accepts that any dyno may then read and change every add-on's data
    #[arg(long, env = "WHARF_ADDONS_ALLOW_OPEN_SERVERS")]
    pub addons_allow_open_servers: bool,
    /// Internal networks that tenants' URLs (log drains, buildpacks) may reach:
    /// comma-separated CIDRs, each optionally with :PORT (10.0.0.0/8,192.168.1.5/32:514).
    /// Loopback, link-local and this server's own addresses are never reachable
    #[arg(long, env = "WHARF_OUTBOUND_ALLOW", default_value = "")]
    pub outbound_allow: String,
    /// The most a build's work dir (its /app, buildpacks and slug) may hold, in MiB
    #[arg(long, env = "WHARF_BUILD_DISK_MB", default_value_t = 4096)]
    pub build_disk_mb: u64,
    /// Where the language runtimes built-in buildpacks install (Node.js, CPython, Go) are
    /// cached for every app, one directory per stack (default: <data-dir>/runtimes)
    #[arg(long, env = "WHARF_RUNTIMES_DIR")]
    pub runtimes_dir: Option<PathBuf>,
    /// Where the Python buildpack downloads standalone CPython builds the stack lacks: a
    /// mirror of python-build-standalone's releases (default: uv's own source)
    #[arg(long, env = "WHARF_PYTHON_MIRROR")]
    pub python_mirror: Option<String>,
    /// The npm registry the Node.js buildpack installs Node.js, npm, yarn and pnpm from
    /// (default: https://registry.npmjs.org)
    #[arg(long, env = "WHARF_NODE_MIRROR")]
    pub node_mirror: Option<String>,
    /// Where the Go buildpack downloads Go toolchains (default: the Go module proxy)
    #[arg(long, env = "WHARF_GO_MIRROR")]
    pub go_mirror: Option<String>,
    /// Take over from the server running on the data dir (an upgrade): its listeners, then
    /// its dynos, without refusing a connection; it exits once this one serves. The running
    /// server does the same for the binary installed where its own was on SIGUSR2
    #[arg(long, env = "WHARF_UPGRADE")]
    pub upgrade: bool,
    /// How this host runs dynos (shared with `wharf agent`)
    #[command(flatten)]
    pub dyno: crate::host::DynoArgs,
}

impl ServerArgs {
    /// The runtime settings runtime steps get, as the environment variables buildpacks read.
    fn runtime_env(&self) -> Vec<(String, String)> {
        [
            ("WHARF_PYTHON_MIRROR", &self.python_mirror),
            ("WHARF_NODE_MIRROR", &self.node_mirror),
            ("WHARF_GO_MIRROR", &self.go_mirror),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
        .collect()
    }
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let started_addons = std::sync::Mutex::new(None);
    let outcome = serve(args, &started_addons).await;
    // A server that fails after starting its add-on servers stops them: a successor that
    // fails leaves the ports and data dirs to the server that takes over again.
    if outcome.is_err() {
        let started = started_addons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(registry) = started {
            crate::addons::stop(&registry).await;
        }
    }
    outcome
}

async fn serve(
    args: ServerArgs,
    started_addons: &std::sync::Mutex<Option<wharf_addons::Registry>>,
) -> anyhow::Result<()> {
    init_logging();
    // Before anything else touches the data dir, the network or a container: held until the
    // server ends.
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("wharf.db").display()));
    // A successor opens its database before it takes anything over: a database it cannot
    // reach (a wrong setting) leaves the running server as it was.
    let opened_early = match args.upgrade {
        true => Some(
            Store::open(&database_url)
                .await
                .context("open the state database (nothing was taken over)")?,
        ),
        false => None,
    };
    // A successor then takes the listeners; the old server then lets go of the data dir.
    let taken_over = match args.upgrade {
        true => {
            let data_dir = args.data_dir.clone();
            let taken = tokio::task::spawn_blocking(move || handover::take_over(&data_dir))
                .await
                .context("take the listeners over: task failed")??;
            tracing::info!("took the listeners over; waiting for the previous server to let go");
            Some(taken)
        }
        false => None,
    };
    let data_dir_lock = match &taken_over {
        Some(_) => {
            crate::data_dir::lock_when_free(&args.data_dir, handover::SUCCESSOR_DEADLINE).await?
        }
        None => crate::data_dir::lock(&args.data_dir)?,
    };
    // The path this binary was started from, read now: an upgrade replaces the file there.
    let installed_binary = std::env::current_exe().context("find the running executable")?;
    let mut signals = ShutdownSignals::listen()?;
    let outbound = outbound_policy(&args.outbound_allow)?;
    let mut network_settings = wharf_network::Settings::parse(
        &args.dyno.network_name,
        &args.dyno.dyno_network,
        &args.dyno.dyno_allow,
        &args.dyno.dyno_resolvers,
    )?;
    crate::data_dir::prepare(&args.data_dir)?;
    let store = match opened_early {
        Some(store) => store,
        None => Store::open(&database_url)
            .await
            .context("open the state database")?,
    };
    bootstrap_admin(&store, &args).await?;
    let tls = Tls::load_or_create(
        &args.data_dir.join("tls"),
        &certificate_names(&args.base_domain, args.public_url.as_deref()),
    )
    .context("set up Wharf's certificate authority")?;
    say!(
        "wharf: clients trust this server through its CA certificate {}",
        tls.ca_path().display()
    );
    // Add-on servers as dynos reach them: the firewall opens exactly those.
    let gateway = network_settings.subnet.gateway();
    let mut addons = crate::addons::registry(
        &args,
        Some(wharf_addons::DynoNetwork {
            gateway,
            subnet: (
                network_settings.subnet.network(),
                network_settings.subnet.prefix(),
            ),
        }),
    )
    .await?;
    let managed = crate::addons::Managed::from_args(&args)?;
    network_settings.addon_endpoints = addons
        .dyno_endpoints()
        .into_iter()
        .chain(managed.dyno_endpoints(gateway))
        .filter_map(|(address, port)| match address {
            std::net::IpAddr::V4(address) => Some(std::net::SocketAddrV4::new(address, port)),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    network_settings.addon_port_ranges = managed.dyno_port_ranges();
    let network = wharf_network::DynoNetwork::start(network_settings)
        .await
        .context("set up the dyno network")?;
    // The servers Wharf runs for add-ons listen on the gateway: after the network is up.
    let (addon_events, addon_event_receiver) = tokio::sync::mpsc::unbounded_channel();
    let managed_postgres = managed
        .start(&mut addons, &args.data_dir, gateway, addon_events)
        .await?;
    *started_addons
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(addons.clone());
    let interrupted = store.fail_interrupted_builds().await?;
    if interrupted > 0 {
        tracing::warn!(
            builds = interrupted,
            "marked builds interrupted by a restart as failed"
        );
    }
    // Before any build or dyno: every disk they write is capped in this pool.
    let disk = crate::host::open_disk_pool(&args.data_dir, &args.dyno).await?;
    let builder = Builder::new(
        store.clone(),
        BuilderConfig {
            build_timeout: Duration::from_secs(args.build_timeout),
            build_memory_bytes: args.build_memory_mb * 1024 * 1024,
            slug_limit: args.slug_limit_mb * 1024 * 1024,
            outbound: outbound.clone(),
            network: Some(network.clone()),
            disk: Some(disk.clone()),
            build_disk_bytes: args.build_disk_mb.saturating_mul(1024 * 1024),
            runtimes_dir: args
                .runtimes_dir
                .clone()
                .unwrap_or_else(|| args.data_dir.join("runtimes")),
            runtime_env: args.runtime_env(),
            stacks: crate::host::stacks_config(&args.data_dir, &args.dyno),
            ..BuilderConfig::new(&args.data_dir)
        },
    );
    let buildpacks_dir = builder.config().builtin_buildpacks();
    tokio::task::spawn_blocking(move || wharf_build::builtin::install(&buildpacks_dir))
        .await
        .context("install the built-in buildpacks")??;
    let (runtime, _) = builder.containers().await.context(
        "Wharf runs builds and dynos in containers: run `scripts/start` as root to install crun or runc",
    )?;
    let runtime = crate::host::held(runtime, &args.dyno)?;
    tracing::info!(runtime = runtime.name(), "containers ready");
    // No build runs yet: whatever builds left (a SIGKILL mid-build) goes before any starts.
    builder
        .remove_leftovers()
        .await
        .context("remove what interrupted builds left")?;
    let sources = builder.clone();
    let dynos = DynoManager::new(
        store.clone(),
        DynoManagerConfig {
            log_lines_per_app: args.log_lines,
            sleep_after: (args.eco_sleep_after > 0)
                .then(|| Duration::from_secs(args.eco_sleep_after)),
            ..crate::host::manager_config(&args.data_dir, &args.dyno, &network, &disk)
        },
        runtime.clone(),
        builder.stacks().clone(),
    );

    // The apps' recent log lines come back before anything appends new ones.
    let log_dir = args.data_dir.join("logs");
    wharf_logs::persist::restore(dynos.logs(), &log_dir).context("restore the apps' logs")?;
    dynos
        .logs()
        .metrics()
        .set_interval(Duration::from_secs(args.dyno.metrics_interval));
    // Metrics history: the router, the dyno samples and the platform's lines feed it.
    let history = wharf_metrics::Recorder::open(&args.data_dir, args.metrics_retention_days)?;
    dynos.logs().metrics().set_history(history.clone());

    // The listeners: taken over from the previous server, or bound now. A copy of each is
    // kept for a successor.
    let (listeners, taken_over) = match taken_over {
        Some((listeners, taken)) => (listeners, Some(taken)),
        None => (bind_listeners(&args).await?, None),
    };
    let handover_copies = listeners.try_clone()?;
    let offer = handover::Offer::open(&args.data_dir)?;
    let tokio_listener = |listener: std::net::TcpListener| -> anyhow::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener::from_std(listener)?)
    };
    let api_listener = tokio_listener(listeners.api)?;
    let api_address = api_listener.local_addr().context("read API address")?;
    let api_tls_listener = tokio_listener(listeners.api_tls)?;
    let api_tls_address = api_tls_listener
        .local_addr()
        .context("read the API's TLS address")?;
    let rendezvous_listener = tokio_listener(listeners.rendezvous)?;
    let rendezvous_address = rendezvous_listener
        .local_addr()
        .context("read the rendezvous address")?;
    let router_listener = tokio_listener(listeners.router)?;
    let router_address = router_listener
        .local_addr()
        .context("read the router's address")?;
    let router_port = router_address.port();
    let router_tls_listener = tokio_listener(listeners.router_tls)?;
    let router_tls_address = router_tls_listener
        .local_addr()
        .context("read the router's HTTPS address")?;
    let public_url = args
        .public_url
        .clone()
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| local_url(api_address));
    let state = ApiState::new(
        store.clone(),
        ApiConfig {
            public_url: public_url.clone(),
            base_domain: args.base_domain.clone(),
            router_port,
            data_dir: args.data_dir.clone(),
            internal_url: local_url(api_address),
            wharf_binary: std::env::current_exe().context("find the wharf binary")?,
            rendezvous_port: rendezvous_address.port(),
            session_lifetime: Duration::from_secs(args.session_lifetime),
        },
        builder,
        dynos.clone(),
    )
    .with_addons(addons)
    .with_outbound(outbound);
    tokio::spawn(wharf_api::addons::forward_events(
        state.clone(),
        addon_event_receiver,
    ));
    crate::addons::check_dyno_access(&state.addons).await;
    crate::addons::reconcile(&state).await;

    state
        .restore_log_router()
        .await
        .context("start the log drains")?;
    // Whatever the subsystems made in the data dir (the database's files) is root's alone.
    crate::data_dir::privatize(&args.data_dir)?;

    let shutdown = CancellationToken::new();
    let mut subsystems = JoinSet::new();
    tokio::spawn(crate::host::maintain_stacks(
        state.builder.stacks().clone(),
        runtime.clone(),
        shutdown.clone(),
    ));
    let addon_registry = state.addons.clone();
    if let Some(postgres) = managed_postgres {
        tokio::spawn(crate::addons::enforce_limits(
            state.clone(),
            postgres,
            shutdown.clone(),
        ));
    }
    let sources_shutdown = shutdown.clone();
    subsystems.spawn(async move {
        sources
            .expire_until(async move { sources_shutdown.cancelled().await })
            .await;
        Ok(())
    });
    // The logs are written out last, after the dyno manager let go of (or stopped) every
    // dyno and read the last of their output.
    let logs_shutdown = CancellationToken::new();
    let logs = dynos.logs().clone();
    let logs_done = logs_shutdown.clone();
    subsystems.spawn(async move {
        wharf_logs::persist::run(logs, log_dir, logs_done).await;
        Ok(())
    });
    let (metrics_history, metrics_shutdown) = (history.clone(), shutdown.clone());
    subsystems.spawn(async move {
        metrics_history.run(metrics_shutdown).await;
        Ok(())
    });
    let certificates = Arc::new(
        CertResolver::new(Some(tls.certified_key())).with_issuer(app_host_issuer(&tls, &args)),
    );
    let (routes, routes_ready, routes_task) = routing::publish(
        store.clone(),
        dynos.clone(),
        certificates.clone(),
        state.clone(),
        shutdown.clone(),
    );
    subsystems.spawn(async move { routes_task.await.context("publish routes")? });
    let (wake, wakes_task) = routing::forward_wakes(dynos.clone(), state.clone(), shutdown.clone());
    subsystems.spawn(async move {
        wakes_task.await.context("forward wake signals")?;
        Ok(())
    });
    let router = Router::new(
        RouterConfig {
            wake: Some(wake),
            affinity_key: routing::affinity_key(&args.data_dir)?,
            ..RouterConfig::new(args.base_domain.clone())
        },
        routes,
        routing::log_sink(dynos.clone(), history),
    );
    dynos.watch_traffic(Arc::new(router.traffic_probe()));
    let dynos_handle = dynos.clone();
    let dynos_shutdown = shutdown.clone();
    let logs_last = logs_shutdown.clone().drop_guard();
    subsystems.spawn(async move {
        let ran = dynos.run(dynos_shutdown).await;
        drop(logs_last);
        ran.context("run the dyno manager")
    });
    // Placement over the hosts that joined (none in a one-host install: then it rests), and
    // the generation that tells their agents to read what they run again.
    let (scheduler_store, scheduler_shutdown) = (store.clone(), shutdown.clone());
    subsystems.spawn(async move {
        wharf_scheduler::run(scheduler_store, scheduler_shutdown).await;
        Ok(())
    });
    let (changes_state, changes_shutdown) = (state.clone(), shutdown.clone());
    subsystems.spawn(async move {
        wharf_api::follow_changes(
            changes_state,
            async move { changes_shutdown.cancelled().await },
        )
        .await;
        Ok(())
    });
    // The router serves once its table has the dynos a previous server left running (taken
    // up first): until then connections wait in the listeners' queues rather than get 404s.
    wait_for_routes(routes_ready).await;
    let router_tls = Arc::new(wharf_router::tls::server_config(certificates)?);
    let router_shutdown = shutdown.clone();
    subsystems.spawn(async move {
        router
            .serve(
                router_listener,
                Some((router_tls_listener, router_tls)),
                router_shutdown,
            )
            .await
            .context("route app traffic")
    });
    say!("wharf: routing app traffic on http://{router_address}");
    say!("wharf: routing app traffic on https://{router_tls_address}");
    let rendezvous = state.rendezvous.clone();
    let rendezvous_shutdown = shutdown.clone();
    let tls_config = tls.server_config();
    subsystems.spawn(async move {
        wharf_api::rendezvous::serve(
            rendezvous_listener,
            tls_config,
            rendezvous,
            rendezvous_shutdown,
        )
        .await
        .context("serve the rendezvous")
    });
    say!("wharf: one-off dynos attach through the rendezvous on {rendezvous_address} (TLS)");
    let (api_tls_state, api_tls_config) = (state.clone(), tls.server_config());
    let api_tls_shutdown = shutdown.clone();
    subsystems.spawn(async move {
        wharf_api::serve_tls(
            api_tls_listener,
            &api_tls_config,
            api_tls_state,
            async move { api_tls_shutdown.cancelled().await },
        )
        .await
        .context("serve the API over TLS")
    });
    say!(
        "wharf: API (TLS) listening on {}",
        local_url(api_tls_address).replacen("http://", "https://", 1)
    );
    let api_shutdown = shutdown.clone();
    subsystems.spawn(async move {
        wharf_api::serve(api_listener, state, async move {
            api_shutdown.cancelled().await
        })
        .await
        .context("serve the API")
    });
    say!("wharf: API listening on {public_url}");
    let _ = std::io::stdout().flush();

    if let Some(taken) = taken_over {
        taken.serving();
    }
    handover::notify_systemd_ready();

    // Until a signal to stop, a successor that took the listeners, or a subsystem's end.
    let successor = loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                "SIGUSR2" => {
                    tracing::info!(binary = %installed_binary.display(), "SIGUSR2: starting a successor");
                    if let Err(error) = handover::start_successor(&installed_binary) {
                        tracing::error!(error = format!("{error:#}"), "start a successor");
                    }
                }
                signal => {
                    tracing::info!(signal, "shutting down");
                    break None;
                }
            },
            handed = offer.hand_over(&handover_copies) => match handed {
                Ok(successor) => break Some(successor),
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "hand the listeners over");
                }
            },
            Some(finished) = subsystems.join_next() => {
                finished.context("a subsystem panicked")??;
                anyhow::bail!("a subsystem stopped unexpectedly");
            }
        }
    };
    // The successor takes the dynos up: they run on, whatever --stop-dynos says.
    let leave_dynos = !args.dyno.stop_dynos || successor.is_some();
    if successor.is_some() {
        dynos_handle.leave_running();
    }
    shutdown.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, async {
        while let Some(finished) = subsystems.join_next().await {
            if let Err(error) = finished.context("a subsystem panicked").and_then(|r| r) {
                tracing::error!(
                    error = format!("{error:#}"),
                    "subsystem failed while stopping"
                );
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("subsystems did not stop within {SHUTDOWN_DEADLINE:?}; exiting anyway");
    }
    // Add-on servers write their data out; then every container is gone: the bridge (their
    // address) and the table go too.
    crate::addons::stop(&addon_registry).await;
    // Left running, the dynos keep the bridge, the table and their disks (the network
    // knows, and leaves them); stopped, nothing of theirs is left.
    network.close().await;
    if !leave_dynos {
        if let Err(error) = disk.close().await {
            tracing::warn!(error = format!("{error:#}"), "unmount the disk pool");
        }
    } else {
        tracing::info!("dynos left running for the next start to take up");
    }
    store.close().await;
    drop(data_dir_lock);
    if let Some(successor) = successor {
        return hand_over_to(successor, &offer, &handover_copies).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for the successor that took the listeners to serve; one that ends first (a binary
/// that fails to start) is replaced by this server's own binary, which takes the listeners
/// and the dynos up again.
async fn hand_over_to(
    successor: handover::Successor,
    offer: &handover::Offer,
    listeners: &handover::Listeners,
) -> anyhow::Result<()> {
    let serving =
        |successor: handover::Successor| tokio::task::spawn_blocking(move || successor.serving());
    if serving(successor).await.unwrap_or(false) {
        tracing::info!("the successor serves: stopped");
        return Ok(());
    }
    tracing::error!("the successor ended before it served: starting this server's binary again");
    // The kernel's link to the binary this process runs, replaced on disk or not.
    let mut again = handover::start_successor(Path::new("/proc/self/exe"))?;
    let handed = tokio::select! {
        handed = offer.hand_over(listeners) => handed?,
        status = again.wait() => {
            anyhow::bail!("this server's binary, started again, ended at once: {status:?}");
        }
    };
    if serving(handed).await.unwrap_or(false) {
        tracing::info!("this server's binary serves again: stopped");
        return Ok(());
    }
    anyhow::bail!("neither the successor nor this server's binary started again: nothing serves")
}

/// Certificates for app hosts (`<app>.<base-domain>`) issued by Wharf's CA on first use: the
/// server certificate's `*.<base-domain>` covers them too, but strict clients refuse a
/// wildcard over one label (`*.localhost`, the default).
fn app_host_issuer(tls: &Tls, args: &ServerArgs) -> wharf_router::tls::Issuer {
    let tls = tls.clone();
    let suffix = format!(".{}", args.base_domain.to_ascii_lowercase());
    Box::new(move |name: &str| {
        let app = name.strip_suffix(&suffix)?;
        wharf_model::AppName::parse(app).ok()?;
        match tls.issue(name) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::warn!(name, error = format!("{error:#}"), "issue a certificate");
                None
            }
        }
    })
}

/// The names the server's certificate covers: this host (and the host of its public URL,
/// where clients on other machines reach the rendezvous), and every app's host name.
fn certificate_names(base_domain: &str, public_url: Option<&str>) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_owned());
        }
    }
    if let Some(host) = public_url.and_then(url_host) {
        if !names.iter().any(|name| name == host) && host != base_domain {
            names.push(host.to_owned());
        }
    }
    if base_domain != "localhost" {
        names.push(base_domain.to_owned());
    }
    names.push(format!("*.{base_domain}"));
    names
}

/// Where tenants' URLs may point, from `WHARF_OUTBOUND_ALLOW`. This host's addresses are read
/// once now, so that a host whose tables cannot be read fails at start, not at a drain.
fn outbound_policy(setting: &str) -> anyhow::Result<wharf_outbound::Policy> {
    let policy = wharf_outbound::Policy::from_setting(setting)
        .map_err(|error| anyhow::anyhow!("WHARF_OUTBOUND_ALLOW: {error}"))?;
    policy
        .own_addresses()
        .map_err(|error| anyhow::anyhow!("set up the outbound policy: {error}"))?;
    if !policy.allow_list().entries().is_empty() {
        tracing::info!(allow = %policy.allow_list(), "tenants' URLs may reach these internal networks");
    }
    Ok(policy)
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A fresh server (no accounts) creates its admin and writes the admin's key to
/// `<data-dir>/admin-api-key` (mode 0600). The key file is written before the account, so a
/// crash in between leaves no admin whose key is lost: the next start simply tries again.
async fn bootstrap_admin(store: &Store, args: &ServerArgs) -> anyhow::Result<()> {
    let key_file = args.data_dir.join(ADMIN_KEY_FILE);
    if store.has_accounts().await? {
        if key_file.exists() {
            say!(
                "wharf: the admin API key is in {} (log in with `wharf login`)",
                key_file.display()
            );
        }
        return Ok(());
    }
    let email = wharf_model::Email::parse(&args.admin_email)
        .map_err(|e| anyhow::anyhow!("WHARF_ADMIN_EMAIL: {e}"))?;
    let key = generate_api_key();
    write_secret(&key_file, &key)?;
    match store.bootstrap_admin(&email, &hash_api_key(&key)).await? {
        Some(admin) => say!(
            "wharf: created the admin account {}; its API key is in {} (mode 0600)",
            admin.email,
            key_file.display()
        ),
        None => tracing::warn!("another server created the first account at the same time"),
    }
    Ok(())
}

/// Writes `contents` to `path` with mode 0600, atomically (temp file, fsync, rename).
pub(crate) fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("create {}", temporary.display()))?;
    file.write_all(format!("{contents}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// Connections the kernel queues for the router before it accepts them: tokio's default of
/// 128 drops SYNs when hundreds of clients connect at once.
pub(crate) const ROUTER_BACKLOG: u32 = 1024;

/// Waits (at most [`ROUTES_READY_TIMEOUT`]) for the first route table with the dynos taken up.
pub(crate) async fn wait_for_routes(mut ready: tokio::sync::watch::Receiver<bool>) {
    let waited = tokio::time::timeout(ROUTES_READY_TIMEOUT, ready.wait_for(|ready| *ready)).await;
    if waited.is_err() {
        tracing::warn!(
            "the route table is not ready after {ROUTES_READY_TIMEOUT:?}: routing with what it has"
        );
    }
}

/// Binds the server's listeners where its settings say.
async fn bind_listeners(args: &ServerArgs) -> anyhow::Result<handover::Listeners> {
    let std = |listener: TcpListener| listener.into_std().context("a listener");
    Ok(handover::Listeners {
        api: std(TcpListener::bind(&args.api_listen)
            .await
            .with_context(|| format!("listen for the API on {}", args.api_listen))?)?,
        api_tls: std(TcpListener::bind(&args.api_tls_listen)
            .await
            .with_context(|| format!("listen for the API over TLS on {}", args.api_tls_listen))?)?,
        rendezvous: std(TcpListener::bind(&args.rendezvous_listen)
            .await
            .with_context(|| {
                format!("listen for the rendezvous on {}", args.rendezvous_listen)
            })?)?,
        router: std(listen_with_backlog(&args.router_listen, ROUTER_BACKLOG)
            .await
            .with_context(|| format!("listen for app traffic on {}", args.router_listen))?)?,
        router_tls: std(listen_with_backlog(&args.router_tls_listen, ROUTER_BACKLOG)
            .await
            .with_context(|| {
                format!("listen for HTTPS app traffic on {}", args.router_tls_listen)
            })?)?,
    })
}

pub(crate) async fn listen_with_backlog(
    address: &str,
    backlog: u32,
) -> anyhow::Result<TcpListener> {
    let address: SocketAddr = tokio::net::lookup_host(address)
        .await?
        .next()
        .with_context(|| format!("{address:?} names no address"))?;
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    Ok(socket.listen(backlog)?)
}

/// The host of `url` (`https://host:port/path`), without brackets for an IPv6 address.
fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']')?.0,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// The URL clients on this host use for an API bound to `address` (a wildcard address is
/// reached through loopback).
fn local_url(address: SocketAddr) -> String {
    let host = match address.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", address.port())
}

/// SIGTERM and SIGINT, caught from the moment this is made: a signal that arrives while the
/// server is still starting up is kept until [`ShutdownSignals::recv`] is polled, instead of
/// killing the process with the default action.
pub struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    upgrade: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn listen() -> anyhow::Result<ShutdownSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate()).context("listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("listen for SIGINT")?,
            upgrade: signal(SignalKind::user_defined2()).context("listen for SIGUSR2")?,
        })
    }

    /// Waits for the next signal and names it.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.upgrade.recv() => "SIGUSR2",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls() {
        assert_eq!(
            local_url("0.0.0.0:5000".parse().unwrap()),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            local_url("127.0.0.1:80".parse().unwrap()),
            "http://127.0.0.1:80"
        );
        assert_eq!(local_url("[::]:5000".parse().unwrap()), "http://[::1]:5000");
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://wharf.example.com:5000/x"),
            Some("wharf.example.com")
        );
        assert_eq!(url_host("http://10.0.0.7"), Some("10.0.0.7"));
        assert_eq!(url_host("http://[fd00::1]:5000"), Some("fd00::1"));
        assert_eq!(url_host("http://user@host:1"), Some("host"));
        assert_eq!(url_host("wharf.example.com"), None);
        assert_eq!(url_host("http://:5000"), None);
    }

    #[test]
    fn secrets_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_secret(&path, "abc").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abc\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
