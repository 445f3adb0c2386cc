//! The build pipeline: source archive in, slug and release out. One build per app at a time
//! (later ones queue); every buildpack step runs in a container with the app at `/app`.
//!
//! Steps: unpack the source (refusing anything that escapes), drop `.slugignore`d files,
//! pick buildpacks (the app's list, or detection over the built-in ones), run each
//! `bin/compile` with the app's config vars in `ENV_DIR` and a per-app cache, read the last
//! buildpack's `bin/release`, merge the Procfile over its default process types, pack the
//! slug, and create the release (after the release phase, if the slug has one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncReadExt;
use uuid::Uuid;
use wharf_containers::{ContainerSpec, ContainerStdio, Limits, Mount, Network, Runtime, Stack};
use wharf_model::{Account, App, Build, BuildStatus, ConfigVars, ProcessTypes, ReleaseStatus};
use wharf_store::{BuildOutcome, NewSlug, Store};

use crate::archive::{pack_slug, unpack, LinkPolicy};
use crate::buildpack::{self, BuildpackSource, BUILTIN};
use crate::log::BuildLog;
use crate::{procfile, release_yaml};
use wharf_slugignore::SlugIgnore;

/// Limits and places a builder works with.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    pub data_dir: PathBuf,
    /// The stack's name, given to buildpacks as `STACK`.
    pub stack_name: String,
    /// The most bytes a slug (compressed) may have.
    pub slug_limit: u64,
    /// The most bytes a source archive may unpack to.
    pub source_limit: u64,
    /// A whole build is stopped after this long.
    pub build_timeout: Duration,
    /// Memory for the build's containers.
    pub build_memory_bytes: u64,
}

impl BuilderConfig {
    pub const DEFAULT_SLUG_LIMIT: u64 = 500 * 1024 * 1024;
    pub const DEFAULT_SOURCE_LIMIT: u64 = 2 * 1024 * 1024 * 1024;
    pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
    pub const DEFAULT_BUILD_MEMORY: u64 = 2 * 1024 * 1024 * 1024;

    pub fn new(data_dir: &Path, stack_name: &str) -> BuilderConfig {
        BuilderConfig {
            data_dir: data_dir.to_owned(),
            stack_name: stack_name.to_owned(),
            slug_limit: Self::DEFAULT_SLUG_LIMIT,
            source_limit: Self::DEFAULT_SOURCE_LIMIT,
            build_timeout: Self::DEFAULT_BUILD_TIMEOUT,
            build_memory_bytes: Self::DEFAULT_BUILD_MEMORY,
        }
    }

    fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }

    pub fn log_path(&self, build_id: Uuid) -> PathBuf {
        self.builds_dir().join(format!("{build_id}.log"))
    }

    fn cache_dir(&self, app_id: Uuid) -> PathBuf {
        self.data_dir.join("cache").join(app_id.to_string())
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

/// The uid and gid builds run as (the stack's `build` user).
const BUILD_USER: (u32, u32) = wharf_containers::BUILD_USER;
const BUILD_PIDS: i64 = 4096;
const BUILD_CPU_SHARES: u64 = 1024;
const BUILD_TMP_BYTES: u64 = 1024 * 1024 * 1024;

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
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: BuilderConfig,
    /// The container runtime and stack, found on first use.
    containers: tokio::sync::OnceCell<(Runtime, Stack)>,
    app_locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    live: Mutex<HashMap<Uuid, Arc<BuildLog>>>,
}

