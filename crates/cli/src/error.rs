//! How a failed command is shown: Heroku's ` ›   Error:` lines on stderr, and the exit code.
//! Usage errors never get here: clap rejects bad arguments (exit 2) before a command runs.

use std::io::{ErrorKind, Write};

use crate::client::ApiError;

const FAILURE_EXIT_CODE: i32 = 1;

/// A command that ends with an exit code of its own (`run`: the dyno's), with nothing to say.
#[derive(Debug)]
pub struct CommandExit(pub i32);

impl std::fmt::Display for CommandExit {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "exited with status {}", self.0)
    }
}

impl std::error::Error for CommandExit {}

/// Prints `error` to stderr and returns the exit code for it.
pub fn report(error: &anyhow::Error) -> i32 {
    if let Some(CommandExit(code)) = error.downcast_ref::<CommandExit>() {
        return *code;
    }
    if is_broken_pipe(error) {
        // The reader of our output went away (`wharf config | head -1`): nothing to say.
        return 0;
    }
    let mut stderr = std::io::stderr().lock();
    for line in render(error) {
        // Nowhere left to report a failure to write to stderr.
        let _ = writeln!(stderr, "{line}");
    }
    FAILURE_EXIT_CODE
}

/// The lines shown for `error`: an API error shows its message and id, anything else its
/// whole chain of context.
pub fn render(error: &anyhow::Error) -> Vec<String> {
    let api = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ApiError>());
    let (message, id) = match api {
        Some(api) => (api.message.clone(), Some(&api.id)),
        None => (format!("{error:#}"), None),
    };
    let mut lines: Vec<String> = message
        .lines()
        .enumerate()
        .map(|(index, line)| match index {
            0 => format!(" ›   Error: {line}"),
            _ => format!(" ›   {line}"),
        })
        .collect();
    if lines.is_empty() {
        lines.push(" ›   Error:".to_string());
    }
    if let Some(id) = id {
        lines.push(format!(" ›   Error ID: {id}"));
    }
    lines
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{anyhow, Context};

    #[test]
    fn errors_render_heroku_style() {
        let check = |error: anyhow::Error, expected: &[&str]| {
            assert_eq!(render(&error), expected);
        };
        let not_found = ApiError {
            id: "not_found".into(),
            message: "Couldn't find that app.".into(),
        };
        check(
            anyhow::Error::new(not_found).context("show app"),
            &[
                " ›   Error: Couldn't find that app.",
                " ›   Error ID: not_found",
            ],
        );
        check(
            Err::<(), _>(anyhow!("no such file"))
                .context("read netrc")
                .expect_err("an error"),
            &[" ›   Error: read netrc: no such file"],
        );
        check(
            anyhow!("first\nsecond"),
            &[" ›   Error: first", " ›   second"],
        );
    }
}
