//! The store contract: every test here runs against SQLite and against PostgreSQL, and both
//! must pass. A backend is correct when it passes this suite.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::collections::BTreeMap;

use wharf_model::{
    Account, AppName, BuildStatus, ConfigChanges, DynoSize, Email, FormationUpdate, Quantity,
    Release, ReleaseStatus, ScaleError,
};
use wharf_store::{BuildOutcome, NewSlug, ReleaseOrder, ReleaseRange, Role, Store, StoreError};

contract!(
    bootstrap_creates_one_admin_once,
    accounts_are_unique_and_found_by_key_hash,
    a_new_app_has_an_initial_release,
    app_names_are_unique,
    apps_are_visible_to_owner_and_collaborators_only,
    config_changes_append_releases,
    rollback_copies_slug_and_config,
    only_succeeded_releases_can_be_rolled_back_to,
    release_ranges_page_both_ways,
    formation_follows_the_current_release,
    formation_batches_are_all_or_nothing,
    rename_and_maintenance,
    deleting_an_app_removes_everything,
    concurrent_config_changes_get_distinct_versions,
    ledger_property_holds,
    builds_are_recorded_and_finished_once,
    buildpack_lists_replace_whole,
    domains_are_unique_across_the_server,
    domains_use_the_apps_sni_endpoints,
    removing_an_sni_endpoint_leaves_its_domains,
    deleting_an_app_removes_its_domains_and_sni_endpoints,
    sessions_live_until_they_expire_or_close,
    app_summaries_match_the_single_reads,
);

async fn account(store: &Store, email: &str) -> Account {
    store
        .create_account(
            &Email::parse(email).unwrap(),
            false,
            &format!("hash-of-{email}"),
            "test",
        )
        .await
        .unwrap()
}

fn name(raw: &str) -> AppName {
    AppName::parse(raw).unwrap()
}

fn changes(pairs: &[(&str, Option<&str>)]) -> ConfigChanges {
    ConfigChanges::parse(pairs.iter().map(|(k, v)| (*k, v.map(str::to_owned)))).unwrap()
}

fn range(order: ReleaseOrder, limit: u32) -> ReleaseRange {
    ReleaseRange {
        start: None,
        start_exclusive: false,
        end: None,
        order,
        limit,
    }
}

async fn all_releases(store: &Store, app_id: uuid::Uuid) -> Vec<Release> {
    store
        .list_releases(app_id, &range(ReleaseOrder::Ascending, 1000))
        .await
        .unwrap()
}

async fn deploy(
    store: &Store,
    app_id: uuid::Uuid,
    types: &[(&str, &str)],
    user: &Account,
) -> Release {
    let slug = store
        .create_slug(
            app_id,
            NewSlug {
                process_types: types
                    .iter()
                    .map(|(t, c)| (t.to_string(), c.to_string()))
                    .collect(),
                stack: "wharf-24".into(),
                ..NewSlug::default()
            },
        )
        .await
        .unwrap();
    store
        .release_slug(app_id, slug.id, "Deploy", ReleaseStatus::Succeeded, user)
        .await
        .unwrap()
}

async fn bootstrap_creates_one_admin_once(store: &Store) {
    let email = Email::parse("admin@example.com").unwrap();
    assert!(!store.has_accounts().await.unwrap());
    let admin = store.bootstrap_admin(&email, "admin-hash").await.unwrap();
    let admin = admin.expect("a fresh store gets an admin");
    assert!(admin.admin);
    assert!(store.has_accounts().await.unwrap());
    assert_eq!(
        store.bootstrap_admin(&email, "other-hash").await.unwrap(),
        None
    );
    assert!(store.authenticate("other-hash").await.unwrap().is_none());
    let found = store.authenticate("admin-hash").await.unwrap().unwrap();
    assert_eq!(found.account, admin);
}

