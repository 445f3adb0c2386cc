//! `ps` output, laid out as Heroku's CLI does: one-off dynos first, then a block per process
//! type, command and size, each dyno with its state and when that last changed.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use wharf_api_types::Dyno;

use crate::format::{paint, timestamp, BOLD, CYAN, GREEN, RED, YELLOW};

/// The process type of one-off dynos (`wharf run`).
const ONE_OFF_TYPE: &str = "run";

/// The lines `ps` prints for `dynos` (at least one), blocks separated by a blank line.
pub fn layout(dynos: &[Dyno], now: OffsetDateTime, color: bool) -> Vec<String> {
    let (one_offs, others): (Vec<&Dyno>, Vec<&Dyno>) = dynos
        .iter()
        .partition(|dyno| dyno.process_type == ONE_OFF_TYPE);
    let mut blocks: Vec<Vec<String>> = Vec::new();
    if !one_offs.is_empty() {
        let title = format!("{}: one-off processes", paint(color, GREEN, ONE_OFF_TYPE));
        let lines = by_number(one_offs)
            .into_iter()
            .map(|dyno| {
                format!(
                    "{} ({}): {} {}: {}",
                    dyno.name,
                    paint(color, CYAN, &dyno.size),
                    state(dyno, color),
                    timestamp(&dyno.updated_at, now),
                    dyno.command
                )
            })
            .collect();
        blocks.push(block(&title, lines, color));
    }
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&Dyno>> = BTreeMap::new();
    for dyno in others {
        let key = (
            dyno.process_type.as_str(),
            dyno.command.as_str(),
            dyno.size.as_str(),
        );
        groups.entry(key).or_default().push(dyno);
    }
    for ((process_type, command, size), group) in groups {
        let title = format!(
            "{} ({}): {command}",
            paint(color, GREEN, process_type),
            paint(color, CYAN, size)
        );
        let lines = by_number(group)
            .into_iter()
            .map(|dyno| {
                let line = format!(
                    "{}: {} {}",
                    dyno.name,
                    state(dyno, color),
                    timestamp(&dyno.updated_at, now)
                );
                match &dyno.host {
                    Some(host) => format!("{line} on {host}"),
                    None => line,
                }
            })
            .collect();
        blocks.push(block(&title, lines, color));
    }
    blocks.join(&String::new())
}

/// `=== title (N)` and the dyno lines under it.
fn block(title: &str, lines: Vec<String>, color: bool) -> Vec<String> {
    let count = paint(color, YELLOW, &lines.len().to_string());
    let header = paint(color, BOLD, &format!("=== {title} ({count})"));
    std::iter::once(header).chain(lines).collect()
}

/// `web.2` before `web.10`; a name without a number after its dot sorts by name, first.
fn by_number(mut dynos: Vec<&Dyno>) -> Vec<&Dyno> {
    dynos.sort_by_key(|dyno| (number(&dyno.name), dyno.name.clone()));
    dynos
}

fn number(name: &str) -> Option<u64> {
    name.rsplit_once('.')?.1.parse().ok()
}

