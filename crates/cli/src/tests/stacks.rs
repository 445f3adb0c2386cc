//! `stack` and `stack:set`: the stacks listed with the app's marked, and the PATCH that
//! chooses the next build's.

use wharf_api_types::{NamedRef, Stack};

use super::fixtures::{app, to_json};
use super::harness::run;
use super::server::json;

fn stack(name: &str, default: bool) -> Stack {
    Stack {
        id: format!("{name}-id"),
        name: name.to_string(),
        state: "public".to_string(),
        default,
        created_at: "2023-06-10T00:00:00Z".to_string(),
        updated_at: "2023-06-10T00:00:00Z".to_string(),
    }
}

fn named(name: &str) -> NamedRef {
    NamedRef {
        id: format!("{name}-id"),
        name: name.to_string(),
    }
}

/// `wharf stack -a myapp` for an app running on `running` whose next build uses `next`.
async fn listed(running: &str, next: &str) -> String {
    let mut shown = app("myapp", "a@x");
    shown.stack = named(running);
    shown.build_stack = named(next);
    // Listed in the server's order, not the CLI's.
    let stacks = vec![stack("debian-13", false), stack("debian-12", true)];
    let outcome = run(
        &["stack", "-a", "myapp"],
        vec![
            json("GET /apps/myapp", 200, &to_json(&shown)),
            json("GET /stacks", 200, &to_json(&stacks)),
        ],
    )
    .await;
    outcome.result.as_ref().expect("stack succeeds");
    outcome.stdout
}

#[tokio::test]
async fn stack_marks_the_apps_stack() {
    assert_eq!(
        listed("debian-12", "debian-12").await,
        "=== ⬢ myapp Available Stacks\n* debian-12\n  debian-13\n"
    );
    assert_eq!(
        listed("debian-13", "debian-13").await,
        "=== ⬢ myapp Available Stacks\n  debian-12\n* debian-13\n"
    );
}

#[tokio::test]
async fn stack_names_the_next_builds_stack_when_it_differs() {
    assert_eq!(
        listed("debian-12", "debian-13").await,
        "=== ⬢ myapp Available Stacks\n* debian-12\n  debian-13 (active on next deploy)\n"
    );
}

#[tokio::test]
async fn stack_set_patches_the_build_stack_and_says_to_redeploy() {
    let mut changed = app("myapp", "a@x");
    changed.build_stack = named("debian-13");
    let outcome = run(
        &["stack:set", "debian-13", "-a", "myapp"],
        vec![json("PATCH /apps/myapp", 200, &to_json(&changed))],
    )
    .await;
    outcome.result.as_ref().expect("stack:set succeeds");
    assert_eq!(
        outcome.request("PATCH /apps/myapp").json(),
        serde_json::json!({"build_stack": "debian-13"})
    );
    assert_eq!(
        outcome.stdout,
        "Setting stack to debian-13... done\n\
         You will need to redeploy ⬢ myapp for the change to take effect.\n\
         Run git push wharf main to trigger a new build on ⬢ myapp.\n"
    );
}

#[tokio::test]
async fn stack_set_shows_the_apis_message_for_an_unknown_stack() {
    let message = r#"Stack "heroku-24" is not available: choose one of debian-12, debian-13"#;
    let body = serde_json::json!({"id": "invalid_params", "message": message}).to_string();
    let outcome = run(
        &["stack:set", "heroku-24", "-a", "myapp"],
        vec![json("PATCH /apps/myapp", 422, &body)],
    )
    .await;
    assert_eq!(outcome.stdout, "Setting stack to heroku-24... !\n");
    assert_eq!(outcome.error_lines()[0], format!(" ›   Error: {message}"));
}

#[test]
fn stack_set_needs_a_stack() {
    let error = super::harness::parse(&["stack:set", "-a", "myapp"]).unwrap_err();
    assert_eq!(
        error.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}

#[tokio::test]
async fn apps_info_names_the_next_builds_stack() {
    let mut shown = app("myapp", "a@x");
    shown.stack = named("debian-12");
    shown.build_stack = named("debian-13");
    let outcome = run(
        &["apps:info", "-a", "myapp"],
        vec![json("GET /apps/myapp", 200, &to_json(&shown))],
    )
    .await;
    let line = outcome
        .stdout
        .lines()
        .find(|line| line.starts_with("Stack:"));
    assert_eq!(
        line.map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")),
        Some("Stack: debian-12 (next build will use debian-13)".to_string()),
        "{}",
        outcome.stdout
    );
}
