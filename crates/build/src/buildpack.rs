//! Buildpacks: where one comes from (built in, a directory on the server, or a git URL), and
//! the names the built-in ones answer to.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The built-in buildpacks, in detection order: the first whose `bin/detect` passes wins.
pub const BUILTIN: &[&str] = &["python", "nodejs", "static", "procfile"];

/// Where a buildpack comes from, as an app's buildpack list names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildpackSource {
    /// One of [`BUILTIN`] (also as `heroku/python`, `wharf/python`).
    Builtin(&'static str),
    /// A directory on the server.
    Local(PathBuf),
    /// A git repository, optionally `#ref` for a branch or tag.
    Git {
        url: String,
        reference: Option<String>,
    },
}

impl BuildpackSource {
    pub fn parse(raw: &str) -> Result<BuildpackSource, String> {
        let raw = raw.trim();
        let short = raw
            .strip_prefix("heroku/")
            .or_else(|| raw.strip_prefix("wharf/"))
            .unwrap_or(raw);
        let short = match short {
            "node" | "node.js" => "nodejs",
            other => other,
        };
        if let Some(name) = BUILTIN.iter().find(|name| **name == short) {
            return Ok(BuildpackSource::Builtin(name));
        }
        if raw.starts_with('/') {
            return Ok(BuildpackSource::Local(PathBuf::from(raw)));
        }
        let gitlike = ["https://", "http://", "git://", "file://", "ssh://"]
            .iter()
            .any(|scheme| raw.starts_with(scheme));
        if gitlike {
            let (url, reference) = match raw.split_once('#') {
                Some((url, reference)) if !reference.is_empty() => {
                    (url, Some(reference.to_owned()))
                }
                _ => (raw.trim_end_matches('#'), None),
            };
            return Ok(BuildpackSource::Git {
                url: url.to_owned(),
                reference,
            });
        }
        Err(format!(
            "Buildpack {raw:?} is not one Wharf can use: name a built-in one ({}), an absolute \
             path on the server, or a git URL",
            BUILTIN.join(", ")
        ))
    }
}

/// Makes the buildpack available at `dest` (a fresh directory): copies built-in and local
/// ones, clones git ones. Fails with a message when the result is not a buildpack.
pub async fn fetch(
    source: &BuildpackSource,
    builtin_dir: &Path,
    dest: &Path,
) -> anyhow::Result<()> {
    match source {
        BuildpackSource::Builtin(name) => copy_dir(&builtin_dir.join(name), dest).await?,
        BuildpackSource::Local(path) => copy_dir(path, dest).await?,
        BuildpackSource::Git { url, reference } => {
            let mut command = tokio::process::Command::new("git");
            command.args(["clone", "--quiet", "--depth", "1"]);
            if let Some(reference) = reference {
                command.args(["--branch", reference]);
            }
            let output = command
                .arg(url)
                .arg(dest)
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .await
                .context("run git clone")?;
            if !output.status.success() {
                anyhow::bail!(
                    "could not clone the buildpack {url}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
    }
    for script in ["detect", "compile"] {
        if !dest.join("bin").join(script).is_file() {
            anyhow::bail!(
                "this buildpack has no bin/{script}: it does not follow the buildpack contract"
            );
        }
    }
    Ok(())
}

async fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.is_dir() {
        anyhow::bail!("there is no buildpack directory {}", from.display());
    }
    let output = tokio::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .await
        .context("run cp")?;
    if !output.status.success() {
        anyhow::bail!(
            "could not copy the buildpack {}: {}",
            from.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            BuildpackSource::parse("heroku/python"),
            Ok(BuildpackSource::Builtin("python"))
        );
        assert_eq!(
            BuildpackSource::parse("nodejs"),
            Ok(BuildpackSource::Builtin("nodejs"))
        );
        assert_eq!(
            BuildpackSource::parse("wharf/static"),
            Ok(BuildpackSource::Builtin("static"))
        );
        assert_eq!(
            BuildpackSource::parse("/opt/buildpacks/go"),
            Ok(BuildpackSource::Local("/opt/buildpacks/go".into()))
        );
        assert_eq!(
            BuildpackSource::parse("https://example.com/bp.git#v2"),
            Ok(BuildpackSource::Git {
                url: "https://example.com/bp.git".into(),
                reference: Some("v2".into())
            })
        );
        assert_eq!(
            BuildpackSource::parse("file:///srv/bp"),
            Ok(BuildpackSource::Git {
                url: "file:///srv/bp".into(),
                reference: None
            })
        );
        let err = BuildpackSource::parse("heroku/ruby").unwrap_err();
        assert!(err.contains("python, nodejs, static, procfile"), "{err}");
        assert!(BuildpackSource::parse("relative/dir").is_err());
    }
}
