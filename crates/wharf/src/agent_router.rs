//! The router on an agent's host: the same router as the control plane's, serving every app
//! from the table the control plane hands the hosts (`GET /agent/routes`), and reaching each
//! web dyno at its host's published port (this host's dynos too, through their own ports).
//! Its request lines go into the host's log buffer, which ships them to the control plane's
//! log router with the dynos' lines.
//!
//! Invariants:
//! - The table is replaced only by a newer one the control plane sent: while the control plane
//!   is away (restarting, or cut off) the router keeps routing with the last table it had.
//! - The published ports accept this host's router and the routers of the hosts the table
//!   names (besides the control plane), and nothing else.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wharf_agent::logs::RouterRequest;
use wharf_agent::{ControlPlane, Peers, Publisher};
use wharf_api_types::AgentRoutes;
use wharf_dynos::{DynoManager, LogLine, LogSource};
use wharf_logs::Outbox;
use wharf_router::{AppRoutes, Backend, RouteTable, RouterLogLine};

/// How long to wait before asking again after a failed read of the table.
const RETRY: Duration = Duration::from_secs(1);

/// Keeps `tables`, the publisher's peers and the hosts asked before fencing in step with the
/// control plane's route table until `shutdown`. `first` turns true with the first table (the
/// router serves from then).
pub async fn follow(
    control_plane: ControlPlane,
    publisher: Publisher,
    peers: Peers,
    tables: watch::Sender<Arc<RouteTable>>,
    first: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut version = None;
    let mut failing = false;
    loop {
        let read = tokio::select! {
            () = shutdown.cancelled() => return,
            read = control_plane.routes(version) => read,
        };
        match read {
            Ok(routes) => {
                if failing {
                    tracing::info!("reading the route table from the control plane again");
                    failing = false;
                }
                if version == Some(routes.version) {
                    continue;
                }
                version = Some(routes.version);
                let addresses = |list: &[String]| -> HashSet<std::net::IpAddr> {
                    list.iter()
                        .filter_map(|address| address.parse().ok())
                        .collect()
                };
                peers.set_hosts(addresses(&routes.leased));
                publisher.set_hosts(addresses(&routes.hosts));
                let table = table(&routes);
                tables.send_if_modified(|current| {
                    let changed = **current != table;
                    if changed {
                        *current = Arc::new(table);
                    }
                    changed
                });
                first.send_if_modified(|first| !std::mem::replace(first, true));
            }
            Err(error) => {
                if !failing {
                    tracing::warn!("read the route table; routing with the last one: {error:#}");
                    failing = true;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

/// The router's table from the control plane's: entries that do not parse are left out.
pub fn table(routes: &AgentRoutes) -> RouteTable {
    let apps: HashMap<String, AppRoutes> = routes
        .apps
        .iter()
        .filter_map(|app| {
            let app_id = uuid::Uuid::parse_str(&app.id).ok()?;
            let backends = app
                .backends
                .iter()
                .filter_map(|backend| {
                    Some(Backend {
                        id: uuid::Uuid::parse_str(&backend.id).ok()?,
                        dyno: backend.dyno.clone(),
                        addr: backend.upstream.parse().ok()?,
                    })
                })
                .collect();
            Some((
                app.name.to_ascii_lowercase(),
                AppRoutes {
                    app_id,
                    maintenance: app.maintenance,
                    web_quantity: app.web_quantity,
                    crashed: app.crashed,
                    booting: app.booting,
                    backends,
                    session_affinity: app.session_affinity,
                },
            ))
        })
        .collect();
    let known: HashSet<&str> = apps.keys().map(String::as_str).collect();
    let domains = routes
        .domains
        .iter()
        .filter(|(_, app)| known.contains(app.as_str()))
        .map(|(host, app)| (host.to_ascii_lowercase(), app.clone()))
        .collect();
    RouteTable { apps, domains }
}

/// The most wake signals waiting to go to the control plane; the router asks again for an app
/// whose signal found the queue full on its next table change.
const WAKE_QUEUE: usize = 256;

/// Hands the router's wake signals (a request held for an app with no web dyno up: it may
/// sleep) to the control plane, which wakes the app on every host, until `shutdown`.
pub fn forward_wakes(
    control_plane: ControlPlane,
    shutdown: CancellationToken,
) -> tokio::sync::mpsc::Sender<uuid::Uuid> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(WAKE_QUEUE);
    tokio::spawn(async move {
        loop {
            let app = tokio::select! {
                () = shutdown.cancelled() => return,
                app = receiver.recv() => match app {
                    Some(app) => app,
                    None => return,
                },
            };
            if let Err(error) = control_plane.wake(app).await {
                tracing::warn!(%app, "wake an app: {error:#}");
            }
        }
    });
    sender
}

/// Where the host router's request lines go: the host's log buffer, shipped to the control
/// plane as `heroku[router]` lines of the app (where they also keep the app awake), and each
/// request's figures to `requests`, shipped for the app's metrics history.
pub fn log_sink(
    dynos: DynoManager,
    requests: Arc<Outbox<RouterRequest>>,
) -> impl Fn(uuid::Uuid, RouterLogLine) + Send + Sync + 'static {
    move |app_id, line| {
        requests.push(RouterRequest {
            app: app_id,
            at: time::OffsetDateTime::now_utc().unix_timestamp(),
            status: line.status,
            total_us: line
                .total()
                .map(|total| u64::try_from(total.as_micros()).unwrap_or(u64::MAX)),
            code: line.error.map(|error| error.code()),
        });
        dynos.logs().append(
            app_id,
            LogLine::now(LogSource::Heroku, RouterLogLine::PROCESS, line.message()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_api_types::{AgentBackend, AgentRouteApp};

    #[test]
    fn the_control_planes_table_becomes_the_routers() {
        let app = uuid::Uuid::from_u128(1);
        let dyno = uuid::Uuid::from_u128(2);
        let routes = AgentRoutes {
            version: 7,
            apps: vec![
                AgentRouteApp {
                    id: app.to_string(),
                    name: "shop".into(),
                    maintenance: false,
                    web_quantity: 2,
                    crashed: false,
                    booting: true,
                    session_affinity: true,
                    backends: vec![
                        AgentBackend {
                            id: dyno.to_string(),
                            dyno: "web.1".into(),
                            upstream: "198.18.0.2:20000".into(),
                        },
                        AgentBackend {
                            id: dyno.to_string(),
                            dyno: "web.2".into(),
                            upstream: "not an address".into(),
                        },
                    ],
                },
                AgentRouteApp {
                    id: "not a uuid".into(),
                    name: "broken".into(),
                    maintenance: false,
                    web_quantity: 1,
                    crashed: false,
                    booting: false,
                    session_affinity: false,
                    backends: vec![],
                },
            ],
            domains: [
                ("www.shop.example".to_owned(), "shop".to_owned()),
                ("www.broken.example".to_owned(), "broken".to_owned()),
            ]
            .into(),
            hosts: vec!["198.18.0.2".into()],
            leased: vec!["198.18.0.2".into()],
        };
        let table = table(&routes);
        assert_eq!(table.apps.len(), 1);
        let shop = &table.apps["shop"];
        assert_eq!(shop.app_id, app);
        assert!(shop.booting && shop.session_affinity && !shop.crashed);
        assert_eq!(shop.web_quantity, 2);
        assert_eq!(
            shop.backends,
            [Backend {
                id: dyno,
                dyno: "web.1".into(),
                addr: "198.18.0.2:20000".parse().unwrap(),
            }]
        );
        assert_eq!(
            table.domains,
            [("www.shop.example".to_owned(), "shop".to_owned())].into()
        );
    }
}
