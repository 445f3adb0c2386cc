//! `builds`, `builds:info`, `builds:output` and `builds:cache:purge`.

use super::fixtures::{build, to_json};
use super::harness::{run, run_with, settings};
use super::server::{json, text, Server};

const SERVER: &str = "http://127.0.0.1:5000";

#[tokio::test]
async fn builds_lists_the_newest_first() {
    let builds = vec![
        build("b1", "succeeded", Some("abc123"), SERVER),
        build("b2", "failed", None, SERVER),
        build("b3", "pending", Some("def456"), SERVER),
    ];
    let outcome = run(
        &["builds", "-a", "myapp", "-n", "2"],
        vec![json("GET /apps/myapp/builds", 200, &to_json(&builds))],
    )
    .await;
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines[0], "=== ⬢ myapp Builds");
    let when = "2020/01/01 00:00:00 +0000 (~ ";
    assert!(
        lines[1].starts_with(&format!("b3  pending  admin@example.com  {when}")),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(" ago)  def456"), "{}", lines[1]);
    assert!(
        lines[2].starts_with(&format!("b2  failed  admin@example.com  {when}")),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with(" ago)"), "{}", lines[2]);
    assert_eq!(lines.len(), 3);
}

#[tokio::test]
async fn builds_json_is_the_newest_builds() {
    let builds = vec![
        build("b1", "succeeded", None, SERVER),
        build("b2", "succeeded", None, SERVER),
    ];
    let outcome = run(
        &["builds", "-a", "myapp", "-n", "1", "--json"],
        vec![json("GET /apps/myapp/builds", 200, &to_json(&builds))],
    )
    .await;
    let printed: serde_json::Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    let ids: Vec<&str> = printed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|build| build["id"].as_str())
        .collect();
    assert_eq!(ids, ["b2"]);
}

#[tokio::test]
async fn builds_says_when_there_are_none() {
    let outcome = run(
        &["builds", "-a", "myapp"],
        vec![json("GET /apps/myapp/builds", 200, "[]")],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "=== ⬢ myapp Builds\n⬢ myapp has no builds yet.\n"
    );
}

#[tokio::test]
async fn builds_info_shows_the_newest_build() {
    let builds = vec![
        build("b1", "failed", None, SERVER),
        build("b2", "succeeded", Some("abc123"), SERVER),
    ];
    let outcome = run(
        &["builds:info", "-a", "myapp"],
        vec![json("GET /apps/myapp/builds", 200, &to_json(&builds))],
    )
    .await;
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "Id:         b2",
            "Status:     succeeded",
            "Buildpacks: python",
            "Version:    abc123",
            "Release:    b2-release",
        ]
    );
    assert!(
        lines[5].starts_with("Created:    2020/01/01 00:00:00 +0000 (~ "),
        "{}",
        lines[5]
    );
    assert_eq!(lines[6..], ["User:       admin@example.com"]);
}

#[tokio::test]
async fn builds_info_fetches_a_named_build() {
    let outcome = run(
        &["builds:info", "b1", "-a", "myapp", "--json"],
        vec![json(
            "GET /apps/myapp/builds/b1",
            200,
            &to_json(&build("b1", "failed", None, SERVER)),
        )],
    )
    .await;
    let printed: serde_json::Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    assert_eq!(printed["status"], "failed");
}

#[tokio::test]
async fn builds_output_prints_the_stream_of_the_newest_build() {
    let server = Server::start_with(|url| {
        vec![
            json(
                "GET /apps/myapp/builds",
                200,
                &to_json(&vec![
                    build("b1", "succeeded", None, url),
                    build("b2", "failed", None, url),
                ]),
            ),
            text("GET /build-output/b2-output", 200, "").chunked(&["-----> one\n", "two"]),
        ]
    });
    let settings = settings(&server.url);
    let outcome = run_with(&["builds:output", "-a", "myapp"], &settings, server).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(outcome.stdout, "-----> one\ntwo\n");
    let stream = outcome.request("GET /build-output/b2-output");
    assert_eq!(stream.header("authorization"), None);
}

#[tokio::test]
async fn an_unknown_output_stream_is_an_error_without_its_secret() {
    let server = Server::start_with(|url| {
        vec![
            json(
                "GET /apps/myapp/builds/b9",
                200,
                &to_json(&build("b9", "failed", None, url)),
            ),
            json(
                "GET /build-output/b9-output",
                404,
                r#"{"id":"not_found","message":"Couldn't find that build."}"#,
            ),
        ]
    });
    let settings = settings(&server.url);
    let outcome = run_with(&["builds:output", "b9", "-a", "myapp"], &settings, server).await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: Couldn't find that build.",
            " ›   Error ID: not_found"
        ]
    );
    let chain = format!("{:#}", outcome.result.expect_err("a failure"));
    assert!(!chain.contains("b9-output"), "{chain}");
}

#[tokio::test]
async fn builds_cache_purge_needs_the_app_name() {
    let outcome = run(
        &["builds:cache:purge", "-a", "myapp", "--confirm", "other"],
        Vec::new(),
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: Confirmation did not match myapp. Aborted."]
    );
    assert!(outcome.requests.is_empty());

    let outcome = run(
        &["builds:cache:purge", "-a", "myapp", "--confirm", "myapp"],
        vec![json("DELETE /apps/myapp/build-cache", 202, "{}")],
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(outcome.stdout, "Purging build cache for ⬢ myapp... done\n");
}
