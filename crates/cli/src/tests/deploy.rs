//! `deploy`: the request sequence (source URLs, upload, build, output, final status), what it
//! prints, and how it ends.

use std::path::Path;
use std::process::Command;

use super::fixtures::{build, to_json};
use super::harness::{run_with, settings};
use super::server::{json, text, Canned, Server};
use crate::source_archive;

const OUTPUT: [&str; 3] = [
    "-----> Building on the Heroku-24 stack\n",
    "-----> Python app detected\n",
    "       Released v3",
];

fn source_json(server: &str) -> String {
    serde_json::json!({
        "source_blob": {
            "get_url": format!("{server}/sources/secret"),
            "put_url": format!("{server}/sources/secret"),
        }
    })
    .to_string()
}

/// The whole conversation of a deploy whose build ends with `status`.
fn conversation(server: &str, status: &str, version: Option<&str>) -> Vec<Canned> {
    vec![
        json("POST /apps/myapp/sources", 201, &source_json(server)),
        text("PUT /sources/secret", 200, ""),
        json(
            "POST /apps/myapp/builds",
            201,
            &to_json(&build("b1", "pending", version, server)),
        ),
        text("GET /build-output/b1-output", 200, "").chunked(&OUTPUT),
        json(
            "GET /apps/myapp/builds/b1",
            200,
            &to_json(&build("b1", status, version, server)),
        ),
    ]
}

fn app_directory() -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, text: &str| {
        std::fs::write(directory.path().join(name), text).expect("write a test file");
    };
    write("app.py", "print('hello')\n");
    write("Procfile", "web: python app.py\n");
    write("notes.txt", "left out\n");
    write(".slugignore", "*.txt\n");
    directory
}

fn tarball_paths(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .expect("a tarball")
        .map(|entry| {
            entry
                .expect("an entry")
                .path()
                .expect("a path")
                .display()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn deploy_uploads_builds_and_streams_the_output() {
    let directory = app_directory();
    let path = directory.path().to_str().expect("a UTF-8 path");
    let server = Server::start_with(|url| conversation(url, "succeeded", None));
    let settings = settings(&server.url);
    let outcome = run_with(&["deploy", path, "-a", "myapp"], &settings, server).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());

    let routes: Vec<&str> = outcome.requests.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(
        routes,
        [
            "POST /apps/myapp/sources",
            "PUT /sources/secret",
            "POST /apps/myapp/builds",
            "GET /build-output/b1-output",
            "GET /apps/myapp/builds/b1",
        ]
    );

    // The upload is the packed directory, byte for byte, and carries no API key.
    let upload = outcome.request("PUT /sources/secret");
    let expected = source_archive::pack(directory.path()).expect("pack");
    assert_eq!(upload.bytes, expected.bytes);
    assert_eq!(
        tarball_paths(&upload.bytes),
        [".slugignore", "Procfile", "app.py"]
    );
    assert_eq!(upload.header("authorization"), None);
    assert_eq!(
        outcome
            .request("POST /apps/myapp/sources")
            .header("authorization"),
        Some("Bearer test-key")
    );

    // The build is of the uploaded source; a directory outside git has no version.
    let server_url = &settings.api_url;
    assert_eq!(
        outcome.request("POST /apps/myapp/builds").json(),
        serde_json::json!({"source_blob": {"url": format!("{server_url}/sources/secret")}})
    );

    let size = crate::format::human_size(expected.bytes.len() as i64);
    assert_eq!(
        outcome.stdout,
        format!(
            "Packing {path}... done, {size}\n\
             Uploading source... done\n\
             {}{}{}\n",
            OUTPUT[0], OUTPUT[1], OUTPUT[2]
        )
    );
}

#[tokio::test]
async fn a_failed_build_fails_the_command_with_the_output_shown() {
    let directory = app_directory();
    let commit = commit_all(directory.path());
    let path = directory.path().to_str().expect("a UTF-8 path");
    let server = Server::start_with(|url| conversation(url, "failed", Some(&commit)));
    let settings = settings(&server.url);
    let outcome = run_with(&["deploy", path, "-a", "myapp"], &settings, server).await;
    assert_eq!(outcome.error_lines(), [" ›   Error: Build failed"]);
    assert!(
        outcome.stdout.ends_with("       Released v3\n"),
        "{}",
        outcome.stdout
    );
    // In a git repository the build is tagged with its commit.
    let body = outcome.request("POST /apps/myapp/builds").json();
    assert_eq!(body["source_blob"]["version"], serde_json::json!(commit));
    // .git is never uploaded.
    let upload = outcome.request("PUT /sources/secret");
    assert!(
        tarball_paths(&upload.bytes)
            .iter()
            .all(|path| !path.starts_with(".git/") && path != ".git"),
        "{:?}",
        tarball_paths(&upload.bytes)
    );
}

#[tokio::test]
async fn a_refused_upload_stops_before_the_build() {
    let directory = app_directory();
    let path = directory.path().to_str().expect("a UTF-8 path");
    let server = Server::start_with(|url| {
        vec![
            json("POST /apps/myapp/sources", 201, &source_json(url)),
            json(
                "PUT /sources/secret",
                413,
                r#"{"id":"request_too_large","message":"The upload is over the limit of 1073741824 bytes"}"#,
            ),
        ]
    });
    let settings = settings(&server.url);
    let outcome = run_with(&["deploy", path, "-a", "myapp"], &settings, server).await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: The upload is over the limit of 1073741824 bytes",
            " ›   Error ID: request_too_large"
        ]
    );
    assert!(
        outcome.stdout.ends_with("Uploading source... !\n"),
        "{}",
        outcome.stdout
    );
    assert_eq!(outcome.requests.len(), 2);
}

#[tokio::test]
async fn deploying_a_missing_directory_sends_nothing() {
    let server = Server::start(Vec::new());
    let settings = settings(&server.url);
    let outcome = run_with(
        &["deploy", "/no/such/wharf/app", "-a", "myapp"],
        &settings,
        server,
    )
    .await;
    let lines = outcome.error_lines();
    assert!(
        lines[0].starts_with(" ›   Error: pack /no/such/wharf/app: "),
        "{lines:?}"
    );
    assert_eq!(outcome.stdout, "Packing /no/such/wharf/app... !\n");
    assert!(outcome.requests.is_empty());
}

/// Makes `directory` a git repository with everything committed; returns the commit.
fn commit_all(directory: &Path) -> String {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(directory)
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("run git");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    git(&["init", "--quiet"]);
    git(&["add", "--all"]);
    git(&["commit", "--quiet", "-m", "deploy me"]);
    git(&["rev-parse", "HEAD"])
}
