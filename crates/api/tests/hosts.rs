//! Hosts through the API: an admin adds one and gets its credential and join command once;
//! the agent renews its lease with that credential alone; draining and removing show at once
//! in the host's state; API keys and host credentials never open each other's routes.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::TestApi;

async fn add(api: &TestApi, name: &str) -> Value {
    let reply = api
        .call(
            "POST",
            "/hosts",
            Some(&api.admin_key),
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body
}

async fn heartbeat(api: &TestApi, credential: &str, memory_mb: u64) -> (StatusCode, Value) {
    let reply = api
        .call(
            "PUT",
            "/agent/heartbeat",
            Some(credential),
            Some(json!({"memory_mb": memory_mb, "address": "10.77.0.2"})),
        )
        .await;
    (reply.status, reply.body)
}

async fn host(api: &TestApi, name: &str) -> Value {
    let reply = api
        .call("GET", &format!("/hosts/{name}"), Some(&api.admin_key), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

#[tokio::test]
async fn a_host_joins_heartbeats_drains_and_is_removed() {
    let api = TestApi::new().await;
    let created = add(&api, "host-1").await;
    let credential = created["credential"].as_str().unwrap().to_owned();
    assert!(credential.starts_with("wharf-host-"), "{credential}");
    assert_eq!(
        created["join_command"],
        format!(
            "WHARF_HOST_CREDENTIAL={credential} wharf agent --control-plane http://127.0.0.1:5000"
        )
    );
    assert_eq!(created["host"]["state"], "joining");
    // The credential is shown once: listing never shows it.
    let listed = api.call("GET", "/hosts", Some(&api.admin_key), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(!listed.body.to_string().contains(&credential));
    assert_eq!(listed.body[0]["name"], "host-1");

    let (status, lease) = heartbeat(&api, &credential, 3072).await;
    assert_eq!(status, StatusCode::OK, "{lease:?}");
    assert_eq!(lease["host"], "host-1");
    assert_eq!(lease["epoch"], 1);
    assert_eq!(lease["lease_ms"], 4000);
    assert_eq!(lease["heartbeat_ms"], 1000);
    assert_eq!(lease["draining"], false);
    let up = host(&api, "host-1").await;
    assert_eq!(up["state"], "up");
    assert_eq!(up["memory_mb"], 3072);
    assert_eq!(up["address"], "10.77.0.2");
    assert_eq!(up["dynos"], 0);

    let drained = api
        .call(
            "PATCH",
            "/hosts/host-1",
            Some(&api.admin_key),
            Some(json!({"draining": true})),
        )
        .await;
    assert_eq!(drained.status, StatusCode::OK, "{:?}", drained.body);
    assert_eq!(drained.body["state"], "draining");
    let (_, lease) = heartbeat(&api, &credential, 3072).await;
    assert_eq!(lease["draining"], true);
    let nothing = api
        .call(
            "PATCH",
            "/hosts/host-1",
            Some(&api.admin_key),
            Some(json!({})),
        )
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nothing.body["message"]
        .as_str()
        .unwrap()
        .contains("draining"));

    let removed = api
        .call("DELETE", "/hosts/host-1", Some(&api.admin_key), None)
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    // Removing revokes the credential.
    let (status, _) = heartbeat(&api, &credential, 3072).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let gone = api
        .call("GET", "/hosts/host-1", Some(&api.admin_key), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.body["message"]
        .as_str()
        .unwrap()
        .contains("wharf hosts"));
}

#[tokio::test]
async fn bad_names_and_duplicates_are_refused_and_change_nothing() {
    let api = TestApi::new().await;
    add(&api, "host-1").await;
    for (name, status, says) in [
        (
            "Host_1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "lowercase letters",
        ),
        ("", StatusCode::UNPROCESSABLE_ENTITY, "Host name"),
        ("host-1", StatusCode::CONFLICT, "exists already"),
    ] {
        let reply = api
            .call(
                "POST",
                "/hosts",
                Some(&api.admin_key),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(reply.status, status, "{name}: {:?}", reply.body);
        assert!(
            reply.body["message"].as_str().unwrap().contains(says),
            "{name}: {:?}",
            reply.body
        );
    }
    let listed = api.call("GET", "/hosts", Some(&api.admin_key), None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_and_host_credentials_do_not_open_each_others_routes() {
    let api = TestApi::new().await;
    let credential = add(&api, "host-1").await["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    // An admin's API key is no host credential, whatever it hashes to.
    let (status, _) = heartbeat(&api, &api.admin_key, 1024).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = heartbeat(&api, "wharf-host-made-up", 1024).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A host credential opens no user route.
    for (method, path) in [("GET", "/hosts"), ("GET", "/apps"), ("GET", "/account")] {
        let reply = api.call(method, path, Some(&credential), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // A heartbeat must say where the host is.
    let reply = api
        .call(
            "PUT",
            "/agent/heartbeat",
            Some(&credential),
            Some(json!({"memory_mb": 1024, "address": "a\nb"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(host(&api, "host-1").await["state"], "joining");
}
