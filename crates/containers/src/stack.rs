//! The stack: the read-only root filesystem every dyno and build runs on, made of the host's
//! `/usr`, a generated minimal `/etc` and empty mount points.
//!
//! Nothing is mounted on the host: the stack is a directory of mount points plus a list of
//! read-only binds ([`Stack::binds`]) that each container's OCI config carries. So the host
//! never has mounts to clean up, and a container sees only what the list names: not the data
//! dir, other apps, `/root`, `/home` or the host's `/etc/shadow`.
//!
//! A stack can also be a complete root filesystem that the server built ([`crate::Stacks`]):
//! then only the mount points and the generated `/etc` are added, and nothing of the host is
//! bound.
//!
//! Server paths only: the stack's directory and the host's own `/etc` and `/usr`; no
//! container writes to either (they are bound read-only).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The uid and gid dynos run as; the stack's `/etc/passwd` names it `dyno`, home `/app`.
pub const DYNO_USER: (u32, u32) = (200_000, 200_000);
/// The uid and gid builds run as; the stack's `/etc/passwd` names it `build`, home `/app`.
pub const BUILD_USER: (u32, u32) = (200_001, 200_001);

/// Empty directories in the stack where the container's own filesystems and the caller's binds
/// go. A container mount may target exactly these (or go below `/tmp` or an overlay `/app`).
pub const MOUNT_POINTS: [&str; 9] = [
    "/app",
    "/tmp",
    "/cache",
    "/env",
    "/buildpack",
    "/exports",
    "/runtimes",
    "/runtime",
    "/wharf",
];

/// Mount points the OCI config itself fills (proc, devices, sysfs, the host's `/usr`).
const SYSTEM_MOUNT_POINTS: [&str; 4] = ["/proc", "/dev", "/sys", "/usr"];

/// The merged-`/usr` symlinks at the root; `lib64` and friends only where the host has them.
const USR_LINKS: [&str; 7] = ["bin", "sbin", "lib", "lib64", "lib32", "libx32", "libo32"];

/// Host `/etc` entries that programs need, bound read-only when the host has them. Of `/etc/ssl`
/// only the certificates and the OpenSSL configuration: `/etc/ssl/private` holds host keys.
const HOST_ETC: [&str; 16] = [
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "mime.types",
    "os-release",
    "protocols",
    "services",
    "gai.conf",
    "host.conf",
];

/// A read-only bind from the host that every container on the stack gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackBind {
    /// The host path.
    pub source: PathBuf,
    /// Where it appears in the container.
    pub destination: String,
}

/// The stack: a read-only root filesystem shared by all containers.
#[derive(Clone, Debug)]
pub struct Stack {
    rootfs: PathBuf,
    binds: Vec<StackBind>,
    /// Held by every clone: while one is alive, [`crate::Stacks`] keeps this version on disk
    /// (a build step or a dyno about to start a container on it).
    lease: std::sync::Arc<()>,
}

impl Stack {
    /// Creates or refreshes the stack under `dir` (the root filesystem is `dir/rootfs`).
    /// Idempotent and cheap when the stack is already there: files are rewritten only when
    /// their content changed, and atomically, since running containers share them.
    pub fn prepare(dir: &Path) -> anyhow::Result<Stack> {
        Self::prepare_from(dir, Path::new("/"))
    }

    /// [`Stack::prepare`] with the host's files read under `host_root` (tests use a fake host).
    fn prepare_from(dir: &Path, host_root: &Path) -> anyhow::Result<Stack> {
        let rootfs = dir.join("rootfs");
        ensure_dir(&rootfs)?;
        for name in MOUNT_POINTS.iter().chain(&SYSTEM_MOUNT_POINTS) {
            ensure_dir(&rootfs.join(&name[1..]))?;
        }
        // A tmpfs on /tmp gets the mode of its mount point under runc (HOST-NOTES).
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .context("chmod the stack's /tmp")?;
        for link in USR_LINKS {
            link_like_host(&rootfs, host_root, link)?;
        }

        let etc = rootfs.join("etc");
        ensure_dir(&etc)?;
        for (name, content) in generated_etc(host_root) {
            write_if_changed(&etc.join(name), content.as_bytes())?;
        }

        let mut binds = vec![StackBind {
            source: host_root.join("usr"),
            destination: "/usr".to_owned(),
        }];
        for name in host_etc_entries(host_root)? {
            if let Some(bind) = mirror_host_etc(&rootfs, host_root, &name)? {
                binds.push(bind);
            }
        }
        Ok(Stack {
            rootfs,
            binds,
            lease: std::sync::Arc::default(),
        })
    }

