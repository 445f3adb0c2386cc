//! The container init's cgroups, remembered at start so that a shim whose runtime state is
//! gone (the data dir deleted under it) can still remove them once the init is reaped.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::process::Pid;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup directories of `init` that are safe to remove later: never one holding the shim
/// itself or one of its ancestors (as when the runtime put no cgroup around the container).
pub(crate) fn of_init(init: Pid) -> Vec<PathBuf> {
    let read = |pid: &str| fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let unified = unified_root();
    let own = directories(&read("self"), &unified);
    directories(&read(&init.as_raw_nonzero().to_string()), &unified)
        .into_iter()
        .filter(|dir| !own.iter().any(|own| own.starts_with(dir)))
        .collect()
}

/// Removes each directory and the (empty) cgroups under it, deepest first. A cgroup that still
/// has processes cannot be removed; that failure is ignored.
pub(crate) fn remove(dirs: &[PathBuf]) {
    for dir in dirs {
        remove_tree(dir);
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Where the cgroup v2 hierarchy is mounted: the root itself, or `unified` on a hybrid host.
fn unified_root() -> PathBuf {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        root.to_path_buf()
    } else {
        root.join("unified")
    }
}

/// The directories named by a `/proc/PID/cgroup` text (`hierarchy:controllers:path` lines),
/// except the roots.
fn directories(text: &str, unified: &Path) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_hierarchy, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let relative = path.trim_start_matches('/');
            if relative.is_empty() || relative.split('/').any(|part| part == "..") {
                return None;
            }
            let base = if controllers.is_empty() {
                unified.to_path_buf()
            } else {
                Path::new(CGROUP_ROOT).join(controllers.trim_start_matches("name="))
            };
            Some(base.join(relative))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v2_and_v1_lines() {
        let text = "0::/wharf/web.1\n\
                    4:cpu,cpuacct:/wharf/web.1\n\
                    1:name=systemd:/\n\
                    2:memory:/../x\n";
        let dirs = directories(text, Path::new("/sys/fs/cgroup"));
        assert_eq!(
            dirs,
            [
                PathBuf::from("/sys/fs/cgroup/wharf/web.1"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/wharf/web.1"),
            ]
        );
    }
}
