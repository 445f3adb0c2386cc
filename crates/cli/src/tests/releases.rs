//! `releases`, `releases:info` and `rollback`: ranges sent and text printed.

use super::fixtures::{release, to_json};
use super::harness::run;
use super::server::json;

#[tokio::test]
async fn releases_lists_newest_first_with_the_current_one() {
    let releases = vec![
        release(2, "Set FOO config vars", true, true),
        release(1, "Initial release", false, true),
    ];
    let outcome = run(
        &["releases", "-a", "myapp", "-n", "5"],
        // Like Heroku's, the list shows the first page only: Next-Range is not followed.
        vec![json("GET /apps/myapp/releases", 206, &to_json(&releases))
            .header("Next-Range", "version ]1..; max=5, order=desc")],
    )
    .await;
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines[..2], ["=== ⬢ myapp Releases - Current: v2", ""]);
    assert!(
        lines[2].starts_with(
            "v2  Set FOO config vars  admin@example.com  2020/01/01 00:00:00 +0000 (~ "
        ),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("v1  Initial release  admin@example.com  "),
        "{}",
        lines[3]
    );
    assert_eq!(lines.len(), 4);
    let request = outcome.request("GET /apps/myapp/releases");
    assert_eq!(
        request.header("range"),
        Some("version ..; max=5, order=desc")
    );
}

#[tokio::test]
async fn releases_info_shows_the_newest_and_its_config() {
    let outcome = run(
        &["releases:info", "-a", "myapp"],
        vec![
            json(
                "GET /apps/myapp/releases",
                200,
                &to_json(&vec![release(3, "Deploy abc", true, true)]),
            ),
            json(
                "GET /apps/myapp/releases/3/config-vars",
                200,
                r#"{"A":"1"}"#,
            ),
        ],
    )
    .await;
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "=== Release v3",
            "Add-ons:",
            "Change:  Deploy abc",
            "By:      admin@example.com"
        ]
    );
    assert!(
        lines[4].starts_with("When:    2020/01/01 00:00:00 +0000 (~ "),
        "{}",
        lines[4]
    );
    assert_eq!(
        lines[5..],
        ["Status:  succeeded", "", "=== v3 Config vars", "A: 1"]
    );
    let list = outcome.request("GET /apps/myapp/releases");
    assert_eq!(list.header("range"), Some("version ..; max=10, order=desc"));
}

#[tokio::test]
async fn rollback_without_a_version_takes_the_previous_eligible_release() {
    let releases = vec![
        release(5, "Set X", true, true),
        release(4, "Broken", false, false),
        release(3, "Deploy", false, true),
    ];
    let outcome = run(
        &["rollback", "-a", "myapp"],
        vec![
            json("GET /apps/myapp/releases", 200, &to_json(&releases)),
            json(
                "POST /apps/myapp/releases",
                201,
                &to_json(&release(6, "Rollback to v3", true, true)),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Rolling back ⬢ myapp to v3... done, v6\nTo undo, run: wharf rollback v5\n"
    );
    assert_eq!(
        outcome.request("POST /apps/myapp/releases").json(),
        serde_json::json!({"release": "release-3"})
    );
}

#[tokio::test]
async fn rollback_needs_an_eligible_release() {
    let outcome = run(
        &["rollback", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/releases",
            200,
            &to_json(&vec![release(1, "First", true, true)]),
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: No eligible release found"]
    );
}

#[tokio::test]
async fn rollback_to_a_named_version() {
    let outcome = run(
        &["rollback", "v2", "-a", "myapp"],
        vec![
            json(
                "GET /apps/myapp/releases/2",
                200,
                &to_json(&release(2, "Deploy", false, true)),
            ),
            json(
                "POST /apps/myapp/releases",
                201,
                &to_json(&release(9, "Rollback to v2", true, true)),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Rolling back ⬢ myapp to v2... done, v9\nTo undo, run: wharf rollback v8\n"
    );
}
