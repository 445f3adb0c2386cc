//! The dashboard's sessions: logging in with an e-mail address and API key, the cookie, the
//! CSRF token on every change, and every way a session ends.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{Reply, TestApi};
use wharf_api::auth::hash_api_key;

const JSON: (&str, &str) = ("content-type", "application/json");

/// Logs in and returns the `Cookie` header value and the CSRF token.
async fn log_in(api: &TestApi, email: &str, key: &str) -> (String, String) {
    let reply = api
        .request(
            "POST",
            "/session",
            None,
            &[JSON],
            Some(json!({"email": email, "api_key": key}).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let cookie = reply.headers["set-cookie"].to_str().unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    (pair, reply.body["csrf_token"].as_str().unwrap().to_owned())
}

async fn with_cookie(
    api: &TestApi,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut headers = vec![("cookie", cookie), JSON];
    if let Some(csrf) = csrf {
        headers.push(("x-csrf-token", csrf));
    }
    api.request(method, path, None, &headers, body.map(|b| b.to_string()))
        .await
}

#[tokio::test]
async fn logging_in_needs_a_matching_email_and_key_sent_as_json() {
    let api = TestApi::new().await;
    let key = api.user("user@example.com").await;
    let other = api.user("other@example.com").await;
    for (email, api_key) in [
        ("user@example.com", "not-a-key"),
        ("user@example.com", other.as_str()),
        ("nobody@example.com", key.as_str()),
        ("not an address", key.as_str()),
    ] {
        let reply = api
            .request(
                "POST",
                "/session",
                None,
                &[JSON],
                Some(json!({"email": email, "api_key": api_key}).to_string()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{email}");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("wharf auth:token"),
            "{:?}",
            reply.body
        );
        assert!(!reply.headers.contains_key("set-cookie"));
    }
    // A form on another site can send text/plain without asking first; it is refused.
    let body = json!({"email": "user@example.com", "api_key": key}).to_string();
    let reply = api
        .request(
            "POST",
            "/session",
            None,
            &[("content-type", "text/plain")],
            Some(body.clone()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = api
        .request(
            "POST",
            "/session",
            None,
            &[JSON, ("sec-fetch-site", "cross-site")],
            Some(body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // The address is matched as an address (case-insensitively).
    let (cookie, _) = log_in(&api, "USER@example.com", &key).await;
    assert!(cookie.starts_with("wharf_session="), "{cookie}");
}

#[tokio::test]
async fn a_session_is_a_cookie_and_changes_need_its_csrf_token() {
    let api = TestApi::new().await;
    let key = api.user("user@example.com").await;
    api.app(&key, "mine").await;
    let reply = api
        .request(
            "POST",
            "/session",
            None,
            &[JSON],
            Some(json!({"email": "user@example.com", "api_key": key}).to_string()),
        )
        .await;
    let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("; HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("; SameSite=Strict"), "{set_cookie}");
    assert!(set_cookie.contains("; Path=/"), "{set_cookie}");
    // Over plain HTTP a Secure cookie would never come back.
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert_eq!(reply.body["email"], "user@example.com");
    assert_eq!(reply.body["admin"], false);
    assert!(!set_cookie.contains(reply.body["csrf_token"].as_str().unwrap()));
    assert!(!reply.body.to_string().contains(&key), "no key in the body");
    let (cookie, csrf) = log_in(&api, "user@example.com", &key).await;

    let shown = with_cookie(&api, "GET", "/session", &cookie, None, None).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["csrf_token"], csrf.as_str());
    let apps = with_cookie(&api, "GET", "/apps", &cookie, None, None).await;
    assert_eq!(apps.status, StatusCode::OK);
    assert_eq!(apps.body[0]["name"], "mine");

    let change = json!({"GREETING": "hello"});
    let path = "/apps/mine/config-vars";
    for csrf in [None, Some("wrong"), Some("")] {
        let refused = with_cookie(&api, "PATCH", path, &cookie, csrf, Some(change.clone())).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(
            refused.body["message"]
                .as_str()
                .unwrap()
                .contains("X-CSRF-Token"),
            "{:?}",
            refused.body
        );
    }
    let releases = api
        .call("GET", "/apps/mine/releases", Some(&key), None)
        .await;
    assert_eq!(
        releases.body.as_array().unwrap().len(),
        1,
        "nothing changed"
    );
    let done = with_cookie(&api, "PATCH", path, &cookie, Some(&csrf), Some(change)).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["GREETING"], "hello");

    // A cookie sent on a request from another site counts for nothing.
    let cross = api
        .request(
            "GET",
            "/apps",
            None,
            &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
            None,
        )
        .await;
    assert_eq!(cross.status, StatusCode::UNAUTHORIZED);
    // A session never hands out a key.
    let authorize = with_cookie(
        &api,
        "POST",
        "/oauth/authorizations",
        &cookie,
        Some(&csrf),
        Some(json!({})),
    )
    .await;
    assert_eq!(authorize.status, StatusCode::FORBIDDEN);
    assert!(!authorize.body.to_string().contains(&key));
}

#[tokio::test]
async fn sessions_end_on_log_out_expiry_and_lost_access() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    let friend = api.user("friend@example.com").await;
    api.app(&owner, "shared").await;
    api.app(&owner, "private").await;
    let added = api
        .call(
            "POST",
            "/apps/shared/collaborators",
            Some(&owner),
            Some(json!({"user": "friend@example.com"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let (cookie, csrf) = log_in(&api, "friend@example.com", &friend).await;

    let seen = with_cookie(&api, "GET", "/apps/shared", &cookie, None, None).await;
    assert_eq!(seen.status, StatusCode::OK);
    // Another user's app by URL answers as the API answers a key.
    let hidden = with_cookie(&api, "GET", "/apps/private", &cookie, None, None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.body["message"], "Couldn't find that app.");
    // Removed as a collaborator while the session lives: the app is gone for it at once.
    let removed = api
        .call(
            "DELETE",
            "/apps/shared/collaborators/friend@example.com",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    let gone = with_cookie(&api, "GET", "/apps/shared", &cookie, None, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // Logging out needs the token, then ends the session for good.
    let refused = with_cookie(&api, "DELETE", "/session", &cookie, None, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = with_cookie(&api, "DELETE", "/session", &cookie, Some(&csrf), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    for path in ["/apps", "/session"] {
        let after = with_cookie(&api, "GET", path, &cookie, None, None).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            after.body["message"],
            "Your session has ended: log in again"
        );
    }

    // An expired session is no session.
    let found = api
        .state
        .store
        .authenticate(&hash_api_key(&owner))
        .await
        .unwrap()
        .unwrap();
    let token = "e".repeat(64);
    api.state
        .store
        .open_session(
            found.key_id,
            &hash_api_key(&token),
            "csrf",
            time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
        )
        .await
        .unwrap();
    let expired = with_cookie(
        &api,
        "GET",
        "/apps",
        &format!("wharf_session={token}"),
        None,
        None,
    )
    .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        expired.body["message"],
        "Your session has ended: log in again"
    );
}

#[tokio::test]
async fn the_dashboard_is_served_with_its_security_headers() {
    let api = TestApi::new().await;
    let page = api
        .request("GET", "/", None, &[("accept-encoding", "gzip")], None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers["content-encoding"], "gzip");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let etag = page.headers["etag"].to_str().unwrap().to_owned();
    let again = api
        .request("GET", "/", None, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    // JSON answers may run and load nothing at all.
    let health = api.call("GET", "/health", None, None).await;
    assert_eq!(
        health.headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(health.headers["x-content-type-options"], "nosniff");

    for path in [
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/",
    ] {
        let missing = api.call("GET", path, None, None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn app_summaries_list_what_the_apps_page_shows() {
    let api = TestApi::new().await;
    let key = api.user("user@example.com").await;
    let other = api.user("other@example.com").await;
    api.app(&key, "busy").await;
    api.app(&other, "theirs").await;
    api.deploy(&key, "busy", json!({"web": "serve", "worker": "work"}))
        .await;
    let scaled = api
        .call(
            "PATCH",
            "/apps/busy/formation",
            Some(&key),
            Some(json!({"updates": [{"type": "web", "quantity": 2, "size": "eco"}]})),
        )
        .await;
    assert_eq!(scaled.status, StatusCode::OK, "{:?}", scaled.body);
    let reply = api.call("GET", "/app-summaries", Some(&key), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let summaries = reply.body.as_array().unwrap();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let busy = &summaries[0];
    assert_eq!(busy["name"], "busy");
    assert_eq!(busy["web_url"], "http://busy.localhost:8080/");
    assert_eq!(busy["owner"], "user@example.com");
    assert_eq!(
        busy["formation"],
        json!([
            {"type": "web", "quantity": 2, "size": "Eco"},
            {"type": "worker", "quantity": 0, "size": "Basic"}
        ])
    );
    // Eco, and no dyno of it asleep.
    assert_eq!(busy["sleeping"], false);
    assert_eq!(busy["last_release"]["version"], 2);
}
