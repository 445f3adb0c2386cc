//! The store's add-on contract, on SQLite and PostgreSQL: recording before provisioning,
//! attaching with config vars and releases, sharing, rotating, and destroying.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::collections::BTreeMap;

use wharf_model::{AddonState, App, AppName, ConfigChanges};
use wharf_store::{NewAddon, Store, StoreError};

contract!(
    provisioning_is_recorded_first_and_finished_with_a_release,
    attachment_names_and_url_vars_are_not_taken_twice,
    sharing_rotating_and_destroying,
    deleting_an_app_detaches_it,
);

fn new_addon(app: &App, name: &str, attachment: &str) -> NewAddon {
    NewAddon {
        app_id: app.id,
        name: name.to_owned(),
        service: "wharf-postgresql".to_owned(),
        plan: "mini".to_owned(),
        attachment_name: attachment.to_owned(),
    }
}

fn url(value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("URL".to_owned(), value.to_owned())])
}

async fn config(store: &Store, app: &App) -> BTreeMap<String, String> {
    store
        .current_release(app.id)
        .await
        .unwrap()
        .config
        .as_map()
        .clone()
}

async fn provisioning_is_recorded_first_and_finished_with_a_release(store: &Store) {
    let (user, app) = support::owned_app(store, "pg-app").await;
    let addon = store
        .create_addon(&new_addon(&app, "postgresql-round-12345", "DATABASE"))
        .await
        .unwrap();
    assert_eq!(addon.state, AddonState::Provisioning);
    assert_eq!(store.list_addons(app.id).await.unwrap().len(), 1);
    assert!(store.list_attachments(app.id).await.unwrap().is_empty());
    assert!(!config(store, &app).await.contains_key("DATABASE_URL"));

    let (addon, release) = store
        .finish_provisioning(addon.id, r#"{"generation":1}"#, &url("postgres://x"), &user)
        .await
        .unwrap();
    let release = release.unwrap();
    assert_eq!(addon.state, AddonState::Provisioned);
    assert_eq!(
        release.description,
        "Attach DATABASE (@ref:postgresql-round-12345)"
    );
    assert_eq!(release.addon_plan_names, vec!["wharf-postgresql:mini"]);
    assert_eq!(config(store, &app).await["DATABASE_URL"], "postgres://x");
    let attachments = store.list_attachments(app.id).await.unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].name, "DATABASE");
    assert_eq!(attachments[0].addon_name, "postgresql-round-12345");

    // A retry finds it finished and makes no second release.
    let (_, again) = store
        .finish_provisioning(addon.id, r#"{"generation":1}"#, &url("postgres://x"), &user)
        .await
        .unwrap();
    assert!(again.is_none());
    for name in ["postgresql-round-12345", "DATABASE", "database"] {
        let found = store.find_addon(app.id, name).await.unwrap().unwrap();
        assert_eq!(found.id, addon.id, "{name}");
    }
    assert!(store.find_addon(app.id, "nope").await.unwrap().is_none());

    // A failed provisioning is forgotten whole.
    let failed = store
        .create_addon(&new_addon(&app, "postgresql-flat-12345", "OTHER"))
        .await
        .unwrap();
    store.forget_addon(failed.id).await.unwrap();
    assert_eq!(store.list_addons(app.id).await.unwrap().len(), 1);
}

async fn attachment_names_and_url_vars_are_not_taken_twice(store: &Store) {
    let (user, app) = support::owned_app(store, "names-app").await;
    let first = store
        .create_addon(&new_addon(&app, "postgresql-round-1", "DATABASE"))
        .await
        .unwrap();
    // Taken while still provisioning, too.
    let taken = store
        .create_addon(&new_addon(&app, "postgresql-round-2", "DATABASE"))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    store
        .finish_provisioning(first.id, "{}", &url("postgres://1"), &user)
        .await
        .unwrap();
    let taken = store
        .create_addon(&new_addon(&app, "postgresql-round-2", "DATABASE"))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let same_name = store
        .create_addon(&new_addon(&app, "postgresql-round-1", "OTHER"))
        .await;
    assert!(matches!(same_name, Err(StoreError::Conflict(_))));
    store
        .set_config(
            app.id,
            &ConfigChanges::parse([("CACHE_URL", Some("redis://mine".to_owned()))]).unwrap(),
            &user,
        )
        .await
        .unwrap();
    let var_set = store
        .create_addon(&new_addon(&app, "redis-round-3", "CACHE"))
        .await;
    assert!(
        matches!(&var_set, Err(StoreError::Conflict(m)) if m.contains("CACHE_URL")),
        "{var_set:?}"
    );
}

