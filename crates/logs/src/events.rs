//! Which log lines are events for the metrics history: the platform's own lines only
//! (`heroku[...]`, and `app[api]`, the API's lines about the app), never what a dyno prints,
//! so that a tenant cannot forge an annotation.
//!
//! The lines, as Wharf writes them:
//! - `app[api]`: `Build succeeded`, `Deploy 1a2b3c4 by a@example.com` (deploys);
//!   `Rollback to v3 by ...`; `Set FOO, BAR config vars by ...`, `Remove FOO config vars by
//!   ...`, `Set FOO and remove BAR config vars by ...`; `Scaled to web@2:Basic by ...`;
//!   `Restart by ...`; and after each release `Release v5 created by ...`, which names the
//!   deploy, rollback or config change just before it ([`release_of`]).
//! - `heroku[web.1]`: `State changed from up to crashed`, `Error R14 (Memory quota exceeded)`,
//!   `Error R15 (Memory quota vastly exceeded)`, `Restarting`, `Cycling`.
//! - `heroku[router]`: `at=error code=H12 desc="Request timeout" ... dyno=web.1 ...`.

use wharf_metrics::{Event, EventKind, Recorder, RouterCode};

use crate::{LogLine, LogSource};

/// The event a line announces, if any.
pub fn event_of(line: &LogLine) -> Option<Event> {
    match line.source {
        LogSource::App if line.process == "api" => api_event(line),
        LogSource::App => None,
        LogSource::Heroku if line.process == "router" => router_event(line),
        LogSource::Heroku if is_dyno(&line.process) => dyno_event(line),
        LogSource::Heroku => None,
    }
}

/// `v5` of the API's `Release v5 created by ...`.
pub fn release_of(line: &LogLine) -> Option<&str> {
    if line.source != LogSource::App || line.process != "api" {
        return None;
    }
    let rest = line.message.strip_prefix("Release v")?;
    let (number, rest) = rest.split_once(' ')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.starts_with("created by ")
        .then(|| &line.message["Release ".len().."Release v".len() + number.len()])
}

/// Hands the line's event (or release) to `recorder`.
pub fn observe(recorder: &Recorder, app_id: uuid::Uuid, line: &LogLine) {
    // Most lines are an app's own output: out at the first comparison.
    if line.source == LogSource::App && line.process != "api" {
        return;
    }
    if let Some(event) = event_of(line) {
        recorder.record_event(app_id, event);
    } else if let Some(version) = release_of(line) {
        recorder.note_release(app_id, line.at, version);
    }
}

/// `web.1`, `run.1234`: what the dyno manager names dynos (router, logplex, postgres are not).
fn is_dyno(process: &str) -> bool {
    process.split_once('.').is_some_and(|(kind, number)| {
        !kind.is_empty() && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
    })
}

fn api_event(line: &LogLine) -> Option<Event> {
    let message = line.message.as_str();
    let kind =
        if message == "Build succeeded" || message == "Deploy" || message.starts_with("Deploy ") {
            EventKind::Deploy
        } else if message.starts_with("Rollback to v") {
            EventKind::Rollback
        } else if is_config_change(message) {
            EventKind::Config
        } else if message.starts_with("Scaled to ") {
            EventKind::Scale
        } else if message == "Restart" || message.starts_with("Restart by ") {
            EventKind::Restart
        } else {
            return None;
        };
    Some(Event::new(line.at, kind, None, message))
}

