//! Every app's recent lines, numbered, and a broadcast of every new line.
//!
//! Each app's lines carry a sequence number, 1, 2, 3, ... in the order they were appended
//! (restored lines keep theirs, so numbering goes on across restarts). A reader that knows the
//! last number it saw resumes exactly after it ([`LogBuffer::since`]) and learns how many lines
//! it missed when the ring no longer holds them.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::drain::DrainQueue;
use crate::metrics::Metrics;
use crate::LogLine;

/// How many lines a live tail may fall behind before it has to catch up from the ring.
pub const BROADCAST_CAPACITY: usize = 4096;

/// A line with its number in its app's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1 for the app's first line, then one more for each line; never reused.
    pub seq: u64,
    pub line: LogLine,
}

impl Deref for Entry {
    type Target = LogLine;

    fn deref(&self) -> &LogLine {
        &self.line
    }
}

/// What [`LogBuffer::since`] finds after a sequence number.
#[derive(Debug, Default)]
pub struct Since {
    /// Lines after the number that the ring no longer holds.
    pub missed: u64,
    /// The lines after it that it holds, oldest first.
    pub entries: Vec<Arc<Entry>>,
}

/// The last lines of every app, and a broadcast of every new line. Cheap to clone.
///
/// [`LogBuffer::append`] never waits: not for readers (a live tail that falls behind gets
/// `RecvError::Lagged` and catches up from the ring with [`LogBuffer::since`]), not for drains
/// (each has its own bounded queue that drops its oldest line when full), not for the disk (the
/// persistence task copies new lines out of the ring on its own schedule).
#[derive(Clone)]
pub struct LogBuffer {
    inner: Arc<Inner>,
}

struct Inner {
    lines_per_app: usize,
    apps: Mutex<HashMap<Uuid, AppLog>>,
    live: broadcast::Sender<(Uuid, Arc<Entry>)>,
    /// Apps forgotten since the persistence task last looked, whose files must go.
    forgotten: Mutex<Vec<Uuid>>,
    metrics: Metrics,
}

pub(crate) struct AppLog {
    pub ring: VecDeque<Arc<Entry>>,
    /// The number the next line gets.
    pub next_seq: u64,
    pub drains: Vec<Arc<DrainQueue>>,
    /// The highest number written to disk.
    pub persisted_seq: u64,
    /// Lines in the app's file on disk (compacted when it passes twice the ring).
    pub file_lines: usize,
}

impl Default for AppLog {
    fn default() -> AppLog {
        AppLog {
            ring: VecDeque::new(),
            next_seq: 1,
            drains: Vec::new(),
            persisted_seq: 0,
            file_lines: 0,
        }
    }
}

impl LogBuffer {
    /// Keeps the last `lines_per_app` lines of each app (at least one).
    pub fn new(lines_per_app: usize) -> LogBuffer {
        let (live, _) = broadcast::channel(BROADCAST_CAPACITY);
        LogBuffer {
            inner: Arc::new(Inner {
                lines_per_app: lines_per_app.max(1),
                apps: Mutex::new(HashMap::new()),
                live,
                forgotten: Mutex::new(Vec::new()),
                metrics: Metrics::default(),
            }),
        }
    }

