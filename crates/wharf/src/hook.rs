//! `wharf git-hook pre-receive`: run by git inside an app's repository during a push. It
//! refuses branches other than main/master, sends the pushed tree to the server's build
//! endpoint (the URL in `WHARF_HOOK_URL`), prints the build's output as it comes (git shows it
//! to the pusher as `remote:` lines) and exits non-zero if the build failed, which makes git
//! refuse the push.

use std::io::{BufRead, Write};
use std::process::Stdio;

use anyhow::Context;
use futures_util::StreamExt;

use wharf_api::git::{PUSH_STATUS_MARKER, ZERO_REV};

/// One line of what git hands a pre-receive hook: `<old> <new> <ref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RefUpdate {
    old: String,
    new: String,
    reference: String,
}

fn parse_updates(input: &str) -> Vec<RefUpdate> {
    input
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some(RefUpdate {
                old: parts.next()?.to_owned(),
                new: parts.next()?.to_owned(),
                reference: parts.next()?.to_owned(),
            })
        })
        .collect()
}

/// The one update to build, or why the push is refused.
fn choose(updates: &[RefUpdate]) -> Result<&RefUpdate, String> {
    let mut chosen = None;
    for update in updates {
        let branch = update.reference.strip_prefix("refs/heads/");
        match branch {
            Some("main" | "master") if update.new == ZERO_REV => {
                return Err(format!(
                    "Deleting {} is not allowed: it is what runs.",
                    update.reference
                ));
            }
            Some("main" | "master") => {
                if chosen.replace(update).is_some() {
                    return Err("Push main or master, not both at once.".into());
                }
            }
            _ => {
                return Err(format!(
                    "Pushing to {} is not supported: Wharf builds main or master. Deploy another \
                     branch with `git push wharf {}:main`.",
                    update.reference,
                    branch.unwrap_or(&update.reference)
                ));
            }
        }
    }
    chosen.ok_or_else(|| "Nothing to deploy in this push.".into())
}

pub async fn pre_receive() -> anyhow::Result<i32> {
    let mut input = String::new();
    for line in std::io::stdin().lock().lines() {
        input.push_str(&line.context("read ref updates")?);
        input.push('\n');
    }
    let updates = parse_updates(&input);
    let update = match choose(&updates) {
        Ok(update) => update.clone(),
        Err(message) => {
            println!(" !     {message}");
            return Ok(1);
        }
    };
    let url = std::env::var("WHARF_HOOK_URL")
        .context("WHARF_HOOK_URL is not set: pushes go through wharf server")?;
    let mut archive = tokio::process::Command::new("git")
        .args(["archive", "--format=tar", &update.new])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("run git archive")?;
    let stdout = archive.stdout.take().expect("piped stdout");
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(stdout));
    let response = reqwest::Client::new()
        .post(&url)
        .header("x-wharf-old-rev", &update.old)
        .header("x-wharf-new-rev", &update.new)
        .header("x-wharf-ref", &update.reference)
        .body(body)
        .send()
        .await
        .context("reach the Wharf server")?;
    if !response.status().is_success() {
        let text = response.text().await.unwrap_or_default();
        println!(" !     The Wharf server refused the build: {}", text.trim());
        return Ok(1);
    }
    let mut succeeded = false;
    let mut pending = Vec::new();
    let mut stream = response.bytes_stream();
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        pending.extend_from_slice(&chunk.context("read build output")?);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            match text.trim_end().strip_prefix(PUSH_STATUS_MARKER) {
                Some(status) => succeeded = status == "ok",
                None => {
                    out.write_all(&line)?;
                    out.flush()?;
                }
            }
        }
    }
    out.write_all(&pending)?;
    let _ = archive.wait().await;
    Ok(if succeeded { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(reference: &str, new: &str) -> RefUpdate {
        RefUpdate {
            old: ZERO_REV.into(),
            new: new.into(),
            reference: reference.into(),
        }
    }

    #[test]
    fn only_main_or_master_is_built() {
        let abc = "a".repeat(40);
        assert_eq!(
            choose(&[update("refs/heads/main", &abc)]).map(|u| u.reference.clone()),
            Ok("refs/heads/main".into())
        );
        assert!(choose(&[update("refs/heads/master", &abc)]).is_ok());
        let other = choose(&[update("refs/heads/feature", &abc)]).unwrap_err();
        assert!(other.contains("git push wharf feature:main"), "{other}");
        assert!(choose(&[update("refs/heads/main", ZERO_REV)])
            .unwrap_err()
            .contains("Deleting"));
        assert!(choose(&[
            update("refs/heads/main", &abc),
            update("refs/heads/master", &abc)
        ])
        .is_err());
        assert!(choose(&[update("refs/tags/v1", &abc)]).is_err());
        assert!(choose(&[]).is_err());
    }

    #[test]
    fn updates_parse() {
        let parsed = parse_updates("0000 1111 refs/heads/main\n\nbroken\n");
        assert_eq!(
            parsed,
            [RefUpdate {
                old: "0000".into(),
                new: "1111".into(),
                reference: "refs/heads/main".into()
            }]
        );
    }
}
