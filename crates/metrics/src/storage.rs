//! Day files: `<data-dir>/metrics/<app-id>/<YYYY-MM-DD>.<kind>`, one per app, kind
//! (`router`, `dynos`, `events`) and UTC day, append-only (formats in [`crate::format`]).
//!
//! Paths are made from app ids (UUIDs) and dates only, never from a name a tenant chose. The
//! data dir is root's and no tenant writes there, but nothing here follows a symbolic link
//! anyway: directories are checked with `symlink_metadata`, files opened with `O_NOFOLLOW`.
//! A write cut short by a SIGKILL leaves a last line without its `\n`: readers skip it, and
//! the next append first ends it, so that it never joins the next record.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

/// The directory under the data dir.
pub const DIRECTORY: &str = "metrics";
/// Days kept unless configured (`WHARF_METRICS_RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: u32 = 7;

/// What a day file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Router,
    Dynos,
    Events,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Router, Kind::Dynos, Kind::Events];

    fn extension(self) -> &'static str {
        match self {
            Kind::Router => "router",
            Kind::Dynos => "dynos",
            Kind::Events => "events",
        }
    }
}

/// The metrics directory and how long its files are kept.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    retention_days: u32,
}

impl Storage {
    /// Uses (making it, mode 0700) `<data_dir>/metrics`; refuses one that is not a directory.
    pub fn open(data_dir: &Path, retention_days: u32) -> anyhow::Result<Storage> {
        anyhow::ensure!(
            retention_days >= 1,
            "the metrics retention must be at least one day"
        );
        let root = data_dir.join(DIRECTORY);
        make_directory(&root)?;
        Ok(Storage {
            root,
            retention_days,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    fn app_dir(&self, app_id: Uuid) -> PathBuf {
        self.root.join(app_id.hyphenated().to_string())
    }

    fn file(&self, app_id: Uuid, kind: Kind, day: Date) -> PathBuf {
        self.app_dir(app_id)
            .join(format!("{}.{}", day_name(day), kind.extension()))
    }

    /// Appends `text` (whole lines) to the app's `kind` file of `day`.
    pub fn append(&self, app_id: Uuid, kind: Kind, day: Date, text: &str) -> anyhow::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        make_directory(&self.app_dir(app_id))?;
        let path = self.file(app_id, kind, day);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        check_regular(&file, &path)?;
        let length = file
            .metadata()
            .with_context(|| format!("read {}", path.display()))?
            .len();
        let mut ended = true;
        if length > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(length - 1))
                .and_then(|_| file.read_exact(&mut last))
                .with_context(|| format!("read {}", path.display()))?;
            ended = last[0] == b'\n';
        }
        // A torn last line becomes a line of its own (skipped by readers), never the start
        // of this record. One write for all of it.
        let write = if ended {
            file.write_all(text.as_bytes())
        } else {
            file.write_all(format!("\n{text}").as_bytes())
        };
        write.with_context(|| format!("append to {}", path.display()))
    }

    /// Calls `line` with each complete line of the app's `kind` files of the days from `first`
    /// to `last` (inclusive), oldest first; a missing file is an empty one, and a last line
    /// without its `\n` is skipped.
    pub fn read_lines(
        &self,
        app_id: Uuid,
        kind: Kind,
        first: Date,
        last: Date,
        mut line: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        let mut day = first;
        let mut text = String::new();
        while day <= last {
            let path = self.file(app_id, kind, day);
            text.clear();
            if read_file(&path, &mut text)? {
                let complete = match text.rfind('\n') {
                    Some(end) => &text[..end],
                    None => "",
                };
                for one in complete.split('\n') {
                    if !one.is_empty() {
                        line(one);
                    }
                }
            }
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
        }
        Ok(())
    }

    /// Deletes the day files older than the retention (the days before `now - retention`),
    /// and app directories left empty. Returns how many files went.
    pub fn prune(&self, now: OffsetDateTime) -> anyhow::Result<usize> {
        let oldest_kept = (now - Duration::days(i64::from(self.retention_days))).date();
        let mut removed = 0;
        for app in read_directory(&self.root)? {
            let Some(app_dir) = app_directory(&self.root, &app) else {
                continue;
            };
            let mut left = 0;
            for name in read_directory(&app_dir)? {
                let day = name.split_once('.').and_then(|(day, _)| parse_day(day));
                match day {
                    Some(day) if day < oldest_kept => {
                        let path = app_dir.join(&name);
                        // Removes a link itself, never what it points at.
                        std::fs::remove_file(&path)
                            .with_context(|| format!("remove {}", path.display()))?;
                        removed += 1;
                    }
                    _ => left += 1,
                }
            }
            if left == 0 {
                // Another writer may have just made a file: then the directory stays.
                let _ = std::fs::remove_dir(&app_dir);
            }
        }
        Ok(removed)
    }

    /// Deletes everything kept for the app (when it is deleted).
    pub fn forget(&self, app_id: Uuid) -> anyhow::Result<()> {
        let dir = self.app_dir(app_id);
        match std::fs::symlink_metadata(&dir) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error).with_context(|| format!("read {}", dir.display())),
            Ok(meta) if !meta.file_type().is_dir() => {
                // Not ours to walk: remove the entry itself.
                return std::fs::remove_file(&dir)
                    .with_context(|| format!("remove {}", dir.display()));
            }
            Ok(_) => {}
        }
        for name in read_directory(&dir)? {
            let path = dir.join(&name);
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_dir());
            if is_dir {
                // Nothing here makes directories in an app's directory.
                bail!("{} is a directory: remove it by hand", path.display());
            }
            std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
        }
        std::fs::remove_dir(&dir).with_context(|| format!("remove {}", dir.display()))
    }
}

