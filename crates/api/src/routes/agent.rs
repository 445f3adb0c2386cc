//! The agents' side of the API: each host's agent renews its lease, reads what its host
//! should run, and fetches the slugs it runs, with the credential `POST /hosts` issued. An
//! agent sees only the apps with dynos placed on its host: their releases, config vars and
//! slugs, nothing of any other app.

use std::collections::{BTreeMap, HashSet};

use axum::body::Body as ResponseBody;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::Json;
use time::OffsetDateTime;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_dynos::{DynoName, LogLine, LogSource};
use wharf_logs::metrics::{metrics_line, Reading, Sample};
use wharf_model::{Host, HEARTBEAT_INTERVAL, LEASE};
use wharf_store::{HostReport, StoreError};

use crate::auth::{credentials, hash_api_key};
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::ApiState;

/// The process type whose dynos hand over across hosts preboot-style.
const PREBOOT_TYPE: &str = "web";

/// The most dynos one heartbeat reports (more than any host's memory holds).
const MAX_REPORTED_DYNOS: usize = 4096;

/// The protocol an agent upgrades its attach request to.
const ATTACH_PROTOCOL: &str = api::ATTACH_PROTOCOL;

/// The process name of a router's lines (`heroku[router]`).
const ROUTER_PROCESS: &str = "router";

/// How long `GET /agent/routes` waits for a table after the one the agent has.
const ROUTES_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// What starts every host credential, so that one found in a file or a log says what it is.
pub(crate) const CREDENTIAL_PREFIX: &str = "wharf-host-";

/// An agent's request: `Authorization: Bearer <host credential>` of a host that exists.
/// Extracting it is the access check.
pub(crate) struct Agent {
    pub host: Host,
    pub credential_hash: String,
}

impl FromRequestParts<ApiState> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let credential = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|header| header.to_str().ok())
            .and_then(credentials)
            .map(|credentials| credentials.key)
            .ok_or_else(ApiError::unauthorized)?;
        // API keys are refused by their form, before any lookup.
        if !credential.starts_with(CREDENTIAL_PREFIX) {
            return Err(ApiError::unauthorized());
        }
        let credential_hash = hash_api_key(&credential);
        let host = state
            .store
            .host_by_credential(&credential_hash)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Agent {
            host,
            credential_hash,
        })
    }
}

impl Agent {
    /// The apps whose dynos and lines this agent may report, as ids: those placed on its host,
    /// and those it reported a dyno of last time (a dyno moving away runs on until its new
    /// host has it up); and what it reported last time. An app enters only by placement.
    async fn own_apps(
        &self,
        state: &ApiState,
    ) -> ApiResult<(HashSet<String>, Vec<api::AgentDyno>)> {
        let before: Vec<api::AgentDyno> = state
            .store
            .host_report(self.host.id)
            .await?
            .and_then(|report| serde_json::from_str(&report).ok())
            .unwrap_or_default();
        let mut allowed: HashSet<String> = self
            .apps_placed(state)
            .await?
            .iter()
            .map(Uuid::to_string)
            .collect();
        allowed.extend(before.iter().map(|dyno| dyno.app.clone()));
        Ok((allowed, before))
    }

    /// The apps with a dyno placed on this agent's host, a one-off dyno ordered there
    /// included.
    async fn apps_placed(&self, state: &ApiState) -> ApiResult<HashSet<Uuid>> {
        let mut apps = state.remote_one_offs.apps_on(self.host.id);
        apps.extend(
            state
                .store
                .placements()
                .await?
                .into_iter()
                .filter(|(_, placed)| placed.host == self.host.id)
                .map(|(slot, _)| slot.app),
        );
        Ok(apps)
    }
}

