//! The day files' line formats (format 1). One record per line, `\n`-terminated; a line
//! that does not parse (the torn end of a write a SIGKILL cut short) is skipped on reading.
//!
//! - router (`<day>.router`), fields separated by one space:
//!   `MINUTE REQUESTS N2XX N3XX N4XX N5XX MAX BUCKETS ERRORS`, where `MINUTE` is unix
//!   seconds, `MAX` the largest latency in µs (or `-`), `BUCKETS` the latency histogram's
//!   non-empty buckets as `BUCKET:COUNT` joined by `,` (or `-`; see [`crate::histogram`]) and
//!   `ERRORS` the router error codes as `H12:COUNT` joined by `,` (or `-`):
//!   `1732269600 120 100 5 10 5 35012 40:3,97:7 H12:1`
//! - dynos (`<day>.dynos`): `MINUTE DYNO TYPE RSS SWAP CACHE QUOTA LOAD SAMPLES`, memory in
//!   bytes: `1732269600 web.1 web 52428800 0 1048576 536870912 0.25 3`
//! - events (`<day>.events`): a JSON object `{"at":MICROS,"kind":"deploy","dyno":null,
//!   "message":"..."}`, `at` in unix microseconds.
//!
//! A minute may appear twice in a file (the part written at a shutdown and the rest after the
//! restart): readers merge them.

use std::fmt::Write;

use time::OffsetDateTime;

use crate::event::{Event, EventKind};
use crate::histogram::Histogram;
use crate::minute::{valid_dyno_name, DynoMinute, ErrorCounts, RouterCode, RouterMinute};
use crate::query::DynoPoint;

/// The minute a router or dynos line is about, without parsing the rest (to skip lines
/// outside a query's range cheaply).
pub fn line_minute(line: &str) -> Option<i64> {
    line.split(' ').next()?.parse().ok()
}

pub fn write_router(out: &mut String, minute: &RouterMinute) {
    let [s2, s3, s4, s5] = minute.status;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{} {} {s2} {s3} {s4} {s5} ",
        minute.minute, minute.requests
    );
    match minute.latency.max() {
        Some(max) => {
            let _ = write!(out, "{max} ");
        }
        None => out.push_str("- "),
    }
    if minute.latency.is_empty() {
        out.push('-');
    }
    for (n, (bucket, count)) in minute.latency.buckets().iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(out, "{bucket}:{count}");
    }
    out.push(' ');
    if minute.errors.is_empty() {
        out.push('-');
    }
    for (n, (code, count)) in minute.errors.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(out, "{code}:{count}");
    }
    out.push('\n');
}

/// Parses a router line. Byte by byte: a week of a busy app is ten thousand lines of a few
/// hundred numbers each.
pub fn parse_router(line: &str) -> Option<RouterMinute> {
    let rest = line.as_bytes();
    let (minute, rest) = field(rest)?;
    let (requests, rest) = field(rest)?;
    let (s2, rest) = field(rest)?;
    let (s3, rest) = field(rest)?;
    let (s4, rest) = field(rest)?;
    let (s5, rest) = field(rest)?;
    let (max, rest) = match rest.strip_prefix(b"- ") {
        Some(rest) => (None, rest),
        None => {
            let (max, rest) = field(rest)?;
            (Some(max), rest)
        }
    };
    let (latency, rest) = match rest.strip_prefix(b"- ") {
        Some(rest) => {
            if max.is_some() {
                return None;
            }
            (Histogram::new(), rest)
        }
        None => {
            let mut pairs = Vec::new();
            let mut rest = rest;
            loop {
                let (bucket, after) = number(rest)?;
                let (count, after) = number(expect(after, b':')?)?;
                pairs.push((u16::try_from(bucket).ok()?, count));
                match after.split_first() {
                    Some((b',', after)) => rest = after,
                    Some((b' ', after)) => {
                        rest = after;
                        break;
                    }
                    _ => return None,
                }
            }
            (Histogram::from_parts(pairs, max?)?, rest)
        }
    };
    let mut errors = ErrorCounts::new();
    if rest != b"-" {
        let mut rest = rest;
        loop {
            let (code, after) = match rest {
                [b'H', tens, ones, after @ ..] => {
                    let text = [b'H', *tens, *ones];
                    (RouterCode::parse(std::str::from_utf8(&text).ok()?)?, after)
                }
                _ => return None,
            };
            let (count, after) = number(expect(after, b':')?)?;
            errors.add(code, count);
            match after.split_first() {
                Some((b',', after)) => rest = after,
                None => break,
                _ => return None,
            }
        }
    }
    Some(RouterMinute {
        minute: i64::try_from(minute).ok()?,
        requests,
        status: [s2, s3, s4, s5],
        latency,
        errors,
    })
}

