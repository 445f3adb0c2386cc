//! Dynos outlive the server process: each runs detached under its holder (`wharf-shim`),
//! with a record of what it runs in its directory (`dynos/<container>/dyno.json`). A server
//! that starts takes up every running dyno whose record, holder and place on the network are
//! intact, as it was (same container, same process, state `up`, no log line); the plan then
//! replaces those that no longer belong to the desired state like any other, and everything
//! else a previous server left (containers without a record or holder, one-offs, directories,
//! disks, veths) is removed.
//!
//! Server paths only: records in the server's dyno directories, written by the server. A
//! record is read without following links and refused past [`RECORD_MAX_BYTES`]; one that
//! does not parse (a crash mid-write leaves none: it is renamed into place) means the dyno is
//! replaced, not adopted.

use std::collections::HashSet;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use wharf_containers::{Container, ContainerStdio};
use wharf_model::DynoSize;

use crate::logs::now_micros;
use crate::manager::Shared;
use crate::registry::{DynoEntry, RunHandle};
use crate::runner::DYNO_PREFIX;
use crate::state::{DynoName, DynoState};

/// The record's name in a dyno's directory.
pub(crate) const RECORD: &str = "dyno.json";
/// A record is a few kilobytes (its config vars at most some hundreds).
const RECORD_MAX_BYTES: u64 = 4 << 20;

/// What a running dyno is, as the next server needs it to take it up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct DynoRecord {
    pub dyno_id: Uuid,
    pub app_id: Uuid,
    pub container_id: String,
    pub name: String,
    pub release: i64,
    pub slug_id: Uuid,
    /// The stack its slug was built on; `None` in a record of a server from before records
    /// named it.
    #[serde(default)]
    pub stack: Option<String>,
    pub command: String,
    pub config: Vec<(String, String)>,
    pub size: String,
    /// Unix microseconds.
    pub started_at: i128,
    /// The container's address on the dyno network.
    pub network_address: Option<Ipv4Addr>,
    /// Where the router reaches a web dyno.
    pub route: Option<SocketAddr>,
    pub port: Option<u16>,
    /// Its capped disk's name in the pool.
    pub disk: Option<String>,
    pub one_off: bool,
}

/// Writes `record` into `dyno_dir` (made if missing, mode 0700), atomically.
pub(crate) async fn write_record(dyno_dir: &Path, record: &DynoRecord) -> anyhow::Result<()> {
    let json = serde_json::to_vec(record).context("serialize the dyno's record")?;
    let dir = dyno_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::os::unix::fs::DirBuilderExt;
        // Server path: the dyno's own directory in the data dir.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("create {}", dir.display()))?;
        let temporary = dir.join(".dyno.json.tmp");
        // Server path: the record's temporary file, replaced whole.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&temporary)
            .with_context(|| format!("create {}", temporary.display()))?;
        file.write_all(&json)
            .with_context(|| format!("write {}", temporary.display()))?;
        // Server path: renamed into place, so a crash leaves the old record or the new one.
        std::fs::rename(&temporary, dir.join(RECORD))
            .with_context(|| format!("write {}", dir.join(RECORD).display()))
    })
    .await
    .context("write the dyno's record: task failed")?
}

/// Reads the record in `dyno_dir`, refusing a link, a huge file or one that does not parse.
fn read_record(dyno_dir: &Path) -> anyhow::Result<DynoRecord> {
    let path = dyno_dir.join(RECORD);
    // Server path: the dyno's record, never a link.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut json = Vec::new();
    file.take(RECORD_MAX_BYTES + 1)
        .read_to_end(&mut json)
        .with_context(|| format!("read {}", path.display()))?;
    if json.len() as u64 > RECORD_MAX_BYTES {
        bail!("{} is larger than {RECORD_MAX_BYTES} bytes", path.display());
    }
    serde_json::from_slice(&json).with_context(|| format!("parse {}", path.display()))
}

/// A dyno taken up at start, waiting for its supervisor's first run.
pub(crate) struct Adopted {
    pub container: Container,
    pub container_id: String,
    pub route: Option<SocketAddr>,
    pub port: Option<u16>,
    pub attachment: Option<wharf_network::Attachment>,
    pub disk: Option<(String, PathBuf)>,
}

