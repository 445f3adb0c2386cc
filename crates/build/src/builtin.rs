//! The built-in buildpacks, carried inside the binary and written out at start so that they
//! are used exactly like third-party ones (a directory with `bin/detect`, `bin/compile`,
//! `bin/release`).
//!
//! Server paths only: `<data-dir>/buildpacks`, written from the binary; builds get copies.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

include!(concat!(env!("OUT_DIR"), "/builtin_buildpacks.rs"));

/// Writes every built-in buildpack under `dir` (`dir/python/bin/compile`, ...), replacing
/// what an earlier version left there.
pub fn install(dir: &Path) -> anyhow::Result<()> {
    for name in crate::buildpack::BUILTIN {
        let old = dir.join(name);
        if old.exists() {
            std::fs::remove_dir_all(&old).with_context(|| format!("remove {}", old.display()))?;
        }
    }
    for (relative, contents, mode) in FILES {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
            .with_context(|| format!("set the mode of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_buildpack_follows_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        install(dir.path()).unwrap();
        for name in crate::buildpack::BUILTIN {
            for script in ["detect", "compile", "release"] {
                let path = dir.path().join(name).join("bin").join(script);
                let mode = std::fs::metadata(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o111, 0o111, "{} is executable", path.display());
            }
            let helpers = dir.path().join(name).join("lib/output.sh");
            assert!(helpers.is_file(), "{} carries its output helpers", name);
        }
    }
}
