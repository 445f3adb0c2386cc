//! Config var commands, the headers every request carries, and how errors print.

use wharf_api_types::ACCEPT_V3;

use super::fixtures::{release, to_json};
use super::harness::run;
use super::server::{json, text};

#[tokio::test]
async fn every_request_carries_the_v3_headers() {
    let outcome = run(
        &["config", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/config-vars",
            200,
            r#"{"B":"2","A":"1"}"#,
        )],
    )
    .await;
    let request = outcome.request("GET /apps/myapp/config-vars");
    assert_eq!(request.header("accept"), Some(ACCEPT_V3));
    assert_eq!(request.header("authorization"), Some("Bearer test-key"));
    let agent = request.header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("wharf-cli/"), "{agent}");
    assert_eq!(outcome.stdout, "=== myapp Config Vars\n\nA: 1\nB: 2\n");
}

#[tokio::test]
async fn config_shell_quotes_values() {
    let outcome = run(
        &["config", "--shell", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/config-vars",
            200,
            r#"{"A":"two words","B":"x"}"#,
        )],
    )
    .await;
    assert_eq!(outcome.stdout, "A='two words'\nB=x\n");
}

#[tokio::test]
async fn config_get_prints_the_value_or_an_empty_line() {
    let vars = r#"{"A":"1=2"}"#;
    let outcome = run(
        &["config:get", "A", "-a", "myapp"],
        vec![json("GET /apps/myapp/config-vars", 200, vars)],
    )
    .await;
    assert_eq!(outcome.stdout, "1=2\n");
    let outcome = run(
        &["config:get", "MISSING", "-a", "myapp"],
        vec![json("GET /apps/myapp/config-vars", 200, vars)],
    )
    .await;
    assert_eq!(outcome.stdout, "\n");
}

#[tokio::test]
async fn config_set_patches_and_reports_the_new_release() {
    let outcome = run(
        &["config:set", "A=1", "LONG_NAME=x=y", "-a", "myapp"],
        vec![
            json(
                "PATCH /apps/myapp/config-vars",
                200,
                r#"{"A":"1","LONG_NAME":"x=y","OTHER":"3"}"#,
            ),
            json(
                "GET /apps/myapp/releases",
                206,
                &to_json(&vec![release(
                    7,
                    "Set A, LONG_NAME config vars",
                    true,
                    true,
                )]),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Setting A, LONG_NAME and restarting ⬢ myapp... done, v7\nA:         1\nLONG_NAME: x=y\n"
    );
    let patch = outcome.request("PATCH /apps/myapp/config-vars");
    assert_eq!(
        patch.json(),
        serde_json::json!({"A": "1", "LONG_NAME": "x=y"})
    );
    assert_eq!(patch.header("content-type"), Some("application/json"));
    let releases = outcome.request("GET /apps/myapp/releases");
    assert_eq!(
        releases.header("range"),
        Some("version ..; order=desc,max=1")
    );
}

#[tokio::test]
async fn config_unset_sends_nulls() {
    let outcome = run(
        &["config:unset", "A", "B", "-a", "myapp"],
        vec![
            json("PATCH /apps/myapp/config-vars", 200, "{}"),
            json(
                "GET /apps/myapp/releases",
                200,
                &to_json(&vec![release(8, "x", true, true)]),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Unsetting A, B and restarting ⬢ myapp... done, v8\n"
    );
    let patch = outcome.request("PATCH /apps/myapp/config-vars");
    assert_eq!(patch.json(), serde_json::json!({"A": null, "B": null}));
}

#[tokio::test]
async fn api_errors_show_message_and_id() {
    let outcome = run(
        &["apps:info", "-a", "nope"],
        vec![json(
            "GET /apps/nope",
            404,
            r#"{"id":"not_found","message":"Couldn't find that app."}"#,
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: Couldn't find that app.",
            " ›   Error ID: not_found"
        ]
    );
    assert_eq!(outcome.stdout, "");
}

#[tokio::test]
async fn non_json_errors_show_status_and_body() {
    let outcome = run(
        &["apps:info", "-a", "myapp"],
        vec![text("GET /apps/myapp", 502, "upstream is down\n")],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: the server answered HTTP 502 Bad Gateway: upstream is down"]
    );
}

#[tokio::test]
async fn json_flags_print_the_api_body() {
    let body = r#"{"A":"1","B":"2"}"#;
    let outcome = run(
        &["config", "--json", "-a", "myapp"],
        vec![json("GET /apps/myapp/config-vars", 200, body)],
    )
    .await;
    assert_eq!(outcome.stdout, "{\n  \"A\": \"1\",\n  \"B\": \"2\"\n}\n");
}
