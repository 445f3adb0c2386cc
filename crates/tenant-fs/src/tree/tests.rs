//! Each way a tenant could point the server's file operations out of its tree, refused.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

/// A tree beside a "host" directory holding a secret the tree must never reach.
struct Fixture {
    _root: tempfile::TempDir,
    tree: PathBuf,
    secret: PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    let host = root.path().join("host");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    let secret = host.join("admin-api-key");
    std::fs::write(&secret, "SECRET-KEY\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    Fixture {
        tree,
        secret,
        _root: root,
    }
}

fn open(fixture: &Fixture) -> TreeDir {
    TreeDir::open(&fixture.tree).unwrap()
}

#[test]
fn regular_files_are_read() {
    let f = fixture();
    std::fs::write(f.tree.join("Procfile"), "web: run\n").unwrap();
    let tree = open(&f);
    assert_eq!(
        tree.read_string(Path::new("Procfile"), 100).unwrap(),
        Some("web: run\n".to_owned())
    );
    assert_eq!(tree.read(Path::new("missing"), 100).unwrap(), None);
    assert_eq!(tree.kind(Path::new("Procfile")).unwrap(), Some(Kind::File));
}

#[test]
fn a_link_to_a_host_file_is_never_read() {
    let f = fixture();
    std::os::unix::fs::symlink(&f.secret, f.tree.join("Procfile")).unwrap();
    let tree = open(&f);
    let error = tree.read(Path::new("Procfile"), 1000).unwrap_err();
    assert!(matches!(error, TreeError::Link { .. }), "{error}");
    assert!(error.to_string().starts_with("Procfile is a symbolic link"));
    assert!(!error.to_string().contains("SECRET"));
    assert_eq!(tree.kind(Path::new("Procfile")).unwrap(), Some(Kind::Link));
}

#[test]
fn a_linked_directory_on_the_way_is_refused() {
    let f = fixture();
    std::os::unix::fs::symlink(f.secret.parent().unwrap(), f.tree.join("bin")).unwrap();
    let tree = open(&f);
    let error = tree.read(Path::new("bin/admin-api-key"), 1000).unwrap_err();
    assert!(matches!(error, TreeError::Link { .. }), "{error}");
    let error = tree.create_dir_all(Path::new("bin/sub")).unwrap_err();
    assert!(matches!(error, TreeError::Link { .. }), "{error}");
    let error = tree
        .write_new(Path::new("bin/new"), b"x", 0o644)
        .unwrap_err();
    assert!(matches!(error, TreeError::Link { .. }), "{error}");
    assert!(!f.secret.parent().unwrap().join("new").exists());
    assert!(!f.secret.parent().unwrap().join("sub").exists());
}

