//! `logs`: asks for a log session, then prints its event stream line by line. With `--tail`
//! the stream stays open; when the connection drops it is opened again (after the server's
//! `retry`, else 3 s) with `Last-Event-ID`, until the session expires or Ctrl-C.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use reqwest::StatusCode;
use wharf_api_types::{LogSession, LogSessionCreate};

use crate::args::LogsArgs;
use crate::client::{decode, Client, EventStreamOpening};
use crate::event_stream::{EventStream, Frame};
use crate::log_lines;
use crate::settings::Settings;
use crate::ui::Ui;

/// The wait before reconnecting when the server has not sent `retry:` (the EventSource
/// default Heroku's CLI relies on).
const DEFAULT_RETRY: Duration = Duration::from_secs(3);
/// The server writes a keep-alive comment every 15 seconds; this long without a byte means
/// the connection died without being closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const TIMED_OUT: &str = "Log stream timed out. Please try again.";
/// How the server's note about skipped lines begins (a comment, so other readers skip it).
const FELL_BEHIND: &str = "this reader fell behind";

pub async fn logs(args: LogsArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = LogSessionCreate {
        lines: Some(args.num),
        tail: Some(args.tail),
        dyno: args.dyno_name.or(args.process_type),
        source: args.source,
    };
    let session: LogSession = decode(
        client.post(&["apps", &name, "log-sessions"], &body).await?,
        "the log session",
    )?;
    let color = args.force_colors || ui.color();
    tokio::select! {
        outcome = follow(&client, &session.logplex_url, args.tail, color, ui) => outcome,
        // Ctrl-C is how a tail ends: not a failure. Should no handler be installable, the
        // branch is disabled and Ctrl-C kills the process as usual.
        Ok(()) = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// How one connection ended.
enum End {
    /// The server closed the stream.
    Closed,
    /// The connection failed or went silent.
    Broken(anyhow::Error),
}

/// Reads the stream at `url` to its end; with `tail`, reconnects whenever it ends.
async fn follow(client: &Client, url: &str, tail: bool, color: bool, ui: &mut Ui) -> Result<()> {
    let mut stream = EventStream::default();
    let mut reconnecting = false;
    loop {
        if reconnecting {
            tokio::time::sleep(stream.retry().unwrap_or(DEFAULT_RETRY)).await;
            stream.reconnect();
        }
        reconnecting = true;
        let response = match client.open_event_stream(url, stream.last_event_id()).await {
            Ok(EventStreamOpening::Open(response)) => response,
            Ok(EventStreamOpening::Refused(status, _))
                if tail && matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND) =>
            {
                bail!(TIMED_OUT)
            }
            Ok(EventStreamOpening::Refused(_, error)) => return Err(error),
            // The server may be restarting; a lost session will answer 404 once it is back.
            Err(_) if tail => continue,
            Err(error) => return Err(error),
        };
        match print_stream(response, &mut stream, color, ui).await? {
            End::Closed if !tail => return Ok(()),
            End::Broken(error) if !tail => return Err(error),
            End::Closed | End::Broken(_) => {}
        }
    }
}

/// Prints the events of one connection until it ends; fails only when printing does.
async fn print_stream(
    mut response: reqwest::Response,
    stream: &mut EventStream,
    color: bool,
    ui: &mut Ui,
) -> Result<End> {
    loop {
        let chunk = match tokio::time::timeout(IDLE_TIMEOUT, response.chunk()).await {
            Err(_) => {
                let error = anyhow!("no data for {} seconds", IDLE_TIMEOUT.as_secs());
                return Ok(End::Broken(error.context("read the logs")));
            }
            Ok(Err(error)) => {
                let error = anyhow::Error::new(error.without_url()).context("read the logs");
                return Ok(End::Broken(error));
            }
            Ok(Ok(None)) => return Ok(End::Closed),
            Ok(Ok(Some(chunk))) => chunk,
        };
        for frame in stream.feed(&chunk) {
            show(frame, color, ui)?;
        }
    }
}

fn show(frame: Frame, color: bool, ui: &mut Ui) -> Result<()> {
    match frame {
        Frame::Event { data, .. } => {
            for line in data.split('\n') {
                ui.line(log_lines::render(line, color))?;
            }
            Ok(())
        }
        Frame::Comment(text) => {
            // Keep-alives (`: ping`) and other comments are for no one in particular.
            if text.starts_with(FELL_BEHIND) {
                ui.warning(&text);
            }
            Ok(())
        }
    }
}
