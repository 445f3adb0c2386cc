//! The disk pool on real loop devices and ext4, as root: an unprivileged writer past its cap
//! gets ENOSPC and the host loses about the cap; removing frees the space; a pool dropped
//! without closing (as after SIGKILL) is used again; `remove` never follows a planted link;
//! caps are independent; recreating keeps content and sets the cap again; an overlay like a
//! dyno's `/app` counts against its cap.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use support::{
    allocated, as_tenant, filesystem_size, fill, loops_beneath, mounts_beneath, wait_for, Scratch,
    MIB, TENANT,
};
use wharf_disk::DiskPool;

const POOL: u64 = 256 * MIB;

// Two workers: direct I/O is switched on by a task of the pool's while the test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_past_its_cap_gets_enospc_and_the_host_loses_about_the_cap() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    let image = scratch.path().join("disk/pool.img");
    let before = allocated(&image);
    let cap = 32 * MIB;
    let dir = pool.create("dyno-web-1", cap, TENANT).await.unwrap();
    assert_eq!(dir, scratch.path().join("disk/mnt/dyno-web-1"));
    let metadata = std::fs::metadata(&dir).unwrap();
    assert_eq!((metadata.uid(), metadata.gid()), TENANT);
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o755);
    // `df` inside shows the cap (less ext4's own metadata); the dir starts empty.
    let size = filesystem_size(&dir);
    assert!(size <= cap && size > cap * 9 / 10, "{size}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // Direct I/O comes on in the background, for the pool and the dir alike.
    for point in [scratch.path().join("disk/mnt"), dir.clone()] {
        let device = mount_source(&point);
        let name = device.strip_prefix("/dev/").unwrap().to_owned();
        wait_for("direct I/O on the loop device", || {
            std::fs::read_to_string(format!("/sys/block/{name}/loop/dio"))
                .is_ok_and(|dio| dio.trim() == "1")
        });
    }

    let (ok, said) = fill(&dir, "big", 64);
    assert!(!ok, "writing 64 MiB into a 32 MiB cap succeeded: {said}");
    assert!(said.contains("No space left on device"), "{said}");
    rustix::fs::sync();
    let written = std::fs::metadata(dir.join("big")).unwrap().len();
    assert!(written > cap * 8 / 10 && written <= cap, "{written}");
    let lost = allocated(&image) - before;
    assert!(
        lost <= cap + 4 * MIB && lost >= cap * 8 / 10,
        "the host lost {lost} bytes for a {cap} byte cap"
    );
    // The platform (root, outside the cap) still writes to the host.
    std::fs::write(scratch.path().join("server-state"), "fine").unwrap();

    // Deleting the file hands its blocks back down to the host.
    let output = as_tenant(&dir, "rm big");
    assert!(output.status.success(), "{output:?}");
    wait_for("the freed blocks to leave the pool image", || {
        allocated(&image) < before + 4 * MIB
    });
    pool.close().await.unwrap();
}

