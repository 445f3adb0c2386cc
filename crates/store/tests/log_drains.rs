//! The store's log drain and app feature contract, on SQLite and PostgreSQL: the per-app limit,
//! unique URLs, removal by id, URL or token, features set and read back, and an app's deletion
//! taking both with it.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use wharf_store::{Store, StoreError};

contract!(
    drains_limit_uniqueness_and_removal,
    features_and_app_deletion
);

async fn drains_limit_uniqueness_and_removal(store: &Store) {
    let app = support::owned_app(store, "drained").await.1;
    let other = support::owned_app(store, "other").await.1;
    let mut added = Vec::new();
    for n in 0..3 {
        let url = format!("syslog://logs.example.com:{}", 500 + n);
        let drain = store.add_log_drain(app.id, &url, 3).await.unwrap();
        assert!(drain.token.starts_with("d."), "{}", drain.token);
        assert_eq!(drain.url, url);
        added.push(drain);
    }
    let full = store
        .add_log_drain(app.id, "syslog://logs.example.com:600", 3)
        .await;
    assert!(
        matches!(&full, Err(StoreError::Conflict(m)) if m.contains("the most it may have")),
        "{full:?}"
    );
    let twice = store.add_log_drain(app.id, &added[0].url, 5).await;
    assert!(
        matches!(&twice, Err(StoreError::Conflict(m)) if m.contains("already")),
        "{twice:?}"
    );
    // Another app may use the same URL.
    store
        .add_log_drain(other.id, &added[0].url, 5)
        .await
        .unwrap();
    assert_eq!(store.log_drains(app.id).await.unwrap(), added);
    assert_eq!(store.all_log_drains().await.unwrap().len(), 4);

    let by_id = store
        .remove_log_drain(app.id, &added[0].id.to_string())
        .await
        .unwrap();
    assert_eq!(by_id, added[0]);
    let by_url = store.remove_log_drain(app.id, &added[1].url).await.unwrap();
    assert_eq!(by_url, added[1]);
    let by_token = store
        .remove_log_drain(app.id, &added[2].token)
        .await
        .unwrap();
    assert_eq!(by_token, added[2]);
    assert!(matches!(
        store.remove_log_drain(app.id, &added[2].url).await,
        Err(StoreError::NotFound(_))
    ));
    // Not another app's drain.
    let others = store.log_drains(other.id).await.unwrap();
    assert!(matches!(
        store
            .remove_log_drain(app.id, &others[0].id.to_string())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.log_drains(app.id).await.unwrap().is_empty());
}

async fn features_and_app_deletion(store: &Store) {
    let app = support::owned_app(store, "featured").await.1;
    assert!(store.app_features(app.id).await.unwrap().is_empty());
    let on = store
        .set_app_feature(app.id, "log-runtime-metrics", true)
        .await
        .unwrap();
    assert!(on.enabled);
    let off = store
        .set_app_feature(app.id, "log-runtime-metrics", false)
        .await
        .unwrap();
    assert!(!off.enabled);
    assert_eq!(off.created_at, on.created_at);
    assert_eq!(
        store.app_features(app.id).await.unwrap(),
        std::slice::from_ref(&off)
    );
    assert_eq!(
        store.all_app_features("log-runtime-metrics").await.unwrap(),
        [off]
    );
    store
        .add_log_drain(app.id, "https://logs.example.com/in", 5)
        .await
        .unwrap();
    store.delete_app(app.id).await.unwrap();
    assert!(store.all_log_drains().await.unwrap().is_empty());
    assert!(store
        .all_app_features("log-runtime-metrics")
        .await
        .unwrap()
        .is_empty());
}
