//! Disk caps for dynos and builds: a [`DiskPool`] hands out directories that each hold at
//! most a fixed number of bytes, so that no dyno or build fills the host's disk. A process
//! writing past its directory's cap gets `ENOSPC` ("No space left on device") and `df` in it
//! shows the cap.
//!
//! # How
//! The pool is one sparse image file (`<dir>/pool.img`, journaled ext4) of a fixed size,
//! loop-mounted at `<dir>/mnt`: everything the pool holds, together, never takes more of the
//! host's disk than that size. Each capped directory is a filesystem of its own: a sparse
//! image file in the pool (`mnt/.images/<name>.img`, ext4 without a journal, exactly the cap
//! in size) loop-mounted at `mnt/<name>`. Both are mounted with `discard`, so that a freed
//! block goes back down to the pool and from the pool to the host, and `nosuid,nodev`.
//!
//! Why not one filesystem with project quotas (XFS `prjquota`, ext4 `project`): the kernels
//! Wharf runs on are not all built with them (this project's own is built without
//! `CONFIG_XFS_QUOTA` and `CONFIG_QFMT_V2`, so neither mounts), and at a project quota XFS's
//! `df` shows the cap but ext4 answers `EDQUOT`. A filesystem per directory needs only loop
//! devices and ext4, answers `ENOSPC` at the cap exactly, and removing a directory is
//! unmounting it and unlinking one file, whatever a tenant left in it.
//!
//! The caps together may exceed the pool (an idle image takes about 1 MiB): the pool is
//! overcommitted as thin provisioning is. Should the pool itself fill up, writes in the
//! capped directories fail (with `ENOSPC` or `EIO`) while the host keeps its free space.
//!
//! Cost: making a capped directory is a sparse copy of a formatted template of its size
//! (about 1 MiB; made once per size with `mkfs.ext4`) and one `mount -o loop`; direct I/O is
//! then switched on in the background (`losetup --direct-io=on`: the switch waits for the
//! device's queue to freeze, three times the rest). Removing it is one `umount` system call
//! and one unlink. `examples/disk_bench.rs` measures both.
//!
//! A server killed with SIGKILL leaves everything mounted: the next [`DiskPool::open`] on the
//! same `dir` finds the pool mounted and uses it, and [`DiskPool::create`] of a name that is
//! still mounted uses that filesystem. A filesystem that could only be lazily unmounted (a
//! container still used it) keeps its loop device until the container is gone; opening or
//! creating it again mounts that same device, never a second device over the same file.
//!
//! Server paths only: the pool's dir, its image files and mount points; what tenants write
//! inside a capped directory is only ever removed through `wharf_tenant_fs::remove_tree`.

mod devices;
mod image;
pub mod name;
mod tools;

use std::collections::BTreeSet;
use std::fmt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::devices::{LoopDevice, Unmounted};
use crate::image::{Layout, BLOCK};
use crate::tools::Tools;

/// The smallest cap a directory may have.
pub const MIN_CAP_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest pool.
pub const MIN_POOL_BYTES: u64 = 64 * 1024 * 1024;
/// The pool's image file in its dir.
const POOL_IMAGE: &str = "pool.img";
/// Where the pool is mounted in its dir.
const MOUNT_DIR: &str = "mnt";
/// The capped directories' images, in the pool (a name never starts with '.').
const IMAGES_DIR: &str = ".images";
/// The mode of a capped directory's root.
const CAPPED_MODE: u32 = 0o755;

/// A pool of capped directories. Cheap to clone. Calls for one name must not overlap (each
/// dyno and build has names of its own); calls for different names may.
#[derive(Clone)]
pub struct DiskPool {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    mnt: PathBuf,
    images: PathBuf,
    tools: Tools,
    /// Set once direct I/O was refused (a host filesystem without `O_DIRECT`), so that it is
    /// logged once.
    no_direct_io: AtomicBool,
}

