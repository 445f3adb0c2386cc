//! Every route refuses callers it must refuse: no key or a bad key gets 401, another user's
//! app answers 404 as if it did not exist, admin routes answer 403 to others.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::TestApi;
use wharf_api::routes::{Access, ROUTES};

/// A concrete path for a route template, naming things that exist in the owner's app.
fn concrete(path: &str) -> String {
    path.replace("{app}", "owned")
        .replace("{release}", "1")
        .replace("{type}", "web")
        .replace("{collaborator}", "friend@example.com")
        .replace("{slug}", "00000000-0000-0000-0000-000000000000")
        .replace("{user}", "~")
        .replace("{size}", "basic")
        .replace("{build}", "00000000-0000-0000-0000-000000000000")
        .replace(
            "{token}",
            "0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .replace("{repo}", "owned.git")
        .replace("{domain}", "www.example.com")
        .replace("{endpoint}", "tokyo-00001")
        .replace("{name}", "php")
        .replace("{host}", "host-1")
        .replace("{*path}", "index.html")
}

fn body_for(method: &str) -> Option<serde_json::Value> {
    matches!(method, "POST" | "PATCH").then(|| json!({}))
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_bad_key() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    api.app(&owner, "owned").await;
    for (method, path, access) in ROUTES {
        let path = concrete(path);
        for key in [None, Some("not-a-key"), Some("")] {
            let reply = api.call(method, &path, key, body_for(method)).await;
            match access {
                Access::Public => assert_eq!(reply.status, StatusCode::OK, "{method} {path}"),
                // Without a session cookie: nobody is logged in, a log-in without its JSON
                // body is refused, and logging out has nothing to close.
                Access::Session => {
                    let expected = match *method {
                        "GET" => StatusCode::UNAUTHORIZED,
                        "POST" => StatusCode::BAD_REQUEST,
                        _ => StatusCode::NO_CONTENT,
                    };
                    assert_eq!(reply.status, expected, "{method} {path}");
                }
                // The secret is in the URL; a made-up one finds nothing, whatever the key.
                Access::Capability => {
                    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}")
                }
                Access::Git => {
                    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert!(
                        reply.headers.contains_key("www-authenticate"),
                        "{method} {path}"
                    );
                }
                Access::Account | Access::Admin | Access::App | Access::Host => {
                    assert_eq!(
                        reply.status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} key={key:?}"
                    );
                    assert_eq!(reply.body["id"], "unauthorized", "{method} {path}");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_app_route_hides_other_users_apps() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    let friend = api.user("friend@example.com").await;
    let stranger = api.user("stranger@example.com").await;
    api.app(&owner, "owned").await;
    api.deploy(&owner, "owned", json!({"web": "serve"})).await;
    let added = api
        .call(
            "POST",
            "/apps/owned/collaborators",
            Some(&owner),
            Some(json!({"user": "friend@example.com"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let _ = friend;
    let app_routes: Vec<_> = ROUTES
        .iter()
        .filter(|(_, _, a)| *a == Access::App)
        .collect();
    assert!(app_routes.len() > 10);
    for (method, path, _) in app_routes {
        let path = concrete(path);
        let reply = api
            .call(method, &path, Some(&stranger), body_for(method))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            reply.body
        );
        assert_eq!(
            reply.body["message"], "Couldn't find that app.",
            "{method} {path}"
        );
    }
    // git asks with Basic auth: the stranger's key finds no repository either.
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("git:{stranger}"))
    );
    for (method, path, _) in ROUTES.iter().filter(|(_, _, a)| *a == Access::Git) {
        let path = concrete(path);
        let reply = api
            .request(method, &path, None, &[("authorization", &basic)], None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            reply.body
        );
    }
    // Nothing the stranger sent changed the app.
    let app = api.call("GET", "/apps/owned", Some(&owner), None).await;
    assert_eq!(app.status, StatusCode::OK);
    let releases = api
        .call("GET", "/apps/owned/releases", Some(&owner), None)
        .await;
    assert_eq!(releases.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn admin_routes_refuse_other_users() {
    let api = TestApi::new().await;
    let user = api.user("user@example.com").await;
    for (method, path, _) in ROUTES.iter().filter(|(_, _, a)| *a == Access::Admin) {
        let reply = api
            .call(
                method,
                &concrete(path),
                Some(&user),
                Some(json!({"email": "new@example.com"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
}

#[tokio::test]
async fn collaborators_cannot_do_owner_things() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    let friend = api.user("friend@example.com").await;
    api.user("third@example.com").await;
    api.app(&owner, "owned").await;
    api.call(
        "POST",
        "/apps/owned/collaborators",
        Some(&owner),
        Some(json!({"user": "friend@example.com"})),
    )
    .await;

    let seen = api.call("GET", "/apps/owned", Some(&friend), None).await;
    assert_eq!(seen.status, StatusCode::OK);
    let set = api
        .call(
            "PATCH",
            "/apps/owned/config-vars",
            Some(&friend),
            Some(json!({"A": "1"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "collaborators change config");

    for (method, path, body) in [
        ("DELETE", "/apps/owned", None),
        ("PATCH", "/apps/owned", Some(json!({"name": "renamed"}))),
        (
            "POST",
            "/apps/owned/collaborators",
            Some(json!({"user": "third@example.com"})),
        ),
    ] {
        let reply = api.call(method, path, Some(&friend), body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            reply.body
        );
        assert!(reply.body["message"]
            .as_str()
            .unwrap()
            .contains("owner@example.com"));
    }
    let maintenance = api
        .call(
            "PATCH",
            "/apps/owned",
            Some(&friend),
            Some(json!({"maintenance": true})),
        )
        .await;
    assert_eq!(maintenance.status, StatusCode::OK);

    // A collaborator may leave; then the app is gone for it.
    let left = api
        .call(
            "DELETE",
            "/apps/owned/collaborators/friend@example.com",
            Some(&friend),
            None,
        )
        .await;
    assert_eq!(left.status, StatusCode::OK);
    let gone = api.call("GET", "/apps/owned", Some(&friend), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn users_list_only_their_own_apps() {
    let api = TestApi::new().await;
    let alice = api.user("alice@example.com").await;
    let bob = api.user("bob@example.com").await;
    api.app(&alice, "alice-app").await;
    api.app(&bob, "bob-app").await;
    for path in ["/apps", "/users/~/apps", "/users/alice@example.com/apps"] {
        let listed = api.call("GET", path, Some(&alice), None).await;
        let names: Vec<_> = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].clone())
            .collect();
        assert_eq!(names, [json!("alice-app")], "{path}");
    }
    let other = api
        .call("GET", "/users/bob@example.com/apps", Some(&alice), None)
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_list_every_user() {
    let api = TestApi::new().await;
    api.user("zed@example.com").await;
    api.user("amy@example.com").await;
    let reply = api.call("GET", "/users", Some(&api.admin_key), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let listed: Vec<_> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|user| {
            (
                user["email"].as_str().unwrap(),
                user["admin"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("admin@example.com", true),
            ("amy@example.com", false),
            ("zed@example.com", false)
        ]
    );
}
