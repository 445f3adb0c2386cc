//! Config var values a process environment cannot hold are refused, naming the var, and change
//! nothing; the same rule holds for a one-off dyno's own variables.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::TestApi;

#[tokio::test]
async fn a_nul_in_a_config_var_is_refused_and_changes_nothing() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "nul").await;
    let set = api
        .call(
            "PATCH",
            "/apps/nul/config-vars",
            Some(&key),
            Some(json!({"KEEP": "1"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);

    // Written out as JSON has it, so the test does not depend on how a serializer escapes.
    for body in [
        r#"{"BAD":"a\u0000b"}"#,
        r#"{"GOOD":"2","BAD":"a\u0000b"}"#,
        r#"{"BAD":"\u0000"}"#,
    ] {
        let reply = api
            .request(
                "PATCH",
                "/apps/nul/config-vars",
                Some(&key),
                &[("content-type", "application/json")],
                Some(body.to_owned()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(reply.body["id"], "invalid_params", "{body}");
        let message = reply.body["message"].as_str().unwrap();
        assert!(
            message.starts_with("The value of BAD has a NUL character")
                && message.contains("environment cannot hold"),
            "{body}: {message}"
        );
    }

    let config = api
        .call("GET", "/apps/nul/config-vars", Some(&key), None)
        .await;
    assert_eq!(
        config.body,
        json!({"KEEP": "1"}),
        "refused changes wrote nothing"
    );
    let releases = api
        .call("GET", "/apps/nul/releases", Some(&key), None)
        .await;
    assert_eq!(
        releases.body.as_array().unwrap().len(),
        2,
        "no release for a refused change: {:?}",
        releases.body
    );
}

#[tokio::test]
async fn a_nul_in_a_one_off_dynos_variable_is_refused() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "nulrun").await;
    let reply = api
        .request(
            "POST",
            "/apps/nulrun/dynos",
            Some(&key),
            &[("content-type", "application/json")],
            Some(r#"{"command":"env","attach":false,"env":{"BAD":"a\u0000b"}}"#.to_owned()),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        reply.body
    );
    let message = reply.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("The value of BAD has a NUL character"),
        "{message}"
    );
}
