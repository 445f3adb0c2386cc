//! App, access and maintenance commands: requests sent and text printed.

use super::fixtures::{app, collaborator, to_json};
use super::harness::run;
use super::server::json;

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
async fn apps_create_without_a_name_shows_the_generated_one() {
    // --no-remote keeps the test away from the git repository it runs in.
    let outcome = run(
        &["apps:create", "--no-remote"],
        vec![json(
            "POST /apps",
            201,
            &to_json(&app("calm-river-1234", "me@example.com")),
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "Creating app... done, ⬢ calm-river-1234\n\
         http://calm-river-1234.localhost:8080/ | http://127.0.0.1:5000/calm-river-1234.git\n"
    );
    assert_eq!(
        outcome.request("POST /apps").json(),
        serde_json::json!({"name": null})
    );
}

#[tokio::test]
async fn apps_reads_every_page() {
    let outcome = run(
        &["apps"],
        vec![
            json("GET /account", 200, &account_json("me@example.com")),
            json(
                "GET /apps",
                206,
                &to_json(&vec![app("alpha", "me@example.com")]),
            )
            .header("Next-Range", "id ]alpha-id..; max=1"),
            json(
                "GET /apps",
                200,
                &to_json(&vec![app("beta", "me@example.com")]),
            ),
        ],
    )
    .await;
    assert_eq!(outcome.stdout, "=== me@example.com Apps\nalpha\nbeta\n");
    let ranges: Vec<Option<&str>> = outcome
        .requests
        .iter()
        .filter(|request| request.route == "GET /apps")
        .map(|request| request.header("range"))
        .collect();
    assert_eq!(ranges, [None, Some("id ]alpha-id..; max=1")]);
}
