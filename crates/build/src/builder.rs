//! The builder: one build per app at a time (later ones queue, and say so), each build a
//! pending record, a live log, and a task that runs the pipeline in `compile.rs` under the
//! app's lock and a time limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use uuid::Uuid;
use wharf_containers::{Runtime, Stack, Stacks, StacksConfig};
use wharf_model::StackName;
use wharf_model::{Account, App, Build, BuildStatus};
use wharf_store::{BuildOutcome, Store};

use crate::log::BuildLog;
pub use crate::step::{container_network, profile_command};

/// Limits and places a builder works with.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    pub data_dir: PathBuf,
    /// The most bytes a slug (compressed) may have.
    pub slug_limit: u64,
    /// The most bytes a source archive may unpack to.
    pub source_limit: u64,
    /// A whole build is stopped after this long.
    pub build_timeout: Duration,
    /// Memory for the build's containers.
    pub build_memory_bytes: u64,
    /// Where a build may connect on the app's behalf (git buildpacks' hosts).
    pub outbound: wharf_outbound::Policy,
    /// The network build steps' namespaces join; `None` gives each step a namespace with
    /// loopback alone.
    pub network: Option<wharf_network::DynoNetwork>,
    /// Where builds' work dirs and apps' caches are capped (`build_disk_bytes`,
    /// `cache_disk_bytes`); `None` keeps plain directories in the data dir.
    pub disk: Option<wharf_disk::DiskPool>,
    /// The most bytes a build's work dir (its `/app`, buildpacks and slug) may hold.
    pub build_disk_bytes: u64,
    /// The most bytes an app's build cache (`/cache`) may hold.
    pub cache_disk_bytes: u64,
    /// The server-wide cache of language runtimes that built-in buildpacks install (one
    /// directory per stack beneath), `<data-dir>/runtimes` unless moved.
    pub runtimes_dir: PathBuf,
    /// The server's runtime settings (`WHARF_PYTHON_MIRROR`, ...), given to runtime steps.
    pub runtime_env: Vec<(String, String)>,
    /// Where stacks are and how built ones are made (`WHARF_STACK_MIRROR`, ...).
    pub stacks: StacksConfig,
}

impl BuilderConfig {
    pub const DEFAULT_SLUG_LIMIT: u64 = 500 * 1024 * 1024;
    pub const DEFAULT_SOURCE_LIMIT: u64 = 2 * 1024 * 1024 * 1024;
    pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
    pub const DEFAULT_BUILD_MEMORY: u64 = 2 * 1024 * 1024 * 1024;
    pub const DEFAULT_BUILD_DISK: u64 = 4 * 1024 * 1024 * 1024;
    pub const DEFAULT_CACHE_DISK: u64 = 2 * 1024 * 1024 * 1024;

    pub fn new(data_dir: &Path) -> BuilderConfig {
        BuilderConfig {
            data_dir: data_dir.to_owned(),
            slug_limit: Self::DEFAULT_SLUG_LIMIT,
            source_limit: Self::DEFAULT_SOURCE_LIMIT,
            build_timeout: Self::DEFAULT_BUILD_TIMEOUT,
            build_memory_bytes: Self::DEFAULT_BUILD_MEMORY,
            outbound: wharf_outbound::Policy::new(wharf_outbound::AllowList::default()),
            network: None,
            disk: None,
            build_disk_bytes: Self::DEFAULT_BUILD_DISK,
            cache_disk_bytes: Self::DEFAULT_CACHE_DISK,
            runtimes_dir: data_dir.join("runtimes"),
            runtime_env: Vec::new(),
            stacks: StacksConfig::new(data_dir),
        }
    }

    /// The runtime cache of one stack: runtimes built for one stack's libraries are never
    /// used on another.
    pub(crate) fn stack_runtimes_dir(&self, stack: &str) -> PathBuf {
        self.runtimes_dir.join(stack)
    }

    pub(crate) fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }

    pub fn log_path(&self, build_id: Uuid) -> PathBuf {
        self.builds_dir().join(format!("{build_id}.log"))
    }

    pub(crate) fn cache_dir(&self, app_id: Uuid) -> PathBuf {
        self.data_dir.join("cache").join(app_id.to_string())
    }

    /// Where a build packs its slug before the slug has an id: beside the slugs, so that
    /// storing it is a rename. Start-up removes leftovers (`build-<id>.partial`).
    pub(crate) fn partial_slug_path(&self, build_id: Uuid) -> PathBuf {
        self.data_dir
            .join("slugs")
            .join(format!("build-{build_id}.partial"))
    }

    pub fn slug_path(&self, slug_id: Uuid) -> PathBuf {
        self.data_dir
            .join("slugs")
            .join(format!("{slug_id}.tar.zst"))
    }

    pub fn builtin_buildpacks(&self) -> PathBuf {
        self.data_dir.join("buildpacks")
    }
}