/// `PUT /agent/heartbeat`: renews the agent's lease and answers it.
pub async fn heartbeat(
    State(state): State<ApiState>,
    agent: Agent,
    Body(body): Body<api::Heartbeat>,
) -> ApiResult<Json<api::Lease>> {
    if body.address.is_empty()
        || body.address.len() > 255
        || body.address.contains(char::is_control)
    {
        return Err(ApiError::invalid(
            "The heartbeat's address must be 1 to 255 characters without control characters",
        ));
    }
    // A host reports dynos of its own apps only: anything else is dropped, so an agent can
    // put nothing into another app's `ps`.
    let (allowed, before) = agent.own_apps(&state).await?;
    let dynos: Vec<&api::AgentDyno> = body
        .dynos
        .iter()
        .filter(|dyno| allowed.contains(&dyno.app))
        .take(MAX_REPORTED_DYNOS)
        .collect();
    // A dyno of this host changed state (one came up where another waits to hand over to
    // it, say): every agent reads what it runs again.
    let states =
        |dynos: &mut dyn Iterator<Item = &api::AgentDyno>| -> HashSet<(String, String, String)> {
            dynos
                .map(|dyno| (dyno.app.clone(), dyno.name.clone(), dyno.state.clone()))
                .collect()
        };
    if states(&mut before.iter()) != states(&mut dynos.iter().copied()) {
        state.bump_generation();
    }
    let report = HostReport {
        memory_mb: body.memory_mb,
        address: body.address.clone(),
        dynos: serde_json::to_string(&dynos).expect("dynos always serialize"),
    };
    let now = OffsetDateTime::now_utc();
    let renewed = state
        .store
        .host_heartbeat(&agent.credential_hash, &report, now, LEASE)
        .await?
        // Removed since the credential was checked: it is revoked.
        .ok_or_else(ApiError::unauthorized)?;
    // Placement changes when a host comes up (first heartbeat, or back from lost) or offers
    // different memory; a plain renewal changes nothing it reads.
    if agent.host.state(now) != renewed.state(now) || agent.host.memory_mb != renewed.memory_mb {
        state.hosts_changed().await;
    }
    Ok(Json(api::Lease {
        host: renewed.name.to_string(),
        epoch: renewed.epoch,
        lease_ms: millis(LEASE),
        heartbeat_ms: millis(HEARTBEAT_INTERVAL),
        draining: renewed.draining,
        generation: state.generation(),
    }))
}

fn millis(duration: time::Duration) -> u64 {
    u64::try_from(duration.whole_milliseconds()).expect("lease durations are positive")
}

