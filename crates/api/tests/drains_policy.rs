//! The outbound policy at the log drains API: a drain pointing at this server, its link or an
//! internal network is refused with 422 and not stored; an internal network the operator
//! allows is accepted, and the drains runner judges it again when it connects. Nothing here
//! connects anywhere: refused addresses are refused before any connection.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use support::TestApi;
use uuid::Uuid;
use wharf_outbound::Policy;

const ADVICE: &str = ": drains must point at hosts outside this server and its internal networks";

#[tokio::test]
async fn drains_to_this_server_or_its_networks_are_refused_and_not_stored() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "guarded").await;
    let cases = [
        (
            "syslog://127.0.0.1:6379",
            "drain host \"127.0.0.1\" is 127.0.0.1, a loopback address of this server",
        ),
        // The API's own port, and its internal routes.
        (
            "http://127.0.0.1:5000/internal/push/x",
            "drain host \"127.0.0.1\" is 127.0.0.1, a loopback address of this server",
        ),
        (
            "https://localhost/logs",
            "drain host \"localhost\" resolves to ",
        ),
        (
            "syslog+tls://[::1]:6514",
            "drain host \"::1\" is ::1, a loopback address of this server",
        ),
        (
            "syslog://0.0.0.0:514",
            "drain host \"0.0.0.0\" is 0.0.0.0, the unspecified address, which reaches this server",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "drain host \"169.254.169.254\" is 169.254.169.254, a link-local address",
        ),
        (
            "syslog://[::ffff:127.0.0.1]:514",
            "drain host \"::ffff:127.0.0.1\" is ::ffff:127.0.0.1, the IPv4-mapped form of 127.0.0.1, a loopback address of this server",
        ),
        (
            "http://2130706433/",
            "drain host \"127.0.0.1\" is 127.0.0.1, a loopback address of this server",
        ),
        (
            "https://10.1.2.3/logs",
            "drain host \"10.1.2.3\" is 10.1.2.3, an address in 10.0.0.0/8 (private network), which this server's operator has not opened to outbound connections",
        ),
    ];
    for (url, expected) in cases {
        let refused = api
            .call(
                "POST",
                "/apps/guarded/log-drains",
                Some(&key),
                Some(json!({ "url": url })),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            refused.body
        );
        assert_eq!(refused.body["id"], "invalid_params", "{url}");
        let message = refused.body["message"].as_str().unwrap();
        assert!(
            message.starts_with(expected) && message.ends_with(ADVICE),
            "{url}: {message}"
        );
    }
    let listed = api
        .call("GET", "/apps/guarded/log-drains", Some(&key), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body, json!([]));
}

#[tokio::test]
async fn an_internal_network_the_operator_allows_is_accepted_and_judged_again_on_connection() {
    let mut api = TestApi::new().await;
    // The API's policy allows 10.0.0.0/8, as `WHARF_OUTBOUND_ALLOW=10.0.0.0/8` would. The
    // drains runner keeps the default policy, as after a restart with that entry removed: it
    // must refuse the stored drain when it connects (so no packet goes to 10.1.2.3).
    let mut state = api.state.clone();
    state.outbound = Policy::from_setting("10.0.0.0/8").unwrap();
    api.router = wharf_api::router(state.clone());
    api.state = state;
    let key = api.admin_key.clone();
    api.app(&key, "inside").await;
    let add = |url: &'static str| {
        let api = &api;
        let key = key.clone();
        async move {
            api.call(
                "POST",
                "/apps/inside/log-drains",
                Some(&key),
                Some(json!({ "url": url })),
            )
            .await
        }
    };
    let accepted = add("https://10.1.2.3/logs").await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.body);
    // The allow list opens that network and nothing more.
    for url in [
        "https://172.16.0.1/logs",
        "syslog://127.0.0.1:514",
        "syslog://169.254.169.254:514",
    ] {
        let refused = add(url).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            refused.body
        );
    }
    let listed = api
        .call("GET", "/apps/inside/log-drains", Some(&key), None)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.body);

    let app: Uuid = accepted.body["app"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let token = accepted.body["token"].as_str().unwrap();
    let logs = api.state.dynos.logs().clone();
    logs.append(
        app,
        wharf_logs::LogLine::now(wharf_logs::LogSource::App, "web.1", "for the drain"),
    );
    let expected = format!(
        "heroku[logplex]: Error (drain refused): drain {token}: host \"10.1.2.3\" is 10.1.2.3, an address in 10.0.0.0/8 (private network), which this server's operator has not opened to outbound connections{ADVICE}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> = logs
            .recent(app, usize::MAX)
            .iter()
            .map(ToString::to_string)
            .collect();
        if lines.iter().any(|line| line.ends_with(&expected)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal in the app's log: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