async fn accounts_are_unique_and_found_by_key_hash(store: &Store) {
    let alice = account(store, "alice@example.com").await;
    assert!(!alice.admin);
    let again = store
        .create_account(
            &Email::parse("ALICE@example.com").unwrap(),
            false,
            "h2",
            "x",
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(store.authenticate("h2").await.unwrap().is_none());
    let by_key = store
        .authenticate("hash-of-alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_key.account, alice);
    assert_eq!(
        store
            .account_by_email(&Email::parse("alice@example.com").unwrap())
            .await
            .unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.account_by_id(alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert!(store.authenticate("nope").await.unwrap().is_none());
    let bob = account(store, "bob@example.com").await;
    assert_eq!(store.all_accounts().await.unwrap(), [alice, bob]);
}

async fn a_new_app_has_an_initial_release(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("myapp"), &owner).await.unwrap();
    assert_eq!(app.owner, owner);
    let access = store.app_for(&owner, "myapp").await.unwrap().unwrap();
    assert_eq!(access.role, Role::Owner);
    assert_eq!(access.app.id, app.id);
    let by_id = store
        .app_for(&owner, &app.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.app.name.as_str(), "myapp");
    assert_eq!(access.app.slug_size, None);
    assert_eq!(access.app.repo_size, None);
    let releases = all_releases(store, app.id).await;
    assert_eq!(releases.len(), 1);
    let v1 = &releases[0];
    assert_eq!(
        (v1.version, v1.description.as_str()),
        (1, "Initial release")
    );
    assert!(v1.current);
    assert!(v1.config.is_empty());
    assert_eq!(v1.user, owner);
    assert_eq!(store.current_release(app.id).await.unwrap(), *v1);
}

async fn app_names_are_unique(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    store.create_app(&name("taken"), &owner).await.unwrap();
    let other = account(store, "other@example.com").await;
    let again = store.create_app(&name("taken"), &other).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(ref m)) if m.contains("taken")),
        "{again:?}"
    );
}

async fn apps_are_visible_to_owner_and_collaborators_only(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let friend = account(store, "friend@example.com").await;
    let stranger = account(store, "stranger@example.com").await;
    let app = store.create_app(&name("shared"), &owner).await.unwrap();
    store.create_app(&name("private"), &owner).await.unwrap();

    assert!(store.app_for(&friend, "shared").await.unwrap().is_none());
    let collaborator = store.add_collaborator(&app, &friend).await.unwrap();
    assert_eq!(collaborator.account, friend);
    let seen = store.app_for(&friend, "shared").await.unwrap().unwrap();
    assert_eq!(seen.role, Role::Collaborator);
    assert!(store.app_for(&friend, "private").await.unwrap().is_none());
    assert!(store.app_for(&stranger, "shared").await.unwrap().is_none());

    let names = |list: Vec<wharf_store::AppAccess>| {
        list.into_iter()
            .map(|a| a.app.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.list_apps(&owner).await.unwrap()),
        ["private", "shared"]
    );
    assert_eq!(names(store.list_apps(&friend).await.unwrap()), ["shared"]);
    assert!(store.list_apps(&stranger).await.unwrap().is_empty());

    assert!(matches!(
        store.add_collaborator(&app, &friend).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_collaborator(&app, &owner).await,
        Err(StoreError::Conflict(_))
    ));
    let listed = store.collaborators(app.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].account.email.as_str(), "friend@example.com");

    store.remove_collaborator(app.id, friend.id).await.unwrap();
    assert!(store.app_for(&friend, "shared").await.unwrap().is_none());
    assert!(matches!(
        store.remove_collaborator(app.id, friend.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn config_changes_append_releases(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("configured"), &owner).await.unwrap();
    let (config, release) = store
        .set_config(
            app.id,
            &changes(&[("FOO", Some("1")), ("BAR", Some("two"))]),
            &owner,
        )
        .await
        .unwrap();
    let v2 = release.expect("a change makes a release");
    assert_eq!(
        (v2.version, v2.description.as_str()),
        (2, "Set BAR, FOO config vars")
    );
    assert_eq!(config.get("FOO"), Some("1"));
    assert_eq!(v2.config, config);
    assert!(v2.current);

    let (_, none) = store
        .set_config(app.id, &changes(&[("FOO", Some("1"))]), &owner)
        .await
        .unwrap();
    assert!(none.is_none(), "setting the same value makes no release");

    let (config, v3) = store
        .set_config(app.id, &changes(&[("FOO", None)]), &owner)
        .await
        .unwrap();
    let v3 = v3.unwrap();
    assert_eq!(v3.description, "Remove FOO config vars");
    assert_eq!(config.get("FOO"), None);
    assert_eq!(config.get("BAR"), Some("two"));

    let releases = all_releases(store, app.id).await;
    assert_eq!(
        releases.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(releases[0].config.is_empty(), "v1 keeps the config it had");
    assert_eq!(
        releases[1].config.get("FOO"),
        Some("1"),
        "v2 keeps the config it had"
    );
    assert_eq!(releases.iter().filter(|r| r.current).count(), 1);
    assert!(releases[2].current);
    assert_eq!(
        store
            .release_by_version(app.id, 2)
            .await
            .unwrap()
            .unwrap()
            .id,
        releases[1].id
    );
    assert_eq!(
        store
            .release_by_id(app.id, releases[0].id)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert!(store.release_by_version(app.id, 9).await.unwrap().is_none());

    let too_big = "x".repeat(wharf_model::CONFIG_VARS_MAX_BYTES);
    let refused = store
        .set_config(app.id, &changes(&[("HUGE", Some(&too_big))]), &owner)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(
        all_releases(store, app.id).await.len(),
        3,
        "a refused change writes nothing"
    );
}

async fn rollback_copies_slug_and_config(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("rolling"), &owner).await.unwrap();
    store
        .set_config(app.id, &changes(&[("A", Some("1"))]), &owner)
        .await
        .unwrap();
    let v3 = deploy(store, app.id, &[("web", "serve")], &owner).await;
    store
        .set_config(app.id, &changes(&[("A", Some("2"))]), &owner)
        .await
        .unwrap();
    deploy(store, app.id, &[("web", "serve --new")], &owner).await;

    let rollback = store.rollback(app.id, v3.id, &owner).await.unwrap();
    assert_eq!(rollback.version, 6);
    assert_eq!(rollback.description, "Rollback to v3");
    assert_eq!(rollback.slug_id, v3.slug_id);
    assert_eq!(rollback.config.get("A"), Some("1"));
    assert!(rollback.current);
    let formation = store.formation(app.id).await.unwrap();
    assert_eq!(
        formation[0].command, "serve",
        "the formation runs v3's command again"
    );

    let unknown = store.rollback(app.id, uuid::Uuid::new_v4(), &owner).await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))));
}

