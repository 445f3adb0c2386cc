//! Image files and the ext4 filesystems in them: made sparse, formatted (a capped directory's
//! by copying a formatted template of its size), checked, resized and loop-mounted (with
//! direct I/O, so that no page is cached twice).
//!
//! Server paths only: the pool's image files and mount points.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rustix::mount::MountFlags;

use crate::devices::{self, LoopDevice};
use crate::tools::{self, Tools};

/// The filesystems' block size: every cap is a whole number of blocks.
pub(crate) const BLOCK: u64 = 4096;
/// One inode per this many bytes of the pool: it holds few, large files (one image and one
/// mount point per capped directory).
const POOL_BYTES_PER_INODE: u64 = 1024 * 1024;
/// One inode per this many bytes of a capped directory: ext4's default, about 131,000 files
/// in a 2 GiB dyno disk (a large `node_modules` has tens of thousands).
const CAPPED_BYTES_PER_INODE: u64 = 16 * 1024;

/// What a filesystem is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The pool, holding the capped directories' images. Journaled: build caches outlive a
    /// crash of the host.
    Pool,
    /// One capped directory, its root owned by `owner`. No journal: what it holds is
    /// disposable (a dyno's writable layer, a build's tree, a cache), a journal would take
    /// up to 64 MiB of a 2 GiB cap, and an image that fails its check is made anew.
    Capped { owner: (u32, u32) },
}

/// `mkfs.ext4`'s arguments. `lazy_itable_init` leaves inode tables unwritten: the image is
/// sparse, so they read as zeros, and mounting with `noinit_itable` never writes them; the
/// image then takes about 1 MiB of the host's disk until something is written.
pub(crate) fn mkfs_args(image: &Path, layout: Layout) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-q", "-F", "-b", "4096", "-m", "0"]
        .into_iter()
        .map(OsString::from)
        .collect();
    match layout {
        Layout::Pool => {
            args.push("-i".into());
            args.push(POOL_BYTES_PER_INODE.to_string().into());
            args.push("-E".into());
            args.push("lazy_itable_init=1,lazy_journal_init=1,nodiscard".into());
        }
        Layout::Capped { owner: (uid, gid) } => {
            args.push("-i".into());
            args.push(CAPPED_BYTES_PER_INODE.to_string().into());
            args.push("-O".into());
            args.push("^has_journal".into());
            args.push("-E".into());
            args.push(format!("lazy_itable_init=1,nodiscard,root_owner={uid}:{gid}").into());
        }
    }
    args.push(image.into());
    args
}

/// Mount flags and ext4 options. `discard` hands freed blocks back down (a capped
/// directory's to the pool image, the pool's to the host's disk), `nosuid` and `nodev` keep
/// tenants' set-user-ID files and device nodes inert, `noinit_itable` (see [`mkfs_args`]).
/// `nobarrier`: no cache flush goes down to the host's disk, so that making, syncing and
/// unmounting a capped directory never waits for the host's disk to flush (under load that
/// was most of `create`'s time). What the pool holds is disposable (dynos' writable layers,
/// build trees, caches); after a crash of the host, the pool and each directory are checked
/// before they are mounted, and one damaged beyond repair is made anew, empty.
fn mount_options(layout: Layout) -> (MountFlags, &'static str) {
    let data = "discard,noinit_itable,nobarrier";
    match layout {
        Layout::Pool => (
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            data,
        ),
        Layout::Capped { .. } => (MountFlags::NOSUID | MountFlags::NODEV, data),
    }
}

/// `mount -o`'s words for the same flags.
fn mount_words(layout: Layout) -> String {
    let (flags, data) = mount_options(layout);
    let mut words = vec!["loop"];
    for (flag, word) in [
        (MountFlags::NOSUID, "nosuid"),
        (MountFlags::NODEV, "nodev"),
        (MountFlags::NOEXEC, "noexec"),
    ] {
        if flags.contains(flag) {
            words.push(word);
        }
    }
    words.push(data);
    words.join(",")
}

/// Makes `image` a sparse file of `bytes` and formats it.
pub(crate) async fn make(
    tools: &Tools,
    image: &Path,
    bytes: u64,
    layout: Layout,
) -> anyhow::Result<()> {
    // Server path: an image file of the pool.
    let file = std::fs::File::create(image)
        .with_context(|| format!("create the image file {}", image.display()))?;
    file.set_len(bytes)
        .with_context(|| format!("size the image file {}", image.display()))?;
    drop(file);
    tools::run(&tools.mkfs, mkfs_args(image, layout))
        .await
        .with_context(|| format!("format {} as ext4", image.display()))?;
    Ok(())
}

