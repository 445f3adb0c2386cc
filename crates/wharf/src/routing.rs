//! Feeds the router: turns the dyno manager's table of `up` web dynos, plus what the store
//! knows of each app (maintenance, how many web dynos it should have), into the router's
//! route table, and writes the router's request lines into the apps' logs.
//!
//! This runs beside the router, never in a request's path: when the store is down the router
//! keeps routing with the last table it got.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wharf_dynos::{DynoManager, DynoState, LogLine, LogSource};
use wharf_router::{AppRoutes, Backend, RouteTable, RouterLogLine};
use wharf_store::Store;

/// How often the table is rebuilt even when no dyno changed (maintenance, formation).
const REFRESH: Duration = Duration::from_secs(1);

/// Publishes route tables on the returned channel until `shutdown`.
pub fn publish(
    store: Store,
    dynos: DynoManager,
    shutdown: CancellationToken,
) -> (
    watch::Receiver<Arc<RouteTable>>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (sender, receiver) = watch::channel(Arc::new(RouteTable::default()));
    let task = tokio::spawn(async move {
        let mut changes = dynos.routes();
        loop {
            match build(&store, &dynos).await {
                Ok(table) => {
                    sender.send_if_modified(|current| {
                        let changed = **current != table;
                        if changed {
                            *current = Arc::new(table);
                        }
                        changed
                    });
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "refresh routes; keeping the last table"
                    );
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = changes.changed() => if changed.is_err() { return Ok(()) },
                _ = tokio::time::sleep(REFRESH) => {}
            }
        }
    });
    (receiver, task)
}

async fn build(store: &Store, dynos: &DynoManager) -> anyhow::Result<RouteTable> {
    let up = dynos.routes().borrow().clone();
    let mut apps = HashMap::new();
    for app in store.all_apps().await? {
        let web_quantity = store
            .formation(app.id)
            .await?
            .iter()
            .find(|entry| entry.process_type.as_str() == "web")
            .map_or(0, |entry| entry.quantity);
        let web: Vec<_> = dynos
            .dynos(app.id)
            .into_iter()
            .filter(|dyno| dyno.process_type == "web")
            .collect();
        let backends: Vec<Backend> = up
            .get(app.name.as_str())
            .map(|list| {
                list.iter()
                    .map(|(dyno, addr)| Backend {
                        dyno: dyno.clone(),
                        addr: *addr,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let crashed = !web.is_empty() && web.iter().all(|d| d.state == DynoState::Crashed);
        let booting = web
            .iter()
            .any(|d| matches!(d.state, DynoState::Starting | DynoState::Idle));
        apps.insert(
            app.name.to_string(),
            AppRoutes {
                app_id: app.id,
                maintenance: app.maintenance,
                web_quantity,
                crashed,
                booting,
                backends,
            },
        );
    }
    Ok(RouteTable {
        apps,
        domains: HashMap::new(),
    })
}

/// Where the router's request lines go: the app's log, as `heroku[router]` lines.
pub fn log_sink(dynos: DynoManager) -> impl Fn(uuid::Uuid, RouterLogLine) + Send + Sync + 'static {
    move |app_id, line| {
        dynos.logs().append(
            app_id,
            LogLine::now(LogSource::Heroku, "router", line.to_string()),
        );
    }
}
