//! The add-on services this server offers, from its settings: each built-in provider is on
//! when its server is configured, and asking for one that is not says which setting turns it
//! on. With a dyno network, apps' URLs name each server where dynos reach it (a loopback
//! server at the network's gateway), and start-up says, per server, whether dynos get in
//! without a password.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use wharf_addons::exposure::{self, DynoAccess};
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::redis::RedisProvider;
use wharf_addons::{DynoNetwork, Registry};

use crate::server::ServerArgs;

/// The registry of the configured services. `network` is where dynos live (`None`: they
/// share the host's network, and apps' URLs name the servers as the admin URLs do); each
/// admin URL's host is then resolved once, here.
pub async fn registry(args: &ServerArgs, network: Option<DynoNetwork>) -> anyhow::Result<Registry> {
    let mut registry = Registry::new();
    if let Some(network) = network {
        registry.set_dyno_network(network);
    }
    registry.set_allow_open_servers(args.addons_allow_open_servers);
    match &args.addon_postgres_admin_url {
        Some(url) => {
            let app_host = app_host(network, || wharf_addons::postgres::server_address(url))
                .await
                .context("set up the wharf-postgresql add-on service")?;
            registry.register(Arc::new(
                PostgresProvider::new(url, app_host)
                    .context("set up the wharf-postgresql add-on service")?,
            ))
        }
        None => registry.unavailable(
            &["wharf-postgresql", "heroku-postgresql"],
            "the operator sets WHARF_ADDON_POSTGRES_ADMIN_URL to a PostgreSQL server's admin URL",
        ),
    }
    match &args.addon_redis_url {
        Some(url) => {
            let app_host = app_host(network, || wharf_addons::redis::server_address(url))
                .await
                .context("set up the wharf-redis add-on service")?;
            registry.register(Arc::new(
                RedisProvider::new(url, app_host)
                    .context("set up the wharf-redis add-on service")?,
            ))
        }
        None => registry.unavailable(
            &["wharf-redis", "heroku-redis"],
            "the operator sets WHARF_ADDON_REDIS_URL to a Redis server's admin URL",
        ),
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
