//! The metrics history routes in process: what the recorder holds comes back in the
//! documented shapes; the API's own changes (deploy, config, scale) are events; a bad range is
//! a 400 that lists the good ones; another user's app is a 404.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::TestApi;
use wharf_logs::metrics::{Reading, Sample};

/// An API with a metrics history in its own temp dir, and an app `metered` with a web
/// process; returns the app's id.
async fn metered_api() -> (TestApi, tempfile::TempDir, uuid::Uuid) {
    let api = TestApi::new().await;
    let dir = tempfile::tempdir().unwrap();
    let history = wharf_metrics::Recorder::open(dir.path(), 7).unwrap();
    api.state.dynos.logs().metrics().set_history(history);
    api.app(&api.admin_key, "metered").await;
    let app = api
        .call("GET", "/apps/metered", Some(&api.admin_key), None)
        .await;
    let id = app.body["id"].as_str().unwrap().parse().unwrap();
    (api, dir, id)
}

#[tokio::test]
async fn router_figures_come_back_per_step_with_totals() {
    let (api, _dir, id) = metered_api().await;
    let history = api.state.dynos.logs().metrics().history().unwrap().clone();
    for (status, ms, code) in [
        (200, 10, None),
        (200, 20, None),
        (301, 1, None),
        (404, 2, None),
        (503, 30_000, Some("H12")),
    ] {
        history.record_request(id, status, Some(Duration::from_millis(ms)), code);
    }
    history.record_request(id, 503, None, Some("H14"));

    let reply = api
        .call(
            "GET",
            "/apps/metered/metrics/router",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let body = &reply.body;
    assert_eq!(body["range"], "1h");
    assert_eq!(body["step_seconds"], 60);
    assert_eq!(body["errors"], json!({"H12": 1, "H14": 1}));
    assert_eq!(body["totals"]["requests"], 6);
    assert_eq!(body["totals"]["max_ms"], 30_000.0);
    let points = body["points"].as_array().unwrap();
    // The minute may turn between two requests: count over the points.
    let sum = |field: &str| -> u64 { points.iter().map(|p| p[field].as_u64().unwrap()).sum() };
    assert_eq!(
        (
            sum("requests"),
            sum("status_2xx"),
            sum("status_3xx"),
            sum("status_4xx"),
            sum("status_5xx")
        ),
        (6, 2, 1, 1, 2)
    );
    let p50 = body["totals"]["p50_ms"].as_f64().unwrap();
    assert!((p50 - 10.0).abs() <= 10.0 / 64.0, "{p50}");
    for point in points {
        for field in ["at", "p50_ms", "p95_ms", "p99_ms", "max_ms"] {
            assert!(point.get(field).is_some(), "{field} in {point}");
        }
    }
    let from = time::OffsetDateTime::parse(
        body["from"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let to = time::OffsetDateTime::parse(
        body["to"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(to - from, time::Duration::hours(1));

    let week = api
        .call(
            "GET",
            "/apps/metered/metrics/router?range=7d",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(week.status, StatusCode::OK, "{:?}", week.body);
    assert_eq!(week.body["step_seconds"], 600);
    assert_eq!(week.body["totals"]["requests"], 6);

    // An app without traffic: no points, null percentiles.
    api.app(&api.admin_key, "quiet").await;
    let quiet = api
        .call(
            "GET",
            "/apps/quiet/metrics/router?range=24h",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(quiet.status, StatusCode::OK, "{:?}", quiet.body);
    assert_eq!(quiet.body["points"], json!([]));
    assert_eq!(
        quiet.body["totals"],
        json!({"requests": 0, "p50_ms": null, "p95_ms": null, "p99_ms": null, "max_ms": null})
    );
    assert_eq!(quiet.body["errors"], json!({}));
}

#[tokio::test]
async fn dyno_samples_come_back_in_megabytes() {
    let (api, _dir, id) = metered_api().await;
    let sample = |rss_mb: u64, load: f64| Sample {
        at: wharf_logs::now_micros(),
        load_avg_1m: load,
        load_avg_5m: 0.0,
        load_avg_15m: 0.0,
        reading: Reading {
            memory_rss: rss_mb << 20,
            memory_cache: 3 << 20,
            memory_swap: 0,
            memory_quota: 512 << 20,
            ..Reading::default()
        },
    };
    let metrics = api.state.dynos.logs().metrics();
    metrics.record(id, "web.1", sample(40, 0.5));
    metrics.record(id, "web.1", sample(60, 0.5));
    metrics.record(id, "worker.1", sample(10, 0.25));
    let reply = api
        .call(
            "GET",
            "/apps/metered/metrics/dynos?range=1h",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let dynos = reply.body["dynos"].as_array().unwrap();
    let names: Vec<(&str, &str)> = dynos
        .iter()
        .map(|d| (d["dyno"].as_str().unwrap(), d["type"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("web.1", "web"), ("worker.1", "worker")]);
    let web: Vec<&Value> = dynos[0]["points"].as_array().unwrap().iter().collect();
    let rss = web
        .iter()
        .map(|p| p["memory_rss_mb"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(rss, 60.0);
    let point = web[0];
    assert_eq!(point["memory_quota_mb"], 512.0);
    assert_eq!(point["memory_cache_mb"], 3.0);
    assert_eq!(point["memory_swap_mb"], 0.0);
    assert_eq!(point["load_avg_1m"], 0.5);
    assert!(point["at"].as_str().unwrap().ends_with(":00Z"), "{point}");
}

#[tokio::test]
async fn the_apis_own_changes_are_events() {
    let (api, _dir, _id) = metered_api().await;
    let key = api.admin_key.clone();
    api.deploy(
        &key,
        "metered",
        json!({"web": "python3 -m http.server $PORT"}),
    )
    .await;
    let config = api
        .call(
            "PATCH",
            "/apps/metered/config-vars",
            Some(&key),
            Some(json!({"FOO": "bar"})),
        )
        .await;
    assert_eq!(config.status, StatusCode::OK, "{:?}", config.body);
    let scale = api
        .call(
            "PATCH",
            "/apps/metered/formation/web",
            Some(&key),
            Some(json!({"quantity": 2})),
        )
        .await;
    assert_eq!(scale.status, StatusCode::OK, "{:?}", scale.body);

    let reply = api
        .call(
            "GET",
            "/apps/metered/metrics/events?range=24h",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["range"], "24h");
    let events: Vec<(String, Value, String)> = reply.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["dyno"].clone(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (
                "deploy".to_owned(),
                Value::Null,
                "Deploy 1a2b3c4 by admin@example.com (v2)".to_owned()
            ),
            (
                "config".to_owned(),
                Value::Null,
                "Set FOO config vars by admin@example.com (v3)".to_owned()
            ),
            (
                "scale".to_owned(),
                Value::Null,
                "Scaled to web@2:Basic by admin@example.com".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_bad_range_is_refused_and_others_apps_are_not_found() {
    let (api, _dir, _id) = metered_api().await;
    for path in ["router", "dynos", "events"] {
        let reply = api
            .call(
                "GET",
                &format!("/apps/metered/metrics/{path}?range=2h"),
                Some(&api.admin_key),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
        let message = reply.body["message"].as_str().unwrap();
        assert!(
            message.contains("\"2h\"") && message.contains("1h, 24h or 7d"),
            "{message}"
        );

        let stranger = api.user(&format!("stranger-{path}@example.com")).await;
        let theirs = api
            .call(
                "GET",
                &format!("/apps/metered/metrics/{path}"),
                Some(&stranger),
                None,
            )
            .await;
        let missing = api
            .call(
                "GET",
                &format!("/apps/no-such-app/metrics/{path}"),
                Some(&stranger),
                None,
            )
            .await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND);
        assert_eq!(theirs.body, missing.body);
        let anonymous = api
            .call("GET", &format!("/apps/metered/metrics/{path}"), None, None)
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_server_without_history_says_so() {
    let api = TestApi::new().await;
    api.app(&api.admin_key, "plain").await;
    let reply = api
        .call(
            "GET",
            "/apps/plain/metrics/router",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["id"], "unavailable");
}