async fn only_succeeded_releases_can_be_rolled_back_to(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("phased"), &owner).await.unwrap();
    let slug = store
        .create_slug(
            app.id,
            NewSlug {
                process_types: BTreeMap::from([
                    ("web".into(), "serve".into()),
                    ("release".into(), "migrate".into()),
                ]),
                stack: "wharf-24".into(),
                ..NewSlug::default()
            },
        )
        .await
        .unwrap();
    let pending = store
        .release_slug(app.id, slug.id, "Deploy", ReleaseStatus::Pending, &owner)
        .await
        .unwrap();
    assert!(!pending.current);
    assert_eq!(store.current_release(app.id).await.unwrap().version, 1);
    assert!(
        store.formation(app.id).await.unwrap().is_empty(),
        "not live yet"
    );

    store
        .finish_release(app.id, pending.id, ReleaseStatus::Failed)
        .await
        .unwrap();
    let failed = store
        .release_by_id(app.id, pending.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, ReleaseStatus::Failed);
    assert!(!failed.eligible_for_rollback());
    assert!(matches!(
        store.rollback(app.id, pending.id, &owner).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .finish_release(app.id, pending.id, ReleaseStatus::Succeeded)
            .await,
        Err(StoreError::Conflict(_))
    ));

    let second = store
        .release_slug(
            app.id,
            slug.id,
            "Deploy again",
            ReleaseStatus::Pending,
            &owner,
        )
        .await
        .unwrap();
    store
        .finish_release(app.id, second.id, ReleaseStatus::Succeeded)
        .await
        .unwrap();
    assert_eq!(store.current_release(app.id).await.unwrap().id, second.id);
    let types: Vec<_> = store
        .formation(app.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.process_type.to_string(), e.quantity))
        .collect();
    assert_eq!(
        types,
        [("web".to_string(), 1)],
        "the release phase is not a formation type"
    );
}

