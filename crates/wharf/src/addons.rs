//! The add-on services this server offers, from its settings. By default Wharf runs their
//! servers itself ([`Managed`]): a PostgreSQL cluster under the data dir for
//! `wharf-postgresql`, a `redis-server` per `wharf-redis` add-on, each listening on the dyno
//! network's gateway only. An admin URL puts a service on an operator's server instead. With
//! a dyno network, apps' URLs name each server where dynos reach it (a loopback server at the
//! network's gateway), and start-up says, per server, whether dynos get in without a password.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wharf_addons::exposure::{self, DynoAccess};
use wharf_addons::managed_postgres::{self, ClusterSettings};
use wharf_addons::managed_redis::{self, ManagedRedis, ManagedRedisSettings};
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::redis::RedisProvider;
use wharf_addons::{
    AddonEvent, DynoNetwork, Events, Plan, Provider, Registry, Resource, Supervisor,
};

use crate::server::ServerArgs;

/// The registry of the services on operators' servers (Wharf runs the others: [`Managed`]).
/// `network` is where dynos live (`None`: they share the host's network, and apps' URLs name
/// the servers as the admin URLs do); each admin URL's host is then resolved once, here.
pub async fn registry(args: &ServerArgs, network: Option<DynoNetwork>) -> anyhow::Result<Registry> {
    let mut registry = Registry::new();
    if let Some(network) = network {
        registry.set_dyno_network(network);
    }
    registry.set_allow_open_servers(args.addons_allow_open_servers);
    if let Some(url) = &args.addon_postgres_admin_url {
        let app_host = app_host(network, || wharf_addons::postgres::server_address(url))
            .await
            .context("set up the wharf-postgresql add-on service")?;
        registry.register(Arc::new(
            PostgresProvider::new(url, app_host)
                .context("set up the wharf-postgresql add-on service")?,
        ))
    }
    if let Some(url) = &args.addon_redis_url {
        let app_host = app_host(network, || wharf_addons::redis::server_address(url))
            .await
            .context("set up the wharf-redis add-on service")?;
        registry.register(Arc::new(
            RedisProvider::new(url, app_host).context("set up the wharf-redis add-on service")?,
        ))
    }
    Ok(registry)
}

/// Where dynos of `network` reach a server (resolved by `address`), or `None` without a
/// dyno network.
async fn app_host<F>(
    network: Option<DynoNetwork>,
    address: impl FnOnce() -> F,
) -> anyhow::Result<Option<IpAddr>>
where
    F: std::future::Future<Output = anyhow::Result<SocketAddr>>,
{
    let Some(network) = network else {
        return Ok(None);
    };
    let address = address().await?;
    Ok(Some(exposure::dyno_address(address.ip(), network.gateway)))
}

/// Start-up: probes every configured server from the dyno network and logs one line each,
/// where dynos reach it and whether they need a password (a warning, with what to change,
/// when they do not or cannot reach it). `GET /addon-services` shows the same.
pub async fn check_dyno_access(registry: &Registry) {
    for (service, report) in registry.probe_all().await {
        match report {
            None => tracing::info!(
                service,
                "dynos share the host's network (no dyno network): whether they need a \
                 password at the add-on server is not checked"
            ),
            Some(report) => match report.access {
                DynoAccess::PasswordRequired => tracing::info!(
                    service,
                    access = report.access.state(),
                    "{}",
                    report.message
                ),
                DynoAccess::Open => tracing::warn!(
                    service,
                    access = report.access.state(),
                    "{}; {}",
                    report.message,
                    match registry.allows_open_servers() {
                        true =>
                            "new add-ons are provisioned anyway (WHARF_ADDONS_ALLOW_OPEN_SERVERS)",
                        false =>
                            "new add-ons of it are refused until it is fixed \
                                  (WHARF_ADDONS_ALLOW_OPEN_SERVERS=true accepts the risk)",
                    }
                ),
                DynoAccess::Unreachable(_) => tracing::warn!(
                    service,
                    access = report.access.state(),
                    "{}",
                    report.message
                ),
            },
        }
    }
}

