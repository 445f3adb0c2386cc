//! The Procfile: `name: command` lines, Heroku's rules. Comments and blank lines are ignored; a
//! malformed line fails the build with its line number.

use wharf_model::{ProcessType, ProcessTypes};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Procfile line {line}: {message}")]
pub struct ProcfileError {
    pub line: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<ProcessTypes, ProcfileError> {
    let mut types = ProcessTypes::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message: String| ProcfileError { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (name, command) = trimmed.split_once(':').ok_or_else(|| {
            error(format!(
                "expected `name: command`, found {trimmed:?} (process types look like `web: gunicorn app:app`)"
            ))
        })?;
        let (name, command) = (name.trim(), command.trim());
        check_process(name, command).map_err(error)?;
        if types.insert(name.to_owned(), command.to_owned()).is_some() {
            return Err(error(format!("process type {name} is defined twice")));
        }
    }
    Ok(types)
}

/// A process type as the Procfile and a buildpack's `bin/release` may declare it: a valid
/// name, and a command that a process's arguments can hold.
pub(crate) fn check_process(name: &str, command: &str) -> Result<(), String> {
    ProcessType::parse(name).map_err(|invalid| invalid.0)?;
    if command.is_empty() {
        return Err(format!("process type {name} has no command"));
    }
    if command.contains('\0') {
        return Err(format!(
            "the command of process type {name} has a NUL character, which no process's \
             arguments can hold"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(text: &str, expected: Result<&[(&str, &str)], usize>) {
        let parsed = parse(text);
        match expected {
            Ok(pairs) => {
                let expected: ProcessTypes = pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(parsed, Ok(expected), "{text:?}");
            }
            Err(line) => assert_eq!(parsed.map_err(|e| e.line), Err(line), "{text:?}"),
        }
    }

    #[test]
    fn heroku_rules() {
        check(
            "web: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: celery -A tasks worker\n",
            Ok(&[
                ("web", "gunicorn app:app --bind 0.0.0.0:$PORT"),
                ("worker", "celery -A tasks worker"),
            ]),
        );
        check(
            "# comment\n\n  web:   npm start  \r\n",
            Ok(&[("web", "npm start")]),
        );
        check(
            "release: ./migrate\nclock_2-x: run",
            Ok(&[("clock_2-x", "run"), ("release", "./migrate")]),
        );
        check("", Ok(&[]));
        check("web npm start", Err(1));
        check("web: ok\n\nbad line", Err(3));
        check("web:", Err(1));
        check("we b: x", Err(1));
        check("web: a\nweb: b", Err(2));
        check(": command", Err(1));
    }

    #[test]
    fn messages_name_the_line_and_the_fix() {
        let err = parse("web: ok\nworker celery").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.to_string()
                .starts_with("Procfile line 2: expected `name: command`"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn well_formed_lines_round_trip(
            entries in proptest::collection::btree_map("[a-z][a-z0-9_-]{0,10}", "[a-z][ -~]{0,30}", 0..6)
        ) {
            let text: String = entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
            let expected: ProcessTypes = entries
                .iter()
                .map(|(k, v)| (k.clone(), v.trim().to_owned()))
                .collect();
            prop_assert_eq!(parse(&text), Ok(expected));
        }
    }
}
