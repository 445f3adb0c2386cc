//! What the disk pool's tests share: a pool in its own temporary dir that is unmounted at the
//! end even when the test fails (no loop device or mount outlives a test), and an
//! unprivileged writer.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used, dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use wharf_disk::DiskPool;

pub const MIB: u64 = 1024 * 1024;
/// The uid and gid of a test's unprivileged writer (no such user exists).
pub const TENANT: (u32, u32) = (200_000, 200_000);
/// How long freed blocks may take to reach the host's disk.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A temporary dir for pools; dropping it unmounts everything mounted beneath it (deepest
/// first, lazily), so that its loop devices go too, before the dir is removed.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        // The system's temporary dir: a disk, not a tmpfs, holds the pool here.
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("wharf-disk-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    /// Opens a pool of `size` in `<scratch>/<name>`.
    pub async fn pool(&self, name: &str, size: u64) -> DiskPool {
        DiskPool::open(&self.path().join(name), size).await.unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_beneath(&self.path());
    }
}

/// Unmounts every mount point beneath `root`, deepest first.
pub fn unmount_beneath(root: &Path) {
    let mut points = mounts_beneath(root);
    points.sort_by_key(|point| std::cmp::Reverse(point.as_os_str().len()));
    for point in points {
        let _ = rustix::mount::unmount(&point, rustix::mount::UnmountFlags::DETACH);
    }
}

/// The mount points beneath `root`, from `/proc/self/mountinfo`.
pub fn mounts_beneath(root: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(root))
        .collect()
}

/// The loop devices whose backing file is beneath `root` (`losetup -a` lines).
pub fn loops_beneath(root: &Path) -> Vec<String> {
    let output = Command::new("losetup").arg("-a").output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.contains(root.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

/// Runs `script` with `sh -c` as the unprivileged [`TENANT`], in `dir` (entered as root
/// before the uid changes, as a container's bind mount would be: the tenant never walks the
/// host's path to it).
pub fn as_tenant(dir: &Path, script: &str) -> Output {
    let (uid, gid) = TENANT;
    Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

/// Writes zeros to `file` in `dir` as the tenant until `mib` MiB are written or the disk is
/// full; returns what `dd` said and whether it succeeded.
pub fn fill(dir: &Path, file: &str, mib: u64) -> (bool, String) {
    let output = as_tenant(
        dir,
        &format!("dd if=/dev/zero of={file} bs=1M count={mib} conv=fsync 2>&1"),
    );
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Bytes of the host's disk a file takes (allocated blocks, not its apparent size).
pub fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// Total bytes of the filesystem holding `path`, as `df` shows them.
pub fn filesystem_size(path: &Path) -> u64 {
    let stat = rustix::fs::statvfs(path).unwrap();
    stat.f_blocks * stat.f_frsize
}

/// Waits until `condition` holds, or fails with `what`.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