impl fmt::Debug for DiskPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskPool")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl DiskPool {
    /// Opens the pool in `dir` (a directory only the server writes, e.g.
    /// `<data-dir>/disk`): creates `dir/pool.img` (sparse, `size_bytes` rounded down to
    /// 4 KiB) and formats it on first use, and mounts it at `dir/mnt`; a pool a killed server
    /// left mounted is used as it is. An existing pool smaller than `size_bytes` grows to it;
    /// one larger keeps its size (shrinking a pool is not done while it holds directories).
    /// Fails, saying what to do, when `mkfs.ext4`, `e2fsck`, `resize2fs`, `mount` or
    /// `losetup` is missing, when the kernel has no loop devices or no ext4, or when
    /// `size_bytes` is more than the free space of the filesystem holding `dir`.
    pub async fn open(dir: &Path, size_bytes: u64) -> anyhow::Result<DiskPool> {
        check_kernel()?;
        let tools = Tools::find()?;
        let size = whole_blocks(size_bytes, MIN_POOL_BYTES, "a disk pool")?;
        // Server path: the pool's own dir.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create the disk pool dir {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("find the disk pool dir {}", dir.display()))?;
        let mnt = dir.join(MOUNT_DIR);
        create_dir(&mnt, 0o700)?;
        let image = dir.join(POOL_IMAGE);
        let pool = DiskPool {
            inner: Arc::new(Inner {
                images: mnt.join(IMAGES_DIR),
                mnt: mnt.clone(),
                dir: dir.clone(),
                tools,
                no_direct_io: AtomicBool::new(false),
            }),
        };
        let tools = &pool.inner.tools;
        if let Some(device) = devices::mounted_at(&mnt, &dir)? {
            devices::loop_device(device)
                .filter(|device| device.backing_file().as_deref() == Some(image.as_path()))
                .with_context(|| {
                    format!(
                        "{} has another filesystem mounted: unmount it (umount {}) or give \
                         the disk pool another dir",
                        mnt.display(),
                        mnt.display()
                    )
                })?;
            tracing::info!(dir = %dir.display(), "using the disk pool a previous server left mounted");
            let current = file_len(&image)?;
            if size != current {
                tracing::warn!(
                    size = current,
                    asked = size,
                    "the disk pool was left mounted and keeps its size: stop the server \
                     cleanly (SIGTERM) and start it again to resize it"
                );
            }
        } else {
            // Server path: the pool's image.
            let attached = if image.exists() {
                image::attached(tools, &image).await?
            } else {
                None
            };
            // Server path: the pool's image.
            if attached.is_none() && image.exists() {
                if let Err(error) = image::check(tools, &image, false).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "the disk pool is damaged (a crash of the host?): making it anew, \
                         empty (build caches are lost; dynos' and builds' disks are made \
                         again as they start)"
                    );
                    // Server path: the pool's image.
                    std::fs::remove_file(&image)
                        .with_context(|| format!("remove {}", image.display()))?;
                }
            }
            pool.mount_pool(&image, size, attached).await?;
        }
        create_dir(&pool.inner.images, 0o700)?;
        Ok(pool)
    }

    /// Mounts the pool's image: the loop device it is still `attached` to, else the image,
    /// made or grown to `size` first when needed.
    async fn mount_pool(
        &self,
        image: &Path,
        size: u64,
        attached: Option<LoopDevice>,
    ) -> anyhow::Result<()> {
        let tools = &self.inner.tools;
        let (dir, mnt) = (&self.inner.dir, &self.inner.mnt);
        // Server path: the pool's image.
        if image.exists() {
            match attached {
                // Lazily unmounted and still in use: the same filesystem again, as it is.
                Some(device) => image::mount_device(&device, mnt, Layout::Pool)?,
                None => {
                    let current = file_len(image)?;
                    if size > current {
                        check_free_space(dir, size - current)?;
                        image::resize_offline(tools, image, current, size)
                            .await
                            .context("grow the disk pool")?;
                        tracing::info!(from = current, to = size, "grew the disk pool");
                    } else if size < current {
                        tracing::warn!(
                            size = current,
                            asked = size,
                            "the disk pool is larger than its setting and keeps its size: to \
                             shrink it, stop the server and remove {}",
                            image.display()
                        );
                    }
                    let device = image::mount_file(tools, image, mnt, dir, Layout::Pool).await?;
                    self.direct_io(&device).await;
                }
            }
        } else {
            check_free_space(dir, size)?;
            image::make(tools, image, size, Layout::Pool).await?;
            let device = image::mount_file(tools, image, mnt, dir, Layout::Pool).await?;
            self.direct_io(&device).await;
        }
        Ok(())
    }

    /// The pool size for `dir` when none is set: an existing pool's size, else half the free
    /// space of the filesystem that holds (or will hold) `dir`, so that the host keeps the
    /// other half whatever dynos and builds write.
    pub fn default_size(dir: &Path) -> anyhow::Result<u64> {
        // Server path: the pool's own image.
        if let Ok(metadata) = std::fs::metadata(dir.join(POOL_IMAGE)) {
            return Ok(metadata.len());
        }
        let existing = dir
            .ancestors()
            // Server path: the pool's dir or one of its parents.
            .find(|ancestor| ancestor.exists())
            .unwrap_or(Path::new("/"));
        Ok(free_space(existing)? / 2 / BLOCK * BLOCK)
    }

    /// Creates `mnt/<name>` capped at `cap_bytes` (rounded down to 4 KiB), its root owned by
    /// `owner` (uid, gid) with mode 0755, and returns its path. Name: `[a-zA-Z0-9_.-]`, not
    /// starting with '.'. Creating a name that exists keeps its content and sets the cap
    /// again (a build cache persists across builds and restarts); making a cap smaller fails
    /// when the content does not fit, or while the directory is in use. An existing directory
    /// whose filesystem is damaged beyond `e2fsck -p` is made anew, empty.
    pub async fn create(
        &self,
        name: &str,
        cap_bytes: u64,
        owner: (u32, u32),
    ) -> anyhow::Result<PathBuf> {
        name::check(name)?;
        let cap = whole_blocks(cap_bytes, MIN_CAP_BYTES, &format!("a disk cap for {name}"))?;
        let point = self.inner.mnt.join(name);
        let image = self.image(name);
        let layout = Layout::Capped { owner };
        if self.mounted(&point, &image).await? {
            self.set_cap(name, &image, &point, true, cap, layout)
                .await?;
        // Server path: an image of the pool.
        } else if image.exists() {
            self.mount_existing(name, &image, &point, cap, layout)
                .await?;
        } else if let Err(error) = self.make(&image, &point, cap).await {
            if let Err(cleanup) = self.remove(name).await {
                tracing::warn!(
                    name,
                    error = format!("{cleanup:#}"),
                    "remove a half-made capped dir"
                );
            }
            return Err(error.context(format!("create the capped dir {name}")));
        }
        let (uid, gid) = owner;
        // The root of the capped dir's own filesystem: a mount point, not a tenant's link.
        rustix::fs::chown(
            &point,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .with_context(|| format!("give {} to {uid}:{gid}", point.display()))?;
        // Server path: the root of a capped dir's own filesystem, a mount point.
        std::fs::set_permissions(&point, std::fs::Permissions::from_mode(CAPPED_MODE))
            .with_context(|| format!("set the mode of {}", point.display()))?;
        Ok(point)
    }

    /// Removes `mnt/<name>` and everything in it (unmounted, lazily while a container still
    /// uses it; then its image unlinked, and whatever an unmounted dir held removed through
    /// `wharf_tenant_fs::remove_tree`, never following a link). Ok when absent.
    pub async fn remove(&self, name: &str) -> anyhow::Result<()> {
        name::check(name)?;
        let point = self.inner.mnt.join(name);
        if devices::unmount(&point)? == Unmounted::Lazily {
            tracing::warn!(
                name,
                "a capped dir was still in use: unmounted lazily, its space returns once the \
                 last process using it ends"
            );
        }
        let image = self.image(name);
        tokio::task::spawn_blocking(move || wharf_tenant_fs::remove_tree(&point))
            .await
            .context("remove a capped dir: task failed")?
            .with_context(|| format!("remove the capped dir {name}"))?;
        // Server path: an image of the pool.
        match std::fs::remove_file(&image) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => {
                Err(error).with_context(|| format!("remove the image {}", image.display()))
            }
        }
    }

    /// Names of the directories in the pool, mounted or not (leftovers at start-up).
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let mut names = BTreeSet::new();
        for (dir, suffix) in [(&self.inner.images, ".img"), (&self.inner.mnt, "")] {
            // Server path: the pool's own dirs.
            let entries = std::fs::read_dir(dir)
                .with_context(|| format!("list the disk pool's {}", dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("list {}", dir.display()))?;
                let Ok(file_name) = entry.file_name().into_string() else {
                    continue;
                };
                if let Some(name) = file_name.strip_suffix(suffix) {
                    if name::check(name).is_ok() {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Unmounts every capped directory and the pool (clean shutdown); lazily what is still in
    /// use. The images stay for the next start.
    pub async fn close(&self) -> anyhow::Result<()> {
        let mut lazily = Vec::new();
        for name in self.names()? {
            if devices::unmount(&self.inner.mnt.join(&name))? == Unmounted::Lazily {
                lazily.push(name);
            }
        }
        if !lazily.is_empty() {
            tracing::warn!(
                names = lazily.join(", "),
                "capped dirs still in use at shutdown were unmounted lazily"
            );
        }
        if devices::unmount(&self.inner.mnt)? == Unmounted::Lazily {
            tracing::warn!(
                dir = %self.inner.dir.display(),
                "the disk pool was still in use at shutdown and was unmounted lazily"
            );
        }
        Ok(())
    }

    /// The dir the pool lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where the capped dir `name` is (made or not).
    pub fn path(&self, name: &str) -> PathBuf {
        self.inner.mnt.join(name)
    }

    fn image(&self, name: &str) -> PathBuf {
        self.inner.images.join(format!("{name}.img"))
    }

    /// Whether `image` is mounted at `point`. Fails when another filesystem is.
    async fn mounted(&self, point: &Path, image: &Path) -> anyhow::Result<bool> {
        let Some(device) = devices::mounted_at(point, &self.inner.mnt)? else {
            return Ok(false);
        };
        let device = devices::loop_device(device);
        if let Some(device) = &device {
            if device.backing_file().as_deref() == Some(image) {
                return Ok(true);
            }
        }
        // The kernel names a backing file by the path it was opened by: after the pool was
        // lazily unmounted and mounted again, that path is no longer the image's. Ask by
        // inode.
        if let Some(device) = device {
            if image::attached(&self.inner.tools, image).await? == Some(device) {
                return Ok(true);
            }
        }
        anyhow::bail!(
            "{} has another filesystem mounted than its image: unmount it",
            point.display()
        )
    }

    /// Makes a new capped dir: its image (a copy of the template of its size), mounted.
    async fn make(&self, image: &Path, point: &Path, cap: u64) -> anyhow::Result<()> {
        let tools = &self.inner.tools;
        let template = self.inner.images.join(format!(".template-v1-{cap}.img"));
        image::make_from_template(tools, &template, image, cap).await?;
        self.mount_point(point).await?;
        let layout = Layout::Capped { owner: (0, 0) };
        let device = image::mount_file(tools, image, point, &self.inner.mnt, layout).await?;
        self.direct_io_later(device, image);
        // ext4's `lost+found` is no business of the tenant's; `e2fsck` makes it again when
        // it needs one.
        // Server path: the fresh filesystem, before any tenant could write to it.
        let _ = std::fs::remove_dir(point.join("lost+found"));
        Ok(())
    }

    /// Mounts the existing, unmounted image of `name`: the loop device it is still attached
    /// to, else after a check (made anew when damaged beyond repair), with its cap set.
    async fn mount_existing(
        &self,
        name: &str,
        image: &Path,
        point: &Path,
        cap: u64,
        layout: Layout,
    ) -> anyhow::Result<()> {
        let tools = &self.inner.tools;
        if let Some(device) = image::attached(tools, image).await? {
            // Still in use by a process of before: the same filesystem, as it is.
            self.mount_point(point).await?;
            image::mount_device(&device, point, layout)?;
            if file_len(image)? != cap {
                tracing::warn!(
                    name,
                    "a capped dir still in use keeps its cap until what uses it is gone"
                );
            }
            return Ok(());
        }
        if let Err(error) = image::check(tools, image, false).await {
            tracing::warn!(
                name,
                error = format!("{error:#}"),
                "a capped dir's filesystem is damaged: making it anew, empty"
            );
            image::make(tools, image, cap, layout).await?;
        }
        self.set_cap(name, image, point, false, cap, layout).await?;
        self.mount_point(point).await?;
        let device = image::mount_file(tools, image, point, &self.inner.mnt, layout).await?;
        self.direct_io_later(device, image);
        Ok(())
    }

    /// Makes the filesystem of `name` `cap` bytes, offline: a mounted one is unmounted,
    /// resized and mounted again (content kept even when shrinking fails); one in use keeps
    /// its cap.
    async fn set_cap(
        &self,
        name: &str,
        image: &Path,
        point: &Path,
        mounted: bool,
        cap: u64,
        layout: Layout,
    ) -> anyhow::Result<()> {
        let tools = &self.inner.tools;
        let current = file_len(image)?;
        if current == cap {
            return Ok(());
        }
        if mounted {
            match rustix::mount::unmount(point, rustix::mount::UnmountFlags::NOFOLLOW) {
                Ok(()) => {}
                Err(rustix::io::Errno::BUSY) => {
                    tracing::warn!(
                        name,
                        cap = current,
                        asked = cap,
                        "a capped dir in use keeps its cap"
                    );
                    return Ok(());
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("unmount {}", point.display()))
                }
            }
        }
        let resized = image::resize_offline(tools, image, current, cap)
            .await
            .with_context(|| {
                format!(
                    "set the disk cap of {name} from {} to {}",
                    describe_bytes(current),
                    describe_bytes(cap)
                )
            });
        if mounted {
            let device = image::mount_file(tools, image, point, &self.inner.mnt, layout).await?;
            self.direct_io_later(device, image);
        }
        resized
    }

    /// Makes `point` an empty directory to mount on; whatever an unmounted one held (nothing,
    /// unless a crash left it) removed without following links.
    async fn mount_point(&self, point: &Path) -> anyhow::Result<()> {
        // Server path: a mount point in the pool.
        match std::fs::DirBuilder::new().mode(0o700).create(point) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let path = point.to_owned();
                tokio::task::spawn_blocking(move || wharf_tenant_fs::remove_tree(&path))
                    .await
                    .context("clear a mount point: task failed")?
                    .with_context(|| format!("clear the mount point {}", point.display()))?;
                create_dir(point, 0o700)
            }
            Err(error) => {
                Err(error).with_context(|| format!("create the mount point {}", point.display()))
            }
        }
    }

    /// Direct I/O for `device`; without it (a host filesystem that refuses `O_DIRECT`) the
    /// loop device still works, through the page cache.
    async fn direct_io(&self, device: &LoopDevice) {
        if self.inner.no_direct_io.load(Ordering::Relaxed) {
            return;
        }
        if let Err(error) = image::direct_io(&self.inner.tools, device).await {
            self.without_direct_io(&error);
        }
    }

    /// Direct I/O for a capped dir's `device` (attached to `image`), switched on in the
    /// background: switching a live loop device waits for its queue to freeze (about 18 ms
    /// here, three times the rest of `create`), which a dyno's start need not wait for. Until
    /// then the device works through the page cache.
    fn direct_io_later(&self, device: LoopDevice, image: &Path) {
        if self.inner.no_direct_io.load(Ordering::Relaxed) {
            return;
        }
        let (pool, image) = (self.clone(), image.to_owned());
        tokio::spawn(async move {
            if let Err(error) = image::direct_io(&pool.inner.tools, &device).await {
                // A directory removed meanwhile (its device gone, or another's now) is no
                // sign of a host without direct I/O.
                if device.backing_file().as_deref() == Some(image.as_path()) {
                    pool.without_direct_io(&error);
                }
            }
        });
    }

    fn without_direct_io(&self, error: &anyhow::Error) {
        if !self.inner.no_direct_io.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = format!("{error:#}"),
                "loop devices of the disk pool run without direct I/O (slower writes)"
            );
        }
    }
}

