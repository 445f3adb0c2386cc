//! The end of an attached run's output: the server's last line is Heroku's exit marker
//! (`\u{FFFF} heroku-command-exit-status: N`), which is taken out of what is shown and becomes
//! the exit code. Also the `\r\n` to `\n` turn for output that is not a terminal.

/// Heroku's exit status marker, up to the number.
pub const EXIT_MARKER: &[u8] = "\u{FFFF} heroku-command-exit-status: ".as_bytes();

/// Takes exit markers out of a stream of output chunks, remembering the last status.
#[derive(Debug, Default)]
pub struct ExitMarker {
    /// Bytes that may be the start of a marker, held until the rest shows.
    held: Vec<u8>,
    code: Option<i32>,
}

/// What the bytes at the start of `data` are.
enum Match {
    /// A whole marker line of `len` bytes (line end included) with this status.
    Marker { len: usize, code: i32 },
    /// Could still become a marker: more bytes are needed.
    Partial,
    /// Not a marker.
    No,
}

impl ExitMarker {
    /// The bytes of `chunk` (and of chunks before) to show now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(chunk);
        let data = std::mem::take(&mut self.held);
        let mut shown = Vec::with_capacity(data.len());
        let mut at = 0;
        while at < data.len() {
            let Some(start) = find_start(&data[at..]) else {
                shown.extend_from_slice(&data[at..]);
                break;
            };
            shown.extend_from_slice(&data[at..at + start]);
            at += start;
            match match_marker(&data[at..], false) {
                Match::Marker { len, code } => {
                    self.code = Some(code);
                    at += len;
                }
                Match::Partial => {
                    self.held = data[at..].to_vec();
                    break;
                }
                Match::No => {
                    shown.push(data[at]);
                    at += 1;
                }
            }
        }
        shown
    }

    /// At the end of the stream: what is left to show, and the last exit status.
    pub fn finish(mut self) -> (Vec<u8>, Option<i32>) {
        let mut shown = Vec::new();
        let mut held = std::mem::take(&mut self.held);
        while let Some((first, rest)) = held.split_first() {
            if let Match::Marker { len, code } = match_marker(&held, true) {
                if len == held.len() {
                    self.code = Some(code);
                    break;
                }
            }
            // Not a marker after all: its first byte cannot start one, the rest may.
            shown.push(*first);
            let rest = rest.to_vec();
            shown.extend(self.push(&rest));
            held = std::mem::take(&mut self.held);
        }
        (shown, self.code)
    }
}

/// Where a marker may start: a whole marker prefix, or a prefix of it at the very end.
fn find_start(data: &[u8]) -> Option<usize> {
    (0..data.len()).find(|&i| {
        let rest = &data[i..];
        let n = rest.len().min(EXIT_MARKER.len());
        rest[..n] == EXIT_MARKER[..n]
    })
}

fn match_marker(data: &[u8], at_end: bool) -> Match {
    let n = data.len().min(EXIT_MARKER.len());
    if data[..n] != EXIT_MARKER[..n] {
        return Match::No;
    }
    if data.len() < EXIT_MARKER.len() {
        return if at_end { Match::No } else { Match::Partial };
    }
    let rest = &data[EXIT_MARKER.len()..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let code = || {
        std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|text| text.parse::<i32>().ok())
    };
    let after = &rest[digits..];
    let line_end = match after {
        [b'\n', ..] => Some(1),
        [b'\r', b'\n', ..] => Some(2),
        [b'\r'] | [] if !at_end => return Match::Partial,
        [] => Some(0),
        _ => None,
    };
    match (digits, line_end, code()) {
        (1.., Some(end), Some(code)) => Match::Marker {
            len: EXIT_MARKER.len() + digits + end,
            code,
        },
        _ => Match::No,
    }
}

/// Turns `\r\n` into `\n` across chunks (PTY output shown on something not a terminal).
#[derive(Debug, Default)]
pub struct CrLf {
    carriage_return: bool,
}

impl CrLf {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + 1);
        for &byte in chunk {
            if self.carriage_return && byte != b'\n' {
                out.push(b'\r');
            }
            self.carriage_return = byte == b'\r';
            if !self.carriage_return {
                out.push(byte);
            }
        }
        out
    }

    pub fn finish(self) -> Vec<u8> {
        if self.carriage_return {
            vec![b'\r']
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at every position (and in single bytes) and checks each way gives
    /// `shown` and `code`.
    fn check(input: &str, shown: &str, code: Option<i32>) {
        let input = input.as_bytes();
        let mut splits: Vec<Vec<&[u8]>> = (0..=input.len())
            .map(|at| vec![&input[..at], &input[at..]])
            .collect();
        splits.push(input.chunks(1).collect());
        for chunks in splits {
            let mut marker = ExitMarker::default();
            let mut out = Vec::new();
            for chunk in &chunks {
                out.extend(marker.push(chunk));
            }
            let (rest, got) = marker.finish();
            out.extend(rest);
            assert_eq!(String::from_utf8_lossy(&out), shown, "{chunks:?}");
            assert_eq!(got, code, "{chunks:?}");
        }
    }

    #[test]
    fn markers_are_taken_out() {
        let m = "\u{FFFF} heroku-command-exit-status: ";
        check(&format!("hi\r\n{m}3\n"), "hi\r\n", Some(3));
        check(&format!("hi\n{m}0\r\n"), "hi\n", Some(0));
        check(&format!("{m}42"), "", Some(42));
        check(&format!("no newline{m}7\n"), "no newline", Some(7));
        check("plain output\n", "plain output\n", None);
        check("\u{FFFF} other\n", "\u{FFFF} other\n", None);
        check(&format!("{m}x\n"), &format!("{m}x\n"), None);
        check(m, m, None);
        check(&format!("a{m}1\nb{m}2\n"), "ab", Some(2));
    }

    #[test]
    fn crlf_becomes_lf() {
        let check = |chunks: &[&str], expected: &str| {
            let mut crlf = CrLf::default();
            let mut out = Vec::new();
            for chunk in chunks {
                out.extend(crlf.push(chunk.as_bytes()));
            }
            out.extend(crlf.finish());
            assert_eq!(String::from_utf8_lossy(&out), expected);
        };
        check(&["a\r\nb\r\n"], "a\nb\n");
        check(&["a\r", "\nb"], "a\nb");
        check(&["progress\r50%\r", "100%\r"], "progress\r50%\r100%\r");
    }
}