async fn release_ranges_page_both_ways(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("paged"), &owner).await.unwrap();
    for i in 0..6 {
        store
            .set_config(app.id, &changes(&[("N", Some(&i.to_string()))]), &owner)
            .await
            .unwrap();
    }
    let versions = |releases: Vec<Release>| releases.iter().map(|r| r.version).collect::<Vec<_>>();
    let page = |start, start_exclusive, end, order, limit| ReleaseRange {
        start,
        start_exclusive,
        end,
        order,
        limit,
    };
    let list =
        |r: ReleaseRange| async move { versions(store.list_releases(app.id, &r).await.unwrap()) };
    assert_eq!(
        list(page(None, false, None, ReleaseOrder::Descending, 3)).await,
        [7, 6, 5]
    );
    assert_eq!(
        list(page(Some(5), true, None, ReleaseOrder::Descending, 3)).await,
        [4, 3, 2]
    );
    assert_eq!(
        list(page(Some(5), false, None, ReleaseOrder::Descending, 2)).await,
        [5, 4]
    );
    assert_eq!(
        list(page(None, false, None, ReleaseOrder::Ascending, 2)).await,
        [1, 2]
    );
    assert_eq!(
        list(page(Some(2), true, Some(4), ReleaseOrder::Ascending, 10)).await,
        [3, 4]
    );
    assert_eq!(
        list(page(Some(6), false, Some(3), ReleaseOrder::Descending, 10)).await,
        [6, 5, 4, 3]
    );
    assert!(
        list(page(Some(1), true, None, ReleaseOrder::Descending, 10))
            .await
            .is_empty()
    );
}

async fn formation_follows_the_current_release(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("formed"), &owner).await.unwrap();
    assert!(store.formation(app.id).await.unwrap().is_empty());
    let none = store.update_formation(app.id, &[scale("web", "1")]).await;
    assert!(
        matches!(none, Err(StoreError::Scale(ScaleError::UnknownType { ref existing, .. })) if existing.is_empty()),
        "{none:?}"
    );

    deploy(
        store,
        app.id,
        &[("web", "gunicorn app"), ("worker", "celery")],
        &owner,
    )
    .await;
    let formation = store.formation(app.id).await.unwrap();
    let summary: Vec<_> = formation
        .iter()
        .map(|e| {
            (
                e.process_type.to_string(),
                e.quantity,
                e.size,
                e.command.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "web".to_string(),
                1,
                DynoSize::Basic,
                "gunicorn app".to_string()
            ),
            (
                "worker".to_string(),
                0,
                DynoSize::Basic,
                "celery".to_string()
            ),
        ]
    );

    let changed = store
        .update_formation(
            app.id,
            &[
                scale("web", "3"),
                FormationUpdate {
                    process_type: "worker".into(),
                    quantity: Some(Quantity::Relative(2)),
                    size: Some(DynoSize::Standard2X),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(changed.len(), 2);
    let formation = store.formation(app.id).await.unwrap();
    assert_eq!(formation[0].quantity, 3);
    assert_eq!(
        (formation[1].quantity, formation[1].size),
        (2, DynoSize::Standard2X)
    );

    // A deploy keeps the formation; a type that goes away is hidden, and comes back as it was.
    deploy(store, app.id, &[("web", "gunicorn app")], &owner).await;
    let formation = store.formation(app.id).await.unwrap();
    assert_eq!(formation.len(), 1);
    assert_eq!(formation[0].quantity, 3);
    let gone = store
        .update_formation(app.id, &[scale("worker", "1")])
        .await;
    assert!(matches!(gone, Err(StoreError::Scale(_))));
    deploy(
        store,
        app.id,
        &[("web", "gunicorn app"), ("worker", "celery")],
        &owner,
    )
    .await;
    assert_eq!(store.formation(app.id).await.unwrap()[1].quantity, 2);
}

fn scale(process_type: &str, quantity: &str) -> FormationUpdate {
    FormationUpdate {
        process_type: process_type.into(),
        quantity: Some(Quantity::parse(quantity).unwrap()),
        size: None,
    }
}

async fn formation_batches_are_all_or_nothing(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("batched"), &owner).await.unwrap();
    deploy(store, app.id, &[("web", "serve")], &owner).await;
    let refused = store
        .update_formation(app.id, &[scale("web", "5"), scale("clock", "1")])
        .await;
    assert!(matches!(refused, Err(StoreError::Scale(_))));
    assert_eq!(store.formation(app.id).await.unwrap()[0].quantity, 1);
}

async fn rename_and_maintenance(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("before"), &owner).await.unwrap();
    store.create_app(&name("occupied"), &owner).await.unwrap();
    store.update_app(app.id, None, Some(true)).await.unwrap();
    assert!(
        store
            .app_for(&owner, "before")
            .await
            .unwrap()
            .unwrap()
            .app
            .maintenance
    );
    store
        .update_app(app.id, Some(&name("after")), None)
        .await
        .unwrap();
    let renamed = store.app_for(&owner, "after").await.unwrap().unwrap().app;
    assert!(renamed.maintenance, "a rename keeps other fields");
    assert!(store.app_for(&owner, "before").await.unwrap().is_none());
    let clash = store
        .update_app(app.id, Some(&name("occupied")), None)
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))));
}