#[tokio::test]
async fn removing_frees_the_space_and_the_name() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    let image = scratch.path().join("disk/pool.img");
    let before = allocated(&image);
    let dir = pool.create("dyno-a", 32 * MIB, TENANT).await.unwrap();
    let (ok, said) = fill(&dir, "data", 16);
    assert!(ok, "{said}");
    assert_eq!(pool.names().unwrap(), ["dyno-a"]);
    // The dir's writes reach the host's disk when the host syncs (the pool passes no flush
    // down), or as the kernel writes back.
    rustix::fs::sync();
    assert!(allocated(&image) >= before + 16 * MIB);

    pool.remove("dyno-a").await.unwrap();
    assert!(!dir.exists());
    assert!(!scratch.path().join("disk/mnt/.images/dyno-a.img").exists());
    assert_eq!(pool.names().unwrap(), Vec::<String>::new());
    wait_for("the removed dir's blocks to leave the pool image", || {
        allocated(&image) < before + 4 * MIB
    });
    // Removing again, or a name never made, is fine; the name can be made again, empty.
    pool.remove("dyno-a").await.unwrap();
    pool.remove("never-made").await.unwrap();
    let again = pool.create("dyno-a", 16 * MIB, TENANT).await.unwrap();
    assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn a_pool_dropped_without_closing_is_used_again_and_close_leaves_no_loop_device() {
    let scratch = Scratch::new();
    let root = scratch.path();
    assert_eq!(loops_beneath(&root), Vec::<String>::new());
    let pool = scratch.pool("disk", POOL).await;
    let cache = pool.create("cache-app", 16 * MIB, TENANT).await.unwrap();
    let (ok, said) = fill(&cache, "kept", 2);
    assert!(ok, "{said}");
    let loops = loops_beneath(&root);
    assert_eq!(loops.len(), 2, "the pool's and the cache's: {loops:?}");
    let mounts = mounts_beneath(&root);
    // As after SIGKILL: nothing unmounted.
    drop(pool);

    let pool = scratch.pool("disk", POOL).await;
    assert_eq!(loops_beneath(&root), loops, "no second loop device");
    assert_eq!(mounts_beneath(&root), mounts, "no second mount");
    assert_eq!(pool.names().unwrap(), ["cache-app"]);
    let again = pool.create("cache-app", 16 * MIB, TENANT).await.unwrap();
    assert_eq!(again, cache);
    assert_eq!(
        std::fs::metadata(cache.join("kept")).unwrap().len(),
        2 * MIB
    );
    assert_eq!(loops_beneath(&root), loops);

    // A clean shutdown unmounts everything; the next start mounts the same data again.
    pool.close().await.unwrap();
    assert_eq!(mounts_beneath(&root), Vec::<std::path::PathBuf>::new());
    assert_eq!(loops_beneath(&root), Vec::<String>::new());
    let pool = scratch.pool("disk", POOL).await;
    assert_eq!(pool.names().unwrap(), ["cache-app"]);
    let cache = pool.create("cache-app", 16 * MIB, TENANT).await.unwrap();
    assert_eq!(
        std::fs::metadata(cache.join("kept")).unwrap().len(),
        2 * MIB
    );
    pool.remove("cache-app").await.unwrap();
    pool.close().await.unwrap();
    assert_eq!(loops_beneath(&root), Vec::<String>::new());
}

#[tokio::test]
async fn remove_never_follows_a_planted_link() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    let host = scratch.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("admin-key"), "secret").unwrap();

    let dir = pool.create("dyno-evil", 16 * MIB, TENANT).await.unwrap();
    let output = as_tenant(
        &dir,
        &format!(
            "ln -s {host}/admin-key key && ln -s {host} tree && mkdir -p deep/er && \
             ln -s {host} deep/er/up",
            host = host.display()
        ),
    );
    assert!(output.status.success(), "{output:?}");
    pool.remove("dyno-evil").await.unwrap();
    assert!(!dir.exists());
    assert_eq!(
        std::fs::read_to_string(host.join("admin-key")).unwrap(),
        "secret"
    );

    // A mount point left unmounted with content in it (as a crash might leave one) is
    // cleared through tenant-fs too, links removed, never followed.
    let dir = pool.create("dyno-left", 16 * MIB, TENANT).await.unwrap();
    rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::empty()).unwrap();
    std::os::unix::fs::symlink(&host, dir.join("tree")).unwrap();
    std::os::unix::fs::symlink(host.join("admin-key"), dir.join("key")).unwrap();
    pool.remove("dyno-left").await.unwrap();
    assert!(!dir.exists());
    assert_eq!(
        std::fs::read_to_string(host.join("admin-key")).unwrap(),
        "secret"
    );
    pool.close().await.unwrap();
}

