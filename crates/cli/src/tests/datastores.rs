//! `pg:*` and `redis:*`: which add-on each picks, the requests sent, the text printed, the
//! shell command a one-off dyno is given, and backups downloaded to files.

use std::path::Path;
use std::process::Command as Process;

use serde_json::{json, Value};

use super::fixtures::{dyno, to_json};
use super::harness::{parse, run, Outcome};
use super::server::{json as canned, text, Canned};
use crate::command::Command;

const PG: &str = "wharf-postgresql";
const REDIS: &str = "wharf-redis";

fn addon(name: &str, service: &str, config_vars: &[&str]) -> Value {
    json!({
        "id": format!("id-{name}"),
        "name": name,
        "app": {"id": "a1", "name": "myapp"},
        "addon_service": {"id": "s1", "name": service},
        "plan": {"id": "p1", "name": format!("{service}:mini"),
                 "price": {"cents": 0, "unit": "month", "contract": false, "metered": false}},
        "billed_price": null,
        "state": "provisioned",
        "config_vars": config_vars,
        "provision_message": null,
        "provider_id": "x",
        "web_url": null,
        "actions": [],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
}

/// `GET /apps/{app}/addons` answered with `addons`.
fn addons(app: &str, addons: &[Value]) -> Canned {
    canned(
        &format!("GET /apps/{app}/addons"),
        200,
        &Value::Array(addons.to_vec()).to_string(),
    )
}

/// The usual app: one database attached as DATABASE, one Redis.
fn usual() -> Canned {
    addons(
        "myapp",
        &[
            addon("postgresql-curved-12345", PG, &["DATABASE_URL"]),
            addon("redis-round-777", REDIS, &["REDIS_URL", "REDIS_KEY_PREFIX"]),
        ],
    )
}

fn backup(name: &str, addon: &str, created_at: &str, size: u64) -> Value {
    json!({
        "name": name,
        "addon": {"id": format!("id-{addon}"), "name": addon},
        "created_at": created_at,
        "size": size,
    })
}

fn routes(outcome: &Outcome) -> Vec<&str> {
    outcome.requests.iter().map(|r| r.route.as_str()).collect()
}

fn succeeded(outcome: &Outcome) {
    if let Err(error) = &outcome.result {
        panic!("{error:#}\nstdout: {}", outcome.stdout);
    }
}

const INFO: &str = r#"[{"name":"Add-on","value":"postgresql-curved-12345"},
    {"name":"Plan","value":"wharf-postgresql:mini"},{"name":"Status","value":"Available"},
    {"name":"Data Size","value":"7.5 MB"}]"#;

#[tokio::test]
async fn pg_info_shows_the_apps_only_database() {
    for command in ["pg:info", "pg"] {
        let outcome = run(
            &[command, "-a", "myapp"],
            vec![
                usual(),
                canned(
                    "GET /apps/myapp/addons/postgresql-curved-12345/info",
                    200,
                    INFO,
                ),
            ],
        )
        .await;
        succeeded(&outcome);
        assert_eq!(
            outcome.stdout,
            "=== DATABASE_URL\n\
             Add-on:    postgresql-curved-12345\n\
             Plan:      wharf-postgresql:mini\n\
             Status:    Available\n\
             Data Size: 7.5 MB\n"
        );
    }

    let outcome = run(
        &["pg:info", "--json", "-a", "myapp"],
        vec![
            usual(),
            canned(
                "GET /apps/myapp/addons/postgresql-curved-12345/info",
                200,
                INFO,
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    let printed: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(printed, serde_json::from_str::<Value>(INFO).unwrap());
}

#[tokio::test]
async fn of_several_databases_the_one_attached_as_database_or_the_one_named() {
    let several = || {
        addons(
            "myapp",
            &[
                addon("postgresql-old-1", PG, &["HEROKU_POSTGRESQL_AMBER_URL"]),
                addon("postgresql-new-2", PG, &["DATABASE_URL", "REPORTS_URL"]),
            ],
        )
    };
    let outcome = run(
        &["pg:info", "-a", "myapp"],
        vec![
            several(),
            canned("GET /apps/myapp/addons/postgresql-new-2/info", 200, "[]"),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(outcome.stdout, "=== DATABASE_URL, REPORTS_URL\n");

    for named in [
        "HEROKU_POSTGRESQL_AMBER",
        "HEROKU_POSTGRESQL_AMBER_URL",
        "postgresql-old-1",
    ] {
        let outcome = run(
            &["pg:info", named, "-a", "myapp"],
            vec![
                several(),
                canned("GET /apps/myapp/addons/postgresql-old-1/info", 200, "[]"),
            ],
        )
        .await;
        succeeded(&outcome);
        assert_eq!(
            outcome.stdout, "=== HEROKU_POSTGRESQL_AMBER_URL\n",
            "{named}"
        );
    }
}

#[tokio::test]
async fn no_clear_choice_or_no_database_is_an_error_before_any_other_request() {
    let outcome = run(
        &["pg:psql", "-a", "myapp"],
        vec![addons(
            "myapp",
            &[
                addon("postgresql-old-1", PG, &["HEROKU_POSTGRESQL_AMBER_URL"]),
                addon("postgresql-new-2", PG, &[]),
            ],
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: myapp has 2 Postgres databases and none is attached as DATABASE: name \
             one",
            " ›     postgresql-old-1 (HEROKU_POSTGRESQL_AMBER_URL)",
            " ›     postgresql-new-2 (not attached to this app)",
        ]
    );
    assert_eq!(routes(&outcome), ["GET /apps/myapp/addons"]);

    let outcome = run(
        &["pg:reset", "-a", "myapp", "--confirm", "myapp"],
        vec![addons(
            "myapp",
            &[addon("redis-round-777", REDIS, &["REDIS_URL"])],
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: myapp has no Postgres database: create one with \
          `wharf addons:create heroku-postgresql -a myapp`"
        ]
    );
    assert_eq!(routes(&outcome), ["GET /apps/myapp/addons"]);

    let outcome = run(&["redis:cli", "-a", "myapp"], vec![addons("myapp", &[])]).await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: myapp has no Redis add-on: create one with \
          `wharf addons:create heroku-redis -a myapp`"]
    );
}

/// Runs a one-off command line; the canned server has no rendezvous, so the command fails
/// once the dyno is created, and the dyno's request is what is left to check.
async fn one_off(arguments: &[&str], listed: Canned) -> (Outcome, Value) {
    let outcome = run(
        arguments,
        vec![
            listed,
            canned(
                "POST /apps/myapp/dynos",
                201,
                &to_json(&dyno("run.4821", "starting", "psql", "Basic")),
            ),
        ],
    )
    .await;
    let error = outcome.result.as_ref().expect_err("no attach URL");
    assert!(format!("{error:#}").contains("no attach URL"), "{error:#}");
    let body = outcome.request("POST /apps/myapp/dynos").json();
    assert_eq!(body["attach"], true);
    assert_eq!(body["type"], "run");
    assert!(body["env"]["TERM"].is_string(), "{body}");
    (outcome, body)
}

#[tokio::test]
async fn pg_psql_runs_psql_on_the_config_var_in_a_one_off_dyno() {
    let (outcome, body) = one_off(&["pg:psql", "-a", "myapp"], usual()).await;
    assert_eq!(body["command"], r#"psql "$DATABASE_URL""#);
    assert_eq!(
        outcome.stdout,
        "Connecting to postgresql-curved-12345 (DATABASE_URL) on ⬢ myapp... !\n"
    );

    let (_, body) = one_off(
        &["pg:psql", "REPORTS", "-c", "SELECT 1", "-a", "myapp"],
        addons(
            "myapp",
            &[addon("pg-a", PG, &["DATABASE_URL", "REPORTS_URL"])],
        ),
    )
    .await;
    assert_eq!(body["command"], r#"psql "$REPORTS_URL" -c 'SELECT 1'"#);

    // A database owned by the app but not attached to it has no URL in the dynos.
    let outcome = run(
        &["pg:psql", "pg-c", "-a", "myapp"],
        vec![addons("myapp", &[addon("pg-c", PG, &[])])],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: pg-c is not attached to myapp: attach it with \
          `wharf addons:attach pg-c -a myapp`"]
    );
}

/// The SQL of `pg:psql -c` reaches psql as one argument, whatever quotes, `$` or backticks it
/// holds: the dyno's command is run by a real bash, with a `psql` that prints its arguments,
/// in a directory where any command that broke out of the string would leave a file.
#[tokio::test]
async fn pg_psql_command_reaches_psql_intact() {
    let sql = "SELECT '$HOME', \"x\" FROM t WHERE a = $$it's$$; $(touch out1) `touch out2` \
               '; touch out3; ' \"; touch out4; \" \\' \n touch out5";
    let (_, body) = one_off(&["pg:psql", "-c", sql, "-a", "myapp"], usual()).await;
    let command = body["command"].as_str().expect("a command");

    let directory = tempfile::tempdir().unwrap();
    let bin = directory.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let psql = bin.join("psql");
    std::fs::write(
        &psql,
        "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&psql, std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = "postgres://user:pa$$ 'w\"rd@127.0.0.1:5432/db";
    let output = Process::new("/bin/bash")
        .args(["-c", command])
        .current_dir(directory.path())
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", "/nonexistent-home")
        .env("DATABASE_URL", url)
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("[{url}]\n[-c]\n[{sql}]\n")
    );
    for n in 1..=5 {
        assert!(
            !directory.path().join(format!("out{n}")).exists(),
            "out{n}: the SQL broke out of its shell word"
        );
    }
}

#[tokio::test]
async fn pg_reset_needs_the_apps_name() {
    let outcome = run(
        &["pg:reset", "-a", "myapp", "--confirm", "otherapp"],
        vec![usual()],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: Confirmation did not match myapp. Aborted."]
    );
    assert_eq!(routes(&outcome), ["GET /apps/myapp/addons"]);

    let outcome = run(
        &[
            "pg:reset",
            "DATABASE_URL",
            "-a",
            "myapp",
            "--confirm",
            "myapp",
        ],
        vec![
            usual(),
            canned(
                "POST /apps/myapp/addons/postgresql-curved-12345/actions/reset",
                204,
                "",
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        outcome.stdout,
        "Resetting postgresql-curved-12345... done\n"
    );

    // A refusal from the provider is shown as the API words it.
    let outcome = run(
        &["pg:reset", "-a", "myapp", "--confirm", "myapp"],
        vec![
            usual(),
            canned(
                "POST /apps/myapp/addons/postgresql-curved-12345/actions/reset",
                422,
                r#"{"id":"invalid_params","message":"postgresql-curved-12345 belongs to other: only that app may reset or restore it"}"#,
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: postgresql-curved-12345 belongs to other: only that app may reset or \
             restore it",
            " ›   Error ID: invalid_params"
        ]
    );
}

#[tokio::test]
async fn pg_backups_lists_every_databases_backups_newest_first() {
    let listed = || {
        addons(
            "myapp",
            &[
                addon("pg-a", PG, &["DATABASE_URL"]),
                addon("pg-b", PG, &["REPORTS_URL"]),
                addon("redis-round-777", REDIS, &["REDIS_URL"]),
            ],
        )
    };
    let of_a = json!([
        backup("b001", "pg-a", "2026-01-01T10:00:00Z", 512),
        backup("b002", "pg-a", "2026-01-03T10:00:00Z", 1_258_291),
    ])
    .to_string();
    let of_b = json!([backup("b001", "pg-b", "2026-01-02T10:00:00Z", 2048)]).to_string();
    let answers = || {
        vec![
            listed(),
            canned("GET /apps/myapp/addons/pg-a/backups", 200, &of_a),
            canned("GET /apps/myapp/addons/pg-b/backups", 200, &of_b),
        ]
    };
    for command in ["pg:backups", "pg:backups:list"] {
        let outcome = run(&[command, "-a", "myapp"], answers()).await;
        succeeded(&outcome);
        assert_eq!(
            outcome.stdout,
            "=== Backups\n\
             ID  Created at  Size  Database\n\
             b002  2026-01-03 10:00:00 +0000  1.2 MB  DATABASE\n\
             b001  2026-01-02 10:00:00 +0000  2 KB  REPORTS\n\
             b001  2026-01-01 10:00:00 +0000  512 B  DATABASE\n"
        );
    }

    let outcome = run(&["pg:backups", "--json", "-a", "myapp"], answers()).await;
    succeeded(&outcome);
    let printed: Value = serde_json::from_str(&outcome.stdout).unwrap();
    let names: Vec<(&str, &str)> = printed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap(),
                b["addon"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("b002", "pg-a"), ("b001", "pg-b"), ("b001", "pg-a")]
    );

    let outcome = run(
        &["pg:backups", "-a", "myapp"],
        vec![
            usual(),
            canned(
                "GET /apps/myapp/addons/postgresql-curved-12345/backups",
                200,
                "[]",
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        outcome.stdout,
        "=== Backups\nNo backups. Capture one with `wharf pg:backups:capture -a myapp`\n"
    );
}

#[tokio::test]
async fn pg_backups_capture_says_which_backup_it_made() {
    let outcome = run(
        &["pg:backups:capture", "-a", "myapp"],
        vec![
            usual(),
            canned(
                "POST /apps/myapp/addons/postgresql-curved-12345/backups",
                201,
                &backup(
                    "b003",
                    "postgresql-curved-12345",
                    "2026-01-03T10:00:00Z",
                    1_258_291,
                )
                .to_string(),
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        outcome.stdout,
        "Capturing a backup of postgresql-curved-12345 (DATABASE) on ⬢ myapp... done\n\
         Backup b003 of postgresql-curved-12345 captured (1.2 MB)\n"
    );
}

fn restore_route() -> &'static str {
    "POST /apps/myapp/addons/postgresql-curved-12345/actions/restore"
}

fn two_backups() -> Canned {
    canned(
        "GET /apps/myapp/addons/postgresql-curved-12345/backups",
        200,
        &json!([
            backup(
                "b001",
                "postgresql-curved-12345",
                "2026-01-01T10:00:00Z",
                10
            ),
            backup(
                "b002",
                "postgresql-curved-12345",
                "2026-01-02T10:00:00Z",
                10
            ),
        ])
        .to_string(),
    )
}

#[tokio::test]
async fn pg_backups_restore_sends_the_backup_and_its_app() {
    // No backup named: the database's latest; a lone DATABASE argument is the database.
    for arguments in [
        &["pg:backups:restore", "-a", "myapp", "--confirm", "myapp"][..],
        &[
            "pg:backups:restore",
            "DATABASE_URL",
            "-a",
            "myapp",
            "--confirm",
            "myapp",
        ],
    ] {
        let outcome = run(
            arguments,
            vec![usual(), two_backups(), canned(restore_route(), 204, "")],
        )
        .await;
        succeeded(&outcome);
        assert_eq!(
            outcome.request(restore_route()).json(),
            json!({"backup": "b002"})
        );
        assert_eq!(
            outcome.stdout,
            "Restoring b002 to postgresql-curved-12345 (DATABASE)... done\n"
        );
    }

    let outcome = run(
        &[
            "pg:backups:restore",
            "production::b001",
            "DATABASE",
            "-a",
            "myapp",
            "--confirm",
            "myapp",
        ],
        vec![usual(), canned(restore_route(), 204, "")],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        outcome.request(restore_route()).json(),
        json!({"backup": "b001", "from_app": "production"})
    );
    assert_eq!(
        outcome.stdout,
        "Restoring production::b001 to postgresql-curved-12345 (DATABASE)... done\n"
    );

    // `APP::` is that app's latest.
    let outcome = run(
        &[
            "pg:backups:restore",
            "production::",
            "-a",
            "myapp",
            "--confirm",
            "myapp",
        ],
        vec![
            usual(),
            addons("production", &[addon("pg-prod", PG, &["DATABASE_URL"])]),
            canned(
                "GET /apps/production/addons/pg-prod/backups",
                200,
                &json!([backup("b007", "pg-prod", "2026-01-01T00:00:00Z", 1)]).to_string(),
            ),
            canned(restore_route(), 204, ""),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        outcome.request(restore_route()).json(),
        json!({"backup": "b007", "from_app": "production"})
    );

    let outcome = run(
        &[
            "pg:backups:restore",
            "b001",
            "-a",
            "myapp",
            "--confirm",
            "production",
        ],
        vec![usual()],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: Confirmation did not match myapp. Aborted."]
    );
    assert!(!routes(&outcome).contains(&restore_route()));

    let outcome = run(
        &[
            "pg:backups:restore",
            "::b001",
            "-a",
            "myapp",
            "--confirm",
            "myapp",
        ],
        vec![],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [" ›   Error: \"::b001\" is not a backup: give b001, or APP::b001 for another app's"]
    );
}

fn download_route(app: &str, addon: &str, backup: &str) -> String {
    format!("GET /apps/{app}/addons/{addon}/backups/{backup}")
}

/// Bytes of a dump, as text the canned server can send.
const DUMP: &str = "PGDMP\u{0}\u{1}custom format \u{7f} données";

#[tokio::test]
async fn pg_backups_download_saves_the_bytes_and_leaves_no_partial_file() {
    let directory = tempfile::tempdir().unwrap();
    let output = directory.path().join("db.dump");
    let output_text = output.to_str().unwrap();
    // An older download is replaced, once the new one is complete (as Heroku's CLI does).
    std::fs::write(&output, "an older dump").unwrap();
    let outcome = run(
        &["pg:backups:download", "-o", output_text, "-a", "myapp"],
        vec![
            usual(),
            two_backups(),
            text(
                &download_route("myapp", "postgresql-curved-12345", "b002"),
                200,
                DUMP,
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(std::fs::read(&output).unwrap(), DUMP.as_bytes());
    assert_eq!(
        outcome.stdout,
        format!(
            "Downloading b002 of postgresql-curved-12345 to {output_text}... done, {} B\n",
            DUMP.len()
        )
    );
    assert_only(directory.path(), &["db.dump"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&output).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Another app's backup, by number, from that app's database.
    let other = directory.path().join("other.dump");
    let outcome = run(
        &[
            "pg:backups:download",
            "production::b001",
            "-o",
            other.to_str().unwrap(),
            "-a",
            "myapp",
        ],
        vec![
            addons("production", &[addon("pg-prod", PG, &["DATABASE_URL"])]),
            // Chunked, as a stream of unknown length comes.
            text(&download_route("production", "pg-prod", "b001"), 200, "")
                .chunked(&["first ", "second ", "third"]),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "first second third"
    );

    // A failed download creates nothing and keeps what was there.
    let outcome = run(
        &[
            "pg:backups:download",
            "b009",
            "-o",
            output_text,
            "-a",
            "myapp",
        ],
        vec![
            usual(),
            canned(
                &download_route("myapp", "postgresql-curved-12345", "b009"),
                404,
                r#"{"id":"not_found","message":"Couldn't find the backup b009"}"#,
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.error_lines(),
        [
            " ›   Error: Couldn't find the backup b009",
            " ›   Error ID: not_found"
        ]
    );
    assert_eq!(std::fs::read(&output).unwrap(), DUMP.as_bytes());
    assert_only(directory.path(), &["db.dump", "other.dump"]);
}

fn assert_only(directory: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected);
}

#[test]
fn pg_backups_download_saves_to_latest_dump_by_default() {
    match parse(&["pg:backups:download"]) {
        Ok(Command::PgBackupsDownload(args)) => {
            assert_eq!(args.output, Path::new("latest.dump"));
            assert_eq!(args.backup, None);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn redis_info_and_cli() {
    for command in ["redis:info", "redis"] {
        let outcome = run(
            &[command, "-a", "myapp"],
            vec![
                usual(),
                canned(
                    "GET /apps/myapp/addons/redis-round-777/info",
                    200,
                    r#"[{"name":"Plan","value":"wharf-redis:mini"},{"name":"Maxmemory","value":"noeviction"}]"#,
                ),
            ],
        )
        .await;
        succeeded(&outcome);
        assert_eq!(
            outcome.stdout,
            "=== redis-round-777 (REDIS_URL)\nPlan:      wharf-redis:mini\nMaxmemory: noeviction\n"
        );
    }

    let (outcome, body) = one_off(&["redis:cli", "-a", "myapp"], usual()).await;
    assert_eq!(
        body["command"],
        r#"redis-cli --no-auth-warning -u "$(printf '%s' "$REDIS_URL" | sed 's#^\(rediss*\)://:#\1://default:#')""#
    );
    assert_eq!(
        outcome.stdout,
        "Connecting to redis-round-777 (REDIS_URL) on ⬢ myapp... !\n"
    );
}

#[tokio::test]
async fn redis_credentials_prints_or_resets() {
    let outcome = run(
        &["redis:credentials", "-a", "myapp"],
        vec![
            usual(),
            canned(
                "GET /apps/myapp/config-vars",
                200,
                r#"{"REDIS_URL":"redis://u:secret@127.0.0.1:6379","DATABASE_URL":"postgres://x"}"#,
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(outcome.stdout, "redis://u:secret@127.0.0.1:6379\n");

    let outcome = run(
        &["redis:credentials", "REDIS_URL", "--reset", "-a", "myapp"],
        vec![
            usual(),
            canned(
                "POST /apps/myapp/addons/redis-round-777/actions/rotate-credentials",
                200,
                &addon("redis-round-777", REDIS, &["REDIS_URL"]).to_string(),
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        outcome.stdout,
        "Resetting credentials for redis-round-777... done\n\
         The old password stops working once the dynos of the apps it is attached to have \
         restarted with the new one.\n"
    );
}

#[tokio::test]
async fn redis_maxmemory_sets_the_policy() {
    let outcome = run(
        &["redis:maxmemory", "--policy", "allkeys-lru", "-a", "myapp"],
        vec![
            usual(),
            canned(
                "PATCH /apps/myapp/addons/redis-round-777/settings",
                200,
                r#"[{"name":"maxmemory-policy","value":"allkeys-lru"}]"#,
            ),
        ],
    )
    .await;
    succeeded(&outcome);
    assert_eq!(
        outcome
            .request("PATCH /apps/myapp/addons/redis-round-777/settings")
            .json(),
        json!({"settings": {"maxmemory-policy": "allkeys-lru"}})
    );
    assert_eq!(
        outcome.stdout,
        "Maxmemory policy for redis-round-777 (REDIS_URL) set to allkeys-lru.\n"
    );

    assert!(parse(&["redis:maxmemory", "-a", "myapp"]).is_err());
}
