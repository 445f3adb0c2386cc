//! The store source against a real SQLite store: with a host, each process type's numbers are
//! the slots placed on that host alone (within the quantity); without one, the whole
//! formation; the slug's stack travels with the release.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use time::macros::datetime;
use wharf_model::{
    Account, AppName, DynoSize, Email, FormationUpdate, HostName, Quantity, ReleaseStatus,
};
use wharf_store::NewSlug;

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    owner: Account,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/wharf.db", dir.path().display()))
            .await
            .unwrap();
        let owner = store
            .create_account(
                &Email::parse("owner@example.com").unwrap(),
                false,
                "hash",
                "t",
            )
            .await
            .unwrap();
        Fixture { dir, store, owner }
    }

    /// An app released with a slug of `stack` defining `formation`'s types, scaled to it.
    async fn app(&self, name: &str, stack: &str, formation: &[(&str, u32)]) -> Uuid {
        let store = &self.store;
        let app = store
            .create_app(&AppName::parse(name).unwrap(), &self.owner)
            .await
            .unwrap();
        let slug = store
            .create_slug(
                app.id,
                NewSlug {
                    process_types: formation
                        .iter()
                        .map(|(t, _)| (t.to_string(), format!("run-{t}")))
                        .collect(),
                    stack: stack.to_owned(),
                    ..NewSlug::default()
                },
            )
            .await
            .unwrap();
        store
            .release_slug(
                app.id,
                slug.id,
                "Deploy",
                ReleaseStatus::Succeeded,
                &self.owner,
            )
            .await
            .unwrap();
        let updates: Vec<FormationUpdate> = formation
            .iter()
            .map(|(t, quantity)| FormationUpdate {
                process_type: (*t).into(),
                quantity: Some(Quantity::parse(&quantity.to_string()).unwrap()),
                size: None,
            })
            .collect();
        store.update_formation(app.id, &updates).await.unwrap();
        app.id
    }

    async fn host(&self, name: &str) -> Uuid {
        let now = datetime!(2026-12-06 12:00 UTC);
        let hash = format!("hash-{name}");
        let name = HostName::parse(name).unwrap();
        self.store.add_host(&name, &hash, now).await.unwrap().id
    }
}

/// Per app name, per process type, the numbers that run.
type Numbers = BTreeMap<String, BTreeMap<String, BTreeSet<u32>>>;

async fn numbers(store: &Store, host: Option<Uuid>, apps: Option<&HashSet<Uuid>>) -> Numbers {
    let source = StoreSource {
        store: store.clone(),
        host,
    };
    let read = source.read(apps, &HashSet::new()).await.unwrap();
    assert_eq!(
        read.scope,
        read.desired.apps.keys().copied().collect::<HashSet<_>>()
    );
    read.desired
        .apps
        .values()
        .map(|app| {
            let formation = app
                .formation
                .iter()
                .map(|(t, p)| (t.clone(), p.numbers.clone()))
                .collect();
            (app.name.clone(), formation)
        })
        .collect()
}

/// One app's process types and their numbers, as a test writes them.
type Formation<'a> = &'a [(&'a str, &'a [u32])];

