//! The wire format between a shim and the server connected to it: a stream of frames,
//! each `[kind u8][len u32 LE][payload]`, written by the shim only.

use std::fmt;
use std::ops::Range;

/// Payload: bytes the container wrote to stdout.
pub const STDOUT: u8 = 1;
/// Payload: bytes the container wrote to stderr.
pub const STDERR: u8 = 2;
/// Payload: u64 LE, bytes of output dropped while no server was connected.
pub const LOST: u8 = 3;
/// Payload: i32 LE code, i32 LE signal (exited: code=N, signal=0; killed by signal:
/// code=-1, signal=N). The last frame the shim sends.
pub const EXIT: u8 = 4;
/// Payload: u32 LE, the container init's pid on the host. The first frame of every connection.
pub const HELLO: u8 = 5;
/// The largest payload a frame may carry; `decode` refuses longer ones.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Bytes before the payload: the kind and the length.
pub const HEADER_LEN: usize = 5;

/// Why a byte stream is not a valid frame stream. Either means the peer is not a shim of this
/// version (or the stream was corrupted): the connection is unusable from there on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header announces a payload longer than [`MAX_PAYLOAD`].
    TooLong { len: usize },
    /// The kind byte is none of the kinds above.
    UnknownKind { kind: u8 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len } => {
                write!(f, "frame payload of {len} bytes exceeds {MAX_PAYLOAD}")
            }
            FrameError::UnknownKind { kind } => write!(f, "unknown frame kind {kind}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends the frame `[kind][len][payload]` to `out`.
///
/// `payload` must be at most [`MAX_PAYLOAD`] bytes: the reader refuses longer frames.
pub fn encode(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_PAYLOAD, "frame payload too long");
    let len = u32::try_from(payload.len()).expect("payloads are at most MAX_PAYLOAD bytes");
    out.reserve(HEADER_LEN + payload.len());
    out.push(kind);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Parses one frame from the front of `buf`: `Some((kind, payload_range, total_len))`, where
/// `payload_range` indexes `buf` and `total_len` is how many bytes of `buf` the frame took;
/// `None` if `buf` holds only part of a frame. Errs on an unknown kind (as soon as the first
/// byte is there) or a length over [`MAX_PAYLOAD`].
pub fn decode(buf: &[u8]) -> Result<Option<(u8, Range<usize>, usize)>, FrameError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    if !(STDOUT..=HELLO).contains(&kind) {
        return Err(FrameError::UnknownKind { kind });
    }
    let Some(len_bytes) = buf.get(1..HEADER_LEN) else {
        return Ok(None);
    };
    let len_bytes: [u8; 4] = len_bytes.try_into().expect("the range is four bytes long");
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong { len });
    }
    let total = HEADER_LEN + len;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((kind, HEADER_LEN..total, total)))
}

/// The payload of an [`EXIT`] frame.
pub fn exit_payload(code: i32, signal: i32) -> [u8; 8] {
    let mut payload = [0; 8];
    payload[..4].copy_from_slice(&code.to_le_bytes());
    payload[4..].copy_from_slice(&signal.to_le_bytes());
    payload
}

/// `(code, signal)` from an [`EXIT`] payload; `None` if it is not eight bytes long.
pub fn parse_exit(payload: &[u8]) -> Option<(i32, i32)> {
    let payload: &[u8; 8] = payload.try_into().ok()?;
    let code = i32::from_le_bytes(payload[..4].try_into().ok()?);
    let signal = i32::from_le_bytes(payload[4..].try_into().ok()?);
    Some((code, signal))
}

/// The init's pid from a [`HELLO`] payload; `None` if it is not four bytes long.
pub fn parse_hello(payload: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(payload.try_into().ok()?))
}

/// The dropped byte count from a [`LOST`] payload; `None` if it is not eight bytes long.
pub fn parse_lost(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frames: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, payload) in frames {
            encode(*kind, payload, &mut out);
        }
        out
    }

    #[test]
    fn round_trip() {
        let max = vec![7; MAX_PAYLOAD];
        let exit = exit_payload(-1, 9);
        let frames: [(u8, &[u8]); 6] = [
            (HELLO, &42u32.to_le_bytes()),
            (STDOUT, b"hello\n"),
            (STDERR, b""),
            (LOST, &1234u64.to_le_bytes()),
            (STDOUT, &max),
            (EXIT, &exit),
        ];
        let buf = encoded(&frames);
        let mut rest = &buf[..];
        for (kind, payload) in frames {
            let (got_kind, range, total) = decode(rest).expect("valid").expect("complete");
            assert_eq!(got_kind, kind);
            assert_eq!(&rest[range], payload);
            rest = &rest[total..];
        }
        assert!(rest.is_empty());
        assert_eq!(parse_exit(&exit), Some((-1, 9)));
        assert_eq!(parse_hello(&42u32.to_le_bytes()), Some(42));
        assert_eq!(parse_lost(&1234u64.to_le_bytes()), Some(1234));
    }

    #[test]
    fn incomplete_frames_ask_for_more() {
        let buf = encoded(&[(STDOUT, b"abc")]);
        for end in 0..buf.len() {
            assert_eq!(decode(&buf[..end]), Ok(None), "prefix of {end} bytes");
        }
        assert_eq!(decode(&buf), Ok(Some((STDOUT, 5..8, 8))));
    }

    #[test]
    fn oversize_and_unknown_kinds_are_refused() {
        let mut buf = vec![STDOUT];
        buf.extend_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
        assert_eq!(
            decode(&buf),
            Err(FrameError::TooLong {
                len: MAX_PAYLOAD + 1
            })
        );
        assert_eq!(decode(&[0]), Err(FrameError::UnknownKind { kind: 0 }));
        assert_eq!(decode(&[6, 0]), Err(FrameError::UnknownKind { kind: 6 }));
    }

    #[test]
    fn payload_parsers_check_lengths() {
        assert_eq!(parse_exit(&[0; 7]), None);
        assert_eq!(parse_exit(&exit_payload(3, 0)), Some((3, 0)));
        assert_eq!(parse_hello(&[0; 8]), None);
        assert_eq!(parse_lost(&[0; 4]), None);
    }
}
