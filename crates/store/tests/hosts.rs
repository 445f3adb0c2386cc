//! Hosts, their leases and the dyno placements, on SQLite and PostgreSQL; and change
//! notification between two processes sharing a PostgreSQL store.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use wharf_model::{HostName, HostState, Slot, LEASE};
use wharf_store::{Change, HostReport, Placed, Store, StoreError};

contract!(
    hosts_are_added_listed_and_removed,
    heartbeats_renew_the_lease_and_count_comebacks,
    draining_is_set_and_cleared,
    placements_are_replaced_exactly,
    placements_go_with_their_host_and_their_app,
    announced_changes_are_heard,
);

const T0: OffsetDateTime = datetime!(2026-12-06 12:00:00 UTC);

fn name(raw: &str) -> HostName {
    HostName::parse(raw).unwrap()
}

fn report(memory_mb: u64) -> HostReport {
    HostReport {
        memory_mb,
        address: "10.0.0.2".to_owned(),
        dynos: format!("[{memory_mb}]"),
    }
}

fn on(host: Uuid) -> Placed {
    Placed {
        host,
        memory_mb: 512,
    }
}

fn slot(app: Uuid, process_type: &str, number: u32) -> Slot {
    Slot {
        app,
        process_type: process_type.to_owned(),
        number,
    }
}

