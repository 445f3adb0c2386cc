//! What one minute holds: an app's requests through the router ([`RouterMinute`]) and one
//! dyno's memory and load ([`DynoMinute`]). Minutes are UTC, named by their first second
//! (unix time, a multiple of 60).

use std::fmt;

use crate::histogram::Histogram;

/// Seconds in a minute.
pub const MINUTE: i64 = 60;

/// The minute `unix_seconds` falls in (its first second).
pub fn minute_of(unix_seconds: i64) -> i64 {
    unix_seconds - unix_seconds.rem_euclid(MINUTE)
}

/// A router error code, `H10` to `H99`: the two digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouterCode(u8);

impl RouterCode {
    /// `H12`; anything else is `None`.
    pub fn parse(code: &str) -> Option<RouterCode> {
        match code.as_bytes() {
            [b'H', tens @ b'1'..=b'9', ones @ b'0'..=b'9'] => {
                Some(RouterCode((tens - b'0') * 10 + (ones - b'0')))
            }
            _ => None,
        }
    }

    /// `H<number>` for 10 to 99.
    pub fn from_number(number: u8) -> Option<RouterCode> {
        (10..=99).contains(&number).then_some(RouterCode(number))
    }

    /// 10 to 99.
    pub fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for RouterCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "H{}", self.0)
    }
}

/// Requests per router error code, codes in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounts(Vec<(RouterCode, u64)>);

impl ErrorCounts {
    pub fn new() -> ErrorCounts {
        ErrorCounts::default()
    }

    pub fn add(&mut self, code: RouterCode, count: u64) {
        if count == 0 {
            return;
        }
        match self.0.binary_search_by_key(&code, |&(c, _)| c) {
            Ok(at) => self.0[at].1 += count,
            Err(at) => self.0.insert(at, (code, count)),
        }
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for &(code, count) in &other.0 {
            self.add(code, count);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (RouterCode, u64)> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, code: RouterCode) -> u64 {
        self.0
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |&(_, n)| n)
    }
}

/// The class of an HTTP status: 2xx, 3xx, 4xx, 5xx (index 0 to 3); 1xx (an upgrade) and
/// anything odd count as requests of no class.
pub fn status_class(status: u16) -> Option<usize> {
    match status {
        200..=299 => Some(0),
        300..=399 => Some(1),
        400..=499 => Some(2),
        500..=599 => Some(3),
        _ => None,
    }
}

/// An app's requests in one minute, as the router reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterMinute {
    pub minute: i64,
    pub requests: u64,
    /// Requests per status class: 2xx, 3xx, 4xx, 5xx.
    pub status: [u64; 4],
    /// The router's total time per request (connect + service), in microseconds; requests no
    /// dyno was tried for have none.
    pub latency: Histogram,
    pub errors: ErrorCounts,
}

impl RouterMinute {
    /// Adds another minute's (or the same minute's, written twice) figures.
    pub fn merge(&mut self, other: &RouterMinute) {
        self.requests += other.requests;
        for (mine, theirs) in self.status.iter_mut().zip(other.status) {
            *mine += theirs;
        }
        self.latency.merge(&other.latency);
        self.errors.merge(&other.errors);
    }
}

/// One reading of a dyno, as the dyno manager samples it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DynoSample {
    /// Unix seconds.
    pub at: i64,
    pub memory_rss: u64,
    pub memory_swap: u64,
    pub memory_cache: u64,
    pub memory_quota: u64,
    pub load_avg_1m: f64,
}

/// One dyno's memory (bytes, the most over the minute) and load (the mean of the minute's
/// samples).
#[derive(Debug, Clone, PartialEq)]
pub struct DynoMinute {
    pub minute: i64,
    /// `web.1`.
    pub dyno: String,
    /// `web`.
    pub process_type: String,
    pub memory_rss: u64,
    pub memory_swap: u64,
    pub memory_cache: u64,
    pub memory_quota: u64,
    pub load_avg_1m: f64,
    /// How many samples the minute holds (weights the mean when minutes merge).
    pub samples: u32,
}

