//! Logging in and out, the API key's sources, and an unreachable server.

use super::harness::{execute, home, run_with, settings};
use super::server::{json, Server};

fn authorization_json(email: &str, token: &str) -> String {
    serde_json::json!({
        "id": "authorization-id",
        "description": "wharf CLI login",
        "scope": ["global"],
        "access_token": {"id": "token-id", "token": token, "expires_in": null},
        "user": {"id": "user-id", "email": email},
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z"
    })
    .to_string()
}

#[tokio::test]
async fn login_stores_the_key_that_later_commands_use() {
    let (_directory, home) = home();
    let server = Server::start(vec![
        json(
            "POST /oauth/authorizations",
            201,
            &authorization_json("me@example.com", "TOKEN"),
        ),
        json(
            "GET /account",
            200,
            r#"{"id":"x","email":"me@example.com"}"#,
        ),
    ]);
    let mut settings = settings(&server.url);
    settings.api_key = None;
    settings.home = Some(home.clone());
    let machine = server.url.trim_start_matches("http://").to_string();
    std::fs::write(home.join(".netrc"), "machine other login o password p\n").expect("write netrc");

    let (stdout, result) = execute(
        &["login", "--email", "me@example.com", "--api-key", "KEY"],
        &settings,
    )
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(stdout, "Logged in as me@example.com\n");
    let netrc = std::fs::read_to_string(home.join(".netrc")).expect("read netrc");
    assert_eq!(
        netrc,
        format!("machine other login o password p\nmachine {machine}\n  login me@example.com\n  password TOKEN\n")
    );

    // The key is now found in netrc.
    let outcome = run_with(&["auth:whoami", "--json"], &settings, server).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(
        outcome.stdout,
        "{\n  \"email\": \"me@example.com\",\n  \"id\": \"x\"\n}\n"
    );
    let login = outcome.request("POST /oauth/authorizations");
    assert_eq!(
        login.header("authorization"),
        Some("Basic bWVAZXhhbXBsZS5jb206S0VZ")
    );
    let body = login.json();
    assert_eq!(body["scope"], serde_json::json!(["global"]));
    let description = body["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("wharf CLI login from "),
        "{description}"
    );
    let whoami = outcome.request("GET /account");
    assert_eq!(whoami.header("authorization"), Some("Bearer TOKEN"));

    let (stdout, result) = execute(&["logout"], &settings).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(stdout, "Logging out... done\n");
    let netrc = std::fs::read_to_string(home.join(".netrc")).expect("read netrc");
    assert_eq!(netrc, "machine other login o password p\n");
}

#[tokio::test]
async fn without_a_key_commands_say_how_to_log_in() {
    let (_directory, home) = home();
    let mut settings = settings("http://127.0.0.1:5000");
    settings.api_key = None;
    settings.home = Some(home);
    let (_, result) = execute(&["auth:whoami"], &settings).await;
    let error = result.expect_err("no key anywhere");
    assert_eq!(
        error.to_string(),
        "Not logged in: run `wharf login`, or set WHARF_API_KEY"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_fix() {
    // A server with nothing to serve stops at once and closes its port.
    let closed = Server::start(Vec::new());
    let url = closed.url.clone();
    closed.finish();
    let (_, result) = execute(&["auth:whoami"], &settings(&url)).await;
    let error = result.expect_err("nothing listens");
    let lines = crate::error::render(&error);
    assert!(
        lines[0].starts_with(" ›   Error: The Wharf server at http://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(lines[0].contains("is not reachable"), "{lines:?}");
    assert!(
        lines.iter().any(|line| line.contains("WHARF_API_URL")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn users_create_shows_the_new_key_once() {
    let server = Server::start(vec![json(
        "POST /users",
        201,
        &serde_json::json!({
            "account": {
                "id": "new-id", "email": "new@example.com", "name": null,
                "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z",
                "last_login": null, "allow_tracking": false, "beta": false, "verified": false,
                "federated": false, "two_factor_authentication": false, "sms_number": null,
                "suspended_at": null, "delinquent_at": null, "default_organization": null,
                "default_team": null, "identity_provider": null, "country_of_residence": null,
                "admin": false
            },
            "api_key": "NEWKEY"
        })
        .to_string(),
    )]);
    let settings = settings(&server.url);
    let outcome = run_with(&["users:create", "new@example.com"], &settings, server).await;
    assert_eq!(
        outcome.stdout,
        "Created user new@example.com\nAPI key: NEWKEY\n"
    );
    assert_eq!(
        outcome.request("POST /users").json(),
        serde_json::json!({"email": "new@example.com"})
    );
}
