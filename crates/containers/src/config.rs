//! The OCI `config.json` for a [`ContainerSpec`], built with `oci-spec`: a pure function, so
//! every isolation rule (namespaces, no capabilities, read-only root, mounts, limits, seccomp)
//! is checked by unit tests without starting anything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

use crate::seccomp;
use crate::spec::{ContainerSpec, Network};
use crate::stack::hosts_file;

/// PID 1 of every container: Debian's tini, from the stack's `/usr` (on `debian-12` the host's,
/// bound read-only; built stacks install it, see `STACK_PACKAGES`). `-g`
/// sends the signals it gets to the whole process group of the command.
pub const INIT: [&str; 3] = ["/usr/bin/tini", "-g", "--"];

/// `PATH` when the caller gives none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// Open files per process (soft and hard).
pub const NOFILE_LIMIT: u64 = 10_000;

/// Size of the `/dev` and `/dev/shm` tmpfs mounts.
const DEV_TMPFS_SIZE: &str = "size=65536k";

/// The cgroup parent of every Wharf container.
pub const CGROUP_PARENT: &str = "wharf";

/// Paths hidden from `/proc` and `/sys` (Docker's defaults).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in `/proc` (Docker's defaults).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Character devices the container may use (the OCI default devices plus the pty ones):
/// (major, minor or all).
const ALLOWED_DEVICES: [(i64, Option<i64>); 9] = [
    (1, Some(3)), // null
    (1, Some(5)), // zero
    (1, Some(7)), // full
    (1, Some(8)), // random
    (1, Some(9)), // urandom
    (5, Some(0)), // tty
    (5, Some(1)), // console
    (5, Some(2)), // ptmx
    (136, None),  // pts/*
];

/// Files the runtime driver writes into the bundle next to `config.json`, bound read-only
/// onto the stack's files of the same name: (file name, content).
pub fn bundle_files(spec: &ContainerSpec) -> Vec<(&'static str, String)> {
    let resolv_conf = match &spec.network {
        Network::Empty => String::new(),
        Network::Joined { nameserver, .. } => format!("nameserver {nameserver}\n"),
    };
    vec![
        ("hostname", format!("{}\n", spec.hostname)),
        ("hosts", hosts_file(&spec.hostname)),
        ("resolv.conf", resolv_conf),
    ]
}

/// The cgroup path of a container, relative to each hierarchy's root.
pub fn cgroups_path(id: &str) -> String {
    format!("/{CGROUP_PARENT}/{id}")
}

/// The OCI runtime configuration for `spec`, whose bundle is `bundle_dir`.
pub fn oci_config(spec: &ContainerSpec, bundle_dir: &Path) -> anyhow::Result<Spec> {
    spec.validate()?;
    let mut args: Vec<String> = INIT.map(String::from).to_vec();
    args.extend(spec.args.iter().cloned());

    let no_capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(HashSet::new())
        .effective(HashSet::new())
        .inheritable(HashSet::new())
        .permitted(HashSet::new())
        .ambient(HashSet::new())
        .build()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(spec.user.0)
                .gid(spec.user.1)
                .additional_gids(Vec::<u32>::new())
                .build()?,
        )
        .args(args)
        .env(environment(spec))
        .cwd(PathBuf::from(&spec.cwd))
        .capabilities(no_capabilities)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(NOFILE_LIMIT)
            .soft(NOFILE_LIMIT)
            .build()?])
        .no_new_privileges(true)
        .build()?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces(&spec.network)?)
        .cgroups_path(PathBuf::from(cgroups_path(&spec.id)))
        .resources(resources(spec)?)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .seccomp(seccomp::default_profile()?)
        .build()?;

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(spec.stack.rootfs().to_path_buf())
                .readonly(spec.readonly_rootfs)
                .build()?,
        )
        .hostname(spec.hostname.clone())
        .mounts(mounts(spec, bundle_dir)?)
        .process(process)
        .linux(linux)
        .build()?)
}

