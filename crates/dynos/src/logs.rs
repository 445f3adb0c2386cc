//! Log lines: what dynos print and what the platform says about them, as Heroku shows them
//! (`2026-11-22T10:00:00.123456+00:00 app[web.1]: message`), kept per app in a ring for
//! `wharf logs` and broadcast for live tails.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Longer lines are split into lines of at most this many bytes.
pub const MAX_LINE_BYTES: usize = 10_000;

/// How many lines a live tail may fall behind before it misses some (it is told it lagged).
const BROADCAST_CAPACITY: usize = 4096;

const TIMESTAMP: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6][offset_hour sign:mandatory]:[offset_minute]"
);

/// Who wrote a line: the app's own output or the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogSource {
    App,
    Heroku,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::App => "app",
            LogSource::Heroku => "heroku",
        }
    }
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an app's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was written, to the microsecond.
    pub at: OffsetDateTime,
    pub source: LogSource,
    /// The dyno (`web.1`), or `router`, `api` for platform lines about the app.
    pub process: String,
    pub message: String,
}

impl LogLine {
    /// A line stamped now (UTC, truncated to microseconds).
    pub fn now(source: LogSource, process: &str, message: impl Into<String>) -> LogLine {
        LogLine {
            at: now_micros(),
            source,
            process: process.to_owned(),
            message: message.into(),
        }
    }
}

/// The current time in UTC, truncated to microseconds (what the log format shows).
pub fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond())
        .expect("a microsecond taken from a valid time is valid")
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at.format(TIMESTAMP).map_err(|_| fmt::Error)?;
        write!(
            f,
            "{at} {}[{}]: {}",
            self.source, self.process, self.message
        )
    }
}

/// The last lines of every app, and a broadcast of every new line. Cheap to clone.
///
/// [`LogBuffer::append`] never waits for readers: a live tail that falls behind by more than
/// its channel holds gets `RecvError::Lagged` and skips ahead.
#[derive(Clone)]
pub struct LogBuffer {
    inner: Arc<Inner>,
}

struct Inner {
    lines_per_app: usize,
    apps: Mutex<HashMap<Uuid, VecDeque<LogLine>>>,
    live: broadcast::Sender<(Uuid, LogLine)>,
}

impl LogBuffer {
    /// Keeps the last `lines_per_app` lines of each app.
    pub fn new(lines_per_app: usize) -> LogBuffer {
        let (live, _) = broadcast::channel(BROADCAST_CAPACITY);
        LogBuffer {
            inner: Arc::new(Inner {
                lines_per_app,
                apps: Mutex::new(HashMap::new()),
                live,
            }),
        }
    }

    /// Adds a line to `app_id`'s ring (dropping its oldest when full) and to the live tails.
    pub fn append(&self, app_id: Uuid, line: LogLine) {
        {
            let mut apps = self.inner.apps.lock().expect("log buffer lock poisoned");
            let ring = apps.entry(app_id).or_default();
            while ring.len() >= self.inner.lines_per_app.max(1) {
                ring.pop_front();
            }
            ring.push_back(line.clone());
        }
        // No receivers is fine: nobody is tailing.
        let _ = self.inner.live.send((app_id, line));
    }

    /// The last `n` lines of `app_id`, oldest first.
    pub fn recent(&self, app_id: Uuid, n: usize) -> Vec<LogLine> {
        let apps = self.inner.apps.lock().expect("log buffer lock poisoned");
        apps.get(&app_id).map_or_else(Vec::new, |ring| {
            ring.iter()
                .skip(ring.len().saturating_sub(n))
                .cloned()
                .collect()
        })
    }

    /// Every line appended from now on, of every app.
    pub fn subscribe(&self) -> broadcast::Receiver<(Uuid, LogLine)> {
        self.inner.live.subscribe()
    }

    /// Forgets an app's lines (when it is deleted).
    pub fn forget(&self, app_id: Uuid) {
        let mut apps = self.inner.apps.lock().expect("log buffer lock poisoned");
        apps.remove(&app_id);
    }
}

/// Cuts a byte stream into lines: at each `\n` (dropped, with a `\r` before it), and after
/// [`MAX_LINE_BYTES`] bytes of a longer line (at a UTF-8 character boundary when the bytes are
/// UTF-8). Invalid UTF-8 becomes U+FFFD.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds a chunk; returns the lines it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                if self.pending.last() == Some(&b'\r') {
                    self.pending.pop();
                }
                lines.push(String::from_utf8_lossy(&self.pending).into_owned());
                self.pending.clear();
                continue;
            }
            self.pending.push(byte);
            if self.pending.len() >= MAX_LINE_BYTES {
                let cut = utf8_cut(&self.pending);
                let rest = self.pending.split_off(cut);
                lines.push(String::from_utf8_lossy(&self.pending).into_owned());
                self.pending = rest;
            }
        }
        lines
    }

    /// The last, unterminated line, if any (at end of stream).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(line)
    }
}

