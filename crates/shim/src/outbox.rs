//! The frames waiting for a server: the container's output, kept while no server is connected
//! (capped, oldest dropped first and counted as lost) and queued while a connected one reads.
//! Pure bookkeeping; the event loop does the IO.

use std::collections::VecDeque;

use crate::frame;

/// Invariants: frames are whole encoded frames in the order the server must see them; `sent`
/// bytes of the front frame have reached the current server (0 while none is connected); an
/// [`frame::EXIT`] frame, if queued, is the last one and is never dropped.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    frames: VecDeque<Vec<u8>>,
    sent: usize,
    /// Payload bytes of the queued STDOUT and STDERR frames.
    output_bytes: usize,
    /// Encoded bytes of all queued frames.
    queued_bytes: usize,
    /// Output bytes dropped and not yet reported in a LOST frame.
    lost: u64,
}

impl Outbox {
    /// Queues one encoded STDOUT or STDERR frame. Without a connected server, the oldest
    /// frames go once the output passes `cap` payload bytes.
    pub(crate) fn push_output(&mut self, encoded: Vec<u8>, connected: bool, cap: usize) {
        debug_assert!(is_output(&encoded));
        debug_assert!(!self.has_exit(), "no output after EXIT");
        self.output_bytes += encoded.len() - frame::HEADER_LEN;
        self.push_back(encoded);
        if !connected {
            self.trim(cap);
        }
    }

    /// Queues the EXIT frame, after everything else.
    pub(crate) fn push_exit(&mut self, code: i32, signal: i32) {
        if !self.has_exit() {
            self.push_back(encode(frame::EXIT, &frame::exit_payload(code, signal)));
        }
    }

    /// A server connected: it gets HELLO first, then the buffered output, then LOST if output
    /// was dropped, then EXIT if `exit` is given (the init's status, once its output is
    /// drained) and EXIT is not queued already (it went to an earlier server).
    pub(crate) fn connect(&mut self, init_pid: u32, exit: Option<(i32, i32)>) {
        debug_assert_eq!(self.sent, 0, "the previous server was disconnected");
        let hello = encode(frame::HELLO, &init_pid.to_le_bytes());
        self.queued_bytes += hello.len();
        self.frames.push_front(hello);
        if self.lost > 0 {
            let lost = encode(frame::LOST, &self.lost.to_le_bytes());
            self.lost = 0;
            self.queued_bytes += lost.len();
            let before_exit = self.frames.len() - usize::from(self.has_exit());
            self.frames.insert(before_exit, lost);
        }
        if let Some((code, signal)) = exit {
            self.push_exit(code, signal);
        }
    }

    /// The server went away: the output it has not read in full is kept for the next one (a
    /// frame it read in part is sent again whole); its HELLO goes, and a LOST it did not read
    /// goes back into the count for the next one. Then the cap applies again.
    pub(crate) fn disconnect(&mut self, cap: usize) {
        self.sent = 0;
        let mut lost = 0;
        self.frames.retain(|encoded| match encoded[0] {
            frame::HELLO => false,
            frame::LOST => {
                lost += frame::parse_lost(&encoded[frame::HEADER_LEN..]).unwrap_or(0);
                false
            }
            _ => true,
        });
        self.lost += lost;
        self.queued_bytes = self.frames.iter().map(Vec::len).sum();
        self.trim(cap);
    }

    /// The bytes to write to the server next, if any.
    pub(crate) fn unsent(&self) -> Option<&[u8]> {
        self.frames.front().map(|encoded| &encoded[self.sent..])
    }

    /// `written` bytes of [`Outbox::unsent`] reached the server. Returns the kind of the
    /// frame this completed, if it did.
    pub(crate) fn advance(&mut self, written: usize) -> Option<u8> {
        let front = self.frames.front()?;
        self.sent += written;
        debug_assert!(self.sent <= front.len());
        if self.sent < front.len() {
            return None;
        }
        self.sent = 0;
        let done = self.pop_front()?;
        Some(done[0])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Encoded bytes waiting, for back-pressure on the container's pipes.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes - self.sent
    }

    pub(crate) fn has_exit(&self) -> bool {
        self.frames
            .back()
            .is_some_and(|encoded| encoded[0] == frame::EXIT)
    }

    /// Drops the oldest frames while the output is over `cap`, counting what is dropped.
    fn trim(&mut self, cap: usize) {
        debug_assert_eq!(self.sent, 0, "never trim under a reading server");
        while self.output_bytes > cap {
            let Some(front) = self.frames.front() else {
                break;
            };
            if front[0] == frame::EXIT {
                break;
            }
            let Some(dropped) = self.pop_front() else {
                break;
            };
            // Only output is queued here: `disconnect` took out the HELLO and LOST frames.
            if is_output(&dropped) {
                self.lost += (dropped.len() - frame::HEADER_LEN) as u64;
            }
        }
    }