/// How full a filesystem is, as `df` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Its size (a capped dir's: its cap, less ext4's own metadata).
    pub size: u64,
    /// What an unprivileged writer may still write.
    pub free: u64,
}

impl Usage {
    /// Whether (nearly) nothing more fits: less than 1 MiB or 1% of the size is free.
    pub fn is_full(self) -> bool {
        self.free < (self.size / 100).max(1024 * 1024)
    }
}

/// How full the filesystem holding `path` is (for a capped dir: its own).
pub fn usage(path: &Path) -> anyhow::Result<Usage> {
    let stat = rustix::fs::statvfs(path)
        .with_context(|| format!("read the disk usage of {}", path.display()))?;
    Ok(Usage {
        size: stat.f_blocks.saturating_mul(stat.f_frsize),
        free: stat.f_bavail.saturating_mul(stat.f_frsize),
    })
}

/// Loop devices and ext4, or what to do without them.
fn check_kernel() -> anyhow::Result<()> {
    // Server path: the kernel's device and its list of filesystems.
    if !Path::new("/dev/loop-control").exists() {
        anyhow::bail!(
            "loop devices are unavailable (no /dev/loop-control): the disk pool needs them; \
             load the loop module (modprobe loop) or, in a container, give Wharf the host's \
             /dev/loop-control and /dev/loop* devices"
        );
    }
    // Server path: procfs.
    let filesystems =
        std::fs::read_to_string("/proc/filesystems").context("read /proc/filesystems")?;
    if !filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("ext4"))
    {
        anyhow::bail!(
            "this kernel has no ext4 filesystem: the disk pool needs it; load the ext4 module \
             (modprobe ext4)"
        );
    }
    Ok(())
}

