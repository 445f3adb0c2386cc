//! Validators and conditional requests: `ETag`/`Last-Modified`, `If-None-Match`,
//! `If-Modified-Since`, and single byte ranges (`Range`, `If-Range`). Pure functions over headers.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{self, HeaderMap};

/// What identifies one version of a file: it changes when the file's size or mtime does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong entity tag, quoted: `"<mtime nanoseconds hex>-<length hex>"`.
    pub etag: String,
    /// The modification time, as `Last-Modified` sends it (whole seconds).
    pub last_modified: String,
    modified_secs: u64,
}

impl Validators {
    pub fn new(length: u64, modified: SystemTime) -> Validators {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Validators {
            etag: format!("\"{:x}-{length:x}\"", since_epoch.as_nanos()),
            last_modified: httpdate::fmt_http_date(modified),
            modified_secs: since_epoch.as_secs(),
        }
    }

    /// Whether the client's copy is current, so 304 answers. `If-None-Match` decides when
    /// present; `If-Modified-Since` only when it is not (RFC 9110, 13.2.2).
    pub fn not_modified(&self, headers: &HeaderMap) -> bool {
        if let Some(tags) = headers.get(header::IF_NONE_MATCH) {
            let Ok(tags) = tags.to_str() else {
                return false;
            };
            return tags
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || weak_eq(tag, &self.etag));
        }
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|since| since.to_str().ok())
            .and_then(|since| httpdate::parse_http_date(since).ok())
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|since| self.modified_secs <= since.as_secs())
    }

    /// Which part of a file of `length` bytes to send.
    pub fn range(&self, headers: &HeaderMap, length: u64) -> ByteRange {
        let Some(range) = headers.get(header::RANGE).and_then(|r| r.to_str().ok()) else {
            return ByteRange::Whole;
        };
        if let Some(if_range) = headers.get(header::IF_RANGE) {
            // Only a strong match on the tag or the exact date keeps the range valid.
            let current = if_range
                .to_str()
                .is_ok_and(|value| value == self.etag || value == self.last_modified);
            if !current {
                return ByteRange::Whole;
            }
        }
        parse_range(range, length)
    }
}

/// The answer to a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range (none, malformed, or several): send the whole file with 200.
    Whole,
    /// Bytes `start..=end` with 206.
    Part { start: u64, end: u64 },
    /// The range lies past the end: 416.
    Unsatisfiable,
}

/// Parses `bytes=0-99`, `bytes=100-` or `bytes=-100`. Several ranges are answered with the
/// whole file, which the RFC allows and spares a multipart body.
fn parse_range(range: &str, length: u64) -> ByteRange {
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    if first.is_empty() {
        // The last `n` bytes.
        return match number(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if length == 0 => ByteRange::Unsatisfiable,
            Some(suffix) => ByteRange::Part {
                start: length.saturating_sub(suffix),
                end: length - 1,
            },
            None => ByteRange::Whole,
        };
    }
    let Some(start) = number(first) else {
        return ByteRange::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) => end,
            None => return ByteRange::Whole,
        }
    };
    if start >= length {
        ByteRange::Unsatisfiable
    } else if end < start {
        ByteRange::Whole
    } else {
        ByteRange::Part {
            start,
            end: end.min(length - 1),
        }
    }
}

/// Weak comparison (RFC 9110, 8.8.3.2): `W/"x"` matches `"x"`.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::header::HeaderValue;

    use super::*;

    fn validators() -> Validators {
        Validators::new(1000, UNIX_EPOCH + Duration::new(1_700_000_000, 500))
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn validators_follow_size_and_mtime() {
        let v = validators();
        assert_eq!(v.etag, "\"17979cfe362a01f4-3e8\"");
        assert_eq!(v.last_modified, "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_ne!(
            v.etag,
            Validators::new(1001, UNIX_EPOCH + Duration::new(1_700_000_000, 500)).etag
        );
    }

    #[test]
    fn if_none_match() {
        let v = validators();
        let check = |value: &str, expected: bool| {
            assert_eq!(
                v.not_modified(&headers(&[(header::IF_NONE_MATCH, value)])),
                expected,
                "{value}"
            );
        };
        check(&v.etag, true);
        check(&format!("W/{}", v.etag), true);
        check(&format!("\"other\", {}", v.etag), true);
        check("*", true);
        check("\"other\"", false);
        // A present but failing If-None-Match outranks a matching If-Modified-Since.
        let both = headers(&[
            (header::IF_NONE_MATCH, "\"other\""),
            (header::IF_MODIFIED_SINCE, "Tue, 14 Nov 2023 22:13:20 GMT"),
        ]);
        assert!(!v.not_modified(&both));
    }

    #[test]
    fn if_modified_since() {
        let v = validators();
        let check = |value: &str, expected: bool| {
            assert_eq!(
                v.not_modified(&headers(&[(header::IF_MODIFIED_SINCE, value)])),
                expected,
                "{value}"
            );
        };
        check("Tue, 14 Nov 2023 22:13:20 GMT", true);
        check("Wed, 15 Nov 2023 00:00:00 GMT", true);
        check("Tue, 14 Nov 2023 22:13:19 GMT", false);
        check("yesterday", false);
        assert!(!v.not_modified(&HeaderMap::new()));
    }

    #[test]
    fn ranges() {
        let check = |value: &str, expected: ByteRange| {
            assert_eq!(parse_range(value, 1000), expected, "{value}");
        };
        check("bytes=0-99", ByteRange::Part { start: 0, end: 99 });
        check(
            "bytes=900-",
            ByteRange::Part {
                start: 900,
                end: 999,
            },
        );
        check(
            "bytes=900-5000",
            ByteRange::Part {
                start: 900,
                end: 999,
            },
        );
        check(
            "bytes=-100",
            ByteRange::Part {
                start: 900,
                end: 999,
            },
        );
        check("bytes=-5000", ByteRange::Part { start: 0, end: 999 });
        check("bytes=1000-", ByteRange::Unsatisfiable);
        check("bytes=-0", ByteRange::Unsatisfiable);
        check("bytes=0-1,5-6", ByteRange::Whole);
        check("bytes=5-1", ByteRange::Whole);
        check("items=0-1", ByteRange::Whole);
        check("bytes=x-y", ByteRange::Whole);
        check("bytes=-", ByteRange::Whole);
        assert_eq!(parse_range("bytes=0-", 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn if_range_keeps_a_range_only_for_the_current_version() {
        let v = validators();
        let range = |if_range: &str| {
            v.range(
                &headers(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, if_range)]),
                1000,
            )
        };
        assert_eq!(range(&v.etag.clone()), ByteRange::Part { start: 0, end: 9 });
        assert_eq!(
            range(&v.last_modified.clone()),
            ByteRange::Part { start: 0, end: 9 }
        );
        assert_eq!(range("\"old\""), ByteRange::Whole);
    }
}