async fn sharing_rotating_and_destroying(store: &Store) {
    let (user, app) = support::owned_app(store, "owner-app").await;
    let other = store
        .create_app(&AppName::parse("other-app").unwrap(), &user)
        .await
        .unwrap();
    let addon = store
        .create_addon(&new_addon(&app, "postgresql-deep-12345", "DATABASE"))
        .await
        .unwrap();
    store
        .finish_provisioning(
            addon.id,
            r#"{"generation":1}"#,
            &url("postgres://old"),
            &user,
        )
        .await
        .unwrap();

    let (attachment, release) = store
        .attach_addon(addon.id, other.id, "SHARED", &user)
        .await
        .unwrap();
    assert_eq!(attachment.app_name, "other-app");
    assert_eq!(attachment.addon_app_name, "owner-app");
    assert_eq!(release.addon_plan_names, vec!["wharf-postgresql:mini"]);
    assert_eq!(config(store, &other).await["SHARED_URL"], "postgres://old");
    assert_eq!(store.list_addons(other.id).await.unwrap().len(), 1);
    assert!(matches!(
        store
            .attach_addon(addon.id, other.id, "SHARED", &user)
            .await,
        Err(StoreError::Conflict(_))
    ));

    let releases = store
        .rotate_addon(
            addon.id,
            r#"{"generation":2}"#,
            &url("postgres://new"),
            &user,
        )
        .await
        .unwrap();
    assert_eq!(releases.len(), 2);
    assert_eq!(config(store, &app).await["DATABASE_URL"], "postgres://new");
    assert_eq!(config(store, &other).await["SHARED_URL"], "postgres://new");
    let stored = store.addon_by_id(addon.id).await.unwrap().unwrap();
    assert_eq!(stored.provider_state, r#"{"generation":2}"#);

    // A rollback to before the rotation keeps the add-ons' current credentials.
    let before = store.release_by_version(app.id, 2).await.unwrap().unwrap();
    assert_eq!(before.config.get("DATABASE_URL"), Some("postgres://old"));
    let rollback = store.rollback(app.id, before.id, &user).await.unwrap();
    assert_eq!(rollback.config.get("DATABASE_URL"), Some("postgres://new"));
    assert_eq!(rollback.addon_plan_names, vec!["wharf-postgresql:mini"]);

    let (_, detached) = store.detach_addon(attachment.id, &user).await.unwrap();
    assert_eq!(
        detached.description,
        "Detach SHARED (@ref:postgresql-deep-12345)"
    );
    assert!(detached.addon_plan_names.is_empty());
    assert!(!config(store, &other).await.contains_key("SHARED_URL"));
    let last = store.list_attachments(app.id).await.unwrap().pop().unwrap();
    assert!(matches!(
        store.detach_addon(last.id, &user).await,
        Err(StoreError::Conflict(_))
    ));

    let releases = store.begin_deprovisioning(addon.id, &user).await.unwrap();
    assert_eq!(releases.len(), 1);
    assert!(!config(store, &app).await.contains_key("DATABASE_URL"));
    let stored = store.addon_by_id(addon.id).await.unwrap().unwrap();
    assert_eq!(stored.state, AddonState::Deprovisioning);
    store.forget_addon(addon.id).await.unwrap();
    assert!(store.list_addons(app.id).await.unwrap().is_empty());
}

async fn deleting_an_app_detaches_it(store: &Store) {
    let (user, app) = support::owned_app(store, "billing-app").await;
    let other = store
        .create_app(&AppName::parse("sharing-app").unwrap(), &user)
        .await
        .unwrap();
    let addon = store
        .create_addon(&new_addon(&app, "postgresql-deep-1", "DATABASE"))
        .await
        .unwrap();
    store
        .finish_provisioning(addon.id, "{}", &url("postgres://x"), &user)
        .await
        .unwrap();
    store
        .attach_addon(addon.id, other.id, "DATABASE", &user)
        .await
        .unwrap();
    store.delete_app(other.id).await.unwrap();
    assert_eq!(store.addon_attachments(addon.id).await.unwrap().len(), 1);
    assert_eq!(
        store
            .attachments_for_account(&user)
            .await
            .unwrap()
            .iter()
            .map(|t| t.app_name.as_str())
            .collect::<Vec<_>>(),
        vec!["billing-app"]
    );
}