/// Bytes an unprivileged user may still write on the filesystem holding `path`.
fn free_space(path: &Path) -> anyhow::Result<u64> {
    let stat = rustix::fs::statvfs(path)
        .with_context(|| format!("read the free space of {}", path.display()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn check_free_space(dir: &Path, needed: u64) -> anyhow::Result<()> {
    let free = free_space(dir)?;
    if needed > free {
        anyhow::bail!(
            "the disk pool needs {} more but the filesystem holding {} has {} free: choose a \
             smaller pool (WHARF_DISK_POOL_GB) or free space there",
            describe_bytes(needed),
            dir.display(),
            describe_bytes(free)
        );
    }
    Ok(())
}

fn file_len(path: &Path) -> anyhow::Result<u64> {
    // Server path: an image file of the pool.
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .len())
}

fn create_dir(path: &Path, mode: u32) -> anyhow::Result<()> {
    // Server path: the pool's own dirs.
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("create {}", path.display())),
    }
}

/// `bytes` rounded down to whole blocks, refused below `minimum` (`what` names it).
fn whole_blocks(bytes: u64, minimum: u64, what: &str) -> anyhow::Result<u64> {
    let whole = bytes / BLOCK * BLOCK;
    if whole < minimum {
        anyhow::bail!(
            "{what} of {} is too small: give it at least {}",
            describe_bytes(bytes),
            describe_bytes(minimum)
        );
    }
    Ok(whole)
}

/// `512 MiB`, `4 GiB`, `1.5 GiB`, `4096 bytes`.
pub fn describe_bytes(bytes: u64) -> String {
    const GIB: u64 = 1024 * 1024 * 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= GIB {
        let tenths = u128::from(bytes) * 10 / u128::from(GIB);
        if tenths % 10 == 0 {
            format!("{} GiB", tenths / 10)
        } else {
            format!("{}.{} GiB", tenths / 10, tenths % 10)
        }
    } else if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_is_under_one_percent_or_one_mib() {
        let full = |size: u64, free: u64| Usage { size, free }.is_full();
        assert!(full(4 << 30, 40 << 20));
        assert!(!full(4 << 30, 50 << 20));
        assert!(full(16 << 20, 1 << 19));
        assert!(!full(16 << 20, 2 << 20));
    }

    #[test]
    fn sizes_read_naturally() {
        let check = |bytes: u64, expected: &str| assert_eq!(describe_bytes(bytes), expected);
        check(4 << 30, "4 GiB");
        check(3 << 29, "1.5 GiB");
        check(512 << 20, "512 MiB");
        check(4096, "4096 bytes");
    }
}
