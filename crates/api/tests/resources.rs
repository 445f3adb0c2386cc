//! The API's resources through its router: shapes, statuses, errors and paging as Heroku's
//! clients expect them.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::TestApi;

#[tokio::test]
async fn apps_have_every_field_clients_read() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    let created = api
        .call("POST", "/apps", Some(&key), Some(json!({"name": "myapp"})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.headers["content-type"], "application/json");
    let app = &created.body;
    for field in [
        "repo_size",
        "slug_size",
        "web_url",
        "git_url",
        "archived_at",
        "space",
        "team",
    ] {
        assert!(app.get(field).is_some(), "app.{field} must be present");
    }
    assert_eq!(app["web_url"], "http://myapp.localhost:8080/");
    assert_eq!(app["git_url"], "http://127.0.0.1:5000/myapp.git");
    assert_eq!(app["owner"]["email"], "admin@example.com");
    assert_eq!(app["generation"]["name"], "cedar");
    assert_eq!(app["repo_size"], Value::Null);
    assert_eq!(app["maintenance"], false);

    let generated = api.call("POST", "/apps", Some(&key), None).await;
    assert_eq!(generated.status, StatusCode::CREATED);
    let name = generated.body["name"].as_str().unwrap();
    assert!(wharf_model::AppName::parse(name).is_ok(), "{name}");

    let taken = api
        .call("POST", "/apps", Some(&key), Some(json!({"name": "myapp"})))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.body["message"], "Name myapp is already taken");

    let invalid = api
        .call("POST", "/apps", Some(&key), Some(json!({"name": "My_App"})))
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["id"], "invalid_params");
    assert!(invalid.body["message"]
        .as_str()
        .unwrap()
        .contains("lowercase"));

    let renamed = api
        .call(
            "PATCH",
            "/apps/myapp",
            Some(&key),
            Some(json!({"name": "newname", "maintenance": true})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "newname");
    assert_eq!(renamed.body["maintenance"], true);
    let by_id = api
        .call(
            "GET",
            &format!("/apps/{}", renamed.body["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(by_id.body["name"], "newname");

    let deleted = api.call("DELETE", "/apps/newname", Some(&key), None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        api.call("GET", "/apps/newname", Some(&key), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn config_changes_make_releases_and_bad_ones_change_nothing() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "configured").await;
    let set = api
        .call(
            "PATCH",
            "/apps/configured/config-vars",
            Some(&key),
            Some(json!({"FOO": "1", "URL": "postgres://x?a=b"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(set.body, json!({"FOO": "1", "URL": "postgres://x?a=b"}));

    let unset = api
        .call(
            "PATCH",
            "/apps/configured/config-vars",
            Some(&key),
            Some(json!({"FOO": null})),
        )
        .await;
    assert_eq!(unset.body, json!({"URL": "postgres://x?a=b"}));

    for (body, status, needle) in [
        (
            r#"{"GOOD": "1", "BAD-KEY": "2"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "BAD-KEY",
        ),
        (
            r#"{"NUM": 5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "string or null",
        ),
        (r#"{"FOO": "1""#, StatusCode::BAD_REQUEST, "not valid JSON"),
        (r#"["FOO"]"#, StatusCode::BAD_REQUEST, "wrong type"),
    ] {
        let reply = api
            .request(
                "PATCH",
                "/apps/configured/config-vars",
                Some(&key),
                &[("content-type", "application/json")],
                Some(body.into()),
            )
            .await;
        assert_eq!(reply.status, status, "{body}");
        assert!(
            reply.body["message"].as_str().unwrap().contains(needle),
            "{body}: {:?}",
            reply.body
        );
    }
    let huge = json!({"BIG": "x".repeat(40 * 1024)});
    let reply = api
        .call(
            "PATCH",
            "/apps/configured/config-vars",
            Some(&key),
            Some(huge),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let enormous = json!({"BIG": "x".repeat(400 * 1024)});
    let reply = api
        .call(
            "PATCH",
            "/apps/configured/config-vars",
            Some(&key),
            Some(enormous),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let config = api
        .call("GET", "/apps/configured/config-vars", Some(&key), None)
        .await;
    assert_eq!(
        config.body,
        json!({"URL": "postgres://x?a=b"}),
        "refused changes wrote nothing"
    );
    let releases = api
        .call("GET", "/apps/configured/releases", Some(&key), None)
        .await;
    let descriptions: Vec<_> = releases
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["description"].clone())
        .collect();
    assert_eq!(
        descriptions,
        [
            json!("Initial release"),
            json!("Set FOO, URL config vars"),
            json!("Remove FOO config vars")
        ]
    );
}

#[tokio::test]
async fn releases_page_like_heroku() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "paged").await;
    for i in 0..4 {
        api.call(
            "PATCH",
            "/apps/paged/config-vars",
            Some(&key),
            Some(json!({"N": i.to_string()})),
        )
        .await;
    }
    // What `config:set` sends to learn the new version.
    let newest = api
        .request(
            "GET",
            "/apps/paged/releases",
            Some(&key),
            &[("range", "version ..; order=desc,max=1")],
            None,
        )
        .await;
    assert_eq!(newest.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(newest.body[0]["version"], 5);
    assert_eq!(newest.body.as_array().unwrap().len(), 1);

    let mut range = "version ..; max=2, order=desc".to_owned();
    let mut versions = Vec::new();
    loop {
        let page = api
            .request(
                "GET",
                "/apps/paged/releases",
                Some(&key),
                &[("range", &range)],
                None,
            )
            .await;
        versions.extend(
            page.body
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["version"].as_i64().unwrap()),
        );
        match page.headers.get("next-range") {
            Some(next) => {
                assert_eq!(page.status, StatusCode::PARTIAL_CONTENT);
                range = next.to_str().unwrap().to_owned();
            }
            None => {
                assert_eq!(page.status, StatusCode::OK, "the last page is a 200");
                break;
            }
        }
    }
    assert_eq!(versions, [5, 4, 3, 2, 1]);

    let all = api
        .call("GET", "/apps/paged/releases", Some(&key), None)
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.headers.get("next-range").is_none());
    let release = &all.body[4];
    for field in [
        "current",
        "status",
        "eligible_for_rollback",
        "output_stream_url",
        "addon_plan_names",
        "user",
        "slug",
    ] {
        assert!(
            release.get(field).is_some(),
            "release.{field} must be present"
        );
    }
    assert_eq!(release["current"], true);

    let bad = api
        .request(
            "GET",
            "/apps/paged/releases",
            Some(&key),
            &[("range", "version ..; max=lots")],
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rollback_by_version_or_id() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "rolling").await;
    api.call(
        "PATCH",
        "/apps/rolling/config-vars",
        Some(&key),
        Some(json!({"A": "1"})),
    )
    .await;
    api.call(
        "PATCH",
        "/apps/rolling/config-vars",
        Some(&key),
        Some(json!({"A": "2"})),
    )
    .await;
    let v2 = api
        .call("GET", "/apps/rolling/releases/v2", Some(&key), None)
        .await;
    assert_eq!(v2.body["version"], 2);
    let at_v2 = api
        .call(
            "GET",
            "/apps/rolling/releases/2/config-vars",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(at_v2.body, json!({"A": "1"}));

    let rollback = api
        .call(
            "POST",
            "/apps/rolling/releases",
            Some(&key),
            Some(json!({"release": v2.body["id"]})),
        )
        .await;
    assert_eq!(rollback.status, StatusCode::CREATED);
    assert_eq!(rollback.body["version"], 4);
    assert_eq!(rollback.body["description"], "Rollback to v2");
    assert_eq!(rollback.body["current"], true);
    let config = api
        .call("GET", "/apps/rolling/config-vars", Some(&key), None)
        .await;
    assert_eq!(config.body, json!({"A": "1"}));

    let missing = api
        .call(
            "POST",
            "/apps/rolling/releases",
            Some(&key),
            Some(json!({"release": "99"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let neither = api
        .call(
            "POST",
            "/apps/rolling/releases",
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!(neither.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn scaling_follows_the_process_types() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "scaled").await;
    let none = api
        .call(
            "PATCH",
            "/apps/scaled/formation",
            Some(&key),
            Some(json!({"updates": [{"type": "web", "quantity": 1}]})),
        )
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.body["message"]
        .as_str()
        .unwrap()
        .contains("no process types"));

    let release = api
        .deploy(
            &key,
            "scaled",
            json!({"web": "gunicorn app:app", "worker": "celery"}),
        )
        .await;
    assert_eq!(release["description"], "Deploy 1a2b3c4");
    let formation = api
        .call("GET", "/apps/scaled/formation", Some(&key), None)
        .await;
    let summary: Vec<_> = formation
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["type"].clone(),
                f["quantity"].clone(),
                f["size"].clone(),
                f["command"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!("web"),
                json!(1),
                json!("Basic"),
                json!("gunicorn app:app")
            ),
            (json!("worker"), json!(0), json!("Basic"), json!("celery")),
        ]
    );

    // The shape the Heroku CLI sends: quantities as strings, relative, with a size.
    let scaled = api
        .call(
            "PATCH",
            "/apps/scaled/formation",
            Some(&key),
            Some(json!({"updates": [{"type": "web", "quantity": "+2"}, {"type": "worker", "quantity": "1", "size": "Standard-2X"}]})),
        )
        .await;
    assert_eq!(scaled.status, StatusCode::OK, "{:?}", scaled.body);
    assert_eq!(scaled.body[0]["quantity"], 3);
    assert_eq!(scaled.body[1]["size"], "Standard-2X");
    assert_eq!(scaled.body[1]["dyno_size"]["name"], "Standard-2X");

    let single = api
        .call(
            "PATCH",
            "/apps/scaled/formation/worker",
            Some(&key),
            Some(json!({"quantity": 0, "dyno_size": {"name": "performance-m"}})),
        )
        .await;
    assert_eq!(single.status, StatusCode::OK);
    assert_eq!(
        (single.body["quantity"].clone(), single.body["size"].clone()),
        (json!(0), json!("Performance-M"))
    );

    let unknown = api
        .call("PATCH", "/apps/scaled/formation", Some(&key), Some(json!({"updates": [{"type": "web", "quantity": 5}, {"type": "clock", "quantity": 1}]})))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body["message"],
        "Couldn't find that process type (clock): this app's process types are web, worker"
    );
    for bad in [
        json!({"type": "web", "quantity": -1}),
        json!({"type": "web", "quantity": "lots"}),
        json!({"type": "web", "size": "huge"}),
        json!({"quantity": 1}),
    ] {
        let reply = api
            .call(
                "PATCH",
                "/apps/scaled/formation",
                Some(&key),
                Some(json!({"updates": [bad]})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            reply.body
        );
    }
    let web = api
        .call("GET", "/apps/scaled/formation/web", Some(&key), None)
        .await;
    assert_eq!(web.body["quantity"], 3, "refused batches changed nothing");
}

#[tokio::test]
async fn login_handshake_and_users() {
    let api = TestApi::new().await;
    let basic = |user: &str, key: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"))
        )
    };
    let key = api.admin_key.clone();
    let body = Some(
        r#"{"description":"Heroku CLI login from host","expires_in":2592000,"scope":["global"]}"#
            .to_owned(),
    );
    let ok = api
        .request(
            "POST",
            "/oauth/authorizations",
            None,
            &[("authorization", &basic("admin@example.com", &key))],
            body.clone(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(ok.body["access_token"]["token"], key.as_str());
    assert_eq!(ok.body["user"]["email"], "admin@example.com");
    let wrong_user = api
        .request(
            "POST",
            "/oauth/authorizations",
            None,
            &[("authorization", &basic("bob@example.com", &key))],
            body.clone(),
        )
        .await;
    assert_eq!(wrong_user.status, StatusCode::UNAUTHORIZED);
    let wrong_key = api
        .request(
            "POST",
            "/oauth/authorizations",
            None,
            &[("authorization", &basic("admin@example.com", "nope"))],
            body,
        )
        .await;
    assert_eq!(wrong_key.status, StatusCode::UNAUTHORIZED);

    let user = api.user("carol@example.com").await;
    let account = api.call("GET", "/account", Some(&user), None).await;
    assert_eq!(account.body["email"], "carol@example.com");
    assert_eq!(account.body["admin"], false);
    let again = api
        .call(
            "POST",
            "/users",
            Some(&key),
            Some(json!({"email": "Carol@Example.com"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let invalid = api
        .call(
            "POST",
            "/users",
            Some(&key),
            Some(json!({"email": "carol"})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn heroku_conventions() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    let echoed = api
        .request(
            "GET",
            "/account",
            Some(&key),
            &[("request-id", "abc-123, def-456")],
            None,
        )
        .await;
    assert_eq!(echoed.headers["request-id"], "abc-123");
    let generated = api.call("GET", "/account", Some(&key), None).await;
    assert_eq!(generated.headers["request-id"].len(), 36);
    let v2 = api
        .request(
            "GET",
            "/account",
            Some(&key),
            &[("accept", "application/vnd.heroku+json; version=2")],
            None,
        )
        .await;
    assert_eq!(v2.status, StatusCode::NOT_ACCEPTABLE);
    let sdk = api
        .request(
            "GET",
            "/account",
            Some(&key),
            &[("accept", "application/vnd.heroku+json; version=3.sdk")],
            None,
        )
        .await;
    assert_eq!(sdk.status, StatusCode::OK);
    let unknown = api.call("GET", "/nothing-here", Some(&key), None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["id"], "not_found");
    let wrong_verb = api.call("PUT", "/apps", Some(&key), None).await;
    assert_eq!(wrong_verb.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_verb.headers["content-type"], "application/json");

    let sizes = api.call("GET", "/dyno-sizes", Some(&key), None).await;
    let names: Vec<_> = sizes
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("Eco"),
            json!("Basic"),
            json!("Standard-1X"),
            json!("Standard-2X"),
            json!("Performance-M"),
            json!("Performance-L")
        ]
    );
    let size = api
        .call("GET", "/dyno-sizes/standard-2x", Some(&key), None)
        .await;
    assert_eq!(size.body["memory"], 1.0);
}

#[tokio::test]
async fn log_sessions_stream_the_apps_lines_and_resume() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "logged").await;
    api.call(
        "PATCH",
        "/apps/logged/config-vars",
        Some(&key),
        Some(json!({"A": "1"})),
    )
    .await;
    let session = api
        .call(
            "POST",
            "/apps/logged/log-sessions",
            Some(&key),
            Some(json!({"lines": 10})),
        )
        .await;
    assert_eq!(session.status, StatusCode::CREATED);
    let url = session.body["logplex_url"].as_str().unwrap();
    let path = url.strip_prefix("http://127.0.0.1:5000").unwrap();
    let stream = api.request("GET", path, None, &[], None).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    let text = stream.body.as_str().unwrap().to_owned();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("data: ")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with(" app[api]: Set A config vars by admin@example.com"),
        "{text}"
    );
    assert!(
        lines[1].ends_with(" app[api]: Release v2 created by admin@example.com"),
        "{text}"
    );
    let first_id = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_owned();

    let resumed = api
        .request("GET", path, None, &[("last-event-id", &first_id)], None)
        .await;
    let text = resumed.body.as_str().unwrap().to_owned();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("data: ")).collect();
    assert_eq!(lines.len(), 1, "only lines after the last one seen: {text}");
    assert!(lines[0].contains("Release v2 created"));

    let heroku_only = api
        .call(
            "POST",
            "/apps/logged/log-sessions",
            Some(&key),
            Some(json!({"source": "heroku"})),
        )
        .await;
    let path = heroku_only.body["logplex_url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://127.0.0.1:5000")
        .unwrap()
        .to_owned();
    let text = api.request("GET", &path, None, &[], None).await.body;
    assert!(
        !text.as_str().unwrap_or_default().contains("app[api]"),
        "{text}"
    );
    let bad = api
        .call(
            "POST",
            "/apps/logged/log-sessions",
            Some(&key),
            Some(json!({"source": "nope"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let expired = api
        .request("GET", "/log-stream/not-a-session", None, &[], None)
        .await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
}
