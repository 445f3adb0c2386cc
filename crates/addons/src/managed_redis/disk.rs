//! A managed Redis add-on's directory, `<root>/<id>/`, and what root does there.
//!
//! The directory is root's (`0750`, group `redis`): the server reads its config and ACL
//! files, and writes nothing but `data/`, which is the `redis` user's (`0700`). Root never
//! follows a link and never changes anything inside `data/`: it is made once, owned by root
//! and empty, then handed over; removing it (`std::fs::remove_dir_all`) does not follow
//! links. Secrets (Wharf's admin password, the app's newest password) are root-only files.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::Resource;

/// The add-on directory: root's, the server may read it.
const DIR_MODE: u32 = 0o750;
/// Files the server reads (config, ACL file: hashes only).
const SHARED_MODE: u32 = 0o640;
/// Files for root alone (passwords, the server's log).
const PRIVATE_MODE: u32 = 0o600;
/// The data directory, the server's alone.
const DATA_MODE: u32 = 0o700;
/// The most of the server's log [`AddonDir::log_tail`] reads.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// The unprivileged user servers run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ServerUser {
    pub uid: u32,
    pub gid: u32,
}

/// The uid and primary gid of `name` (through NSS, as `getent` sees it).
pub(super) fn lookup_user(name: &str) -> anyhow::Result<ServerUser> {
    let missing = || {
        anyhow::anyhow!(
            "the user {name:?} does not exist: install the Debian package redis-server, \
             which creates it (managed Redis add-ons run as that user)"
        )
    };
    if name.is_empty() || name.contains(':') {
        return Err(missing());
    }
    let output = std::process::Command::new("getent")
        .args(["passwd", name])
        .output()
        .context("run getent passwd")?;
    if !output.status.success() {
        return Err(missing());
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    match (
        fields.get(2).and_then(|uid| uid.parse().ok()),
        fields.get(3).and_then(|gid| gid.parse().ok()),
    ) {
        (Some(uid), Some(gid)) => Ok(ServerUser { uid, gid }),
        _ => Err(missing()),
    }
}

/// Fails unless `root` is root's and nobody else may write to it: root makes add-on
/// directories there by name, so nobody else may put anything there first.
pub(super) fn check_owned_by_root(root: &Path) -> anyhow::Result<()> {
    let metadata =
        fs::symlink_metadata(root).with_context(|| format!("inspect {}", root.display()))?;
    anyhow::ensure!(
        metadata.is_dir() && metadata.uid() == 0 && metadata.mode() & 0o022 == 0,
        "{} must be a directory of root's that nobody else may write to (it holds the Redis \
         add-ons' servers)",
        root.display()
    );
    Ok(())
}

/// Fails unless `user` may pass through `path` and every directory above it.
pub(super) fn check_reachable(path: &Path, user: ServerUser) -> anyhow::Result<()> {
    for dir in path.ancestors() {
        let metadata = fs::metadata(dir).with_context(|| format!("inspect {}", dir.display()))?;
        let mode = metadata.mode();
        let passes = if metadata.uid() == user.uid {
            mode & 0o100 != 0
        } else if metadata.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        anyhow::ensure!(
            passes,
            "the Redis add-on servers' user cannot pass through {} (mode {:o}): let it in \
             (chmod o+x) or choose another data directory",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// The files of one add-on.
pub(super) struct AddonDir {
    pub path: PathBuf,
}

impl AddonDir {
    pub fn new(root: &Path, resource: Resource) -> AddonDir {
        AddonDir {
            path: root.join(resource.id.simple().to_string()),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.path.join("data")
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("redis.conf")
    }

    pub fn acl(&self) -> PathBuf {
        self.path.join("users.acl")
    }

    pub fn log(&self) -> PathBuf {
        self.path.join("server.log")
    }

    fn port_file(&self) -> PathBuf {
        self.path.join("port")
    }

    pub fn admin_password(&self) -> PathBuf {
        self.path.join("admin.password")
    }

    pub fn app_password(&self) -> PathBuf {
        self.path.join("app.password")
    }

    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok_and(|metadata| metadata.is_dir())
    }

    /// Makes the directory and `data/` (or finds them), owned as the module says.
    pub fn create(&self, user: ServerUser) -> anyhow::Result<()> {
        make_dir(&self.path, DIR_MODE)?;
        // The add-on directory is root's and in root's directory: nothing else can have put
        // a link here, so these by-path changes are safe.
        std::os::unix::fs::chown(&self.path, Some(0), Some(user.gid))
            .with_context(|| format!("chown {}", self.path.display()))?;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(DIR_MODE))
            .with_context(|| format!("chmod {}", self.path.display()))?;
        let data = self.data();
        make_dir(&data, DATA_MODE)?;
        // Handed over only while it is still root's (so still empty, made above or by an
        // interrupted call): once it is the server's, root never touches it by path again.
        let metadata =
            fs::symlink_metadata(&data).with_context(|| format!("inspect {}", data.display()))?;
        if metadata.uid() == 0 {
            std::os::unix::fs::chown(&data, Some(user.uid), Some(user.gid))
                .with_context(|| format!("chown {}", data.display()))?;
        }
        // The supervisor appends to the log; made here so that it is root's alone.
        let log = self.log();
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_MODE)
            .open(&log)
            .with_context(|| format!("create {}", log.display()))?;
        Ok(())
    }

    /// The port recorded for this add-on, if any.
    pub fn port(&self) -> anyhow::Result<Option<u16>> {
        let Some(text) = read_optional(&self.port_file())? else {
            return Ok(None);
        };
        text.trim()
            .parse()
            .map(Some)
            .with_context(|| format!("read the port in {}", self.port_file().display()))
    }

    /// The port recorded for this add-on; else `known` (the port its URLs name) or the
    /// lowest port of `range` that no other add-on under `root` records and that is free on
    /// `listen`, now recorded. The caller serialises calls.
    pub fn allocate_port(
        &self,
        root: &Path,
        listen: IpAddr,
        range: (u16, u16),
        known: Option<u16>,
    ) -> anyhow::Result<u16> {
        if let Some(port) = self.port()? {
            return Ok(port);
        }
        if let Some(port) = known {
            write_file(&self.port_file(), &format!("{port}\n"), SHARED_MODE, None)?;
            return Ok(port);
        }
        let mut taken = BTreeSet::new();
        for entry in fs::read_dir(root).with_context(|| format!("list {}", root.display()))? {
            let entry = entry.with_context(|| format!("list {}", root.display()))?;
            let other = AddonDir { path: entry.path() };
            if other.path == self.path || !other.exists() {
                continue;
            }
            if let Ok(Some(port)) = other.port() {
                taken.insert(port);
            }
        }
        let port = (range.0..=range.1)
            .filter(|port| !taken.contains(port))
            .find(|&port| TcpListener::bind((listen, port)).is_ok())
            .with_context(|| {
                format!(
                    "no free port for a Redis add-on in {}-{} on {listen} \
                     (WHARF_ADDON_REDIS_PORTS)",
                    range.0, range.1
                )
            })?;
        write_file(&self.port_file(), &format!("{port}\n"), SHARED_MODE, None)?;
        Ok(port)
    }

    /// The password in root-only file `path`, made (random) when there is none.
    pub fn secret(&self, path: &Path) -> anyhow::Result<String> {
        if let Some(password) = read_secret(path)? {
            return Ok(password);
        }
        let password = crate::random_password();
        write_file(path, &password, PRIVATE_MODE, None)?;
        Ok(password)
    }

    /// Replaces the root-only file `path` with `password`.
    pub fn set_secret(&self, path: &Path, password: &str) -> anyhow::Result<()> {
        write_file(path, password, PRIVATE_MODE, None)
    }

    /// Replaces a file the server reads.
    pub fn write_shared(
        &self,
        path: &Path,
        contents: &str,
        user: ServerUser,
    ) -> anyhow::Result<()> {
        write_file(path, contents, SHARED_MODE, Some(user.gid))
    }

    /// The last part of the server's log (lossy UTF-8), empty when there is none.
    pub fn log_tail(&self) -> String {
        let read = || -> std::io::Result<String> {
            let mut file = fs::File::open(self.log())?;
            let length = file.metadata()?.len();
            file.seek(SeekFrom::Start(length.saturating_sub(LOG_TAIL_BYTES)))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        read().unwrap_or_default()
    }

    /// Removes the directory and everything in it (links removed, never followed).
    /// Succeeds when it is gone already.
    pub fn remove(&self) -> anyhow::Result<()> {
        match fs::remove_dir_all(&self.path) {
            Err(error) if error.kind() != ErrorKind::NotFound => {
                Err(error).with_context(|| format!("remove {}", self.path.display()))
            }
            _ => Ok(()),
        }
    }
}

/// Makes `path` with `mode`, or finds it; fails when something else than a directory is there.
fn make_dir(path: &Path, mode: u32) -> anyhow::Result<()> {
    match DirBuilder::new().mode(mode).create(path) {
        Err(error) if error.kind() != ErrorKind::AlreadyExists => {
            Err(error).with_context(|| format!("create {}", path.display()))
        }
        _ => {
            let metadata = fs::symlink_metadata(path)
                .with_context(|| format!("inspect {}", path.display()))?;
            anyhow::ensure!(metadata.is_dir(), "{} is not a directory", path.display());
            Ok(())
        }
    }
}

/// The contents of `path`, `None` when it does not exist.
pub(super) fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

/// A password file's password, `None` when there is none (or it is empty: a write that a
/// crash cut short).
pub(super) fn read_secret(path: &Path) -> anyhow::Result<Option<String>> {
    Ok(read_optional(path)?
        .map(|text| text.trim().to_owned())
        .filter(|password| !password.is_empty()))
}

/// Replaces `path` at once (a temporary file renamed over it), with `mode` and, when given,
/// the group `gid`.
fn write_file(path: &Path, contents: &str, mode: u32, gid: Option<u32>) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        // The mode an earlier run's file had, or the umask's, is not what is wanted.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(gid) = gid {
            std::os::unix::fs::fchown(&file, Some(0), Some(gid))?;
        }
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    };
    write().with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_the_lowest_free_ones_and_stay_recorded() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let listen: IpAddr = "127.0.0.1".parse().expect("an address");
        let dir = |n: u128| {
            let dir = AddonDir::new(
                root.path(),
                Resource {
                    id: uuid::Uuid::from_u128(n),
                },
            );
            make_dir(&dir.path, DIR_MODE).expect("a directory");
            dir
        };
        // A port something else listens on is skipped. The two after it must be free when
        // the test begins (other tests and processes take ephemeral ports too): another base
        // otherwise.
        let (_busy, base) = (0..100)
            .find_map(|_| {
                let busy = TcpListener::bind((listen, 0)).ok()?;
                let base = busy.local_addr().ok()?.port();
                let free = (1..=2).all(|n| {
                    base.checked_add(n)
                        .is_some_and(|port| TcpListener::bind((listen, port)).is_ok())
                });
                free.then_some((busy, base))
            })
            .expect("a busy port followed by two free ones");
        let range = (base, base.saturating_add(2));
        let (a, b) = (dir(1), dir(2));
        assert_eq!(
            a.allocate_port(root.path(), listen, range, None).ok(),
            Some(base + 1)
        );
        assert_eq!(
            a.allocate_port(root.path(), listen, range, None).ok(),
            Some(base + 1)
        );
        assert_eq!(
            b.allocate_port(root.path(), listen, range, None).ok(),
            Some(base + 2)
        );
        let full = dir(3).allocate_port(root.path(), listen, range, None);
        let message = format!("{:#}", full.expect_err("no port left"));
        assert!(message.contains("WHARF_ADDON_REDIS_PORTS"), "{message}");
    }

    #[test]
    fn secrets_are_made_once_and_private() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let dir = AddonDir {
            path: root.path().to_owned(),
        };
        let path = dir.admin_password();
        let first = dir.secret(&path).expect("a password");
        assert_eq!(dir.secret(&path).ok(), Some(first));
        let mode = fs::metadata(&path).expect("a file").mode() & 0o777;
        assert_eq!(mode, PRIVATE_MODE);
    }
}
