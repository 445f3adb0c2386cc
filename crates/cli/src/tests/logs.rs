//! `logs`: the log session asked for, the event stream read (in pieces, across reconnects)
//! and the lines printed.

use super::harness::{run_with, settings, Outcome};
use super::server::{event_stream, json, Canned, Server};

const STREAM: &str = "GET /log-stream/secret";
const AT: &str = "2026-11-22T10:00:00.000000+00:00";

/// The `POST` answer: a session whose stream is on the test server.
fn session(server: &str) -> Canned {
    json(
        "POST /apps/myapp/log-sessions",
        201,
        &serde_json::json!({
            "id": "session-1",
            "logplex_url": format!("{server}/log-stream/secret"),
            "created_at": "2026-11-22T10:00:00Z",
            "updated_at": "2026-11-22T10:00:00Z",
        })
        .to_string(),
    )
}

/// Runs `wharf logs -a myapp <arguments>` against a session and then `streams`.
async fn logs(arguments: &[&str], streams: Vec<Canned>) -> Outcome {
    let server = Server::start_with(|url| std::iter::once(session(url)).chain(streams).collect());
    let settings = settings(&server.url);
    let arguments: Vec<&str> = ["logs", "-a", "myapp"]
        .into_iter()
        .chain(arguments.iter().copied())
        .collect();
    run_with(&arguments, &settings, server).await
}

#[tokio::test]
async fn logs_prints_the_history_then_ends() {
    let outcome = logs(
        &[],
        vec![event_stream(STREAM, 200, "").chunked(&[
            &format!("id: 1\ndata: {AT} app[web.1]: one\n"),
            "\nid: 2\nda",
            "ta: two\ndata: three\n\n: ping\n\n",
            ": this reader fell behind; 3 lines were skipped\n\nid: 3\r\ndata: four\r\n\r\n",
        ])],
    )
    .await;
    outcome.result.as_ref().expect("logs succeeds");
    assert_eq!(
        outcome.stdout,
        format!("{AT} app[web.1]: one\ntwo\nthree\nfour\n")
    );
    assert_eq!(
        outcome.stderr,
        " ›   Warning: this reader fell behind; 3 lines were skipped\n"
    );
    // Without --tail, the end of the stream is the end: no reconnect.
    assert_eq!(outcome.requests.len(), 2, "{:?}", outcome.requests);
    let create = outcome.request("POST /apps/myapp/log-sessions");
    assert_eq!(
        create.json(),
        serde_json::json!({"lines": 100, "tail": false})
    );
    let stream = outcome.request(STREAM);
    assert_eq!(stream.header("accept"), Some("text/event-stream"));
    assert_eq!(
        stream.header("authorization"),
        None,
        "the URL is the credential"
    );
    assert_eq!(stream.header("last-event-id"), None);
}

#[tokio::test]
async fn logs_asks_for_a_number_of_lines_of_a_process_type_and_source() {
    let outcome = logs(
        &["-n", "5", "-p", "web", "--source", "app"],
        vec![event_stream(STREAM, 200, "")],
    )
    .await;
    outcome.result.as_ref().expect("logs succeeds");
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.request("POST /apps/myapp/log-sessions").json(),
        serde_json::json!({"lines": 5, "tail": false, "dyno": "web", "source": "app"})
    );
}

#[tokio::test]
async fn logs_force_colors_colours_lines_off_a_terminal() {
    let outcome = logs(
        &["--force-colors", "-d", "web.1"],
        vec![event_stream(
            STREAM,
            200,
            &format!("data: {AT} app[api]: Deploy\n\n"),
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        format!("\u{1b}[2m{AT}\u{1b}[22m \u{1b}[32mapp[api]\u{1b}[39m: Deploy\n")
    );
    assert_eq!(
        outcome.request("POST /apps/myapp/log-sessions").json()["dyno"],
        "web.1"
    );
}

#[tokio::test]
async fn a_tail_reconnects_with_the_last_event_id_until_the_session_expires() {
    let outcome = logs(
        &["--tail"],
        vec![
            // `retry` keeps the test quick; the default wait is 3 s.
            event_stream(STREAM, 200, "").chunked(&[
                "retry: 10\n\n",
                "id: 1\ndata: one\n\n",
                "id: 2\ndata: two\n\nid: 3\ndata: cut off mid-event",
            ]),
            event_stream(STREAM, 200, "").chunked(&["id: 3\ndata: three\n\n", ": ping\n\n"]),
            json(
                STREAM,
                404,
                r#"{"id":"not_found","message":"That log session has expired: start another."}"#,
            ),
        ],
    )
    .await;
    assert_eq!(outcome.stdout, "one\ntwo\nthree\n");
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: Log stream timed out. Please try again."]
    );
    assert_eq!(
        outcome.request("POST /apps/myapp/log-sessions").json(),
        serde_json::json!({"lines": 100, "tail": true})
    );
    let last_ids: Vec<Option<&str>> = outcome
        .requests
        .iter()
        .filter(|request| request.route == STREAM)
        .map(|request| request.header("last-event-id"))
        .collect();
    assert_eq!(last_ids, [None, Some("2"), Some("3")]);
}

#[tokio::test]
async fn an_expired_session_without_tail_shows_the_server_error() {
    let outcome = logs(
        &[],
        vec![json(
            STREAM,
            404,
            r#"{"id":"not_found","message":"That log session has expired: start another."}"#,
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: That log session has expired: start another.",
            " ›   Error ID: not_found"
        ]
    );
}