/// Finishes add-on work a crash interrupted; failures are logged and retried at the next
/// start.
pub async fn reconcile(state: &wharf_api::ApiState) {
    if let Err(error) = wharf_api::addons::reconcile(state).await {
        tracing::warn!(error = format!("{error:#}"), "reconcile add-ons");
    }
}

/// The services whose servers Wharf runs itself: those without an operator's admin URL.
pub struct Managed {
    /// The PostgreSQL cluster's port.
    postgres: Option<u16>,
    /// The ports of the per-add-on Redis servers, inclusive.
    redis: Option<(u16, u16)>,
}

const POSTGRES_NAMES: [&str; 2] = ["wharf-postgresql", "heroku-postgresql"];
const REDIS_NAMES: [&str; 2] = ["wharf-redis", "heroku-redis"];
/// The OS users the servers run as (made by Debian's packages).
const POSTGRES_USER: &str = "postgres";
const REDIS_USER: &str = "redis";
const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// `<data-dir>/addons`: passable by the servers' users, listable by none.
const ADDONS_MODE: u32 = 0o711;

impl Managed {
    pub fn from_args(args: &ServerArgs) -> anyhow::Result<Managed> {
        let redis = match args.addon_redis_url {
            Some(_) => None,
            None => Some(port_range(&args.addon_redis_ports).context("WHARF_ADDON_REDIS_PORTS")?),
        };
        Ok(Managed {
            postgres: args
                .addon_postgres_admin_url
                .is_none()
                .then_some(args.addon_postgres_port),
            redis,
        })
    }

    /// The servers' single ports on the gateway, for the firewall.
    pub fn dyno_endpoints(&self, gateway: std::net::Ipv4Addr) -> Vec<(IpAddr, u16)> {
        self.postgres
            .map(|port| (IpAddr::V4(gateway), port))
            .into_iter()
            .collect()
    }

    /// The servers' port ranges on the gateway, for the firewall.
    pub fn dyno_port_ranges(&self) -> Vec<(u16, u16)> {
        self.redis.into_iter().collect()
    }

    /// Starts the PostgreSQL cluster and registers the managed services. A service whose
    /// server cannot run here (its package is missing) is logged and left off, saying why:
    /// the rest of Wharf still starts. Returns the PostgreSQL provider when Wharf runs its
    /// cluster, for [`enforce_limits`].
    pub async fn start(
        &self,
        registry: &mut Registry,
        data_dir: &Path,
        gateway: std::net::Ipv4Addr,
        events: Events,
    ) -> anyhow::Result<Option<Arc<PostgresProvider>>> {
        if self.postgres.is_none() && self.redis.is_none() {
            return Ok(None);
        }
        let exits = events.clone();
        let supervisor = Supervisor::new(Arc::new(move |key: &str, status| {
            if let Some(event) = exit_event(key, status) {
                let _ = exits.send(event);
            }
        }))?;
        // The servers' users pass through to their own directories; none may list the others.
        let root = data_dir.join("addons");
        std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(ADDONS_MODE))
            .with_context(|| format!("set the mode of {}", root.display()))?;
        let listen = IpAddr::V4(gateway);
        let mut postgres = None;
        if let Some(port) = self.postgres {
            let settings = ClusterSettings {
                root: root.join("postgres"),
                listen,
                port,
                bin_dir: None,
                user: POSTGRES_USER.to_owned(),
            };
            match managed_postgres::start(settings, supervisor.clone(), events.clone()).await {
                Ok(provider) => {
                    let provider = Arc::new(provider);
                    registry.register(provider.clone());
                    postgres = Some(provider);
                }
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "start the PostgreSQL cluster for wharf-postgresql add-ons: the \
                         service is off"
                    );
                    registry.unavailable(
                        &POSTGRES_NAMES,
                        format!(
                            "its PostgreSQL cluster did not start ({error:#}): the operator \
                             runs `scripts/start` (it installs PostgreSQL) or sets \
                             WHARF_ADDON_POSTGRES_ADMIN_URL"
                        ),
                    );
                }
            }
        }
        if let Some((first, last)) = self.redis {
            let settings = ManagedRedisSettings {
                root: root.join("redis"),
                listen,
                ports: (first, last),
                redis_server: REDIS_SERVER.into(),
                user: REDIS_USER.to_owned(),
            };
            match ManagedRedis::new(settings, supervisor, events) {
                Ok(provider) => registry.register(Arc::new(provider)),
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "set up wharf-redis add-ons: the service is off"
                    );
                    registry.unavailable(
                        &REDIS_NAMES,
                        format!(
                            "{error:#}: the operator runs `scripts/start` (it installs \
                             redis-server) or sets WHARF_ADDON_REDIS_URL"
                        ),
                    );
                }
            }
        }
        Ok(postgres)
    }
}