impl Builder {
    pub fn new(store: Store, config: BuilderConfig) -> Builder {
        Builder {
            inner: Arc::new(Inner {
                store,
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
                let stack_dir = data_dir.join("stack");
                let stack = tokio::task::spawn_blocking(move || Stack::prepare(&stack_dir))
                    .await
                    .context("prepare the stack")??;
                Ok((runtime, stack))
            })
            .await
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
        let dir = self.inner.config.cache_dir(app_id);
        match tokio::fs::remove_dir_all(&dir).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("remove {}", dir.display()))
            }
            _ => Ok(()),
        }
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
        let released = {
            let work = self
                .inner
                .config
                .builds_dir()
                .join(format!("work-{build_id}"));
            let result = tokio::time::timeout(
                self.inner.config.build_timeout,
                self.compile(build_id, &request, &work, log, &mut outcome),
            )
            .await;
            if let Err(error) = tokio::fs::remove_dir_all(&work).await {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(%error, dir = %work.display(), "remove build dir");
                }
            }
            match result {
                Ok(Ok(version)) => Some(version),
                Ok(Err(failure)) => {
                    for line in format!("{failure:#}").lines() {
                        log.error(line);
                    }
                    None
                }
                Err(_) => {
                    self.stop_containers(build_id).await;
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

    /// Everything between the source and the release. Returns the released version.
    async fn compile(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        log: &BuildLog,
        outcome: &mut BuildOutcome,
    ) -> anyhow::Result<i64> {
        let config = &self.inner.config;
        let store = &self.inner.store;
        log.heading(&format!("Building on the {} stack", config.stack_name));
        let app_dir = work.join("app");
        let env_dir = work.join("env");
        let cache_dir = config.cache_dir(request.app.id);
        for dir in [&app_dir, &env_dir, &cache_dir] {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("create {}", dir.display()))?;
        }
        let (archive, limit) = (request.archive.clone(), config.source_limit);
        let unpack_dir = app_dir.clone();
        tokio::task::spawn_blocking(move || {
            unpack(&archive, &unpack_dir, LinkPolicy::StayInside, limit)
        })
        .await
        .context("unpack source")?
        .map_err(|e| anyhow::anyhow!("The source could not be unpacked: {e}"))?;
        let ignore = read_slugignore(&app_dir).await?;
        if !ignore.is_empty() {
            let (dir, rules) = (app_dir.clone(), ignore.clone());
            tokio::task::spawn_blocking(move || remove_ignored(&dir, &rules))
                .await
                .context("apply .slugignore")??;
        }

        let current = store.current_release(request.app.id).await?;
        write_env_dir(&env_dir, &current.config).await?;
        chown_tree(&app_dir, BUILD_USER).await?;
        chown_tree(&cache_dir, BUILD_USER).await?;

        let buildpacks = self.select_buildpacks(build_id, request, work, log).await?;
        outcome.buildpacks = buildpacks.iter().map(|(name, _)| name.clone()).collect();
        let mut exports = Vec::new();
        for (index, (name, dir)) in buildpacks.iter().enumerate() {
            let mounts = vec![
                mount(&app_dir, "/app", false),
                mount(&cache_dir, "/cache", false),
                mount(&env_dir, "/env", true),
                mount(dir, "/buildpack", false),
            ];
            // Earlier buildpacks' `export` files, sourced before this one compiles.
            let exports_dir = dir.join(".wharf-exports");
            for (order, earlier) in exports.iter().enumerate() {
                tokio::fs::create_dir_all(&exports_dir).await?;
                tokio::fs::copy(earlier, exports_dir.join(format!("{order:02}")))
                    .await
                    .context("hand on an export file")?;
            }
            let script = "set -a; for f in /buildpack/.wharf-exports/*; do [ -f \"$f\" ] && . \"$f\"; done; \
                          set +a; exec /buildpack/bin/compile /app /cache /env";
            let report = self
                .run_container(
                    &format!("build-{build_id}-compile-{index}"),
                    work,
                    vec!["bash".into(), "-c".into(), script.into()],
                    mounts,
                    request,
                    log,
                    None,
                )
                .await?;
            if report.oom_killed {
                anyhow::bail!(
                    "The {name} buildpack ran out of memory (limit {} MB)",
                    config.build_memory_bytes / (1024 * 1024)
                );
            }
            if report.code != 0 {
                anyhow::bail!(
                    "The {name} buildpack failed to compile this app (exit status {})",
                    report.code
                );
            }
            let export = dir.join("export");
            if export.is_file() {
                exports.push(export);
            }
        }

        let process_types = self
            .process_types(build_id, request, work, &app_dir, buildpacks.last(), log)
            .await?;
        log.heading("Discovering process types");
        if process_types.is_empty() {
            log.detail("No process types: add a Procfile (`web: <command>`) to run this app");
        } else {
            let names: Vec<_> = process_types.keys().map(String::as_str).collect();
            log.detail(&format!("Procfile declares types -> {}", names.join(", ")));
        }

        log.heading("Compressing...");
        let packed_path = work.join("slug.tar.zst");
        let (dir, out, limit) = (app_dir.clone(), packed_path.clone(), config.slug_limit);
        let packed = tokio::task::spawn_blocking(move || pack_slug(&dir, &ignore, &out, limit))
            .await
            .context("pack slug")?;
        let packed = packed.map_err(|error| anyhow::anyhow!("{error}"))?;
        log.detail(&format!("Done: {}", human_size(packed.size)));
        let slug = store
            .create_slug(
                request.app.id,
                NewSlug {
                    process_types: process_types.clone(),
                    commit: request.version.clone(),
                    commit_description: None,
                    buildpack_provided_description: outcome.buildpacks.first().cloned(),
                    stack: config.stack_name.clone(),
                    size: Some(packed.size as i64),
                    checksum: Some(packed.checksum),
                },
            )
            .await?;
        tokio::fs::create_dir_all(config.data_dir.join("slugs")).await?;
        tokio::fs::rename(&packed_path, config.slug_path(slug.id))
            .await
            .context("store the slug")?;
        outcome.slug_id = Some(slug.id);

        log.heading("Launching...");
        let description = match &request.version {
            Some(version) => format!("Deploy {}", version.chars().take(7).collect::<String>()),
            None => "Deploy".to_owned(),
        };
        let release_command = process_types.get("release").cloned();
        let status = if release_command.is_some() {
            ReleaseStatus::Pending
        } else {
            ReleaseStatus::Succeeded
        };
        let release = store
            .release_slug(request.app.id, slug.id, &description, status, &request.user)
            .await?;
        outcome.release_id = Some(release.id);
        if let Some(command) = release_command {
            log.heading("Running release command...");
            let config_vars = store
                .release_by_id(request.app.id, release.id)
                .await?
                .map(|r| r.config)
                .unwrap_or_default();
            let report = self
                .run_container(
                    &format!("build-{build_id}-phase"),
                    work,
                    vec!["bash".into(), "-c".into(), profile_command(&command)],
                    vec![mount(&app_dir, "/app", false)],
                    request,
                    log,
                    Some((&config_vars, release.version)),
                )
                .await?;
            let succeeded = report.code == 0 && !report.oom_killed;
            store
                .finish_release(
                    request.app.id,
                    release.id,
                    if succeeded {
                        ReleaseStatus::Succeeded
                    } else {
                        ReleaseStatus::Failed
                    },
                )
                .await?;
            if !succeeded {
                anyhow::bail!(
                    "Release v{} failed: its release command exited with status {}; the previous release keeps running",
                    release.version,
                    report.code
                );
            }
        }
        log.detail(&format!("Released v{}", release.version));
        log.detail(&format!("{} deployed to Wharf", request.web_url));
        Ok(release.version)
    }

    /// The app's buildpacks, fetched into the work dir; or the first built-in one whose
    /// `bin/detect` passes.
    async fn select_buildpacks(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        log: &BuildLog,
    ) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let builtin_dir = self.inner.config.builtin_buildpacks();
        let listed = self.inner.store.buildpacks(request.app.id).await?;
        let mut selected = Vec::new();
        if listed.is_empty() {
            for name in BUILTIN {
                let dir = work.join(format!("buildpack-{name}"));
                buildpack::fetch(&BuildpackSource::Builtin(name), &builtin_dir, &dir).await?;
                chown_tree(&dir, BUILD_USER).await?;
                if let Some(detected) = self.detect(build_id, request, work, &dir, name).await? {
                    log.heading(&format!("{detected} app detected"));
                    selected.push((name.to_string(), dir));
                    return Ok(selected);
                }
            }
            anyhow::bail!(
                "No default language could be detected for this app: add a Procfile, \
                 requirements.txt, package.json or index.html, or set a buildpack with \
                 `wharf buildpacks:add`"
            );
        }
        for (index, url) in listed.iter().enumerate() {
            let source = BuildpackSource::parse(url).map_err(anyhow::Error::msg)?;
            let dir = work.join(format!("buildpack-{index}"));
            buildpack::fetch(&source, &builtin_dir, &dir)
                .await
                .with_context(|| format!("buildpack {url}"))?;
            // Buildpacks may write an `export` file into their own directory.
            chown_tree(&dir, BUILD_USER).await?;
            match self
                .detect(build_id, request, work, &dir, &format!("{index}"))
                .await?
            {
                Some(detected) => log.heading(&format!("{detected} app detected")),
                None => anyhow::bail!("App not compatible with buildpack: {url}"),
            }
            selected.push((url.clone(), dir));
        }
        Ok(selected)
    }

    /// Runs `bin/detect`; its output names what it found.
    async fn detect(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        buildpack_dir: &Path,
        label: &str,
    ) -> anyhow::Result<Option<String>> {
        let silent = BuildLog::create(&work.join(format!("detect-{label}.log")))?;
        let report = self
            .run_container(
                &format!("build-{build_id}-detect-{label}"),
                work,
                vec!["/buildpack/bin/detect".into(), "/app".into()],
                vec![
                    mount(&work.join("app"), "/app", true),
                    mount(buildpack_dir, "/buildpack", true),
                ],
                request,
                &silent,
                None,
            )
            .await?;
        let output = String::from_utf8_lossy(&silent.contents())
            .trim()
            .to_owned();
        Ok((report.code == 0).then(|| {
            if output.is_empty() {
                label.to_owned()
            } else {
                output.lines().last().unwrap_or(label).to_owned()
            }
        }))
    }

    /// The Procfile's process types over the last buildpack's defaults.
    async fn process_types(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        app_dir: &Path,
        last: Option<&(String, PathBuf)>,
        log: &BuildLog,
    ) -> anyhow::Result<ProcessTypes> {
        let mut types = ProcessTypes::new();
        if let Some((name, dir)) = last {
            if dir.join("bin/release").is_file() {
                let output = BuildLog::create(&work.join("release.yml"))?;
                let report = self
                    .run_container(
                        &format!("build-{build_id}-release"),
                        work,
                        vec!["/buildpack/bin/release".into(), "/app".into()],
                        vec![mount(app_dir, "/app", true), mount(dir, "/buildpack", true)],
                        request,
                        &output,
                        None,
                    )
                    .await?;
                if report.code != 0 {
                    anyhow::bail!(
                        "The {name} buildpack's bin/release failed (exit status {})",
                        report.code
                    );
                }
                let info = release_yaml::parse(&String::from_utf8_lossy(&output.contents()))
                    .map_err(|e| anyhow::anyhow!("The {name} buildpack's {e}"))?;
                types.extend(info.default_process_types);
            }
        }
        match tokio::fs::read_to_string(app_dir.join("Procfile")).await {
            Ok(text) => types.extend(procfile::parse(&text)?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).context("read the Procfile"),
        }
        if types.is_empty() {
            log.detail("No Procfile found");
        }
        Ok(types)
    }

    /// Runs one step in a container, its output into `log`. `release` gives the config vars
    /// and version of a release phase; other steps get the build environment.
    #[allow(clippy::too_many_arguments)]
    async fn run_container(
        &self,
        id: &str,
        work: &Path,
        args: Vec<String>,
        mounts: Vec<Mount>,
        request: &BuildRequest,
        log: &BuildLog,
        release: Option<(&ConfigVars, i64)>,
    ) -> anyhow::Result<StepReport> {
        let config = &self.inner.config;
        let mut env = vec![
            ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("HOME".to_owned(), "/app".to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ("STACK".to_owned(), config.stack_name.clone()),
            (
                "SOURCE_VERSION".to_owned(),
                request.version.clone().unwrap_or_default(),
            ),
        ];
        if let Some((vars, version)) = release {
            env.extend(vars.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
            env.push(("DYNO".to_owned(), format!("release.{version}")));
        }
        let (runtime, stack) = self.containers().await?;
        let spec = ContainerSpec {
            id: id.to_owned(),
            stack: stack.clone(),
            args,
            env,
            cwd: "/app".to_owned(),
            user: BUILD_USER,
            hostname: request.app.name.to_string(),
            mounts,
            app_overlay: None,
            tmp_size_bytes: BUILD_TMP_BYTES,
            limits: Limits {
                memory_bytes: config.build_memory_bytes,
                pids: BUILD_PIDS,
                cpu_shares: BUILD_CPU_SHARES,
            },
            network: Network::Host,
            readonly_rootfs: true,
        };
        let bundle = work.join("bundles").join(id);
        let mut container = runtime
            .run(&spec, &bundle, ContainerStdio::Piped)
            .await
            .with_context(|| format!("start container {id}"))?;
        let stdout = container.stdout();
        let stderr = container.stderr();
        let copy_out = copy_into(stdout, log);
        let copy_err = copy_into(stderr, log);
        let _ = tokio::join!(copy_out, copy_err);
        let report = container.wait().await.context("wait for container")?;
        Ok(StepReport {
            code: report.status.code(),
            oom_killed: report.oom_killed,
        })
    }
}

struct StepReport {
    code: i32,
    oom_killed: bool,
}

async fn copy_into(stream: Option<impl tokio::io::AsyncRead + Unpin>, log: &BuildLog) {
    let Some(mut stream) = stream else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => log.write(&buffer[..n]),
        }
    }
}

