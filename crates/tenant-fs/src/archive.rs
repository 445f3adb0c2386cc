//! Archives: unpacking source tarballs and slugs without ever writing outside the target
//! directory or through a link, and packing a built app into a slug (tar + zstd,
//! checksummed) without ever reading through one. Both walk the tree with [`TreeDir`].

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use wharf_slugignore::SlugIgnore;

use crate::tree::{inside, Kind, TreeDir, TreeError, MAX_DEPTH};

/// Where a symlink in an archive may point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPolicy {
    /// Only at something inside the extracted tree (user-supplied sources).
    StayInside,
    /// Anywhere (slugs): links resolve only inside the container the slug runs in (a
    /// virtualenv's `bin/python -> /usr/bin/python3`, `shared -> ../../data`), and nothing
    /// here ever reads or writes through one.
    AnyTarget,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive holds {path:?}, which would land outside the app's directory")]
    Escapes { path: String },
    #[error(
        "the archive holds a link {path:?} -> {target:?} that points outside the app's directory"
    )]
    LinkEscapes { path: String, target: String },
    #[error("the archive writes {path:?} through a link, which it may not")]
    ThroughLink { path: String },
    #[error("the archive holds {path:?}, a device or pipe, which apps may not contain")]
    SpecialFile { path: String },
    #[error("the archive unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the archive is not a readable tar file (plain, gzip or zstd): {0}")]
    Unreadable(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

impl ArchiveError {
    fn from_tree(path: &str, error: TreeError) -> ArchiveError {
        match error {
            TreeError::Link { .. } | TreeError::NotDirectory { .. } => ArchiveError::ThroughLink {
                path: path.to_owned(),
            },
            TreeError::Outside { .. } => ArchiveError::Escapes {
                path: path.to_owned(),
            },
            other => ArchiveError::Io(anyhow::Error::new(other)),
        }
    }
}

/// Unpacks a tar archive (plain, gzip or zstd, told apart by their magic bytes) into `dest`,
/// refusing anything that would write outside it, and stopping at `limit` bytes of content.
/// Every entry is created beneath `dest`'s handle without following links (a link the
/// archive made earlier is never written through), set-user-ID, set-group-ID and sticky bits
/// are dropped, and modification times are kept. Returns the bytes of content unpacked.
pub fn unpack(
    source: &Path,
    dest: &Path,
    links: LinkPolicy,
    limit: u64,
) -> Result<u64, ArchiveError> {
    let mut file = File::open(source).with_context(|| format!("open {}", source.display()))?;
    let mut magic = [0u8; 4];
    let read = file.read(&mut magic).context("read archive header")?;
    let file = File::open(source).with_context(|| format!("open {}", source.display()))?;
    let reader: Box<dyn Read> = match &magic[..read] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(BufReader::new(file))),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(
            zstd::stream::read::Decoder::new(file)
                .map_err(|e| ArchiveError::Unreadable(e.to_string()))?,
        ),
        _ => Box::new(BufReader::new(file)),
    };
    let root = TreeDir::create(dest).map_err(|e| ArchiveError::Io(e.into()))?;
    let mut archive = tar::Archive::new(reader);
    let mut total: u64 = 0;
    // The directory of the previous entry: archives list a directory's files together.
    let mut last_parent: Option<(PathBuf, TreeDir)> = None;
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?
            .into_owned();
        let shown = path.display().to_string();
        let relative = inside(&path).ok_or_else(|| ArchiveError::Escapes {
            path: shown.clone(),
        })?;
        let Some(Component::Normal(name)) = relative.components().next_back() else {
            continue;
        };
        let name = PathBuf::from(name);
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Err(ArchiveError::SpecialFile { path: shown });
        }
        let is_file = kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse();
        let wanted = is_file || kind.is_dir() || kind.is_symlink() || kind.is_hard_link();
        if !wanted {
            // Global pax headers and the like describe, they create nothing.
            continue;
        }
        let link_target = if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| ArchiveError::Unreadable(e.to_string()))?
                .ok_or_else(|| ArchiveError::Unreadable(format!("link {shown} has no target")))?
                .into_owned();
            let allowed = if kind.is_hard_link() {
                inside(&target).is_some_and(|t| !t.as_os_str().is_empty())
            } else {
                links == LinkPolicy::AnyTarget || link_stays_inside(&relative, &target)
            };
            if !allowed {
                return Err(ArchiveError::LinkEscapes {
                    path: shown,
                    target: target.display().to_string(),
                });
            }
            Some(target)
        } else {
            None
        };
        let parent_path = relative.parent().unwrap_or(Path::new("")).to_owned();
        let parent = match last_parent.take() {
            Some((cached, dir)) if cached == parent_path => dir,
            _ => root
                .create_dir_all(&parent_path)
                .map_err(|e| ArchiveError::from_tree(&shown, e))?,
        };
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        let mtime = entry.header().mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
        let existing = parent
            .kind(&name)
            .map_err(|e| ArchiveError::from_tree(&shown, e))?;
        if existing.is_some() && !(kind.is_dir() && existing == Some(Kind::Dir)) {
            parent
                .remove(&name)
                .map_err(|e| ArchiveError::from_tree(&shown, e))?;
        }
        if kind.is_dir() {
            let dir = parent
                .create_dir_all(&name)
                .map_err(|e| ArchiveError::from_tree(&shown, e))?;
            dir.set_mode(mode)
                .map_err(|e| ArchiveError::from_tree(&shown, e))?;
        } else if let Some(target) = link_target {
            if kind.is_hard_link() {
                root.hard_link(&inside(&target).unwrap_or_default(), &relative)
                    .map_err(|e| ArchiveError::from_tree(&shown, e))?;
            } else {
                parent
                    .symlink(&name, &target)
                    .map_err(|e| ArchiveError::from_tree(&shown, e))?;
            }
        } else {
            let created = parent
                .create_file(&name, mode)
                .map_err(|e| ArchiveError::from_tree(&shown, e))?;
            let mut out = File::from(created);
            let copied = std::io::copy(
                &mut (&mut entry).take((limit - total).saturating_add(1)),
                &mut out,
            )
            .map_err(|e| ArchiveError::Unreadable(format!("unpack {shown}: {e}")))?;
            total += copied;
            if total > limit {
                return Err(ArchiveError::TooLarge { limit });
            }
            drop(out);
            parent
                .set_mtime(&name, mtime)
                .map_err(|e| ArchiveError::from_tree(&shown, e))?;
        }
        last_parent = Some((parent_path, parent));
    }
    Ok(total)
}