/// How often the managed PostgreSQL's plan limits are checked (storage, connections).
const LIMITS_INTERVAL: Duration = Duration::from_secs(60);

/// Checks the plan limits of every `wharf-postgresql` add-on on Wharf's cluster every
/// [`LIMITS_INTERVAL`], until `shutdown`: writes are revoked over the storage limit and given
/// back under it, and the apps' logs say so.
pub async fn enforce_limits(
    state: wharf_api::ApiState,
    provider: Arc<PostgresProvider>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let service = provider.service().clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LIMITS_INTERVAL) => {}
        }
        let addons = match state.store.all_addons().await {
            Ok(addons) => addons,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "list add-ons to check their limits"
                );
                continue;
            }
        };
        let resources: Vec<(Resource, Plan)> = addons
            .iter()
            .filter(|addon| addon.service == service.name)
            .filter(|addon| addon.state == wharf_model::AddonState::Provisioned)
            .filter_map(|addon| {
                let plan = service.plan(Some(&addon.plan)).or(service.plan(None))?;
                Some((Resource { id: addon.id }, plan.clone()))
            })
            .collect();
        if let Err(error) = provider.enforce_limits(&resources).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "check PostgreSQL add-ons' plan limits"
            );
        }
    }
}

/// `FIRST-LAST`, a non-empty range of ports.
fn port_range(text: &str) -> anyhow::Result<(u16, u16)> {
    let parsed = text.split_once('-').and_then(|(first, last)| {
        Some((
            first.trim().parse::<u16>().ok()?,
            last.trim().parse::<u16>().ok()?,
        ))
    });
    match parsed {
        Some((first, last)) if first > 0 && first <= last => Ok((first, last)),
        _ => anyhow::bail!("{text:?} is not a range of ports: write FIRST-LAST, e.g. 16400-16999"),
    }
}

/// A server of one add-on exited on its own: its apps' logs say so. (The PostgreSQL
/// cluster's exits are Wharf's log's: they concern every database at once.)
fn exit_event(key: &str, status: std::process::ExitStatus) -> Option<AddonEvent> {
    let resource = managed_redis::server_resource(key)?;
    Some(AddonEvent {
        resource: resource.id,
        source: "redis",
        message: format!("The add-on's Redis server exited ({status}): starting it again"),
    })
}

/// Wharf stops cleanly: the servers it runs write their data out and stop.
pub async fn stop(registry: &Registry) {
    for provider in registry.providers() {
        provider.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(port_range("16400-16999").ok(), Some((16400, 16999)));
        assert_eq!(port_range(" 7000 - 7000 ").ok(), Some((7000, 7000)));
        for bad in ["", "16400", "16999-16400", "0-10", "a-b", "1-70000"] {
            let error = port_range(bad).expect_err(bad).to_string();
            assert!(error.contains("FIRST-LAST"), "{bad}: {error}");
        }
    }
}