fn environment(spec: &ContainerSpec) -> Vec<String> {
    let mut env: Vec<String> = spec
        .env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if !spec.env.iter().any(|(key, _)| key == "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// New pid, mount, UTS, IPC, cgroup and network namespaces; the network one is the caller's
/// when `network` names it. The cgroup namespace roots the container's view of cgroups at its
/// own cgroup, so that `/sys/fs/cgroup` shows its limits and nothing of the host's.
fn namespaces(network: &Network) -> anyhow::Result<Vec<LinuxNamespace>> {
    let mut types = vec![
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ];
    types.sort_by_key(|typ| typ.to_string());
    let mut namespaces = types
        .into_iter()
        .map(|typ| Ok(LinuxNamespaceBuilder::default().typ(typ).build()?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut net = LinuxNamespaceBuilder::default();
    net = net.typ(LinuxNamespaceType::Network);
    if let Network::Joined { path, .. } = network {
        net = net.path(path.clone());
    }
    namespaces.push(net.build()?);
    Ok(namespaces)
}

fn resources(spec: &ContainerSpec) -> anyhow::Result<oci_spec::runtime::LinuxResources> {
    let limits = spec.limits;
    let mut devices: Vec<LinuxDeviceCgroup> = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?];
    for (major, minor) in ALLOWED_DEVICES {
        let mut device = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(major)
            .access("rwm");
        if let Some(minor) = minor {
            device = device.minor(minor);
        }
        devices.push(device.build()?);
    }
    let mut resources = LinuxResourcesBuilder::default().devices(devices);
    if limits.memory_bytes > 0 {
        let bytes = i64::try_from(limits.memory_bytes)?;
        // `swap` is memory plus swap: equal to the limit means no swap at all.
        let mut memory = LinuxMemoryBuilder::default().limit(bytes).swap(bytes);
        if limits.memory_quota_bytes > 0 {
            memory = memory.reservation(i64::try_from(limits.memory_quota_bytes)?);
        }
        resources = resources.memory(memory.build()?);
    }
    if limits.pids > 0 {
        resources = resources.pids(LinuxPidsBuilder::default().limit(limits.pids).build()?);
    }
    if limits.cpu_shares > 0 {
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .shares(limits.cpu_shares)
                .build()?,
        );
    }
    Ok(resources.build()?)
}

/// The mounts in order: kernel filesystems, the stack's read-only binds, the container's
/// hostname and hosts files, `/tmp`, `/app`, then the caller's binds (which may go below
/// `/tmp` or `/app`, so they come last).
fn mounts(spec: &ContainerSpec, bundle_dir: &Path) -> anyhow::Result<Vec<Mount>> {
    let mut mounts = vec![
        special("/proc", "proc", &["nosuid", "noexec", "nodev"])?,
        special(
            "/dev",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", DEV_TMPFS_SIZE],
        )?,
        special(
            "/dev/pts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        special(
            "/dev/shm",
            "tmpfs",
            &["nosuid", "noexec", "nodev", "mode=1777", DEV_TMPFS_SIZE],
        )?,
        special("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        special("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?,
        // The container's own cgroup (the runtime mounts each controller's hierarchy as the
        // cgroup namespace sees it: rooted at the container), read-only: a process reads its
        // memory and CPU limits there, as JVMs, Node.js, Go and the buildpacks' profiles do.
        special(
            "/sys/fs/cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    for bind_mount in spec.stack.binds() {
        mounts.push(bind(&bind_mount.source, &bind_mount.destination, true)?);
    }
    for (name, _) in bundle_files(spec) {
        mounts.push(bind(&bundle_dir.join(name), &format!("/etc/{name}"), true)?);
    }
    let tmp_size = format!("size={}", spec.tmp_size_bytes);
    mounts.push(special(
        "/tmp",
        "tmpfs",
        &["nosuid", "nodev", "mode=1777", &tmp_size],
    )?);
    if let Some(overlay) = &spec.app_overlay {
        let options = vec![
            format!("lowerdir={}", overlay.lower.display()),
            format!("upperdir={}", overlay.upper.display()),
            format!("workdir={}", overlay.work.display()),
            "nosuid".to_owned(),
            "nodev".to_owned(),
        ];
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from("/app"))
                .typ("overlay")
                .source(PathBuf::from("overlay"))
                .options(options)
                .build()?,
        );
    }
    for mount in &spec.mounts {
        mounts.push(bind(&mount.source, &mount.destination, mount.readonly)?);
    }
    Ok(mounts)
}

fn special(destination: &str, typ: &str, options: &[&str]) -> anyhow::Result<Mount> {
    Ok(MountBuilder::default()
        .destination(PathBuf::from(destination))
        .typ(typ)
        .source(PathBuf::from(typ))
        .options(
            options
                .iter()
                .map(|option| (*option).to_owned())
                .collect::<Vec<_>>(),
        )
        .build()?)
}

fn bind(source: &Path, destination: &str, readonly: bool) -> anyhow::Result<Mount> {
    let access = if readonly { "ro" } else { "rw" };
    Ok(MountBuilder::default()
        .destination(PathBuf::from(destination))
        .typ("bind")
        .source(source.to_path_buf())
        .options(vec![
            "bind".to_owned(),
            access.to_owned(),
            "nosuid".to_owned(),
            "nodev".to_owned(),
        ])
        .build()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::spec::{Limits, Mount as SpecMount, Overlay};
    use crate::stack::{Stack, DYNO_USER};
    use serde_json::{json, Value};

    fn sample(stack: &Stack) -> ContainerSpec {
        ContainerSpec {
            id: "web.1-abc".to_owned(),
            stack: stack.clone(),
            args: vec!["python3".to_owned(), "app.py".to_owned()],
            env: vec![("PORT".to_owned(), "5000".to_owned())],
            cwd: "/app".to_owned(),
            user: DYNO_USER,
            hostname: "web.1".to_owned(),
            mounts: vec![SpecMount {
                source: PathBuf::from("/data/cache/app"),
                destination: "/cache".to_owned(),
                readonly: false,
            }],
            app_overlay: Some(Overlay {
                lower: PathBuf::from("/data/slugs/s1"),
                upper: PathBuf::from("/data/dynos/web.1/upper"),
                work: PathBuf::from("/data/dynos/web.1/work"),
            }),
            tmp_size_bytes: 64 << 20,
            limits: Limits {
                memory_bytes: 512 << 20,
                memory_quota_bytes: 0,
                pids: 256,
                cpu_shares: 1024,
            },
            network: Network::Joined {
                path: PathBuf::from("/proc/1/fd/7"),
                nameserver: std::net::Ipv4Addr::new(198, 19, 0, 1),
            },
            readonly_rootfs: true,
        }
    }

    fn config_json(spec: &ContainerSpec) -> Value {
        let config = oci_config(spec, Path::new("/data/bundles/web.1-abc")).unwrap();
        serde_json::to_value(config).unwrap()
    }

    fn with_stack(check: impl FnOnce(&Stack)) {
        let dir = tempfile::tempdir().unwrap();
        check(&Stack::prepare(dir.path()).unwrap());
    }

    #[test]
    fn namespaces_are_new_but_the_callers_network() {
        with_stack(|stack| {
            let config = config_json(&sample(stack));
            let namespaces = config["linux"]["namespaces"].as_array().unwrap();
            let types: Vec<&str> = namespaces
                .iter()
                .map(|ns| ns["type"].as_str().unwrap())
                .collect();
            assert_eq!(types, ["cgroup", "ipc", "mount", "pid", "uts", "network"]);
            assert!(namespaces[..5].iter().all(|ns| ns.get("path").is_none()));
            assert_eq!(namespaces[5]["path"], "/proc/1/fd/7");
            assert_eq!(config["hostname"], "web.1");
            let files = bundle_files(&sample(stack));
            assert!(files.contains(&("resolv.conf", "nameserver 198.19.0.1\n".to_owned())));

            let mut empty = sample(stack);
            empty.network = Network::Empty;
            let config = config_json(&empty);
            let net = &config["linux"]["namespaces"][5];
            assert_eq!(net["type"], "network");
            assert!(net.get("path").is_none());
            assert!(bundle_files(&empty).contains(&("resolv.conf", String::new())));
        });
    }

    #[test]
    fn process_has_no_privileges() {
        with_stack(|stack| {
            let process = &config_json(&sample(stack))["process"];
            for set in [
                "bounding",
                "effective",
                "inheritable",
                "permitted",
                "ambient",
            ] {
                assert_eq!(process["capabilities"][set], json!([]), "{set}");
            }
            assert_eq!(process["noNewPrivileges"], true);
            assert_eq!(process["user"]["uid"], 200_000);
            assert_eq!(process["user"]["gid"], 200_000);
            assert_eq!(process["terminal"], false);
            assert_eq!(
                process["args"],
                json!(["/usr/bin/tini", "-g", "--", "python3", "app.py"])
            );
            assert_eq!(
                process["rlimits"],
                json!([{"type": "RLIMIT_NOFILE", "hard": 10000, "soft": 10000}])
            );
            let env = process["env"].as_array().unwrap();
            assert_eq!(env[0], "PORT=5000");
            assert!(env
                .iter()
                .any(|var| var.as_str().unwrap().starts_with("PATH=/usr/local/bin")));
        });
    }

    #[test]
    fn root_is_the_read_only_stack() {
        with_stack(|stack| {
            let config = config_json(&sample(stack));
            assert_eq!(config["root"]["path"], stack.rootfs().to_str().unwrap());
            assert_eq!(config["root"]["readonly"], true);
            let linux = &config["linux"];
            assert_eq!(
                linux["maskedPaths"].as_array().unwrap().len(),
                MASKED_PATHS.len()
            );
            assert!(linux["readonlyPaths"]
                .as_array()
                .unwrap()
                .contains(&json!("/proc/sys")));
            assert_eq!(linux["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        });
    }

    #[test]
    fn mounts_in_order() {
        with_stack(|stack| {
            let config = config_json(&sample(stack));
            let mounts = config["mounts"].as_array().unwrap();
            let find = |destination: &str| {
                mounts
                    .iter()
                    .position(|m| m["destination"] == destination)
                    .unwrap_or_else(|| panic!("no mount on {destination}"))
            };
            let usr = &mounts[find("/usr")];
            assert_eq!(usr["type"], "bind");
            assert_eq!(usr["source"], "/usr");
            assert_eq!(usr["options"], json!(["bind", "ro", "nosuid", "nodev"]));
            assert_eq!(mounts[find("/sys")]["options"][3], "ro");
            assert_eq!(mounts[find("/proc")]["type"], "proc");
            assert_eq!(
                mounts[find("/etc/hosts")]["source"],
                "/data/bundles/web.1-abc/hosts"
            );
            let tmp = &mounts[find("/tmp")];
            assert_eq!(tmp["type"], "tmpfs");
            assert_eq!(
                tmp["options"],
                json!(["nosuid", "nodev", "mode=1777", format!("size={}", 64 << 20)])
            );
            let app = &mounts[find("/app")];
            assert_eq!(app["type"], "overlay");
            assert_eq!(app["options"][0], "lowerdir=/data/slugs/s1");
            assert_eq!(app["options"][1], "upperdir=/data/dynos/web.1/upper");
            assert_eq!(app["options"][2], "workdir=/data/dynos/web.1/work");
            let cache = &mounts[find("/cache")];
            assert_eq!(cache["options"], json!(["bind", "rw", "nosuid", "nodev"]));
            assert!(find("/usr") < find("/etc/hosts"));
            assert!(find("/tmp") < find("/cache") && find("/app") < find("/cache"));
            // Nothing of the host's /etc but the listed entries.
            assert!(mounts
                .iter()
                .all(|m| m["source"] != "/etc" && m["source"] != "/etc/shadow"));
        });
    }

    #[test]
    fn limits_without_swap() {
        with_stack(|stack| {
            let config = config_json(&sample(stack));
            let resources = &config["linux"]["resources"];
            assert_eq!(resources["memory"]["limit"], 512 << 20);
            assert_eq!(resources["memory"]["swap"], 512 << 20);
            assert_eq!(resources["pids"]["limit"], 256);
            assert_eq!(resources["cpu"]["shares"], 1024);
            assert_eq!(
                resources["devices"][0],
                json!({"allow": false, "access": "rwm"})
            );
            assert_eq!(config["linux"]["cgroupsPath"], "/wharf/web.1-abc");

            let mut unlimited = sample(stack);
            unlimited.limits = Limits::default();
            let config = config_json(&unlimited);
            let resources = &config["linux"]["resources"];
            assert!(resources.get("memory").is_none() && resources.get("pids").is_none());
        });
    }

    #[test]
    fn refuses_bad_specs() {
        with_stack(|stack| {
            let check = |change: &dyn Fn(&mut ContainerSpec), expected: &str| {
                let mut spec = sample(stack);
                change(&mut spec);
                let error = oci_config(&spec, Path::new("/b")).unwrap_err();
                assert!(format!("{error:#}").contains(expected), "{error:#}");
            };
            check(&|s| s.id = "a/b".to_owned(), "invalid container id");
            check(&|s| s.user = (0, 0), "root");
            check(&|s| s.args.clear(), "args is empty");
            check(&|s| s.cwd = "app".to_owned(), "not absolute");
            check(
                &|s| s.env.push(("A=B".to_owned(), String::new())),
                "environment",
            );
            check(
                &|s| s.mounts[0].destination = "/etc".to_owned(),
                "not a mount point",
            );
            check(
                &|s| s.mounts[0].destination = "/usr/lib/x".to_owned(),
                "not a mount point",
            );
            check(
                &|s| s.mounts[0].source = PathBuf::from("data"),
                "not absolute",
            );
            check(
                &|s| s.app_overlay.as_mut().unwrap().lower = PathBuf::from("/a,b"),
                "overlay path",
            );
            check(
                &|s| {
                    s.app_overlay = None;
                    s.mounts[0].destination = "/app/x".to_owned();
                },
                "not a mount point",
            );
        });
        with_stack(|stack| {
            let mut spec = sample(stack);
            spec.mounts[0].destination = "/tmp/work".to_owned();
            assert!(oci_config(&spec, Path::new("/b")).is_ok());
        });
    }
}
