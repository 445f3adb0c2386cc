//! PostgreSQL's own programs (`initdb`, `postgres`, `pg_dump`, `pg_restore`): where they are
//! installed, and running one with its connection in the environment (never on the command
//! line, which every user of the host may read).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;

/// Where Debian and Ubuntu install each major version: `<INSTALL_ROOT>/<N>/bin`.
const INSTALL_ROOT: &str = "/usr/lib/postgresql";
/// How much of a failed program's error output goes into the error.
const ERROR_TAIL: usize = 1500;

/// The `bin` directory of major version `version`, or of the newest installed with `None`.
pub fn installed_bin_dir(version: Option<u32>) -> anyhow::Result<PathBuf> {
    let root = Path::new(INSTALL_ROOT);
    let version = match version {
        Some(version) => version,
        None => newest_version(root)?,
    };
    let bin = root.join(version.to_string()).join("bin");
    anyhow::ensure!(
        bin.join("postgres").is_file(),
        "PostgreSQL {version} is not installed ({} has no postgres): install postgresql-{version}",
        bin.display()
    );
    Ok(bin)
}

fn newest_version(root: &Path) -> anyhow::Result<u32> {
    let entries = std::fs::read_dir(root)
        .with_context(|| format!("list PostgreSQL versions in {}", root.display()))?;
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|version| {
            root.join(version.to_string())
                .join("bin/postgres")
                .is_file()
        })
        .max()
        .with_context(|| format!("no PostgreSQL is installed in {}", root.display()))
}

/// The programs of one installation.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    /// `None`: the newest installed, found when a program is first needed.
    bin_dir: Option<PathBuf>,
}

impl Tools {
    pub(crate) fn new(bin_dir: Option<PathBuf>) -> Tools {
        Tools { bin_dir }
    }

    fn program(&self, name: &str) -> anyhow::Result<PathBuf> {
        let bin_dir = match &self.bin_dir {
            Some(bin_dir) => bin_dir.clone(),
            None => installed_bin_dir(None)?,
        };
        Ok(bin_dir.join(name))
    }

    /// Runs `name` with `args` and exactly `env` (as root: what it may reach is what the
    /// arguments name) and fails with the end of its error output when it fails. A dropped
    /// future kills it.
    pub(crate) async fn run(
        &self,
        name: &str,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<()> {
        let program = self.program(name)?;
        let output = tokio::process::Command::new(&program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("run {}", program.display()))?;
        if output.status.success() {
            return Ok(());
        }
        let errors = String::from_utf8_lossy(&output.stderr);
        let errors = errors.trim();
        let start = errors
            .char_indices()
            .rev()
            .nth(ERROR_TAIL)
            .map_or(0, |(index, _)| index);
        anyhow::bail!("{name} failed ({}): {}", output.status, &errors[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_version_is_found() {
        let bin = installed_bin_dir(None).expect("a PostgreSQL installation on this machine");
        assert!(bin.join("pg_dump").is_file());
        assert!(installed_bin_dir(Some(3)).is_err());
    }
}