async fn deleting_an_app_removes_everything(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let friend = account(store, "friend@example.com").await;
    let app = store.create_app(&name("doomed"), &owner).await.unwrap();
    store.add_collaborator(&app, &friend).await.unwrap();
    deploy(store, app.id, &[("web", "serve")], &owner).await;
    store
        .set_config(app.id, &changes(&[("A", Some("1"))]), &owner)
        .await
        .unwrap();
    store.delete_app(app.id).await.unwrap();
    assert!(store.app_for(&owner, "doomed").await.unwrap().is_none());
    assert!(store.list_apps(&friend).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_app(app.id).await,
        Err(StoreError::NotFound(_))
    ));

    let reborn = store.create_app(&name("doomed"), &owner).await.unwrap();
    let releases = all_releases(store, reborn.id).await;
    assert_eq!(
        releases.len(),
        1,
        "a new app with the old name starts a new ledger"
    );
    assert!(store.formation(reborn.id).await.unwrap().is_empty());
}

async fn concurrent_config_changes_get_distinct_versions(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("contended"), &owner).await.unwrap();
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let (store, owner) = (store.clone(), owner.clone());
            tokio::spawn(async move {
                store
                    .set_config(app.id, &changes(&[(&format!("K{i}"), Some("v"))]), &owner)
                    .await
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let releases = all_releases(store, app.id).await;
    assert_eq!(
        releases.iter().map(|r| r.version).collect::<Vec<_>>(),
        (1..=17).collect::<Vec<_>>()
    );
    assert_eq!(
        releases.last().unwrap().config.len(),
        16,
        "no change was lost"
    );
}

/// Random sequences of ledger operations never leave a gap, a duplicate version, an edited
/// release or more than one current release.
async fn ledger_property_holds(store: &Store) {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Option<u8>),
        Rollback(usize),
        Deploy(bool),
    }
    let op = prop_oneof![
        (0u8..4, proptest::option::of(0u8..3)).prop_map(|(k, v)| Op::Set(k, v)),
        (0usize..20).prop_map(Op::Rollback),
        any::<bool>().prop_map(Op::Deploy),
    ];
    let owner = account(store, "owner@example.com").await;
    let handle = tokio::runtime::Handle::current();
    let cases = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(op, 1..12);
    tokio::task::block_in_place(|| {
        runner
            .run(&strategy, |ops| {
                let case = cases.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                handle.block_on(async {
                    let app = store
                        .create_app(&name(&format!("ledger-{case}")), &owner)
                        .await
                        .unwrap();
                    let mut seen: Vec<Release> = all_releases(store, app.id).await;
                    for op in ops {
                        match op {
                            Op::Set(key, value) => {
                                let key = format!("K{key}");
                                let value = value.map(|v| v.to_string());
                                store
                                    .set_config(
                                        app.id,
                                        &changes(&[(&key, value.as_deref())]),
                                        &owner,
                                    )
                                    .await
                                    .unwrap();
                            }
                            Op::Rollback(index) => {
                                let target = &seen[index % seen.len()];
                                store.rollback(app.id, target.id, &owner).await.unwrap();
                            }
                            Op::Deploy(with_worker) => {
                                let mut types = vec![("web", "serve")];
                                if with_worker {
                                    types.push(("worker", "work"));
                                }
                                deploy(store, app.id, &types, &owner).await;
                            }
                        }
                        let now = all_releases(store, app.id).await;
                        let versions: Vec<i64> = now.iter().map(|r| r.version).collect();
                        let expected: Vec<i64> = (1..=now.len() as i64).collect();
                        prop_assert_eq!(versions, expected);
                        for (before, after) in seen.iter().zip(&now) {
                            let mut before = before.clone();
                            before.current = after.current;
                            prop_assert_eq!(&before, after, "a past release changed");
                        }
                        prop_assert_eq!(now.iter().filter(|r| r.current).count(), 1);
                        prop_assert!(now.last().unwrap().current);
                        seen = now;
                    }
                    Ok(())
                })
            })
            .unwrap();
    });
}

