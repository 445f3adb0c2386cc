//! Cutting a dyno's output into log lines.

use crate::MAX_LINE_BYTES;

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
        let mut rest = chunk;
        // Whole slices at a time: a line that starts and ends in this chunk is decoded straight
        // from it, never copied through `pending`.
        while !rest.is_empty() {
            let room = MAX_LINE_BYTES - self.pending.len();
            let window = &rest[..rest.len().min(room)];
            if let Some(at) = window.iter().position(|&byte| byte == b'\n') {
                if self.pending.is_empty() {
                    let line = &window[..at];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    lines.push(String::from_utf8_lossy(line).into_owned());
                } else {
                    self.pending.extend_from_slice(&window[..at]);
                    if self.pending.last() == Some(&b'\r') {
                        self.pending.pop();
                    }
                    lines.push(String::from_utf8_lossy(&self.pending).into_owned());
                    self.pending.clear();
                }
                rest = &rest[at + 1..];
                continue;
            }
            self.pending.extend_from_slice(window);
            rest = &rest[window.len()..];
            if self.pending.len() >= MAX_LINE_BYTES {
                let cut = utf8_cut(&self.pending);
                let carried = self.pending.split_off(cut);
                lines.push(String::from_utf8_lossy(&self.pending).into_owned());
                self.pending = carried;
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
    use super::*;
    use proptest::strategy::Just;

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

    /// The splitter as first written, a byte at a time: the reference the fast one must match.
    fn reference(chunks: &[Vec<u8>]) -> Vec<String> {
        let mut pending: Vec<u8> = Vec::new();
        let mut lines = Vec::new();
        for chunk in chunks {
            for &byte in chunk {
                if byte == b'\n' {
                    if pending.last() == Some(&b'\r') {
                        pending.pop();
                    }
                    lines.push(String::from_utf8_lossy(&pending).into_owned());
                    pending.clear();
                    continue;
                }
                pending.push(byte);
                if pending.len() >= MAX_LINE_BYTES {
                    let cut = utf8_cut(&pending);
                    let rest = pending.split_off(cut);
                    lines.push(String::from_utf8_lossy(&pending).into_owned());
                    pending = rest;
                }
            }
        }
        if !pending.is_empty() {
            lines.push(String::from_utf8_lossy(&pending).into_owned());
        }
        lines
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]
        #[test]
        fn matches_the_byte_at_a_time_reference(
            chunks in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        Just(b'\n'), Just(b'\r'), Just(b'x'), Just(0xC3u8), Just(0xA9u8), Just(0xFFu8)
                    ],
                    0..12_000,
                ),
                0..4,
            )
        ) {
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            proptest::prop_assert_eq!(split(&refs), reference(&chunks));
        }
    }
}
