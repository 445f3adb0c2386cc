//! `ps`, `ps:restart` and `ps:stop`: requests sent and text printed.

use super::fixtures::{dyno, to_json};
use super::harness::run;
use super::server::json;

fn dynos_json() -> String {
    to_json(&vec![
        dyno("run.4821", "up", "bash", "Basic"),
        dyno("web.1", "up", "gunicorn app:app", "Standard-2X"),
        dyno("worker.1", "crashed", "python worker.py", "Basic"),
    ])
}

/// The fixtures' `updated_at`, as `ps` shows it before the age.
const WHEN: &str = "2020/01/01 00:00:00 +0000 (~ ";

#[tokio::test]
async fn ps_shows_one_offs_then_each_process_type() {
    let outcome = run(
        &["ps", "-a", "myapp"],
        vec![json("GET /apps/myapp/dynos", 200, &dynos_json())],
    )
    .await;
    outcome.result.as_ref().expect("ps succeeds");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    let expected = [
        "=== run: one-off processes (1)",
        "run.4821 (Basic): up ",
        "",
        "=== web (Standard-2X): gunicorn app:app (1)",
        "web.1: up ",
        "",
        "=== worker (Basic): python worker.py (1)",
        "worker.1: crashed ",
    ];
    assert_eq!(lines.len(), expected.len(), "{}", outcome.stdout);
    for (line, start) in lines.iter().zip(expected) {
        assert!(line.starts_with(start), "{line:?} should start {start:?}");
    }
    assert!(lines[1].starts_with(&format!("run.4821 (Basic): up {WHEN}")));
    assert!(lines[1].ends_with(" ago): bash"), "{}", lines[1]);
    assert!(lines[4].starts_with(&format!("web.1: up {WHEN}")));
}

#[tokio::test]
async fn ps_filters_by_type_and_says_when_one_has_no_dynos() {
    let outcome = run(
        &["ps", "worker", "-a", "myapp"],
        vec![json("GET /apps/myapp/dynos", 200, &dynos_json())],
    )
    .await;
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines[0], "=== worker (Basic): python worker.py (1)");
    assert_eq!(lines.len(), 2);

    let outcome = run(
        &["ps", "web", "clock", "-a", "myapp"],
        vec![json("GET /apps/myapp/dynos", 200, &dynos_json())],
    )
    .await;
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: No clock dynos on ⬢ myapp"]
    );
}

#[tokio::test]
async fn ps_says_when_there_are_no_dynos() {
    let outcome = run(
        &["ps", "-a", "myapp"],
        vec![json("GET /apps/myapp/dynos", 200, "[]")],
    )
    .await;
    outcome.result.as_ref().expect("no dynos is no failure");
    assert_eq!(outcome.stdout, "No dynos on ⬢ myapp\n");
}

#[tokio::test]
async fn ps_json_is_the_api_list_filtered() {
    let outcome = run(
        &["ps", "web", "--json", "-a", "myapp"],
        vec![json("GET /apps/myapp/dynos", 200, &dynos_json())],
    )
    .await;
    let printed: serde_json::Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    let all: serde_json::Value = serde_json::from_str(&dynos_json()).expect("JSON");
    assert_eq!(printed, serde_json::Value::Array(vec![all[1].clone()]));
}

/// Runs a `ps:restart` or `ps:stop` line against a server expecting only `route`; checks
/// that it was the one request and what was printed.
async fn check_action(arguments: &[&str], route: &str, said: &str) {
    let outcome = run(arguments, vec![json(route, 202, "{}")]).await;
    if let Err(error) = &outcome.result {
        panic!("{arguments:?}: {error:#}");
    }
    let routes: Vec<&str> = outcome.requests.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(routes, [route], "{arguments:?}");
    assert_eq!(outcome.stdout, format!("{said} on ⬢ myapp... done\n"));
}

#[tokio::test]
async fn restart_and_stop_send_the_request_for_their_target() {
    let cases: [(&[&str], &str, &str); 8] = [
        (
            &["ps:restart"],
            "DELETE /apps/myapp/dynos",
            "Restarting all dynos",
        ),
        (
            &["ps:restart", "web"],
            "DELETE /apps/myapp/formations/web",
            "Restarting web dynos",
        ),
        (
            &["restart", "web.1"],
            "DELETE /apps/myapp/dynos/web.1",
            "Restarting web.1 dyno",
        ),
        (
            &["ps:restart", "-p", "worker"],
            "DELETE /apps/myapp/formations/worker",
            "Restarting worker dynos",
        ),
        (
            &["ps:restart", "--dyno-name", "run.4821"],
            "DELETE /apps/myapp/dynos/run.4821",
            "Restarting run.4821 dyno",
        ),
        (
            &["ps:stop", "web.1"],
            "POST /apps/myapp/dynos/web.1/actions/stop",
            "Stopping web.1 dyno",
        ),
        (
            &["ps:stop", "web"],
            "POST /apps/myapp/formations/web/actions/stop",
            "Stopping web dynos",
        ),
        (
            &["stop", "-d", "worker.2"],
            "POST /apps/myapp/dynos/worker.2/actions/stop",
            "Stopping worker.2 dyno",
        ),
    ];
    for (arguments, route, said) in cases {
        let arguments: Vec<&str> = arguments.iter().copied().chain(["-a", "myapp"]).collect();
        check_action(&arguments, route, said).await;
    }
}

#[tokio::test]
async fn a_failed_restart_ends_the_line_and_shows_the_api_error() {
    let outcome = run(
        &["ps:restart", "web.9", "-a", "myapp"],
        vec![json(
            "DELETE /apps/myapp/dynos/web.9",
            404,
            r#"{"id":"not_found","message":"Couldn't find that dyno."}"#,
        )],
    )
    .await;
    assert_eq!(outcome.stdout, "Restarting web.9 dyno on ⬢ myapp... !\n");
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: Couldn't find that dyno.",
            " ›   Error ID: not_found"
        ]
    );
}
