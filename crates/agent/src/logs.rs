//! Shipping the host's log lines to the control plane's log router.
//!
//! The host's log buffer (each app's ring of recent lines, numbered) is the bounded buffer:
//! the shipper keeps, per app, the number of the last line the control plane took, and sends
//! what came after it every [`SHIP_INTERVAL`]. While the control plane cannot be reached the
//! cursor stays put; once the ring has moved past it, the lines in between are gone and the
//! next batch says how many (the control plane logs an `L10` line with the count).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_api_types::{AgentAppLog, AgentLogLine, AgentLogs, AgentRequest, AgentSample};
use wharf_dynos::LogBuffer;
use wharf_logs::metrics::Outgoing;
use wharf_logs::Outbox;

use crate::client::ControlPlane;

/// How often new lines go to the control plane.
pub const SHIP_INTERVAL: Duration = Duration::from_millis(250);
/// The most lines of one app in one batch (the rest go in the next).
const BATCH_LINES: usize = 2000;
/// The most metrics samples in one batch.
const BATCH_SAMPLES: usize = 500;
/// The most router requests in one batch.
const BATCH_REQUESTS: usize = 5000;
/// The most router requests a host keeps for the control plane while it cannot reach it.
pub const OUTBOX_REQUESTS: usize = 50_000;

/// Per app, the number of the last line the control plane took.
#[derive(Debug, Default)]
pub struct Cursors {
    shipped: HashMap<Uuid, u64>,
}

impl Cursors {
    /// The lines after each app's cursor, and the numbers the cursors move to if they are
    /// taken.
    pub fn batch(&self, logs: &LogBuffer) -> (AgentLogs, HashMap<Uuid, u64>) {
        let mut batch = AgentLogs::default();
        let mut next = HashMap::new();
        for app in logs.app_ids() {
            let after = self.shipped.get(&app).copied().unwrap_or(0);
            let since = logs.since(app, after);
            if since.missed == 0 && since.entries.is_empty() {
                continue;
            }
            let entries = &since.entries[..since.entries.len().min(BATCH_LINES)];
            let last = entries
                .last()
                .map_or(after + since.missed, |entry| entry.seq);
            next.insert(app, last);
            batch.apps.push(AgentAppLog {
                app: app.to_string(),
                dropped: since.missed,
                lines: entries
                    .iter()
                    .map(|entry| AgentLogLine {
                        at: entry.at.format(&Rfc3339).expect("UTC times always format"),
                        source: entry.source.as_str().to_owned(),
                        process: entry.process.clone(),
                        message: entry.message.clone(),
                    })
                    .collect(),
            });
        }
        (batch, next)
    }

    /// The control plane took the batch that moved the cursors to `next`.
    pub fn taken(&mut self, next: HashMap<Uuid, u64>) {
        self.shipped.extend(next);
    }
}

/// Sends the host's new lines, its dynos' metrics samples and its router's requests every
/// [`SHIP_INTERVAL`] until `shutdown`, then once more (the dynos' last lines). Samples and
/// requests that do not get through wait for the next batch, as many as their outboxes hold.
pub async fn ship(
    control_plane: ControlPlane,
    logs: LogBuffer,
    requests: Arc<Outbox<RouterRequest>>,
    shutdown: CancellationToken,
) {
    logs.metrics().ship_samples();
    let outgoing = logs
        .metrics()
        .outgoing()
        .expect("samples are shipped from now on");
    let mut cursors = Cursors::default();
    let mut tick = tokio::time::interval(SHIP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut last = false;
    loop {
        if last {
            return;
        }
        tokio::select! {
            () = shutdown.cancelled() => last = true,
            _ = tick.tick() => {}
        }
        let (mut batch, next) = cursors.batch(&logs);
        let samples = outgoing.take(BATCH_SAMPLES);
        let finished = requests.take(BATCH_REQUESTS);
        if batch.apps.is_empty() && samples.is_empty() && finished.is_empty() {
            continue;
        }
        batch.samples = samples.iter().map(agent_sample).collect();
        batch.requests = finished.iter().map(RouterRequest::agent_request).collect();
        let sent = control_plane.post_logs(&batch).await;
        if sent.is_err() {
            outgoing.requeue(samples);
            requests.requeue(finished);
        }
        match sent {
            Ok(()) => {
                cursors.taken(next);
                if failing {
                    tracing::info!("shipping log lines to the control plane again");
                    failing = false;
                }
            }
            Err(error) => {
                if !failing {
                    tracing::warn!("ship log lines to the control plane: {error:#}");
                    failing = true;
                }
            }
        }
    }
}

/// A request the host's router finished, as it waits for the control plane: what
/// [`AgentRequest`] carries, kept without an allocation on the router's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterRequest {
    pub app: Uuid,
    /// When it finished, in Unix seconds.
    pub at: i64,
    pub status: u16,
    /// Connect plus service time, in microseconds; none when no dyno was tried.
    pub total_us: Option<u64>,
    /// The router error code (`H12`), if any.
    pub code: Option<&'static str>,
}

