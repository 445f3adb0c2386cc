//! [`TreeDir`]: a directory of a tenant's tree held open by the server, and every file
//! operation the server makes inside it. Each path is resolved beneath the handle with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`,
//! or names one entry of an open directory and acts on it without following it
//! (`AT_SYMLINK_NOFOLLOW`, `O_NOFOLLOW`), so no operation reaches outside the tree, whatever
//! links, FIFOs or devices a build or dyno left in it.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as sys, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// How every path below a [`TreeDir`] is resolved: never above it, never through a link of
/// any kind, never onto another mount.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// Directories nested deeper than this are refused: each level holds a descriptor while a
/// tree is walked, and no app needs more.
pub const MAX_DEPTH: usize = 256;

/// Why an operation inside a tenant's tree was refused or failed. Every message names the
/// path inside the tree (never the server's path to it) and says what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path} is a symbolic link, or lies behind one: Wharf reads and writes the app's files only as real files inside its directory")]
    Link { path: String },
    #[error("{path} is {kind} where a regular file was expected")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} is {kind} where a directory was expected")]
    NotDirectory { path: String, kind: &'static str },
    #[error("{path} is a hard link ({links} names for one file): Wharf reads it only as a file of its own")]
    HardLink { path: String, links: u64 },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path} is nested more than {MAX_DEPTH} directories deep")]
    TooDeep { path: String },
    #[error("{path} does not name a place inside the directory")]
    Outside { path: String },
    #[error("{path} already exists")]
    Exists { path: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// What an entry of a tree is, read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    /// A FIFO, socket or device.
    Special(&'static str),
}

impl Kind {
    fn of(stat: &Stat) -> Kind {
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Link,
            other => Kind::Special(describe(other)),
        }
    }
}

/// An entry of a directory with what `lstat` says of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: std::ffi::OsString,
    pub kind: Kind,
    pub stat: Stat,
}

/// A directory of a tenant's tree, held open. `shown` is its path inside the tree, for
/// messages.
#[derive(Debug)]
pub struct TreeDir {
    fd: OwnedFd,
    shown: PathBuf,
}

