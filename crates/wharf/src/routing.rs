//! Feeds the router: turns the dyno manager's table of `up` web dynos, and the up web dynos
//! that hosts which joined report (reached at their host's published port), plus what the
//! store knows of each app (maintenance, how many web dynos it should have, session affinity), into
//! the router's route table, and writes the router's request lines into the apps' logs. Also
//! keeps the key that signs session affinity cookies under the data dir.
//!
//! This runs beside the router, never in a request's path: when the store is down the router
//! keeps routing with the last table it got.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use wharf_dynos::{DynoManager, DynoState, LogLine, LogSource};
use wharf_router::tls::certified_key;
use wharf_router::{AffinityKey, AppRoutes, Backend, CertResolver, RouteTable, RouterLogLine};
use wharf_store::{DomainRoute, SniCertificate, Store};

/// How often what the store knows is read again (maintenance, formation, domains).
const REFRESH: Duration = Duration::from_secs(1);
/// Wake signals waiting for the dyno manager; the router retries on the next table change
/// when it is full.
const WAKE_QUEUE: usize = 256;

/// The file, in the data dir, that holds the key signing session affinity cookies.
pub const AFFINITY_KEY_FILE: &str = "router-affinity-key";

/// The key that signs session affinity cookies: `<data-dir>/router-affinity-key` (64 hex
/// digits, mode 0600), made on the first start. Kept, so that clients stay with their dynos
/// across a restart of the server.
pub fn affinity_key(data_dir: &Path) -> anyhow::Result<AffinityKey> {
    let path = data_dir.join(AFFINITY_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = parse_hex(text.trim()).with_context(|| {
                format!(
                    "{} is not 64 hex digits: delete it and a new key is made at start \
                     (clients then get new session affinity cookies)",
                    path.display()
                )
            })?;
            Ok(AffinityKey::new(&secret))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let secret = AffinityKey::new_secret();
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            // Written aside, then renamed: a crash leaves no half key.
            crate::server::write_secret(&path, &hex)?;
            Ok(AffinityKey::new(&secret))
        }
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

fn parse_hex(text: &str) -> anyhow::Result<[u8; 32]> {
    anyhow::ensure!(text.len() == 64 && text.is_ascii(), "not 64 hex digits");
    let mut secret = [0u8; 32];
    for (byte, pair) in secret.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).context("not ASCII")?;
        *byte = u8::from_str_radix(pair, 16).context("not hex")?;
    }
    Ok(secret)
}

/// Publishes route tables on the returned channel until `shutdown`; the second channel turns
/// true with the first table that has the dynos a previous server left running (what the
/// router serves before then would miss them).
///
/// What the store knows (apps, maintenance, formations, domains, the `http-session-affinity`
/// feature) is read every [`REFRESH`],
/// and at once when the API changed something ([`DynoManager::desired_changes`]: maintenance
/// mode is on for the next request); a change of the dyno manager's routes rebuilds the table
/// at once from the last read, with no store query, so a dyno that comes up (a woken app, say)
/// is routed within microseconds.
pub fn publish(
    store: Store,
    dynos: DynoManager,
    certificates: Arc<CertResolver>,
    api: wharf_api::ApiState,
    shutdown: CancellationToken,
) -> (
    watch::Receiver<Arc<RouteTable>>,
    watch::Receiver<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (sender, receiver) = watch::channel(Arc::new(RouteTable::default()));
    let (ready_sender, ready) = watch::channel(false);
    let task = tokio::spawn(async move {
        // The hosts' routers get tables once every host that holds a lease had time to
        // heartbeat to this process (as the scheduler waits): before, a table would miss
        // their dynos.
        let mut trusted_from = tokio::time::Instant::now() + wharf_scheduler::START_GRACE;
        let mut started = dynos.started();
        let mut changes = dynos.routes();
        let mut desired = dynos.desired_changes();
        let mut known = Known::default();
        let mut served = ServedCertificates::default();
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let read_store = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    false
                }
                changed = desired.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    true
                }
                _ = refresh.tick() => true,
                changed = started.changed(), if !*ready_sender.borrow() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    true
                }
            };
            // A dyno of an app the last read did not know is up: read now rather than answer
            // 404 for it until the next refresh.
            if read_store || !known.covers(&dynos.routes().borrow()) {
                match Known::read(&store).await {
                    Ok(read) => known = read,
                    Err(error) => tracing::warn!(
                        error = format!("{error:#}"),
                        "refresh routes; keeping the last table"
                    ),
                }
                if let Err(error) = served
                    .refresh(&store, &known.domain_routes, &certificates)
                    .await
                {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "refresh certificates; keeping the ones served"
                    );
                }
            }
            let table = build(&known, &dynos);
            // Nor while no host holds a lease, and as long again after: this control plane
            // was cut off (or the hosts were), and a table without their dynos would stop
            // their routers.
            if known.leased.is_empty() && !known.hosts.is_empty() {
                trusted_from = tokio::time::Instant::now() + wharf_scheduler::START_GRACE;
            }
            if *started.borrow() && tokio::time::Instant::now() >= trusted_from {
                api.publish_agent_routes(agent_routes(&table, &known));
            }
            sender.send_if_modified(|current| {
                let changed = **current != table;
                if changed {
                    *current = Arc::new(table);
                }
                changed
            });
            // The first table with the dynos the last server left: the router may serve.
            if *started.borrow() {
                ready_sender.send_if_modified(|ready| !std::mem::replace(ready, true));
            }
        }
    });
    (receiver, ready, task)
}

