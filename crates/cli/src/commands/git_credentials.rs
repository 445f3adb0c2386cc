//! `git:credentials`: the git credential helper (see [`crate::credential_helper`]). It never
//! fails loudly: git treats a helper's silence as "ask someone else".

use std::io::BufRead;

use anyhow::{Context, Result};

use crate::args::GitCredentialsArgs;
use crate::credential_helper;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn answer(args: GitCredentialsArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    if args.action != "get" {
        return Ok(());
    }
    let input = read_request().context("read git's request from stdin")?;
    match respond(&args.action, &input, settings) {
        Some(text) => ui.raw(text.as_bytes()),
        None => Ok(()),
    }
}

/// What to print; a bad API URL or unreadable netrc means no answer.
pub fn respond(action: &str, input: &str, settings: &Settings) -> Option<String> {
    let api_url = settings.api_url().ok()?;
    let key = settings.api_key(&api_url).ok().flatten();
    credential_helper::answer(action, input, &api_url, key.as_deref())
}

/// Git's lines up to a blank line or the end of input.
fn read_request() -> Result<String> {
    let mut input = String::new();
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            return Ok(input);
        }
        input.push_str(&line);
    }
}
