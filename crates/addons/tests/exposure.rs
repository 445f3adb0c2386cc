//! Probes against real servers: this machine's own PostgreSQL (trusting loopback) and Redis
//! (no password) are open; private servers configured as an operator of isolated dynos should
//! (scram-sha-256 for the dyno subnet, a Redis password) ask for a password; a port nobody
//! listens on, a server that never answers and a gateway that is not on this host are
//! unreachable. Loopback stands in for the dyno network: 127.0.0.2 plays the gateway for the
//! private servers (their pg_hba.conf trusts only 127.0.0.1), 127.0.0.1 for the machine's own.
#![allow(clippy::unwrap_used)]

#[path = "../../wharf/tests/support/addon_servers.rs"]
mod addon_servers;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use addon_servers::{PrivatePostgres, PrivateRedis};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;
use wharf_addons::exposure::{self, AddonServer, DynoAccess, DynoNetwork, Protocol};
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::redis::RedisProvider;
use wharf_addons::{AddonConfig, Registry, Resource};

/// The dyno network of the private servers: a gateway on loopback that their pg_hba.conf
/// does not trust.
fn private_network() -> DynoNetwork {
    DynoNetwork {
        gateway: Ipv4Addr::new(127, 0, 0, 2),
        subnet: (Ipv4Addr::new(127, 0, 0, 0), 8),
    }
}

/// The machine's own servers, probed from 127.0.0.1 (which its PostgreSQL trusts).
fn machine_network() -> DynoNetwork {
    DynoNetwork {
        gateway: Ipv4Addr::LOCALHOST,
        subnet: (Ipv4Addr::LOCALHOST, 32),
    }
}

/// Where dynos of `network` reach a server configured at `admin`.
fn dyno_server(protocol: Protocol, admin: SocketAddr, network: &DynoNetwork) -> AddonServer {
    AddonServer {
        protocol,
        address: SocketAddr::new(
            exposure::dyno_address(admin.ip(), network.gateway),
            admin.port(),
        ),
    }
}

#[tokio::test]
async fn the_machines_own_servers_let_dynos_in_without_a_password() {
    let network = machine_network();
    let postgres = wharf_addons::postgres::server_address(&support::postgres_url())
        .await
        .unwrap();
    let report = exposure::probe(
        dyno_server(Protocol::Postgres, postgres, &network),
        &network,
    )
    .await;
    assert_eq!(report.access, DynoAccess::Open, "{}", report.message);
    assert!(
        report.message.contains("WITHOUT a password")
            && report
                .message
                .contains("host all all 127.0.0.1/32 scram-sha-256"),
        "{}",
        report.message
    );

    let redis = wharf_addons::redis::server_address(&support::redis_url())
        .await
        .unwrap();
    let report = exposure::probe(dyno_server(Protocol::Redis, redis, &network), &network).await;
    assert_eq!(report.access, DynoAccess::Open, "{}", report.message);
    assert!(report.message.contains("requirepass"), "{}", report.message);
}

#[tokio::test]
async fn servers_configured_for_the_dyno_network_ask_for_a_password() {
    let network = private_network();
    let postgres = PrivatePostgres::start("127.0.0.0/8");
    let redis = PrivateRedis::start();

    let admin = wharf_addons::postgres::server_address(&postgres.admin_url)
        .await
        .unwrap();
    let server = dyno_server(Protocol::Postgres, admin, &network);
    assert_eq!(
        server.address.to_string(),
        format!("127.0.0.2:{}", postgres.port)
    );
    let report = exposure::probe(server, &network).await;
    assert_eq!(
        report.access,
        DynoAccess::PasswordRequired,
        "{}",
        report.message
    );
    assert_eq!(
        report.message,
        format!(
            "dynos reach PostgreSQL at 127.0.0.2:{} and must give a password",
            postgres.port
        )
    );

    let admin = wharf_addons::redis::server_address(&redis.admin_url)
        .await
        .unwrap();
    let report = exposure::probe(dyno_server(Protocol::Redis, admin, &network), &network).await;
    assert_eq!(
        report.access,
        DynoAccess::PasswordRequired,
        "{}",
        report.message
    );
}