/// Whether a relative link at `link` pointing to `target` resolves inside the tree.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    let mut descended = false;
    for component in target.components() {
        match component {
            Component::Normal(_) => {
                depth += 1;
                descended = true;
            }
            Component::CurDir => {}
            // A `..` after a name climbs out of what that name resolves to, which another
            // link of the archive may have made anything (`b -> .`, then `c -> b/..`): only
            // leading `..`s, which climb real directories, are judged by their text.
            Component::ParentDir if descended => return false,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// A packed slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSlug {
    pub size: u64,
    /// `SHA256:<hex>` of the archive.
    pub checksum: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("the slug is {size} bytes, over the limit of {limit} bytes: leave files out with .slugignore")]
    TooLarge { size: u64, limit: u64 },
    #[error(transparent)]
    Refused(#[from] TreeError),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// zstd level: fast to pack, still small; slugs are packed on every deploy.
const ZSTD_LEVEL: i32 = 3;

/// Packs `dir` into a tar + zstd archive at `out`, leaving out what `ignore` names, and
/// refusing slugs over `limit` bytes (compressed). Stops writing as soon as the limit is
/// passed, so a huge slug cannot fill the disk. Links are packed as links (never read
/// through); a FIFO, socket or device, or a file with several names owned by someone other
/// than the tree's owner, is refused.
pub fn pack_slug(
    dir: &Path,
    ignore: &SlugIgnore,
    out: &Path,
    limit: u64,
) -> Result<PackedSlug, PackError> {
    let written = Arc::new(AtomicU64::new(0));
    let over_limit = |written: &AtomicU64| {
        let size = written.load(Ordering::SeqCst);
        (size > limit).then_some(PackError::TooLarge { size, limit })
    };
    let tree = TreeDir::open(dir)?;
    let packed = (|| -> Result<Sha256, PackError> {
        let file = File::create(out).with_context(|| format!("create {}", out.display()))?;
        let hashing = HashingWriter {
            inner: BufWriter::new(file),
            hasher: Sha256::new(),
            written: written.clone(),
            limit,
        };
        let encoder =
            zstd::stream::write::Encoder::new(hashing, ZSTD_LEVEL).context("start zstd")?;
        let mut builder = tar::Builder::new(encoder);
        add_tree(&mut builder, &tree, Path::new(""), ignore, 0)?;
        let encoder = builder.into_inner().context("finish tar")?;
        let mut hashing = encoder.finish().context("finish zstd")?;
        hashing.inner.flush().context("flush slug")?;
        hashing
            .inner
            .get_ref()
            .sync_all()
            .context("sync slug to disk")?;
        Ok(hashing.hasher)
    })();
    match packed {
        Ok(hasher) => {
            if let Some(too_large) = over_limit(&written) {
                return Err(too_large);
            }
            let digest = hasher.finalize();
            Ok(PackedSlug {
                size: written.load(Ordering::SeqCst),
                checksum: format!(
                    "SHA256:{}",
                    digest
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                ),
            })
        }
        Err(error) => Err(over_limit(&written).unwrap_or(error)),
    }
}

fn add_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &TreeDir,
    relative: &Path,
    ignore: &SlugIgnore,
    depth: usize,
) -> Result<(), PackError> {
    if depth > MAX_DEPTH {
        return Err(TreeError::TooDeep {
            path: relative.display().to_string(),
        }
        .into());
    }
    for entry in dir.entries()? {
        let name = Path::new(&entry.name);
        let path = relative.join(name);
        let shown = path.to_string_lossy().into_owned();
        if ignore.is_ignored(&shown, entry.kind == Kind::Dir) {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.stat.st_mode & 0o777);
        header.set_mtime(entry.stat.st_mtime.max(0) as u64);
        header.set_size(0);
        match entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                builder
                    .append_data(&mut header, &path, std::io::empty())
                    .with_context(|| format!("add {shown} to the slug"))?;
                add_tree(builder, &dir.dir(name)?, &path, ignore, depth + 1)?;
            }
            Kind::File => {
                // Gone since the directory was read: nothing to pack.
                let Some(file) = dir.open_file(name, true)? else {
                    continue;
                };
                let file = File::from(file);
                let length = file
                    .metadata()
                    .with_context(|| format!("inspect {shown}"))?
                    .len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(length);
                builder
                    .append_data(&mut header, &path, file.take(length))
                    .with_context(|| format!("add {shown} to the slug"))?;
            }
            Kind::Link => {
                let target = dir.read_link(name)?;
                header.set_entry_type(tar::EntryType::Symlink);
                builder
                    .append_link(&mut header, &path, &target)
                    .with_context(|| format!("add {shown} to the slug"))?;
            }
            Kind::Special(kind) => {
                return Err(TreeError::NotRegular {
                    path: format!(
                        "{shown} ({kind}: a slug holds only files, directories and links)"
                    ),
                    kind,
                }
                .into())
            }
        }
    }
    Ok(())
}

