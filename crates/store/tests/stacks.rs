//! Apps' stacks, on SQLite and PostgreSQL: a new app builds on the default stack, `stack:set`
//! changes the next build's stack and not the live release's, a deploy's slug gives the app
//! its stack, and a rollback brings back the stack of the slug it rolls back to.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use wharf_model::{Account, AppName, Email, ReleaseStatus, StackName};
use wharf_store::{NewSlug, Store, StoreError};

contract!(
    a_new_app_builds_on_the_default_stack,
    build_stack_is_set_per_app,
    the_live_stack_is_the_current_slugs,
);

async fn owner(store: &Store) -> Account {
    store
        .create_account(
            &Email::parse("owner@example.com").unwrap(),
            false,
            "owner-hash",
            "test",
        )
        .await
        .unwrap()
}

async fn deploy_on(
    store: &Store,
    app_id: uuid::Uuid,
    stack: StackName,
    user: &Account,
) -> uuid::Uuid {
    let slug = store
        .create_slug(
            app_id,
            NewSlug {
                stack: stack.as_str().into(),
                ..NewSlug::default()
            },
        )
        .await
        .unwrap();
    store
        .release_slug(app_id, slug.id, "Deploy", ReleaseStatus::Succeeded, user)
        .await
        .unwrap()
        .id
}

async fn a_new_app_builds_on_the_default_stack(store: &Store) {
    let owner = owner(store).await;
    let app = store
        .create_app(&AppName::parse("fresh").unwrap(), &owner)
        .await
        .unwrap();
    assert_eq!(app.build_stack, StackName::DEFAULT);
    assert_eq!(app.release_stack, None);
    let read = store.app_for(&owner, "fresh").await.unwrap().unwrap().app;
    assert_eq!(read.build_stack, StackName::DEFAULT);
    assert_eq!(read.release_stack, None, "the initial release has no slug");
}

async fn build_stack_is_set_per_app(store: &Store) {
    let owner = owner(store).await;
    let moving = store
        .create_app(&AppName::parse("moving").unwrap(), &owner)
        .await
        .unwrap();
    let staying = store
        .create_app(&AppName::parse("staying").unwrap(), &owner)
        .await
        .unwrap();
    assert_eq!(staying.build_stack, StackName::Debian12);
    store
        .set_build_stack(moving.id, StackName::Debian13)
        .await
        .unwrap();
    // Idempotent.
    store
        .set_build_stack(moving.id, StackName::Debian13)
        .await
        .unwrap();
    let read = |name: &'static str| {
        let owner = owner.clone();
        async move { store.app_for(&owner, name).await.unwrap().unwrap().app }
    };
    assert_eq!(read("moving").await.build_stack, StackName::Debian13);
    assert_eq!(read("staying").await.build_stack, StackName::Debian12);
    let listed: Vec<_> = store
        .list_apps(&owner)
        .await
        .unwrap()
        .into_iter()
        .map(|access| (access.app.name.to_string(), access.app.build_stack))
        .collect();
    assert_eq!(
        listed,
        [
            ("moving".to_owned(), StackName::Debian13),
            ("staying".to_owned(), StackName::Debian12)
        ]
    );

    let gone = store
        .set_build_stack(uuid::Uuid::new_v4(), StackName::Debian13)
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

async fn the_live_stack_is_the_current_slugs(store: &Store) {
    let owner = owner(store).await;
    let app = store
        .create_app(&AppName::parse("deployed").unwrap(), &owner)
        .await
        .unwrap();
    let on_12 = deploy_on(store, app.id, StackName::Debian12, &owner).await;
    store
        .set_build_stack(app.id, StackName::Debian13)
        .await
        .unwrap();
    let read = || async {
        store
            .app_for(&owner, "deployed")
            .await
            .unwrap()
            .unwrap()
            .app
    };
    let app_now = read().await;
    assert_eq!(app_now.build_stack, StackName::Debian13);
    assert_eq!(
        app_now.release_stack.as_deref(),
        Some("debian-12"),
        "stack:set changes the next build, not the live release"
    );

    deploy_on(store, app.id, StackName::Debian13, &owner).await;
    assert_eq!(read().await.release_stack.as_deref(), Some("debian-13"));

    store.rollback(app.id, on_12, &owner).await.unwrap();
    let rolled_back = read().await;
    assert_eq!(rolled_back.release_stack.as_deref(), Some("debian-12"));
    assert_eq!(
        rolled_back.build_stack,
        StackName::Debian13,
        "a rollback leaves the next build's stack alone"
    );
}