impl DynoMinute {
    /// A minute holding one sample of `dyno`.
    pub fn start(dyno: &str, sample: &DynoSample) -> DynoMinute {
        DynoMinute {
            minute: minute_of(sample.at),
            dyno: dyno.to_owned(),
            process_type: process_type_of(dyno).to_owned(),
            memory_rss: sample.memory_rss,
            memory_swap: sample.memory_swap,
            memory_cache: sample.memory_cache,
            memory_quota: sample.memory_quota,
            load_avg_1m: sample.load_avg_1m,
            samples: 1,
        }
    }

    /// Folds in another sample of the same minute.
    pub fn add(&mut self, sample: &DynoSample) {
        self.merge(&DynoMinute {
            minute: self.minute,
            dyno: String::new(),
            process_type: String::new(),
            memory_rss: sample.memory_rss,
            memory_swap: sample.memory_swap,
            memory_cache: sample.memory_cache,
            memory_quota: sample.memory_quota,
            load_avg_1m: sample.load_avg_1m,
            samples: 1,
        });
    }

    /// Folds in another minute's figures: memory the most, load the mean by samples.
    pub fn merge(&mut self, other: &DynoMinute) {
        self.memory_rss = self.memory_rss.max(other.memory_rss);
        self.memory_swap = self.memory_swap.max(other.memory_swap);
        self.memory_cache = self.memory_cache.max(other.memory_cache);
        self.memory_quota = self.memory_quota.max(other.memory_quota);
        let total = self.samples.saturating_add(other.samples);
        if total > 0 {
            self.load_avg_1m = (self.load_avg_1m * f64::from(self.samples)
                + other.load_avg_1m * f64::from(other.samples))
                / f64::from(total);
        }
        self.samples = total;
    }
}

/// `web` of `web.1` (the whole name when it has no number).
pub fn process_type_of(dyno: &str) -> &str {
    dyno.rsplit_once('.').map_or(dyno, |(kind, _)| kind)
}

/// Whether a dyno name can be stored: what the dyno manager names dynos (`web.1`,
/// `run.1234`), at most 100 bytes of letters, digits, `.`, `_` and `-`.
pub fn valid_dyno_name(dyno: &str) -> bool {
    (1..=100).contains(&dyno.len())
        && dyno
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_codes() {
        assert_eq!(
            RouterCode::parse("H12").map(|c| c.to_string()),
            Some("H12".into())
        );
        assert_eq!(RouterCode::parse("H99").map(RouterCode::number), Some(99));
        for bad in ["H1", "H100", "h12", "R14", "H0x", "H05", ""] {
            assert_eq!(RouterCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn minutes_and_classes() {
        assert_eq!(minute_of(119), 60);
        assert_eq!(minute_of(120), 120);
        assert_eq!(minute_of(-1), -60);
        assert_eq!(status_class(204), Some(0));
        assert_eq!(status_class(499), Some(2));
        assert_eq!(status_class(101), None);
        assert_eq!(process_type_of("web.1"), "web");
        assert_eq!(process_type_of("worker"), "worker");
        assert!(valid_dyno_name("run.1234"));
        assert!(!valid_dyno_name("web 1"));
        assert!(!valid_dyno_name(""));
    }

    #[test]
    fn dyno_minutes_keep_the_most_memory_and_the_mean_load() {
        let sample = |rss: u64, load: f64| DynoSample {
            at: 125,
            memory_rss: rss,
            memory_swap: 0,
            memory_cache: 7,
            memory_quota: 512,
            load_avg_1m: load,
        };
        let mut minute = DynoMinute::start("web.1", &sample(100, 1.0));
        minute.add(&sample(300, 0.0));
        minute.add(&sample(200, 0.5));
        assert_eq!(minute.minute, 120);
        assert_eq!(minute.process_type, "web");
        assert_eq!(minute.memory_rss, 300);
        assert_eq!(minute.samples, 3);
        assert!((minute.load_avg_1m - 0.5).abs() < 1e-9);
    }

    #[test]
    fn error_counts_stay_in_order() {
        let mut counts = ErrorCounts::new();
        let code = |c: &str| RouterCode::parse(c).expect("a code");
        counts.add(code("H12"), 2);
        counts.add(code("H10"), 1);
        counts.add(code("H12"), 1);
        counts.add(code("H80"), 0);
        let listed: Vec<String> = counts.iter().map(|(c, n)| format!("{c}:{n}")).collect();
        assert_eq!(listed, ["H10:1", "H12:3"]);
    }
}
