//! Log drains, app features and dyno metrics through the API's router: Heroku's shapes,
//! the five-drain limit, refused URLs, removal by URL, and the one feature Wharf has.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::TestApi;

#[tokio::test]
async fn log_drains_in_herokus_shape() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "drained").await;
    let created = api
        .call(
            "POST",
            "/apps/drained/log-drains",
            Some(&key),
            Some(json!({"url": "syslog://logs.example.com:1"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let drain = &created.body;
    assert_eq!(drain["addon"], json!(null));
    assert_eq!(drain["app"]["name"], "drained");
    assert_eq!(drain["url"], "syslog://logs.example.com:1");
    assert!(drain["token"].as_str().unwrap().starts_with("d."));
    for field in ["id", "created_at", "updated_at"] {
        assert!(drain[field].is_string(), "{field}: {drain}");
    }
    let shown = api
        .call(
            "GET",
            &format!("/apps/drained/log-drains/{}", drain["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(&shown.body, drain);

    for port in 2..=5 {
        let more = api
            .call(
                "POST",
                "/apps/drained/log-drains",
                Some(&key),
                Some(json!({"url": format!("https://logs.example.com:{port}/in")})),
            )
            .await;
        assert_eq!(more.status, StatusCode::CREATED, "{}", more.body);
    }
    let sixth = api
        .call(
            "POST",
            "/apps/drained/log-drains",
            Some(&key),
            Some(json!({"url": "syslog+tls://logs.example.com:6"})),
        )
        .await;
    assert_eq!(sixth.status, StatusCode::CONFLICT, "{}", sixth.body);
    assert!(sixth.body["message"]
        .as_str()
        .unwrap()
        .contains("the most it may have"));
    let bad = api
        .call(
            "POST",
            "/apps/drained/log-drains",
            Some(&key),
            Some(json!({"url": "syslog://no-port.example.com"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);

    let removed = api
        .call(
            "DELETE",
            "/apps/drained/log-drains/syslog:%2F%2Flogs.example.com:1",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(&removed.body, drain);
    let listed = api
        .call("GET", "/apps/drained/log-drains", Some(&key), None)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 4);
    let gone = api
        .call(
            "DELETE",
            &format!("/apps/drained/log-drains/{}", drain["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn app_features_and_dyno_metrics() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "labbed").await;
    let listed = api
        .call("GET", "/apps/labbed/features", Some(&key), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let features = listed.body.as_array().unwrap();
    let names: Vec<&str> = features
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["log-runtime-metrics", "http-session-affinity"]);
    assert!(
        features.iter().all(|f| f["enabled"] == false),
        "off by default"
    );
    assert_eq!(
        features[1]["doc_url"],
        "https://devcenter.heroku.com/articles/session-affinity"
    );
    assert_eq!(features[1]["state"], "general");
    for field in [
        "created_at",
        "description",
        "doc_url",
        "id",
        "state",
        "updated_at",
        "display_name",
        "feedback_email",
    ] {
        assert!(features[0][field].is_string(), "{field}: {}", features[0]);
    }
    let enabled = api
        .call(
            "PATCH",
            "/apps/labbed/features/log-runtime-metrics",
            Some(&key),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    assert_eq!(enabled.body["enabled"], true);
    let by_id = api
        .call(
            "GET",
            &format!(
                "/apps/labbed/features/{}",
                features[0]["id"].as_str().unwrap()
            ),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(by_id.body["enabled"], true);
    let unknown = api
        .call(
            "PATCH",
            "/apps/labbed/features/preboot-everything",
            Some(&key),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let message = unknown.body["message"].as_str().unwrap();
    assert!(
        message.contains("preboot-everything") && message.contains("http-session-affinity"),
        "{message}"
    );
    for enabled in [true, false] {
        let set = api
            .call(
                "PATCH",
                "/apps/labbed/features/http-session-affinity",
                Some(&key),
                Some(json!({ "enabled": enabled })),
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
        assert_eq!(set.body["enabled"], enabled);
        let shown = api
            .call(
                "GET",
                "/apps/labbed/features/http-session-affinity",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(shown.body["enabled"], enabled);
    }
    let metrics = api
        .call("GET", "/apps/labbed/dynos/web.1/metrics", Some(&key), None)
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(metrics.body, json!([]));
}
