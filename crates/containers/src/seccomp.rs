//! The seccomp profile every container gets: allow by default, refuse the system calls that
//! administer the kernel, mounts, namespaces, keyrings and tracing (as Docker's default profile
//! does for a container without capabilities).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

const EPERM: u32 = 1;
/// `clone3` passes its flags in memory seccomp cannot read, so it answers "not implemented":
/// glibc then falls back to `clone`, whose flags the filter can check.
const ENOSYS: u32 = 38;
const CLONE_NEWUSER: u64 = 0x1000_0000;
/// The index of `clone`'s flags argument on x86 and ARM (s390 swaps the first two).
const CLONE_FLAGS_ARG: usize = 0;

/// Refused with EPERM. Names unknown to the runtime's libseccomp (an old one, another
/// architecture) are skipped by crun and runc, so the list may name newer calls.
pub const DENIED_SYSCALLS: [&str; 40] = [
    // mounts and the root directory
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // namespaces
    "unshare",
    "setns",
    // tracing and other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "perf_event_open",
    // the kernel itself
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "quotactl",
    "lookup_dcookie",
    "iopl",
    "ioperm",
    "bpf",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // keyrings and file handles
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
];

/// The profile: default allow, [`DENIED_SYSCALLS`] refused, `clone` with `CLONE_NEWUSER`
/// refused, `clone3` reported as missing.
pub fn default_profile() -> anyhow::Result<LinuxSeccomp> {
    let denied = LinuxSyscallBuilder::default()
        .names(DENIED_SYSCALLS.map(String::from).to_vec())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()?;
    // MASKED_EQ compares (argument & value) with valueTwo.
    let new_user_namespace = LinuxSeccompArgBuilder::default()
        .index(CLONE_FLAGS_ARG)
        .value(CLONE_NEWUSER)
        .value_two(CLONE_NEWUSER)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()?;
    let clone_user_namespace = LinuxSyscallBuilder::default()
        .names(vec!["clone".to_owned()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .args(vec![new_user_namespace])
        .build()?;
    let clone3 = LinuxSyscallBuilder::default()
        .names(vec!["clone3".to_owned()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(ENOSYS)
        .build()?;
    let syscalls: Vec<LinuxSyscall> = vec![denied, clone_user_namespace, clone3];
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()?)
}

/// The native architecture and the compatibility ABIs its kernel also runs: a filter that
/// names only the native one would let 32-bit calls through unfiltered.
fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn profile_allows_by_default_and_refuses_the_dangerous_calls() {
        let profile = default_profile().unwrap();
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                json["architectures"],
                serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
        }
        let rules = json["syscalls"].as_array().unwrap();
        let denied = rules[0]["names"].as_array().unwrap();
        for name in [
            "mount",
            "umount2",
            "ptrace",
            "kexec_load",
            "init_module",
            "delete_module",
            "reboot",
            "swapon",
            "swapoff",
            "pivot_root",
            "unshare",
            "setns",
            "keyctl",
            "bpf",
            "perf_event_open",
            "open_by_handle_at",
            "add_key",
            "request_key",
            "userfaultfd",
        ] {
            assert!(denied.iter().any(|n| n == name), "{name} is not denied");
        }
        assert_eq!(rules[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(rules[0]["errnoRet"], 1);
        assert_eq!(rules[1]["names"][0], "clone");
        assert_eq!(
            rules[1]["args"][0],
            serde_json::json!({"index": 0, "value": 0x1000_0000u64, "valueTwo": 0x1000_0000u64,
                "op": "SCMP_CMP_MASKED_EQ"})
        );
        assert_eq!(rules[2]["names"][0], "clone3");
        assert_eq!(rules[2]["errnoRet"], 38);
    }
}
