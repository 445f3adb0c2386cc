//! `addons*` and `pg:credentials:rotate`: the requests in Heroku's shapes and the text printed.

use serde_json::json;

use super::harness::run;
use super::server::json;

fn addon(name: &str, app: &str, state: &str, config_vars: &[&str]) -> String {
    json!({
        "id": format!("id-{name}"),
        "name": name,
        "app": {"id": "a1", "name": app},
        "addon_service": {"id": "s1", "name": "wharf-postgresql"},
        "plan": {"id": "p1", "name": "wharf-postgresql:mini",
                 "price": {"cents": 0, "unit": "month", "contract": false, "metered": false}},
        "billed_price": {"cents": 0, "contract": false, "unit": "month"},
        "state": state,
        "config_vars": config_vars,
        "provision_message": null,
        "provider_id": "x",
        "web_url": null,
        "actions": [],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
    .to_string()
}

fn attachment(name: &str, addon: &str, app: &str) -> serde_json::Value {
    json!({
        "id": format!("t-{name}"),
        "name": name,
        "app": {"id": "a1", "name": app},
        "addon": {"id": format!("id-{addon}"), "name": addon, "app": {"id": "a1", "name": app}},
        "namespace": null,
        "web_url": null,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
}

#[tokio::test]
async fn addons_create_sends_the_plan_and_attachment_name() {
    let outcome = run(
        &[
            "addons:create",
            "heroku-postgresql",
            "--as",
            "REPORTS",
            "-a",
            "myapp",
            "--",
            "--version",
            "15",
        ],
        vec![json(
            "POST /apps/myapp/addons",
            201,
            &addon(
                "postgresql-curved-12345",
                "myapp",
                "provisioned",
                &["REPORTS_URL"],
            ),
        )],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.request("POST /apps/myapp/addons").json(),
        json!({
            "plan": {"name": "heroku-postgresql"},
            "attachment": {"name": "REPORTS"},
            "config": {"version": "15"},
        })
    );
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "Creating heroku-postgresql on ⬢ myapp... free",
            "Created postgresql-curved-12345 as REPORTS_URL"
        ]
    );
}

#[tokio::test]
async fn addons_lists_addons_with_their_attachments() {
    let list = format!(
        "[{},{}]",
        addon(
            "postgresql-curved-12345",
            "myapp",
            "provisioned",
            &["DATABASE_URL"]
        ),
        addon(
            "postgresql-flat-54321",
            "other",
            "provisioned",
            &["SHARED_URL"]
        ),
    );
    let attachments = json!([
        attachment("DATABASE", "postgresql-curved-12345", "myapp"),
        attachment("SHARED", "postgresql-flat-54321", "myapp"),
    ])
    .to_string();
    let outcome = run(
        &["addons", "-a", "myapp"],
        vec![
            json("GET /apps/myapp/addons", 200, &list),
            json("GET /apps/myapp/addon-attachments", 200, &attachments),
        ],
    )
    .await;
    outcome.result.as_ref().unwrap();
    let lines: Vec<&str> = outcome.stdout.lines().map(str::trim_end).collect();
    assert!(lines[0].starts_with("Add-on"), "{lines:?}");
    assert!(lines[1].contains("wharf-postgresql (postgresql-curved-12345)"));
    assert!(lines[1].contains("mini"));
    assert!(lines[1].contains("free"));
    assert!(lines[1].ends_with("created"), "{}", lines[1]);
    assert_eq!(lines[2].trim(), "└─ as DATABASE");
    assert!(lines[3].contains("(billed to other app)"), "{}", lines[3]);
    assert_eq!(lines[4].trim(), "└─ as SHARED");
}

#[tokio::test]
async fn addons_destroy_needs_confirmation() {
    let outcome = run(
        &["addons:destroy", "DATABASE", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/addons/DATABASE",
            200,
            &addon(
                "postgresql-curved-12345",
                "myapp",
                "provisioned",
                &["DATABASE_URL"],
            ),
        )],
    )
    .await;
    assert!(outcome.result.is_err());
    assert!(!outcome
        .requests
        .iter()
        .any(|request| request.route.starts_with("DELETE")));

    let outcome = run(
        &[
            "addons:destroy",
            "DATABASE",
            "-a",
            "myapp",
            "--confirm",
            "myapp",
        ],
        vec![
            json(
                "GET /apps/myapp/addons/DATABASE",
                200,
                &addon(
                    "postgresql-curved-12345",
                    "myapp",
                    "provisioned",
                    &["DATABASE_URL"],
                ),
            ),
            json(
                "DELETE /apps/myapp/addons/id-postgresql-curved-12345",
                200,
                &addon("postgresql-curved-12345", "myapp", "deprovisioned", &[]),
            ),
        ],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.stdout.trim(),
        "Destroying postgresql-curved-12345 on ⬢ myapp... done"
    );
}

#[tokio::test]
async fn attach_detach_open_and_rotate() {
    let outcome = run(
        &[
            "addons:attach",
            "postgresql-curved-12345",
            "-a",
            "reports",
            "--as",
            "MAIN",
        ],
        vec![json(
            "POST /addon-attachments",
            201,
            &attachment("MAIN", "postgresql-curved-12345", "reports").to_string(),
        )],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.request("POST /addon-attachments").json(),
        json!({"addon": "postgresql-curved-12345", "app": "reports", "name": "MAIN"})
    );

    let outcome = run(
        &["addons:detach", "MAIN", "-a", "reports"],
        vec![
            json(
                "GET /apps/reports/addon-attachments/MAIN",
                200,
                &attachment("MAIN", "postgresql-curved-12345", "reports").to_string(),
            ),
            json(
                "DELETE /addon-attachments/t-MAIN",
                200,
                &attachment("MAIN", "postgresql-curved-12345", "reports").to_string(),
            ),
        ],
    )
    .await;
    outcome.result.as_ref().unwrap();

    let outcome = run(
        &["addons:open", "DATABASE", "-a", "myapp"],
        vec![
            json(
                "GET /apps/myapp/addons/DATABASE",
                200,
                &addon(
                    "postgresql-curved-12345",
                    "myapp",
                    "provisioned",
                    &["DATABASE_URL"],
                ),
            ),
            json(
                "GET /apps/myapp/config-vars",
                200,
                r#"{"DATABASE_URL":"postgres://u:p@127.0.0.1:5432/db"}"#,
            ),
        ],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(outcome.stdout.trim(), "postgres://u:p@127.0.0.1:5432/db");

    let outcome = run(
        &["pg:credentials:rotate", "-a", "myapp", "--confirm", "myapp"],
        vec![json(
            "POST /apps/myapp/addons/DATABASE/actions/rotate-credentials",
            200,
            &addon(
                "postgresql-curved-12345",
                "myapp",
                "provisioned",
                &["DATABASE_URL"],
            ),
        )],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.stdout.trim(),
        "Rotating all credentials on DATABASE... done"
    );
}
