//! What dyno supervisors report to the registry: a run begins, its container and port, the
//! dyno is up, the run ended (and whether it runs again); plus the platform's log lines, ports
//! and the `wharf` binary every dyno gets.
//!
//! Server paths only: the `wharf` binary's copy, in a directory dynos get read-only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::logs::{now_micros, LogLine, LogSource};
use crate::manager::Shared;
use crate::registry::{Intent, RunHandle};
use crate::runner::{RunEnd, RunInput};
use crate::schedule::{crashes_after_exit, restart_delay};
use crate::state::{DynoName, DynoState};

impl Shared {
    pub(crate) fn log(&self, app_id: Uuid, name: &DynoName, message: impl Into<String>) {
        self.logs.append(
            app_id,
            LogLine::now(LogSource::Heroku, &name.to_string(), message),
        );
    }

    pub(crate) fn allocate_port(&self) -> Option<u16> {
        self.ports.lock().expect("ports lock poisoned").allocate()
    }

    pub(crate) fn release_port(&self, port: u16) {
        self.ports
            .lock()
            .expect("ports lock poisoned")
            .release(port);
    }

    /// What the next run of dyno `id` needs; `None` when it is gone or going.
    pub(crate) fn begin_run(&self, id: Uuid) -> Option<RunInput> {
        let mut registry = self.registry();
        let entry = registry.dynos.get_mut(&id)?;
        let handle = entry.run.clone()?;
        if self.closing.is_cancelled() || entry.state == DynoState::Down {
            return None;
        }
        entry.started_at = now_micros();
        Some(RunInput {
            app_id: entry.app_id,
            name: entry.name.clone(),
            slug_id: entry.slug_id,
            stack: entry.stack.clone(),
            release: entry.release,
            command: entry.command.clone(),
            config: entry.config.clone(),
            size: entry.size,
            handle,
        })
    }

    /// Records the container and (for a web dyno) the address of the dyno's current run.
    pub(crate) fn record_run(&self, id: Uuid, container_id: &str, address: Option<SocketAddr>) {
        if let Some(entry) = self.registry().dynos.get_mut(&id) {
            entry.container_id = Some(container_id.to_owned());
            entry.address = address;
        }
    }

    /// A starting dyno is up: it enters the routes, and gets its cycling time.
    pub(crate) fn dyno_up(&self, id: Uuid) {
        let mut registry = self.registry();
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return;
        };
        if entry.state != DynoState::Starting || entry.intent.is_some() {
            return;
        }
        entry.cycle_at = self.cycle_at(entry.started_at);
        let app_id = entry.app_id;
        self.transition(&mut registry, id, DynoState::Up);
        drop(registry);
        self.notify(app_id);
    }

    /// When a dyno whose process started at `started_at` is cycled (restarted), if cycling
    /// is on.
    pub(crate) fn cycle_at(&self, started_at: OffsetDateTime) -> Option<OffsetDateTime> {
        self.config.cycle_after.map(|after| {
            let jitter = rand::thread_rng().gen_range(Duration::ZERO..=self.config.cycle_jitter);
            started_at + after + jitter
        })
    }

    /// The dyno's supervisor left it running for the next server: its run is over here.
    pub(crate) fn detached(&self, id: Uuid) {
        let finished = self
            .registry()
            .dynos
            .get_mut(&id)
            .and_then(|entry| entry.run.take());
        if let Some(run) = finished {
            run.done.cancel();
        }
    }

    /// Records how a run ended; returns whether the dyno runs again (a restart in place).
    pub(crate) fn end_run(&self, id: Uuid, end: RunEnd) -> bool {
        let mut registry = self.registry();
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return false;
        };
        entry.container_id = None;
        entry.address = None;
        let app_id = entry.app_id;
        let finished = entry.run.take();
        let again = match entry.intent.take() {
            Some(Intent::Stop) => {
                registry.dynos.remove(&id);
                self.publish_routes(&registry);
                false
            }
            Some(Intent::Restart) if !self.closing.is_cancelled() => {
                entry.run = Some(RunHandle::new());
                true
            }
            Some(Intent::Idle) => {
                entry.cycle_at = None;
                false
            }
            Some(Intent::Restart) | None => {
                let now = now_micros();
                if !matches!(end, RunEnd::Stopped) {
                    entry.crashes = crashes_after_exit(entry.crashes, entry.ran_for(now));
                }
                let delay = restart_delay(entry.crashes);
                entry.next_restart = Some(now + delay);
                entry.cycle_at = None;
                tracing::warn!(
                    app = %entry.app_name,
                    dyno = %entry.name,
                    release = entry.release,
                    crashes = entry.crashes,
                    restart_in = ?delay,
                    "dyno crashed"
                );
                self.transition(&mut registry, id, DynoState::Crashed);
                false
            }
        };
        drop(registry);
        if let Some(run) = finished {
            run.done.cancel();
        }
        self.notify(app_id);
        again
    }

    /// The directory bound at `/wharf` (holding `bin/wharf`), prepared once.
    pub(crate) async fn wharf_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self
            .wharf_dir
            .get_or_try_init(|| async {
                let source = match &self.config.wharf_binary {
                    Some(path) => path.clone(),
                    None => std::env::current_exe().context("find the running executable")?,
                };
                let dir = self.config.data_dir.join("wharf");
                let target = dir.clone();
                tokio::task::spawn_blocking(move || install_binary(&source, &target))
                    .await
                    .context("install the wharf binary: task failed")??;
                anyhow::Ok(dir)
            })
            .await?;
        Ok(dir.clone())
    }
}

/// Copies (or hard-links) the binary to `<dir>/bin/wharf`, readable and executable by dynos,
/// replacing an older copy atomically.
fn install_binary(source: &Path, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("create {}", bin.display()))?;
    for path in [dir, bin.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    let target = bin.join("wharf");
    let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
        a.len() == b.len() && a.modified().ok() == b.modified().ok()
    };
    let source_meta =
        std::fs::metadata(source).with_context(|| format!("stat {}", source.display()))?;
    if std::fs::metadata(&target).is_ok_and(|existing| same(&existing, &source_meta)) {
        return Ok(());
    }
    let temporary = bin.join(format!(".wharf-{}", Uuid::new_v4().simple()));
    if std::fs::hard_link(source, &temporary).is_err() {
        std::fs::copy(source, &temporary)
            .with_context(|| format!("copy {} to {}", source.display(), temporary.display()))?;
        let file = std::fs::File::options()
            .write(true)
            .open(&temporary)
            .with_context(|| format!("open {}", temporary.display()))?;
        if let Ok(modified) = source_meta.modified() {
            file.set_modified(modified)
                .with_context(|| format!("set the time of {}", temporary.display()))?;
        }
    }
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", temporary.display()))?;
    std::fs::rename(&temporary, &target).with_context(|| format!("rename to {}", target.display()))
}
