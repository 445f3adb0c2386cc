//! App features (Heroku's labs) in Heroku's shapes: `GET /apps/{app}/features`, `GET`/`PATCH
//! /apps/{app}/features/{name}` with `{"enabled": true}`. Wharf's features, each off unless an
//! app turns it on (as on Heroku): `log-runtime-metrics`, and `http-session-affinity` (the
//! router sends a client's requests to the dyno its signed cookie names; the route publisher
//! reads the setting, told at once of a change). Also, Wharf-specific,
//! `GET /apps/{app}/dynos/{dyno}/metrics`: a running dyno's recent runtime metrics samples,
//! whether or not the app logs them.

use axum::extract::{Path, State};
use axum::Json;
use wharf_api_types as api;
use wharf_logs::metrics::{Sample, FEATURE};
use wharf_store::AppFeature;

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::views::timestamp;
use crate::ApiState;

/// The router's session affinity feature (`wharf_router::affinity::FEATURE`; the API does not
/// depend on the router, and the end-to-end test `session_affinity` turns it on by this name).
const SESSION_AFFINITY: &str = "http-session-affinity";

/// One feature an app may set.
#[derive(Debug, Clone, Copy)]
struct Feature {
    name: &'static str,
    /// Stable, so that clients can refer to it by id too.
    id: &'static str,
    display_name: &'static str,
    description: &'static str,
    doc_url: &'static str,
    /// Heroku's: `general` for a supported feature, `public` for a labs one.
    state: &'static str,
}

/// Every feature an app may set.
const FEATURES: &[Feature] = &[
    Feature {
        name: FEATURE,
        id: "6d3c1c3e-5a36-4c55-9f4e-2f0c4b1d7a10",
        display_name: "Log runtime metrics",
        description: "Writes each dyno's load average and memory use to the app's log every 20 seconds (WHARF_METRICS_INTERVAL).",
        doc_url: "https://devcenter.heroku.com/articles/log-runtime-metrics",
        state: "public",
    },
    Feature {
        name: SESSION_AFFINITY,
        id: "3f1b8a52-8c4e-4d0a-9a7e-5b2c6e1d9f41",
        display_name: "HTTP Session Affinity",
        description: "Enable session affinity for all requests: the router sends a client's requests to the web dyno that served it first (a heroku-session-affinity cookie) while that dyno is up.",
        doc_url: "https://devcenter.heroku.com/articles/session-affinity",
        state: "general",
    },
];

fn view(
    feature: &Feature,
    setting: Option<&AppFeature>,
    app_created: time::OffsetDateTime,
) -> api::AppFeature {
    api::AppFeature {
        created_at: timestamp(setting.map_or(app_created, |s| s.created_at)),
        description: feature.description.to_owned(),
        doc_url: feature.doc_url.to_owned(),
        enabled: setting.is_some_and(|s| s.enabled),
        id: feature.id.to_owned(),
        name: feature.name.to_owned(),
        state: feature.state.to_owned(),
        updated_at: timestamp(setting.map_or(app_created, |s| s.updated_at)),
        display_name: feature.display_name.to_owned(),
        feedback_email: String::new(),
    }
}

fn known(name: &str) -> ApiResult<&'static Feature> {
    FEATURES
        .iter()
        .find(|feature| feature.name == name || feature.id == name)
        .ok_or_else(|| {
            let names: Vec<&str> = FEATURES.iter().map(|feature| feature.name).collect();
            ApiError::not_found(format!(
                "Couldn't find that feature: {name}. Features are: {}.",
                names.join(", ")
            ))
        })
}

pub async fn list(
    State(state): State<ApiState>,
    ctx: AppCtx,
) -> ApiResult<Json<Vec<api::AppFeature>>> {
    let settings = state.store.app_features(ctx.app.id).await?;
    Ok(Json(
        FEATURES
            .iter()
            .map(|feature| {
                let setting = settings.iter().find(|s| s.name == feature.name);
                view(feature, setting, ctx.app.created_at)
            })
            .collect(),
    ))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Json<api::AppFeature>> {
    let feature = known(&name)?;
    let settings = state.store.app_features(ctx.app.id).await?;
    let setting = settings.iter().find(|s| s.name == feature.name);
    Ok(Json(view(feature, setting, ctx.app.created_at)))
}

pub async fn update(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, name)): Path<(String, String)>,
    Body(body): Body<api::AppFeatureUpdate>,
) -> ApiResult<Json<api::AppFeature>> {
    let feature = known(&name)?;
    let setting = state
        .store
        .set_app_feature(ctx.app.id, feature.name, body.enabled)
        .await?;
    match feature.name {
        FEATURE => state
            .dynos
            .logs()
            .metrics()
            .set_enabled(ctx.app.id, body.enabled),
        // The route publisher reads the store again now: the next request sees the change.
        SESSION_AFFINITY => state.dynos.notify(ctx.app.id),
        _ => {}
    }
    Ok(Json(view(feature, Some(&setting), ctx.app.created_at)))
}

fn sample_view(sample: &Sample) -> api::DynoMetricsSample {
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let r = &sample.reading;
    api::DynoMetricsSample {
        at: wharf_logs::format_time(sample.at),
        load_avg_1m: sample.load_avg_1m,
        load_avg_5m: sample.load_avg_5m,
        load_avg_15m: sample.load_avg_15m,
        memory_total_mb: mb(r.memory_total),
        memory_rss_mb: mb(r.memory_rss),
        memory_cache_mb: mb(r.memory_cache),
        memory_swap_mb: mb(r.memory_swap),
        memory_pgpgin: r.memory_pgpgin,
        memory_pgpgout: r.memory_pgpgout,
        memory_quota_mb: mb(r.memory_quota),
    }
}

/// The dyno's samples of the last hour, oldest first (empty for a dyno never sampled).
pub async fn dyno_metrics(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, dyno)): Path<(String, String)>,
) -> ApiResult<Json<Vec<api::DynoMetricsSample>>> {
    let samples = state.dynos.logs().metrics().samples(ctx.app.id, &dyno);
    Ok(Json(samples.iter().map(sample_view).collect()))
}
