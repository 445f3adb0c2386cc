//! `hosts`, `hosts:add`, `hosts:drain`, `hosts:undrain` and `hosts:remove`: the requests sent
//! and the text printed.

use super::harness::run;
use super::server::json;

fn host(name: &str, state: &str, dynos: u64, memory_mb: Option<u64>) -> serde_json::Value {
    serde_json::json!({
        "id": "7a1f0e5c-0000-4000-8000-000000000001",
        "name": name,
        "state": state,
        "memory_mb": memory_mb,
        "placed_memory_mb": dynos * 512,
        "dynos": dynos,
        "address": memory_mb.map(|_| "10.77.0.2"),
        "epoch": 1,
        "last_heartbeat_at": null,
        "created_at": "2026-12-06T10:00:00Z",
    })
}

#[tokio::test]
async fn hosts_lists_state_dynos_and_memory() {
    let answer = serde_json::json!([
        host("host-1", "up", 3, Some(8192)),
        host("host-2", "joining", 0, None),
    ]);
    let outcome = run(
        &["hosts"],
        vec![json("GET /hosts", 200, &answer.to_string())],
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(
        outcome.stdout,
        "=== Hosts\n\
         Name  State  Dynos  Memory placed / offered  Address\n\
         host-1  up  3  1.5 GB / 8 GB  10.77.0.2\n\
         host-2  joining  0  0 B / ?  -\n"
    );
}

#[tokio::test]
async fn hosts_add_prints_the_join_command_once() {
    let answer = serde_json::json!({
        "host": host("host-3", "joining", 0, None),
        "credential": "wharf-host-abc",
        "join_command": "WHARF_HOST_CREDENTIAL=wharf-host-abc wharf agent --control-plane http://cp:5000",
    });
    let outcome = run(
        &["hosts:add", "host-3"],
        vec![json("POST /hosts", 201, &answer.to_string())],
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(
        outcome.request("POST /hosts").json(),
        serde_json::json!({"name": "host-3"})
    );
    assert!(
        outcome.stdout.ends_with(
            "  WHARF_HOST_CREDENTIAL=wharf-host-abc wharf agent --control-plane http://cp:5000\n"
        ),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stdout.starts_with("Added host host-3.\n"));
}

#[tokio::test]
async fn drain_and_undrain_patch_the_host() {
    let outcome = run(
        &["hosts:drain", "host-1"],
        vec![json(
            "PATCH /hosts/host-1",
            200,
            &host("host-1", "draining", 4, Some(8192)).to_string(),
        )],
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.error_lines());
    assert_eq!(
        outcome.request("PATCH /hosts/host-1").json(),
        serde_json::json!({"draining": true})
    );
    assert_eq!(
        outcome.stdout,
        "Draining host host-1: it gets no new dynos, and its 4 dynos move to other hosts.\n"
    );

    let outcome = run(
        &["hosts:undrain", "host-1"],
        vec![json(
            "PATCH /hosts/host-1",
            200,
            &host("host-1", "up", 0, Some(8192)).to_string(),
        )],
    )
    .await;
    assert_eq!(
        outcome.request("PATCH /hosts/host-1").json(),
        serde_json::json!({"draining": false})
    );
    assert_eq!(outcome.stdout, "Host host-1 takes dynos again.\n");
}

#[tokio::test]
async fn remove_shows_the_servers_refusal() {
    let outcome = run(
        &["hosts:remove", "nope"],
        vec![json(
            "DELETE /hosts/nope",
            404,
            r#"{"id":"not_found","message":"Couldn't find a host named nope: `wharf hosts` lists them"}"#,
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: Couldn't find a host named nope: `wharf hosts` lists them",
            " ›   Error ID: not_found"
        ]
    );
}