#[tokio::test]
async fn two_dirs_caps_are_independent() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    let small = pool.create("dyno-small", 16 * MIB, TENANT).await.unwrap();
    let large = pool.create("dyno-large", 48 * MIB, TENANT).await.unwrap();
    assert!(filesystem_size(&small) <= 16 * MIB);
    assert!(filesystem_size(&large) > 40 * MIB);

    let (ok, said) = fill(&small, "full", 32);
    assert!(!ok && said.contains("No space left on device"), "{said}");
    // The full one takes nothing from the other.
    let (ok, said) = fill(&large, "room", 40);
    assert!(ok, "{said}");
    let (ok, said) = fill(&large, "more", 16);
    assert!(!ok && said.contains("No space left on device"), "{said}");
    assert_eq!(pool.names().unwrap(), ["dyno-large", "dyno-small"]);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn creating_again_keeps_the_content_and_sets_the_cap_again() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    let dir = pool.create("cache-app", 16 * MIB, TENANT).await.unwrap();
    let (ok, said) = fill(&dir, "kept", 10);
    assert!(ok, "{said}");

    // Growing a mounted dir happens in place.
    let grown = pool.create("cache-app", 32 * MIB, TENANT).await.unwrap();
    assert_eq!(grown, dir);
    assert!(
        filesystem_size(&dir) > 28 * MIB,
        "{}",
        filesystem_size(&dir)
    );
    let (ok, said) = fill(&dir, "more", 16);
    assert!(ok, "the grown cap has room: {said}");
    std::fs::remove_file(dir.join("more")).unwrap();

    // Shrinking keeps what fits, and refuses (keeping everything) what does not.
    pool.create("cache-app", 12 * MIB, TENANT).await.unwrap();
    let size = filesystem_size(&dir);
    assert!(size <= 12 * MIB && size > 10 * MIB, "{size}");
    assert_eq!(std::fs::metadata(dir.join("kept")).unwrap().len(), 10 * MIB);
    let error = pool.create("cache-app", 8 * MIB, TENANT).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("cache-app") && message.contains("8 MiB"),
        "{message}"
    );
    let dir = pool.create("cache-app", 12 * MIB, TENANT).await.unwrap();
    assert_eq!(std::fs::metadata(dir.join("kept")).unwrap().len(), 10 * MIB);

    // Another owner takes the root over (not what is inside).
    let dir = pool.create("cache-app", 12 * MIB, (0, 0)).await.unwrap();
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), 0);
    assert_eq!(std::fs::metadata(dir.join("kept")).unwrap().uid(), TENANT.0);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn an_overlay_like_a_dynos_app_counts_against_its_cap() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    let lower = scratch.path().join("slug");
    std::fs::create_dir(&lower).unwrap();
    std::fs::write(lower.join("app.py"), "print('hi')").unwrap();
    std::fs::write(lower.join("removed-by-the-dyno"), "x").unwrap();
    let disk = pool.create("dyno-overlay", 24 * MIB, TENANT).await.unwrap();
    for dir in ["upper", "work"] {
        let output = as_tenant(&disk, &format!("mkdir {dir}"));
        assert!(output.status.success(), "{output:?}");
    }
    let merged = scratch.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        disk.join("upper").display(),
        disk.join("work").display()
    );
    let options = std::ffi::CString::new(options).unwrap();
    rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::empty(),
        options.as_c_str(),
    )
    .unwrap();
    // A whiteout (a device node on a nodev filesystem) and writes through the overlay.
    let output = as_tenant(&merged, "rm removed-by-the-dyno && cat app.py");
    assert!(output.status.success(), "{output:?}");
    let (ok, said) = fill(&merged, "log", 48);
    assert!(!ok && said.contains("No space left on device"), "{said}");
    assert!(!merged.join("removed-by-the-dyno").exists());
    assert!(lower.join("removed-by-the-dyno").exists());
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    pool.remove("dyno-overlay").await.unwrap();
    pool.close().await.unwrap();
}

