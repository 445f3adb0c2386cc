//! The scheduler against a real store (SQLite, and PostgreSQL as a many-host install runs
//! it): a formation spreads over the hosts that are up; scaling and deploying move nothing;
//! a host whose lease runs out, a drained host and a removed host lose their dynos to the
//! others; what fits nowhere is reported, and placed once a host has room.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use sqlx::{Connection, Executor};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use wharf_model::{
    AppName, DynoSize, Email, FormationUpdate, HostName, Quantity, ReleaseStatus, Slot, LEASE,
};
use wharf_store::{HostReport, NewSlug, Store};

const T0: OffsetDateTime = datetime!(2026-12-06 12:00:00 UTC);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/wharf.db", dir.path().display()))
        .await
        .unwrap();
    places_formations_over_hosts(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    sqlx::any::install_default_drivers();
    let admin_url = std::env::var("WHARF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let database = format!("wharf_test_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await
        .unwrap();
    let base = admin_url.rsplit_once('/').unwrap().0;
    let store = Store::open(&format!("{base}/{database}")).await.unwrap();
    places_formations_over_hosts(&store).await;
    store.close().await;
    admin
        .execute(format!("DROP DATABASE {database} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

struct Fixture<'a> {
    store: &'a Store,
    app: Uuid,
    hosts: BTreeMap<String, Uuid>,
}

impl Fixture<'_> {
    async fn heartbeat(&self, host: &str, memory_mb: u64, at: OffsetDateTime) {
        self.store
            .host_heartbeat(
                &format!("hash-{host}"),
                &HostReport {
                    memory_mb,
                    address: format!("{host}.lan"),
                    dynos: "[]".to_owned(),
                },
                at,
                LEASE,
            )
            .await
            .unwrap()
            .unwrap();
    }

    async fn scale(&self, process_type: &str, quantity: u32, size: Option<DynoSize>) {
        self.store
            .update_formation(
                self.app,
                &[FormationUpdate {
                    process_type: process_type.into(),
                    quantity: Some(Quantity::parse(&quantity.to_string()).unwrap()),
                    size,
                }],
            )
            .await
            .unwrap();
    }

    /// Per slot (`web.1`), the host's name.
    async fn placements(&self) -> BTreeMap<String, String> {
        let names: BTreeMap<Uuid, &String> = self.hosts.iter().map(|(n, id)| (*id, n)).collect();
        self.store
            .placements()
            .await
            .unwrap()
            .into_iter()
            .map(|(slot, placed)| {
                assert_eq!(slot.app, self.app);
                (
                    format!("{}.{}", slot.process_type, slot.number),
                    names[&placed.host].clone(),
                )
            })
            .collect()
    }

    fn count_on(
        placements: &BTreeMap<String, String>,
        process_type: &str,
    ) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (slot, host) in placements {
            if slot.starts_with(&format!("{process_type}.")) {
                *counts.entry(host.clone()).or_default() += 1;
            }
        }
        counts
    }
}

fn kept(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
    before
        .iter()
        .filter(|(slot, host)| after.get(*slot) == Some(host))
        .count()
}

/// Releases a slug with a web and a worker process.
async fn deploy(store: &Store, app: Uuid, owner: &wharf_model::Account, web: &str, worker: &str) {
    let slug = store
        .create_slug(
            app,
            NewSlug {
                process_types: [("web", web), ("worker", worker)]
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
        .release_slug(app, slug.id, "Deploy", ReleaseStatus::Succeeded, owner)
        .await
        .unwrap();
}

async fn places_formations_over_hosts(store: &Store) {
    let owner = store
        .create_account(
            &Email::parse("owner@example.com").unwrap(),
            false,
            "hash-owner",
            "t",
        )
        .await
        .unwrap();
    let app = store
        .create_app(&AppName::parse("spread").unwrap(), &owner)
        .await
        .unwrap();
    // Without hosts (a one-host install), the scheduler leaves everything to the server.
    deploy(store, app.id, &owner, "serve", "work").await;
    let mut fixture = Fixture {
        store,
        app: app.id,
        hosts: BTreeMap::new(),
    };
    fixture.scale("web", 3, None).await;
    fixture.scale("worker", 2, None).await;
    let pass = wharf_scheduler::schedule(store, T0).await.unwrap();
    assert_eq!(
        (pass.changed, pass.unplaced.len(), pass.no_lease),
        (0, 0, false)
    );
    assert!(store.placements().await.unwrap().is_empty());

    // Three hosts, one still joining: the two up share the formation, spread by type; while
    // none holds a lease, nothing is placed.
    for host in ["h1", "h2", "h3"] {
        let added = store
            .add_host(&HostName::parse(host).unwrap(), &format!("hash-{host}"), T0)
            .await
            .unwrap();
        fixture.hosts.insert(host.to_owned(), added.id);
    }
    let pass = wharf_scheduler::schedule(store, T0).await.unwrap();
    assert_eq!(
        (pass.changed, pass.unplaced.len(), pass.no_lease),
        (0, 0, true)
    );
    fixture.heartbeat("h1", 4096, T0).await;
    fixture.heartbeat("h2", 4096, T0).await;
    let pass = wharf_scheduler::schedule(store, T0).await.unwrap();
    assert_eq!((pass.changed, pass.unplaced.len()), (5, 0));
    let first = fixture.placements().await;
    assert!(!first.values().any(|host| host == "h3"), "{first:?}");
    let web = Fixture::count_on(&first, "web");
    assert_eq!(web.values().copied().max(), Some(2), "{first:?}");
    assert_eq!(Fixture::count_on(&first, "worker").len(), 2, "{first:?}");
    // Nothing changed: a pass writes nothing.
    assert_eq!(
        wharf_scheduler::schedule(store, T0).await.unwrap().changed,
        0
    );

    // h3 comes up; scaling web to 6 keeps the first three where they are and fills h3.
    let t1 = T0 + Duration::seconds(1);
    for host in ["h1", "h2", "h3"] {
        fixture.heartbeat(host, 4096, t1).await;
    }
    fixture.scale("web", 6, None).await;
    assert_eq!(
        wharf_scheduler::schedule(store, t1).await.unwrap().changed,
        3
    );
    let scaled = fixture.placements().await;
    assert_eq!(
        kept(&first, &scaled),
        first.len(),
        "{first:?} -> {scaled:?}"
    );
    assert_eq!(
        Fixture::count_on(&scaled, "web")
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{scaled:?}"
    );

    // A deploy (a new release of the same types) moves nothing.
    deploy(store, app.id, &owner, "serve2", "work2").await;
    assert_eq!(
        wharf_scheduler::schedule(store, t1).await.unwrap().changed,
        0
    );

    // h2 stops heartbeating: once its lease ran out, its dynos are on h1 and h3, and nothing
    // else moved.
    let t2 = t1 + LEASE;
    fixture.heartbeat("h1", 4096, t2).await;
    fixture.heartbeat("h3", 4096, t2).await;
    let on_h2 = scaled.values().filter(|host| *host == "h2").count();
    assert_eq!(
        wharf_scheduler::schedule(store, t2).await.unwrap().changed,
        on_h2
    );
    let after_loss = fixture.placements().await;
    assert!(
        !after_loss.values().any(|host| host == "h2"),
        "{after_loss:?}"
    );
    assert_eq!(kept(&scaled, &after_loss), scaled.len() - on_h2);

    // Draining h3 moves its dynos to h1, which has just the room: 8 dynos of 512 MiB.
    let t3 = t2 + Duration::seconds(1);
    fixture.heartbeat("h1", 4096, t3).await;
    fixture.heartbeat("h3", 4096, t3).await;
    store.set_host_draining("h3", true).await.unwrap();
    let pass = wharf_scheduler::schedule(store, t3).await.unwrap();
    assert!(pass.unplaced.is_empty(), "{pass:?}");
    let drained = fixture.placements().await;
    assert_eq!(drained.len(), 8);
    assert!(drained.values().all(|host| host == "h1"), "{drained:?}");

    // Resizing to a size no host can hold leaves those dynos unplaced, not over-committed.
    fixture
        .scale("worker", 2, Some(DynoSize::PerformanceL))
        .await;
    let pass = wharf_scheduler::schedule(store, t3).await.unwrap();
    let unplaced: Vec<String> = pass
        .unplaced
        .iter()
        .map(
            |Slot {
                 process_type,
                 number,
                 ..
             }| format!("{process_type}.{number}"),
        )
        .collect();
    assert!(unplaced.contains(&"worker.1".to_owned()), "{unplaced:?}");
    assert!(unplaced.contains(&"worker.2".to_owned()), "{unplaced:?}");
    let total: u64 = store
        .placements()
        .await
        .unwrap()
        .values()
        .map(|placed| placed.memory_mb)
        .sum();
    assert!(total <= 4096, "{total} MiB placed on a 4096 MiB host");

    // Removing the drained host and ending h1's lease leaves no host holding one: this
    // control plane may be the one cut off, and no host could take a dyno, so nothing moves
    // (h1's agent, finding every host silent, keeps them running). h1 comes back with more
    // memory: what did not fit is placed, and nothing else moves.
    store.remove_host("h3").await.unwrap();
    let before = fixture.placements().await;
    assert_eq!(Fixture::count_on(&before, "web").get("h1"), Some(&6));
    let t4 = t3 + LEASE;
    let pass = wharf_scheduler::schedule(store, t4).await.unwrap();
    assert_eq!(
        (pass.changed, pass.unplaced.len(), pass.no_lease),
        (0, 0, true)
    );
    assert_eq!(fixture.placements().await, before);
    fixture.heartbeat("h1", 65536, t4).await;
    let pass = wharf_scheduler::schedule(store, t4).await.unwrap();
    assert_eq!((pass.changed, pass.unplaced.len()), (2, 0), "{pass:?}");
    assert_eq!(kept(&before, &fixture.placements().await), before.len());

    // h1's lease runs out while the only other host drains: its dynos fit nowhere, so they
    // stay placed on h1 (reported unplaced), and h1 keeps them when it comes back.
    let h4 = store
        .add_host(&HostName::parse("h4").unwrap(), "hash-h4", t4)
        .await
        .unwrap();
    fixture.hosts.insert("h4".to_owned(), h4.id);
    let t5 = t4 + LEASE;
    fixture.heartbeat("h4", 4096, t5).await;
    store.set_host_draining("h4", true).await.unwrap();
    let everything = fixture.placements().await;
    let pass = wharf_scheduler::schedule(store, t5).await.unwrap();
    assert_eq!((pass.changed, pass.unplaced.len()), (0, 8), "{pass:?}");
    assert_eq!(fixture.placements().await, everything);
    fixture.heartbeat("h1", 65536, t5).await;
    let pass = wharf_scheduler::schedule(store, t5).await.unwrap();
    assert_eq!((pass.changed, pass.unplaced.len()), (0, 0), "{pass:?}");
    assert_eq!(fixture.placements().await, everything);
}
