//! App features (Heroku's labs) in Heroku's shapes: `GET /apps/{app}/features`, `GET`/`PATCH
//! /apps/{app}/features/{name}` with `{"enabled": true}`. The one feature Wharf has is
//! `log-runtime-metrics`, off unless an app turns it on (as on Heroku). Also, Wharf-specific,
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

/// Every feature an app may set: name, display name, description.
const FEATURES: &[(&str, &str, &str)] = &[(
    FEATURE,
    "Log runtime metrics",
    "Writes each dyno's load average and memory use to the app's log every 20 seconds (WHARF_METRICS_INTERVAL).",
)];

/// A stable id per feature, so clients can refer to it by id too.
fn feature_id(name: &str) -> &'static str {
    match name {
        FEATURE => "6d3c1c3e-5a36-4c55-9f4e-2f0c4b1d7a10",
        _ => "00000000-0000-0000-0000-000000000000",
    }
}

fn view(
    (name, display_name, description): (&str, &str, &str),
    setting: Option<&AppFeature>,
    app_created: time::OffsetDateTime,
) -> api::AppFeature {
    api::AppFeature {
        created_at: timestamp(setting.map_or(app_created, |s| s.created_at)),
        description: description.to_owned(),
        doc_url: "https://devcenter.heroku.com/articles/log-runtime-metrics".to_owned(),
        enabled: setting.is_some_and(|s| s.enabled),
        id: feature_id(name).to_owned(),
        name: name.to_owned(),
        state: "public".to_owned(),
        updated_at: timestamp(setting.map_or(app_created, |s| s.updated_at)),
        display_name: display_name.to_owned(),
        feedback_email: String::new(),
    }
}

fn known(name: &str) -> ApiResult<(&'static str, &'static str, &'static str)> {
    FEATURES
        .iter()
        .find(|(n, ..)| *n == name || feature_id(n) == name)
        .copied()
        .ok_or_else(|| ApiError::not_found(format!("Couldn't find that feature: {name}.")))
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
                let setting = settings.iter().find(|s| s.name == feature.0);
                view(*feature, setting, ctx.app.created_at)
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
    let setting = settings.iter().find(|s| s.name == feature.0);
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
        .set_app_feature(ctx.app.id, feature.0, body.enabled)
        .await?;
    if feature.0 == FEATURE {
        state
            .dynos
            .logs()
            .metrics()
            .set_enabled(ctx.app.id, body.enabled);
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
