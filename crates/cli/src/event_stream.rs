//! A reader of `text/event-stream` (server-sent events, as the WHATWG HTML standard parses
//! them), fed bytes in whatever pieces the network delivers. It yields events and comments
//! and remembers what a reconnect needs: the last event id and the server's `retry` advice.
//! No IO: the connection and its reconnects are the `logs` command's.

use std::time::Duration;

/// A line longer than this is cut: a broken server must not make the client hoard memory.
const MAX_LINE_BYTES: usize = 1024 * 1024;
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An event: its `data:` lines joined by `\n`, and the last event id when it ended.
    Event { id: Option<String>, data: String },
    /// A `:` line, without the colon and the one space after it.
    Comment(String),
}

#[derive(Debug, Default)]
pub struct EventStream {
    /// The bytes of a line not ended yet.
    line: Vec<u8>,
    /// The last byte fed ended a line with `\r`: a `\n` right after it ends nothing more.
    after_carriage_return: bool,
    /// No line of this connection has ended yet (it may start with a byte order mark).
    started: bool,
    /// The `data:` lines of the event being read, each followed by `\n`.
    data: String,
    /// The `id:` seen last; it becomes the last event id when an event ends.
    id_buffer: Option<String>,
    last_event_id: Option<String>,
    retry: Option<Duration>,
}

impl EventStream {
    /// The events and comments `bytes` completes, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        for &byte in bytes {
            let follows_carriage_return = std::mem::take(&mut self.after_carriage_return);
            match byte {
                b'\n' if follows_carriage_return => {}
                b'\n' | b'\r' => {
                    self.after_carriage_return = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    frames.extend(self.end_line(&line));
                }
                _ if self.line.len() < MAX_LINE_BYTES => self.line.push(byte),
                _ => {}
            }
        }
        frames
    }

    /// The id of the last event received, for `Last-Event-ID` on a reconnect.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref().filter(|id| !id.is_empty())
    }

    /// How long the server asked a client to wait before reconnecting, if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// A new connection begins: a line or event the old one left unfinished is dropped; the
    /// last event id and the retry advice are kept.
    pub fn reconnect(&mut self) {
        self.line.clear();
        self.after_carriage_return = false;
        self.started = false;
        self.data.clear();
        self.id_buffer.clone_from(&self.last_event_id);
    }

    fn end_line(&mut self, line: &[u8]) -> Option<Frame> {
        let first = !std::mem::replace(&mut self.started, true);
        let line = if first {
            line.strip_prefix(BYTE_ORDER_MARK).unwrap_or(line)
        } else {
            line
        };
        if line.is_empty() {
            return self.dispatch();
        }
        let line = String::from_utf8_lossy(line);
        if let Some(comment) = line.strip_prefix(':') {
            let comment = comment.strip_prefix(' ').unwrap_or(comment);
            return Some(Frame::Comment(comment.to_string()));
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id_buffer = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits too many for a u64 are a wait longer than anyone means.
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            // `event:` names a type; log streams send only the default one.
            _ => {}
        }
        None
    }

    /// A blank line ends an event; one without data only moves the last event id.
    fn dispatch(&mut self) -> Option<Frame> {
        self.last_event_id.clone_from(&self.id_buffer);
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return None;
        }
        data.pop();
        Some(Frame::Event {
            id: self.last_event_id.clone(),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Option<&str>, data: &str) -> Frame {
        Frame::Event {
            id: id.map(str::to_string),
            data: data.to_string(),
        }
    }

    fn comment(text: &str) -> Frame {
        Frame::Comment(text.to_string())
    }

    /// Parses `input` fed whole, then fed in pieces split at every possible place (one and
    /// two cuts); all must give `expected`.
    fn check(input: &str, expected: &[Frame]) {
        let bytes = input.as_bytes();
        let parse = |pieces: &[&[u8]]| {
            let mut stream = EventStream::default();
            pieces
                .iter()
                .flat_map(|piece| stream.feed(piece))
                .collect::<Vec<_>>()
        };
        assert_eq!(parse(&[bytes]), expected, "{input:?}");
        for first in 0..=bytes.len() {
            for second in first..=bytes.len() {
                let pieces = [&bytes[..first], &bytes[first..second], &bytes[second..]];
                assert_eq!(
                    parse(&pieces),
                    expected,
                    "{input:?} cut at {first}, {second}"
                );
            }
        }
    }

    #[test]
    fn events_carry_their_data_and_the_last_id() {
        check(
            "id: 1\ndata: first\n\nid: 2\ndata: second\n\n",
            &[event(Some("1"), "first"), event(Some("2"), "second")],
        );
        // Several data lines make one event's lines; an id carries over to later events.
        check(
            "id: 7\ndata: one\ndata: two\n\ndata: three\n\n",
            &[event(Some("7"), "one\ntwo"), event(Some("7"), "three")],
        );
        check("data:no space\n\n", &[event(None, "no space")]);
        check("data:  two spaces\n\n", &[event(None, " two spaces")]);
        check("data\n\n", &[event(None, "")]);
        check("data: é ünïcode ⬢\n\n", &[event(None, "é ünïcode ⬢")]);
    }

    #[test]
    fn lines_end_with_any_newline() {
        check(
            "data: a\r\ndata: b\r\n\r\ndata: c\rdata: d\r\rdata: e\n\r\n",
            &[event(None, "a\nb"), event(None, "c\nd"), event(None, "e")],
        );
        check("\u{feff}data: bom\n\n", &[event(None, "bom")]);
    }

    #[test]
    fn comments_and_other_fields_are_not_events() {
        check(
            ": ping\n\n:this reader fell behind; 3 lines were skipped\n\n",
            &[
                comment("ping"),
                comment("this reader fell behind; 3 lines were skipped"),
            ],
        );
        check(
            "event: log\nunknown: x\ndata: kept\n\n",
            &[event(None, "kept")],
        );
        // No blank line: the event never ended.
        check("id: 1\ndata: cut short\n", &[]);
        check(
            "data: a\n: note\ndata: b\n\n",
            &[comment("note"), event(None, "a\nb")],
        );
    }

    #[test]
    fn ids_and_retry_are_remembered() {
        let check = |input: &str, id: Option<&str>, retry: Option<u64>| {
            let mut stream = EventStream::default();
            stream.feed(input.as_bytes());
            assert_eq!(stream.last_event_id(), id, "{input:?}");
            assert_eq!(
                stream.retry(),
                retry.map(Duration::from_millis),
                "{input:?}"
            );
        };
        check("id: 1\ndata: x\n\nid: 2\ndata: y\n\n", Some("2"), None);
        // An id counts once its event ends, even an event without data.
        check("id: 5\n\n", Some("5"), None);
        check("id: 5\ndata: unfinished\n", None, None);
        check("id: 3\n\nid\n\n", None, None);
        check("retry: 10\n", None, Some(10));
        check("retry: 10\nretry: soon\nretry: -1\n", None, Some(10));
    }

    #[test]
    fn a_reconnect_drops_the_unfinished_event_and_keeps_the_id() {
        let mut stream = EventStream::default();
        assert_eq!(
            stream.feed(b"retry: 50\nid: 2\ndata: two\n\nid: 3\ndata: thr"),
            [event(Some("2"), "two")]
        );
        stream.reconnect();
        assert_eq!(stream.last_event_id(), Some("2"));
        assert_eq!(stream.retry(), Some(Duration::from_millis(50)));
        assert_eq!(
            stream.feed(b"data: no id\n\nid: 3\ndata: three\n\n"),
            [event(Some("2"), "no id"), event(Some("3"), "three")]
        );
    }
}