/// `POST /agent/logs`: lines of the apps on the agent's host, appended to their logs (and so
/// to `wharf logs`, tails and drains), its router's lines and requests, and its dynos' metrics
/// samples. A dyno's line or sample is taken only for an app that is placed on the host or has
/// a dyno there (by its last report): an agent writes only its own dynos' lines into only its
/// own apps' logs. A `heroku[router]` line or a request is taken for any app the hosts' route
/// table has (every host routes every app); any other line is dropped. Lines the host had to
/// drop are counted in an `L10` line.
pub async fn logs(
    State(state): State<ApiState>,
    agent: Agent,
    Body(body): Body<api::AgentLogs>,
) -> ApiResult<axum::http::StatusCode> {
    let (allowed, _) = agent.own_apps(&state).await?;
    let routed: HashSet<String> = state
        .agent_routes()
        .borrow()
        .iter()
        .flat_map(|routes| routes.apps.iter().map(|app| app.id.clone()))
        .collect();
    let logs = state.dynos.logs();
    for app in body.apps {
        let own = allowed.contains(&app.app);
        if !own && !routed.contains(&app.app) {
            continue;
        }
        let Ok(app_id) = Uuid::parse_str(&app.app) else {
            continue;
        };
        if app.dropped > 0 {
            logs.append(
                app_id,
                LogLine::now(
                    LogSource::Heroku,
                    "logplex",
                    format!(
                        "Error L10 (output buffer overflow) -> {} log lines from host {} were \
                         dropped while it could not reach the control plane",
                        app.dropped, agent.host.name
                    ),
                ),
            );
        }
        let lines: Vec<LogLine> = app
            .lines
            .into_iter()
            .filter_map(|line| log_line(line, own))
            .collect();
        // Requests a host's router served keep the app awake, as this server's router's do.
        if lines.iter().any(|line| line.process == ROUTER_PROCESS) {
            state.dynos.touch(app_id);
        }
        logs.extend(app_id, lines);
    }
    // Its router's requests, for the metrics history of any app the route table has.
    if let Some(history) = logs.metrics().history() {
        for request in body.requests {
            let Ok(app_id) = Uuid::parse_str(&request.app) else {
                continue;
            };
            if routed.contains(&request.app) && recent(request.at) {
                history.record_request_at(
                    app_id,
                    request.at,
                    request.status,
                    request.total_us.map(std::time::Duration::from_micros),
                    request.code.as_deref(),
                );
            }
        }
    }
    // Its dynos' runtime metrics, of its own apps only: kept (the API's samples, the metrics
    // history) and logged as `sample#` lines for apps with `log-runtime-metrics`, as this
    // server's own dynos' are.
    let metrics = logs.metrics();
    for sample in body.samples {
        if !allowed.contains(&sample.app) {
            continue;
        }
        let Some((app_id, dyno_id, sample_of)) = metrics_sample(&sample) else {
            continue;
        };
        metrics.record(app_id, &sample.dyno, sample_of);
        if metrics.enabled(app_id) {
            logs.append(
                app_id,
                metrics_line(&sample.dyno, app_id, dyno_id, &sample_of),
            );
        }
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// How far back a host's metrics are taken: what it kept while it could not reach the
/// control plane, a day at most.
const METRICS_PAST: time::Duration = time::Duration::days(1);
/// How far ahead of this server's clock a host's may run.
const METRICS_SKEW: time::Duration = time::Duration::minutes(5);

/// Whether `unix_seconds` is a time a host's metrics may have.
fn recent(unix_seconds: i64) -> bool {
    let now = OffsetDateTime::now_utc();
    ((now - METRICS_PAST).unix_timestamp()..=(now + METRICS_SKEW).unix_timestamp())
        .contains(&unix_seconds)
}

/// A sample as the metrics keep it (with its app's and dyno's ids), if it reads as one: a
/// dyno's name, a time, and loads that are numbers no less than zero.
fn metrics_sample(sample: &api::AgentSample) -> Option<(Uuid, Uuid, Sample)> {
    let app_id = Uuid::parse_str(&sample.app).ok()?;
    let dyno_id = Uuid::parse_str(&sample.dyno_id).ok()?;
    sample.dyno.parse::<DynoName>().ok()?;
    let at = OffsetDateTime::parse(&sample.at, &time::format_description::well_known::Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    if !recent(at.unix_timestamp()) {
        return None;
    }
    let loads = [sample.load_avg_1m, sample.load_avg_5m, sample.load_avg_15m];
    if !loads.iter().all(|load| load.is_finite() && *load >= 0.0) {
        return None;
    }
    Some((
        app_id,
        dyno_id,
        Sample {
            at,
            load_avg_1m: sample.load_avg_1m,
            load_avg_5m: sample.load_avg_5m,
            load_avg_15m: sample.load_avg_15m,
            reading: Reading {
                cpu_time_ns: sample.cpu_time_ns,
                memory_total: sample.memory_total,
                memory_rss: sample.memory_rss,
                memory_cache: sample.memory_cache,
                memory_swap: sample.memory_swap,
                memory_pgpgin: sample.memory_pgpgin,
                memory_pgpgout: sample.memory_pgpgout,
                memory_quota: sample.memory_quota,
            },
        },
    ))
}

/// A line as the log keeps it, if it has a time and a source and is a dyno's line of an app of
/// the host's own (`own`) or a router's line.
fn log_line(line: api::AgentLogLine, own: bool) -> Option<LogLine> {
    let at = OffsetDateTime::parse(&line.at, &time::format_description::well_known::Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    let source = LogSource::parse(&line.source)?;
    let router = source == LogSource::Heroku && line.process == ROUTER_PROCESS;
    // A dyno's name, or the router's: never `api` or another part of the platform.
    let own_dyno = own && line.process.parse::<DynoName>().is_ok();
    if !(router || own_dyno) {
        return None;
    }
    Some(LogLine {
        at,
        source,
        process: line.process,
        message: line.message,
    })
}

/// `GET /agent/desired`: every app with dynos placed on the agent's host, with the release
/// they run and the numbers placed here.
pub async fn desired(
    State(state): State<ApiState>,
    agent: Agent,
) -> ApiResult<Json<api::AgentDesired>> {
    let mut numbers: BTreeMap<Uuid, BTreeMap<String, Vec<u32>>> = BTreeMap::new();
    let reported = crate::reported_dynos(&state.store).await?;
    let here = agent.host.name.as_str();
    // Web dynos moving off this host (a drain, say) stay until their new host has them up,
    // as a preboot does on one host.
    let running_here: HashSet<(String, &str)> = reported
        .iter()
        .filter(|(host, dyno)| host == here && matches!(dyno.state.as_str(), "up" | "starting"))
        .map(|(_, dyno)| (dyno.app.clone(), dyno.name.as_str()))
        .collect();
    let up_elsewhere: HashSet<(String, &str)> = reported
        .iter()
        // Up and published: the router can reach it.
        .filter(|(host, dyno)| host != here && dyno.state == "up" && dyno.upstream.is_some())
        .map(|(_, dyno)| (dyno.app.clone(), dyno.name.as_str()))
        .collect();
    // One-off dynos placed here: started once; their apps come with the release to run.
    let running: HashSet<String> = reported.iter().map(|(_, dyno)| dyno.id.clone()).collect();
    let one_offs = state.remote_one_offs.for_host(agent.host.id, &running);
    for (app, _) in &one_offs {
        numbers.entry(*app).or_default();
    }
    for (slot, placed) in state.store.placements().await? {
        let name = format!("{}.{}", slot.process_type, slot.number);
        let key = (slot.app.to_string(), name.as_str());
        let handing_over = slot.process_type == PREBOOT_TYPE
            && running_here.contains(&key)
            && !up_elsewhere.contains(&key);
        if placed.host == agent.host.id || handing_over {
            numbers
                .entry(slot.app)
                .or_default()
                .entry(slot.process_type)
                .or_default()
                .push(slot.number);
        }
    }
    let names: BTreeMap<Uuid, String> = state
        .store
        .all_apps()
        .await?
        .into_iter()
        .map(|app| (app.id, app.name.to_string()))
        .collect();
    let mut apps = Vec::new();
    for (app_id, types) in numbers {
        // Deleted since it was placed: it has nothing to run.
        let Some(name) = names.get(&app_id) else {
            continue;
        };
        match desired_app(&state, app_id, name, types).await {
            Ok(app) => apps.push(app),
            // Deleted since it was placed: it has nothing to run.
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Json(api::AgentDesired {
        epoch: agent.host.epoch,
        apps,
        one_offs: one_offs.into_iter().map(|(_, one_off)| one_off).collect(),
        actions: state.remote_actions.for_host(agent.host.id),
    }))
}

async fn desired_app(
    state: &ApiState,
    app_id: Uuid,
    name: &str,
    types: BTreeMap<String, Vec<u32>>,
) -> Result<api::AgentApp, StoreError> {
    let release = state.store.current_release(app_id).await?;
    let slug = match release.slug_id {
        Some(slug_id) => state.store.slug(app_id, slug_id).await?,
        None => None,
    };
    let sizes: BTreeMap<String, String> = state
        .store
        .formation(app_id)
        .await?
        .into_iter()
        .map(|entry| {
            (
                entry.process_type.as_str().to_owned(),
                entry.size.name().to_owned(),
            )
        })
        .collect();
    let formation = types
        .into_iter()
        .filter_map(|(process_type, numbers)| {
            // A type the current release no longer defines runs nowhere.
            let size = sizes.get(&process_type)?.clone();
            Some((process_type, api::AgentProcess { numbers, size }))
        })
        .collect();
    Ok(api::AgentApp {
        id: app_id.to_string(),
        name: name.to_owned(),
        release: api::AgentRelease {
            version: release.version,
            slug: slug.as_ref().and_then(|slug| {
                Some(api::AgentSlug {
                    id: slug.id.to_string(),
                    // A slug without a checksum was never uploaded: nothing to fetch.
                    checksum: slug.checksum.clone()?,
                    stack: slug.stack.clone(),
                })
            }),
            config: release
                .config
                .iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            commands: slug
                .map(|slug| slug.process_types.into_iter().collect())
                .unwrap_or_default(),
        },
        formation,
        // The control plane keeps every app's activity: its router's requests, and those of
        // the hosts' routers as their lines arrive.
        asleep: state.dynos.asleep(app_id),
    })
}

/// `GET /agent/slugs/{slug}`: the slug's archive, for an agent whose host runs a dyno of the
/// slug's app. Any other slug answers 404, as a missing one does.
pub async fn slug(
    State(state): State<ApiState>,
    agent: Agent,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("Couldn't find that slug.");
    let slug_id = Uuid::parse_str(&slug).map_err(|_| not_found())?;
    let apps_here = agent.apps_placed(&state).await?;
    let mut found = None;
    for app in &apps_here {
        if let Some(slug) = state.store.slug(*app, slug_id).await? {
            found = Some(slug);
            break;
        }
    }
    let slug = found.ok_or_else(not_found)?;
    // Server path: the builder's own slug file, named by the slug's id from the store.
    let file = tokio::fs::File::open(state.builder.config().slug_path(slug.id))
        .await
        .map_err(|_| not_found())?;
    let mut response = Response::new(ResponseBody::from_stream(
        tokio_util::io::ReaderStream::new(file),
    ));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// `GET /agent/routes?after=VERSION`: the hosts' route table, once its version is not
/// `after` (waiting up to [`ROUTES_WAIT`], or until the server stops; then the same table
/// again). 503 while the control
/// plane has none it trusts yet (just started): the agent keeps routing with the one it has.
pub async fn routes(
    State(state): State<ApiState>,
    _agent: Agent,
    Query(query): Query<RoutesQuery>,
) -> ApiResult<Json<api::AgentRoutes>> {
    let mut routes = state.agent_routes();
    let newer = |table: &Option<std::sync::Arc<api::AgentRoutes>>| {
        table
            .as_ref()
            .is_some_and(|table| Some(table.version) != query.after)
    };
    tokio::select! {
        _ = tokio::time::timeout(ROUTES_WAIT, routes.wait_for(newer)) => {}
        // The server is stopping: it should not wait for this.
        () = state.closing() => {}
    }
    let table = routes.borrow().clone();
    match table {
        Some(table) => Ok(Json(api::AgentRoutes::clone(&table))),
        None => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the control plane is starting and has no route table yet: keep the one you have \
             and ask again",
        )),
    }
}

#[derive(serde::Deserialize)]
pub struct RoutesQuery {
    after: Option<u64>,
}

/// `POST /agent/wake/{app}`: a host's router holds a request for the app, which sleeps: it
/// wakes (its activity is touched) and every host reads what it runs again. Any app the hosts'
/// route table has (every host routes every app); another answers 404.
pub async fn wake(
    State(state): State<ApiState>,
    _agent: Agent,
    Path(app): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    let routed = state
        .agent_routes()
        .borrow()
        .iter()
        .any(|routes| routes.apps.iter().any(|routed| routed.id == app));
    let app_id = Uuid::parse_str(&app)
        .ok()
        .filter(|_| routed)
        .ok_or_else(ApiError::app_not_found)?;
    state.dynos.wake(app_id);
    state.bump_generation();
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /agent/one-offs/{id}/attach` (`Connection: upgrade`, `Upgrade: wharf-attach`): the
/// connection of the client that attaches to the one-off dyno `id` placed on the agent's host,
/// once it arrives at the rendezvous (within its secret's lifetime). The agent greets it and
/// pipes the dyno's stdio both ways, as the rendezvous does for this server's own one-offs.
pub async fn attach(
    State(state): State<ApiState>,
    agent: Agent,
    Path(id): Path<String>,
    mut request: axum::extract::Request,
) -> ApiResult<Response> {
    let wants_upgrade = request
        .headers()
        .get(axum::http::header::UPGRADE)
        .is_some_and(|upgrade| {
            upgrade
                .as_bytes()
                .eq_ignore_ascii_case(ATTACH_PROTOCOL.as_bytes())
        });
    if !wants_upgrade {
        return Err(ApiError::bad_request(format!(
            "attach with `Connection: upgrade` and `Upgrade: {ATTACH_PROTOCOL}`"
        )));
    }
    let client = Uuid::parse_str(&id)
        .ok()
        .and_then(|id| state.remote_one_offs.take_client(id, agent.host.id))
        .ok_or_else(|| ApiError::not_found("No one-off dyno of that id waits for this host."))?;
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let mut host = match upgrade.await {
            Ok(upgraded) => hyper_util::rt::TokioIo::new(upgraded),
            Err(error) => {
                tracing::debug!(one_off = %id, "attach: the agent's upgrade failed: {error}");
                return;
            }
        };
        let client = tokio::time::timeout(crate::rendezvous::SECRET_LIFETIME, client).await;
        let Ok(Ok(mut client)) = client else {
            // No client came: the agent's end closes, and it removes the dyno.
            return;
        };
        if let Err(error) = tokio::io::copy_bidirectional(&mut host, &mut client).await {
            tracing::debug!(one_off = %id, "attach: connection ended: {error}");
        }
    });
    Ok(Response::builder()
        .status(axum::http::StatusCode::SWITCHING_PROTOCOLS)
        .header(axum::http::header::CONNECTION, "upgrade")
        .header(axum::http::header::UPGRADE, ATTACH_PROTOCOL)
        .body(ResponseBody::empty())
        .expect("a fixed response is valid"))
}