/// An unsigned decimal at the start of `bytes`, and what follows it.
fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut value = 0u64;
    for &digit in &bytes[..digits] {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some((value, &bytes[digits..]))
}

/// A number followed by a space.
fn field(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (value, rest) = number(bytes)?;
    Some((value, expect(rest, b' ')?))
}

fn expect(bytes: &[u8], byte: u8) -> Option<&[u8]> {
    match bytes.split_first() {
        Some((&first, rest)) if first == byte => Some(rest),
        _ => None,
    }
}

pub fn write_dyno(out: &mut String, minute: &DynoMinute) {
    let load = if minute.load_avg_1m.is_finite() {
        minute.load_avg_1m
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "{} {} {} {} {} {} {} {load} {}",
        minute.minute,
        minute.dyno,
        minute.process_type,
        minute.memory_rss,
        minute.memory_swap,
        minute.memory_cache,
        minute.memory_quota,
        minute.samples
    );
}

pub fn parse_dyno(line: &str) -> Option<DynoMinute> {
    let (dyno, process_type, point) = parse_dyno_fields(line)?;
    Some(DynoMinute {
        minute: point.at,
        dyno: dyno.to_owned(),
        process_type: process_type.to_owned(),
        memory_rss: point.memory_rss,
        memory_swap: point.memory_swap,
        memory_cache: point.memory_cache,
        memory_quota: point.memory_quota,
        load_avg_1m: point.load_avg_1m,
        samples: point.samples,
    })
}

/// A dynos line as the dyno, its process type and its figures (`at` is the minute), borrowed
/// from the line: queries fold a week of lines without a copy of the names.
pub fn parse_dyno_fields(line: &str) -> Option<(&str, &str, DynoPoint)> {
    let mut fields = line.split(' ');
    let at = fields.next()?.parse().ok()?;
    let dyno = fields.next()?;
    let process_type = fields.next()?;
    if !valid_dyno_name(dyno) || !valid_dyno_name(process_type) {
        return None;
    }
    let mut number = || -> Option<u64> { fields.next()?.parse().ok() };
    let (memory_rss, memory_swap, memory_cache, memory_quota) =
        (number()?, number()?, number()?, number()?);
    let load_avg_1m: f64 = fields.next()?.parse().ok()?;
    let samples = fields.next()?.parse().ok()?;
    if fields.next().is_some() || !load_avg_1m.is_finite() {
        return None;
    }
    Some((
        dyno,
        process_type,
        DynoPoint {
            at,
            memory_rss,
            memory_swap,
            memory_cache,
            memory_quota,
            load_avg_1m,
            samples,
        },
    ))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EventLine<'a> {
    at: i64,
    kind: &'a str,
    dyno: Option<&'a str>,
    message: &'a str,
}

