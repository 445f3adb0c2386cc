//! Hosts through the API: an admin adds one and gets its credential and join command once;
//! the agent renews its lease with that credential alone; draining and removing show at once
//! in the host's state; API keys and host credentials never open each other's routes.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::TestApi;

async fn add(api: &TestApi, name: &str) -> Value {
    let reply = api
        .call(
            "POST",
            "/hosts",
            Some(&api.admin_key),
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body
}

async fn heartbeat(api: &TestApi, credential: &str, memory_mb: u64) -> (StatusCode, Value) {
    let reply = api
        .call(
            "PUT",
            "/agent/heartbeat",
            Some(credential),
            Some(json!({"memory_mb": memory_mb, "address": "10.77.0.2"})),
        )
        .await;
    (reply.status, reply.body)
}

async fn host(api: &TestApi, name: &str) -> Value {
    let reply = api
        .call("GET", &format!("/hosts/{name}"), Some(&api.admin_key), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

#[tokio::test]
async fn a_host_joins_heartbeats_drains_and_is_removed() {
    let api = TestApi::new().await;
    let created = add(&api, "host-1").await;
    let credential = created["credential"].as_str().unwrap().to_owned();
    assert!(credential.starts_with("wharf-host-"), "{credential}");
    assert_eq!(
        created["join_command"],
        format!(
            "WHARF_HOST_CREDENTIAL={credential} wharf agent --control-plane http://127.0.0.1:5000"
        )
    );
    assert_eq!(created["host"]["state"], "joining");
    // The credential is shown once: listing never shows it.
    let listed = api.call("GET", "/hosts", Some(&api.admin_key), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(!listed.body.to_string().contains(&credential));
    assert_eq!(listed.body[0]["name"], "host-1");

    let (status, lease) = heartbeat(&api, &credential, 3072).await;
    assert_eq!(status, StatusCode::OK, "{lease:?}");
    assert_eq!(lease["host"], "host-1");
    assert_eq!(lease["epoch"], 1);
    assert_eq!(lease["lease_ms"], 4000);
    assert_eq!(lease["heartbeat_ms"], 1000);
    assert_eq!(lease["draining"], false);
    let up = host(&api, "host-1").await;
    assert_eq!(up["state"], "up");
    assert_eq!(up["memory_mb"], 3072);
    assert_eq!(up["address"], "10.77.0.2");
    assert_eq!(up["dynos"], 0);

    let drained = api
        .call(
            "PATCH",
            "/hosts/host-1",
            Some(&api.admin_key),
            Some(json!({"draining": true})),
        )
        .await;
    assert_eq!(drained.status, StatusCode::OK, "{:?}", drained.body);
    assert_eq!(drained.body["state"], "draining");
    let (_, lease) = heartbeat(&api, &credential, 3072).await;
    assert_eq!(lease["draining"], true);
    let nothing = api
        .call(
            "PATCH",
            "/hosts/host-1",
            Some(&api.admin_key),
            Some(json!({})),
        )
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nothing.body["message"]
        .as_str()
        .unwrap()
        .contains("draining"));

    let removed = api
        .call("DELETE", "/hosts/host-1", Some(&api.admin_key), None)
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    // Removing revokes the credential.
    let (status, _) = heartbeat(&api, &credential, 3072).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let gone = api
        .call("GET", "/hosts/host-1", Some(&api.admin_key), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.body["message"]
        .as_str()
        .unwrap()
        .contains("wharf hosts"));
}

#[tokio::test]
async fn bad_names_and_duplicates_are_refused_and_change_nothing() {
    let api = TestApi::new().await;
    add(&api, "host-1").await;
    for (name, status, says) in [
        (
            "Host_1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "lowercase letters",
        ),
        ("", StatusCode::UNPROCESSABLE_ENTITY, "Host name"),
        ("host-1", StatusCode::CONFLICT, "exists already"),
    ] {
        let reply = api
            .call(
                "POST",
                "/hosts",
                Some(&api.admin_key),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(reply.status, status, "{name}: {:?}", reply.body);
        assert!(
            reply.body["message"].as_str().unwrap().contains(says),
            "{name}: {:?}",
            reply.body
        );
    }
    let listed = api.call("GET", "/hosts", Some(&api.admin_key), None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_and_host_credentials_do_not_open_each_others_routes() {
    let api = TestApi::new().await;
    let credential = add(&api, "host-1").await["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    // An admin's API key is no host credential, whatever it hashes to.
    let (status, _) = heartbeat(&api, &api.admin_key, 1024).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = heartbeat(&api, "wharf-host-made-up", 1024).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A host credential opens no user route.
    for (method, path) in [("GET", "/hosts"), ("GET", "/apps"), ("GET", "/account")] {
        let reply = api.call(method, path, Some(&credential), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // A heartbeat must say where the host is.
    let reply = api
        .call(
            "PUT",
            "/agent/heartbeat",
            Some(&credential),
            Some(json!({"memory_mb": 1024, "address": "a\nb"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(host(&api, "host-1").await["state"], "joining");
}

/// A host whose agent has sent one heartbeat, and its credential.
async fn joined(api: &TestApi, name: &str) -> (String, uuid::Uuid) {
    let created = add(api, name).await;
    let credential = created["credential"].as_str().unwrap().to_owned();
    let (status, _) = heartbeat(api, &credential, 4096).await;
    assert_eq!(status, StatusCode::OK);
    let id = uuid::Uuid::parse_str(created["host"]["id"].as_str().unwrap()).unwrap();
    (credential, id)
}

#[tokio::test]
async fn an_agent_reads_and_fetches_only_what_is_placed_on_its_host() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    let store = &api.state.store;
    let (credential_a, host_a) = joined(&api, "host-a").await;
    let (credential_b, host_b) = joined(&api, "host-b").await;
    let (credential_c, _) = joined(&api, "host-c").await;

    // Two apps with a real slug archive each; `placed` has web.1 and worker.1 on host-a and
    // web.2 on host-b, `other` only on host-b.
    let mut slugs = Vec::new();
    for app in ["placed", "other"] {
        api.app(&owner, app).await;
        let app_id = store
            .all_apps()
            .await
            .unwrap()
            .into_iter()
            .find(|found| found.name.as_str() == app)
            .unwrap()
            .id;
        let slug = store
            .create_slug(
                app_id,
                wharf_store::NewSlug {
                    process_types: [("web", "serve"), ("worker", "work")]
                        .iter()
                        .map(|(t, c)| (t.to_string(), c.to_string()))
                        .collect(),
                    stack: "debian-12".into(),
                    checksum: Some(format!("SHA256:{app}")),
                    ..wharf_store::NewSlug::default()
                },
            )
            .await
            .unwrap();
        let path = api.state.builder.config().slug_path(slug.id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("archive of {app}")).unwrap();
        let released = api
            .call(
                "POST",
                &format!("/apps/{app}/releases"),
                Some(&owner),
                Some(json!({ "slug": slug.id.to_string() })),
            )
            .await;
        assert_eq!(released.status, StatusCode::CREATED, "{:?}", released.body);
        api.call(
            "PATCH",
            &format!("/apps/{app}/config-vars"),
            Some(&owner),
            Some(json!({ "SECRET": format!("{app}-secret") })),
        )
        .await;
        slugs.push((app_id, slug.id));
    }
    let [(placed, placed_slug), (other, other_slug)] = slugs[..] else {
        unreachable!()
    };
    let slot = |app, process_type: &str, number| wharf_model::Slot {
        app,
        process_type: process_type.to_owned(),
        number,
    };
    let on = |host| wharf_store::Placed {
        host,
        memory_mb: 512,
    };
    store
        .set_placements(
            &[
                (slot(placed, "web", 1), on(host_a)),
                (slot(placed, "worker", 1), on(host_a)),
                (slot(placed, "web", 2), on(host_b)),
                (slot(other, "web", 1), on(host_b)),
            ]
            .into(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();

    let desired = |credential: String| {
        let api = &api;
        async move {
            let reply = api
                .call("GET", "/agent/desired", Some(&credential), None)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            reply.body
        }
    };
    let a = desired(credential_a.clone()).await;
    assert_eq!(a["apps"].as_array().unwrap().len(), 1, "{a}");
    let app = &a["apps"][0];
    assert_eq!(app["name"], "placed");
    assert_eq!(
        app["formation"]["web"],
        json!({"numbers": [1], "size": "Basic"})
    );
    assert_eq!(
        app["formation"]["worker"],
        json!({"numbers": [1], "size": "Basic"})
    );
    assert_eq!(app["release"]["config"]["SECRET"], "placed-secret");
    assert_eq!(app["release"]["commands"]["web"], "serve");
    assert_eq!(app["release"]["slug"]["checksum"], "SHA256:placed");
    // Nothing of the other app reaches host-a: not its name, not its config.
    assert!(!a.to_string().contains("other"), "{a}");

    let b = desired(credential_b.clone()).await;
    let names: Vec<&str> = b["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"placed") && names.contains(&"other"),
        "{names:?}"
    );
    let c = desired(credential_c.clone()).await;
    assert_eq!(c["apps"], json!([]));

    // Slugs: host-a fetches its app's archive, not the other app's; host-c none at all.
    async fn fetch(api: &TestApi, credential: &str, slug: uuid::Uuid) -> support::Reply {
        api.request(
            "GET",
            &format!("/agent/slugs/{slug}"),
            Some(credential),
            &[],
            None,
        )
        .await
    }
    let fetched = fetch(&api, &credential_a, placed_slug).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, json!("archive of placed"));
    for (credential, slug) in [
        (&credential_a, other_slug),
        (&credential_c, placed_slug),
        (&credential_a, uuid::Uuid::new_v4()),
    ] {
        let refused = fetch(&api, credential, slug).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{slug}");
    }
    // A user's key opens none of it, not even the owner's.
    let refused = fetch(&api, &owner, placed_slug).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_agent_writes_only_its_own_dynos_lines_into_its_own_apps_logs() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    let (credential, host) = joined(&api, "host-a").await;
    let store = &api.state.store;
    let mut ids = Vec::new();
    for app in ["mine", "theirs"] {
        api.app(&owner, app).await;
        ids.push(
            store
                .all_apps()
                .await
                .unwrap()
                .into_iter()
                .find(|found| found.name.as_str() == app)
                .unwrap()
                .id,
        );
    }
    let (mine, theirs) = (ids[0], ids[1]);
    store
        .set_placements(
            &[(
                wharf_model::Slot {
                    app: mine,
                    process_type: "web".into(),
                    number: 1,
                },
                wharf_store::Placed {
                    host,
                    memory_mb: 512,
                },
            )]
            .into(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let line = |process: &str, message: &str| json!({"at": "2026-12-06T12:00:00.000001Z", "source": "app", "process": process, "message": message});
    post_logs(&api, &credential, json!({"apps": [
                {"app": mine.to_string(), "dropped": 7, "lines": [
                    line("web.1", "hello from host-a"),
                    line("api", "a forged platform line"),
                    line("router", "another"),
                ]},
                {"app": theirs.to_string(), "dropped": 0, "lines": [line("web.1", "not mine to write")]},
            ]})).await;
    let logs = api.state.dynos.logs();
    let lines = written(logs, mine);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "heroku[logplex]: Error L10 (output buffer overflow) -> 7 log lines from host host-a"
        ),
        "{lines:?}"
    );
    assert_eq!(lines[1], "app[web.1]: hello from host-a");
    assert!(logs.recent(theirs, 10).is_empty());

    // Every host routes every app: its router's lines are taken for any app the hosts' route
    // table has, and nothing else of another app's.
    api.state
        .publish_agent_routes(routes(&[(mine, "mine"), (theirs, "theirs")]));
    let router_line = |process: &str, message: &str| json!({"at": "2026-12-06T12:00:01.000001Z", "source": "heroku", "process": process, "message": message});
    post_logs(
        &api,
        &credential,
        json!({"apps": [
            {"app": theirs.to_string(), "dropped": 0, "lines": [
                router_line("router", "at=info method=GET path=\"/\""),
                router_line("api", "a forged platform line"),
                line("web.1", "still not mine to write"),
            ]},
            {"app": uuid::Uuid::from_u128(99).to_string(), "dropped": 3, "lines": [
                router_line("router", "no such app"),
            ]},
        ]}),
    )
    .await;
    assert_eq!(
        written(logs, theirs),
        ["heroku[router]: at=info method=GET path=\"/\""]
    );
    assert!(logs.recent(uuid::Uuid::from_u128(99), 10).is_empty());

    // Runtime metrics: its own dynos' samples are kept (and logged, with
    // `log-runtime-metrics`); another app's, or one that does not read as a sample, are not.
    logs.metrics().set_enabled(mine, true);
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let sample = |app: uuid::Uuid, dyno: &str, load: f64| {
        json!({
            "app": app.to_string(), "dyno": dyno, "dyno_id": uuid::Uuid::from_u128(5).to_string(),
            "at": now, "load_avg_1m": load, "load_avg_5m": 0.5,
            "load_avg_15m": 0.25, "cpu_time_ns": 7, "memory_total": 50u64 << 20,
            "memory_rss": 40u64 << 20, "memory_cache": 10u64 << 20, "memory_swap": 0,
            "memory_quota": 512u64 << 20,
        })
    };
    post_logs(
        &api,
        &credential,
        json!({"apps": [], "samples": [
            sample(mine, "web.1", 1.5),
            sample(mine, "web.2", -1.0),
            sample(mine, "router", 1.0),
            sample(theirs, "web.1", 1.0),
        ]}),
    )
    .await;
    let kept = logs.metrics().samples(mine, "web.1");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].load_avg_1m, 1.5);
    assert_eq!(kept[0].reading.memory_rss, 40 << 20);
    assert!(logs.metrics().samples(mine, "web.2").is_empty());
    assert!(logs.metrics().samples(mine, "router").is_empty());
    assert!(logs.metrics().samples(theirs, "web.1").is_empty());
    let last = logs.recent(mine, 1);
    assert_eq!(last[0].process, "web.1");
    assert!(
        last[0].message.contains("sample#load_avg_1m=1.50 ")
            && last[0].message.contains("sample#memory_rss=40.00MB"),
        "{:?}",
        last[0]
    );
    // The API's samples of the dyno have it.
    let reply = api
        .call("GET", "/apps/mine/dynos/web.1/metrics", Some(&owner), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body.as_array().unwrap().len(), 1, "{:?}", reply.body);

    // Its router's requests go into the metrics history of any app the route table has, if
    // they are recent.
    let history_dir = tempfile::tempdir().unwrap();
    logs.metrics()
        .set_history(wharf_metrics::Recorder::open(history_dir.path(), 7).unwrap());
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let request = |app: uuid::Uuid, at: i64| json!({"app": app.to_string(), "at": at, "status": 503, "total_us": 30_000_000u64, "code": "H12"});
    post_logs(
        &api,
        &credential,
        json!({"apps": [], "requests": [
            request(theirs, at),
            request(theirs, at - 3 * 24 * 60 * 60),
            request(uuid::Uuid::from_u128(99), at),
        ]}),
    )
    .await;
    let reply = api
        .call("GET", "/apps/theirs/metrics/router", Some(&owner), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["totals"]["requests"], 1, "{:?}", reply.body);
    assert_eq!(reply.body["errors"], json!({"H12": 1}));
}

/// POSTs `body` to `/agent/logs` as the host holding `credential`, which takes it.
async fn post_logs(api: &TestApi, credential: &str, body: Value) {
    let reply = api
        .call("POST", "/agent/logs", Some(credential), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
}

/// The app's last lines, as `wharf logs` shows them without their times.
fn written(logs: &wharf_dynos::LogBuffer, app: uuid::Uuid) -> Vec<String> {
    logs.recent(app, 10)
        .iter()
        .map(|line| format!("{}[{}]: {}", line.source, line.process, line.message))
        .collect()
}

/// A hosts' route table with `apps` (id, name), one web dyno each.
fn routes(apps: &[(uuid::Uuid, &str)]) -> wharf_api_types::AgentRoutes {
    wharf_api_types::AgentRoutes {
        version: 0,
        apps: apps
            .iter()
            .map(|(id, name)| wharf_api_types::AgentRouteApp {
                id: id.to_string(),
                name: (*name).to_owned(),
                maintenance: false,
                web_quantity: 1,
                crashed: false,
                booting: false,
                session_affinity: false,
                backends: vec![wharf_api_types::AgentBackend {
                    id: uuid::Uuid::from_u128(7).to_string(),
                    dyno: "web.1".into(),
                    upstream: "10.77.0.2:20000".into(),
                }],
            })
            .collect(),
        domains: Default::default(),
        hosts: vec!["10.77.0.2".into()],
        leased: vec!["10.77.0.2".into()],
    }
}

#[tokio::test]
async fn hosts_get_the_route_table_once_it_is_trusted_and_as_soon_as_it_changes() {
    let api = std::sync::Arc::new(TestApi::new().await);
    let (credential, _) = joined(&api, "host-a").await;
    // None yet (a control plane just started): refused, so the host keeps the table it has.
    let reply = api
        .call("GET", "/agent/routes?after=1", Some(&credential), None)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("keep the one you have"));
    // API keys are refused.
    let reply = api
        .call("GET", "/agent/routes", Some(&api.admin_key), None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let first = uuid::Uuid::from_u128(1);
    api.state.publish_agent_routes(routes(&[(first, "first")]));
    let reply = api
        .call("GET", "/agent/routes", Some(&credential), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let table: wharf_api_types::AgentRoutes = serde_json::from_value(reply.body).unwrap();
    assert_eq!(table.apps[0].name, "first");
    assert_eq!(table.apps[0].backends[0].upstream, "10.77.0.2:20000");
    assert_eq!(table.hosts, ["10.77.0.2"]);
    // The same table again is no new version.
    api.state.publish_agent_routes(routes(&[(first, "first")]));
    assert_eq!(
        api.state.agent_routes().borrow().as_ref().unwrap().version,
        table.version
    );

    // A host that has this version waits; a change answers it at once.
    let waiting = {
        let (api, credential) = (api.clone(), credential.clone());
        let path = format!("/agent/routes?after={}", table.version);
        tokio::spawn(async move { api.call("GET", &path, Some(&credential), None).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "answered with no change");
    let second = uuid::Uuid::from_u128(2);
    api.state
        .publish_agent_routes(routes(&[(first, "first"), (second, "second")]));
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("answered once the table changed")
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let newer: wharf_api_types::AgentRoutes = serde_json::from_value(reply.body).unwrap();
    assert_ne!(newer.version, table.version);
    assert_eq!(newer.apps.len(), 2);

    // A host's router wakes an app the table has: every host reads what it runs again.
    let generation = api.state.generation();
    let reply = api
        .call(
            "POST",
            &format!("/agent/wake/{second}"),
            Some(&credential),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
    assert_ne!(api.state.generation(), generation);
    for unknown in [uuid::Uuid::from_u128(3).to_string(), "not-an-id".to_owned()] {
        let reply = api
            .call(
                "POST",
                &format!("/agent/wake/{unknown}"),
                Some(&credential),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
    }
    let reply = api
        .call(
            "POST",
            &format!("/agent/wake/{second}"),
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn restarts_and_stops_reach_the_hosts_that_report_the_dynos() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    api.app(&owner, "spread").await;
    let app = api
        .call("GET", "/apps/spread", Some(&owner), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (credential_a, host_a) = joined(&api, "host-a").await;
    let (credential_b, _) = joined(&api, "host-b").await;
    api.state
        .store
        .set_placements(
            &[(
                wharf_model::Slot {
                    app: app.parse().unwrap(),
                    process_type: "web".into(),
                    number: 1,
                },
                wharf_store::Placed {
                    host: host_a,
                    memory_mb: 512,
                },
            )]
            .into(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    // host-a reports web.1 and a one-off; host-b nothing.
    let dyno = |name: &str, process_type: &str| {
        json!({"id": uuid::Uuid::new_v4().to_string(), "app": app, "name": name,
               "type": process_type, "state": "up", "command": "serve", "size": "Basic",
               "release_version": 1, "updated_at": "2026-12-06T12:00:00Z"})
    };
    let reply = api
        .call(
            "PUT",
            "/agent/heartbeat",
            Some(&credential_a),
            Some(json!({"memory_mb": 4096, "address": "10.77.0.2",
                        "dynos": [dyno("web.1", "web"), dyno("run.1234", "run")]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let actions = |credential: String| {
        let api = &api;
        async move {
            let reply = api
                .call("GET", "/agent/desired", Some(&credential), None)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            reply.body["actions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };

    let reply = api
        .call("DELETE", "/apps/spread/dynos", Some(&owner), None)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let listed = actions(credential_a.clone()).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["app"], app.as_str());
    assert_eq!(listed[0]["stop"], false);
    assert!(listed[0].get("dyno").is_none() && listed[0].get("process_type").is_none());
    assert!(actions(credential_b.clone()).await.is_empty());

    // A one-off is stopped, never restarted; a dyno no host reports is not found.
    let reply = api
        .call(
            "POST",
            "/apps/spread/dynos/run.1234/actions/stop",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let listed = actions(credential_a.clone()).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[1]["dyno"], "run.1234");
    assert_eq!(listed[1]["stop"], true);
    let reply = api
        .call("DELETE", "/apps/spread/dynos/run.1234", Some(&owner), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
    let reply = api
        .call("DELETE", "/apps/spread/dynos/web.9", Some(&owner), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
    assert_eq!(actions(credential_a).await.len(), 2);
}
