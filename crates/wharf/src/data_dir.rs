//! The data dir's permissions. The servers Wharf runs for add-ons run as their own users
//! (`postgres`, `redis`) and must pass through the data dir to their directories under
//! `addons/`, so the data dir is `0711` (others may pass through, never list). Everything else
//! in it but the public binary dynos run stays root's alone: every other entry is made private
//! (`0700` directories, `0600` files, nothing for group or others) at start and again once the
//! subsystems made theirs, and the directories Wharf makes there later are made here first,
//! private.
//!
//! One server per data dir: [`lock`] holds `wharf.lock` for the server's whole life, so a
//! second server started on the same data dir is refused before it touches anything, and no
//! dyno ever has two supervisors.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// The data dir's own mode: root's, and passable (not listable) by the add-on servers' users.
const DATA_DIR_MODE: u32 = 0o711;
/// Entries others reach, whose own modes are their makers' business: `addons` (the add-on
/// servers' users pass through to their directories) and `wharf` (the binary dynos run as
/// `/wharf/bin/wharf`, public anyway).
const SHARED: &[&str] = &["addons", "wharf"];
/// Directories Wharf makes in the data dir, some of them only when first needed (a first
/// push, a first upload): made now, private, so that none appears readable later.
const PRIVATE_DIRS: &[&str] = &[
    "buildpacks",
    "builds",
    "cache",
    "disk",
    "dynos",
    "logs",
    "repos",
    "runtime",
    "slugs",
    "sources",
    "stack",
    "stacks",
    "tls",
];

/// The file whose lock makes a server the only one on its data dir.
const LOCK_FILE: &str = "wharf.lock";

/// Creates the data dir if need be and takes its lock, for as long as the returned file stays
/// open. The kernel drops the lock when the process ends, however it ends (a `kill -9`
/// included), and the file is never inherited by a child (`O_CLOEXEC`), so nothing the server
/// started can keep it. The holder's process id is written in the file for the refusal.
pub fn lock(dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "create the data dir {} (run as root, or set WHARF_DATA_DIR to a directory you own)",
            dir.display()
        )
    })?;
    // Server path: the data dir's own lock file, never a tenant's.
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            anyhow::bail!(
                "another wharf server{holder} is running on the data dir {}: stop it first, \
                 or give this one a data dir of its own (WHARF_DATA_DIR)",
                dir.display()
            );
        }
        Err(TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("lock {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("write {}", path.display()))?;
    Ok(file)
}

/// [`lock`], waiting up to `timeout` for the server that holds it to let go (a successor
/// taking over from it).
pub async fn lock_when_free(dir: &Path, timeout: std::time::Duration) -> anyhow::Result<File> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match lock(dir) {
            Ok(file) => return Ok(file),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(error.context(format!("still held after {timeout:?}")))
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// Creates the data dir (and its private directories) and sets every mode.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "create the data dir {} (run as root, or set WHARF_DATA_DIR to a directory you own)",
            dir.display()
        )
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DATA_DIR_MODE))
        .with_context(|| format!("set the mode of {}", dir.display()))?;
    for name in PRIVATE_DIRS {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
    }
    privatize(dir)
}

/// Takes group and other permissions from every entry of the data dir but the shared ones.
/// Links are left alone (Wharf makes none there; a mode change would follow one).
pub fn privatize(dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        if SHARED.iter().any(|name| entry.file_name() == *name) {
            continue;
        }
        let path = entry.path();
        let metadata =
            std::fs::symlink_metadata(&path).with_context(|| format!("read {}", path.display()))?;
        let mode = metadata.permissions().mode() & 0o7777;
        if metadata.file_type().is_symlink() || mode & 0o077 == 0 {
            continue;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("make {} private", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn everything_but_the_addons_is_private() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).expect("data dir");
        std::fs::write(dir.join("wharf.db"), "").expect("a file");
        std::fs::set_permissions(dir.join("wharf.db"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        std::fs::create_dir(dir.join("addons")).expect("addons");
        std::fs::set_permissions(dir.join("addons"), std::fs::Permissions::from_mode(0o711))
            .expect("chmod");
        std::fs::create_dir(dir.join("wharf")).expect("the binary's directory");
        std::fs::set_permissions(dir.join("wharf"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).expect("outside");
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::symlink(&outside, dir.join("link")).expect("a link");
        prepare(&dir).expect("prepared");
        assert_eq!(mode(&dir), 0o711);
        assert_eq!(mode(&dir.join("wharf.db")), 0o600);
        assert_eq!(mode(&dir.join("addons")), 0o711);
        assert_eq!(mode(&dir.join("wharf")), 0o755);
        assert_eq!(mode(&outside), 0o755, "a link is not followed");
        for name in PRIVATE_DIRS {
            assert_eq!(mode(&dir.join(name)), 0o700, "{name}");
        }
    }
}
