//! The few `git` invocations the CLI makes: reading and setting remotes and the credential
//! helper in the current repository, and the commit a directory to deploy is at.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

use crate::format::shell_quote;

/// The hidden command git runs as the credential helper.
pub const CREDENTIAL_HELPER_COMMAND: &str = "git:credentials";

fn git(args: &[&str]) -> Result<Output> {
    git_in(None, args)
}

/// Runs git in `directory`, or in the current directory.
fn git_in(directory: Option<&Path>, args: &[&str]) -> Result<Output> {
    let mut command = Command::new("git");
    if let Some(directory) = directory {
        command.arg("-C").arg(directory);
    }
    command
        .args(args)
        .output()
        .with_context(|| format!("run git {}", args.join(" ")))
}

fn check(args: &[&str]) -> Result<()> {
    check_in(None, args)
}

fn check_in(directory: Option<&Path>, args: &[&str]) -> Result<()> {
    let output = git_in(directory, args)?;
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

/// The commit `directory` is at, when it is in a git repository with one.
pub fn head_commit(directory: &Path) -> Option<String> {
    let output = git_in(
        Some(directory),
        &["rev-parse", "--verify", "--quiet", "HEAD"],
    )
    .ok()?;
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

/// Makes the current repository ask `wharf git:credentials` (this very executable) for the
/// password of the API at `api_url`, so that `git push` needs no typing.
pub fn set_credential_helper(api_url: &str) -> Result<()> {
    let executable = std::env::current_exe().context("find the wharf executable")?;
    configure_credential_helper(None, api_url, &executable)
}

fn configure_credential_helper(
    directory: Option<&Path>,
    api_url: &str,
    executable: &Path,
) -> Result<()> {
    let (key, value) = credential_helper_setting(api_url, executable);
    check_in(
        directory,
        &["config", "--local", "--replace-all", &key, &value],
    )
}

/// The git config key and value that name the helper for URLs under `api_url`; git runs a
/// value starting with `!` through the shell.
fn credential_helper_setting(api_url: &str, executable: &Path) -> (String, String) {
    let api_url = api_url.trim_end_matches('/');
    let executable = shell_quote(&executable.to_string_lossy());
    (
        format!("credential.{api_url}.helper"),
        format!("!{executable} {CREDENTIAL_HELPER_COMMAND}"),
    )
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

    #[test]
    fn the_credential_helper_is_set_for_the_api_url() {
        let check = |api_url: &str, executable: &str, key: &str, value: &str| {
            let setting = credential_helper_setting(api_url, Path::new(executable));
            assert_eq!(setting, (key.to_string(), value.to_string()), "{api_url}");
        };
        check(
            "http://127.0.0.1:5000/",
            "/usr/local/bin/wharf",
            "credential.http://127.0.0.1:5000.helper",
            "!/usr/local/bin/wharf git:credentials",
        );
        check(
            "https://wharf.example.com",
            "/home/me/my tools/wharf",
            "credential.https://wharf.example.com.helper",
            "!'/home/me/my tools/wharf' git:credentials",
        );
    }

    fn init_repository() -> tempfile::TempDir {
        let directory = tempfile::tempdir().expect("a temporary directory");
        check_in(Some(directory.path()), &["init", "--quiet"]).expect("git init");
        directory
    }

    #[test]
    fn the_credential_helper_lands_in_the_local_config_once() -> Result<()> {
        let repository = init_repository();
        let path = Some(repository.path());
        let executable = Path::new("/opt/wharf/bin/wharf");
        configure_credential_helper(path, "http://127.0.0.1:5000/", executable)?;
        // Again, as `git:remote` run twice does: still one value.
        configure_credential_helper(path, "http://127.0.0.1:5000/", executable)?;
        let output = git_in(
            path,
            &[
                "config",
                "--local",
                "--get-all",
                "credential.http://127.0.0.1:5000.helper",
            ],
        )?;
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "!/opt/wharf/bin/wharf git:credentials\n"
        );
        // Git picks it for URLs of apps on that server.
        let output = git_in(
            path,
            &[
                "config",
                "--get-urlmatch",
                "credential.helper",
                "http://127.0.0.1:5000/myapp.git",
            ],
        )?;
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "!/opt/wharf/bin/wharf git:credentials\n"
        );
        Ok(())
    }

    #[test]
    fn head_commits_come_from_repositories_only() -> Result<()> {
        let plain = tempfile::tempdir()?;
        assert_eq!(head_commit(plain.path()), None);
        let repository = init_repository();
        let path = Some(repository.path());
        // A repository without commits has no HEAD yet.
        assert_eq!(head_commit(repository.path()), None);
        std::fs::write(repository.path().join("a.txt"), "a")?;
        check_in(path, &["add", "a.txt"])?;
        check_in(
            path,
            &[
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "commit.gpgsign=false",
                "commit",
                "--quiet",
                "-m",
                "first",
            ],
        )?;
        let expected = git_in(path, &["rev-parse", "HEAD"])?;
        let commit = head_commit(repository.path()).expect("a commit");
        assert_eq!(commit.len(), 40);
        assert_eq!(commit, String::from_utf8_lossy(&expected.stdout).trim());
        Ok(())
    }
}