#[tokio::test]
async fn a_postgres_without_a_line_for_the_dyno_network_turns_dynos_away() {
    let network = private_network();
    // Only 127.0.0.1 and a subnet the probe does not come from.
    let postgres = PrivatePostgres::start("192.0.2.0/24");
    let admin = wharf_addons::postgres::server_address(&postgres.admin_url)
        .await
        .unwrap();
    let report = exposure::probe(dyno_server(Protocol::Postgres, admin, &network), &network).await;
    assert_eq!(
        report.access,
        DynoAccess::PasswordRequired,
        "{}",
        report.message
    );
    assert!(
        report
            .message
            .contains("no pg_hba.conf entry for host \"127.0.0.2\"")
            && report
                .message
                .contains("`host all all 127.0.0.0/8 scram-sha-256`"),
        "{}",
        report.message
    );
}

#[tokio::test]
async fn servers_dynos_cannot_reach_say_what_to_configure() {
    let network = private_network();
    // Nobody listens: the operator has not made the server listen at the gateway.
    let port = addon_servers::free_port();
    let closed = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for (protocol, fix) in [
        (Protocol::Postgres, "add 127.0.0.2 to listen_addresses"),
        (Protocol::Redis, "add 127.0.0.2 to bind"),
    ] {
        let report = exposure::probe(dyno_server(protocol, closed, &network), &network).await;
        assert_eq!(
            report.access,
            DynoAccess::Unreachable("connection refused".into())
        );
        assert!(report.message.contains(fix), "{}", report.message);
    }

    // A server that accepts and never answers: the probe gives up after its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let report = exposure::probe(
        AddonServer {
            protocol: Protocol::Postgres,
            address: silent.local_addr().unwrap(),
        },
        &network,
    )
    .await;
    assert_eq!(
        report.access,
        DynoAccess::Unreachable("no answer within 2 s".into())
    );

    // A gateway this host does not have: nothing is sent.
    let elsewhere = DynoNetwork {
        gateway: Ipv4Addr::new(192, 0, 2, 1),
        subnet: (Ipv4Addr::new(192, 0, 2, 0), 24),
    };
    let report = exposure::probe(
        AddonServer {
            protocol: Protocol::Redis,
            address: closed,
        },
        &elsewhere,
    )
    .await;
    let DynoAccess::Unreachable(reason) = &report.access else {
        panic!("{report:?}");
    };
    assert!(
        reason.starts_with("cannot connect from 192.0.2.1"),
        "{reason}"
    );
}

/// The authentication request PostgreSQL at the gateway answers a startup message for `user`
/// on `database` with, from the gateway's address as a dyno's connection comes.
async fn first_authentication_request(
    gateway: Ipv4Addr,
    port: u16,
    user: &str,
    database: &str,
) -> i32 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((gateway, 0))).unwrap();
    let mut stream = socket
        .connect(SocketAddr::from((gateway, port)))
        .await
        .unwrap();
    let mut body = (3i32 << 16).to_be_bytes().to_vec();
    for text in ["user", user, "database", database] {
        body.extend_from_slice(text.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = i32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    message.extend_from_slice(&body);
    stream.write_all(&message).await.unwrap();
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], b'R', "an authentication request: {head:?}");
    i32::from_be_bytes([head[5], head[6], head[7], head[8]])
}

/// The providers of the private servers, handing out URLs at the private gateway, in a
/// registry that probes from it.
async fn private_registry(postgres: &PrivatePostgres, redis: &PrivateRedis) -> Registry {
    let network = private_network();
    let mut registry = Registry::new();
    registry.set_dyno_network(network);
    let app_host = Some(IpAddr::V4(network.gateway));
    registry.register(Arc::new(
        PostgresProvider::new(&postgres.admin_url, app_host).unwrap(),
    ));
    registry.register(Arc::new(
        RedisProvider::new(&redis.admin_url, app_host).unwrap(),
    ));
    registry
}

