//! Asking the user for a value: a prompt on a terminal (input hidden for secrets), plain
//! lines from stdin otherwise, so `printf 'me@x\nKEY\n' | wharf login` works.

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// One line from the user, without its line ending.
pub fn ask(label: &str, hidden: bool) -> Result<String> {
    let terminal = std::io::stdin().is_terminal();
    if terminal {
        let mut stderr = std::io::stderr();
        write!(stderr, "{label}")
            .and_then(|()| stderr.flush())
            .context("write the prompt")?;
    }
    let hide = terminal && hidden && set_echo(false);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hide {
        set_echo(true);
        // The user's Enter was not echoed.
        eprintln!();
    }
    let read = read.context("read from stdin")?;
    let value = line.trim().to_string();
    if read == 0 || value.is_empty() {
        bail!("no {} given", label.trim_end().trim_end_matches(':'));
    }
    Ok(value)
}

/// Turns terminal echo on or off with `stty`; returns whether that worked.
fn set_echo(on: bool) -> bool {
    Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .status()
        .is_ok_and(|status| status.success())
}

/// Asks for the app's name before something that cannot be undone, unless `--confirm` gave it;
/// fails unless it matches. Off a terminal, only `--confirm` can confirm.
pub fn confirm_app(name: &str, given: Option<String>, warning: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let confirmation = match given {
        Some(confirmation) => confirmation,
        None if std::io::stdin().is_terminal() => {
            eprintln!(" ›   Warning: {warning}");
            eprintln!(" ›   To proceed, type {name} or re-run this command with --confirm {name}");
            eprintln!();
            // An unreadable answer is no confirmation.
            ask("> ", false).unwrap_or_default()
        }
        None => String::new(),
    };
    if confirmation != name {
        anyhow::bail!("Confirmation did not match {name}. Aborted.");
    }
    Ok(())
}