/// What the route table needs from the store, as of the last read.
#[derive(Default)]
struct Known {
    apps: Vec<KnownApp>,
    /// Custom hostname (lowercase, maybe `*.example.com`) to app name.
    domains: HashMap<String, String>,
    /// The custom domains as read, for the certificates they are served.
    domain_routes: Vec<DomainRoute>,
    /// Per app, the web dynos that hosts holding a lease report (`wharf agent`).
    remote: HashMap<uuid::Uuid, Vec<RemoteWeb>>,
    /// The addresses of the hosts that joined.
    hosts: Vec<String>,
    /// The addresses of the hosts holding a lease.
    leased: Vec<String>,
}

/// A web dyno on another host, as its agent reports it.
struct RemoteWeb {
    id: uuid::Uuid,
    name: String,
    state: String,
    /// Where the router reaches it: its host's published port, while it is up.
    upstream: Option<std::net::SocketAddr>,
}

/// The web dynos the hosts holding a lease report, by app.
async fn remote_web_dynos(store: &Store) -> anyhow::Result<HashMap<uuid::Uuid, Vec<RemoteWeb>>> {
    let mut remote: HashMap<uuid::Uuid, Vec<RemoteWeb>> = HashMap::new();
    for (_, dyno) in wharf_api::reported_dynos(store).await? {
        if dyno.process_type != "web" {
            continue;
        }
        let (Ok(app), Ok(id)) = (
            uuid::Uuid::parse_str(&dyno.app),
            uuid::Uuid::parse_str(&dyno.id),
        ) else {
            continue;
        };
        remote.entry(app).or_default().push(RemoteWeb {
            id,
            name: dyno.name,
            state: dyno.state,
            upstream: dyno.upstream.and_then(|upstream| upstream.parse().ok()),
        });
    }
    Ok(remote)
}

struct KnownApp {
    id: uuid::Uuid,
    name: String,
    maintenance: bool,
    web_quantity: u32,
    session_affinity: bool,
}

impl Known {
    /// Whether every app with a dyno up is known.
    fn covers(&self, up: &wharf_dynos::RouteTable) -> bool {
        up.keys()
            .all(|name| self.apps.iter().any(|app| app.name == *name))
    }

    async fn read(store: &Store) -> anyhow::Result<Known> {
        let affinity: HashSet<uuid::Uuid> = store
            .all_app_features(wharf_router::affinity::FEATURE)
            .await?
            .into_iter()
            .filter(|feature| feature.enabled)
            .map(|feature| feature.app_id)
            .collect();
        let mut apps = Vec::new();
        for app in store.all_apps().await? {
            let web_quantity = store
                .formation(app.id)
                .await?
                .iter()
                .find(|entry| entry.process_type.as_str() == "web")
                .map_or(0, |entry| entry.quantity);
            apps.push(KnownApp {
                id: app.id,
                name: app.name.to_string(),
                maintenance: app.maintenance,
                web_quantity,
                session_affinity: affinity.contains(&app.id),
            });
        }
        let names: HashMap<uuid::Uuid, &str> =
            apps.iter().map(|app| (app.id, app.name.as_str())).collect();
        let domain_routes = store.all_domains().await?;
        let domains = domain_routes
            .iter()
            .filter_map(|domain| {
                let app = names.get(&domain.app_id)?;
                Some((domain.hostname.to_ascii_lowercase(), (*app).to_owned()))
            })
            .collect();
        let now = time::OffsetDateTime::now_utc();
        let (mut hosts, mut leased) = (Vec::new(), Vec::new());
        for host in store.hosts().await? {
            let Some(address) = host.address.clone() else {
                continue;
            };
            if matches!(
                host.state(now),
                wharf_model::HostState::Up | wharf_model::HostState::Draining
            ) {
                leased.push(address.clone());
            }
            hosts.push(address);
        }
        hosts.sort();
        leased.sort();
        Ok(Known {
            apps,
            domains,
            domain_routes,
            remote: remote_web_dynos(store).await?,
            hosts,
            leased,
        })
    }
}

