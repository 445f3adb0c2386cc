//! What is mounted where and which loop device backs it, read from `stat` and sysfs; and
//! unmounting, lazily when something still uses the filesystem.
//!
//! Server paths only: the pool's mount points and image files, `/dev` and `/sys`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rustix::mount::UnmountFlags;

/// A loop device (`loop3`), attached to an image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoopDevice {
    pub name: String,
}

impl LoopDevice {
    pub fn path(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }

    /// The file the device reads and writes, as the kernel names it.
    pub fn backing_file(&self) -> Option<PathBuf> {
        let sysfs = Path::new("/sys/block")
            .join(&self.name)
            .join("loop/backing_file");
        // Server path: sysfs.
        let text = std::fs::read_to_string(sysfs).ok()?;
        Some(PathBuf::from(text.trim_end_matches('\n')))
    }
}

/// The device number (major, minor) of the filesystem `path` is on.
fn device_of(path: &Path) -> std::io::Result<(u32, u32)> {
    let stat = rustix::fs::lstat(path)?;
    Ok((
        rustix::fs::major(stat.st_dev),
        rustix::fs::minor(stat.st_dev),
    ))
}

/// The device of the filesystem mounted at `point`, a directory in `parent`; `None` when
/// `point` is missing or is a plain directory of `parent`'s filesystem.
pub(crate) fn mounted_at(point: &Path, parent: &Path) -> anyhow::Result<Option<(u32, u32)>> {
    let inside = match device_of(point) {
        Ok(device) => device,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("stat {}", point.display())),
    };
    let outside = device_of(parent).with_context(|| format!("stat {}", parent.display()))?;
    Ok((inside != outside).then_some(inside))
}

/// The loop device with device number `device`, if it is one.
pub(crate) fn loop_device(device: (u32, u32)) -> Option<LoopDevice> {
    let (major, minor) = device;
    // Server path: sysfs.
    let target = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    let name = target.file_name()?.to_str()?.to_owned();
    let device = LoopDevice { name };
    device.backing_file().map(|_| device)
}

/// How an unmount went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmounted {
    /// Gone, with its loop device (attached with autoclear).
    Now,
    /// Detached from the tree; the filesystem and its loop device live on until the last
    /// process using it (a container) is gone.
    Lazily,
    /// Nothing was mounted there.
    NotMounted,
}

/// Unmounts `point`; lazily when something still uses it.
pub(crate) fn unmount(point: &Path) -> anyhow::Result<Unmounted> {
    match rustix::mount::unmount(point, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(Unmounted::Now),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(Unmounted::NotMounted),
        Err(rustix::io::Errno::BUSY) => {
            rustix::mount::unmount(point, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)
                .with_context(|| format!("unmount {} lazily", point.display()))?;
            Ok(Unmounted::Lazily)
        }
        Err(error) => Err(error).with_context(|| format!("unmount {}", point.display())),
    }
}