#[test]
fn climbing_out_is_refused() {
    let f = fixture();
    let tree = open(&f);
    for path in [
        "../host/admin-api-key",
        "/etc/passwd",
        "a/../../host/admin-api-key",
    ] {
        let error = tree.read(Path::new(path), 1000).unwrap_err();
        assert!(
            matches!(error, TreeError::Outside { .. }),
            "{path}: {error}"
        );
    }
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let f = fixture();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        f.tree.join("Procfile"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let tree = open(&f);
    let error = tree.read(Path::new("Procfile"), 1000).unwrap_err();
    assert!(
        matches!(error, TreeError::NotRegular { kind: "a FIFO", .. }),
        "{error}"
    );
}

#[test]
fn a_hard_link_is_refused_where_a_file_of_its_own_is_expected() {
    let f = fixture();
    std::fs::hard_link(&f.secret, f.tree.join("Procfile")).unwrap();
    let tree = open(&f);
    let error = tree.read(Path::new("Procfile"), 1000).unwrap_err();
    assert!(
        matches!(error, TreeError::HardLink { links: 2, .. }),
        "{error}"
    );
    // Shared names are accepted only for files owned like the tree: the secret is root's
    // here, and so is the tree; give the tree to someone else to see the refusal.
    rustix::fs::chown(
        &f.tree,
        Some(sys::Uid::from_raw(4242)),
        Some(sys::Gid::from_raw(4242)),
    )
    .unwrap();
    let error = open(&f).open_file(Path::new("Procfile"), true).unwrap_err();
    assert!(matches!(error, TreeError::HardLink { .. }), "{error}");
}

#[test]
fn large_files_are_refused() {
    let f = fixture();
    std::fs::write(f.tree.join("big"), vec![b'x'; 2000]).unwrap();
    let error = open(&f).read(Path::new("big"), 1000).unwrap_err();
    assert!(
        matches!(error, TreeError::TooLarge { limit: 1000, .. }),
        "{error}"
    );
}

#[test]
fn directories_are_not_files() {
    let f = fixture();
    std::fs::create_dir(f.tree.join("Procfile")).unwrap();
    let error = open(&f).read(Path::new("Procfile"), 1000).unwrap_err();
    assert!(
        matches!(
            error,
            TreeError::NotRegular {
                kind: "a directory",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn new_files_never_write_through_a_link() {
    let f = fixture();
    std::os::unix::fs::symlink(&f.secret, f.tree.join("00")).unwrap();
    let tree = open(&f);
    let error = tree
        .write_new(Path::new("00"), b"owned", 0o755)
        .unwrap_err();
    assert!(matches!(error, TreeError::Exists { .. }), "{error}");
    assert_eq!(std::fs::read_to_string(&f.secret).unwrap(), "SECRET-KEY\n");
    assert_eq!(
        std::fs::metadata(&f.secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    tree.write_new(Path::new("01"), b"ok", 0o640).unwrap();
    let written = std::fs::metadata(f.tree.join("01")).unwrap();
    assert_eq!(written.permissions().mode() & 0o777, 0o640);
}

#[test]
fn removing_a_tree_leaves_what_its_links_point_at() {
    let f = fixture();
    let host = f.secret.parent().unwrap().to_owned();
    std::fs::create_dir_all(f.tree.join("a/b")).unwrap();
    std::fs::write(f.tree.join("a/b/file"), "x").unwrap();
    std::os::unix::fs::symlink(&host, f.tree.join("a/host-dir")).unwrap();
    std::os::unix::fs::symlink(&f.secret, f.tree.join("a/b/host-file")).unwrap();
    let tree = open(&f);
    tree.remove(Path::new("a")).unwrap();
    assert!(!f.tree.join("a").exists());
    assert_eq!(std::fs::read_to_string(&f.secret).unwrap(), "SECRET-KEY\n");
    tree.remove(Path::new("a")).unwrap();
    remove_tree(&f.tree).unwrap();
    assert!(!f.tree.exists());
    assert!(f.secret.exists());
}

#[test]
fn a_linked_root_is_refused() {
    let f = fixture();
    let link = f.tree.parent().unwrap().join("link");
    std::os::unix::fs::symlink(f.secret.parent().unwrap(), &link).unwrap();
    let error = TreeDir::open(&link).unwrap_err();
    assert!(matches!(error, TreeError::Link { .. }), "{error}");
    remove_tree(&link).unwrap();
    assert!(f.secret.exists(), "removing a link removes only the link");
}

#[test]
fn chown_changes_the_tree_and_never_a_links_target() {
    let f = fixture();
    std::fs::create_dir_all(f.tree.join("a")).unwrap();
    std::fs::write(f.tree.join("a/file"), "x").unwrap();
    std::os::unix::fs::symlink(&f.secret, f.tree.join("a/host-file")).unwrap();
    open(&f).chown_all(4242, 4343).unwrap();
    for path in ["", "a", "a/file", "a/host-file"] {
        let meta = std::fs::symlink_metadata(f.tree.join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "{path}");
    }
    let secret = std::fs::metadata(&f.secret).unwrap();
    assert_eq!((secret.uid(), secret.gid()), (0, 0));
}

#[test]
fn directories_are_made_and_listed() {
    let f = fixture();
    let tree = open(&f);
    let sub = tree.create_dir_all(Path::new("x/y/z")).unwrap();
    sub.write_new(Path::new("f"), b"1", 0o644).unwrap();
    tree.symlink(Path::new("x/link"), Path::new("/usr/bin/python3"))
        .unwrap();
    let names: Vec<_> = tree
        .dir(Path::new("x"))
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.name.to_string_lossy().into_owned(), e.kind))
        .collect();
    assert_eq!(
        names,
        [("link".to_owned(), Kind::Link), ("y".to_owned(), Kind::Dir)]
    );
    assert_eq!(
        tree.read_link(Path::new("x/link")).unwrap(),
        Path::new("/usr/bin/python3")
    );
    assert_eq!(sub.shown(Path::new("f")), "x/y/z/f");
}