fn expected(apps: &[(&str, Formation<'_>)]) -> Numbers {
    apps.iter()
        .map(|(app, types)| {
            let formation = types
                .iter()
                .map(|(t, numbers)| (t.to_string(), numbers.iter().copied().collect()))
                .collect();
            (app.to_string(), formation)
        })
        .collect()
}

#[tokio::test]
async fn a_host_runs_the_numbers_placed_on_it() {
    let fixture = Fixture::new().await;
    let store = &fixture.store;
    let spread = fixture
        .app("spread", "debian-13", &[("web", 3), ("worker", 2)])
        .await;
    let elsewhere = fixture.app("elsewhere", "debian-12", &[("web", 1)]).await;
    // A server no host joined runs every formation whole.
    assert_eq!(
        numbers(store, None, None).await,
        expected(&[
            ("elsewhere", &[("web", &[1])]),
            ("spread", &[("web", &[1, 2, 3]), ("worker", &[1, 2])]),
        ])
    );
    let (h1, h2) = (fixture.host("h1").await, fixture.host("h2").await);
    let slot = |app: Uuid, process_type: &str, number: u32| Slot {
        app,
        process_type: process_type.to_owned(),
        number,
    };
    let on = |host: Uuid| Placed {
        host,
        memory_mb: DynoSize::Basic.memory_mb(),
    };
    let placements = BTreeMap::from([
        (slot(spread, "web", 1), on(h2)),
        (slot(spread, "web", 2), on(h1)),
        (slot(spread, "web", 3), on(h1)),
        // Scaled down to 3 since the scheduler's last pass: not run.
        (slot(spread, "web", 4), on(h1)),
        (slot(spread, "worker", 1), on(h2)),
        (slot(spread, "worker", 2), on(h2)),
        (slot(elsewhere, "web", 1), on(h2)),
    ]);
    store
        .set_placements(&placements, datetime!(2026-12-06 12:00 UTC))
        .await
        .unwrap();

    // An app with nothing here is read all the same: its dynos here stop.
    assert_eq!(
        numbers(store, Some(h1), None).await,
        expected(&[
            ("elsewhere", &[("web", &[])]),
            ("spread", &[("web", &[2, 3]), ("worker", &[])]),
        ])
    );
    assert_eq!(
        numbers(store, Some(h2), None).await,
        expected(&[
            ("elsewhere", &[("web", &[1])]),
            ("spread", &[("web", &[1]), ("worker", &[1, 2])]),
        ])
    );
    let only_spread = HashSet::from([spread]);
    assert_eq!(
        numbers(store, Some(h1), Some(&only_spread)).await,
        expected(&[("spread", &[("web", &[2, 3]), ("worker", &[])])])
    );
    // Without a host (the server's own manager), nothing runs once hosts joined: every dyno
    // runs on a host.
    assert_eq!(
        numbers(store, None, None).await,
        expected(&[
            ("elsewhere", &[("web", &[])]),
            ("spread", &[("web", &[]), ("worker", &[])]),
        ])
    );
    // A host with nothing placed on it runs nothing.
    let h3 = fixture.host("h3").await;
    assert_eq!(
        numbers(store, Some(h3), None).await,
        expected(&[
            ("elsewhere", &[("web", &[])]),
            ("spread", &[("web", &[]), ("worker", &[])]),
        ])
    );
}

#[tokio::test]
async fn the_release_carries_its_slugs_stack_and_gone_apps_come_into_scope() {
    let fixture = Fixture::new().await;
    let app = fixture.app("stacked", "debian-13", &[("web", 1)]).await;
    let source = StoreSource {
        store: fixture.store.clone(),
        host: None,
    };
    let gone = Uuid::from_u128(7);
    let read = source
        .read(None, &HashSet::from([app, gone]))
        .await
        .unwrap();
    assert_eq!(read.desired.apps[&app].release.stack, "debian-13");
    assert_eq!(read.scope, HashSet::from([app, gone]));
    assert_eq!(
        source.app_names().await.unwrap(),
        HashMap::from([(app, "stacked".to_owned())])
    );
}

#[tokio::test]
async fn the_store_source_has_every_slug_already() {
    let fixture = Fixture::new().await;
    let source = StoreSource {
        store: fixture.store.clone(),
        host: None,
    };
    let path = fixture.dir.path().join("slug.tar.zst");
    let slug = Uuid::from_u128(3);
    let missing = source.fetch_slug(Uuid::from_u128(1), slug, &path).await;
    assert!(missing.is_err());
    // Server path: the test's own temporary directory.
    std::fs::write(&path, b"packed").unwrap();
    source
        .fetch_slug(Uuid::from_u128(1), slug, &path)
        .await
        .unwrap();
    // A directory is not a packed slug.
    let dir = fixture.dir.path().join("dir");
    // Server path: as above.
    std::fs::create_dir(&dir).unwrap();
    assert!(source
        .fetch_slug(Uuid::from_u128(1), slug, &dir)
        .await
        .is_err());
}