async fn builds_are_recorded_and_finished_once(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("built"), &owner).await.unwrap();
    let first = store
        .create_build(app.id, &owner, None, Some("abc1234"), "token-1")
        .await
        .unwrap();
    assert_eq!(first.status, BuildStatus::Pending);
    let second = store
        .create_build(app.id, &owner, Some("http://x/sources/1"), None, "token-2")
        .await
        .unwrap();
    let release = deploy(store, app.id, &[("web", "serve")], &owner).await;
    let outcome = BuildOutcome {
        status: BuildStatus::Succeeded,
        buildpacks: vec!["python".into()],
        slug_id: release.slug_id,
        release_id: Some(release.id),
    };
    store.finish_build(first.id, &outcome).await.unwrap();
    assert!(matches!(
        store.finish_build(first.id, &outcome).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store.build(app.id, first.id).await.unwrap().unwrap();
    assert_eq!(found.status, BuildStatus::Succeeded);
    assert_eq!(found.buildpacks, ["python"]);
    assert_eq!(found.release_id, Some(release.id));
    assert_eq!(found.source_version.as_deref(), Some("abc1234"));
    assert_eq!(
        store
            .build_by_output_token("token-2")
            .await
            .unwrap()
            .unwrap()
            .id,
        second.id
    );
    assert!(store.build_by_output_token("nope").await.unwrap().is_none());

    assert_eq!(store.fail_interrupted_builds().await.unwrap(), 1);
    let interrupted = store.build(app.id, second.id).await.unwrap().unwrap();
    assert_eq!(interrupted.status, BuildStatus::Failed);
    let listed = store.builds(app.id).await.unwrap();
    assert_eq!(listed.len(), 2);

    store.set_repo_size(app.id, 4096).await.unwrap();
    let app_now = store.app_for(&owner, "built").await.unwrap().unwrap().app;
    assert_eq!(app_now.repo_size, Some(4096));
    store.delete_app(app.id).await.unwrap();
}

async fn buildpack_lists_replace_whole(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("packs"), &owner).await.unwrap();
    assert!(store.buildpacks(app.id).await.unwrap().is_empty());
    let list = vec!["nodejs".to_string(), "/opt/buildpacks/custom".into()];
    store.set_buildpacks(app.id, &list).await.unwrap();
    assert_eq!(store.buildpacks(app.id).await.unwrap(), list);
    store.set_buildpacks(app.id, &list[1..]).await.unwrap();
    assert_eq!(store.buildpacks(app.id).await.unwrap(), &list[1..]);
    store.set_buildpacks(app.id, &[]).await.unwrap();
    assert!(store.buildpacks(app.id).await.unwrap().is_empty());
}

fn hostname(raw: &str) -> wharf_model::Hostname {
    wharf_model::Hostname::parse(raw, "wharf.test").unwrap()
}

