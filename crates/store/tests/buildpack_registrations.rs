//! The store's registered buildpacks, on SQLite and PostgreSQL: a name is registered once,
//! read back with its directory and who registered it, listed by name, and unregistered once;
//! names are validated; the pending builds' sources are the ones still to be read.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use wharf_model::{Account, Email};
use wharf_store::{BuildOutcome, Store, StoreError};

contract!(
    registrations_are_unique_by_name,
    registrations_are_listed_and_unregistered_once,
    registration_names_are_validated,
    pending_build_sources_are_the_unfinished_ones,
);

async fn admin(store: &Store) -> Account {
    store
        .bootstrap_admin(&Email::parse("admin@example.com").unwrap(), "admin-hash")
        .await
        .unwrap()
        .unwrap()
}

async fn registrations_are_unique_by_name(store: &Store) {
    let admin = admin(store).await;
    assert_eq!(store.buildpack_registration("php").await.unwrap(), None);
    let registered = store
        .register_buildpack("php", "/opt/buildpacks/php", &admin)
        .await
        .unwrap();
    assert_eq!(registered.name, "php");
    assert_eq!(registered.dir, "/opt/buildpacks/php");
    assert_eq!(registered.created_by, admin);
    let found = store.buildpack_registration("php").await.unwrap();
    assert_eq!(found.as_ref(), Some(&registered));

    let again = store.register_buildpack("php", "/opt/other", &admin).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("registered already")),
        "{again:?}"
    );
    // The first registration stands.
    assert_eq!(
        store
            .buildpack_registration("php")
            .await
            .unwrap()
            .unwrap()
            .dir,
        "/opt/buildpacks/php"
    );
    // Names are exact: no case folding, no prefix matching.
    assert_eq!(store.buildpack_registration("g").await.unwrap(), None);
    assert_eq!(store.buildpack_registration("GO").await.unwrap(), None);
}

async fn registrations_are_listed_and_unregistered_once(store: &Store) {
    let admin = admin(store).await;
    assert!(store.buildpack_registrations().await.unwrap().is_empty());
    for (name, dir) in [
        ("rust", "/srv/rust"),
        ("clojure", "/srv/clj"),
        ("php", "/srv/php"),
    ] {
        store.register_buildpack(name, dir, &admin).await.unwrap();
    }
    let listed = store.buildpack_registrations().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["clojure", "php", "rust"]);
    assert_eq!(listed[1].dir, "/srv/php");

    let removed = store.unregister_buildpack("php").await.unwrap();
    assert_eq!(removed, listed[1]);
    assert_eq!(store.buildpack_registration("php").await.unwrap(), None);
    let twice = store.unregister_buildpack("php").await;
    assert!(
        matches!(&twice, Err(StoreError::NotFound(m)) if m.contains("php")),
        "{twice:?}"
    );
    let never = store.unregister_buildpack("/etc").await;
    assert!(matches!(never, Err(StoreError::NotFound(_))), "{never:?}");
    let names: Vec<String> = store
        .buildpack_registrations()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["clojure", "rust"]);
    // The name is free again.
    store
        .register_buildpack("php", "/srv/php2", &admin)
        .await
        .unwrap();
}

async fn registration_names_are_validated(store: &Store) {
    let admin = admin(store).await;
    for bad in ["python", "heroku/go", "/opt/go", "Go", "", ".."] {
        let refused = store.register_buildpack(bad, "/opt/go", &admin).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{bad:?}: {refused:?}"
        );
    }
    assert!(store.buildpack_registrations().await.unwrap().is_empty());
}

async fn pending_build_sources_are_the_unfinished_ones(store: &Store) {
    let (user, app) = support::owned_app(store, "builder").await;
    assert!(store.pending_build_sources().await.unwrap().is_empty());
    store
        .create_build(app.id, &user, Some("http://h/sources/aa"), None, "t1")
        .await
        .unwrap();
    let done = store
        .create_build(app.id, &user, Some("http://h/sources/bb"), None, "t2")
        .await
        .unwrap();
    // A push has no source URL.
    store
        .create_build(app.id, &user, None, Some("abc123"), "t3")
        .await
        .unwrap();
    store
        .finish_build(
            done.id,
            &BuildOutcome {
                status: wharf_model::BuildStatus::Failed,
                buildpacks: Vec::new(),
                slug_id: None,
                release_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.pending_build_sources().await.unwrap(),
        ["http://h/sources/aa"]
    );
    store.fail_interrupted_builds().await.unwrap();
    assert!(store.pending_build_sources().await.unwrap().is_empty());
}