#[tokio::test]
async fn bad_names_caps_and_sizes_are_refused_with_what_to_do() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    for name in ["../escape", ".images", "", "a/b"] {
        let error = pool.create(name, 16 * MIB, TENANT).await.unwrap_err();
        assert!(error.to_string().contains("letters"), "{error:#}");
        assert!(pool.remove(name).await.is_err());
    }
    let error = pool.create("tiny", MIB, TENANT).await.unwrap_err();
    assert!(error.to_string().contains("at least 8 MiB"), "{error:#}");
    assert_eq!(pool.names().unwrap(), Vec::<String>::new());
    pool.close().await.unwrap();

    let error = DiskPool::open(&scratch.path().join("small"), MIB)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("at least 64 MiB"), "{error:#}");
    let error = DiskPool::open(&scratch.path().join("huge"), u64::MAX / 2)
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("free") && message.contains("WHARF_DISK_POOL_GB"),
        "{message}"
    );
    assert!(!scratch.path().join("huge/pool.img").exists());
}

#[tokio::test]
async fn the_default_size_is_half_the_free_space_or_the_pools_own() {
    let scratch = Scratch::new();
    let dir = scratch.path().join("not/yet/made");
    let default = DiskPool::default_size(&dir).unwrap();
    let stat = rustix::fs::statvfs(scratch.path()).unwrap();
    let free = stat.f_bavail * stat.f_frsize;
    // Others write to this disk meanwhile: about half.
    assert!(
        default > free * 4 / 10 && default < free * 6 / 10,
        "{default} of {free}"
    );
    let pool = scratch.pool("disk", POOL).await;
    assert_eq!(
        DiskPool::default_size(&scratch.path().join("disk")).unwrap(),
        POOL
    );
    pool.close().await.unwrap();
    assert!(Path::new(&scratch.path().join("disk/pool.img")).exists());
}

#[tokio::test]
async fn a_dir_in_use_at_shutdown_is_unmounted_lazily_and_found_again_as_it_is() {
    let scratch = Scratch::new();
    let root = scratch.path();
    let pool = scratch.pool("disk", POOL).await;
    let dir = pool.create("dyno-busy", 16 * MIB, TENANT).await.unwrap();
    // A process inside (as a container would be) keeps the filesystem in use.
    let mut inside = KillOnDrop(
        std::process::Command::new("setpriv")
            .args(["--reuid=200000", "--regid=200000", "--clear-groups", "--"])
            .args(["sh", "-c", "echo before > note && exec sleep 600"])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the process inside to write", || dir.join("note").exists());
    let pool_device = mount_source(&root.join("disk/mnt"));
    let dir_device = mount_source(&dir);

    pool.close().await.unwrap();
    assert_eq!(mounts_beneath(&root), Vec::<std::path::PathBuf>::new());
    // Still in use: the devices live on.
    assert!(backing_file(&pool_device).is_some());
    assert!(backing_file(&dir_device).is_some());

    // The next start mounts those same filesystems, never a second device over one file.
    let pool = scratch.pool("disk", POOL).await;
    assert_eq!(mount_source(&root.join("disk/mnt")), pool_device);
    let again = pool.create("dyno-busy", 16 * MIB, TENANT).await.unwrap();
    assert_eq!(mount_source(&again), dir_device);
    assert_eq!(
        std::fs::read_to_string(again.join("note")).unwrap(),
        "before\n"
    );
    // Mounted as it was: creating it again finds it mounted.
    pool.create("dyno-busy", 16 * MIB, TENANT).await.unwrap();
    assert_eq!(mount_source(&again), dir_device);

    inside.0.kill().unwrap();
    inside.0.wait().unwrap();
    pool.remove("dyno-busy").await.unwrap();
    pool.close().await.unwrap();
    // Loop devices are detached as their last user goes; another test may take one at once.
    wait_for("the loop devices to be let go", || {
        !backing_file(&pool_device).is_some_and(|file| file.contains(root.to_str().unwrap()))
            && !backing_file(&dir_device).is_some_and(|file| file.contains("dyno-busy.img"))
    });
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The device mounted at `point` (`/dev/loop3`), from `/proc/self/mountinfo`.
fn mount_source(point: &Path) -> String {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo
        .lines()
        .find(|line| line.split(' ').nth(4) == point.to_str())
        .unwrap_or_else(|| panic!("nothing is mounted at {}", point.display()));
    let (_, after) = line.split_once(" - ").unwrap();
    after.split(' ').nth(1).unwrap().to_owned()
}

/// What a loop device (`/dev/loop3`) is attached to, if anything.
fn backing_file(device: &str) -> Option<String> {
    let name = device.strip_prefix("/dev/").unwrap();
    std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()
}

#[tokio::test]
async fn a_pool_opened_with_a_larger_size_grows_and_keeps_its_dirs() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", 128 * MIB).await;
    let dir = pool.create("cache-app", 16 * MIB, TENANT).await.unwrap();
    std::fs::write(dir.join("kept"), "cached").unwrap();
    pool.close().await.unwrap();

    let pool = scratch.pool("disk", POOL).await;
    assert_eq!(
        std::fs::metadata(scratch.path().join("disk/pool.img"))
            .unwrap()
            .len(),
        POOL
    );
    let pool_size = filesystem_size(&scratch.path().join("disk/mnt"));
    assert!(pool_size > 200 * MIB, "{pool_size}");
    let dir = pool.create("cache-app", 16 * MIB, TENANT).await.unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("kept")).unwrap(), "cached");
    pool.close().await.unwrap();

    // A smaller setting keeps the pool's size.
    let pool = scratch.pool("disk", 128 * MIB).await;
    assert_eq!(
        std::fs::metadata(scratch.path().join("disk/pool.img"))
            .unwrap()
            .len(),
        POOL
    );
    pool.close().await.unwrap();
}

