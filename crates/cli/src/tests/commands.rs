//! App, config, release and formation commands: requests sent and text printed.

use wharf_api_types::ACCEPT_V3;

use super::fixtures::{app, collaborator, formation, release, to_json};
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
async fn a_failed_action_ends_its_line() {
    let outcome = run(
        &["maintenance:on", "-a", "myapp"],
        vec![json(
            "PATCH /apps/myapp",
            403,
            r#"{"id":"forbidden","message":"No."}"#,
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Enabling maintenance mode for ⬢ myapp... !\n"
    );
    assert_eq!(outcome.error_lines()[0], " ›   Error: No.");
}

#[tokio::test]
async fn maintenance_patches_the_app() {
    let outcome = run(
        &["maintenance:off", "-a", "myapp"],
        vec![json(
            "PATCH /apps/myapp",
            200,
            &to_json(&app("myapp", "a@x")),
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Disabling maintenance mode for ⬢ myapp... done\n"
    );
    assert_eq!(
        outcome.request("PATCH /apps/myapp").json(),
        serde_json::json!({"maintenance": false})
    );
}

#[tokio::test]
async fn apps_info_lists_aligned_fields() {
    let outcome = run(
        &["apps:info", "myapp"],
        vec![json(
            "GET /apps/myapp",
            200,
            &to_json(&app("myapp", "owner@example.com")),
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "=== myapp\n\
         Git URL:     http://127.0.0.1:5000/myapp.git\n\
         Owner:       owner@example.com\n\
         Region:      local\n\
         Repo Size:   23 MB\n\
         Slug Size:\n\
         Stack:       heroku-24\n\
         Web URL:     http://myapp.localhost:8080/\n\
         Maintenance: off\n"
    );
}

#[tokio::test]
async fn apps_splits_owned_and_collaborated() {
    let apps = vec![
        app("zeta", "me@example.com"),
        app("theirs", "other@example.com"),
        app("alpha", "me@example.com"),
    ];
    let outcome = run(
        &["apps"],
        vec![
            json("GET /account", 200, &account_json("me@example.com")),
            json("GET /apps", 200, &to_json(&apps)),
        ],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "=== me@example.com Apps\nalpha\nzeta\n\n=== Collaborated Apps\ntheirs  other@example.com\n"
    );
}

#[tokio::test]
async fn apps_says_when_there_are_none() {
    let outcome = run(
        &["apps"],
        vec![
            json("GET /account", 200, &account_json("me@example.com")),
            json("GET /apps", 200, "[]"),
        ],
    )
    .await;
    assert_eq!(outcome.stdout, "You have no apps.\n");
}

fn account_json(email: &str) -> String {
    serde_json::json!({
        "id": "account-id", "email": email, "name": null,
        "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z",
        "last_login": null, "allow_tracking": false, "beta": false, "verified": true,
        "federated": false, "two_factor_authentication": false, "sms_number": null,
        "suspended_at": null, "delinquent_at": null, "default_organization": null,
        "default_team": null, "identity_provider": null, "country_of_residence": null,
        "admin": true
    })
    .to_string()
}

#[tokio::test]
async fn apps_destroy_needs_a_matching_confirmation() {
    let outcome = run(&["apps:destroy", "myapp", "--confirm", "other"], Vec::new()).await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: Confirmation did not match myapp. Aborted."]
    );
    assert!(outcome.requests.is_empty());
}

#[tokio::test]
async fn releases_lists_newest_first_with_the_current_one() {
    let releases = vec![
        release(2, "Set FOO config vars", true, true),
        release(1, "Initial release", false, true),
    ];
    let outcome = run(
        &["releases", "-a", "myapp", "-n", "5"],
        vec![json("GET /apps/myapp/releases", 206, &to_json(&releases))],
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

#[tokio::test]
async fn ps_scale_sends_string_quantities_and_reports_the_result() {
    let outcome = run(
        &["ps:scale", "worker+1:Standard-2X", "web=2", "-a", "myapp"],
        vec![json(
            "PATCH /apps/myapp/formation",
            200,
            &to_json(&vec![
                formation("web", 2, "Basic"),
                formation("worker", 1, "Standard-2X"),
            ]),
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Scaling dynos... done, now running worker at 1:Standard-2X, web at 2:Basic\n"
    );
    assert_eq!(
        outcome.request("PATCH /apps/myapp/formation").json(),
        serde_json::json!({"updates": [
            {"type": "worker", "quantity": "+1", "size": "Standard-2X"},
            {"type": "web", "quantity": "2"},
        ]})
    );
}

#[tokio::test]
async fn ps_scale_without_arguments_prints_the_formation() {
    let outcome = run(
        &["ps:scale", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/formation",
            200,
            &to_json(&vec![
                formation("worker", 0, "Basic"),
                formation("web", 1, "Basic"),
            ]),
        )],
    )
    .await;
    assert_eq!(outcome.stdout, "web=1:Basic worker=0:Basic\n");
}

#[tokio::test]
async fn ps_type_sets_sizes_then_shows_the_table() {
    let after = vec![
        formation("web", 1, "Standard-2X"),
        formation("worker", 1, "Standard-2X"),
    ];
    let outcome = run(
        &["ps:resize", "Standard-2X", "-a", "myapp"],
        vec![
            json(
                "GET /apps/myapp/formation",
                200,
                &to_json(&vec![
                    formation("worker", 1, "Basic"),
                    formation("web", 1, "Basic"),
                ]),
            ),
            json("PATCH /apps/myapp/formation", 200, &to_json(&after)),
            json("GET /apps/myapp/formation", 200, &to_json(&after)),
        ],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Scaling dynos on ⬢ myapp... done\nType  Size  Qty\nweb  Standard-2X  1\nworker  Standard-2X  1\n"
    );
    assert_eq!(
        outcome.request("PATCH /apps/myapp/formation").json(),
        serde_json::json!({"updates": [
            {"type": "web", "size": "Standard-2X"},
            {"type": "worker", "size": "Standard-2X"},
        ]})
    );
}

#[tokio::test]
async fn access_lists_the_owner_then_collaborators() {
    let outcome = run(
        &["access", "-a", "myapp"],
        vec![
            json(
                "GET /apps/myapp",
                200,
                &to_json(&app("myapp", "owner@example.com")),
            ),
            json(
                "GET /apps/myapp/collaborators",
                200,
                &to_json(&vec![
                    collaborator("zed@example.com"),
                    collaborator("amy@example.com"),
                ]),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "=== myapp Access List\nowner@example.com  owner\namy@example.com  collaborator\nzed@example.com  collaborator\n"
    );
}

#[tokio::test]
async fn access_remove_encodes_the_email_in_the_path() {
    let outcome = run(
        &["access:remove", "a b@example.com", "-a", "myapp"],
        vec![json(
            "DELETE /apps/myapp/collaborators/a%20b@example.com",
            200,
            "{}",
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Removing a b@example.com access from the app myapp... done\n"
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
