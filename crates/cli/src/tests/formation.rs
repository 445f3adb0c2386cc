//! `ps:scale` and `ps:type`: formation updates sent and text printed.

use super::fixtures::{formation, to_json};
use super::harness::run;
use super::server::json;

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