fn build(known: &Known, dynos: &DynoManager) -> RouteTable {
    let up = dynos.routes().borrow().clone();
    let mut apps = HashMap::new();
    for app in &known.apps {
        let web: Vec<_> = dynos
            .dynos(app.id)
            .into_iter()
            .filter(|dyno| dyno.process_type == "web")
            .collect();
        let remote: &[RemoteWeb] = known.remote.get(&app.id).map_or(&[], Vec::as_slice);
        let mut backends: Vec<Backend> = up
            .get(app.name.as_str())
            .map(|list| {
                list.iter()
                    .map(|(dyno, addr)| Backend {
                        // The up dyno of that name listening there (the old and the new
                        // `web.1` of a preboot listen apart); nil, so pinned to by no cookie,
                        // for a moment when the registry moved on since the routes were sent.
                        id: web
                            .iter()
                            .find(|d| d.name == *dyno && d.address == Some(*addr))
                            .map_or(uuid::Uuid::nil(), |d| d.id),
                        dyno: dyno.clone(),
                        addr: *addr,
                    })
                    .collect()
            })
            .unwrap_or_default();
        backends.extend(remote.iter().filter(|d| d.state == "up").filter_map(|d| {
            Some(Backend {
                id: d.id,
                dyno: d.name.clone(),
                addr: d.upstream?,
            })
        }));
        let crashed = !(web.is_empty() && remote.is_empty())
            && web.iter().all(|d| d.state == DynoState::Crashed)
            && remote.iter().all(|d| d.state == "crashed");
        let booting = web
            .iter()
            .any(|d| matches!(d.state, DynoState::Starting | DynoState::Idle))
            || remote
                .iter()
                .any(|d| matches!(d.state.as_str(), "starting" | "idle"));
        apps.insert(
            app.name.clone(),
            AppRoutes {
                app_id: app.id,
                maintenance: app.maintenance,
                web_quantity: app.web_quantity,
                crashed,
                booting,
                backends,
                session_affinity: app.session_affinity,
            },
        );
    }
    RouteTable {
        apps,
        domains: known.domains.clone(),
    }
}

/// The table the hosts' routers get: `table` with only the dynos they reach (published on
/// hosts; this host's own dynos listen on its loopback or dyno network).
fn agent_routes(table: &RouteTable, known: &Known) -> wharf_api_types::AgentRoutes {
    let mut apps: Vec<wharf_api_types::AgentRouteApp> = table
        .apps
        .iter()
        .map(|(name, app)| wharf_api_types::AgentRouteApp {
            id: app.app_id.to_string(),
            name: name.clone(),
            maintenance: app.maintenance,
            web_quantity: app.web_quantity,
            crashed: app.crashed,
            booting: app.booting,
            session_affinity: app.session_affinity,
            backends: known
                .remote
                .get(&app.app_id)
                .into_iter()
                .flatten()
                .filter(|dyno| dyno.state == "up")
                .filter_map(|dyno| {
                    Some(wharf_api_types::AgentBackend {
                        id: dyno.id.to_string(),
                        dyno: dyno.name.clone(),
                        upstream: dyno.upstream?.to_string(),
                    })
                })
                .collect(),
        })
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    wharf_api_types::AgentRoutes {
        version: 0,
        apps,
        domains: table
            .domains
            .iter()
            .map(|(host, app)| (host.clone(), app.clone()))
            .collect(),
        hosts: known.hosts.clone(),
        leased: known.leased.clone(),
    }
}

/// The custom domains' certificates the router serves, kept in step with the store: each
/// custom domain gets the SNI endpoint it names, or its app's only endpoint when it names
/// none. Certificates are parsed once per version (`updated_at`).
#[derive(Default)]
struct ServedCertificates {
    /// Hostname to the endpoint and version served for it.
    served: HashMap<String, (uuid::Uuid, time::OffsetDateTime)>,
}

