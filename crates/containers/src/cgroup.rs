//! The host's cgroup layout (v1, hybrid or v2, read once at start-up) and a container cgroup's
//! counters: memory, CPU time and OOM kills, for runtime metrics and exit reports.
//!
//! The runtime creates and removes the cgroups (cgroupfs driver, path `/wharf/<id>`); this module
//! only finds and reads them. Parsing is pure and tested on sample text for both versions.
//!
//! Server paths only: `/proc` and the cgroup filesystem, which hold no links a tenant made.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::config::cgroups_path;

/// cgroup v1 reports "no memory limit" as a huge page-aligned number; anything at or above
/// this is unlimited.
const V1_UNLIMITED: u64 = 1 << 62;

/// Which cgroup version holds the resource controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Controllers on cgroup v1 hierarchies (perhaps beside a cgroup2 mount: "hybrid").
    V1 { hybrid: bool },
    /// One unified cgroup2 hierarchy.
    V2,
}

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hierarchy {
    mount_point: PathBuf,
    /// v1 controllers of the hierarchy (empty for cgroup2 and named hierarchies).
    controllers: Vec<String>,
    unified: bool,
}

/// The host's cgroup hierarchies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupLayout {
    version: CgroupVersion,
    hierarchies: Vec<Hierarchy>,
}

/// One container cgroup's counters, named after Heroku's runtime metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// All memory charged to the cgroup (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_total_bytes: u64,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub memory_rss_bytes: u64,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub memory_cache_bytes: u64,
    /// Swap in use (v1 `total_swap`, v2 `memory.swap.current`).
    pub memory_swap_bytes: u64,
    /// Pages read in (v1 only: cgroup v2 has no equivalent).
    pub memory_pgpgin: Option<u64>,
    /// Pages written out (v1 only).
    pub memory_pgpgout: Option<u64>,
    /// The memory limit; `None` when unlimited.
    pub memory_quota_bytes: Option<u64>,
    /// CPU time used by all processes, in nanoseconds.
    pub cpu_time_ns: u64,
    /// Processes the kernel's OOM killer killed in the cgroup.
    pub oom_kills: u64,
}

impl CgroupLayout {
    /// Reads the layout from `/proc/self/mounts`.
    pub fn detect() -> anyhow::Result<CgroupLayout> {
        let mounts = fs::read_to_string("/proc/self/mounts").context("read /proc/self/mounts")?;
        Self::parse_mounts(&mounts)
    }