pub fn write_event(out: &mut String, event: &Event) {
    let at = i64::try_from(event.at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
    let kind = event.kind.to_string();
    let line = EventLine {
        at,
        kind: &kind,
        dyno: event.dyno.as_deref(),
        message: &event.message,
    };
    // Serializing plain strings and numbers cannot fail; JSON escapes every newline.
    if let Ok(json) = serde_json::to_string(&line) {
        out.push_str(&json);
        out.push('\n');
    }
}

pub fn parse_event(line: &str) -> Option<Event> {
    #[derive(serde::Deserialize)]
    struct Owned {
        at: i64,
        kind: String,
        dyno: Option<String>,
        message: String,
    }
    let owned: Owned = serde_json::from_str(line).ok()?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(owned.at) * 1000).ok()?;
    let kind = EventKind::parse(&owned.kind)?;
    if owned.dyno.as_deref().is_some_and(|d| !valid_dyno_name(d)) {
        return None;
    }
    Some(Event::new(at, kind, owned.dyno.as_deref(), &owned.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn router_minute() -> RouterMinute {
        let mut errors = ErrorCounts::new();
        errors.add(RouterCode::parse("H12").expect("a code"), 1);
        errors.add(RouterCode::parse("H10").expect("a code"), 2);
        RouterMinute {
            minute: 1_732_269_600,
            requests: 120,
            status: [100, 5, 10, 5],
            latency: Histogram::of([12, 13, 35_012, 800]),
            errors,
        }
    }

    #[test]
    fn router_lines_read_back() {
        let mut out = String::new();
        write_router(&mut out, &router_minute());
        write_router(
            &mut out,
            &RouterMinute {
                minute: 60,
                ..RouterMinute::default()
            },
        );
        expect_lines(
            &out,
            "1732269600 120 100 5 10 5 35012 12:1,13:1,178:1,354:1 H10:2,H12:1\n60 0 0 0 0 0 - - -\n",
        );
        let mut lines = out.lines();
        assert_eq!(lines.next().and_then(parse_router), Some(router_minute()));
        assert_eq!(line_minute(lines.next().expect("a line")), Some(60));
    }

    #[test]
    fn damaged_router_lines_are_refused() {
        for line in [
            "",
            "1732269600 120 100 5 10 5 35012 12:1,13:1,178:1,354:1",
            "1732269600 120 100 5 10 5 35012 12:1,13:1,178:1,354:1 H10:2,H12:1 extra",
            "1732269600 120 100 5 10 5 35012 13:1,12:1 -",
            "1732269600 120 100 5 10 5 1 12:1 -",
            "1732269600 120 100 5 10 5 - 12:1 -",
            "1732269600 120 100 5 10 5 35012 232:1 R14:1",
            "1732269600 120 100 5 1",
        ] {
            assert_eq!(parse_router(line), None, "{line:?}");
        }
    }

    #[test]
    fn dyno_lines_read_back() {
        let minute = DynoMinute {
            minute: 1_732_269_600,
            dyno: "web.1".into(),
            process_type: "web".into(),
            memory_rss: 52_428_800,
            memory_swap: 0,
            memory_cache: 1_048_576,
            memory_quota: 536_870_912,
            load_avg_1m: 0.25,
            samples: 3,
        };
        let mut out = String::new();
        write_dyno(&mut out, &minute);
        expect_lines(
            &out,
            "1732269600 web.1 web 52428800 0 1048576 536870912 0.25 3\n",
        );
        assert_eq!(parse_dyno(out.trim_end()), Some(minute));
        assert_eq!(parse_dyno("1732269600 web.1 web 52428800 0 1048576"), None);
        assert_eq!(
            parse_dyno("1732269600 ../x web 52428800 0 1048576 536870912 0.25 3"),
            None
        );
        assert_eq!(
            parse_dyno("1732269600 web.1 web 52428800 0 1048576 536870912 NaN 3"),
            None
        );
    }

    #[test]
    fn event_lines_read_back() {
        let event = Event::new(
            datetime!(2026-11-22 10:00:20.123456 UTC),
            EventKind::Config,
            None,
            "Set FOO config vars by a@example.com\nwith a newline",
        );
        let mut out = String::new();
        write_event(&mut out, &event);
        assert_eq!(out.lines().count(), 1);
        assert_eq!(parse_event(out.trim_end()), Some(event));
        assert_eq!(
            parse_event("{\"at\":1,\"kind\":\"nope\",\"dyno\":null,\"message\":\"\"}"),
            None
        );
        assert_eq!(
            parse_event("{\"at\":1,\"kind\":\"crash\",\"dyno\":null,\"mess"),
            None
        );
    }

    fn expect_lines(actual: &str, expected: &str) {
        assert_eq!(actual, expected);
    }
}