impl ServedCertificates {
    async fn refresh(
        &mut self,
        store: &Store,
        domains: &[DomainRoute],
        resolver: &CertResolver,
    ) -> anyhow::Result<()> {
        let endpoints = store.all_sni_endpoints().await?;
        let mut by_app: HashMap<uuid::Uuid, Vec<&SniCertificate>> = HashMap::new();
        for endpoint in &endpoints {
            by_app.entry(endpoint.app_id).or_default().push(endpoint);
        }
        let mut wanted: HashMap<String, &SniCertificate> = HashMap::new();
        for domain in domains {
            let endpoint = match domain.sni_endpoint_id {
                Some(id) => endpoints.iter().find(|e| e.id == id),
                None => match by_app.get(&domain.app_id).map(Vec::as_slice) {
                    Some([only]) => Some(*only),
                    _ => None,
                },
            };
            if let Some(endpoint) = endpoint {
                wanted.insert(domain.hostname.to_ascii_lowercase(), endpoint);
            }
        }
        self.served.retain(|hostname, _| {
            let keep = wanted.contains_key(hostname);
            if !keep {
                resolver.remove(hostname);
            }
            keep
        });
        let mut parsed: HashMap<uuid::Uuid, Arc<rustls::sign::CertifiedKey>> = HashMap::new();
        for (hostname, endpoint) in wanted {
            let version = (endpoint.id, endpoint.updated_at);
            if self.served.get(&hostname) == Some(&version) {
                continue;
            }
            let key = match parsed.get(&endpoint.id) {
                Some(key) => key.clone(),
                None => match certified_key(
                    endpoint.certificate_chain.as_bytes(),
                    endpoint.private_key.as_bytes(),
                ) {
                    Ok(key) => {
                        let key = Arc::new(key);
                        parsed.insert(endpoint.id, key.clone());
                        key
                    }
                    Err(error) => {
                        tracing::warn!(
                            %hostname,
                            error = format!("{error:#}"),
                            "an SNI endpoint's certificate cannot be served"
                        );
                        continue;
                    }
                },
            };
            resolver.set(&hostname, key);
            self.served.insert(hostname, version);
        }
        Ok(())
    }
}

/// Where the router's request lines go: the app's log, as `heroku[router]` lines, and the
/// metrics history (status, total time, error code). Each request also keeps its app awake.
pub fn log_sink(
    dynos: DynoManager,
    history: wharf_metrics::Recorder,
) -> impl Fn(uuid::Uuid, RouterLogLine) + Send + Sync + 'static {
    move |app_id, line| {
        dynos.touch(app_id);
        history.record_request(
            app_id,
            line.status,
            line.total(),
            line.error.map(|e| e.code()),
        );
        dynos.logs().append(
            app_id,
            LogLine::now(LogSource::Heroku, "router", line.message()),
        );
    }
}

/// Hands the router's wake signals (an app with a request waiting and no web dyno up) to the
/// dyno manager, and tells the hosts to read what they run again (their dynos of the app may
/// sleep), until `shutdown`.
pub fn forward_wakes(
    dynos: DynoManager,
    api: wharf_api::ApiState,
    shutdown: CancellationToken,
) -> (mpsc::Sender<uuid::Uuid>, tokio::task::JoinHandle<()>) {
    let (sender, mut receiver) = mpsc::channel(WAKE_QUEUE);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                woken = receiver.recv() => match woken {
                    Some(app_id) => {
                        dynos.wake(app_id);
                        api.bump_generation();
                    }
                    None => return,
                },
            }
        }
    });
    (sender, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_affinity_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let app = uuid::Uuid::from_u128(1);
        let dyno = uuid::Uuid::from_u128(2);
        let token = affinity_key(dir.path())
            .expect("a new key")
            .token(app, dyno);
        let path = dir.path().join(AFFINITY_KEY_FILE);
        let mode = std::fs::metadata(&path)
            .expect("the key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = affinity_key(dir.path()).expect("the same key");
        assert_eq!(again.verify(app, token.as_bytes()), Some(dyno));

        std::fs::write(&path, "not a key\n").expect("overwrite");
        let error = format!("{:#}", affinity_key(dir.path()).expect_err("refused"));
        assert!(error.contains("delete it"), "{error}");
    }
}
