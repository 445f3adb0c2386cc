//! Metrics history (a Wharf extension): `GET /apps/{app}/metrics/router`, `/metrics/dynos`
//! and `/metrics/events`, `?range=1h|24h|7d` (default `1h`), read from the server's
//! [`wharf_metrics::Recorder`] (day files plus the minutes not yet written).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use time::OffsetDateTime;
use wharf_api_types as api;
use wharf_metrics::{Histogram, Range, Recorder, Window};

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::views::timestamp;
use crate::ApiState;

type RangeQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

/// `GET /apps/{app}/metrics/router`: requests per step by status class, latency
/// percentiles, totals and router errors.
pub async fn router(
    State(state): State<ApiState>,
    ctx: AppCtx,
    query: RangeQuery,
) -> ApiResult<Json<api::RouterMetrics>> {
    let range = range(query)?;
    let history = history(&state)?;
    let app_id = ctx.app.id;
    let series = blocking(move || history.router(app_id, range, now())).await?;
    let points = series
        .points
        .iter()
        .map(|point| {
            let [status_2xx, status_3xx, status_4xx, status_5xx] = point.status;
            let (p50_ms, p95_ms, p99_ms, max_ms) = latencies(&point.latency);
            api::RouterMetricsPoint {
                at: at(point.minute),
                requests: point.requests,
                status_2xx,
                status_3xx,
                status_4xx,
                status_5xx,
                p50_ms,
                p95_ms,
                p99_ms,
                max_ms,
            }
        })
        .collect();
    let (p50_ms, p95_ms, p99_ms, max_ms) = latencies(&series.totals.latency);
    let (range_name, step_seconds, from, to) = window(&series.window);
    Ok(Json(api::RouterMetrics {
        range: range_name,
        step_seconds,
        from,
        to,
        points,
        totals: api::RouterMetricsTotals {
            requests: series.totals.requests,
            p50_ms,
            p95_ms,
            p99_ms,
            max_ms,
        },
        errors: series
            .errors
            .iter()
            .map(|(code, count)| (code.to_string(), count))
            .collect(),
    }))
}

/// `GET /apps/{app}/metrics/dynos`: each dyno's memory and load per step.
pub async fn dynos(
    State(state): State<ApiState>,
    ctx: AppCtx,
    query: RangeQuery,
) -> ApiResult<Json<api::DynoMetrics>> {
    let range = range(query)?;
    let history = history(&state)?;
    let app_id = ctx.app.id;
    let window_now = now();
    let series = blocking(move || history.dynos(app_id, range, window_now)).await?;
    let (range_name, step_seconds, from, to) = window(&range.window(window_now));
    Ok(Json(api::DynoMetrics {
        range: range_name,
        step_seconds,
        from,
        to,
        dynos: series
            .into_iter()
            .map(|dyno| api::DynoMetricsSeries {
                dyno: dyno.dyno,
                process_type: dyno.process_type,
                points: dyno
                    .points
                    .iter()
                    .map(|point| api::DynoMetricsPoint {
                        at: at(point.at),
                        memory_rss_mb: megabytes(point.memory_rss),
                        memory_swap_mb: megabytes(point.memory_swap),
                        memory_cache_mb: megabytes(point.memory_cache),
                        memory_quota_mb: megabytes(point.memory_quota),
                        load_avg_1m: hundredths(point.load_avg_1m),
                    })
                    .collect(),
            })
            .collect(),
    }))
}

/// `GET /apps/{app}/metrics/events`: deploys, rollbacks, config changes, scaling, restarts,
/// crashes, R14/R15 and router errors.
pub async fn events(
    State(state): State<ApiState>,
    ctx: AppCtx,
    query: RangeQuery,
) -> ApiResult<Json<api::MetricsEvents>> {
    let range = range(query)?;
    let history = history(&state)?;
    let app_id = ctx.app.id;
    let (window, events) = blocking(move || history.events(app_id, range, now())).await?;
    let (range_name, _, from, to) = self::window(&window);
    Ok(Json(api::MetricsEvents {
        range: range_name,
        from,
        to,
        events: events
            .into_iter()
            .map(|event| api::MetricsEvent {
                at: timestamp(event.at),
                kind: event.kind.to_string(),
                dyno: event.dyno,
                message: event.message,
            })
            .collect(),
    }))
}

/// The `range` parameter: `1h` when absent.
fn range(query: RangeQuery) -> ApiResult<Range> {
    let Query(params) = query.map_err(|rejection| {
        ApiError::bad_request(format!(
            "The query string could not be read ({}): use ?range={}",
            rejection.body_text(),
            Range::ACCEPTED
        ))
    })?;
    match params.get("range") {
        None => Ok(Range::default()),
        Some(text) => Range::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Unknown range {text:?}: use range=1h, range=24h or range=7d ({})",
                Range::ACCEPTED
            ))
        }),
    }
}

fn history(state: &ApiState) -> ApiResult<Recorder> {
    state
        .dynos
        .logs()
        .metrics()
        .history()
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "This server keeps no metrics history.",
            )
        })
}

/// Runs a query (file reads) off the async threads.
async fn blocking<T: Send + 'static>(
    query: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(query).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(ApiError::internal(
            &error.context("read the metrics history"),
        )),
        Err(error) => Err(ApiError::internal(&anyhow::anyhow!(
            "the metrics query panicked: {error}"
        ))),
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn at(unix_seconds: i64) -> String {
    timestamp(
        OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    )
}

/// (range, step seconds, from, to) as the answers show them.
fn window(window: &Window) -> (String, u32, String, String) {
    (
        window.range.as_str().to_owned(),
        u32::try_from(window.step).unwrap_or(u32::MAX),
        at(window.from),
        at(window.to),
    )
}

/// p50, p95, p99 and max in milliseconds.
fn latencies(latency: &Histogram) -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
    let ms = |micros: Option<u64>| micros.map(|us| us as f64 / 1000.0);
    (
        ms(latency.quantile(0.50)),
        ms(latency.quantile(0.95)),
        ms(latency.quantile(0.99)),
        ms(latency.max()),
    )
}

fn megabytes(bytes: u64) -> f64 {
    hundredths(bytes as f64 / (1024.0 * 1024.0))
}

fn hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
