//! The add-ons API in process, with the real PostgreSQL and Redis providers of this machine:
//! create in Heroku's shapes (`heroku-postgresql`, `--as`), config vars and releases, a second
//! database's colour name, sharing through attachments, rotation, destroy, and that no answer
//! but the app's own config vars carries a credential.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::TestApi;
use wharf_addons::postgres::PostgresProvider;
use wharf_addons::redis::RedisProvider;
use wharf_addons::Registry;

async fn api() -> TestApi {
    let postgres = std::env::var("WHARF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let redis = std::env::var("WHARF_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut registry = Registry::new();
    registry.register(Arc::new(PostgresProvider::new(&postgres, None).unwrap()));
    registry.register(Arc::new(RedisProvider::new(&redis, None).unwrap()));
    TestApi::with_addons(registry).await
}

async fn config(api: &TestApi, key: &str, app: &str) -> Value {
    let reply = api
        .call("GET", &format!("/apps/{app}/config-vars"), Some(key), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body
}

async fn newest_release(api: &TestApi, key: &str, app: &str) -> Value {
    let reply = api
        .request(
            "GET",
            &format!("/apps/{app}/releases"),
            Some(key),
            &[("range", "version ..; order=desc, max=1")],
            None,
        )
        .await;
    reply.body[0].clone()
}

async fn create(api: &TestApi, key: &str, app: &str, body: Value) -> Value {
    let reply = api
        .call(
            "POST",
            &format!("/apps/{app}/addons"),
            Some(key),
            Some(body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body
}

/// No credential in an answer: add-on and attachment listings carry names only.
fn assert_no_credentials(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains("://"), "a URL leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_addons_in_herokus_shapes() {
    let api = api().await;
    let key = api.user("dev@example.com").await;
    api.app(&key, "shop").await;

    let addon = create(
        &api,
        &key,
        "shop",
        json!({"attachment": {}, "config": {"follow": true}, "plan": {"name": "heroku-postgresql"}}),
    )
    .await;
    assert_no_credentials(&addon);
    assert_eq!(addon["state"], "provisioned");
    assert_eq!(addon["plan"]["name"], "wharf-postgresql:mini");
    assert_eq!(addon["addon_service"]["name"], "wharf-postgresql");
    assert_eq!(addon["config_vars"], json!(["DATABASE_URL"]));
    assert_eq!(addon["app"]["name"], "shop");
    assert_eq!(addon["billed_price"]["cents"], 0);
    let name = addon["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("postgresql-"), "{name}");

    let vars = config(&api, &key, "shop").await;
    let url = vars["DATABASE_URL"].as_str().unwrap().to_owned();
    assert!(url.starts_with("postgres://addon_"), "{url}");
    let release = newest_release(&api, &key, "shop").await;
    assert_eq!(
        release["description"],
        format!("Attach DATABASE (@ref:{name})")
    );
    assert_eq!(
        release["addon_plan_names"],
        json!(["wharf-postgresql:mini"])
    );

    // A second database takes a colour name; --as names one.
    let second = create(&api, &key, "shop", json!({"plan": "wharf-postgresql"})).await;
    assert_eq!(
        second["config_vars"],
        json!(["HEROKU_POSTGRESQL_AMBER_URL"])
    );
    let named = create(
        &api,
        &key,
        "shop",
        json!({"plan": {"name": "heroku-redis:mini"}, "attachment": {"name": "cache"}}),
    )
    .await;
    assert_eq!(
        named["config_vars"],
        json!(["CACHE_KEY_PREFIX", "CACHE_URL"])
    );
    let vars = config(&api, &key, "shop").await;
    assert!(vars["CACHE_URL"]
        .as_str()
        .unwrap()
        .starts_with("redis://addon_"));
    assert_eq!(vars["DATABASE_URL"], url.as_str());

    let list = api.call("GET", "/apps/shop/addons", Some(&key), None).await;
    assert_eq!(list.body.as_array().unwrap().len(), 3);
    assert_no_credentials(&list.body);
    for lookup in [name.as_str(), "DATABASE", addon["id"].as_str().unwrap()] {
        let info = api
            .call(
                "GET",
                &format!("/apps/shop/addons/{lookup}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(info.status, StatusCode::OK, "{lookup}");
        assert_eq!(info.body["name"], name.as_str());
    }
    let attachments = api
        .call("GET", "/addon-attachments", Some(&key), None)
        .await;
    assert_eq!(attachments.body.as_array().unwrap().len(), 3);
    assert_no_credentials(&attachments.body);
    assert_eq!(attachments.body[0]["name"], "DATABASE");
    assert_eq!(attachments.body[0]["addon"]["name"], name.as_str());
    assert_eq!(attachments.body[0]["app"]["name"], "shop");

    // Destroying removes the config var in a release.
    let destroyed = api
        .call(
            "DELETE",
            &format!("/apps/shop/addons/{name}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(destroyed.status, StatusCode::OK, "{:?}", destroyed.body);
    assert_eq!(destroyed.body["state"], "deprovisioned");
    assert!(config(&api, &key, "shop")
        .await
        .get("DATABASE_URL")
        .is_none());
    let release = newest_release(&api, &key, "shop").await;
    assert_eq!(
        release["description"],
        format!("Detach DATABASE (@ref:{name})")
    );
    assert_eq!(
        release["addon_plan_names"],
        json!(["wharf-postgresql:mini", "wharf-redis:mini"])
    );
    let gone = api
        .call(
            "GET",
            &format!("/apps/shop/addons/{name}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // Deleting the app destroys the rest.
    let deleted = api.call("DELETE", "/apps/shop", Some(&key), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    let attachments = api
        .call("GET", "/addon-attachments", Some(&key), None)
        .await;
    assert_eq!(attachments.body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_what_to_do() {
    let api = api().await;
    let key = api.user("dev@example.com").await;
    api.app(&key, "shop").await;
    let unknown = api
        .call(
            "POST",
            "/apps/shop/addons",
            Some(&key),
            Some(json!({"plan": "mongolab"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = unknown.body["message"].as_str().unwrap();
    assert!(
        message.contains("wharf-postgresql (also heroku-postgresql)"),
        "{message}"
    );
    let plan = api
        .call(
            "POST",
            "/apps/shop/addons",
            Some(&key),
            Some(json!({"plan": "heroku-postgresql:huge"})),
        )
        .await;
    assert_eq!(plan.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(plan.body["message"]
        .as_str()
        .unwrap()
        .contains("wharf-postgresql:mini"));
    let bad_name = api
        .call(
            "POST",
            "/apps/shop/addons",
            Some(&key),
            Some(json!({"plan": "heroku-redis", "attachment": {"name": "my-cache"}})),
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Refused requests made nothing.
    let list = api.call("GET", "/apps/shop/addons", Some(&key), None).await;
    assert_eq!(list.body, json!([]));

    let services = api.call("GET", "/addon-services", Some(&key), None).await;
    assert_eq!(services.body[0]["name"], "wharf-postgresql");
    assert_eq!(services.body[0]["aliases"], json!(["heroku-postgresql"]));
    let plans = api
        .call(
            "GET",
            "/addon-services/heroku-redis/plans",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(plans.body[0]["name"], "wharf-redis:mini");
    assert_eq!(plans.body[0]["default"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_and_rotating_one_database() {
    let api = api().await;
    let key = api.user("dev@example.com").await;
    let stranger = api.user("stranger@example.com").await;
    api.app(&key, "web-app").await;
    api.app(&key, "reports").await;
    api.app(&stranger, "theirs").await;
    let addon = create(&api, &key, "web-app", json!({"plan": "heroku-postgresql"})).await;
    let name = addon["name"].as_str().unwrap();

    // Someone else can neither attach it nor see it.
    let refused = api
        .call(
            "POST",
            "/addon-attachments",
            Some(&stranger),
            Some(json!({"addon": name, "app": "theirs"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let theirs = api
        .call("GET", "/addon-attachments", Some(&stranger), None)
        .await;
    assert_eq!(theirs.body, json!([]));

    let attached = api
        .call(
            "POST",
            "/addon-attachments",
            Some(&key),
            Some(json!({"addon": name, "app": "reports"})),
        )
        .await;
    assert_eq!(attached.status, StatusCode::CREATED, "{:?}", attached.body);
    assert_eq!(attached.body["name"], "DATABASE");
    assert_eq!(attached.body["addon"]["app"]["name"], "web-app");
    let url = config(&api, &key, "web-app").await["DATABASE_URL"].clone();
    assert_eq!(config(&api, &key, "reports").await["DATABASE_URL"], url);
    let shared = api
        .call("GET", "/apps/reports/addons", Some(&key), None)
        .await;
    assert_eq!(shared.body[0]["app"]["name"], "web-app");
    assert_eq!(shared.body[0]["config_vars"], json!(["DATABASE_URL"]));
    let not_theirs = api
        .call(
            "DELETE",
            &format!("/apps/reports/addons/{name}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(not_theirs.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(not_theirs.body["message"]
        .as_str()
        .unwrap()
        .contains("addons:detach"));

    let rotated = api
        .call(
            "POST",
            &format!("/apps/web-app/addons/{name}/actions/rotate-credentials"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert_no_credentials(&rotated.body);
    let new_url = config(&api, &key, "web-app").await["DATABASE_URL"].clone();
    assert_ne!(new_url, url);
    assert_eq!(config(&api, &key, "reports").await["DATABASE_URL"], new_url);
    let release = newest_release(&api, &key, "reports").await;
    assert!(release["description"]
        .as_str()
        .unwrap()
        .starts_with("Update DATABASE by"));

    let attachment = api
        .call(
            "GET",
            "/apps/reports/addon-attachments/DATABASE",
            Some(&key),
            None,
        )
        .await;
    let detached = api
        .call(
            "DELETE",
            &format!(
                "/addon-attachments/{}",
                attachment.body["id"].as_str().unwrap()
            ),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(detached.status, StatusCode::OK, "{:?}", detached.body);
    assert!(config(&api, &key, "reports")
        .await
        .get("DATABASE_URL")
        .is_none());
    let last = api
        .call(
            "GET",
            "/apps/web-app/addon-attachments/DATABASE",
            Some(&key),
            None,
        )
        .await;
    let refused = api
        .call(
            "DELETE",
            &format!("/addon-attachments/{}", last.body["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let destroyed = api
        .call(
            "DELETE",
            &format!("/apps/web-app/addons/{name}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(destroyed.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_finishes_interrupted_provisioning_and_destroying() {
    let api = api().await;
    let key = api.user("dev@example.com").await;
    api.app(&key, "crashed").await;
    let store = &api.state.store;
    let app = store.all_apps().await.unwrap().pop().unwrap();
    let owner = app.owner.clone();
    // A crash after the record, before the provider finished: the record says provisioning.
    let interrupted = store
        .create_addon(&wharf_store::NewAddon {
            app_id: app.id,
            name: "postgresql-interrupted-12345".into(),
            service: "wharf-postgresql".into(),
            plan: "mini".into(),
            attachment_name: "DATABASE".into(),
        })
        .await
        .unwrap();
    // A crash after detaching, before the provider destroyed the resource.
    let doomed = store
        .create_addon(&wharf_store::NewAddon {
            app_id: app.id,
            name: "redis-doomed-12345".into(),
            service: "wharf-redis".into(),
            plan: "mini".into(),
            attachment_name: "REDIS".into(),
        })
        .await
        .unwrap();
    let provider = api.state.addons.provider("wharf-redis").unwrap().clone();
    let plan = provider.service().plan(None).unwrap().clone();
    let resource = wharf_addons::Resource { id: doomed.id };
    let made = provider
        .provision(resource, &plan, &Default::default())
        .await
        .unwrap();
    store
        .finish_provisioning(doomed.id, &made.state.to_string(), &made.config, &owner)
        .await
        .unwrap();
    store.begin_deprovisioning(doomed.id, &owner).await.unwrap();

    wharf_api::addons::reconcile(&api.state).await.unwrap();

    let vars = config(&api, &key, "crashed").await;
    assert!(vars["DATABASE_URL"]
        .as_str()
        .unwrap()
        .contains(&interrupted.id.simple().to_string()));
    assert!(vars.get("REDIS_URL").is_none());
    let release = newest_release(&api, &key, "crashed").await;
    assert_eq!(
        release["description"],
        "Attach DATABASE (@ref:postgresql-interrupted-12345)"
    );
    let addons = api
        .call("GET", "/apps/crashed/addons", Some(&key), None)
        .await;
    assert_eq!(addons.body.as_array().unwrap().len(), 1);
    assert_eq!(addons.body[0]["state"], "provisioned");
    assert!(store.addon_by_id(doomed.id).await.unwrap().is_none());
    // The destroyed add-on's Redis user is gone.
    let mut client = wharf_addons::resp::Connection::connect("127.0.0.1:6379")
        .await
        .unwrap();
    let user = made.config["URL"]
        .strip_prefix("redis://")
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let users = client.command(&["ACL", "USERS"]).await.unwrap();
    assert!(!format!("{users:?}").contains(&user));

    // Heroku's CLI resolves add-ons and attachments by name before acting on them.
    let resolved = api
        .call(
            "POST",
            "/actions/addons/resolve",
            Some(&key),
            Some(json!({"addon": "DATABASE", "app": "crashed", "addon_service": "heroku-postgresql"})),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{:?}", resolved.body);
    assert_eq!(resolved.body[0]["name"], "postgresql-interrupted-12345");
    let attachment = api
        .call(
            "POST",
            "/actions/addon-attachments/resolve",
            Some(&key),
            Some(json!({"addon_attachment": "DATABASE", "app": "crashed"})),
        )
        .await;
    assert_eq!(
        attachment.body[0]["addon"]["name"],
        "postgresql-interrupted-12345"
    );
    for body in [
        json!({"addon": "crashed::DATABASE", "app": null, "addon_service": null}),
        json!({"addon": "postgresql-interrupted-12345", "app": null}),
    ] {
        let resolved = api
            .call("POST", "/actions/addons/resolve", Some(&key), Some(body))
            .await;
        assert_eq!(resolved.body[0]["name"], "postgresql-interrupted-12345");
    }
    let none = api
        .call(
            "POST",
            "/actions/addons/resolve",
            Some(&key),
            Some(json!({"addon": "DATABASE", "addon_service": "heroku-redis"})),
        )
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let id = resolved.body[0]["id"].as_str().unwrap();
    let by_id = api
        .call("GET", &format!("/addons/{id}"), Some(&key), None)
        .await;
    assert_eq!(by_id.body["name"], "postgresql-interrupted-12345");
    assert_eq!(by_id.body["config_vars"], json!(["DATABASE_URL"]));
    let attachments = api
        .call(
            "GET",
            "/addons/postgresql-interrupted-12345/addon-attachments",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(attachments.body[0]["name"], "DATABASE");
    let all = api.call("GET", "/addons", Some(&key), None).await;
    assert_eq!(all.body.as_array().unwrap().len(), 1);
    assert_no_credentials(&all.body);
    let stranger = api.user("stranger@example.com").await;
    let hidden = api
        .call("GET", &format!("/addons/{id}"), Some(&stranger), None)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let deleted = api.call("DELETE", "/apps/crashed", Some(&key), None).await;
    assert_eq!(deleted.status, StatusCode::OK);
}