/// Makes `image` a formatted filesystem of `bytes` for a capped directory, its root owned by
/// root: a sparse copy of `template` (made once per size, then about 1 MiB to copy, much
/// cheaper than `mkfs.ext4`). Every copy has the template's UUID, which ext4 does not mind.
pub(crate) async fn make_from_template(
    tools: &Tools,
    template: &Path,
    image: &Path,
    bytes: u64,
) -> anyhow::Result<()> {
    // Server path: a template image of the pool.
    if !template.exists() {
        let unique = format!(
            "{}.{}.tmp",
            template.display(),
            NEXT_TEMPLATE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let made = PathBuf::from(unique);
        make(tools, &made, bytes, Layout::Capped { owner: (0, 0) }).await?;
        // Server path: a template image of the pool; racing makers each rename a whole one.
        std::fs::rename(&made, template)
            .with_context(|| format!("keep the template {}", template.display()))?;
    }
    let (from, to) = (template.to_owned(), image.to_owned());
    tokio::task::spawn_blocking(move || copy_sparse(&from, &to, bytes))
        .await
        .context("copy a template image: task failed")?
        .with_context(|| format!("copy {} to {}", template.display(), image.display()))
}

/// Tells templates being made apart (several creates of one size at once).
static NEXT_TEMPLATE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Copies the data of the sparse file `from` into a new sparse file `to` of `bytes`: only
/// the regions that hold data, found with `SEEK_DATA` and `SEEK_HOLE`.
fn copy_sparse(from: &Path, to: &Path, bytes: u64) -> std::io::Result<()> {
    use rustix::fs::SeekFrom;
    // Server path: images of the pool.
    let source = std::fs::File::open(from)?;
    let target = std::fs::File::create(to)?;
    target.set_len(bytes)?;
    let mut offset = 0;
    loop {
        let start = match rustix::fs::seek(&source, SeekFrom::Data(offset)) {
            Ok(start) => start,
            // No data past `offset`.
            Err(rustix::io::Errno::NXIO) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let end = rustix::fs::seek(&source, SeekFrom::Hole(start))?;
        let (mut read_at, mut write_at) = (start, start);
        while read_at < end {
            let chunk = usize::try_from(end - read_at).unwrap_or(usize::MAX);
            let copied = rustix::fs::copy_file_range(
                &source,
                Some(&mut read_at),
                &target,
                Some(&mut write_at),
                chunk,
            )?;
            if copied == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the template image shrank while it was copied",
                ));
            }
        }
        offset = end;
    }
}

/// Attaches `image` to a free loop device (which goes by itself once unmounted) and mounts
/// it at `point`, a directory in `parent`. Returns the device.
pub(crate) async fn mount_file(
    tools: &Tools,
    image: &Path,
    point: &Path,
    parent: &Path,
    layout: Layout,
) -> anyhow::Result<LoopDevice> {
    let args: [OsString; 7] = [
        "-t".into(),
        "ext4".into(),
        "-o".into(),
        mount_words(layout).into(),
        "--".into(),
        image.into(),
        point.into(),
    ];
    tools::run(&tools.mount, args)
        .await
        .with_context(|| format!("mount {} at {}", image.display(), point.display()))?;
    devices::mounted_at(point, parent)?
        .and_then(devices::loop_device)
        .with_context(|| {
            format!(
                "find the loop device mounted at {}: mount said it succeeded",
                point.display()
            )
        })
}

/// Mounts a loop device that is still attached to its image (its filesystem was lazily
/// unmounted and is still in use): the same filesystem, never a second one over one file.
pub(crate) fn mount_device(
    device: &LoopDevice,
    point: &Path,
    layout: Layout,
) -> anyhow::Result<()> {
    let (flags, data) = mount_options(layout);
    let data = std::ffi::CString::new(data).expect("mount options hold no NUL");
    rustix::mount::mount(device.path(), point, "ext4", flags, data.as_c_str())
        .with_context(|| format!("mount {} at {}", device.path().display(), point.display()))
}

/// The loop device still attached to `image`, if any: a filesystem lazily unmounted while a
/// container used it lives on until that container is gone. Asked of `losetup`, which
/// matches the file itself (device and inode), not a path the kernel may no longer show.
pub(crate) async fn attached(tools: &Tools, image: &Path) -> anyhow::Result<Option<LoopDevice>> {
    let args: [OsString; 6] = [
        "--list".into(),
        "--noheadings".into(),
        "--output".into(),
        "NAME".into(),
        "--associated".into(),
        image.into(),
    ];
    let listed = tools::run(&tools.losetup, args)
        .await
        .with_context(|| format!("find the loop device of {}", image.display()))?;
    Ok(listed
        .lines()
        .filter_map(|line| line.trim().strip_prefix("/dev/"))
        .find(|name| name.starts_with("loop"))
        .map(|name| LoopDevice {
            name: name.to_owned(),
        }))
}

