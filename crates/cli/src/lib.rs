//! The `wharf` command-line client: each [`Command`] is a few calls to Wharf's HTTP API (the
//! shapes in `wharf-api-types`) and Heroku-style output. It knows nothing of the server's
//! insides; the binary parses the command line and calls [`run`].

mod app_name;
mod args;
mod attach;
mod buildpack_list;
mod client;
mod command;
mod commands;
mod config_pair;
mod credential_helper;
mod credentials;
mod dyno_list;
mod dyno_target;
mod error;
mod event_stream;
mod exit_marker;
mod format;
mod git;
mod log_lines;
mod netrc;
mod progress;
mod prompt;
mod scale;
mod settings;
mod source_archive;
mod ui;

#[cfg(test)]
mod tests;

pub use command::Command;

/// Runs one command; prints errors itself; returns the process exit code.
pub async fn run(command: Command) -> i32 {
    let settings = settings::Settings::from_process();
    let mut ui = ui::Ui::stdout(settings.no_color);
    match commands::execute(command, &settings, &mut ui).await {
        Ok(()) => 0,
        Err(error) => error::report(&error),
    }
}