    /// Makes a complete root filesystem (one debootstrap made) a stack: the mount points and
    /// Wharf's generated `/etc` on top, nothing bound from the host. Idempotent; files are
    /// rewritten atomically and only when they changed, since running containers share them.
    pub fn prepare_built(rootfs: &Path) -> anyhow::Result<Stack> {
        Self::prepare_built_from(rootfs, Path::new("/"))
    }

    fn prepare_built_from(rootfs: &Path, host_root: &Path) -> anyhow::Result<Stack> {
        for name in MOUNT_POINTS.iter().chain(&SYSTEM_MOUNT_POINTS) {
            ensure_dir(&rootfs.join(&name[1..]))?;
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .context("chmod the stack's /tmp")?;
        let etc = rootfs.join("etc");
        ensure_dir(&etc)?;
        for (name, content) in generated_etc(host_root) {
            let path = etc.join(name);
            // Debian's own may be a symlink (resolv.conf): never write through one.
            if fs::symlink_metadata(&path).is_ok_and(|metadata| !metadata.is_file()) {
                remove(&path)?;
            }
            write_if_changed(&path, content.as_bytes())?;
        }
        Ok(Stack {
            rootfs: rootfs.to_owned(),
            binds: Vec::new(),
            lease: std::sync::Arc::default(),
        })
    }

    /// Whether a clone of this stack is alive elsewhere (a container about to start on it).
    pub(crate) fn is_leased(&self) -> bool {
        std::sync::Arc::strong_count(&self.lease) > 1
    }

    /// The root filesystem directory (the OCI `root.path`).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The read-only binds every container gets, in mount order (`/usr` first).
    pub fn binds(&self) -> &[StackBind] {
        &self.binds
    }
}

/// Whether `destination` is one of the stack's [`MOUNT_POINTS`].
pub fn is_mount_point(destination: &str) -> bool {
    MOUNT_POINTS.contains(&destination)
}

/// The generated `/etc`: users and groups of the containers, name resolution through files and
/// the host's DNS servers (containers share the host network for now).
fn generated_etc(host_root: &Path) -> Vec<(&'static str, String)> {
    let (dyno_uid, dyno_gid) = DYNO_USER;
    let (build_uid, build_gid) = BUILD_USER;
    let passwd = format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n\
         dyno:x:{dyno_uid}:{dyno_gid}:Wharf dyno:/app:/bin/bash\n\
         build:x:{build_uid}:{build_gid}:Wharf build:/app:/bin/bash\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    );
    let group = format!(
        "root:x:0:\ntty:x:5:\ndyno:x:{dyno_gid}:\nbuild:x:{build_gid}:\nnogroup:x:65534:\n"
    );
    // Containers use the host's resolvers; an unreadable file leaves glibc's default.
    let resolv = fs::read_to_string(host_root.join("etc/resolv.conf")).unwrap_or_default();
    vec![
        ("passwd", passwd),
        ("group", group),
        ("hosts", hosts_file("localhost")),
        ("hostname", "localhost\n".to_owned()),
        ("resolv.conf", resolv),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n\
             protocols: files\nservices: files\nethers: files\nrpc: files\n"
                .to_owned(),
        ),
    ]
}

/// `/etc/hosts` naming `hostname` as a loopback address.
pub(crate) fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

/// The [`HOST_ETC`] names plus the host's `python3*` entries (Debian's Python reads
/// `/etc/python3.11/sitecustomize.py`).
fn host_etc_entries(host_root: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = HOST_ETC.iter().map(|name| (*name).to_owned()).collect();
    let etc = host_root.join("etc");
    let entries = fs::read_dir(&etc).with_context(|| format!("read {}", etc.display()))?;
    let mut python = Vec::new();
    for entry in entries {
        let name = entry.context("read /etc")?.file_name();
        if let Some(name) = name.to_str().filter(|name| name.starts_with("python3")) {
            python.push(name.to_owned());
        }
    }
    python.sort();
    names.extend(python);
    Ok(names)
}