    /// The layout described by a mount table (`/proc/self/mounts` format).
    pub fn parse_mounts(mounts: &str) -> anyhow::Result<CgroupLayout> {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, mount_point, fstype, options, ..] = fields[..] else {
                continue;
            };
            let unified = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => continue,
            };
            let controllers = if unified {
                Vec::new()
            } else {
                options
                    .split(',')
                    .filter(|option| KNOWN_V1_CONTROLLERS.contains(option))
                    .map(str::to_owned)
                    .collect()
            };
            let mount_point = PathBuf::from(unescape_mount_point(mount_point));
            if hierarchies.iter().all(|h| h.mount_point != mount_point) {
                hierarchies.push(Hierarchy {
                    mount_point,
                    controllers,
                    unified,
                });
            }
        }
        let has_v1_memory = hierarchies
            .iter()
            .any(|h| h.controllers.iter().any(|c| c == "memory"));
        let has_unified = hierarchies.iter().any(|h| h.unified);
        let version = match (has_v1_memory, has_unified) {
            (true, hybrid) => CgroupVersion::V1 { hybrid },
            (false, true) => CgroupVersion::V2,
            (false, false) => bail!("no cgroup memory controller is mounted: containers need one"),
        };
        Ok(CgroupLayout {
            version,
            hierarchies,
        })
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// "v1", "hybrid" or "v2", for logs.
    pub fn describe(&self) -> &'static str {
        match self.version {
            CgroupVersion::V1 { hybrid: false } => "v1",
            CgroupVersion::V1 { hybrid: true } => "hybrid",
            CgroupVersion::V2 => "v2",
        }
    }

    /// Every directory a runtime may create for container `id`, one per hierarchy (whether or
    /// not it exists now).
    pub fn container_dirs(&self, id: &str) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| join_cgroup(&h.mount_point, id))
            .collect()
    }

    /// The directory holding the `controller`'s files for container `id`.
    fn controller_dir(&self, controller: &str, id: &str) -> anyhow::Result<PathBuf> {
        let hierarchy = match self.version {
            CgroupVersion::V2 => self.hierarchies.iter().find(|h| h.unified),
            CgroupVersion::V1 { .. } => self
                .hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller)),
        };
        let hierarchy = hierarchy
            .with_context(|| format!("no cgroup hierarchy has the {controller} controller"))?;
        Ok(join_cgroup(&hierarchy.mount_point, id))
    }

    /// How many processes the OOM killer killed in container `id`'s cgroup; `None` when the
    /// cgroup does not exist (any more).
    pub fn read_oom_kills(&self, id: &str) -> anyhow::Result<Option<u64>> {
        let dir = self.controller_dir("memory", id)?;
        let file = match self.version {
            CgroupVersion::V1 { .. } => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        let Some(text) = read_optional(&dir.join(file))? else {
            return Ok(None);
        };
        Ok(Some(keyed(&text).get("oom_kill").copied().unwrap_or(0)))
    }

    /// The counters of container `id`'s cgroup.
    pub fn read_stats(&self, id: &str) -> anyhow::Result<CgroupStats> {
        let memory = self.controller_dir("memory", id)?;
        let read = |dir: &Path, name: &str| -> anyhow::Result<String> {
            let path = dir.join(name);
            fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
        };
        match self.version {
            CgroupVersion::V1 { .. } => {
                let cpuacct = self.controller_dir("cpuacct", id)?;
                stats_v1(&V1Files {
                    usage: &read(&memory, "memory.usage_in_bytes")?,
                    stat: &read(&memory, "memory.stat")?,
                    limit: &read(&memory, "memory.limit_in_bytes")?,
                    oom_control: &read(&memory, "memory.oom_control")?,
                    cpuacct_usage: &read(&cpuacct, "cpuacct.usage")?,
                })
            }
            CgroupVersion::V2 => stats_v2(&V2Files {
                current: &read(&memory, "memory.current")?,
                stat: &read(&memory, "memory.stat")?,
                swap_current: read_optional(&memory.join("memory.swap.current"))?.as_deref(),
                max: &read(&memory, "memory.max")?,
                events: &read(&memory, "memory.events")?,
                cpu_stat: &read(&memory, "cpu.stat")?,
            }),
        }
    }
}

/// Controllers a cgroup v1 mount's options may name (other options are mount flags).
const KNOWN_V1_CONTROLLERS: [&str; 14] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

fn join_cgroup(mount_point: &Path, id: &str) -> PathBuf {
    mount_point.join(cgroups_path(id).trim_start_matches('/'))
}

