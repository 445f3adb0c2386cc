//! Where command output goes and how it looks: colour and table alignment only on a
//! terminal, never with `NO_COLOR`; progress bars only when stderr is a terminal.

use std::future::Future;
use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::format::{self, Style, BOLD, GREEN, MAGENTA};

pub struct Ui {
    out: Box<dyn Write + Send>,
    /// Warnings that must not mix with the output (stderr).
    err: Box<dyn Write + Send>,
    terminal: bool,
    color: bool,
    progress: bool,
}

impl Ui {
    /// Standard output, styled when it is a terminal and `NO_COLOR` is unset.
    pub fn stdout(no_color: bool) -> Self {
        let terminal = std::io::stdout().is_terminal();
        Self {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            terminal,
            color: terminal && !no_color,
            progress: std::io::stderr().is_terminal(),
        }
    }

    /// Plain output into `out` and warnings into `err`, as when piped.
    #[cfg(test)]
    pub fn plain(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            err,
            terminal: false,
            color: false,
            progress: false,
        }
    }

    /// Whether output goes to a terminal (tables align, long text is cut).
    pub fn terminal(&self) -> bool {
        self.terminal
    }

    /// Whether output is styled: a terminal, and `NO_COLOR` unset.
    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether progress bars may be drawn on stderr.
    pub fn progress(&self) -> bool {
        self.progress
    }

    /// Bytes as they come (build output), flushed at once.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .and_then(|()| self.out.flush())
            .context("write to stdout")
    }

    pub fn line(&mut self, text: impl AsRef<str>) -> Result<()> {
        writeln!(self.out, "{}", text.as_ref()).context("write to stdout")
    }

    /// ` ›   Warning: text` on stderr, as Heroku's CLI warns.
    pub fn warning(&mut self, text: &str) {
        // A warning that cannot be shown is no reason to stop the command.
        let _ = writeln!(self.err, " ›   Warning: {text}").and_then(|()| self.err.flush());
    }

    pub fn lines(&mut self, lines: impl IntoIterator<Item = String>) -> Result<()> {
        for line in lines {
            self.line(line)?;
        }
        Ok(())
    }

    /// Rows as a table, aligned on a terminal.
    pub fn table(&mut self, rows: &[Vec<String>]) -> Result<()> {
        let lines = format::table(rows, self.terminal);
        self.lines(lines)
    }

    /// `Key: value` lines, values aligned.
    pub fn key_values(&mut self, pairs: &[(String, String)]) -> Result<()> {
        self.lines(format::key_values(pairs))
    }

    /// A response body, pretty-printed, for `--json`.
    pub fn json(&mut self, value: &Value) -> Result<()> {
        let text = serde_json::to_string_pretty(value).context("encode JSON")?;
        self.line(text)
    }

    /// Prints `label... `, runs `work`, and ends the line with `!` if it fails; on success
    /// the caller finishes the line (`done`, `done, v5`).
    pub async fn action<T>(
        &mut self,
        label: &str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        write!(self.out, "{label}... ").context("write to stdout")?;
        self.out.flush().context("write to stdout")?;
        match work.await {
            Ok(value) => Ok(value),
            Err(error) => {
                self.line("!")?;
                Err(error)
            }
        }
    }

    /// `⬢ name`, in Heroku's app colour.
    pub fn app(&self, name: &str) -> String {
        self.paint(MAGENTA, &format!("⬢ {name}"))
    }

    /// `=== text`.
    pub fn header(&self, text: &str) -> String {
        self.paint(BOLD, &format!("=== {text}"))
    }

    /// A config var name.
    pub fn key(&self, name: &str) -> String {
        self.paint(GREEN, name)
    }

    /// What is in use now (the app's stack), in Heroku's green.
    pub fn current(&self, text: &str) -> String {
        self.paint(GREEN, text)
    }

    fn paint(&self, style: Style, text: &str) -> String {
        format::paint(self.color, style, text)
    }
}