/// Makes `/etc/<name>` in the stack like the host's: a symlink into `/usr` is copied as a
/// symlink (the target is visible through the `/usr` bind), anything else gets a mount point and
/// a bind of the (resolved) host path. Entries the host lacks are skipped.
fn mirror_host_etc(
    rootfs: &Path,
    host_root: &Path,
    name: &str,
) -> anyhow::Result<Option<StackBind>> {
    let host_path = host_root.join("etc").join(name);
    let target = rootfs.join("etc").join(name);
    let metadata = match fs::symlink_metadata(&host_path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("stat {}", host_path.display())),
    };
    if let Some(parent) = target.parent() {
        ensure_dir(parent)?;
    }
    let source = if metadata.file_type().is_symlink() {
        let Ok(resolved) = fs::canonicalize(&host_path) else {
            return Ok(None); // a dangling link: nothing to show
        };
        if resolved.starts_with(host_root.join("usr")) {
            let link = fs::read_link(&host_path)
                .with_context(|| format!("read link {}", host_path.display()))?;
            ensure_symlink(&target, &link)?;
            return Ok(None);
        }
        resolved
    } else {
        host_path
    };
    if source.is_dir() {
        ensure_dir(&target)?;
    } else {
        ensure_empty_file(&target)?;
    }
    Ok(Some(StackBind {
        source,
        destination: format!("/etc/{name}"),
    }))
}

/// Copies the host's `/<name> -> usr/<name>` symlink; the stack needs a merged `/usr`.
fn link_like_host(rootfs: &Path, host_root: &Path, name: &str) -> anyhow::Result<()> {
    let host_path = host_root.join(name);
    match fs::read_link(&host_path) {
        Ok(link) if link.starts_with("usr") || link.starts_with("/usr") => {
            ensure_symlink(&rootfs.join(name), &link)
        }
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        _ => bail!(
            "{} is not a symlink into /usr: the stack needs a host with a merged /usr \
             (Debian 12 or later)",
            host_path.display()
        ),
    }
}