    fn push_back(&mut self, encoded: Vec<u8>) {
        self.queued_bytes += encoded.len();
        self.frames.push_back(encoded);
    }

    fn pop_front(&mut self) -> Option<Vec<u8>> {
        let encoded = self.frames.pop_front()?;
        self.queued_bytes -= encoded.len();
        if is_output(&encoded) {
            self.output_bytes -= encoded.len() - frame::HEADER_LEN;
        }
        Some(encoded)
    }
}

/// One frame, encoded into a vector of its own.
pub(crate) fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(frame::HEADER_LEN + payload.len());
    frame::encode(kind, payload, &mut encoded);
    encoded
}

fn is_output(encoded: &[u8]) -> bool {
    matches!(encoded[0], frame::STDOUT | frame::STDERR)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a server reading the whole outbox would see, as readable strings.
    fn drain(outbox: &mut Outbox) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(bytes) = outbox.unsent() {
            let bytes = bytes.to_vec();
            let (kind, range, total) = frame::decode(&bytes).expect("valid").expect("whole");
            let payload = &bytes[range];
            seen.push(match kind {
                frame::STDOUT => format!("out {}", String::from_utf8_lossy(payload)),
                frame::STDERR => format!("err {}", String::from_utf8_lossy(payload)),
                frame::LOST => format!("lost {}", frame::parse_lost(payload).expect("u64")),
                frame::HELLO => format!("hello {}", frame::parse_hello(payload).expect("u32")),
                frame::EXIT => format!("exit {:?}", frame::parse_exit(payload).expect("i32s")),
                _ => unreachable!(),
            });
            assert_eq!(outbox.advance(total), Some(kind));
        }
        assert_eq!(outbox.queued_bytes(), 0);
        seen
    }

    fn out(text: &str) -> Vec<u8> {
        encode(frame::STDOUT, text.as_bytes())
    }

    #[test]
    fn buffered_output_follows_hello_in_order() {
        let mut outbox = Outbox::default();
        outbox.push_output(out("a"), false, 100);
        outbox.push_output(encode(frame::STDERR, b"b"), false, 100);
        outbox.connect(7, None);
        outbox.push_output(out("c"), true, 100);
        assert_eq!(drain(&mut outbox), ["hello 7", "out a", "err b", "out c"]);
    }

    #[test]
    fn past_the_cap_the_oldest_output_is_lost_and_reported_once() {
        let mut outbox = Outbox::default();
        for text in ["aaaa", "bbbb", "cccc"] {
            outbox.push_output(out(text), false, 9);
        }
        outbox.connect(1, None);
        assert_eq!(
            drain(&mut outbox),
            ["hello 1", "out bbbb", "out cccc", "lost 4"]
        );
        outbox.disconnect(9);
        outbox.connect(1, None);
        assert_eq!(drain(&mut outbox), ["hello 1"]);
    }

    #[test]
    fn a_connected_server_is_never_trimmed_under() {
        let mut outbox = Outbox::default();
        for text in ["aaaa", "bbbb", "cccc"] {
            outbox.push_output(out(text), true, 1);
        }
        assert_eq!(drain(&mut outbox), ["out aaaa", "out bbbb", "out cccc"]);
    }

    #[test]
    fn a_frame_read_in_part_goes_whole_to_the_next_server() {
        let mut outbox = Outbox::default();
        outbox.connect(1, None);
        outbox.push_output(out("abcdef"), true, 100);
        let hello_len = outbox.unsent().expect("hello").len();
        assert_eq!(outbox.advance(hello_len), Some(frame::HELLO));
        assert_eq!(outbox.advance(3), None);
        outbox.disconnect(100);
        outbox.connect(2, None);
        assert_eq!(drain(&mut outbox), ["hello 2", "out abcdef"]);
    }

    #[test]
    fn exit_comes_last_survives_the_cap_and_goes_to_every_server() {
        let mut outbox = Outbox::default();
        outbox.push_output(out("aaaa"), false, 4);
        outbox.push_output(out("bbbb"), false, 4);
        outbox.push_exit(-1, 9);
        outbox.disconnect(0);
        outbox.connect(3, Some((-1, 9)));
        assert_eq!(drain(&mut outbox), ["hello 3", "lost 8", "exit (-1, 9)"]);
        outbox.disconnect(0);
        outbox.connect(4, Some((-1, 9)));
        assert_eq!(drain(&mut outbox), ["hello 4", "exit (-1, 9)"]);
    }

    #[test]
    fn unreported_losses_are_counted_again_when_dropped() {
        let mut outbox = Outbox::default();
        outbox.push_output(out("aaaa"), false, 4);
        outbox.push_output(out("bbbb"), false, 4);
        // The server connects and leaves before reading anything: its LOST is reported later.
        outbox.connect(1, None);
        outbox.disconnect(4);
        outbox.push_output(out("cccc"), false, 4);
        outbox.connect(2, None);
        assert_eq!(drain(&mut outbox), ["hello 2", "out cccc", "lost 8"]);
    }
}
