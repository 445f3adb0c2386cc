//! The few `git` invocations the CLI makes in the current repository: reading and setting
//! remotes.

use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

fn git(args: &[&str]) -> Result<Output> {
    Command::new("git")
        .args(args)
        .output()
        .with_context(|| format!("run git {}", args.join(" ")))
}

fn check(args: &[&str]) -> Result<()> {
    let output = git(args)?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The URL of remote `name`, if the current directory is in a repository that has it.
pub fn remote_url(name: &str) -> Option<String> {
    let output = git(&["config", "--get", &format!("remote.{name}.url")]).ok()?;
    let url = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !url.is_empty()).then_some(url)
}

/// Whether the current directory is inside a git work tree.
pub fn inside_work_tree() -> bool {
    git(&["rev-parse", "--is-inside-work-tree"])
        .is_ok_and(|output| output.status.success() && output.stdout.starts_with(b"true"))
}

/// Points remote `name` at `url`, adding it when it does not exist.
pub fn set_remote(name: &str, url: &str) -> Result<()> {
    if remote_url(name).is_some() {
        check(&["remote", "set-url", name, url])
    } else {
        check(&["remote", "add", name, url])
    }
}

/// Removes every remote whose URL is `url`; returns their names.
pub fn remove_remotes_to(url: &str) -> Result<Vec<String>> {
    let output = git(&["config", "--get-regexp", r"^remote\..*\.url$"])?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let mut removed = Vec::new();
    for (name, remote) in parse_remote_urls(&listing) {
        if remote == url {
            check(&["remote", "remove", &name])?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// `(name, url)` pairs from `git config --get-regexp '^remote\..*\.url$'` output.
fn parse_remote_urls(listing: &str) -> Vec<(String, String)> {
    listing
        .lines()
        .filter_map(|line| {
            let (key, url) = line.split_once(' ')?;
            let name = key.strip_prefix("remote.")?.strip_suffix(".url")?;
            Some((name.to_string(), url.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_listings_parse() {
        let check = |listing: &str, expected: &[(&str, &str)]| {
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(name, url)| (name.to_string(), url.to_string()))
                .collect();
            assert_eq!(parse_remote_urls(listing), expected, "{listing:?}");
        };
        check(
            "remote.origin.url git@github.com:me/x.git\nremote.wharf.url http://127.0.0.1:5000/x.git\n",
            &[("origin", "git@github.com:me/x.git"), ("wharf", "http://127.0.0.1:5000/x.git")],
        );
        check(
            "remote.my.dotted.url http://h/a.git",
            &[("my.dotted", "http://h/a.git")],
        );
        check("", &[]);
        check("garbage\n", &[]);
    }
}