impl Shared {
    /// At start: takes up the dynos a previous server left running (when containers have
    /// holders), and removes everything else it left.
    pub(crate) async fn take_up_leftovers(self: &Arc<Self>) -> anyhow::Result<()> {
        let states = self
            .runtime
            .states(DYNO_PREFIX)
            .await
            .context("list containers")?;
        let dynos_dir = self.config.data_dir.join("dynos");
        let mut adopted: HashSet<String> = HashSet::new();
        let mut kept_disks: HashSet<String> = HashSet::new();
        if self.runtime.holder().is_some() {
            // The apps' names (their routes); a dyno of an app that is gone is not taken up.
            let apps = self.source.app_names().await.context("list the apps")?;
            // A stopped one too: its process ended while no server watched, and its holder
            // has the exit status, which is logged like any exit (and the dyno restarted).
            let candidates = states
                .iter()
                .filter(|state| state.status == "running" || state.status == "stopped");
            for state in candidates {
                let dir = dynos_dir.join(&state.id);
                let app_name = |app_id: &Uuid| apps.get(app_id).cloned();
                let running = state.status == "running";
                match self.adopt(&state.id, &dir, running, app_name).await {
                    Ok(disk) => {
                        adopted.insert(state.id.clone());
                        kept_disks.extend(disk);
                    }
                    Err(error) => {
                        tracing::info!(container = %state.id, "not taken up, removing it: {error:#}");
                    }
                }
            }
            if !adopted.is_empty() {
                tracing::info!(dynos = adopted.len(), "took up the dynos left running");
            }
        }
        for state in states.iter().filter(|state| !adopted.contains(&state.id)) {
            self.remove_leftover(&state.id, &dynos_dir.join(&state.id))
                .await;
        }
        let (dir, keep) = (dynos_dir.clone(), adopted.clone());
        tokio::task::spawn_blocking(move || clear_dir_except(&dir, &keep))
            .await
            .context("clear dyno directories: task failed")?
            .context("clear dyno directories")?;
        if let Some(disks) = &self.disks {
            for name in disks.pool().names()? {
                if name.starts_with(DYNO_PREFIX) && !kept_disks.contains(&name) {
                    if let Err(error) = disks.remove(&name).await {
                        tracing::warn!(disk = %name, "remove a leftover dyno disk: {error:#}");
                    }
                }
            }
        }
        if let Some(network) = &self.config.network {
            network.release_survivors().await;
        }
        // Extracted slugs stay: the formation is about to need most of them again.
        self.slugs
            .collect_garbage(None, true, self.source.slugs_are_copies());
        Ok(())
    }

    /// Takes up container `id` from its record and holder: the dyno is in the registry as
    /// `up` with a supervisor. Its disk's name, if it has one.
    async fn adopt(
        self: &Arc<Self>,
        id: &str,
        dir: &Path,
        running: bool,
        app_name: impl Fn(&Uuid) -> Option<String>,
    ) -> anyhow::Result<Option<String>> {
        let record = {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || read_record(&dir))
                .await
                .context("read the record: task failed")??
        };
        if record.container_id != id {
            bail!("its record names container {}", record.container_id);
        }
        if record.one_off {
            bail!("a one-off dyno: its terminal went with the last server");
        }
        let app_name = app_name(&record.app_id).context("its app is gone")?;
        let name: DynoName = record
            .name
            .parse()
            .map_err(|error: String| anyhow::anyhow!(error))?;
        let size =
            DynoSize::parse(&record.size).map_err(|_| anyhow::anyhow!("size {:?}", record.size))?;
        let started_at = OffsetDateTime::from_unix_timestamp_nanos(record.started_at * 1000)
            .context("its start time")?;
        let stack = match record.stack {
            Some(stack) => stack,
            None => self.current_stack(record.app_id, record.slug_id).await,
        };
        // An exited container's namespace and veth went with its processes.
        let attachment = match (&self.config.network, record.network_address) {
            (Some(network), Some(address)) if running => Some(network.adopt(address)?),
            (Some(_), None) => bail!("it has no address on the dyno network"),
            _ => None,
        };
        let disk = match (&self.disks, &record.disk) {
            (Some(disks), Some(disk)) => Some((disk.clone(), disks.pool().path(disk))),
            _ => None,
        };
        let container = self
            .runtime
            .adopt(id, &dir.join("bundle"), ContainerStdio::Piped)
            .await?;
        if let Some(port) = record.port {
            self.ports.lock().expect("ports lock poisoned").hold(port);
        }
        let now = now_micros();
        let dyno_id = record.dyno_id;
        let entry = DynoEntry {
            id: dyno_id,
            app_id: record.app_id,
            app_name,
            name,
            release: record.release,
            slug_id: record.slug_id,
            stack,
            command: record.command,
            config: record.config,
            size,
            state: DynoState::Up,
            updated_at: now,
            started_at,
            crashes: 0,
            next_restart: None,
            cycle_at: self.cycle_at(started_at),
            address: record.route,
            container_id: Some(id.to_owned()),
            intent: None,
            run: Some(RunHandle::new()),
            one_off: false,
        };
        let kept = record.disk.clone();
        self.adopted.lock().expect("adopted lock poisoned").insert(
            dyno_id,
            Adopted {
                container,
                container_id: id.to_owned(),
                route: record.route,
                port: record.port,
                attachment,
                disk,
            },
        );
        let mut registry = self.registry();
        registry.dynos.insert(dyno_id, entry);
        self.publish_routes(&registry);
        drop(registry);
        self.spawn_supervisor(dyno_id);
        Ok(kept)
    }

    /// The stack of the app's current slug if that is `slug`, for a dyno whose record does not
    /// name its stack; else none (an unknown stack: its next launch runs on the default stack,
    /// and says so). Such a dyno runs an old release, which the plan replaces soon anyway.
    async fn current_stack(&self, app: Uuid, slug: Uuid) -> String {
        let apps = HashSet::from([app]);
        match self.source.read(Some(&apps), &HashSet::new()).await {
            Ok(read) => read
                .desired
                .apps
                .get(&app)
                .filter(|wanted| wanted.release.slug_id == Some(slug))
                .map(|wanted| wanted.release.stack.clone())
                .unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%app, "read the stack of a dyno taken up: {error:#}");
                String::new()
            }
        }
    }

    /// Removes a container the last server left that is not taken up, letting its holder
    /// (if it has one) see the end and go.
    async fn remove_leftover(&self, id: &str, dir: &Path) {
        tracing::info!(container = %id, "removing a leftover dyno");
        let held = match self.runtime.holder() {
            Some(_) => self
                .runtime
                .adopt(id, &dir.join("bundle"), ContainerStdio::Null)
                .await
                .ok(),
            None => None,
        };
        if let Err(error) = self.runtime.delete(id).await {
            tracing::warn!(container = %id, "remove leftover dyno: {error:#}");
        }
        if let Some(container) = held {
            let waited = tokio::time::timeout(std::time::Duration::from_secs(5), container.wait());
            if let Ok(Err(error)) = waited.await {
                tracing::debug!(container = %id, "a leftover's end: {error:#}");
            }
        }
    }

    /// The dyno taken up at start with id `id`, for its supervisor's first run (once).
    pub(crate) fn take_adopted(&self, id: Uuid) -> Option<Adopted> {
        self.adopted
            .lock()
            .expect("adopted lock poisoned")
            .remove(&id)
    }
}

