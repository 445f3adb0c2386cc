//! A throwaway Wharf for dyno tests: a SQLite store, a stack and the container runtime in a temp
//! dir, an owner account, helpers to deploy a slug made from files and to scale it, and polling
//! with a deadline.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_build::builder::BuilderConfig;
use wharf_containers::{Runtime, Stacks, StacksConfig};
use wharf_dynos::{DynoInfo, DynoManager, DynoManagerConfig, DynoState, DYNO_PREFIX};
use wharf_model::{
    Account, App, AppName, DynoSize, Email, FormationUpdate, Quantity, Release, ReleaseStatus,
};
use wharf_store::{NewSlug, Store};

/// How long any one condition in these tests may take to come true.
pub const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(50);

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub runtime: Runtime,
    pub stacks: Stacks,
    pub owner: Account,
    /// The dynos' network, of this fixture's own.
    pub network: wharf_network::DynoNetwork,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("wharf-dynos-test-")
            .tempdir()
            .expect("create temp dir");
        let store = open_store(dir.path()).await;
        let runtime = Runtime::detect(&dir.path().join("runtime"))
            .await
            .expect("a container runtime");
        let stacks = Stacks::new(StacksConfig::new(dir.path()));
        let email = Email::parse("owner@example.com").expect("valid email");
        let owner = store
            .create_account(&email, true, &Uuid::new_v4().to_string(), "test")
            .await
            .expect("create account");
        let network = wharf_network::DynoNetwork::start(wharf_network::test_settings())
            .await
            .expect("a dyno network");
        Fixture {
            dir,
            store,
            runtime,
            stacks,
            owner,
            network,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Settings for tests: short timeouts, quick passes, no cycling, its own ports.
    pub fn config(&self, ports: Range<u16>) -> DynoManagerConfig {
        let mut config = DynoManagerConfig::new(self.data_dir());
        config.port_range = ports;
        config.boot_timeout = Duration::from_secs(30);
        config.stop_timeout = Duration::from_secs(5);
        config.reconcile_interval = Duration::from_secs(2);
        config.cycle_after = None;
        config.stats_interval = Duration::from_millis(500);
        config.network = Some(self.network.clone());
        config
    }

    /// A manager running in the background.
    pub fn start(&self, config: DynoManagerConfig) -> Running {
        let manager = DynoManager::new(
            self.store.clone(),
            config,
            self.runtime.clone(),
            self.stacks.clone(),
        );
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(manager.clone().run(shutdown.clone()));
        Running {
            manager,
            shutdown,
            task,
        }
    }

    pub async fn app(&self, name: &str) -> App {
        self.store
            .create_app(&AppName::parse(name).expect("valid name"), &self.owner)
            .await
            .expect("create app")
    }

    /// Packs `files` into a slug with these process types and releases it.
    pub async fn deploy(
        &self,
        app: &App,
        process_types: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Release {
        let source = tempfile::tempdir().expect("source dir");
        for (path, content) in files {
            let path = source.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, content).expect("write file");
        }
        let slug = self
            .store
            .create_slug(
                app.id,
                NewSlug {
                    process_types: process_types
                        .iter()
                        .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
                        .collect::<BTreeMap<_, _>>(),
                    stack: "wharf-1".to_owned(),
                    ..NewSlug::default()
                },
            )
            .await
            .expect("create slug");
        let out = BuilderConfig::new(self.data_dir()).slug_path(slug.id);
        std::fs::create_dir_all(out.parent().expect("slugs dir")).expect("mkdir slugs");
        wharf_build::archive::pack_slug(
            source.path(),
            &wharf_slugignore::SlugIgnore::default(),
            &out,
            1 << 30,
        )
        .expect("pack slug");
        self.store
            .release_slug(
                app.id,
                slug.id,
                "Deploy",
                ReleaseStatus::Succeeded,
                &self.owner,
            )
            .await
            .expect("release slug")
    }

    pub async fn scale(&self, app: &App, process_type: &str, quantity: u32, size: DynoSize) {
        self.store
            .update_formation(
                app.id,
                &[FormationUpdate {
                    process_type: process_type.to_owned(),
                    quantity: Some(Quantity::Absolute(quantity)),
                    size: Some(size),
                }],
            )
            .await
            .expect("scale");
    }

    /// Containers with the dyno prefix that the runtime knows.
    pub async fn dyno_containers(&self) -> Vec<String> {
        let mut ids = self.runtime.list(DYNO_PREFIX).await.expect("list");
        ids.sort();
        ids
    }

    /// Entries of `<data-dir>/dynos`.
    pub fn dyno_dirs(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.data_dir().join("dynos")) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Unmounts everything beneath a dir (a disk pool and its capped dirs), lazily, when dropped.
struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = std::process::Command::new("umount")
                .args(["--recursive", "--lazy"])
                .arg(&self.0)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

pub async fn open_store(dir: &Path) -> Store {
    Store::open(&format!("sqlite://{}/wharf.db", dir.display()))
        .await
        .expect("open store")
}

/// A failed test leaves no container running (delete whatever the runtime still knows) and no
/// disk pool mounted.
impl Drop for Fixture {
    fn drop(&mut self) {
        let _unmount = UnmountOnDrop(self.data_dir().join("disk/mnt"));
        // Whatever of the manager still holds the network, its bridge and table go now.
        self.network.close_blocking();
        let (binary, state) = (self.runtime.binary(), self.runtime.state_dir());
        let Ok(output) = std::process::Command::new(binary)
            .arg("--root")
            .arg(state)
            .args(["list", "-q"])
            .output()
        else {
            return;
        };
        for id in String::from_utf8_lossy(&output.stdout).split_whitespace() {
            let _ = std::process::Command::new(binary)
                .arg("--root")
                .arg(state)
                .args(["delete", "--force", id])
                .status();
        }
    }
}

pub struct Running {
    pub manager: DynoManager,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Shuts the manager down and checks it left nothing behind.
    pub async fn stop(self, fx: &Fixture) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the manager stops before the deadline")
            .expect("the manager task")
            .expect("the manager");
        assert_eq!(fx.dyno_containers().await, Vec::<String>::new());
        assert_eq!(fx.dyno_dirs(), Vec::<PathBuf>::new());
    }

    /// Waits until the app's dynos satisfy `check`.
    pub async fn dynos_until(
        &self,
        app: &App,
        what: &str,
        check: impl Fn(&[DynoInfo]) -> bool,
    ) -> Vec<DynoInfo> {
        let manager = self.manager.clone();
        let app_id = app.id;
        eventually(what, || {
            let dynos = manager.dynos(app_id);
            check(&dynos).then_some(dynos)
        })
        .await
    }

    /// Waits until the app has exactly these dynos (name and release), all up.
    pub async fn up(&self, app: &App, expected: &[(&str, i64)]) -> Vec<DynoInfo> {
        let mut wanted: Vec<(String, i64)> = expected
            .iter()
            .map(|(n, r)| ((*n).to_owned(), *r))
            .collect();
        wanted.sort();
        self.dynos_until(app, &format!("dynos {expected:?} up"), |dynos| {
            let mut actual: Vec<(String, i64)> = dynos
                .iter()
                .filter(|d| d.state == DynoState::Up)
                .map(|d| (d.name.clone(), d.release_version))
                .collect();
            actual.sort();
            actual == wanted && dynos.len() == wanted.len()
        })
        .await
    }

    /// The app's log as Heroku prints it.
    pub fn log(&self, app: &App) -> Vec<String> {
        self.manager
            .logs()
            .recent(app.id, usize::MAX)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Waits until a line of the app's log contains `needle`.
    pub async fn logged(&self, app: &App, needle: &str) {
        let manager = self.manager.clone();
        let app_id = app.id;
        let found = poll(DEADLINE, || {
            let lines = manager.logs().recent(app_id, usize::MAX);
            let found = lines.iter().any(|l| l.to_string().contains(needle));
            async move { found.then_some(()) }
        })
        .await;
        assert!(
            found.is_some(),
            "no log line with {needle:?} in time; the log:\n{}",
            self.log(app).join("\n")
        );
    }

    /// How many lines of the app's log contain `needle`.
    pub fn count(&self, app: &App, needle: &str) -> usize {
        self.log(app).iter().filter(|l| l.contains(needle)).count()
    }
}

/// Polls `check` every 50 ms until it gives a value; panics after [`DEADLINE`].
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    poll(DEADLINE, || {
        let value = check();
        async move { value }
    })
    .await
    .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls an async `check` until it gives a value or `within` passes.
pub async fn poll<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The status line and body of `GET path` from a dyno at `address`.
pub async fn http_get(address: SocketAddr, path: &str) -> anyhow::Result<(String, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