impl RouterRequest {
    /// The request as the control plane takes it.
    fn agent_request(&self) -> AgentRequest {
        AgentRequest {
            app: self.app.to_string(),
            at: self.at,
            status: self.status,
            total_us: self.total_us,
            code: self.code.map(str::to_owned),
        }
    }
}

/// A sample as the control plane takes it.
fn agent_sample(outgoing: &Outgoing) -> AgentSample {
    let (sample, reading) = (&outgoing.sample, &outgoing.sample.reading);
    AgentSample {
        app: outgoing.app_id.to_string(),
        dyno: outgoing.dyno.clone(),
        dyno_id: outgoing.dyno_id.to_string(),
        at: sample.at.format(&Rfc3339).expect("UTC times always format"),
        load_avg_1m: sample.load_avg_1m,
        load_avg_5m: sample.load_avg_5m,
        load_avg_15m: sample.load_avg_15m,
        cpu_time_ns: reading.cpu_time_ns,
        memory_total: reading.memory_total,
        memory_rss: reading.memory_rss,
        memory_cache: reading.memory_cache,
        memory_swap: reading.memory_swap,
        memory_pgpgin: reading.memory_pgpgin,
        memory_pgpgout: reading.memory_pgpgout,
        memory_quota: reading.memory_quota,
    }
}

#[cfg(test)]
mod tests {
    use wharf_dynos::{LogLine, LogSource};

    use super::*;

    fn line(n: usize) -> LogLine {
        LogLine::now(LogSource::App, "web.1", format!("line {n}"))
    }

    #[test]
    fn each_line_ships_once_and_what_the_ring_lost_is_counted() {
        let logs = LogBuffer::new(3);
        let app = Uuid::from_u128(1);
        let mut cursors = Cursors::default();
        logs.extend(app, (1..=2).map(line));
        let (batch, next) = cursors.batch(&logs);
        assert_eq!(batch.apps[0].dropped, 0);
        assert_eq!(batch.apps[0].lines.len(), 2);
        // Not taken (the control plane was away): the same lines again, and more.
        logs.extend(app, (3..=3).map(line));
        let (again, _) = cursors.batch(&logs);
        assert_eq!(again.apps[0].lines.len(), 3);
        cursors.taken(next);
        let (rest, next) = cursors.batch(&logs);
        let messages: Vec<&str> = rest.apps[0]
            .lines
            .iter()
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(messages, ["line 3"]);
        cursors.taken(next);
        assert!(cursors.batch(&logs).0.apps.is_empty());
        // Five more lines into a ring of three: two were lost before they were shipped.
        logs.extend(app, (4..=8).map(line));
        let (overflowed, next) = cursors.batch(&logs);
        assert_eq!(overflowed.apps[0].dropped, 2);
        assert_eq!(overflowed.apps[0].lines.len(), 3);
        cursors.taken(next);
        assert!(cursors.batch(&logs).0.apps.is_empty());
    }
}
