//! What users do with an add-on's data through the API (the Wharf extensions `pg:*` and
//! `redis:*` call), in process with the real PostgreSQL of this machine as an operator's
//! server with backups: info without a credential, backups captured, listed, downloaded and
//! restored after a reset, a restore from another user's app refused as if it did not exist,
//! settings a service does not have refused with a clear message, and a second add-on
//! attached under a name already taken refused.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::TestApi;
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::Registry;

async fn api(backups: &std::path::Path) -> TestApi {
    let postgres = std::env::var("WHARF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut registry = Registry::new();
    registry.register(Arc::new(
        PostgresProvider::new(&postgres, None)
            .unwrap()
            .with_backups(backups.to_owned()),
    ));
    TestApi::with_addons(registry).await
}

async fn call(api: &TestApi, key: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let reply = api.call(method, path, Some(key), body).await;
    assert!(
        reply.status.is_success(),
        "{method} {path}: {} {:?}",
        reply.status,
        reply.body
    );
    reply.body
}

/// Runs `sql` on the add-on's database as the app would.
async fn sql(url: &str, statement: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(statement)
        .execute(&mut connection)
        .await
        .unwrap();
}

async fn count(url: &str) -> Option<i64> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut connection)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_info_reset_and_restore_through_the_api() {
    let backups = tempfile::tempdir().unwrap();
    let api = api(backups.path()).await;
    let key = api.user("dev@example.com").await;
    let other_key = api.user("other@example.com").await;
    api.app(&key, "notes").await;
    api.app(&other_key, "theirs").await;

    let addon = call(
        &api,
        &key,
        "POST",
        "/apps/notes/addons",
        Some(json!({"plan": "heroku-postgresql"})),
    )
    .await;
    let name = addon["name"].as_str().unwrap().to_owned();
    let vars = call(&api, &key, "GET", "/apps/notes/config-vars", None).await;
    let url = vars["DATABASE_URL"].as_str().unwrap().to_owned();
    sql(
        &url,
        "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('kept'), ('too')",
    )
    .await;

    // Info names the plan and never a credential; the attachment name finds the add-on too.
    let info = call(
        &api,
        &key,
        "GET",
        "/apps/notes/addons/DATABASE_URL/info",
        None,
    )
    .await;
    assert!(!info.to_string().contains("://"), "{info}");
    let rows: Vec<(String, String)> = info
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["name"].as_str().unwrap().to_owned(),
                row["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        rows.contains(&("Plan".to_owned(), "wharf-postgresql:mini".to_owned())),
        "{rows:?}"
    );

    // Capture, list, download.
    let backup = call(
        &api,
        &key,
        "POST",
        &format!("/apps/notes/addons/{name}/backups"),
        None,
    )
    .await;
    assert_eq!(backup["name"], "b001");
    assert!(backup["size"].as_u64().unwrap() > 0);
    let listed = call(
        &api,
        &key,
        "GET",
        "/apps/notes/addons/DATABASE/backups",
        None,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "b001");
    let download = api
        .call(
            "GET",
            "/apps/notes/addons/DATABASE/backups/b001",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(
        download.body.as_str().unwrap().starts_with("PGDMP"),
        "not a pg_dump custom-format file"
    );
    let missing = api
        .call(
            "GET",
            "/apps/notes/addons/DATABASE/backups/b999",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let traversal = api
        .call(
            "GET",
            "/apps/notes/addons/DATABASE/backups/..%2F..%2Fetc%2Fpasswd",
            Some(&key),
            None,
        )
        .await;
    assert!(traversal.status.is_client_error(), "{:?}", traversal.body);

    // Reset empties it; restore gives the rows back.
    call(
        &api,
        &key,
        "POST",
        "/apps/notes/addons/DATABASE/actions/reset",
        None,
    )
    .await;
    assert_eq!(count(&url).await, None, "the table survived the reset");
    call(
        &api,
        &key,
        "POST",
        "/apps/notes/addons/DATABASE/actions/restore",
        Some(json!({"backup": "b001"})),
    )
    .await;
    assert_eq!(count(&url).await, Some(2));

    // Someone else's restore from this app's backups: as if the app did not exist.
    call(
        &api,
        &other_key,
        "POST",
        "/apps/theirs/addons",
        Some(json!({"plan": "heroku-postgresql"})),
    )
    .await;
    let stolen = api
        .call(
            "POST",
            "/apps/theirs/addons/DATABASE/actions/restore",
            Some(&other_key),
            Some(json!({"backup": "b001", "from_app": "notes"})),
        )
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    assert_eq!(stolen.body["message"], "Couldn't find that app.");

    // A setting PostgreSQL add-ons do not have.
    let refused = api
        .call(
            "PATCH",
            "/apps/notes/addons/DATABASE/settings",
            Some(&key),
            Some(json!({"settings": {"maxmemory-policy": "allkeys-lru"}})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("wharf-postgresql"),
        "{:?}",
        refused.body
    );

    // A second add-on under a name already taken.
    let taken = api
        .call(
            "POST",
            "/apps/notes/addons",
            Some(&key),
            Some(json!({"plan": "heroku-postgresql", "attachment": {"name": "DATABASE"}})),
        )
        .await;
    assert!(taken.status.is_client_error(), "{:?}", taken.body);
    assert!(
        taken.body["message"].as_str().unwrap().contains("DATABASE"),
        "{:?}",
        taken.body
    );

    for (owner, app) in [(&key, "notes"), (&other_key, "theirs")] {
        call(
            &api,
            owner,
            "DELETE",
            &format!("/apps/{app}/addons/DATABASE"),
            None,
        )
        .await;
    }
    assert!(
        std::fs::read_dir(backups.path()).unwrap().next().is_none(),
        "destroying the add-ons left backups"
    );
}