/// A source to build, and what it is.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub app: App,
    pub user: Account,
    /// A tar archive (plain, gzip or zstd) of the app's source.
    pub archive: PathBuf,
    pub source_url: Option<String>,
    pub version: Option<String>,
    /// The app's web URL, for the last line of the output.
    pub web_url: String,
}

/// How a build ended, for whoever waits on it (a `git push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    pub build_id: Uuid,
    pub released: Option<i64>,
}

/// Holding it means holding the app's build lock. Shared, so that a push can keep the lock
/// until git has updated the branch, after the build itself is over.
pub type AppLockGuard = Arc<tokio::sync::OwnedMutexGuard<()>>;

#[derive(Clone)]
pub struct Builder {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) config: BuilderConfig,
    /// The container runtime and the default stack, found on first use.
    pub(crate) containers: tokio::sync::OnceCell<(Runtime, Stack)>,
    /// Every stack: builds run on their app's build stack.
    pub(crate) stacks: Stacks,
    pub(crate) app_locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) live: Mutex<HashMap<Uuid, Arc<BuildLog>>>,
}

impl Builder {
    pub fn new(store: Store, config: BuilderConfig) -> Builder {
        Builder {
            inner: Arc::new(Inner {
                store,
                stacks: Stacks::new(config.stacks.clone()),
                config,
                containers: tokio::sync::OnceCell::new(),
                app_locks: Mutex::new(HashMap::new()),
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &BuilderConfig {
        &self.inner.config
    }

    /// Finds the container runtime and prepares the stack (once); the server calls it at
    /// start so that a host that cannot run containers is reported at once.
    pub async fn containers(&self) -> anyhow::Result<&(Runtime, Stack)> {
        self.inner
            .containers
            .get_or_try_init(|| async {
                let data_dir = &self.inner.config.data_dir;
                let runtime = Runtime::detect(&data_dir.join("runtime"))
                    .await
                    .context("find a container runtime (crun or runc)")?;
                let stacks = self.inner.stacks.clone();
                tokio::task::spawn_blocking(move || stacks.remove_unfinished())
                    .await
                    .context("remove unfinished stack builds: task failed")??;
                let stack = self
                    .inner
                    .stacks
                    .get(StackName::DEFAULT)
                    .await
                    .context("prepare the stack")?;
                Ok((runtime, stack))
            })
            .await
    }

    /// The server's stacks (shared with the dyno manager, so both use the same versions).
    pub fn stacks(&self) -> &Stacks {
        &self.inner.stacks
    }

    /// The stack a build runs on, built first if this is its first use (and saying so).
    pub(crate) async fn build_stack(
        &self,
        name: StackName,
        log: &BuildLog,
    ) -> anyhow::Result<Stack> {
        if !self.inner.stacks.is_ready(name) {
            log.heading(&format!("Preparing the {name} stack (first use)"));
            log.detail("This takes a few minutes, once per server");
        }
        self.inner.stacks.get(name).await.map_err(|error| {
            tracing::error!(stack = %name, error = format!("{error:#}"), "prepare a stack");
            anyhow::anyhow!("The {name} stack could not be prepared: the server's log says why")
        })
    }

    /// The log of a running build, if it is running on this server.
    pub fn live_log(&self, build_id: Uuid) -> Option<Arc<BuildLog>> {
        self.inner
            .live
            .lock()
            .expect("live builds lock is never poisoned")
            .get(&build_id)
            .cloned()
    }

    /// Deletes the app's build cache.
    pub async fn purge_cache(&self, app_id: Uuid) -> anyhow::Result<()> {
        self.remove_cache(app_id)
            .await
            .context("remove the build cache")
    }

    /// Records a pending build and starts it. Returns the build, its live log, and a handle
    /// that resolves when it is over. Without `lock`, the build takes the app's lock itself
    /// (waiting for another build, and saying so); with it, the caller already holds it.
    pub async fn start(
        &self,
        request: BuildRequest,
        lock: Option<AppLockGuard>,
    ) -> anyhow::Result<(Build, Arc<BuildLog>, tokio::task::JoinHandle<BuildResult>)> {
        let config = &self.inner.config;
        // Server path: `<data-dir>/builds`.
        tokio::fs::create_dir_all(config.builds_dir())
            .await
            .context("create builds dir")?;
        let token = random_token();
        let build = self
            .inner
            .store
            .create_build(
                request.app.id,
                &request.user,
                request.source_url.as_deref(),
                request.version.as_deref(),
                &token,
            )
            .await?;
        let log = BuildLog::create(&config.log_path(build.id))?;
        self.inner
            .live
            .lock()
            .expect("live builds lock is never poisoned")
            .insert(build.id, log.clone());
        let builder = self.clone();
        let task_log = log.clone();
        let build_id = build.id;
        let handle = tokio::spawn(async move {
            let result = builder.run(build_id, request, lock, &task_log).await;
            task_log.finish();
            builder
                .inner
                .live
                .lock()
                .expect("live builds lock is never poisoned")
                .remove(&build_id);
            result
        });
        Ok((build, log, handle))
    }

    async fn run(
        &self,
        build_id: Uuid,
        request: BuildRequest,
        lock: Option<AppLockGuard>,
        log: &BuildLog,
    ) -> BuildResult {
        let _guard = match lock.or_else(|| self.try_lock_app(request.app.id)) {
            Some(guard) => guard,
            None => {
                log.heading(&format!(
                    "Waiting for another build of {} to finish",
                    request.app.name
                ));
                self.lock_app(request.app.id).await
            }
        };
        let mut outcome = BuildOutcome {
            status: BuildStatus::Failed,
            buildpacks: Vec::new(),
            slug_id: None,
            release_id: None,
        };
        let released = 'build: {
            let work = match self.prepare_work(build_id).await {
                Ok(work) => work,
                Err(error) => {
                    tracing::error!(build = %build_id, error = format!("{error:#}"), "make a build's disk");
                    log.error("The build's disk could not be made: the server's log says why");
                    break 'build None;
                }
            };
            let result = tokio::time::timeout(
                self.inner.config.build_timeout,
                self.compile(build_id, &request, &work, log, &mut outcome),
            )
            .await;
            if result.is_err() {
                // Its containers use the work dir.
                self.stop_containers(build_id).await;
            }
            let full_disk = match &result {
                Ok(Err(_)) => self.full_disk_line(&work, request.app.id, log),
                _ => None,
            };
            if let Err(error) = self.remove_work(build_id, work.clone()).await {
                tracing::warn!(error = format!("{error:#}"), dir = %work.display(), "remove build dir");
            }
            match result {
                Ok(Ok(version)) => Some(version),
                Ok(Err(failure)) => {
                    for line in format!("{failure:#}").lines() {
                        log.error(line);
                    }
                    if let Some(line) = full_disk {
                        log.error(&line);
                    }
                    None
                }
                Err(_) => {
                    log.error(&format!(
                        "Build timed out after {} and was stopped",
                        describe_duration(self.inner.config.build_timeout)
                    ));
                    None
                }
            }
        };
        if released.is_some() {
            outcome.status = BuildStatus::Succeeded;
        } else {
            log.error("Push rejected, failed to compile app.");
        }
        if let Err(error) = self.inner.store.finish_build(build_id, &outcome).await {
            tracing::error!(build = %build_id, error = format!("{error:#}"), "record build outcome");
        }
        BuildResult { build_id, released }
    }

    /// Removes every container of a build (after a timeout dropped the step that ran one).
    async fn stop_containers(&self, build_id: Uuid) {
        let Ok((runtime, _)) = self.containers().await else {
            return;
        };
        let ids = match runtime.list(&format!("build-{build_id}-")).await {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(build = %build_id, error = format!("{error:#}"), "list build containers");
                return;
            }
        };
        for id in ids {
            if let Err(error) = runtime.delete(&id).await {
                tracing::warn!(
                    container = id,
                    error = format!("{error:#}"),
                    "remove build container"
                );
            }
        }
    }

    fn app_mutex(&self, app_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .app_locks
            .lock()
            .expect("app locks lock is never poisoned")
            .entry(app_id)
            .or_default()
            .clone()
    }

    /// The app's build lock, if no build holds it.
    pub fn try_lock_app(&self, app_id: Uuid) -> Option<AppLockGuard> {
        self.app_mutex(app_id).try_lock_owned().ok().map(Arc::new)
    }

    /// The app's build lock, once the build holding it is over.
    pub async fn lock_app(&self, app_id: Uuid) -> AppLockGuard {
        Arc::new(self.app_mutex(app_id).lock_owned().await)
    }
}

/// A secret for a capability URL: 24 random bytes from the OS, in hex.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `15 minutes`, `90 seconds`.
fn describe_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(60) && seconds >= 60 {
        format!("{} minutes", seconds / 60)
    } else {
        format!("{seconds} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(Duration::from_secs(900)), "15 minutes");
        assert_eq!(describe_duration(Duration::from_secs(5)), "5 seconds");
    }
}
