//! Add-ons and what dynos meet at their servers, through the API in process: a server that
//! lets dynos in without a password refuses new add-ons (422, nothing recorded) unless the
//! operator accepted the risk; a server that asks for passwords provisions them with URLs at
//! the dyno network's gateway; a fixed pg_hba.conf counts without a restart; and
//! `GET /addon-services` shows each server's state. Loopback stands in for the dyno network
//! (127.0.0.1 for this machine's trusting PostgreSQL, 127.0.0.2 for private servers that ask
//! their dyno subnet for passwords).
#![allow(clippy::unwrap_used)]

#[path = "../../wharf/tests/support/addon_servers.rs"]
mod addon_servers;
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use addon_servers::{PrivatePostgres, PrivateRedis};
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::TestApi;
use wharf_addons::exposure::DynoAccess;
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::redis::RedisProvider;
use wharf_addons::{DynoNetwork, Registry};

/// How long a reloaded pg_hba.conf may take to apply.
const RELOAD_DEADLINE: Duration = Duration::from_secs(30);

fn machine_postgres() -> String {
    std::env::var("WHARF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A registry probing from `gateway` (on loopback) whose apps' URLs name it.
fn registry(gateway: Ipv4Addr, postgres: &str, redis: Option<&str>, allow: bool) -> Registry {
    let mut registry = Registry::new();
    registry.set_dyno_network(DynoNetwork {
        gateway,
        subnet: (Ipv4Addr::new(127, 0, 0, 0), 8),
    });
    registry.set_allow_open_servers(allow);
    let app_host = Some(IpAddr::V4(gateway));
    registry.register(Arc::new(PostgresProvider::new(postgres, app_host).unwrap()));
    if let Some(redis) = redis {
        registry.register(Arc::new(RedisProvider::new(redis, app_host).unwrap()));
    }
    registry
}

async fn create(api: &TestApi, key: &str, plan: &str) -> support::Reply {
    api.call(
        "POST",
        "/apps/shop/addons",
        Some(key),
        Some(json!({"plan": {"name": plan}})),
    )
    .await
}

/// `dyno_access` of each service `GET /addon-services` lists, by name.
async fn dyno_access(api: &TestApi, key: &str) -> Vec<(String, Value)> {
    let services = api.call("GET", "/addon-services", Some(key), None).await;
    assert_eq!(services.status, StatusCode::OK);
    services
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|service| {
            (
                service["name"].as_str().unwrap().to_owned(),
                service["dyno_access"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_lets_dynos_in_without_a_password_refuses_new_addons() {
    let api = TestApi::with_addons(registry(
        Ipv4Addr::LOCALHOST,
        &machine_postgres(),
        None,
        false,
    ))
    .await;
    let key = api.user("dev@example.com").await;
    api.app(&key, "shop").await;
    // Not probed yet: nothing to show.
    assert_eq!(
        dyno_access(&api, &key).await,
        vec![("wharf-postgresql".to_owned(), Value::Null)]
    );

    let refused = create(&api, &key, "heroku-postgresql").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["id"], "invalid_params");
    let message = refused.body["message"].as_str().unwrap();
    assert!(
        message.contains("lets dynos in without a password")
            && message.contains("WHARF_ADDONS_ALLOW_OPEN_SERVERS=true")
            && message.contains("pg_hba.conf"),
        "{message}"
    );
    // Nothing was recorded.
    let addons = api.call("GET", "/apps/shop/addons", Some(&key), None).await;
    assert_eq!(addons.body, json!([]));
    let vars = api
        .call("GET", "/apps/shop/config-vars", Some(&key), None)
        .await;
    assert_eq!(vars.body.get("DATABASE_URL"), None);

    let listed = dyno_access(&api, &key).await;
    assert_eq!(listed[0].1["state"], "open");
    assert!(
        listed[0].1["message"]
            .as_str()
            .unwrap()
            .starts_with("dynos reach PostgreSQL at 127.0.0.1:"),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_may_accept_the_risk() {
    let api = TestApi::with_addons(registry(
        Ipv4Addr::LOCALHOST,
        &machine_postgres(),
        None,
        true,
    ))
    .await;
    let key = api.user("dev@example.com").await;
    api.app(&key, "shop").await;
    let created = create(&api, &key, "heroku-postgresql").await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(dyno_access(&api, &key).await[0].1["state"], "open");
    let name = created.body["name"].as_str().unwrap();
    let destroyed = api
        .call(
            "DELETE",
            &format!("/apps/shop/addons/{name}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(destroyed.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_ask_dynos_for_passwords_provision_at_the_gateway() {
    let gateway = Ipv4Addr::new(127, 0, 0, 2);
    let postgres = PrivatePostgres::start("127.0.0.0/8");
    let redis = PrivateRedis::start();
    let api = TestApi::with_addons(registry(
        gateway,
        &postgres.admin_url,
        Some(&redis.admin_url),
        false,
    ))
    .await;
    let key = api.user("dev@example.com").await;
    api.app(&key, "shop").await;
    for plan in ["heroku-postgresql", "heroku-redis"] {
        let created = create(&api, &key, plan).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    let vars = api
        .call("GET", "/apps/shop/config-vars", Some(&key), None)
        .await;
    let database_url = vars.body["DATABASE_URL"].as_str().unwrap();
    assert!(
        database_url.contains(&format!("@127.0.0.2:{}/", postgres.port)),
        "the URL names the gateway"
    );
    let redis_url = vars.body["REDIS_URL"].as_str().unwrap();
    assert!(
        redis_url.ends_with(&format!("@127.0.0.2:{}", redis.port)),
        "the URL names the gateway"
    );
    for (service, access) in dyno_access(&api, &key).await {
        assert_eq!(access["state"], "password_required", "{service}: {access}");
        assert!(
            access["message"]
                .as_str()
                .unwrap()
                .ends_with("and must give a password"),
            "{access}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_server_needs_no_restart() {
    let gateway = Ipv4Addr::new(127, 0, 0, 2);
    let postgres = PrivatePostgres::start_with("127.0.0.0/8", "trust");
    let registry = registry(gateway, &postgres.admin_url, None, false);
    let api = TestApi::with_addons(registry.clone()).await;
    let key = api.user("dev@example.com").await;
    api.app(&key, "shop").await;
    let refused = create(&api, &key, "heroku-postgresql").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );

    postgres.reconfigure("127.0.0.0/8", "scram-sha-256");
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while registry
        .probe("wharf-postgresql")
        .await
        .map(|report| report.access)
        != Some(DynoAccess::PasswordRequired)
    {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL never applied pg_hba.conf"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created = create(&api, &key, "heroku-postgresql").await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        dyno_access(&api, &key).await[0].1["state"],
        "password_required"
    );
}
