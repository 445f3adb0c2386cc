//! `buildpacks` and its editing commands: the list sent back and the text printed.

use super::fixtures::{buildpacks, to_json};
use super::harness::run;
use super::server::json;

const PATH: &str = "/apps/myapp/buildpack-installations";

fn get(urls: &[&str]) -> super::server::Canned {
    json(&format!("GET {PATH}"), 200, &to_json(&buildpacks(urls)))
}

fn put(urls: &[&str]) -> super::server::Canned {
    json(&format!("PUT {PATH}"), 200, &to_json(&buildpacks(urls)))
}

fn updates(urls: &[&str]) -> serde_json::Value {
    let updates: Vec<serde_json::Value> = urls
        .iter()
        .map(|url| serde_json::json!({"buildpack": url}))
        .collect();
    serde_json::json!({ "updates": updates })
}

#[tokio::test]
async fn buildpacks_lists_them_numbered() {
    let outcome = run(
        &["buildpacks", "-a", "myapp"],
        vec![get(&["nodejs", "python"])],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "=== ⬢ myapp Buildpack URLs\n1. nodejs\n2. python\n"
    );
}

#[tokio::test]
async fn buildpacks_says_when_they_are_detected() {
    let outcome = run(&["buildpacks", "-a", "myapp"], vec![get(&[])]).await;
    assert_eq!(
        outcome.stdout,
        "⬢ myapp has no buildpack URL set: buildpacks are detected on each build\n"
    );
}

#[tokio::test]
async fn buildpacks_add_inserts_at_an_index() {
    let outcome = run(
        &["buildpacks:add", "nodejs", "-i", "1", "-a", "myapp"],
        vec![get(&["python"]), put(&["nodejs", "python"])],
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(
        outcome.request(&format!("PUT {PATH}")).json(),
        updates(&["nodejs", "python"])
    );
    assert_eq!(
        outcome.stdout,
        "Buildpack added. Next release on ⬢ myapp will use:\n  1. nodejs\n  2. python\n\
         Run `git push wharf main` or `wharf deploy` to create a new release using these buildpacks.\n"
    );
}

#[tokio::test]
async fn buildpacks_add_appends_by_default() {
    let outcome = run(
        &["buildpacks:add", "/srv/buildpacks/custom", "-a", "myapp"],
        vec![get(&[]), put(&["/srv/buildpacks/custom"])],
    )
    .await;
    assert_eq!(
        outcome.request(&format!("PUT {PATH}")).json(),
        updates(&["/srv/buildpacks/custom"])
    );
    assert!(
        outcome
            .stdout
            .ends_with("  1. /srv/buildpacks/custom\nRun `git push wharf main` or `wharf deploy` to create a new release using this buildpack.\n"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn buildpacks_add_refuses_a_duplicate_without_sending_anything() {
    let outcome = run(
        &["buildpacks:add", "python", "-a", "myapp"],
        vec![get(&["python"])],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: The buildpack python is already set on your app."]
    );
    assert_eq!(outcome.requests.len(), 1);
}

#[tokio::test]
async fn the_server_judges_buildpack_urls() {
    let outcome = run(
        &["buildpacks:add", "nonsense", "-a", "myapp"],
        vec![
            get(&[]),
            json(
                &format!("PUT {PATH}"),
                422,
                r#"{"id":"invalid_params","message":"unknown buildpack nonsense"}"#,
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: unknown buildpack nonsense",
            " ›   Error ID: invalid_params"
        ]
    );
}

#[tokio::test]
async fn buildpacks_remove_by_index_or_url() {
    let outcome = run(
        &["buildpacks:remove", "-i", "2", "-a", "myapp"],
        vec![get(&["nodejs", "python"]), put(&["nodejs"])],
    )
    .await;
    assert_eq!(
        outcome.request(&format!("PUT {PATH}")).json(),
        updates(&["nodejs"])
    );
    assert!(
        outcome
            .stdout
            .starts_with("Buildpack removed. Next release on ⬢ myapp will use:\n  1. nodejs\n"),
        "{}",
        outcome.stdout
    );

    let outcome = run(
        &["buildpacks:remove", "python", "-a", "myapp"],
        vec![get(&["python"]), put(&[])],
    )
    .await;
    assert_eq!(outcome.request(&format!("PUT {PATH}")).json(), updates(&[]));
    assert_eq!(
        outcome.stdout,
        "Buildpack removed. Next release on ⬢ myapp will detect buildpacks normally.\n"
    );
}

#[tokio::test]
async fn buildpacks_remove_out_of_range_sends_nothing() {
    let outcome = run(
        &["buildpacks:remove", "-i", "3", "-a", "myapp"],
        vec![get(&["nodejs", "python"])],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: Invalid index. Please choose a value between 1 and 2"]
    );
    assert_eq!(outcome.requests.len(), 1);

    let outcome = run(
        &["buildpacks:remove", "python", "-a", "myapp"],
        vec![get(&[])],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: No buildpacks were found. Next release on ⬢ myapp will detect buildpacks normally."]
    );
}

#[tokio::test]
async fn buildpacks_set_replaces_the_first_by_default() {
    let outcome = run(
        &["buildpacks:set", "static", "-a", "myapp"],
        vec![get(&["nodejs", "python"]), put(&["static", "python"])],
    )
    .await;
    assert_eq!(
        outcome.request(&format!("PUT {PATH}")).json(),
        updates(&["static", "python"])
    );
    assert!(
        outcome.stdout.starts_with(
            "Buildpack set. Next release on ⬢ myapp will use:\n  1. static\n  2. python\n"
        ),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn buildpacks_clear_sends_an_empty_list() {
    let outcome = run(
        &["buildpacks:clear", "-a", "myapp"],
        vec![get(&["python"]), put(&[])],
    )
    .await;
    assert_eq!(outcome.request(&format!("PUT {PATH}")).json(), updates(&[]));
    assert_eq!(
        outcome.stdout,
        "Buildpacks cleared. Next release on ⬢ myapp will detect buildpacks normally.\n"
    );
}
