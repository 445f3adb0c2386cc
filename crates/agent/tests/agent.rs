//! The agent against a real control-plane API on loopback, through a proxy the test can make
//! silent (a cut link: connections hang) or refusing (the control plane is down): the agent
//! joins and holds a lease, reads exactly what is placed on its host, fetches its slugs and
//! refuses one whose SHA-256 is wrong, fences itself when its lease runs out in silence and
//! not when the control plane refuses, and fences at once when its host is removed.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_agent::{Agent, ControlPlane, HostReport, Signal};
use wharf_api::auth::{generate_api_key, hash_api_key};
use wharf_api::{ApiConfig, ApiState};
use wharf_build::builder::{Builder, BuilderConfig};
use wharf_dynos::{DesiredSource, DynoManager, DynoManagerConfig};
use wharf_model::{Email, HostState, ReleaseStatus, Slot};
use wharf_store::{NewSlug, Placed, Store};

const FORWARD: u8 = 0;
const SILENT: u8 = 1;
const REFUSE: u8 = 2;

/// A TCP proxy on loopback in front of the API: forwarding, silent (accepts, never answers,
/// and holds what was open), or refusing (nothing listens).
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
    changed: Arc<tokio::sync::Notify>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let changed = Arc::new(tokio::sync::Notify::new());
        let (task_mode, task_changed) = (mode.clone(), changed.clone());
        tokio::spawn(async move {
            let mut listener = Some(listener);
            // Connections held open while silent, and those being forwarded: all dropped when
            // the mode changes, so that no pooled connection outlives it.
            let mut held: Vec<TcpStream> = Vec::new();
            let mut forwarding: Vec<tokio::task::JoinHandle<()>> = Vec::new();
            let mut current = FORWARD;
            loop {
                let mode = task_mode.load(Ordering::SeqCst);
                if mode != current {
                    current = mode;
                    held.clear();
                    forwarding.drain(..).for_each(|task| task.abort());
                }
                if mode == REFUSE {
                    listener = None;
                    task_changed.notified().await;
                    continue;
                }
                let bound = match listener.take() {
                    Some(bound) => bound,
                    None => TcpListener::bind(("127.0.0.1", port)).await.unwrap(),
                };
                tokio::select! {
                    accepted = bound.accept() => {
                        let (client, _) = accepted.unwrap();
                        if mode == SILENT {
                            held.push(client);
                        } else {
                            forwarding.push(tokio::spawn(async move {
                                let mut client = client;
                                let Ok(mut server) = TcpStream::connect(upstream).await else {
                                    return;
                                };
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }));
                        }
                    }
                    () = task_changed.notified() => {}
                }
                listener = Some(bound);
            }
        });
        Proxy {
            port,
            mode,
            changed,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.changed.notify_one();
    }
}