#[tokio::test]
async fn apps_reach_their_addons_at_the_gateway_with_their_password_only() {
    let postgres = PrivatePostgres::start("127.0.0.0/8");
    let redis = PrivateRedis::start();
    let registry = private_registry(&postgres, &redis).await;
    let gateway: IpAddr = "127.0.0.2".parse().unwrap();
    let mut expected = vec![(gateway, postgres.port), (gateway, redis.port)];
    expected.sort();
    assert_eq!(registry.dyno_endpoints(), expected);
    for (name, _) in registry.probe_all().await {
        assert_eq!(
            registry.last_report(&name).map(|report| report.access),
            Some(DynoAccess::PasswordRequired),
            "{name}"
        );
        assert_eq!(registry.check_provisioning(&name).await, Ok(()));
    }

    let resource = Resource { id: Uuid::new_v4() };
    let provider = registry.provider("heroku-postgresql").unwrap();
    let plan = provider.service().plan(None).unwrap().clone();
    let provisioned = provider
        .provision(resource, &plan, &AddonConfig::new())
        .await
        .unwrap();
    let url = &provisioned.config["URL"];
    assert!(
        url.contains(&format!("@127.0.0.2:{}/", postgres.port)),
        "the URL names the gateway"
    );
    // The password works at the gateway's address (this client comes from 127.0.0.1, which
    // the cluster trusts: loopback connections take that source)...
    let mut connection = PgConnection::connect(url).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(one, 1);
    connection.close().await.unwrap();
    // ...and from the dyno network the add-on's role is asked for it (SASL, SCRAM).
    let role = url
        .strip_prefix("postgres://")
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    let database = url.rsplit('/').next().unwrap();
    assert_eq!(
        first_authentication_request(private_network().gateway, postgres.port, role, database)
            .await,
        10
    );
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();

    let provider = registry.provider("heroku-redis").unwrap();
    let plan = provider.service().plan(None).unwrap().clone();
    let provisioned = provider
        .provision(resource, &plan, &AddonConfig::new())
        .await
        .unwrap();
    assert!(
        provisioned.config["URL"].ends_with(&format!("@127.0.0.2:{}", redis.port)),
        "the URL names the gateway"
    );
    let mut client = support::Client::connect(support::Kind::Redis, &provisioned.config)
        .await
        .unwrap();
    client.write_and_read("greeting", "hello").await.unwrap();
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn open_servers_are_refused_unless_the_operator_accepts_the_risk() {
    let network = machine_network();
    let mut registry = Registry::new();
    registry.set_dyno_network(network);
    let postgres_url = support::postgres_url();
    let admin = wharf_addons::postgres::server_address(&postgres_url)
        .await
        .unwrap();
    let app_host = Some(exposure::dyno_address(admin.ip(), network.gateway));
    registry.register(Arc::new(
        PostgresProvider::new(&postgres_url, app_host).unwrap(),
    ));
    assert_eq!(registry.last_report("wharf-postgresql"), None);
    let refusal = registry
        .check_provisioning("heroku-postgresql")
        .await
        .unwrap_err();
    assert!(
        refusal.contains("WHARF_ADDONS_ALLOW_OPEN_SERVERS=true") && refusal.contains("pg_hba.conf"),
        "{refusal}"
    );
    assert_eq!(
        registry
            .last_report("wharf-postgresql")
            .map(|report| report.access),
        Some(DynoAccess::Open)
    );

    registry.set_allow_open_servers(true);
    assert_eq!(
        registry.check_provisioning("wharf-postgresql").await,
        Ok(())
    );

    // Without a dyno network (dynos share the host's network), nothing is probed.
    let mut shared = Registry::new();
    shared.register(Arc::new(
        PostgresProvider::new(&postgres_url, None).unwrap(),
    ));
    assert_eq!(shared.dyno_endpoints(), vec![]);
    assert_eq!(shared.probe("wharf-postgresql").await, None);
    assert_eq!(shared.check_provisioning("wharf-postgresql").await, Ok(()));
}
