//! The record of one request as it goes through the router, which ends in exactly one router
//! line: when the response ends, when the router answers with an error, or, when it is dropped
//! unfinished (hyper drops a request's future when its client goes away), as H27.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use uuid::Uuid;

use crate::error::{ClientError, RouterError};
use crate::logline::RouterLogLine;

/// Where router lines go: the app's id and the line.
pub type LogSink = Arc<dyn Fn(Uuid, RouterLogLine) + Send + Sync>;

pub struct RequestRecord {
    sink: LogSink,
    app_id: Uuid,
    line: Option<RouterLogLine>,
    sent_at: Option<Instant>,
}

impl RequestRecord {
    /// `line` has the request's fields; dyno, timings, status and bytes are filled in later.
    pub fn new(sink: LogSink, app_id: Uuid, line: RouterLogLine) -> RequestRecord {
        RequestRecord {
            sink,
            app_id,
            line: Some(line),
            sent_at: None,
        }
    }

    fn line(&mut self) -> &mut RouterLogLine {
        self.line
            .as_mut()
            .expect("a record's line is taken only when the record ends")
    }

    /// The request goes to `dyno`, which took `connect` to connect to.
    pub fn dyno(&mut self, dyno: &str, connect: Duration) {
        let line = self.line();
        if line.dyno.as_deref() != Some(dyno) {
            line.dyno = Some(dyno.to_owned());
        }
        line.connect = Some(connect);
    }

    /// The request is being sent to the dyno now (service time starts).
    pub fn sending(&mut self) {
        self.sent_at = Some(Instant::now());
    }

    /// The dyno answered with `status`.
    pub fn status(&mut self, status: StatusCode) {
        self.line().status = status.as_u16();
    }

    /// The response ended (or was cut short by the client after `bytes`).
    pub fn served(mut self, bytes: u64) {
        let line = self.line();
        line.bytes = Some(bytes);
        self.write(None);
    }

    /// The request failed with `error`, after `bytes` of the dyno's response body if any got
    /// through.
    pub fn fail(mut self, error: RouterError, bytes: Option<u64>) {
        let sent = self.sent_at.is_some();
        let line = self.line();
        line.status = error.status().as_u16();
        line.bytes = if sent { Some(bytes.unwrap_or(0)) } else { None };
        self.write(Some(error));
    }

    fn write(&mut self, error: Option<RouterError>) {
        if let Some(mut line) = self.line.take() {
            line.error = error;
            line.service = self.sent_at.map(|at| at.elapsed());
            (self.sink)(self.app_id, line);
        }
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        if self.line.is_some() {
            let sent = self.sent_at.is_some();
            let line = self.line();
            line.status = RouterError::from(ClientError::Interrupted)
                .status()
                .as_u16();
            line.bytes = sent.then_some(0);
            self.write(Some(ClientError::Interrupted.into()));
        }
    }
}