fn ensure_dir(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => return Ok(()),
        Ok(_) => remove(path)?,
        Err(_) => {}
    }
    fs::create_dir_all(path).with_context(|| format!("create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

fn ensure_empty_file(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => return Ok(()),
        Ok(_) => remove(path)?,
        Err(_) => {}
    }
    write_if_changed(path, b"")
}

fn ensure_symlink(path: &Path, link: &Path) -> anyhow::Result<()> {
    match fs::read_link(path) {
        Ok(existing) if existing == link => return Ok(()),
        Ok(_) => remove(path)?,
        Err(_) if fs::symlink_metadata(path).is_ok() => remove(path)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(link, path)
        .with_context(|| format!("symlink {} -> {}", path.display(), link.display()))
}

fn remove(path: &Path) -> anyhow::Result<()> {
    let result = if fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir()) {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    result.with_context(|| format!("remove {}", path.display()))
}

/// Writes `content` through a temporary file and a rename, and only when it differs.
fn write_if_changed(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    if fs::read(path).is_ok_and(|existing| existing == content) {
        return Ok(());
    }
    let temporary = path.with_extension(format!("wharf-{}", uuid::Uuid::new_v4().simple()));
    fs::write(&temporary, content).with_context(|| format!("write {}", temporary.display()))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("chmod {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("rename to {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A fake host: merged /usr, a few /etc entries, secrets that must stay out.
    fn fake_host() -> tempfile::TempDir {
        let host = tempfile::tempdir().unwrap();
        let root = host.path();
        for dir in [
            "usr/bin",
            "usr/lib",
            "usr/share/zoneinfo",
            "etc/ssl/certs",
            "etc/ssl/private",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        fs::write(root.join("usr/share/zoneinfo/UTC"), "tz").unwrap();
        std::os::unix::fs::symlink(
            root.join("usr/share/zoneinfo/UTC"),
            root.join("etc/localtime"),
        )
        .unwrap();
        fs::write(root.join("etc/resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
        fs::write(root.join("etc/shadow"), "root:secret").unwrap();
        fs::write(
            root.join("etc/passwd"),
            "alice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        fs::write(root.join("etc/ld.so.cache"), "cache").unwrap();
        fs::create_dir_all(root.join("etc/python3.11")).unwrap();
        host
    }

    #[test]
    fn prepares_a_minimal_root() {
        let host = fake_host();
        let dir = tempfile::tempdir().unwrap();
        let stack = Stack::prepare_from(dir.path(), host.path()).unwrap();
        let rootfs = stack.rootfs();

        for point in MOUNT_POINTS.iter().chain(&SYSTEM_MOUNT_POINTS) {
            assert!(rootfs.join(&point[1..]).is_dir(), "{point}");
        }
        let tmp_mode = fs::metadata(rootfs.join("tmp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(tmp_mode & 0o7777, 0o1777);
        assert_eq!(
            fs::read_link(rootfs.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert!(
            fs::symlink_metadata(rootfs.join("lib64")).is_err(),
            "the host has none"
        );

        let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
        assert!(passwd.contains("dyno:x:200000:200000:"), "{passwd}");
        assert!(!passwd.contains("alice"), "host users stay out: {passwd}");
        assert_eq!(
            fs::read_to_string(rootfs.join("etc/resolv.conf")).unwrap(),
            "nameserver 192.0.2.53\n"
        );
        assert!(!rootfs.join("etc/shadow").exists());
        assert!(!rootfs.join("etc/ssl/private").exists());
        assert!(!rootfs.join("root").exists() && !rootfs.join("home").exists());

        let destinations: Vec<&str> = stack
            .binds()
            .iter()
            .map(|b| b.destination.as_str())
            .collect();
        assert_eq!(
            destinations,
            [
                "/usr",
                "/etc/ssl/certs",
                "/etc/ld.so.cache",
                "/etc/python3.11"
            ]
        );
        assert!(rootfs.join("etc/ssl/certs").is_dir());
        assert!(rootfs.join("etc/ld.so.cache").is_file());
        // A symlink into /usr is copied, not bound.
        assert_eq!(
            fs::read_link(rootfs.join("etc/localtime")).unwrap(),
            host.path().join("usr/share/zoneinfo/UTC")
        );
    }

    #[test]
    fn prepare_is_idempotent_and_refreshes() {
        let host = fake_host();
        let dir = tempfile::tempdir().unwrap();
        let first = Stack::prepare_from(dir.path(), host.path()).unwrap();
        let passwd = first.rootfs().join("etc/passwd");
        let modified = fs::metadata(&passwd).unwrap().modified().unwrap();

        fs::write(
            host.path().join("etc/resolv.conf"),
            "nameserver 192.0.2.54\n",
        )
        .unwrap();
        let second = Stack::prepare_from(dir.path(), host.path()).unwrap();
        assert_eq!(first.binds(), second.binds());
        assert_eq!(fs::metadata(&passwd).unwrap().modified().unwrap(), modified);
        let resolv = fs::read_to_string(second.rootfs().join("etc/resolv.conf")).unwrap();
        assert_eq!(resolv, "nameserver 192.0.2.54\n");
        let leftovers = fs::read_dir(second.rootfs().join("etc"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("wharf-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn refuses_a_host_without_merged_usr() {
        let host = fake_host();
        fs::remove_file(host.path().join("bin")).unwrap();
        fs::create_dir(host.path().join("bin")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let error = Stack::prepare_from(dir.path(), host.path()).unwrap_err();
        assert!(format!("{error:#}").contains("merged /usr"), "{error:#}");
    }

    #[test]
    fn a_built_root_gets_wharfs_etc_and_no_host_binds() {
        let host = fake_host();
        let built = tempfile::tempdir().unwrap();
        let rootfs = built.path().join("rootfs");
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
        fs::write(
            rootfs.join("etc/passwd"),
            "_apt:x:42:65534::/nonexistent:/bin/false\n",
        )
        .unwrap();
        let outside = built.path().join("outside");
        fs::write(&outside, "untouched").unwrap();
        std::os::unix::fs::symlink(&outside, rootfs.join("etc/resolv.conf")).unwrap();

        let stack = Stack::prepare_built_from(&rootfs, host.path()).unwrap();
        assert!(
            stack.binds().is_empty(),
            "nothing of the host: {:?}",
            stack.binds()
        );
        assert_eq!(stack.rootfs(), rootfs);
        for point in MOUNT_POINTS.iter().chain(&SYSTEM_MOUNT_POINTS) {
            assert!(rootfs.join(&point[1..]).is_dir(), "{point}");
        }
        let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
        assert!(passwd.contains("build:x:200001:200001:"), "{passwd}");
        assert!(fs::symlink_metadata(rootfs.join("etc/resolv.conf"))
            .unwrap()
            .is_file());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "untouched");
        assert_eq!(
            fs::read_to_string(rootfs.join("etc/resolv.conf")).unwrap(),
            "nameserver 192.0.2.53\n"
        );
        assert!(!stack.is_leased());
        let clone = stack.clone();
        assert!(stack.is_leased() && clone.is_leased());
    }

    #[test]
    fn mount_points() {
        assert!(is_mount_point("/cache"));
        assert!(!is_mount_point("/etc"));
        assert!(!is_mount_point("/cache/x"));
    }
}
