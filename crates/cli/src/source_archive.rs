//! The source tarball `deploy` uploads: every file under a directory except `.git` and what
//! its `.slugignore` names, as a gzipped tar in memory. File modes are kept and symlinks are
//! stored as links, never followed.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;

use wharf_slugignore::{self as slugignore, SlugIgnore};

/// Git's own files are never part of an app.
const GIT_DIRECTORY: &str = ".git";

pub struct Packed {
    /// The `.tar.gz`.
    pub bytes: Vec<u8>,
    /// Entries left out because a tarball cannot hold them (sockets, pipes, devices).
    pub skipped: Vec<PathBuf>,
}

/// Packs `root` (blocking file IO: run it off the async threads).
pub fn pack(root: &Path) -> Result<Packed> {
    let ignore = read_slugignore(root)?;
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    builder.follow_symlinks(false);
    let mut skipped = Vec::new();
    add_directory(&mut builder, root, Path::new(""), &ignore, &mut skipped)?;
    let encoder = builder.into_inner().context("finish the tarball")?;
    let bytes = encoder.finish().context("compress the tarball")?;
    Ok(Packed { bytes, skipped })
}

fn read_slugignore(root: &Path) -> Result<SlugIgnore> {
    let path = root.join(slugignore::FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(SlugIgnore::parse(&text)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(SlugIgnore::default()),
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

/// Adds what directory `root/relative` holds, in name order so that the same tree always
/// packs the same way.
fn add_directory(
    builder: &mut tar::Builder<GzEncoder<Vec<u8>>>,
    root: &Path,
    relative: &Path,
    ignore: &SlugIgnore,
    skipped: &mut Vec<PathBuf>,
) -> Result<()> {
    let directory = root.join(relative);
    let mut entries = fs::read_dir(&directory)
        .with_context(|| format!("read directory {}", directory.display()))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("read directory {}", directory.display()))?;
    entries.sort();
    for name in entries {
        if name == GIT_DIRECTORY {
            continue;
        }
        let entry_relative = relative.join(&name);
        let path = root.join(&entry_relative);
        let metadata = fs::symlink_metadata(&path)
            .with_context(|| format!("read metadata of {}", path.display()))?;
        let kind = metadata.file_type();
        let is_dir = kind.is_dir();
        if ignore.is_ignored(&slash_path(&entry_relative), is_dir) {
            continue;
        }
        if !(is_dir || kind.is_file() || kind.is_symlink()) {
            skipped.push(entry_relative);
            continue;
        }
        builder
            .append_path_with_name(&path, &entry_relative)
            .with_context(|| format!("add {} to the tarball", path.display()))?;
        if is_dir {
            add_directory(builder, root, &entry_relative, ignore, skipped)?;
        }
    }
    Ok(())
}

/// A relative path with `/` between its parts, as `.slugignore` patterns see it.
fn slash_path(path: &Path) -> String {
    path.components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(all(test, unix))]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn write(root: &Path, path: &str, text: &str, mode: u32) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create parents");
        fs::write(&path, text).expect("write a test file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Every entry of the tarball: path to (kind, mode, content or link target).
    fn entries(bytes: &[u8]) -> BTreeMap<String, (char, u32, String)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut found = BTreeMap::new();
        for entry in archive.entries().expect("a tar archive") {
            let mut entry = entry.expect("an entry");
            let path = entry.path().expect("a path").display().to_string();
            let header = entry.header().clone();
            let mode = header.mode().expect("a mode") & 0o777;
            let (kind, detail) = match header.entry_type() {
                tar::EntryType::Directory => ('d', String::new()),
                tar::EntryType::Symlink => (
                    'l',
                    entry
                        .link_name()
                        .expect("a link name")
                        .expect("a link target")
                        .display()
                        .to_string(),
                ),
                _ => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut entry, &mut text).expect("read");
                    ('f', text)
                }
            };
            found.insert(path, (kind, mode, detail));
        }
        found
    }

    #[test]
    fn the_tarball_keeps_modes_and_links_and_leaves_out_ignored_files() {
        let source = tempfile::tempdir().expect("a temporary directory");
        let root = source.path();
        write(root, "app.py", "print('hi')\n", 0o644);
        write(root, "bin/run", "#!/bin/sh\n", 0o755);
        write(root, "debug.log", "noise", 0o644);
        write(root, "keep.log", "kept", 0o600);
        write(root, "tests/test_app.py", "assert True\n", 0o644);
        write(root, "src/tests/deep.py", "x", 0o644);
        write(root, ".git/HEAD", "ref: refs/heads/main\n", 0o644);
        write(root, "vendor/lib/.git", "gitdir: elsewhere\n", 0o644);
        write(
            root,
            ".slugignore",
            "# test files\n*.log\n!keep.log\n/tests/\n",
            0o644,
        );
        fs::create_dir(root.join("empty")).expect("an empty directory");
        symlink("app.py", root.join("link.py")).expect("a file link");
        symlink("bin", root.join("tools")).expect("a directory link");
        symlink("/nowhere/at/all", root.join("dangling")).expect("a dangling link");
        let _socket =
            std::os::unix::net::UnixListener::bind(root.join("server.sock")).expect("a socket");

        let packed = pack(root).expect("pack");
        assert_eq!(packed.skipped, [PathBuf::from("server.sock")]);
        let found = entries(&packed.bytes);
        let expected: BTreeMap<String, (char, u32, String)> = [
            (
                ".slugignore",
                ('f', 0o644, "# test files\n*.log\n!keep.log\n/tests/\n"),
            ),
            ("app.py", ('f', 0o644, "print('hi')\n")),
            ("bin", ('d', 0o755, "")),
            ("bin/run", ('f', 0o755, "#!/bin/sh\n")),
            ("dangling", ('l', 0o777, "/nowhere/at/all")),
            ("empty", ('d', 0o755, "")),
            ("keep.log", ('f', 0o600, "kept")),
            ("link.py", ('l', 0o777, "app.py")),
            ("src", ('d', 0o755, "")),
            ("src/tests", ('d', 0o755, "")),
            ("src/tests/deep.py", ('f', 0o644, "x")),
            ("tools", ('l', 0o777, "bin")),
            ("vendor", ('d', 0o755, "")),
            ("vendor/lib", ('d', 0o755, "")),
        ]
        .into_iter()
        .map(|(path, (kind, mode, detail))| (path.to_string(), (kind, mode, detail.to_string())))
        .collect();
        // Directory and link modes depend on the umask and the platform; files are exact.
        let normalize = |map: &BTreeMap<String, (char, u32, String)>| {
            map.iter()
                .map(|(path, (kind, mode, detail))| {
                    let mode = if *kind == 'f' { *mode } else { 0 };
                    (path.clone(), (*kind, mode, detail.clone()))
                })
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(normalize(&found), normalize(&expected));

        // Unpacked again, the tree is what was packed.
        let target = tempfile::tempdir().expect("a temporary directory");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&packed.bytes[..]));
        archive.set_preserve_permissions(true);
        archive.unpack(target.path()).expect("unpack");
        let out = target.path();
        let mode = |path: &str| {
            fs::symlink_metadata(out.join(path))
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("bin/run"), 0o755);
        assert_eq!(mode("app.py"), 0o644);
        assert_eq!(mode("keep.log"), 0o600);
        assert_eq!(
            fs::read_link(out.join("tools")).expect("a link"),
            Path::new("bin")
        );
        assert_eq!(
            fs::read_link(out.join("link.py")).expect("a link"),
            Path::new("app.py")
        );
        assert!(out.join("empty").is_dir());
        assert!(!out.join(".git").exists());
        assert!(!out.join("tests").exists());
        assert!(!out.join("debug.log").exists());
        assert!(!out.join("vendor/lib/.git").exists());
    }

    #[test]
    fn packing_is_deterministic_in_order() {
        let source = tempfile::tempdir().expect("a temporary directory");
        for name in ["zeta", "alpha", "mid/b", "mid/a"] {
            write(source.path(), name, name, 0o644);
        }
        let packed = pack(source.path()).expect("pack");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&packed.bytes[..]));
        let paths: Vec<String> = archive
            .entries()
            .expect("a tar archive")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .path()
                    .expect("a path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(paths, ["alpha", "mid", "mid/a", "mid/b", "zeta"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_that_names_it() {
        let error = pack(Path::new("/no/such/wharf/dir"))
            .err()
            .expect("an error");
        assert!(
            format!("{error:#}").contains("/no/such/wharf/dir"),
            "{error:#}"
        );
    }
}