async fn domains_are_unique_across_the_server(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let other = account(store, "other@example.com").await;
    let app = store.create_app(&name("shop"), &owner).await.unwrap();
    let rival = store.create_app(&name("rival"), &other).await.unwrap();

    let www = store
        .add_domain(app.id, &hostname("www.example.com"), None)
        .await
        .unwrap();
    assert_eq!(www.hostname, "www.example.com");
    assert_eq!(www.app_id, app.id);
    assert_eq!(www.sni_endpoint, None);
    store
        .add_domain(app.id, &hostname("*.example.org"), None)
        .await
        .unwrap();

    match store
        .add_domain(app.id, &hostname("www.example.com"), None)
        .await
    {
        Err(StoreError::Conflict(message)) => assert!(message.contains("this app"), "{message}"),
        other => panic!("adding a domain twice: {other:?}"),
    }
    match store
        .add_domain(rival.id, &hostname("WWW.example.com"), None)
        .await
    {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("another app"), "{message}");
            assert!(!message.contains("shop"), "names the other app: {message}");
        }
        other => panic!("adding another app's domain: {other:?}"),
    }

    let listed = store.domains(app.id).await.unwrap();
    let hostnames: Vec<&str> = listed.iter().map(|d| d.hostname.as_str()).collect();
    assert_eq!(hostnames, ["www.example.com", "*.example.org"]);
    assert!(store.domains(rival.id).await.unwrap().is_empty());

    let by_name = store.domain(app.id, "WWW.EXAMPLE.COM").await.unwrap();
    assert_eq!(by_name.as_ref(), Some(&www));
    let by_id = store.domain(app.id, &www.id.to_string()).await.unwrap();
    assert_eq!(by_id.as_ref(), Some(&www));
    assert_eq!(
        store.domain(rival.id, "www.example.com").await.unwrap(),
        None
    );

    assert!(matches!(
        store.remove_domain(rival.id, www.id).await,
        Err(StoreError::NotFound(_))
    ));
    store.remove_domain(app.id, www.id).await.unwrap();
    assert!(matches!(
        store.remove_domain(app.id, www.id).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .add_domain(rival.id, &hostname("www.example.com"), None)
        .await
        .unwrap();

    let routes = store.all_domains().await.unwrap();
    assert_eq!(
        routes,
        [
            wharf_store::DomainRoute {
                hostname: "*.example.org".into(),
                app_id: app.id,
                sni_endpoint_id: None,
            },
            wharf_store::DomainRoute {
                hostname: "www.example.com".into(),
                app_id: rival.id,
                sni_endpoint_id: None,
            },
        ]
    );
}

async fn domains_use_the_apps_sni_endpoints(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("shop"), &owner).await.unwrap();
    let rival = store.create_app(&name("rival"), &owner).await.unwrap();
    let endpoint = store
        .add_sni_endpoint(app.id, "tokyo-00001", "CHAIN", "KEY")
        .await
        .unwrap();
    assert_eq!(endpoint.name, "tokyo-00001");
    assert!(matches!(
        store
            .add_sni_endpoint(rival.id, "tokyo-00001", "CHAIN", "KEY")
            .await,
        Err(StoreError::Conflict(_))
    ));
    let foreign = store
        .add_sni_endpoint(rival.id, "osaka-00002", "OTHER", "KEY2")
        .await
        .unwrap();

    let www = store
        .add_domain(app.id, &hostname("www.example.com"), Some(endpoint.id))
        .await
        .unwrap();
    assert_eq!(
        www.sni_endpoint,
        Some(wharf_model::SniEndpointRef {
            id: endpoint.id,
            name: "tokyo-00001".into()
        })
    );
    assert!(matches!(
        store
            .add_domain(app.id, &hostname("api.example.com"), Some(foreign.id))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let api = store
        .add_domain(app.id, &hostname("api.example.com"), None)
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_domain_sni_endpoint(app.id, api.id, Some(foreign.id))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let api = store
        .set_domain_sni_endpoint(app.id, api.id, Some(endpoint.id))
        .await
        .unwrap();
    assert_eq!(api.sni_endpoint.as_ref().map(|e| e.id), Some(endpoint.id));

    let listed = store.sni_endpoints(app.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].domains, ["api.example.com", "www.example.com"]);
    assert_eq!(listed[0].private_key, "KEY");
    let found = store
        .sni_endpoint(app.id, "tokyo-00001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, endpoint.id);
    let found = store
        .sni_endpoint(app.id, &endpoint.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name, "tokyo-00001");
    assert_eq!(
        store.sni_endpoint(app.id, "osaka-00002").await.unwrap(),
        None
    );

    store
        .update_sni_endpoint(app.id, endpoint.id, "NEW CHAIN", "NEW KEY")
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_sni_endpoint(rival.id, endpoint.id, "X", "Y")
            .await,
        Err(StoreError::NotFound(_))
    ));
    let certificates = store.all_sni_endpoints().await.unwrap();
    assert_eq!(certificates.len(), 2);
    let replaced = certificates.iter().find(|c| c.id == endpoint.id).unwrap();
    assert_eq!(replaced.app_id, app.id);
    assert_eq!(replaced.certificate_chain, "NEW CHAIN");
    assert_eq!(replaced.private_key, "NEW KEY");
    assert!(replaced.updated_at > endpoint.updated_at);

    let routes = store.all_domains().await.unwrap();
    assert!(routes
        .iter()
        .all(|route| route.sni_endpoint_id == Some(endpoint.id)));
}

async fn removing_an_sni_endpoint_leaves_its_domains(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("shop"), &owner).await.unwrap();
    let endpoint = store
        .add_sni_endpoint(app.id, "kyoto-12345", "CHAIN", "KEY")
        .await
        .unwrap();
    let www = store
        .add_domain(app.id, &hostname("www.example.com"), Some(endpoint.id))
        .await
        .unwrap();
    store
        .remove_sni_endpoint(app.id, endpoint.id)
        .await
        .unwrap();
    assert!(matches!(
        store.remove_sni_endpoint(app.id, endpoint.id).await,
        Err(StoreError::NotFound(_))
    ));
    let after = store
        .domain(app.id, "www.example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.id, www.id);
    assert_eq!(after.sni_endpoint, None);
    assert!(store.sni_endpoints(app.id).await.unwrap().is_empty());
    assert!(store.all_sni_endpoints().await.unwrap().is_empty());
}