#[tokio::test]
async fn a_full_pool_fails_writes_but_never_takes_more_of_the_host() {
    let scratch = Scratch::new();
    let size = 64 * MIB;
    let pool = scratch.pool("disk", size).await;
    let image = scratch.path().join("disk/pool.img");
    // Overcommitted: two caps of 48 MiB in a pool of 64.
    let first = pool.create("dyno-one", 48 * MIB, TENANT).await.unwrap();
    let second = pool.create("dyno-two", 48 * MIB, TENANT).await.unwrap();
    let (ok, said) = fill(&first, "data", 40);
    assert!(ok, "{said}");
    let (ok, said) = fill(&second, "data", 40);
    assert!(!ok, "80 MiB fit in a 64 MiB pool: {said}");
    rustix::fs::sync();
    assert!(allocated(&image) <= size, "{}", allocated(&image));

    // The pool recovers once the space is freed.
    pool.remove("dyno-two").await.unwrap();
    pool.remove("dyno-one").await.unwrap();
    let dir = pool.create("dyno-three", 32 * MIB, TENANT).await.unwrap();
    let (ok, said) = fill(&dir, "data", 24);
    assert!(ok, "{said}");
    pool.close().await.unwrap();
}

#[tokio::test]
async fn usage_shows_a_full_dir() {
    let scratch = Scratch::new();
    let pool = scratch.pool("disk", POOL).await;
    let dir = pool.create("build-x", 16 * MIB, TENANT).await.unwrap();
    assert_eq!(pool.path("build-x"), dir);
    let usage = wharf_disk::usage(&dir).unwrap();
    assert!(!usage.is_full(), "{usage:?}");
    let (ok, said) = fill(&dir, "all", 32);
    assert!(!ok, "{said}");
    let usage = wharf_disk::usage(&dir).unwrap();
    assert!(usage.is_full() && usage.size <= 16 * MIB, "{usage:?}");
    pool.close().await.unwrap();
}
