//! `run` and `run:detached`: one-off dynos. Attached, the dyno's terminal comes here through
//! the rendezvous and its exit status becomes ours; detached, its output goes to the log.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, Result};
use wharf_api_types::{Dyno, DynoCreate, EnvValue};

use crate::args::{RunArgs, RunDetachedArgs};
use crate::attach::{self, AttachUrl};
use crate::client::decode;
use crate::error::CommandExit;
use crate::settings::Settings;
use crate::ui::Ui;

/// `TERM` when ours is unset.
const DEFAULT_TERM: &str = "xterm-256color";

pub async fn run(args: RunArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let command = args.command.join(" ");
    let label = format!("Running `{command}` on {}", ui.app(&name));
    let one_off = OneOff {
        app: &name,
        command,
        env: &args.env,
        size: args.size.clone(),
        no_tty: args.no_tty,
        label,
    };
    attached(one_off, settings, ui).await
}

/// An attached one-off dyno: what `run` starts, and `pg:psql` and `redis:cli` too.
pub(crate) struct OneOff<'a> {
    pub app: &'a str,
    pub command: String,
    /// `-e` pairs, after `TERM`.
    pub env: &'a [EnvPairs],
    pub size: Option<String>,
    pub no_tty: bool,
    /// What the progress line says until the dyno is up (`Running `bash` on ⬢ myapp`).
    pub label: String,
}

/// Starts the one-off dyno, attaches this terminal to it, and ends with its exit status.
pub(crate) async fn attached(one_off: OneOff<'_>, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = one_off.app;
    let mut env = environment(one_off.env);
    if let Some((columns, lines)) = terminal_size() {
        env.insert("COLUMNS".to_owned(), EnvValue::Integer(columns));
        env.insert("LINES".to_owned(), EnvValue::Integer(lines));
    }
    let body = DynoCreate {
        command: one_off.command,
        attach: Some(true),
        env: Some(env),
        size: one_off.size,
        process_type: Some("run".to_owned()),
        force_no_tty: one_off.no_tty.then_some(true),
    };
    let client = settings.client()?;
    let (dyno, url, connection) = ui
        .action(&one_off.label, async {
            let value = client.post(&["apps", name, "dynos"], &body).await?;
            let dyno: Dyno = decode(value, "the dyno")?;
            let url = dyno
                .attach_url
                .as_deref()
                .context("the server gave no attach URL for the dyno")
                .and_then(AttachUrl::parse)?;
            let roots =
                attach::trusted_roots(&url, settings.ca_file.as_deref(), settings.home.as_deref())?;
            let connection = attach::connect(&url, roots).await?;
            Ok((dyno, url, connection))
        })
        .await?;
    drop(url);
    ui.line(format!("up, {}", dyno.name))?;
    let code = attach::session(connection).await?;
    exit_status(code, name, &dyno.name)
}

/// How `run` ends: with the dyno's exit status, which Wharf's server always sends once the
/// process has exited (with or without `--exit-code`). A session that ends without one had no
/// process to report on: the dyno could not start (the server said why in its output and the
/// dyno's log), was stopped before it started, or the connection was lost. That fails with
/// status 1, as Heroku's CLI fails when no status came back ("No exit code returned").
fn exit_status(code: Option<i32>, app: &str, dyno: &str) -> Result<()> {
    match code {
        Some(0) => Ok(()),
        Some(code) => Err(CommandExit(code).into()),
        None => anyhow::bail!(
            "No exit code returned: {dyno} could not start, or was stopped before it exited \
             (see why with `wharf logs -a {app} -d {dyno}`)"
        ),
    }
}

pub async fn detached(args: RunDetachedArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let command = args.command.join(" ");
    let body = DynoCreate {
        command: command.clone(),
        attach: Some(false),
        env: Some(environment(&args.env)),
        size: args.size.clone(),
        process_type: Some("run".to_owned()),
        force_no_tty: None,
    };
    let client = settings.client()?;
    let label = format!("Running `{command}` on {}", ui.app(&name));
    let value = ui
        .action(&label, client.post(&["apps", &name, "dynos"], &body))
        .await?;
    let dyno: Dyno = decode(value, "the dyno")?;
    ui.line(format!("done, {} ({})", dyno.name, dyno.size))?;
    ui.line(format!(
        "Run `wharf logs -a {name} -d {}` to view the output.",
        dyno.name
    ))
}

/// `TERM`, then the `-e` pairs.
fn environment(pairs: &[EnvPairs]) -> BTreeMap<String, EnvValue> {
    let term = std::env::var("TERM")
        .ok()
        .filter(|term| !term.is_empty())
        .unwrap_or_else(|| DEFAULT_TERM.to_owned());
    let mut env = BTreeMap::from([("TERM".to_owned(), EnvValue::Text(term))]);
    for (key, value) in pairs.iter().flat_map(|pairs| &pairs.0) {
        env.insert(key.clone(), EnvValue::Text(value.clone()));
    }
    env
}

/// Columns and lines of the terminal on stdout, if it is one (`stty size`).
fn terminal_size() -> Option<(i64, i64)> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return None;
    }
    let output = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text.split_whitespace().map(|n| n.parse::<i64>().ok());
    let (lines, columns) = (numbers.next()??, numbers.next()??);
    Some((columns, lines))
}

/// The pairs of one `-e 'A=1;B=2'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPairs(pub Vec<(String, String)>);

/// Parses `-e 'A=1;B=2'`.
pub fn parse_env(raw: &str) -> Result<EnvPairs, String> {
    raw.split(';')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.to_owned()))
            }
            _ => Err(format!("{pair:?} is not KEY=VALUE (give -e 'A=1;B=2')")),
        })
        .collect::<Result<Vec<_>, String>>()
        .map(EnvPairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs() {
        let check = |raw: &str, expected: &[(&str, &str)]| {
            let parsed = parse_env(raw).unwrap_or_else(|e| panic!("{raw}: {e}")).0;
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(parsed, expected, "{raw}");
        };
        check("A=1", &[("A", "1")]);
        check("A=1;B=2", &[("A", "1"), ("B", "2")]);
        check("A=x=y; B=;", &[("A", "x=y"), ("B", "")]);
        check("", &[]);
        assert!(parse_env("A").is_err());
        assert!(parse_env("=1").is_err());
    }

    #[test]
    fn exit_statuses() {
        assert!(exit_status(Some(0), "app", "run.1").is_ok());
        let failed = exit_status(Some(3), "app", "run.1").expect_err("status 3");
        assert_eq!(crate::error::report(&failed), 3);
        // No status came back: the dyno never ran, whatever the flags.
        let none = exit_status(None, "myapp", "run.4321").expect_err("no status");
        assert_eq!(
            none.to_string(),
            "No exit code returned: run.4321 could not start, or was stopped before it exited \
             (see why with `wharf logs -a myapp -d run.4321`)"
        );
        assert_eq!(crate::error::report(&none), 1);
    }

    #[test]
    fn term_is_always_sent() {
        let env = environment(&[EnvPairs(vec![("X".to_owned(), "1".to_owned())])]);
        assert!(env.contains_key("TERM"));
        assert_eq!(env.get("X"), Some(&EnvValue::Text("1".to_owned())));
    }
}
