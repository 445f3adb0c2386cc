//! Running a command line against a canned server with captured output.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Parser;

use super::server::{Canned, Recorded, Server};
use crate::command::Command;
use crate::settings::Settings;
use crate::ui::Ui;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Parses `wharf <arguments>` as the binary would.
pub fn parse(arguments: &[&str]) -> Result<Command, clap::Error> {
    Cli::try_parse_from(std::iter::once("wharf").chain(arguments.iter().copied()))
        .map(|cli| cli.command)
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("buffer lock").clone()).expect("UTF-8 output")
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub result: anyhow::Result<()>,
    pub requests: Vec<Recorded>,
}

impl Outcome {
    /// What `run` would print on stderr.
    pub fn error_lines(&self) -> Vec<String> {
        match &self.result {
            Ok(()) => Vec::new(),
            Err(error) => crate::error::render(error),
        }
    }

    pub fn request(&self, route: &str) -> &Recorded {
        self.requests
            .iter()
            .find(|request| request.route == route)
            .unwrap_or_else(|| panic!("no {route} among {:?}", self.requests))
    }
}

/// Settings for a logged-in user of `api_url` with no netrc and no default app.
pub fn settings(api_url: &str) -> Settings {
    Settings {
        api_url: api_url.to_string(),
        api_key: Some("test-key".to_string()),
        app: None,
        home: None,
        no_color: true,
        ca_file: None,
    }
}

/// Runs `wharf <arguments>` against a server answering with `responses`.
pub async fn run(arguments: &[&str], responses: Vec<Canned>) -> Outcome {
    let server = Server::start(responses);
    let settings = settings(&server.url);
    run_with(arguments, &settings, server).await
}

pub async fn run_with(arguments: &[&str], settings: &Settings, server: Server) -> Outcome {
    let (stdout, stderr, result) = capture(arguments, settings).await;
    // On success every canned answer was used; on failure some may never be.
    let requests = if result.is_ok() {
        server.finish()
    } else {
        server.requests()
    };
    Outcome {
        stdout,
        stderr,
        result,
        requests,
    }
}

/// Runs `wharf <arguments>`; returns what it printed on stdout and how it ended.
pub async fn execute(arguments: &[&str], settings: &Settings) -> (String, anyhow::Result<()>) {
    let (stdout, _, result) = capture(arguments, settings).await;
    (stdout, result)
}

/// Runs `wharf <arguments>`; returns what it printed on stdout and stderr (warnings; errors
/// are in the result), and how it ended.
async fn capture(arguments: &[&str], settings: &Settings) -> (String, String, anyhow::Result<()>) {
    let command = parse(arguments).expect("a valid command line");
    let out = Buffer::default();
    let err = Buffer::default();
    let mut ui = Ui::plain(Box::new(out.clone()), Box::new(err.clone()));
    let result = crate::commands::execute(command, settings, &mut ui).await;
    (out.text(), err.text(), result)
}

/// A home directory with no `.netrc` yet.
pub fn home() -> (tempfile::TempDir, PathBuf) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().to_path_buf();
    (directory, path)
}