/// `2026-11-22`.
pub fn day_name(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

fn parse_day(text: &str) -> Option<Date> {
    let mut parts = text.split('-');
    let year = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    if parts.next().is_some() || text.len() != 10 {
        return None;
    }
    Date::from_calendar_date(year, month.try_into().ok()?, day).ok()
}

/// Makes `path` a directory (mode 0700) unless it is one; refuses a link or anything else.
fn make_directory(path: &Path) -> anyhow::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path)
                .with_context(|| format!("read {}", path.display()))?;
            if meta.file_type().is_dir() {
                Ok(())
            } else {
                bail!(
                    "{} is not a directory (a link or a file): move it away so that Wharf can keep metrics there",
                    path.display()
                )
            }
        }
        Err(error) => Err(error).with_context(|| format!("make {}", path.display())),
    }
}

/// The app directory `name` under `root`, if it is one (an app id, a real directory).
fn app_directory(root: &Path, name: &str) -> Option<PathBuf> {
    Uuid::parse_str(name).ok()?;
    let path = root.join(name);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    meta.file_type().is_dir().then_some(path)
}

fn read_directory(path: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("list {}", path.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", path.display()))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Reads the file at `path` into `text` (invalid UTF-8 replaced); `false` when it does not
/// exist. Refuses a link, a FIFO or anything but a regular file.
fn read_file(path: &Path, text: &mut String) -> anyhow::Result<bool> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error).with_context(|| format!("open {}", path.display())),
    };
    check_regular(&file, path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("read {}", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(valid) => *text = valid,
        Err(error) => *text = String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
    Ok(true)
}

fn check_regular(file: &File, path: &Path) -> anyhow::Result<()> {
    let meta = file
        .metadata()
        .with_context(|| format!("read {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!("{} is not a regular file: move it away", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn lines(storage: &Storage, app: Uuid, day: Date) -> Vec<String> {
        let mut found = Vec::new();
        storage
            .read_lines(app, Kind::Router, day, day, |line| {
                found.push(line.to_owned())
            })
            .expect("read");
        found
    }

    #[test]
    fn appends_read_back_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path(), 7).expect("open");
        let app = Uuid::from_u128(7);
        let day = date!(2026 - 11 - 22);
        storage
            .append(app, Kind::Router, day, "one\ntwo\n")
            .expect("append");
        // A SIGKILL in the middle of a write.
        let path = storage.file(app, Kind::Router, day);
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"thr").expect("write");
        assert_eq!(lines(&storage, app, day), ["one", "two"]);
        storage
            .append(app, Kind::Router, day, "four\n")
            .expect("append");
        assert_eq!(lines(&storage, app, day), ["one", "two", "thr", "four"]);
        assert!(lines(&storage, app, date!(2026 - 11 - 23)).is_empty());
    }

    #[test]
    fn links_are_never_followed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path(), 7).expect("open");
        let app = Uuid::from_u128(8);
        let day = date!(2026 - 11 - 22);
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "secret\n").expect("write");
        std::fs::create_dir(storage.app_dir(app)).expect("mkdir");
        std::os::unix::fs::symlink(&outside, storage.file(app, Kind::Router, day))
            .expect("symlink");
        assert!(storage.append(app, Kind::Router, day, "x\n").is_err());
        let mut read = Vec::new();
        assert!(storage
            .read_lines(app, Kind::Router, day, day, |l| read.push(l.to_owned()))
            .is_err());
        assert!(read.is_empty());
        assert_eq!(std::fs::read_to_string(&outside).expect("read"), "secret\n");

        // A linked app directory is refused too.
        let other = Uuid::from_u128(9);
        std::os::unix::fs::symlink(dir.path(), storage.app_dir(other)).expect("symlink");
        let error = storage
            .append(other, Kind::Router, day, "x\n")
            .expect_err("refused");
        assert!(
            format!("{error:#}").contains("not a directory"),
            "{error:#}"
        );
        storage.forget(other).expect("forget removes the link");
        assert!(outside.exists());
        storage.forget(app).expect("forget");
        assert!(outside.exists());
        assert!(!storage.app_dir(app).exists());
    }

    #[test]
    fn prune_keeps_the_retention() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path(), 7).expect("open");
        let app = Uuid::from_u128(10);
        let gone = Uuid::from_u128(11);
        for day in [
            date!(2026 - 11 - 14),
            date!(2026 - 11 - 15),
            date!(2026 - 11 - 22),
        ] {
            for kind in Kind::ALL {
                storage.append(app, kind, day, "x\n").expect("append");
            }
        }
        storage
            .append(gone, Kind::Events, date!(2026 - 11 - 01), "x\n")
            .expect("append");
        let removed = storage
            .prune(datetime!(2026-11-22 10:00 UTC))
            .expect("prune");
        assert_eq!(removed, 4);
        let mut left: Vec<String> = read_directory(&storage.app_dir(app)).expect("list");
        left.sort();
        assert_eq!(
            left,
            [
                "2026-11-15.dynos",
                "2026-11-15.events",
                "2026-11-15.router",
                "2026-11-22.dynos",
                "2026-11-22.events",
                "2026-11-22.router"
            ]
        );
        assert!(!storage.app_dir(gone).exists());
    }

    #[test]
    fn days() {
        assert_eq!(day_name(date!(2026 - 01 - 02)), "2026-01-02");
        assert_eq!(parse_day("2026-01-02"), Some(date!(2026 - 01 - 02)));
        assert_eq!(parse_day("2026-1-2"), None);
        assert_eq!(parse_day("2026-02-30"), None);
    }
}