/// Where to cut a full buffer: before a UTF-8 character that the cut would split, else at the
/// end.
fn utf8_cut(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // Walk back over continuation bytes (at most 3) to the lead byte of the last character.
    for back in 1..=4.min(len) {
        let byte = bytes[len - back];
        if byte & 0xC0 != 0x80 {
            let width = match byte {
                0x00..=0x7F => 1,
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => return len,
            };
            return if back < width { len - back } else { len };
        }
    }
    len
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    fn line(source: LogSource, process: &str, message: &str) -> LogLine {
        LogLine {
            at: datetime!(2026-11-22 10:00:00.123456 UTC),
            source,
            process: process.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn formats_like_heroku() {
        let mut whole_second = line(LogSource::App, "web.1", "x");
        whole_second.at = datetime!(2026-01-02 03:04:05 UTC);
        let mut offset = line(LogSource::App, "web.1", "y");
        offset.at = datetime!(2026-01-02 03:04:05.000007 +02:00);
        let shown: Vec<String> = [
            line(LogSource::App, "web.1", "GET / 200"),
            line(
                LogSource::Heroku,
                "worker.2",
                "State changed from starting to up",
            ),
            line(
                LogSource::Heroku,
                "web.1",
                "Starting process with command `bin/web`",
            ),
            whole_second,
            offset,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        expect_test::expect![[r#"
            2026-11-22T10:00:00.123456+00:00 app[web.1]: GET / 200
            2026-11-22T10:00:00.123456+00:00 heroku[worker.2]: State changed from starting to up
            2026-11-22T10:00:00.123456+00:00 heroku[web.1]: Starting process with command `bin/web`
            2026-01-02T03:04:05.000000+00:00 app[web.1]: x
            2026-01-02T03:04:05.000007+02:00 app[web.1]: y
        "#]]
        .assert_eq(&(shown.join("\n") + "\n"));
    }

    #[test]
    fn now_has_microseconds_only() {
        let at = now_micros();
        assert_eq!(at.nanosecond() % 1000, 0);
    }

    #[test]
    fn ring_keeps_the_last_lines_per_app() {
        let buffer = LogBuffer::new(3);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut tail = buffer.subscribe();
        for n in 0..5 {
            buffer.append(a, line(LogSource::App, "web.1", &n.to_string()));
        }
        buffer.append(b, line(LogSource::App, "web.1", "b"));
        let messages =
            |lines: Vec<LogLine>| -> Vec<String> { lines.into_iter().map(|l| l.message).collect() };
        assert_eq!(messages(buffer.recent(a, 10)), ["2", "3", "4"]);
        assert_eq!(messages(buffer.recent(a, 2)), ["3", "4"]);
        assert_eq!(messages(buffer.recent(b, 10)), ["b"]);
        assert!(buffer.recent(Uuid::nil(), 10).is_empty());
        let (app, first) = tail.try_recv().unwrap();
        assert_eq!((app, first.message.as_str()), (a, "0"));
        buffer.forget(a);
        assert!(buffer.recent(a, 10).is_empty());
    }

    #[test]
    fn appending_never_waits_for_a_slow_tail() {
        let buffer = LogBuffer::new(10);
        let mut tail = buffer.subscribe();
        for n in 0..(BROADCAST_CAPACITY + 10) {
            buffer.append(Uuid::nil(), line(LogSource::App, "web.1", &n.to_string()));
        }
        assert!(matches!(
            tail.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines: Vec<String> = chunks.iter().flat_map(|c| splitter.push(c)).collect();
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            split(&[b"a\nb", b"c\r\n", b"\nlast"]),
            ["a", "bc", "", "last"]
        );
        assert_eq!(split(&[b"only\n"]), ["only"]);
        assert!(split(&[]).is_empty());
        assert_eq!(
            split(&[b"bad \xff\xfe bytes\n"]),
            ["bad \u{fffd}\u{fffd} bytes"]
        );
    }

    #[test]
    fn splits_long_lines() {
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 5];
        let lines = split(&[&long, b"\n"]);
        let lengths: Vec<usize> = lines.iter().map(String::len).collect();
        assert_eq!(lengths, [MAX_LINE_BYTES, MAX_LINE_BYTES, 5]);

        // A multi-byte character across the limit moves whole to the next line.
        let mut text = vec![b'x'; MAX_LINE_BYTES - 1];
        text.extend("é and more\n".as_bytes());
        let lines = split(&[&text]);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES - 1);
        assert_eq!(lines[1], "é and more");
    }
}
