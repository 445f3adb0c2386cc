//! The programs the pool drives (e2fsprogs' `mkfs.ext4`, `e2fsck` and `resize2fs`,
//! util-linux's `mount` and `losetup`), found once when the pool opens, and how they are run:
//! no shell, no input, and their own words in the error when they fail.
//!
//! Server paths only: the programs' arguments are the pool's image files and mount points.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;

/// Where the programs are looked for after `PATH`: root's usual `sbin` directories, which a
/// service's `PATH` sometimes lacks.
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub mkfs: PathBuf,
    pub e2fsck: PathBuf,
    pub resize2fs: PathBuf,
    pub mount: PathBuf,
    pub losetup: PathBuf,
}

impl Tools {
    /// Finds every program, or says which package to install.
    pub fn find() -> anyhow::Result<Tools> {
        Ok(Tools {
            mkfs: find("mkfs.ext4", "e2fsprogs")?,
            e2fsck: find("e2fsck", "e2fsprogs")?,
            resize2fs: find("resize2fs", "e2fsprogs")?,
            mount: find("mount", "mount")?,
            losetup: find("losetup", "mount")?,
        })
    }
}

fn find(program: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_dirs)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        // Server path: a program directory of the host's, not a tenant's tree.
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{program} was not found: the disk pool needs it; install the {package} package \
                 (apt-get install {package}, as scripts/deps.sh does)"
            )
        })
}

/// Runs `program` with `args`; an exit status other than success is an error that quotes
/// what the program said. Returns its exit code (0) and standard output.
pub(crate) async fn run<I, S>(program: &Path, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (code, stdout, stderr) = run_status(program, args).await?;
    if code != 0 {
        anyhow::bail!(
            "{} failed (exit status {code}): {}",
            program.display(),
            said(&stdout, &stderr)
        );
    }
    Ok(stdout)
}

/// Runs `program` with `args`; returns its exit code, standard output and standard error.
pub(crate) async fn run_status<I, S>(
    program: &Path,
    args: I,
) -> anyhow::Result<(i32, String, String)>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("run {}", program.display()))?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// What a program said, on one line.
pub(crate) fn said(stdout: &str, stderr: &str) -> String {
    let text = format!("{} {}", stderr.trim(), stdout.trim());
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        "it said nothing".to_owned()
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_program_said_is_one_line() {
        assert_eq!(said("", ""), "it said nothing");
        assert_eq!(said("out\n", "  bad\n  thing\n"), "bad thing out");
    }

    #[test]
    fn a_missing_program_names_its_package() {
        let error = find("wharf-no-such-program", "some-package").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("wharf-no-such-program")
                && message.contains("apt-get install some-package"),
            "{message}"
        );
    }
}