/// Hashes and counts what passes through; fails once more than `limit` bytes were written.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: Arc<AtomicU64>,
    limit: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        let total = self.written.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        if total > self.limit {
            return Err(std::io::Error::other("slug over its size limit"));
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> tempfile::NamedTempFile {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        let bytes = builder.into_inner().unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        file
    }

    fn file_entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, contents: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Write the raw name so that hostile paths reach the unpacker as they are.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, contents).unwrap();
    }

    fn link_entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        header.set_cksum();
        builder.append(&header, std::io::empty()).unwrap();
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let outside = tempfile::tempdir().unwrap();
        let dest = outside.path().join("app");
        let cases: Vec<(&str, tempfile::NamedTempFile)> = vec![
            ("dot-dot", tar_with(|b| file_entry(b, "../escaped", b"x"))),
            (
                "absolute",
                tar_with(|b| file_entry(b, "/tmp/wharf-escaped", b"x")),
            ),
            ("link out", tar_with(|b| link_entry(b, "etc", "../../etc"))),
            (
                "absolute link",
                tar_with(|b| link_entry(b, "passwd", "/etc/passwd")),
            ),
            (
                "write through a link",
                tar_with(|b| {
                    link_entry(b, "sub", "..");
                    file_entry(b, "sub/escaped", b"x");
                }),
            ),
        ];
        for (name, archive) in cases {
            let result = unpack(archive.path(), &dest, LinkPolicy::StayInside, 1 << 20);
            assert!(result.is_err(), "{name} must be refused");
            assert!(
                !outside.path().join("escaped").exists(),
                "{name} wrote outside"
            );
        }
        assert!(!Path::new("/tmp/wharf-escaped").exists());

        // Slugs may link to absolute paths, but nothing is written through such a link.
        let through = tar_with(|b| {
            link_entry(b, "sub", outside.path().to_str().unwrap());
            file_entry(b, "sub/escaped", b"x");
        });
        let result = unpack(through.path(), &dest, LinkPolicy::AnyTarget, 1 << 20);
        assert!(result.is_err(), "writing through a link must be refused");
        assert!(!outside.path().join("escaped").exists());
    }

    #[test]
    fn slugs_may_link_anywhere() {
        let archive = tar_with(|b| {
            link_entry(b, "python", "/usr/bin/python3");
            link_entry(b, "data", "../../srv/data");
        });
        let dest = tempfile::tempdir().unwrap();
        unpack(archive.path(), dest.path(), LinkPolicy::AnyTarget, 1 << 20).unwrap();
        assert_eq!(
            std::fs::read_link(dest.path().join("python")).unwrap(),
            Path::new("/usr/bin/python3")
        );
        assert_eq!(
            std::fs::read_link(dest.path().join("data")).unwrap(),
            Path::new("../../srv/data")
        );
    }

    #[test]
    fn no_limit_is_no_limit() {
        let archive = tar_with(|b| file_entry(b, "a", b"content"));
        let dest = tempfile::tempdir().unwrap();
        let unpacked = unpack(
            archive.path(),
            dest.path(),
            LinkPolicy::StayInside,
            u64::MAX,
        );
        assert_eq!(unpacked.unwrap(), 7);
        assert_eq!(std::fs::read(dest.path().join("a")).unwrap(), b"content");
    }

    #[test]
    fn size_limits_stop_unpacking() {
        let archive = tar_with(|b| {
            file_entry(b, "a", &[0u8; 4096]);
            file_entry(b, "b", &[0u8; 4096]);
        });
        let dest = tempfile::tempdir().unwrap();
        let result = unpack(archive.path(), dest.path(), LinkPolicy::StayInside, 6000);
        assert!(matches!(
            result,
            Err(ArchiveError::TooLarge { limit: 6000 })
        ));
    }

    #[test]
    fn slugs_round_trip_without_ignored_files() {
        let app = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(app.path().join("docs")).unwrap();
        std::fs::create_dir_all(app.path().join("bin")).unwrap();
        std::fs::write(app.path().join("docs/guide.md"), "guide").unwrap();
        std::fs::write(app.path().join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::write(app.path().join("big.psd"), vec![7u8; 1000]).unwrap();
        std::os::unix::fs::symlink("bin/run", app.path().join("run")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            app.path().join("bin/run"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();

        let out = tempfile::tempdir().unwrap();
        let slug = out.path().join("slug.tar.zst");
        let packed = pack_slug(
            app.path(),
            &SlugIgnore::parse("/docs\n*.psd"),
            &slug,
            1 << 20,
        )
        .unwrap();
        assert_eq!(packed.size, std::fs::metadata(&slug).unwrap().len());
        assert!(packed.checksum.starts_with("SHA256:") && packed.checksum.len() == 7 + 64);

        let dest = tempfile::tempdir().unwrap();
        unpack(&slug, dest.path(), LinkPolicy::AnyTarget, 1 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join("bin/run")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        let mode = std::fs::metadata(dest.path().join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "executables stay executable");
        assert_eq!(
            std::fs::read_link(dest.path().join("run")).unwrap(),
            Path::new("bin/run")
        );
        assert!(!dest.path().join("docs").exists());
        assert!(!dest.path().join("big.psd").exists());
    }

    #[test]
    fn oversized_slugs_are_refused() {
        let app = tempfile::tempdir().unwrap();
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(app.path().join("noise"), noise).unwrap();
        let out = tempfile::tempdir().unwrap();
        let result = pack_slug(
            app.path(),
            &SlugIgnore::default(),
            &out.path().join("slug"),
            10_000,
        );
        assert!(
            matches!(result, Err(PackError::TooLarge { limit: 10_000, .. })),
            "{result:?}"
        );
    }

    #[test]
    fn unpacking_drops_privilege_bits_and_keeps_times_and_hard_links() {
        let archive = tar_with(|b| {
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            header.set_mode(0o4755);
            header.set_mtime(1_600_000_000);
            header.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut header, "bin/tool", &b"hi"[..]).unwrap();
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Link);
            link.set_size(0);
            b.append_link(&mut link, "bin/again", "bin/tool").unwrap();
        });
        let dest = tempfile::tempdir().unwrap();
        unpack(archive.path(), dest.path(), LinkPolicy::StayInside, 1 << 20).unwrap();
        use std::os::unix::fs::MetadataExt;
        let tool = std::fs::metadata(dest.path().join("bin/tool")).unwrap();
        assert_eq!(
            tool.mode() & 0o7777,
            0o755,
            "no set-user-ID from an archive"
        );
        assert_eq!(tool.mtime(), 1_600_000_000);
        assert_eq!(tool.nlink(), 2);
        assert_eq!(
            std::fs::read_to_string(dest.path().join("bin/again")).unwrap(),
            "hi"
        );
    }

    /// Found by fuzzing: judged by its text alone, `c -> b/..` stays inside, but `b` is a
    /// link to `.`, so `c` resolves to the parent of the destination.
    #[test]
    fn a_link_climbing_out_through_another_link_is_refused() {
        let archive = tar_with(|b| {
            link_entry(b, "b", ".");
            link_entry(b, "c", "b/..");
        });
        let dest = tempfile::tempdir().unwrap();
        let result = unpack(archive.path(), dest.path(), LinkPolicy::StayInside, 1 << 20);
        assert!(
            matches!(result, Err(ArchiveError::LinkEscapes { ref path, .. }) if path == "c"),
            "{result:?}"
        );
        assert!(std::fs::symlink_metadata(dest.path().join("c")).is_err());
        // Leading `..`s still climb real directories and stay judged by their text.
        assert!(link_stays_inside(Path::new("lib/x"), Path::new("../bin/y")));
        assert!(!link_stays_inside(Path::new("lib/x"), Path::new("../../y")));
        assert!(!link_stays_inside(
            Path::new("lib/x"),
            Path::new("a/../../y")
        ));
    }

    #[test]
    fn hard_links_must_name_a_file_inside() {
        for target in ["../../admin-api-key", "/etc/shadow"] {
            let archive = tar_with(|b| {
                let mut raw = tar::Header::new_gnu();
                raw.set_entry_type(tar::EntryType::Link);
                raw.set_size(0);
                raw.as_old_mut().name[..8].copy_from_slice(b"Procfile");
                raw.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                raw.set_cksum();
                b.append(&raw, std::io::empty()).unwrap();
            });
            let dest = tempfile::tempdir().unwrap();
            let result = unpack(archive.path(), dest.path(), LinkPolicy::AnyTarget, 1 << 20);
            assert!(
                matches!(result, Err(ArchiveError::LinkEscapes { .. })),
                "{target}: {result:?}"
            );
            assert!(!dest.path().join("Procfile").exists());
        }
    }

    #[test]
    fn packing_never_reads_through_a_link_or_a_special_file() {
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("admin-api-key");
        std::fs::write(&secret, "SECRET-KEY").unwrap();
        let app = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&secret, app.path().join("key")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let slug = out.path().join("slug.tar.zst");
        pack_slug(app.path(), &SlugIgnore::default(), &slug, 1 << 20).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack(&slug, dest.path(), LinkPolicy::AnyTarget, 1 << 20).unwrap();
        assert_eq!(std::fs::read_link(dest.path().join("key")).unwrap(), secret);
        let bytes = zstd::decode_all(File::open(&slug).unwrap()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("SECRET-KEY"));

        rustix::fs::mknodat(
            rustix::fs::CWD,
            app.path().join("pipe"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let result = pack_slug(app.path(), &SlugIgnore::default(), &slug, 1 << 20);
        assert!(
            matches!(
                result,
                Err(PackError::Refused(TreeError::NotRegular {
                    kind: "a FIFO",
                    ..
                }))
            ),
            "{result:?}"
        );
    }

    #[test]
    fn packing_refuses_a_hard_link_to_a_file_the_tree_does_not_own() {
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("admin-api-key");
        std::fs::write(&secret, "SECRET-KEY").unwrap();
        let app = tempfile::tempdir().unwrap();
        std::fs::hard_link(&secret, app.path().join("key")).unwrap();
        rustix::fs::chown(
            app.path(),
            Some(rustix::fs::Uid::from_raw(4242)),
            Some(rustix::fs::Gid::from_raw(4242)),
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let result = pack_slug(
            app.path(),
            &SlugIgnore::default(),
            &out.path().join("slug"),
            1 << 20,
        );
        assert!(
            matches!(result, Err(PackError::Refused(TreeError::HardLink { .. }))),
            "{result:?}"
        );
    }
}
