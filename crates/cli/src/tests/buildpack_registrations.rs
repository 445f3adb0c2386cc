//! `buildpacks:register`, `buildpacks:registered` and `buildpacks:unregister`: the requests
//! sent and the text printed, for admins (who see directories) and other users (who do not).

use super::harness::run;
use super::server::json;

const PATH: &str = "/buildpack-registrations";

fn registration(name: &str, dir: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "dir": dir,
        "created_at": "2026-11-22T10:00:00Z",
        "created_by": dir.map(|_| serde_json::json!({"id": "1", "email": "admin@localhost"})),
    })
}

#[tokio::test]
async fn register_sends_the_name_and_directory() {
    let answer = registration("php", Some("/opt/buildpacks/php")).to_string();
    let outcome = run(
        &["buildpacks:register", "php", "/opt/buildpacks/php"],
        vec![json(&format!("POST {PATH}"), 201, &answer)],
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(
        outcome.request(&format!("POST {PATH}")).json(),
        serde_json::json!({"name": "php", "dir": "/opt/buildpacks/php"})
    );
    assert_eq!(
        outcome.stdout,
        "Registered buildpack php (/opt/buildpacks/php)\n\
         Apps use it with `wharf buildpacks:add php -a APP`.\n"
    );
}

#[tokio::test]
async fn register_shows_the_servers_refusal() {
    let outcome = run(
        &["buildpacks:register", "php", "/opt/go"],
        vec![json(
            &format!("POST {PATH}"),
            403,
            r#"{"id":"forbidden","message":"Only admins can register and unregister buildpacks."}"#,
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: Only admins can register and unregister buildpacks.",
            " ›   Error ID: forbidden"
        ]
    );
}

#[tokio::test]
async fn registered_lists_names_and_what_the_caller_may_see() {
    let admin_view = serde_json::json!([
        registration("clojure", Some("/srv/clj")),
        registration("php", Some("/srv/php")),
    ]);
    let outcome = run(
        &["buildpacks:registered"],
        vec![json(&format!("GET {PATH}"), 200, &admin_view.to_string())],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "=== Registered buildpacks\n\
         clojure  /srv/clj  admin@localhost\n\
         php  /srv/php  admin@localhost\n"
    );

    let user_view = serde_json::json!([registration("php", None)]);
    let outcome = run(
        &["buildpacks:registered"],
        vec![json(&format!("GET {PATH}"), 200, &user_view.to_string())],
    )
    .await;
    assert_eq!(outcome.stdout, "=== Registered buildpacks\nphp\n");

    let outcome = run(
        &["buildpacks:registered"],
        vec![json(&format!("GET {PATH}"), 200, "[]")],
    )
    .await;
    assert!(
        outcome.stdout.starts_with("No buildpacks are registered."),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn registered_json_prints_the_api_answer() {
    let body = serde_json::json!([registration("php", None)]);
    let outcome = run(
        &["buildpacks:registered", "--json"],
        vec![json(&format!("GET {PATH}"), 200, &body.to_string())],
    )
    .await;
    let printed: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(printed, body);
}

#[tokio::test]
async fn unregister_deletes_by_name() {
    let answer = registration("php", Some("/srv/php")).to_string();
    let outcome = run(
        &["buildpacks:unregister", "php"],
        vec![json(&format!("DELETE {PATH}/php"), 200, &answer)],
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert!(
        outcome.stdout.starts_with("Unregistered buildpack php\n"),
        "{}",
        outcome.stdout
    );
}