    /// The runtime metrics of the apps' dynos, kept beside their logs.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn lines_per_app(&self) -> usize {
        self.inner.lines_per_app
    }

    pub(crate) fn apps(&self) -> MutexGuard<'_, HashMap<Uuid, AppLog>> {
        self.inner.apps.lock().expect("log buffer lock poisoned")
    }

    /// Adds a line to `app_id`'s log: its ring (dropping the oldest when full), its drains and
    /// the live tails. Returns the line's number.
    pub fn append(&self, app_id: Uuid, line: LogLine) -> u64 {
        let mut last = 0;
        self.append_all(app_id, std::iter::once(line), |seq| last = seq);
        last
    }

    /// Adds several lines at once (one lock for all: what a busy dyno's output pump uses).
    pub fn extend(&self, app_id: Uuid, lines: impl IntoIterator<Item = LogLine>) {
        self.append_all(app_id, lines, |_| {});
    }

    fn append_all(
        &self,
        app_id: Uuid,
        lines: impl IntoIterator<Item = LogLine>,
        mut numbered: impl FnMut(u64),
    ) {
        let history = self.inner.metrics.history();
        let mut apps = self.apps();
        let app = apps.entry(app_id).or_default();
        for line in lines {
            // The platform's events for the metrics history; in order, under the lock, so
            // that a release line follows the change it names.
            if let Some(history) = history {
                crate::events::observe(history, app_id, &line);
            }
            let entry = Arc::new(Entry {
                seq: app.next_seq,
                line,
            });
            app.next_seq += 1;
            numbered(entry.seq);
            while app.ring.len() >= self.inner.lines_per_app {
                app.ring.pop_front();
            }
            app.ring.push_back(entry.clone());
            for drain in &app.drains {
                drain.push(entry.clone());
            }
            // No receivers is fine: nobody is tailing.
            let _ = self.inner.live.send((app_id, entry));
        }
    }

    /// The last `n` lines of `app_id`, oldest first.
    pub fn recent(&self, app_id: Uuid, n: usize) -> Vec<LogLine> {
        self.recent_entries(app_id, n)
            .iter()
            .map(|entry| entry.line.clone())
            .collect()
    }

    /// The last `n` lines of `app_id` with their numbers, oldest first.
    pub fn recent_entries(&self, app_id: Uuid, n: usize) -> Vec<Arc<Entry>> {
        let apps = self.apps();
        apps.get(&app_id).map_or_else(Vec::new, |app| {
            app.ring
                .iter()
                .skip(app.ring.len().saturating_sub(n))
                .cloned()
                .collect()
        })
    }

    /// The lines of `app_id` numbered after `seq`, and how many of those the ring no longer
    /// holds.
    pub fn since(&self, app_id: Uuid, seq: u64) -> Since {
        let apps = self.apps();
        let Some(app) = apps.get(&app_id) else {
            return Since::default();
        };
        let first = app.ring.front().map_or(app.next_seq, |entry| entry.seq);
        let missed = first.saturating_sub(seq.saturating_add(1));
        // Numbers in the ring are consecutive: index by offset rather than search.
        let skip =
            usize::try_from(seq.saturating_add(1).saturating_sub(first)).unwrap_or(usize::MAX);
        Since {
            missed,
            entries: app.ring.iter().skip(skip).cloned().collect(),
        }
    }

    /// The apps that have lines.
    pub fn app_ids(&self) -> Vec<Uuid> {
        self.apps().keys().copied().collect()
    }

    /// Every line appended from now on, of every app.
    pub fn subscribe(&self) -> broadcast::Receiver<(Uuid, Arc<Entry>)> {
        self.inner.live.subscribe()
    }

    /// Forgets an app's lines (when it is deleted). Its drains stop receiving lines.
    pub fn forget(&self, app_id: Uuid) {
        let removed = self.apps().remove(&app_id);
        if removed.is_some_and(|app| app.persisted_seq > 0) {
            self.inner
                .forgotten
                .lock()
                .expect("log buffer lock poisoned")
                .push(app_id);
        }
    }

    pub(crate) fn take_forgotten(&self) -> Vec<Uuid> {
        std::mem::take(
            &mut *self
                .inner
                .forgotten
                .lock()
                .expect("log buffer lock poisoned"),
        )
    }

    /// Sends the app's lines from now on to `queue` too.
    pub(crate) fn attach(&self, app_id: Uuid, queue: Arc<DrainQueue>) {
        let mut apps = self.apps();
        apps.entry(app_id).or_default().drains.push(queue);
    }

    pub(crate) fn detach(&self, app_id: Uuid, queue: &Arc<DrainQueue>) {
        if let Some(app) = self.apps().get_mut(&app_id) {
            app.drains.retain(|q| !Arc::ptr_eq(q, queue));
        }
    }

    /// Puts lines read back from disk in front of what the app has (renumbering anything
    /// appended before the restore, so numbers stay consecutive).
    pub(crate) fn restore(&self, app_id: Uuid, loaded: Vec<Entry>) {
        let Some(last) = loaded.last().map(|entry| entry.seq) else {
            return;
        };
        let mut apps = self.apps();
        let app = apps.entry(app_id).or_default();
        let newer: Vec<LogLine> = app.ring.drain(..).map(|entry| entry.line.clone()).collect();
        app.file_lines = loaded.len();
        app.persisted_seq = last;
        app.ring.extend(loaded.into_iter().map(Arc::new));
        app.next_seq = last + 1;
        for line in newer {
            let seq = app.next_seq;
            app.next_seq += 1;
            app.ring.push_back(Arc::new(Entry { seq, line }));
        }
        while app.ring.len() > self.inner.lines_per_app {
            app.ring.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogSource;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn line(message: &str) -> LogLine {
        LogLine {
            at: datetime!(2026-11-22 10:00:00.123456 UTC),
            source: LogSource::App,
            process: "web.1".to_owned(),
            message: message.to_owned(),
        }
    }

    fn messages(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.message).collect()
    }

    #[test]
    fn ring_keeps_the_last_lines_per_app() {
        let buffer = LogBuffer::new(3);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut tail = buffer.subscribe();
        for n in 0..5 {
            buffer.append(a, line(&n.to_string()));
        }
        buffer.append(b, line("b"));
        assert_eq!(messages(buffer.recent(a, 10)), ["2", "3", "4"]);
        assert_eq!(messages(buffer.recent(a, 2)), ["3", "4"]);
        assert_eq!(messages(buffer.recent(b, 10)), ["b"]);
        assert!(buffer.recent(Uuid::nil(), 10).is_empty());
        let (app, first) = tail.try_recv().unwrap();
        assert_eq!((app, first.seq, first.message.as_str()), (a, 1, "0"));
        buffer.forget(a);
        assert!(buffer.recent(a, 10).is_empty());
    }

    #[test]
    fn appending_never_waits_for_a_slow_tail() {
        let buffer = LogBuffer::new(10);
        let mut tail = buffer.subscribe();
        for n in 0..(BROADCAST_CAPACITY + 10) {
            buffer.append(Uuid::nil(), line(&n.to_string()));
        }
        assert!(matches!(
            tail.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        let caught_up = buffer.since(Uuid::nil(), 0);
        assert_eq!(caught_up.missed, BROADCAST_CAPACITY as u64);
        assert_eq!(caught_up.entries.len(), 10);
    }

    #[test]
    fn restored_lines_go_first_and_numbers_go_on() {
        let buffer = LogBuffer::new(4);
        let app = Uuid::from_u128(7);
        buffer.append(app, line("new"));
        let loaded = (5..=7)
            .map(|seq| Entry {
                seq,
                line: line(&format!("old {seq}")),
            })
            .collect();
        buffer.restore(app, loaded);
        let numbered: Vec<(u64, String)> = buffer
            .recent_entries(app, 10)
            .iter()
            .map(|e| (e.seq, e.message.clone()))
            .collect();
        assert_eq!(
            numbered,
            [
                (5, "old 5".to_owned()),
                (6, "old 6".to_owned()),
                (7, "old 7".to_owned()),
                (8, "new".to_owned())
            ]
        );
        assert_eq!(buffer.append(app, line("next")), 9);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(u8),
        Resume(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..3).prop_map(Op::Append),
            1 => (0u64..60).prop_map(Op::Resume),
        ]
    }

    proptest! {
        /// Against a model that keeps every line: numbers are consecutive per app, the ring
        /// holds exactly the last `capacity` lines, and resuming after any number yields the
        /// lines after it that the ring holds, with the count of the others, no duplicates and
        /// no gaps.
        #[test]
        fn ring_and_resume_match_a_model(capacity in 1usize..8, ops in prop::collection::vec(op(), 0..80)) {
            let buffer = LogBuffer::new(capacity);
            let apps = [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
            let mut model: HashMap<Uuid, Vec<String>> = HashMap::new();
            let mut count = 0;
            for op in ops {
                match op {
                    Op::Append(which) => {
                        let app = apps[usize::from(which)];
                        count += 1;
                        let message = format!("line {count}");
                        let seq = buffer.append(app, line(&message));
                        let all = model.entry(app).or_default();
                        all.push(message);
                        prop_assert_eq!(seq, all.len() as u64);
                    }
                    Op::Resume(after) => {
                        for app in apps {
                            let all = model.get(&app).cloned().unwrap_or_default();
                            let total = all.len() as u64;
                            let held = total.min(capacity as u64);
                            let since = buffer.since(app, after);
                            let expected_missed = (total - held).saturating_sub(after);
                            prop_assert_eq!(since.missed, expected_missed);
                            let wanted: Vec<(u64, String)> = all
                                .iter()
                                .enumerate()
                                .map(|(i, m)| (i as u64 + 1, m.clone()))
                                .skip((total - held) as usize)
                                .filter(|(seq, _)| *seq > after)
                                .collect();
                            let got: Vec<(u64, String)> = since
                                .entries
                                .iter()
                                .map(|e| (e.seq, e.message.clone()))
                                .collect();
                            prop_assert_eq!(got, wanted);
                            // The ring is the model's last lines.
                            let recent = messages(buffer.recent(app, usize::MAX));
                            prop_assert_eq!(recent, all[(total - held) as usize..].to_vec());
                        }
                    }
                }
            }
        }
    }
}
