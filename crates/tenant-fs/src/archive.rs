//! Archives: unpacking source tarballs and slugs without ever writing outside the target
//! directory, and packing a built app into a slug (tar + zstd, checksummed).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use wharf_slugignore::SlugIgnore;

/// Where a symlink in an archive may point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPolicy {
    /// Only at something inside the extracted tree (user-supplied sources).
    StayInside,
    /// Also at absolute paths: they resolve inside the container the slug runs in (a
    /// virtualenv's `bin/python -> /usr/bin/python3`). Nothing is ever written through a link.
    AllowAbsolute,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive holds {path:?}, which would land outside the app's directory")]
    Escapes { path: String },
    #[error(
        "the archive holds a link {path:?} -> {target:?} that points outside the app's directory"
    )]
    LinkEscapes { path: String, target: String },
    #[error("the archive holds {path:?}, a device or pipe, which apps may not contain")]
    SpecialFile { path: String },
    #[error("the archive unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the archive is not a readable tar file (plain, gzip or zstd): {0}")]
    Unreadable(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// Unpacks a tar archive (plain, gzip or zstd, told apart by their magic bytes) into `dest`,
/// refusing anything that would write outside it, and stopping at `limit` bytes of content.
/// Returns the bytes of content unpacked.
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
    std::fs::create_dir_all(dest).with_context(|| format!("create {}", dest.display()))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let mut total: u64 = 0;
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
        let relative = relative_inside(&path).ok_or_else(|| ArchiveError::Escapes {
            path: shown.clone(),
        })?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Err(ArchiveError::SpecialFile { path: shown });
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| ArchiveError::Unreadable(e.to_string()))?
                .ok_or_else(|| ArchiveError::Unreadable(format!("link {shown} has no target")))?
                .into_owned();
            let allowed = if kind.is_hard_link() {
                relative_inside(&target).is_some()
            } else {
                link_stays_inside(&relative, &target)
                    || (links == LinkPolicy::AllowAbsolute && target.is_absolute())
            };
            if !allowed {
                return Err(ArchiveError::LinkEscapes {
                    path: shown,
                    target: target.display().to_string(),
                });
            }
        }
        total = total.saturating_add(entry.header().size().unwrap_or(0));
        if total > limit {
            return Err(ArchiveError::TooLarge { limit });
        }
        // `unpack_in` refuses to write through links that leave `dest`; the checks above turn
        // what it would silently skip into errors.
        let unpacked = entry
            .unpack_in(dest)
            .map_err(|e| ArchiveError::Unreadable(format!("unpack {shown}: {e}")))?;
        if !unpacked {
            return Err(ArchiveError::Escapes { path: shown });
        }
    }
    Ok(total)
}

/// The path without `.` components, if it is relative and never climbs with `..`.
fn relative_inside(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

/// Whether a relative link at `link` pointing to `target` resolves inside the tree.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
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
    Io(#[from] anyhow::Error),
}

/// zstd level: fast to pack, still small; slugs are packed on every deploy.
const ZSTD_LEVEL: i32 = 3;

/// Packs `dir` into a tar + zstd archive at `out`, leaving out what `ignore` names, and
/// refusing slugs over `limit` bytes (compressed). Stops writing as soon as the limit is
/// passed, so a huge slug cannot fill the disk.
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
    let packed = (|| -> anyhow::Result<Sha256> {
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
        builder.follow_symlinks(false);
        add_tree(&mut builder, dir, Path::new(""), ignore)?;
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
        Err(error) => Err(over_limit(&written).unwrap_or(PackError::Io(error))),
    }
}

fn add_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    relative: &Path,
    ignore: &SlugIgnore,
) -> anyhow::Result<()> {
    let dir = root.join(relative);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("read {}", dir.display()))?;
    names.sort();
    for name in names {
        let path = relative.join(&name);
        let full = root.join(&path);
        let metadata = std::fs::symlink_metadata(&full)
            .with_context(|| format!("inspect {}", full.display()))?;
        let shown = path.to_string_lossy().into_owned();
        if ignore.is_ignored(&shown, metadata.is_dir()) {
            continue;
        }
        builder
            .append_path_with_name(&full, &path)
            .with_context(|| format!("add {shown} to the slug"))?;
        if metadata.is_dir() {
            add_tree(builder, root, &path, ignore)?;
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
        let result = unpack(through.path(), &dest, LinkPolicy::AllowAbsolute, 1 << 20);
        assert!(result.is_err(), "writing through a link must be refused");
        assert!(!outside.path().join("escaped").exists());
    }

    #[test]
    fn slugs_may_link_to_the_stack() {
        let archive = tar_with(|b| link_entry(b, "python", "/usr/bin/python3"));
        let dest = tempfile::tempdir().unwrap();
        unpack(
            archive.path(),
            dest.path(),
            LinkPolicy::AllowAbsolute,
            1 << 20,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(dest.path().join("python")).unwrap(),
            Path::new("/usr/bin/python3")
        );
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
        unpack(&slug, dest.path(), LinkPolicy::AllowAbsolute, 1 << 20).unwrap();
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
}
