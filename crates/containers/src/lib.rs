//! Linux containers for Wharf's dynos and builds: a read-only stack root filesystem, OCI
//! bundles generated with `oci-spec`, and a driver for the crun or runc command line.
//!
//! Every container gets new pid, mount, UTS and IPC namespaces and a network namespace (the
//! caller's, made by `wharf_network`, or an empty one), the read-only [`Stack`] as its root, a fresh `/proc`, the OCI default devices, a read-only
//! `/sys`, a private `/tmp`, no capabilities, `noNewPrivileges`, a default seccomp profile,
//! Docker's masked and read-only paths, and `tini` as PID 1. Its cgroup is `/wharf/<id>`
//! (cgroupfs driver, on cgroup v1, hybrid and v2 hosts).
//!
//! Invariants:
//! - Nothing is mounted on the host: all mounts live in the container's mount namespace and go
//!   with it; a stack's directory is only written by [`Stack::prepare`] and [`Stacks`].
//! - A container is removed (with its cgroup) by [`Container::wait`] after its OOM counter is
//!   read, or by [`Runtime::delete`]; [`Runtime::list`] finds leftovers after a crash.
//! - The OCI configuration is a pure function of the [`ContainerSpec`] ([`oci_config`]).

pub mod cgroup;
mod config;
mod container;
mod held;
mod runtime;
mod seccomp;
mod spec;
mod stack;
mod stacks;

pub use cgroup::{CgroupLayout, CgroupStats, CgroupVersion};
pub use config::{bundle_files, cgroups_path, oci_config, CGROUP_PARENT, INIT};
pub use container::{Container, ContainerStdio, ExitReport, ExitStatus};
pub use held::{HolderConfig, Output};
pub use runtime::{ContainerState, Runtime, RuntimeKind};
pub use seccomp::DENIED_SYSCALLS;
pub use spec::{validate_id, ContainerSpec, Limits, Mount, Network, Overlay};
pub use stack::{Stack, StackBind, BUILD_USER, DYNO_USER, MOUNT_POINTS};
pub use stacks::{
    host_mirror, Stacks, StacksConfig, DEFAULT_MAX_AGE, DEFAULT_MIRROR, STACK_APT_PACKAGES,
    STACK_PACKAGES,
};