impl TreeDir {
    /// Opens `path`, a directory whose place the server chose (say `<data-dir>/builds/work-1/app`).
    /// Its last component must be a real directory, not a link to one.
    pub fn open(path: &Path) -> Result<TreeDir, TreeError> {
        let fd = sys::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| {
            let shown = path.display().to_string();
            match errno {
                // `O_DIRECTORY | O_NOFOLLOW` on a link says ENOTDIR.
                Errno::LOOP | Errno::NOTDIR => match std::fs::symlink_metadata(path) {
                    Ok(meta) if meta.file_type().is_symlink() => TreeError::Link { path: shown },
                    _ => TreeError::NotDirectory {
                        path: shown,
                        kind: "not a directory",
                    },
                },
                other => io_error("open", &shown, other),
            }
        })?;
        Ok(TreeDir {
            fd,
            shown: PathBuf::new(),
        })
    }

    /// Creates `path` (and its missing parents, which the server owns) with mode 0755 if it
    /// is missing, and opens it.
    pub fn create(path: &Path) -> Result<TreeDir, TreeError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(path)
            .map_err(|source| TreeError::Io {
                what: "create",
                path: path.display().to_string(),
                source,
            })?;
        TreeDir::open(path)
    }

    /// The path inside the tree of `relative` below this directory, for messages.
    fn shown(&self, relative: &Path) -> String {
        self.shown.join(relative).display().to_string()
    }

    /// The subdirectory at `relative`.
    pub fn dir(&self, relative: &Path) -> Result<TreeDir, TreeError> {
        let relative = inside(relative).ok_or_else(|| self.outside(relative))?;
        let shown = self.shown.join(&relative);
        let fd = if relative.as_os_str().is_empty() {
            self.fd.try_clone().map_err(|source| TreeError::Io {
                what: "open",
                path: shown.display().to_string(),
                source,
            })?
        } else {
            self.open_beneath(
                &relative,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|errno| self.dir_error(&relative, errno))?
        };
        Ok(TreeDir { fd, shown })
    }

    /// The subdirectory at `relative`, created (mode 0755, with its parents) if missing.
    pub fn create_dir_all(&self, relative: &Path) -> Result<TreeDir, TreeError> {
        let relative = inside(relative).ok_or_else(|| self.outside(relative))?;
        let mut current = self.dir(Path::new(""))?;
        for part in relative.iter() {
            let name = Path::new(part);
            match current.dir(name) {
                Ok(next) => current = next,
                Err(TreeError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    match sys::mkdirat(&current.fd, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => return Err(io_error("create", &current.shown(name), errno)),
                    }
                    current = current.dir(name)?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(current)
    }

    /// What is at `relative`, not following it; `None` when nothing is.
    pub fn kind(&self, relative: &Path) -> Result<Option<Kind>, TreeError> {
        Ok(self.lstat(relative)?.map(|stat| Kind::of(&stat)))
    }

    /// `lstat` of `relative`; `None` when nothing is there.
    fn lstat(&self, relative: &Path) -> Result<Option<Stat>, TreeError> {
        let (parent, name) = match self.parent_of(relative) {
            Ok(found) => found,
            Err(TreeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(other) => return Err(other),
        };
        match sys::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(io_error("inspect", &self.shown(relative), errno)),
        }
    }

    /// Reads the regular file at `relative`: `None` when it does not exist. A link, a FIFO, a
    /// device, a directory, a file with more than one name, or one over `limit` bytes is an
    /// error, and nothing of it is read. Opening never blocks (`O_NONBLOCK`: a FIFO cannot
    /// hold the server).
    pub fn read(&self, relative: &Path, limit: u64) -> Result<Option<Vec<u8>>, TreeError> {
        let Some(file) = self.open_file(relative, false)? else {
            return Ok(None);
        };
        let shown = self.shown(relative);
        let stat = sys::fstat(&file).map_err(|errno| io_error("inspect", &shown, errno))?;
        if stat.st_size as u64 > limit {
            return Err(TreeError::TooLarge { path: shown, limit });
        }
        let mut bytes = Vec::with_capacity(stat.st_size as usize);
        std::fs::File::from(file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| TreeError::Io {
                what: "read",
                path: shown.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(TreeError::TooLarge { path: shown, limit });
        }
        Ok(Some(bytes))
    }

    /// [`TreeDir::read`] as text (invalid UTF-8 replaced).
    pub fn read_string(&self, relative: &Path, limit: u64) -> Result<Option<String>, TreeError> {
        Ok(self
            .read(relative, limit)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Opens the regular file at `relative` for reading (`None` when missing). With
    /// `shared_ok`, a file with several names is accepted (a slug may hold hard links between
    /// its own files); its owner must then be the owner of this directory, which a hard link
    /// to a file from outside the tree never is.
    pub fn open_file(
        &self,
        relative: &Path,
        shared_ok: bool,
    ) -> Result<Option<OwnedFd>, TreeError> {
        let relative = inside(relative).ok_or_else(|| self.outside(relative))?;
        let shown = self.shown(&relative);
        let fd = match self.open_beneath(
            &relative,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(TreeError::Link { path: shown }),
            Err(Errno::XDEV) => return Err(self.outside(&relative)),
            Err(Errno::NXIO) => {
                return Err(TreeError::NotRegular {
                    path: shown,
                    kind: "a socket",
                })
            }
            Err(errno) => return Err(io_error("open", &shown, errno)),
        };
        let stat = sys::fstat(&fd).map_err(|errno| io_error("inspect", &shown, errno))?;
        match Kind::of(&stat) {
            Kind::File => {}
            Kind::Dir => {
                return Err(TreeError::NotRegular {
                    path: shown,
                    kind: "a directory",
                })
            }
            Kind::Link => return Err(TreeError::Link { path: shown }),
            Kind::Special(kind) => return Err(TreeError::NotRegular { path: shown, kind }),
        }
        if stat.st_nlink > 1 {
            let owner = sys::fstat(&self.fd)
                .map_err(|errno| io_error("inspect", &self.shown(Path::new("")), errno))?
                .st_uid;
            if !shared_ok || stat.st_uid != owner {
                return Err(TreeError::HardLink {
                    path: shown,
                    links: stat.st_nlink as u64,
                });
            }
        }
        Ok(Some(fd))
    }

    /// Creates the regular file `relative` (which must not exist) with `contents` and `mode`.
    pub fn write_new(&self, relative: &Path, contents: &[u8], mode: u32) -> Result<(), TreeError> {
        let file = self.create_file(relative, mode)?;
        let shown = self.shown(relative);
        let mut file = std::fs::File::from(file);
        std::io::Write::write_all(&mut file, contents).map_err(|source| TreeError::Io {
            what: "write",
            path: shown,
            source,
        })
    }

    /// Creates the regular file `relative` (which must not exist: not even as a link) with
    /// exactly `mode`, and returns it open for writing.
    pub fn create_file(&self, relative: &Path, mode: u32) -> Result<OwnedFd, TreeError> {
        let relative = inside(relative).ok_or_else(|| self.outside(relative))?;
        let shown = self.shown(&relative);
        let fd = self
            .open_beneath(
                &relative,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
                Mode::from_raw_mode(mode & 0o777),
            )
            .map_err(|errno| match errno {
                Errno::EXIST => TreeError::Exists {
                    path: shown.clone(),
                },
                Errno::LOOP => TreeError::Link {
                    path: shown.clone(),
                },
                Errno::XDEV => self.outside(&relative),
                other => io_error("create", &shown, other),
            })?;
        // The process umask may have taken bits away.
        sys::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))
            .map_err(|errno| io_error("chmod", &shown, errno))?;
        Ok(fd)
    }

    /// Creates a symbolic link `relative` -> `target` (the target is only text: nothing
    /// resolves it here).
    pub fn symlink(&self, relative: &Path, target: &Path) -> Result<(), TreeError> {
        let (parent, name) = self.parent_of(relative)?;
        sys::symlinkat(target, &parent.fd, name).map_err(|errno| match errno {
            Errno::EXIST => TreeError::Exists {
                path: self.shown(relative),
            },
            other => io_error("create link", &self.shown(relative), other),
        })
    }

    /// Gives `relative` (a file of this tree) a second name `link`, without following either.
    pub fn hard_link(&self, existing: &Path, link: &Path) -> Result<(), TreeError> {
        let (from_parent, from_name) = self.parent_of(existing)?;
        let (to_parent, to_name) = self.parent_of(link)?;
        sys::linkat(
            &from_parent.fd,
            from_name,
            &to_parent.fd,
            to_name,
            AtFlags::empty(),
        )
        .map_err(|errno| io_error("link", &self.shown(link), errno))
    }

    /// Sets the access and modification times of `relative`, not following it.
    pub fn set_mtime(&self, relative: &Path, seconds: i64) -> Result<(), TreeError> {
        let (parent, name) = self.parent_of(relative)?;
        let time = sys::Timespec {
            tv_sec: seconds,
            tv_nsec: 0,
        };
        let times = sys::Timestamps {
            last_access: time,
            last_modification: time,
        };
        sys::utimensat(&parent.fd, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|errno| io_error("set the time of", &self.shown(relative), errno))
    }

    /// Sets this directory's mode.
    pub fn set_mode(&self, mode: u32) -> Result<(), TreeError> {
        sys::fchmod(&self.fd, Mode::from_raw_mode(mode & 0o7777))
            .map_err(|errno| io_error("chmod", &self.shown(Path::new("")), errno))
    }

    /// The target of the link at `relative`.
    pub fn read_link(&self, relative: &Path) -> Result<PathBuf, TreeError> {
        let (parent, name) = self.parent_of(relative)?;
        let target = sys::readlinkat(&parent.fd, name, Vec::new())
            .map_err(|errno| io_error("read link", &self.shown(relative), errno))?;
        Ok(PathBuf::from(OsStr::from_bytes(target.as_bytes())))
    }

    /// This directory's entries (not `.` and `..`), sorted by name, each with its `lstat`.
    pub fn entries(&self) -> Result<Vec<Entry>, TreeError> {
        let shown = self.shown(Path::new(""));
        let dir = sys::Dir::read_from(&self.fd).map_err(|errno| io_error("read", &shown, errno))?;
        let mut entries = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|errno| io_error("read", &shown, errno))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let stat = match sys::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                // Gone since the directory was read.
                Err(Errno::NOENT) => continue,
                Err(errno) => return Err(io_error("inspect", &self.shown(Path::new(name)), errno)),
            };
            entries.push(Entry {
                name: name.to_owned(),
                kind: Kind::of(&stat),
                stat,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Removes `relative`, a file, link or whole directory tree, never following a link;
    /// nothing there is fine.
    pub fn remove(&self, relative: &Path) -> Result<(), TreeError> {
        let (parent, name) = match self.parent_of(relative) {
            Ok(found) => found,
            Err(TreeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(())
            }
            Err(other) => return Err(other),
        };
        parent.remove_entry(Path::new(name), 0)
    }

    /// Removes everything inside this directory, keeping the directory.
    pub fn clear(&self) -> Result<(), TreeError> {
        self.clear_at_depth(0)
    }

    fn clear_at_depth(&self, depth: usize) -> Result<(), TreeError> {
        for entry in self.entries()? {
            self.remove_entry(Path::new(&entry.name), depth)?;
        }
        Ok(())
    }

    /// Removes the entry `name` of this directory.
    fn remove_entry(&self, name: &Path, depth: usize) -> Result<(), TreeError> {
        let stat = match sys::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(()),
            Err(errno) => return Err(io_error("inspect", &self.shown(name), errno)),
        };
        if Kind::of(&stat) == Kind::Dir {
            if depth >= MAX_DEPTH {
                return Err(TreeError::TooDeep {
                    path: self.shown(name),
                });
            }
            self.dir(name)?.clear_at_depth(depth + 1)?;
            sys::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
        } else {
            sys::unlinkat(&self.fd, name, AtFlags::empty())
        }
        .or_else(|errno| match errno {
            Errno::NOENT => Ok(()),
            other => Err(io_error("remove", &self.shown(name), other)),
        })
    }

    /// Gives this directory and everything in it (links themselves, never what they point
    /// at) to `uid:gid`.
    pub fn chown_all(&self, uid: u32, gid: u32) -> Result<(), TreeError> {
        sys::fchown(
            &self.fd,
            Some(sys::Uid::from_raw(uid)),
            Some(sys::Gid::from_raw(gid)),
        )
        .map_err(|errno| io_error("chown", &self.shown(Path::new("")), errno))?;
        self.chown_entries(uid, gid, 0)
    }

    fn chown_entries(&self, uid: u32, gid: u32, depth: usize) -> Result<(), TreeError> {
        for entry in self.entries()? {
            let name = Path::new(&entry.name);
            sys::chownat(
                &self.fd,
                name,
                Some(sys::Uid::from_raw(uid)),
                Some(sys::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|errno| io_error("chown", &self.shown(name), errno))?;
            if entry.kind == Kind::Dir {
                if depth >= MAX_DEPTH {
                    return Err(TreeError::TooDeep {
                        path: self.shown(name),
                    });
                }
                self.dir(name)?.chown_entries(uid, gid, depth + 1)?;
            }
        }
        Ok(())
    }

    /// The directory holding `relative`'s last component, and that component.
    fn parent_of<'a>(&self, relative: &'a Path) -> Result<(TreeDir, &'a OsStr), TreeError> {
        let name = match relative.components().next_back() {
            Some(Component::Normal(name)) => name,
            _ => return Err(self.outside(relative)),
        };
        let parent = relative.parent().unwrap_or(Path::new(""));
        Ok((self.dir(parent)?, name))
    }

    fn open_beneath(&self, relative: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
        loop {
            match sys::openat2(&self.fd, relative, flags | OFlags::CLOEXEC, mode, RESOLVE) {
                // openat2 asks to retry when a rename raced with the lookup.
                Err(Errno::AGAIN) => continue,
                other => return other,
            }
        }
    }

    fn dir_error(&self, relative: &Path, errno: Errno) -> TreeError {
        let path = self.shown(relative);
        match errno {
            Errno::LOOP => TreeError::Link { path },
            Errno::XDEV => self.outside(relative),
            Errno::NOTDIR => {
                let kind = match self.lstat(relative) {
                    Ok(Some(stat)) => match Kind::of(&stat) {
                        Kind::Link => return TreeError::Link { path },
                        Kind::File => "a file",
                        Kind::Special(kind) => kind,
                        Kind::Dir => "a directory",
                    },
                    _ => "not a directory",
                };
                TreeError::NotDirectory { path, kind }
            }
            other => io_error("open", &path, other),
        }
    }

    fn outside(&self, relative: &Path) -> TreeError {
        TreeError::Outside {
            path: self.shown(relative),
        }
    }
}

impl AsFd for TreeDir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Removes `path` (a directory tree, file or link whose place the server chose) without ever
/// following a link inside it; a missing path is fine.
pub fn remove_tree(path: &Path) -> Result<(), TreeError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(TreeError::Outside {
            path: path.display().to_string(),
        });
    };
    match TreeDir::open(parent) {
        Ok(parent) => parent.remove(Path::new(name)),
        Err(TreeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// `relative` without `.` components, if it stays inside (no `..`, not absolute).
pub fn inside(relative: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

fn describe(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "a special file",
    }
}

fn io_error(what: &'static str, path: &str, errno: Errno) -> TreeError {
    TreeError::Io {
        what,
        path: path.to_owned(),
        source: errno.into(),
    }
}

#[cfg(test)]
mod tests;