/// Switches `device` to direct I/O: reads and writes go straight to the image file, not
/// through a second page cache (about twice the write throughput).
pub(crate) async fn direct_io(tools: &Tools, device: &LoopDevice) -> anyhow::Result<()> {
    let path = device.path();
    tools::run(
        &tools.losetup,
        [OsString::from("--direct-io=on"), path.clone().into()],
    )
    .await
    .with_context(|| format!("turn on direct I/O for {}", path.display()))?;
    Ok(())
}

/// Checks an unmounted image (`force`: even when it looks clean, as `resize2fs` requires).
/// Fails when `e2fsck` could not make it consistent.
pub(crate) async fn check(tools: &Tools, image: &Path, force: bool) -> anyhow::Result<()> {
    let mut args: Vec<OsString> = vec!["-p".into()];
    if force {
        args.push("-f".into());
    }
    args.push(image.into());
    let (code, stdout, stderr) = tools::run_status(&tools.e2fsck, args).await?;
    // 1 and 2: errors found and corrected.
    if !(0..=2).contains(&code) {
        anyhow::bail!(
            "e2fsck could not repair {} (exit status {code}): {}",
            image.display(),
            tools::said(&stdout, &stderr)
        );
    }
    Ok(())
}

/// Resizes the unmounted filesystem in `image` (`current` bytes) to `bytes`. Shrinking fails
/// when what it holds does not fit. Never online: growing a mounted ext4 needs
/// `CAP_SYS_RESOURCE`, which a server in a container may lack (this project's own does).
pub(crate) async fn resize_offline(
    tools: &Tools,
    image: &Path,
    current: u64,
    bytes: u64,
) -> anyhow::Result<()> {
    check(tools, image, true).await?;
    // Server path: an image file of the pool.
    let file = std::fs::File::options()
        .write(true)
        .open(image)
        .with_context(|| format!("open {}", image.display()))?;
    if bytes > current {
        file.set_len(bytes)
            .with_context(|| format!("grow {}", image.display()))?;
        tools::run(&tools.resize2fs, [image.as_os_str()])
            .await
            .context("grow the filesystem")?;
    } else {
        let size = OsString::from(format!("{}K", bytes / 1024));
        tools::run(&tools.resize2fs, [image.as_os_str(), size.as_os_str()])
            .await
            .context("shrink the filesystem (what it holds must fit in the new cap)")?;
        file.set_len(bytes)
            .with_context(|| format!("shrink {}", image.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn capped_filesystems_have_no_journal_and_their_owner_at_the_root() {
        let args = mkfs_args(Path::new("/p/x.img"), Layout::Capped { owner: (7, 8) });
        assert_eq!(
            words(&args),
            "-q -F -b 4096 -m 0 -i 16384 -O ^has_journal \
             -E lazy_itable_init=1,nodiscard,root_owner=7:8 /p/x.img"
        );
    }

    #[test]
    fn the_pool_is_journaled_with_few_inodes() {
        let args = mkfs_args(Path::new("/p/pool.img"), Layout::Pool);
        assert_eq!(
            words(&args),
            "-q -F -b 4096 -m 0 -i 1048576 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard \
             /p/pool.img"
        );
    }

    #[test]
    fn sparse_copies_hold_the_same_bytes_and_stay_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        let size = 64 * 1024 * 1024;
        let file = std::fs::File::create(&from).unwrap();
        file.set_len(size).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(b"start", 0).unwrap();
        file.write_all_at(&[7u8; 8192], 10 * 1024 * 1024).unwrap();
        file.write_all_at(b"end", size - 3).unwrap();
        drop(file);
        copy_sparse(&from, &to, size).unwrap();
        assert_eq!(std::fs::read(&from).unwrap(), std::fs::read(&to).unwrap());
        use std::os::unix::fs::MetadataExt;
        let blocks = std::fs::metadata(&to).unwrap().blocks() * 512;
        assert!(blocks < 1024 * 1024, "the copy takes {blocks} bytes");
    }

    #[test]
    fn mount_words_match_the_flags() {
        assert_eq!(
            mount_words(Layout::Pool),
            "loop,nosuid,nodev,noexec,discard,noinit_itable,nobarrier"
        );
        assert_eq!(
            mount_words(Layout::Capped { owner: (0, 0) }),
            "loop,nosuid,nodev,discard,noinit_itable,nobarrier"
        );
    }
}