fn mount(source: &Path, destination: &str, readonly: bool) -> Mount {
    Mount {
        source: source.to_owned(),
        destination: destination.to_owned(),
        readonly,
    }
}

/// Runs `command` the way dynos run it: after `/app/.profile.d/*.sh` and `/app/.profile`.
pub fn profile_command(command: &str) -> String {
    format!(
        "for f in /app/.profile.d/*.sh; do [ -f \"$f\" ] && . \"$f\"; done; \
         [ -f /app/.profile ] && . /app/.profile; {command}"
    )
}

async fn read_slugignore(app_dir: &Path) -> anyhow::Result<SlugIgnore> {
    match tokio::fs::read_to_string(app_dir.join(wharf_slugignore::FILE_NAME)).await {
        Ok(text) => Ok(SlugIgnore::parse(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(SlugIgnore::default()),
        Err(error) => Err(error).context("read .slugignore"),
    }
}

fn remove_ignored(dir: &Path, ignore: &SlugIgnore) -> anyhow::Result<()> {
    fn walk(root: &Path, relative: &Path, ignore: &SlugIgnore) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(root.join(relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let file_type = entry.file_type()?;
            if ignore.is_ignored(&path.to_string_lossy(), file_type.is_dir()) {
                let full = root.join(&path);
                if file_type.is_dir() {
                    std::fs::remove_dir_all(&full)?;
                } else {
                    std::fs::remove_file(&full)?;
                }
            } else if file_type.is_dir() {
                walk(root, &path, ignore)?;
            }
        }
        Ok(())
    }
    walk(dir, Path::new(""), ignore).context("remove files named in .slugignore")
}

/// `ENV_DIR`: one file per config var, named for the var, holding its value.
async fn write_env_dir(dir: &Path, config: &ConfigVars) -> anyhow::Result<()> {
    for (key, value) in config.iter() {
        tokio::fs::write(dir.join(key), value)
            .await
            .with_context(|| format!("write ENV_DIR/{key}"))?;
    }
    Ok(())
}

async fn chown_tree(dir: &Path, (uid, gid): (u32, u32)) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("chown")
        .args(["-R", "-h", &format!("{uid}:{gid}")])
        .arg(dir)
        .output()
        .await
        .context("run chown")?;
    if !output.status.success() {
        anyhow::bail!(
            "chown {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
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

/// Heroku's size style: `23.4M`, `512K`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
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

    #[test]
    fn sizes_read_like_herokus() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.0K");
        assert_eq!(human_size(24_536_678), "23.4M");
    }

    #[test]
    fn commands_run_after_the_profile() {
        let command = profile_command("gunicorn app:app");
        assert!(command.starts_with("for f in /app/.profile.d/*.sh"));
        assert!(command.ends_with("; gunicorn app:app"));
    }
}