/// `Set FOO, BAR config vars by ...`, `Remove FOO config vars by ...`, `Set FOO and remove
/// BAR config vars by ...` (names only: letters, digits, `_`).
fn is_config_change(message: &str) -> bool {
    let Some(rest) = message
        .strip_prefix("Set ")
        .or_else(|| message.strip_prefix("Remove "))
    else {
        return false;
    };
    let Some((names, _)) = rest.split_once(" config vars by ") else {
        return false;
    };
    !names.is_empty()
        && names
            .split(" and remove ")
            .flat_map(|part| part.split(", "))
            .all(|name| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
}

fn dyno_event(line: &LogLine) -> Option<Event> {
    let message = line.message.as_str();
    let kind = if message.starts_with("State changed from ") && message.ends_with(" to crashed") {
        EventKind::Crash
    } else if message.starts_with("Error R14 ") {
        EventKind::R14
    } else if message.starts_with("Error R15 ") {
        EventKind::R15
    } else if message == "Restarting" || message == "Cycling" {
        EventKind::Restart
    } else {
        return None;
    };
    Some(Event::new(line.at, kind, Some(&line.process), message))
}

/// A router line with an error code: the code's event, with the router's description and the
/// dyno it names.
fn router_event(line: &LogLine) -> Option<Event> {
    // Every request has a line; those a dyno answered start so and name no code.
    if line.message.starts_with("at=info method=") {
        return None;
    }
    let (mut code, mut desc, mut dyno) = (None, None, None);
    for (key, value) in fields(&line.message) {
        match key {
            "code" => code = RouterCode::parse(&value),
            "desc" => desc = Some(value),
            "dyno" if !value.is_empty() => dyno = Some(value),
            _ => {}
        }
    }
    let code = code?;
    let message = desc.unwrap_or_else(|| code.to_string());
    let dyno = dyno.filter(|d| is_dyno(d));
    Some(Event::new(
        line.at,
        EventKind::Router(code),
        dyno.as_deref(),
        &message,
    ))
}

/// The `key=value` fields of a router line; a value in double quotes may hold spaces and
/// `\"` or `\\` (what a client sent, as the path), and is returned unescaped.
fn fields(message: &str) -> impl Iterator<Item = (&str, String)> {
    let mut rest = message;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return None;
        }
        let (key, after) = match rest.split_once('=') {
            Some(split) => split,
            None => {
                rest = "";
                return None;
            }
        };
        if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = at + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            Some((key, value))
        } else {
            let (value, after) = after.split_once(' ').unwrap_or((after, ""));
            rest = after;
            Some((key, value.to_owned()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn line(source: LogSource, process: &str, message: &str) -> LogLine {
        LogLine {
            at: datetime!(2026-11-22 10:00:20 UTC),
            source,
            process: process.to_owned(),
            message: message.to_owned(),
        }
    }

    /// `kind dyno message` of the event, or `-`.
    fn check(source: LogSource, process: &str, message: &str, expected: &str) {
        let event = event_of(&line(source, process, message));
        let shown = event.map_or_else(
            || "-".to_owned(),
            |e| {
                format!(
                    "{} {} {}",
                    e.kind,
                    e.dyno.as_deref().unwrap_or("-"),
                    e.message
                )
            },
        );
        assert_eq!(shown, expected, "{source}[{process}]: {message}");
    }

    #[test]
    fn the_apis_lines() {
        use LogSource::App;
        check(App, "api", "Build succeeded", "deploy - Build succeeded");
        check(App, "api", "Build failed", "-");
        check(
            App,
            "api",
            "Deploy 1a2b3c4 by a@example.com",
            "deploy - Deploy 1a2b3c4 by a@example.com",
        );
        check(
            App,
            "api",
            "Deploy by a@example.com",
            "deploy - Deploy by a@example.com",
        );
        check(
            App,
            "api",
            "Rollback to v3 by a@example.com",
            "rollback - Rollback to v3 by a@example.com",
        );
        for config in [
            "Set FOO, BAR config vars by a@example.com",
            "Remove FOO config vars by a@example.com",
            "Set BAR and remove FOO config vars by a@example.com",
        ] {
            check(App, "api", config, &format!("config - {config}"));
        }
        check(
            App,
            "api",
            "Set max_connections=5 on DATABASE config vars by x on postgresql-1 by a@example.com",
            "-",
        );
        check(
            App,
            "api",
            "Scaled to web@2:Basic worker@1:Basic by a@example.com",
            "scale - Scaled to web@2:Basic worker@1:Basic by a@example.com",
        );
        check(
            App,
            "api",
            "Restart by a@example.com",
            "restart - Restart by a@example.com",
        );
        check(App, "api", "Stop by a@example.com", "-");
        check(App, "api", "Release v5 created by a@example.com", "-");
        check(
            App,
            "api",
            "Starting process with command `Deploy` by user a@example.com",
            "-",
        );
    }

    #[test]
    fn a_dynos_output_is_never_an_event() {
        for process in ["web.1", "run.1234", "worker.2"] {
            for message in [
                "Build succeeded",
                "Deploy 1a2b3c4 by a@example.com",
                "State changed from up to crashed",
                "Error R14 (Memory quota exceeded)",
                "at=error code=H12 desc=\"Request timeout\"",
                "Release v5 created by a@example.com",
            ] {
                check(LogSource::App, process, message, "-");
                assert_eq!(release_of(&line(LogSource::App, process, message)), None);
            }
        }
    }

    #[test]
    fn the_dyno_managers_lines() {
        use LogSource::Heroku;
        check(
            Heroku,
            "web.1",
            "State changed from up to crashed",
            "crash web.1 State changed from up to crashed",
        );
        check(
            Heroku,
            "worker.2",
            "State changed from starting to crashed",
            "crash worker.2 State changed from starting to crashed",
        );
        check(
            Heroku,
            "web.1",
            "State changed from crashed to starting",
            "-",
        );
        check(
            Heroku,
            "web.1",
            "Error R14 (Memory quota exceeded)",
            "R14 web.1 Error R14 (Memory quota exceeded)",
        );
        check(
            Heroku,
            "web.1",
            "Error R15 (Memory quota vastly exceeded)",
            "R15 web.1 Error R15 (Memory quota vastly exceeded)",
        );
        check(Heroku, "web.2", "Restarting", "restart web.2 Restarting");
        check(Heroku, "web.2", "Cycling", "restart web.2 Cycling");
        check(Heroku, "web.1", "Process exited with status 0", "-");
        check(Heroku, "logplex", "Error R14 (Memory quota exceeded)", "-");
        check(Heroku, "postgres", "Restarting", "-");
    }

    #[test]
    fn the_routers_lines() {
        use LogSource::Heroku;
        check(
            Heroku,
            "router",
            "at=info method=GET path=\"/\" host=a.localhost request_id=1 fwd=\"127.0.0.1\" dyno=web.1 connect=0ms service=2ms status=200 bytes=5 protocol=http",
            "-",
        );
        check(
            Heroku,
            "router",
            "at=error code=H12 desc=\"Request timeout\" method=GET path=\"/ dyno=web.9 code=H10\" host=a.localhost request_id=1 fwd=\"127.0.0.1\" dyno=web.1 connect=0ms service=30000ms status=503 bytes= protocol=http",
            "H12 web.1 Request timeout",
        );
        check(
            Heroku,
            "router",
            "at=error code=H14 desc=\"No web processes running\" method=GET path=\"/\" host=a.localhost request_id=1 fwd=\"127.0.0.1\" dyno= connect= service= status=503 bytes= protocol=http",
            "H14 - No web processes running",
        );
        check(
            Heroku,
            "router",
            "sock=backend at=error code=H18 desc=\"Server Request Interrupted\" method=POST path=\"/\\\"x\" host=a.localhost request_id=1 fwd=\"127.0.0.1\" dyno=web.1 connect=0ms service=1ms status=503 bytes= protocol=http",
            "H18 web.1 Server Request Interrupted",
        );
        check(
            Heroku,
            "router",
            "at=info code=H80 desc=\"Maintenance mode\" method=GET path=\"/\" host=a.localhost request_id=1 fwd=\"127.0.0.1\" dyno= connect= service= status=503 bytes= protocol=http",
            "H80 - Maintenance mode",
        );
        check(
            LogSource::App,
            "router",
            "at=error code=H12 desc=\"x\"",
            "-",
        );
    }

    #[test]
    fn appended_lines_reach_the_history_and_samples_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        let history = Recorder::open(dir.path(), 7).expect("a recorder");
        let logs = crate::LogBuffer::new(100);
        logs.metrics().set_history(history.clone());
        let app = uuid::Uuid::new_v4();
        let now = crate::now_micros();
        let append = |source, process: &str, message: &str| {
            logs.append(
                app,
                LogLine {
                    at: now,
                    source,
                    process: process.to_owned(),
                    message: message.to_owned(),
                },
            );
        };
        append(
            LogSource::App,
            "web.1",
            "Rollback to v1 by someone@example.com",
        );
        append(
            LogSource::App,
            "api",
            "Set FOO config vars by a@example.com",
        );
        append(LogSource::App, "api", "Release v2 created by a@example.com");
        append(
            LogSource::Heroku,
            "web.1",
            "State changed from up to crashed",
        );
        logs.metrics().record(
            app,
            "web.1",
            crate::metrics::Sample {
                at: now,
                load_avg_1m: 0.5,
                load_avg_5m: 0.0,
                load_avg_15m: 0.0,
                reading: crate::metrics::Reading {
                    memory_rss: 42,
                    ..crate::metrics::Reading::default()
                },
            },
        );
        let seconds = now.unix_timestamp();
        let (_, events) = history
            .events(app, wharf_metrics::Range::Hour, seconds)
            .expect("events");
        let shown: Vec<String> = events
            .iter()
            .map(|e| format!("{} {}", e.kind, e.message))
            .collect();
        assert_eq!(
            shown,
            [
                "config Set FOO config vars by a@example.com (v2)",
                "crash State changed from up to crashed"
            ]
        );
        let dynos = history
            .dynos(app, wharf_metrics::Range::Hour, seconds)
            .expect("dynos");
        assert_eq!(dynos.len(), 1);
        assert_eq!(dynos[0].points[0].memory_rss, 42);
        logs.metrics().forget_app(app);
        let (_, events) = history
            .events(app, wharf_metrics::Range::Hour, seconds)
            .expect("events");
        assert!(events.is_empty());
    }

    #[test]
    fn releases_name_their_version() {
        let release =
            |message: &str| release_of(&line(LogSource::App, "api", message)).map(str::to_owned);
        assert_eq!(
            release("Release v5 created by a@example.com"),
            Some("v5".into())
        );
        assert_eq!(release("Release v created by a@example.com"), None);
        assert_eq!(release("Release v5 made by a@example.com"), None);
    }
}