/// Removes everything in `dir` (which may not exist) but the entries named in `keep`,
/// following no link that dynos left.
fn clear_dir_except(dir: &Path, keep: &HashSet<String>) -> anyhow::Result<()> {
    // Server path: the data dir's dyno directories, named by the server.
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| keep.contains(name))
        {
            continue;
        }
        let path = entry.path();
        wharf_tenant_fs::remove_tree(&path)
            .with_context(|| format!("remove {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record() -> DynoRecord {
        DynoRecord {
            dyno_id: Uuid::from_u128(1),
            app_id: Uuid::from_u128(2),
            container_id: "dyno-2-web.1-abcd".to_owned(),
            name: "web.1".to_owned(),
            release: 3,
            slug_id: Uuid::from_u128(4),
            stack: Some("debian-13".to_owned()),
            command: "python3 -m http.server $PORT".to_owned(),
            config: vec![("A".to_owned(), "b".to_owned())],
            size: "basic".to_owned(),
            started_at: 1_700_000_000_000_000,
            network_address: Some(Ipv4Addr::new(198, 19, 0, 2)),
            route: Some("198.19.0.2:5000".parse().unwrap()),
            port: Some(5000),
            disk: Some("dyno-disk-1".to_owned()),
            one_off: false,
        }
    }

    #[tokio::test]
    async fn records_round_trip_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dyno_dir = dir.path().join("dyno-2-web.1-abcd");
        write_record(&dyno_dir, &record()).await.unwrap();
        assert_eq!(read_record(&dyno_dir).unwrap(), record());

        // Half-written (a crash before the rename cannot do it; a disk error can).
        std::fs::write(dyno_dir.join(RECORD), b"{\"dyno_id\":").unwrap();
        assert!(read_record(&dyno_dir).is_err());
        // A link is never followed.
        std::fs::remove_file(dyno_dir.join(RECORD)).unwrap();
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, serde_json::to_vec(&record()).unwrap()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dyno_dir.join(RECORD)).unwrap();
        assert!(read_record(&dyno_dir).is_err());
        // Missing.
        assert!(read_record(&dir.path().join("nothing")).is_err());
    }

    #[test]
    fn a_record_of_an_earlier_server_names_no_stack() {
        let mut json = serde_json::to_value(record()).unwrap();
        json.as_object_mut().unwrap().remove("stack").unwrap();
        let parsed: DynoRecord = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.stack, None);
        assert_eq!(
            DynoRecord {
                stack: Some("debian-13".to_owned()),
                ..parsed
            },
            record()
        );
    }

    #[test]
    fn clearing_keeps_the_adopted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["dyno-a", "dyno-b", "dyno-c"] {
            std::fs::create_dir_all(dir.path().join(name).join("bundle")).unwrap();
        }
        let keep: HashSet<String> = ["dyno-b".to_owned()].into();
        clear_dir_except(dir.path(), &keep).unwrap();
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["dyno-b"]);
        clear_dir_except(&dir.path().join("missing"), &keep).unwrap();
    }
}