async fn hosts_are_added_listed_and_removed(store: &Store) {
    let b = store.add_host(&name("host-b"), "hash-b", T0).await.unwrap();
    let a = store.add_host(&name("host-a"), "hash-a", T0).await.unwrap();
    assert_eq!(a.state(T0), HostState::Joining);
    assert_eq!((a.memory_mb, a.epoch, a.draining), (None, 1, false));

    let again = store.add_host(&name("host-a"), "hash-c", T0).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("exists already")),
        "{again:?}"
    );
    // A refused add leaves no host behind to authenticate with its credential.
    assert_eq!(store.host_by_credential("hash-c").await.unwrap(), None);

    assert_eq!(store.hosts().await.unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(store.host("host-a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.host_by_credential("hash-b").await.unwrap(), Some(b));

    assert_eq!(store.remove_host("host-a").await.unwrap(), a);
    assert_eq!(store.host("host-a").await.unwrap(), None);
    let gone = store.remove_host("host-a").await;
    assert!(
        matches!(&gone, Err(StoreError::NotFound(m)) if m.contains("wharf hosts")),
        "{gone:?}"
    );
    // The credential is revoked: its heartbeats are refused.
    let refused = store
        .host_heartbeat("hash-a", &report(1024), T0, LEASE)
        .await
        .unwrap();
    assert_eq!(refused, None);
    assert_eq!(store.hosts().await.unwrap().len(), 1);
}

async fn heartbeats_renew_the_lease_and_count_comebacks(store: &Store) {
    store.add_host(&name("h1"), "hash-1", T0).await.unwrap();
    let unknown = store
        .host_heartbeat("hash-x", &report(1024), T0, LEASE)
        .await
        .unwrap();
    assert_eq!(unknown, None);

    let up = store
        .host_heartbeat("hash-1", &report(4096), T0, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.memory_mb, Some(4096));
    assert_eq!(up.address.as_deref(), Some("10.0.0.2"));
    assert_eq!(up.last_heartbeat_at, Some(T0));
    assert_eq!(up.lease_expires_at, Some(T0 + LEASE));
    assert_eq!((up.state(T0), up.epoch), (HostState::Up, 1));
    assert_eq!(up.state(T0 + LEASE), HostState::Lost);

    // A heartbeat within the lease keeps the epoch and renews from its own arrival.
    let t1 = T0 + Duration::seconds(2);
    let renewed = store
        .host_heartbeat("hash-1", &report(2048), t1, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((renewed.epoch, renewed.memory_mb), (1, Some(2048)));
    assert_eq!(renewed.lease_expires_at, Some(t1 + LEASE));

    // One after the lease ran out starts a new epoch: the host comes back to a clean slate.
    let t2 = t1 + LEASE;
    let back = store
        .host_heartbeat("hash-1", &report(2048), t2, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.epoch, 2);
    assert_eq!(back.state(t2), HostState::Up);
    assert_eq!(store.host("h1").await.unwrap(), Some(back));
    // The last report is kept as it came.
    let reports = store.host_reports().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].1, "[2048]");
    let id = reports[0].0.id;
    assert_eq!(
        store.host_report(id).await.unwrap().as_deref(),
        Some("[2048]")
    );
    assert_eq!(store.host_report(Uuid::new_v4()).await.unwrap(), None);
}

async fn draining_is_set_and_cleared(store: &Store) {
    store.add_host(&name("h1"), "hash-1", T0).await.unwrap();
    store
        .host_heartbeat("hash-1", &report(4096), T0, LEASE)
        .await
        .unwrap();
    let draining = store.set_host_draining("h1", true).await.unwrap();
    assert!(draining.draining);
    assert_eq!(draining.state(T0), HostState::Draining);
    assert!(!draining.accepting(T0));
    // A heartbeat does not end a drain.
    let still = store
        .host_heartbeat("hash-1", &report(4096), T0, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.state(T0), HostState::Draining);
    let back = store.set_host_draining("h1", false).await.unwrap();
    assert_eq!(back.state(T0), HostState::Up);
    let missing = store.set_host_draining("nope", true).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

async fn placements_are_replaced_exactly(store: &Store) {
    let (_, app) = support::owned_app(store, "placed").await;
    let h1 = store.add_host(&name("h1"), "hash-1", T0).await.unwrap().id;
    let h2 = store.add_host(&name("h2"), "hash-2", T0).await.unwrap().id;
    assert_eq!(store.placements().await.unwrap(), BTreeMap::new());

    let first: BTreeMap<Slot, Placed> = [
        (slot(app.id, "web", 1), on(h1)),
        (slot(app.id, "web", 2), on(h2)),
        (slot(app.id, "worker", 1), on(h1)),
    ]
    .into();
    assert_eq!(store.set_placements(&first, T0).await.unwrap(), 3);
    assert_eq!(store.placements().await.unwrap(), first);
    // The same placements again write nothing.
    assert_eq!(store.set_placements(&first, T0).await.unwrap(), 0);

    // web.1 is resized, web.2 moves, worker.1 goes, web.3 comes: four changes.
    let second: BTreeMap<Slot, Placed> = [
        (
            slot(app.id, "web", 1),
            Placed {
                host: h1,
                memory_mb: 1024,
            },
        ),
        (slot(app.id, "web", 2), on(h1)),
        (slot(app.id, "web", 3), on(h2)),
    ]
    .into();
    assert_eq!(store.set_placements(&second, T0).await.unwrap(), 4);
    assert_eq!(store.placements().await.unwrap(), second);

    // A placement on a host that is not there is refused, and changes nothing.
    let mut dangling = second.clone();
    dangling.insert(slot(app.id, "web", 4), on(Uuid::new_v4()));
    assert!(store.set_placements(&dangling, T0).await.is_err());
    assert_eq!(store.placements().await.unwrap(), second);
}

async fn placements_go_with_their_host_and_their_app(store: &Store) {
    let (_, app) = support::owned_app(store, "placed").await;
    let (_, other) = support::owned_app(store, "other").await;
    let h1 = store.add_host(&name("h1"), "hash-1", T0).await.unwrap().id;
    let h2 = store.add_host(&name("h2"), "hash-2", T0).await.unwrap().id;
    let placements: BTreeMap<Slot, Placed> = [
        (slot(app.id, "web", 1), on(h1)),
        (slot(app.id, "web", 2), on(h2)),
        (slot(other.id, "web", 1), on(h2)),
    ]
    .into();
    store.set_placements(&placements, T0).await.unwrap();

    store.remove_host("h2").await.unwrap();
    let left: BTreeMap<Slot, Placed> = [(slot(app.id, "web", 1), on(h1))].into();
    assert_eq!(store.placements().await.unwrap(), left);

    store.delete_app(app.id).await.unwrap();
    assert_eq!(store.placements().await.unwrap(), BTreeMap::new());
}

/// Waits for the feed's first `Reread` (a new feed reads everything once), then announces
/// and hears the announcement.
async fn announced_changes_are_heard(store: &Store) {
    let mut feed = store.changes();
    assert_eq!(feed.next().await, Change::Reread);
    let app = Uuid::new_v4();
    // PostgreSQL starts listening on its own connection: announce until it is heard, as an
    // announcement made before the LISTEN is (rightly) lost.
    let heard = hear(
        &mut feed,
        || store.announce(Change::App(app)),
        Change::App(app),
    )
    .await;
    assert!(heard, "the feed never heard the announcement");
    store.announce(Change::Hosts).await.unwrap();
    // Announcements of the app made while waiting may still be on their way.
    let mut next = next_not_reread(&mut feed).await;
    while next == Change::App(app) {
        next = next_not_reread(&mut feed).await;
    }
    assert_eq!(next, Change::Hosts);
}

async fn hear<F, Fut>(feed: &mut wharf_store::ChangeFeed, announce: F, expected: Change) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = wharf_store::Result<()>>,
{
    for _ in 0..100 {
        announce().await.unwrap();
        if let Ok(change) = tokio::time::timeout(StdDuration::from_millis(100), async {
            next_not_reread(feed).await
        })
        .await
        {
            assert_eq!(change, expected);
            return true;
        }
    }
    false
}

async fn next_not_reread(feed: &mut wharf_store::ChangeFeed) -> Change {
    loop {
        match feed.next().await {
            Change::Reread => continue,
            change => return change,
        }
    }
}

/// Another process, as a second control-plane process would be: a store opened on the same
/// PostgreSQL database hears what this one announces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announcements_reach_another_process() {
    let db = support::postgres().await;
    let other = Store::open(&db.url).await.unwrap();
    let mut feed = other.changes();
    assert_eq!(feed.next().await, Change::Reread);
    let app = Uuid::new_v4();
    let heard = hear(
        &mut feed,
        || db.store.announce(Change::App(app)),
        Change::App(app),
    )
    .await;
    assert!(heard, "the other store never heard the announcement");
    drop(feed);
    other.close().await;
}