struct ControlPlaneUnderTest {
    store: Store,
    builder: Builder,
    address: std::net::SocketAddr,
    admin_key: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl ControlPlaneUnderTest {
    async fn start() -> ControlPlaneUnderTest {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/wharf.db", dir.path().display()))
            .await
            .unwrap();
        let admin_key = generate_api_key();
        store
            .bootstrap_admin(
                &Email::parse("admin@example.com").unwrap(),
                &hash_api_key(&admin_key),
            )
            .await
            .unwrap();
        let builder = Builder::new(store.clone(), BuilderConfig::new(dir.path()));
        let (runtime, _) = builder.containers().await.unwrap().clone();
        let dynos = DynoManager::new(
            store.clone(),
            DynoManagerConfig::new(dir.path()),
            runtime,
            builder.stacks().clone(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let api = ApiState::new(
            store.clone(),
            ApiConfig {
                public_url: format!("http://{address}"),
                base_domain: "localhost".into(),
                router_port: 8080,
                data_dir: dir.path().to_owned(),
                internal_url: format!("http://{address}"),
                wharf_binary: "/bin/false".into(),
                rendezvous_port: 5001,
                session_lifetime: Duration::from_secs(3600),
            },
            builder.clone(),
            dynos,
        );
        let shutdown = CancellationToken::new();
        let (serve_state, serve_shutdown) = (api.clone(), shutdown.clone());
        tokio::spawn(async move {
            wharf_api::serve(listener, serve_state, async move {
                serve_shutdown.cancelled().await
            })
            .await
            .unwrap();
        });
        ControlPlaneUnderTest {
            store,
            builder,
            address,
            admin_key,
            shutdown,
            _dir: dir,
        }
    }

    /// Adds a host through the API, as `hosts:add` does, and answers its credential.
    async fn add_host(&self, name: &str) -> String {
        let reply: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/hosts", self.address))
            .bearer_auth(&self.admin_key)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["credential"].as_str().unwrap().to_owned()
    }

    /// An app with a released slug whose archive is `archive` and whose recorded checksum
    /// is `checksum_of`'s.
    async fn app_with_slug(&self, name: &str, archive: &[u8], checksum_of: &[u8]) -> (Uuid, Uuid) {
        let owner = self
            .store
            .account_by_email(&Email::parse("admin@example.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        let app = self
            .store
            .create_app(&wharf_model::AppName::parse(name).unwrap(), &owner)
            .await
            .unwrap();
        let checksum: String = Sha256::digest(checksum_of)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let slug = self
            .store
            .create_slug(
                app.id,
                NewSlug {
                    process_types: [("web".to_owned(), "serve".to_owned())].into(),
                    stack: "debian-12".into(),
                    checksum: Some(format!("SHA256:{checksum}")),
                    ..NewSlug::default()
                },
            )
            .await
            .unwrap();
        let path = self.builder.config().slug_path(slug.id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, archive).unwrap();
        self.store
            .release_slug(app.id, slug.id, "Deploy", ReleaseStatus::Succeeded, &owner)
            .await
            .unwrap();
        (app.id, slug.id)
    }
}

impl Drop for ControlPlaneUnderTest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `condition` every 50 ms for up to 20 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn new_agent(port: u16, credential: &str) -> Agent {
    Agent::new(
        ControlPlane::new(&format!("http://127.0.0.1:{port}"), credential.to_owned()).unwrap(),
        HostReport {
            memory_mb: 4096,
            address: "127.0.0.1".into(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reads_its_placements_and_fetches_checked_slugs() {
    let control_plane = ControlPlaneUnderTest::start().await;
    let credential = control_plane.add_host("host-1").await;
    let other = control_plane.add_host("host-2").await;
    let agent = Arc::new(new_agent(control_plane.address.port(), &credential));
    let signals = Arc::new(Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let (running, recorded, stop) = (agent.clone(), signals.clone(), shutdown.clone());
    tokio::spawn(async move {
        running
            .run(move |signal| recorded.lock().unwrap().push(signal), stop)
            .await;
    });
    eventually("the first lease", || !agent.fenced()).await;
    let host = control_plane.store.host("host-1").await.unwrap().unwrap();
    assert_eq!(host.memory_mb, Some(4096));
    assert!(signals.lock().unwrap().contains(&Signal::Fenced(false)));

    let (good_app, good_slug) = control_plane
        .app_with_slug("good", b"the good archive", b"the good archive")
        .await;
    let (bad_app, bad_slug) = control_plane
        .app_with_slug("tampered", b"what arrives", b"what was built")
        .await;
    let host_2 = control_plane.store.host("host-2").await.unwrap().unwrap();
    let slot = |app, number| Slot {
        app,
        process_type: "web".into(),
        number,
    };
    let on = |host| Placed {
        host,
        memory_mb: 512,
    };
    control_plane
        .store
        .set_placements(
            &[
                (slot(good_app, 1), on(host.id)),
                (slot(good_app, 3), on(host.id)),
                (slot(good_app, 2), on(host_2.id)),
                (slot(bad_app, 1), on(host.id)),
            ]
            .into(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();

    let source = agent.source();
    let read = source.read(None, &HashSet::new()).await.unwrap();
    let app = &read.desired.apps[&good_app];
    assert_eq!(app.name, "good");
    assert_eq!(
        app.formation["web"]
            .numbers
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(app.release.slug_id, Some(good_slug));
    assert_eq!(app.release.stack, "debian-12");
    assert!(read.scope.contains(&good_app) && read.scope.contains(&bad_app));

    // Slugs land whole and checked, or not at all.
    let slugs = tempfile::tempdir().unwrap();
    let good_path = slugs.path().join(format!("{good_slug}.tar.zst"));
    source
        .fetch_slug(good_app, good_slug, &good_path)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&good_path).unwrap(), b"the good archive");
    let bad_path = slugs.path().join(format!("{bad_slug}.tar.zst"));
    let refused = source.fetch_slug(bad_app, bad_slug, &bad_path).await;
    let message = format!("{:#}", refused.unwrap_err());
    assert!(message.contains("not used"), "{message}");
    assert!(!bad_path.exists());
    assert_eq!(std::fs::read_dir(slugs.path()).unwrap().count(), 1);

    // Another host's agent is told only of its own dyno; and until it holds a lease, its
    // source asks for nothing at all.
    let stranger = new_agent(control_plane.address.port(), &other);
    let unleased = stranger.source().read(None, &HashSet::new()).await.unwrap();
    assert!(unleased.desired.apps.is_empty());
    let answer = ControlPlane::new(&format!("http://{}", control_plane.address), other)
        .unwrap()
        .desired()
        .await
        .unwrap();
    let desired = wharf_agent::source::desired(&answer).unwrap();
    assert_eq!(desired.apps.len(), 1);
    assert_eq!(
        desired.apps[&good_app].formation["web"]
            .numbers
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![2]
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fences_on_silence_not_on_refusal() {
    let control_plane = ControlPlaneUnderTest::start().await;
    let credential = control_plane.add_host("host-1").await;
    let proxy = Proxy::start(control_plane.address).await;
    let agent = Arc::new(new_agent(proxy.port, &credential));
    let shutdown = CancellationToken::new();
    let (running, stop) = (agent.clone(), shutdown.clone());
    tokio::spawn(async move { running.run(|_| {}, stop).await });
    eventually("the first lease", || !agent.fenced()).await;
    let known: HashSet<Uuid> = [Uuid::from_u128(7)].into();

    // The link goes silent: once the lease ran out, the agent runs nothing, and says so for
    // every app it knows.
    proxy.set(SILENT);
    eventually("the fence after silence", || agent.fenced()).await;
    let read = agent.source().read(None, &known).await.unwrap();
    assert!(read.desired.apps.is_empty());
    assert_eq!(read.scope, known);
    // And the control plane takes the host for lost (its lease, counted from receiving,
    // ends a little after the agent's).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let host = control_plane.store.host("host-1").await.unwrap().unwrap();
        if host.state(time::OffsetDateTime::now_utc()) == HostState::Lost {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host was never lost"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The link is back: a new lease, in a new epoch.
    proxy.set(FORWARD);
    eventually("a lease again", || !agent.fenced()).await;
    let host = control_plane.store.host("host-1").await.unwrap().unwrap();
    assert_eq!(host.epoch, 2);

    // The control plane goes down (connections refused): its lease runs out, and the agent
    // keeps its dynos, as nobody replaces them.
    proxy.set(REFUSE);
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(wharf_model::LEASE.whole_milliseconds()).unwrap() + 2_000,
    ))
    .await;
    assert!(!agent.fenced(), "a refusing control plane fenced the agent");
    // No heartbeat got through meanwhile: the agent really met refusals all along.
    let host = control_plane.store.host("host-1").await.unwrap().unwrap();
    assert_eq!(host.state(time::OffsetDateTime::now_utc()), HostState::Lost);
    proxy.set(FORWARD);

    // Removing the host revokes the credential: the agent fences at its next heartbeat.
    let removed = reqwest::Client::new()
        .delete(format!("http://{}/hosts/host-1", control_plane.address))
        .bearer_auth(&control_plane.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    eventually("the fence after removal", || agent.fenced()).await;
    shutdown.cancel();
}