async fn deleting_an_app_removes_its_domains_and_sni_endpoints(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let app = store.create_app(&name("doomed"), &owner).await.unwrap();
    let endpoint = store
        .add_sni_endpoint(app.id, "nara-00007", "CHAIN", "KEY")
        .await
        .unwrap();
    store
        .add_domain(app.id, &hostname("www.example.com"), Some(endpoint.id))
        .await
        .unwrap();
    store.delete_app(app.id).await.unwrap();
    assert!(store.all_domains().await.unwrap().is_empty());
    assert!(store.all_sni_endpoints().await.unwrap().is_empty());

    let reborn = store.create_app(&name("doomed"), &owner).await.unwrap();
    store
        .add_domain(reborn.id, &hostname("www.example.com"), None)
        .await
        .unwrap();
    store
        .add_sni_endpoint(reborn.id, "nara-00007", "CHAIN", "KEY")
        .await
        .unwrap();
}

async fn sessions_live_until_they_expire_or_close(store: &Store) {
    let alice = account(store, "alice@example.com").await;
    let key = store
        .authenticate("hash-of-alice@example.com")
        .await
        .unwrap()
        .unwrap();
    let hour = time::Duration::hours(1);
    let later = time::OffsetDateTime::now_utc() + hour;
    store
        .open_session(key.key_id, "live", "csrf-1", later)
        .await
        .unwrap();
    store
        .open_session(key.key_id, "old", "csrf-2", later - hour - hour)
        .await
        .unwrap();
    let live = store.session("live").await.unwrap().unwrap();
    assert_eq!(live.caller.account, alice);
    assert_eq!(live.caller.key_id, key.key_id);
    assert_eq!(live.csrf_token, "csrf-1");
    // Stored with microseconds, read back to the second at least.
    assert!((live.expires_at - later).abs() < time::Duration::seconds(1));
    assert!(store.session("old").await.unwrap().is_none(), "expired");
    assert!(store.session("csrf-1").await.unwrap().is_none());
    store.close_session("live").await.unwrap();
    assert!(store.session("live").await.unwrap().is_none(), "closed");
    store.close_session("live").await.unwrap();
}

async fn app_summaries_match_the_single_reads(store: &Store) {
    let owner = account(store, "owner@example.com").await;
    let friend = account(store, "friend@example.com").await;
    let deployed = store.create_app(&name("deployed"), &owner).await.unwrap();
    let fresh = store.create_app(&name("fresh"), &owner).await.unwrap();
    store.create_app(&name("elsewhere"), &friend).await.unwrap();
    deploy(
        store,
        deployed.id,
        &[("web", "serve"), ("worker", "work"), ("release", "migrate")],
        &owner,
    )
    .await;
    store
        .update_formation(deployed.id, &[scale("web", "3")])
        .await
        .unwrap();
    store.add_collaborator(&fresh, &friend).await.unwrap();

    let summaries = store.app_summaries(&owner).await.unwrap();
    let names: Vec<_> = summaries
        .iter()
        .map(|s| s.access.app.name.to_string())
        .collect();
    assert_eq!(names, ["deployed", "fresh"]);
    for summary in &summaries {
        let app_id = summary.access.app.id;
        assert_eq!(summary.formation, store.formation(app_id).await.unwrap());
        let current = store.current_release(app_id).await.unwrap();
        assert_eq!(summary.release.version, current.version);
        assert_eq!(summary.release.description, current.description);
        assert_eq!(summary.release.created_at, current.created_at);
    }
    let deployed = &summaries[0];
    let quantities: Vec<_> = deployed
        .formation
        .iter()
        .map(|e| (e.process_type.to_string(), e.quantity))
        .collect();
    assert_eq!(quantities, [("web".into(), 3), ("worker".into(), 0)]);
    assert_eq!(deployed.release.version, 2);
    assert!(summaries[1].formation.is_empty());

    let theirs: Vec<_> = store
        .app_summaries(&friend)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.access.app.name.to_string(), s.access.role))
        .collect();
    assert_eq!(
        theirs,
        [
            ("elsewhere".to_owned(), Role::Owner),
            ("fresh".to_owned(), Role::Collaborator)
        ]
    );
}