/// The state, in green when up, red when crashed and yellow while starting.
fn state(dyno: &Dyno, color: bool) -> String {
    let style = match dyno.state.as_str() {
        "up" => Some(GREEN),
        "crashed" => Some(RED),
        "starting" => Some(YELLOW),
        _ => None,
    };
    match style {
        Some(style) => paint(color, style, &dyno.state),
        None => dyno.state.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use wharf_api_types::{DynoRelease, NamedRef};

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:05:00 UTC);

    /// `(name, state, command, size, updated_at)`; the type is the name up to its dot.
    type Row<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

    fn dynos(rows: &[Row]) -> Vec<Dyno> {
        rows.iter()
            .map(|&(name, state, command, size, updated_at)| Dyno {
                id: format!("{name}-id"),
                app: NamedRef {
                    id: "app-id".into(),
                    name: "myapp".into(),
                },
                name: name.into(),
                process_type: name.split('.').next().unwrap_or(name).into(),
                state: state.into(),
                command: command.into(),
                size: size.into(),
                attach_url: None,
                release: DynoRelease {
                    id: "release-1".into(),
                    version: 1,
                },
                created_at: updated_at.into(),
                updated_at: updated_at.into(),
                host: None,
            })
            .collect()
    }

    fn check(input: &[Row], expected: &[&str]) {
        assert_eq!(layout(&dynos(input), NOW, false), expected, "{input:?}");
    }

    const T0: &str = "2026-11-22T10:00:00Z";
    const T1: &str = "2026-11-22T10:04:59Z";

    #[test]
    fn dynos_group_by_type_and_command() {
        check(
            &[
                ("worker.1", "crashed", "python worker.py", "Basic", T0),
                ("web.2", "starting", "gunicorn app:app", "Basic", T1),
                ("web.1", "up", "gunicorn app:app", "Basic", T0),
            ],
            &[
                "=== web (Basic): gunicorn app:app (2)",
                "web.1: up 2026/11/22 10:00:00 +0000 (~ 5m ago)",
                "web.2: starting 2026/11/22 10:04:59 +0000 (~ 1s ago)",
                "",
                "=== worker (Basic): python worker.py (1)",
                "worker.1: crashed 2026/11/22 10:00:00 +0000 (~ 5m ago)",
            ],
        );
    }

    #[test]
    fn one_off_dynos_come_first_with_their_commands() {
        check(
            &[
                ("web.1", "up", "npm start", "Standard-2X", T0),
                ("run.9012", "up", "rails console", "Basic", T1),
                ("run.1234", "up", "bash", "Basic", "2026-11-22T10:04:00Z"),
            ],
            &[
                "=== run: one-off processes (2)",
                "run.1234 (Basic): up 2026/11/22 10:04:00 +0000 (~ 1m ago): bash",
                "run.9012 (Basic): up 2026/11/22 10:04:59 +0000 (~ 1s ago): rails console",
                "",
                "=== web (Standard-2X): npm start (1)",
                "web.1: up 2026/11/22 10:00:00 +0000 (~ 5m ago)",
            ],
        );
    }

    #[test]
    fn dynos_on_hosts_say_which() {
        let mut listed = dynos(&[
            ("web.1", "up", "x", "Basic", T0),
            ("web.2", "up", "x", "Basic", T0),
        ]);
        listed[1].host = Some("host-2".into());
        assert_eq!(
            layout(&listed, NOW, false),
            [
                "=== web (Basic): x (2)",
                "web.1: up 2026/11/22 10:00:00 +0000 (~ 5m ago)",
                "web.2: up 2026/11/22 10:00:00 +0000 (~ 5m ago) on host-2",
            ]
        );
    }

    #[test]
    fn dynos_sort_by_number_not_by_text() {
        check(
            &[
                ("web.10", "up", "x", "Basic", T0),
                ("web.2", "up", "x", "Basic", T0),
                ("web.1", "down", "x", "Basic", T0),
            ],
            &[
                "=== web (Basic): x (3)",
                "web.1: down 2026/11/22 10:00:00 +0000 (~ 5m ago)",
                "web.2: up 2026/11/22 10:00:00 +0000 (~ 5m ago)",
                "web.10: up 2026/11/22 10:00:00 +0000 (~ 5m ago)",
            ],
        );
    }

    #[test]
    fn a_type_mid_change_shows_one_block_per_command_and_size() {
        check(
            &[
                ("web.1", "up", "new", "Basic", T0),
                ("web.2", "up", "old", "Basic", T0),
                ("web.3", "starting", "new", "Standard-2X", T1),
            ],
            &[
                "=== web (Basic): new (1)",
                "web.1: up 2026/11/22 10:00:00 +0000 (~ 5m ago)",
                "",
                "=== web (Standard-2X): new (1)",
                "web.3: starting 2026/11/22 10:04:59 +0000 (~ 1s ago)",
                "",
                "=== web (Basic): old (1)",
                "web.2: up 2026/11/22 10:00:00 +0000 (~ 5m ago)",
            ],
        );
    }

    #[test]
    fn states_are_coloured_on_a_terminal() {
        let lines = layout(
            &dynos(&[
                ("web.1", "up", "x", "Basic", T0),
                ("web.2", "crashed", "x", "Basic", T0),
                ("web.3", "starting", "x", "Basic", T0),
                ("web.4", "idle", "x", "Basic", T0),
            ]),
            NOW,
            true,
        );
        assert_eq!(
            lines[0],
            "\u{1b}[1m=== \u{1b}[32mweb\u{1b}[39m (\u{1b}[36mBasic\u{1b}[39m): x (\u{1b}[33m4\u{1b}[39m)\u{1b}[22m"
        );
        let when = "2026/11/22 10:00:00 +0000 (~ 5m ago)";
        assert_eq!(lines[1], format!("web.1: \u{1b}[32mup\u{1b}[39m {when}"));
        assert_eq!(
            lines[2],
            format!("web.2: \u{1b}[31mcrashed\u{1b}[39m {when}")
        );
        assert_eq!(
            lines[3],
            format!("web.3: \u{1b}[33mstarting\u{1b}[39m {when}")
        );
        assert_eq!(lines[4], format!("web.4: idle {when}"));
    }
}
