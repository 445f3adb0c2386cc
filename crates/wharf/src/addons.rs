//! The add-on services this server offers, from its settings: each built-in provider is on
//! when its server is configured, and asking for one that is not says which setting turns it
//! on.

use std::sync::Arc;

use anyhow::Context;
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::redis::RedisProvider;
use wharf_addons::Registry;

use crate::server::ServerArgs;

pub fn registry(args: &ServerArgs) -> anyhow::Result<Registry> {
    let mut registry = Registry::new();
    match &args.addon_postgres_admin_url {
        Some(url) => registry.register(Arc::new(
            PostgresProvider::new(url).context("set up the wharf-postgresql add-on service")?,
        )),
        None => registry.unavailable(
            &["wharf-postgresql", "heroku-postgresql"],
            "the operator sets WHARF_ADDON_POSTGRES_ADMIN_URL to a PostgreSQL server's admin URL",
        ),
    }
    match &args.addon_redis_url {
        Some(url) => registry.register(Arc::new(
            RedisProvider::new(url).context("set up the wharf-redis add-on service")?,
        )),
        None => registry.unavailable(
            &["wharf-redis", "heroku-redis"],
            "the operator sets WHARF_ADDON_REDIS_URL to a Redis server's admin URL",
        ),
    }
    Ok(registry)
}

/// Finishes add-on work a crash interrupted; failures are logged and retried at the next
/// start.
pub async fn reconcile(state: &wharf_api::ApiState) {
    if let Err(error) = wharf_api::addons::reconcile(state).await {
        tracing::warn!(error = format!("{error:#}"), "reconcile add-ons");
    }
}