/// `/proc/self/mounts` escapes spaces and a few other bytes as octal (`\040`).
fn unescape_mount_point(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find('\\') {
        out.push_str(&rest[..index]);
        let code = rest.get(index + 1..index + 4);
        match code.and_then(|code| u8::from_str_radix(code, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[index + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[index + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        // A removed cgroup's files vanish; one being removed answers ENODEV.
        Err(error) if error.kind() == ErrorKind::NotFound || error.raw_os_error() == Some(19) => {
            Ok(None)
        }
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

/// "key value" lines (memory.stat, memory.events, memory.oom_control, cpu.stat).
fn keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

fn number(text: &str, what: &str) -> anyhow::Result<u64> {
    text.trim()
        .parse()
        .with_context(|| format!("parse {what}: {:?}", text.trim()))
}

/// The cgroup v1 files [`stats_v1`] reads.
pub struct V1Files<'a> {
    pub usage: &'a str,
    pub stat: &'a str,
    pub limit: &'a str,
    pub oom_control: &'a str,
    pub cpuacct_usage: &'a str,
}

/// Counters from cgroup v1 files.
pub fn stats_v1(files: &V1Files<'_>) -> anyhow::Result<CgroupStats> {
    let stat = keyed(files.stat);
    let get = |key: &str| stat.get(key).copied().unwrap_or(0);
    let limit = number(files.limit, "memory.limit_in_bytes")?;
    Ok(CgroupStats {
        memory_total_bytes: number(files.usage, "memory.usage_in_bytes")?,
        memory_rss_bytes: get("total_rss"),
        memory_cache_bytes: get("total_cache"),
        memory_swap_bytes: get("total_swap"),
        memory_pgpgin: Some(get("total_pgpgin")),
        memory_pgpgout: Some(get("total_pgpgout")),
        memory_quota_bytes: (limit < V1_UNLIMITED).then_some(limit),
        cpu_time_ns: number(files.cpuacct_usage, "cpuacct.usage")?,
        oom_kills: keyed(files.oom_control)
            .get("oom_kill")
            .copied()
            .unwrap_or(0),
    })
}

/// The cgroup v2 files [`stats_v2`] reads; `swap_current` is absent without swap accounting.
pub struct V2Files<'a> {
    pub current: &'a str,
    pub stat: &'a str,
    pub swap_current: Option<&'a str>,
    pub max: &'a str,
    pub events: &'a str,
    pub cpu_stat: &'a str,
}

/// Counters from cgroup v2 files.
pub fn stats_v2(files: &V2Files<'_>) -> anyhow::Result<CgroupStats> {
    let stat = keyed(files.stat);
    let get = |key: &str| stat.get(key).copied().unwrap_or(0);
    let quota = match files.max.trim() {
        "max" => None,
        limit => Some(number(limit, "memory.max")?),
    };
    let swap = match files.swap_current {
        Some(text) => number(text, "memory.swap.current")?,
        None => 0,
    };
    let cpu_usec = keyed(files.cpu_stat)
        .get("usage_usec")
        .copied()
        .context("cpu.stat has no usage_usec")?;
    Ok(CgroupStats {
        memory_total_bytes: number(files.current, "memory.current")?,
        memory_rss_bytes: get("anon"),
        memory_cache_bytes: get("file"),
        memory_swap_bytes: swap,
        memory_pgpgin: None,
        memory_pgpgout: None,
        memory_quota_bytes: quota,
        cpu_time_ns: cpu_usec.saturating_mul(1000),
        oom_kills: keyed(files.events).get("oom_kill").copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HYBRID_MOUNTS: &str = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    const V2_MOUNTS: &str = "\
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
";

    const V1_COMBINED_MOUNTS: &str = "\
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
cgroup /sys/fs/cgroup/my\\040cgroups cgroup rw,pids 0 0
";

    #[test]
    fn detects_versions() {
        let hybrid = CgroupLayout::parse_mounts(HYBRID_MOUNTS).unwrap();
        assert_eq!(hybrid.version(), CgroupVersion::V1 { hybrid: true });
        assert_eq!(hybrid.describe(), "hybrid");
        assert_eq!(
            hybrid.container_dirs("web.1"),
            ["cpu", "cpuacct", "memory", "pids", "systemd", "unified"]
                .map(|h| PathBuf::from(format!("/sys/fs/cgroup/{h}/wharf/web.1")))
        );
        assert_eq!(
            hybrid.controller_dir("memory", "web.1").unwrap(),
            Path::new("/sys/fs/cgroup/memory/wharf/web.1")
        );

        let v2 = CgroupLayout::parse_mounts(V2_MOUNTS).unwrap();
        assert_eq!(v2.version(), CgroupVersion::V2);
        assert_eq!(
            v2.container_dirs("x"),
            [PathBuf::from("/sys/fs/cgroup/wharf/x")]
        );
        assert_eq!(
            v2.controller_dir("cpuacct", "x").unwrap(),
            Path::new("/sys/fs/cgroup/wharf/x")
        );

        let v1 = CgroupLayout::parse_mounts(V1_COMBINED_MOUNTS).unwrap();
        assert_eq!(v1.version(), CgroupVersion::V1 { hybrid: false });
        assert_eq!(
            v1.controller_dir("cpuacct", "x").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/wharf/x")
        );
        assert_eq!(
            v1.controller_dir("pids", "x").unwrap(),
            Path::new("/sys/fs/cgroup/my cgroups/wharf/x")
        );

        assert!(CgroupLayout::parse_mounts("proc /proc proc rw 0 0\n").is_err());
    }

    #[test]
    fn parses_v1_counters() {
        let stats = stats_v1(&V1Files {
            usage: "268435456\n",
            stat: "cache 4096\nrss 8192\ntotal_cache 1048576\ntotal_rss 2097152\n\
                   total_swap 0\ntotal_pgpgin 1200\ntotal_pgpgout 300\n",
            limit: "268435456\n",
            oom_control: "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            cpuacct_usage: "123456789\n",
        })
        .unwrap();
        assert_eq!(
            stats,
            CgroupStats {
                memory_total_bytes: 268_435_456,
                memory_rss_bytes: 2_097_152,
                memory_cache_bytes: 1_048_576,
                memory_swap_bytes: 0,
                memory_pgpgin: Some(1200),
                memory_pgpgout: Some(300),
                memory_quota_bytes: Some(268_435_456),
                cpu_time_ns: 123_456_789,
                oom_kills: 1,
            }
        );
        let unlimited = stats_v1(&V1Files {
            usage: "0",
            stat: "",
            limit: "9223372036854771712\n",
            oom_control: "oom_kill_disable 0\nunder_oom 0\n",
            cpuacct_usage: "0",
        })
        .unwrap();
        assert_eq!(unlimited.memory_quota_bytes, None);
        assert_eq!(unlimited.oom_kills, 0);
        assert!(stats_v1(&V1Files {
            usage: "lots",
            stat: "",
            limit: "0",
            oom_control: "",
            cpuacct_usage: "0",
        })
        .is_err());
    }

    #[test]
    fn parses_v2_counters() {
        let stats = stats_v2(&V2Files {
            current: "52428800\n",
            stat: "anon 41943040\nfile 10485760\nkernel 1000\npgfault 10\n",
            swap_current: Some("4096\n"),
            max: "268435456\n",
            events: "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
            cpu_stat: "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        })
        .unwrap();
        assert_eq!(
            stats,
            CgroupStats {
                memory_total_bytes: 52_428_800,
                memory_rss_bytes: 41_943_040,
                memory_cache_bytes: 10_485_760,
                memory_swap_bytes: 4096,
                memory_pgpgin: None,
                memory_pgpgout: None,
                memory_quota_bytes: Some(268_435_456),
                cpu_time_ns: 2_500_000,
                oom_kills: 2,
            }
        );
        let unlimited = stats_v2(&V2Files {
            current: "0",
            stat: "",
            swap_current: None,
            max: "max\n",
            events: "oom_kill 0\n",
            cpu_stat: "usage_usec 0\n",
        })
        .unwrap();
        assert_eq!(unlimited.memory_quota_bytes, None);
        assert_eq!(unlimited.memory_swap_bytes, 0);
    }

    #[test]
    fn reads_missing_cgroups_as_absent() {
        let layout = CgroupLayout::parse_mounts(&format!(
            "cgroup2 {} cgroup2 rw 0 0\n",
            tempfile::tempdir().unwrap().path().display()
        ))
        .unwrap();
        assert_eq!(layout.read_oom_kills("gone").unwrap(), None);
    }
}
