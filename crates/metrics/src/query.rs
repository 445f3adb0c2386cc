//! Ranges and series: the minutes of a range folded into steps (60 s for an hour or a day,
//! 600 s for a week). Pure: the recorder hands in the minutes it read.

use std::collections::HashMap;
use std::fmt;

use crate::histogram::Histogram;
use crate::minute::{DynoMinute, ErrorCounts, RouterMinute};

/// How far back a query looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    #[default]
    Hour,
    Day,
    Week,
}

impl Range {
    /// What a query may ask for, as a message lists them.
    pub const ACCEPTED: &'static str = "1h, 24h or 7d";

    /// `1h`, `24h` or `7d`.
    pub fn parse(text: &str) -> Option<Range> {
        match text {
            "1h" => Some(Range::Hour),
            "24h" => Some(Range::Day),
            "7d" => Some(Range::Week),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Range::Hour => 3600,
            Range::Day => 24 * 3600,
            Range::Week => 7 * 24 * 3600,
        }
    }

    /// Seconds per point.
    pub fn step(self) -> i64 {
        match self {
            Range::Hour | Range::Day => 60,
            Range::Week => 600,
        }
    }

    /// The window ending with the step `now` is in: `[from, to)`, both multiples of the step.
    pub fn window(self, now: i64) -> Window {
        let step = self.step();
        let to = now - now.rem_euclid(step) + step;
        Window {
            range: self,
            from: to - self.seconds(),
            to,
            step,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a query covers: unix seconds `[from, to)` in steps of `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub range: Range,
    pub from: i64,
    pub to: i64,
    pub step: i64,
}

impl Window {
    pub fn contains(&self, unix_seconds: i64) -> bool {
        (self.from..self.to).contains(&unix_seconds)
    }

    /// How many steps the window has.
    pub fn steps(&self) -> usize {
        ((self.to - self.from) / self.step) as usize
    }

    /// The step `unix_seconds` falls in, counted from 0 at `from`.
    pub fn index(&self, unix_seconds: i64) -> Option<usize> {
        self.contains(unix_seconds)
            .then(|| ((unix_seconds - self.from) / self.step) as usize)
    }
}

/// An app's requests over a window: a point per step that had any, the whole window's
/// totals, and its router errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSeries {
    pub window: Window,
    /// Each step's minutes merged (`minute` is the step's start), oldest first.
    pub points: Vec<RouterMinute>,
    pub totals: RouterMinute,
    pub errors: ErrorCounts,
}

/// Folds router minutes (any order, a minute possibly several times) into a window's steps.
pub struct RouterFold {
    window: Window,
    steps: Vec<Option<RouterMinute>>,
}

impl RouterFold {
    pub fn new(window: Window) -> RouterFold {
        RouterFold {
            window,
            steps: vec![None; window.steps()],
        }
    }

    /// Adds a minute; one outside the window is ignored.
    pub fn add(&mut self, minute: RouterMinute) {
        let Some(index) = self.window.index(minute.minute) else {
            return;
        };
        match &mut self.steps[index] {
            Some(step) => step.merge(&minute),
            empty => {
                *empty = Some(RouterMinute {
                    minute: self.window.from + index as i64 * self.window.step,
                    ..minute
                })
            }
        }
    }

    pub fn finish(self) -> RouterSeries {
        let points: Vec<RouterMinute> = self.steps.into_iter().flatten().collect();
        let mut totals = RouterMinute {
            minute: self.window.from,
            ..RouterMinute::default()
        };
        for point in &points {
            totals.requests += point.requests;
            for (sum, n) in totals.status.iter_mut().zip(point.status) {
                *sum += n;
            }
            totals.errors.merge(&point.errors);
        }
        totals.latency = Histogram::merge_all(points.iter().map(|p| &p.latency));
        RouterSeries {
            window: self.window,
            errors: totals.errors.clone(),
            points,
            totals,
        }
    }
}

/// Folds `minutes` into `window`'s steps.
pub fn router_series(window: Window, minutes: &[RouterMinute]) -> RouterSeries {
    let mut fold = RouterFold::new(window);
    for minute in minutes {
        fold.add(minute.clone());
    }
    fold.finish()
}

/// One step of a dyno: memory (bytes) the most of the step, load the mean of its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DynoPoint {
    /// The step's start, unix seconds.
    pub at: i64,
    pub memory_rss: u64,
    pub memory_swap: u64,
    pub memory_cache: u64,
    pub memory_quota: u64,
    pub load_avg_1m: f64,
    pub samples: u32,
}

impl DynoPoint {
    fn merge(&mut self, other: &DynoPoint) {
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

/// One dyno over a window: a point per step with samples.
#[derive(Debug, Clone, PartialEq)]
pub struct DynoSeries {
    pub dyno: String,
    pub process_type: String,
    /// Oldest first.
    pub points: Vec<DynoPoint>,
}

/// Folds dyno minutes into a series per dyno.
pub struct DynoFold {
    window: Window,
    /// Dyno name to its index in `dynos`.
    index: HashMap<String, usize>,
    dynos: Vec<(String, String, Vec<Option<DynoPoint>>)>,
}

impl DynoFold {
    pub fn new(window: Window) -> DynoFold {
        DynoFold {
            window,
            index: HashMap::new(),
            dynos: Vec::new(),
        }
    }

    /// Adds one minute of `dyno`; one outside the window is ignored.
    pub fn add(&mut self, dyno: &str, process_type: &str, minute: i64, figures: &DynoPoint) {
        let Some(step) = self.window.index(minute) else {
            return;
        };
        let at = match self.index.get(dyno) {
            Some(&at) => at,
            None => {
                self.index.insert(dyno.to_owned(), self.dynos.len());
                self.dynos.push((
                    dyno.to_owned(),
                    process_type.to_owned(),
                    vec![None; self.window.steps()],
                ));
                self.dynos.len() - 1
            }
        };
        match &mut self.dynos[at].2[step] {
            Some(point) => point.merge(figures),
            empty => {
                *empty = Some(DynoPoint {
                    at: self.window.from + step as i64 * self.window.step,
                    ..*figures
                })
            }
        }
    }

    pub fn add_minute(&mut self, minute: &DynoMinute) {
        self.add(
            &minute.dyno,
            &minute.process_type,
            minute.minute,
            &DynoPoint {
                at: minute.minute,
                memory_rss: minute.memory_rss,
                memory_swap: minute.memory_swap,
                memory_cache: minute.memory_cache,
                memory_quota: minute.memory_quota,
                load_avg_1m: minute.load_avg_1m,
                samples: minute.samples,
            },
        );
    }

    /// The dynos in name order (`web.2` before `web.10`).
    pub fn finish(self) -> Vec<DynoSeries> {
        let mut series: Vec<DynoSeries> = self
            .dynos
            .into_iter()
            .map(|(dyno, process_type, steps)| DynoSeries {
                dyno,
                process_type,
                points: steps.into_iter().flatten().collect(),
            })
            .collect();
        series.sort_by(|a, b| dyno_order(&a.dyno).cmp(&dyno_order(&b.dyno)));
        series
    }
}

/// `web.2` before `web.10`.
fn dyno_order(dyno: &str) -> (&str, u64, &str) {
    match dyno.rsplit_once('.') {
        Some((kind, number)) => (kind, number.parse().unwrap_or(u64::MAX), dyno),
        None => (dyno, 0, dyno),
    }
}

/// Folds `minutes` into a series per dyno.
pub fn dyno_series(window: Window, minutes: &[DynoMinute]) -> Vec<DynoSeries> {
    let mut fold = DynoFold::new(window);
    for minute in minutes {
        fold.add_minute(minute);
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minute::{DynoSample, RouterCode};

    #[test]
    fn windows_end_with_the_current_step() {
        let hour = Range::Hour.window(1_000_030);
        assert_eq!((hour.from, hour.to, hour.step), (996_480, 1_000_080, 60));
        let week = Range::Week.window(1_000_030);
        assert_eq!(week.to, 1_000_200);
        assert_eq!(week.to - week.from, 7 * 24 * 3600);
        assert_eq!(Range::parse("24h"), Some(Range::Day));
        assert_eq!(Range::parse("2h"), None);
    }

    fn minute(at: i64, requests: u64, latencies: &[u64]) -> RouterMinute {
        let mut errors = ErrorCounts::new();
        errors.add(RouterCode::parse("H12").expect("a code"), 1);
        RouterMinute {
            minute: at,
            requests,
            status: [requests - 1, 0, 0, 1],
            latency: Histogram::of(latencies.iter().copied()),
            errors,
        }
    }

    #[test]
    fn router_minutes_fold_into_steps() {
        let window = Range::Week.window(6_000);
        let minutes = [
            minute(5_400, 3, &[10, 20, 30]),
            minute(5_460, 2, &[40, 50]),
            // The same minute again (written before and after a restart).
            minute(5_400, 1, &[60]),
            minute(4_800, 2, &[1, 2]),
            // Outside the window.
            minute(window.from - 60, 5, &[1]),
            minute(window.to, 5, &[1]),
        ];
        let series = router_series(window, &minutes);
        let at: Vec<i64> = series.points.iter().map(|p| p.minute).collect();
        assert_eq!(at, [4_800, 5_400]);
        let last = &series.points[1];
        assert_eq!(last.requests, 6);
        assert_eq!(last.status, [3, 0, 0, 3]);
        assert_eq!(last.latency, Histogram::of([10, 20, 30, 40, 50, 60]));
        assert_eq!(series.totals.requests, 8);
        assert_eq!(series.totals.latency.max(), Some(60));
        assert_eq!(
            series.errors.get(RouterCode::parse("H12").expect("a code")),
            4
        );
    }

    #[test]
    fn dyno_minutes_fold_into_steps_per_dyno() {
        let window = Range::Week.window(6_000);
        let sample = |at: i64, rss: u64, load: f64| DynoSample {
            at,
            memory_rss: rss,
            memory_swap: 0,
            memory_cache: 0,
            memory_quota: 100,
            load_avg_1m: load,
        };
        let minutes = [
            DynoMinute::start("web.10", &sample(5_400, 1, 1.0)),
            DynoMinute::start("web.2", &sample(5_400, 5, 1.0)),
            DynoMinute::start("web.2", &sample(5_460, 9, 0.0)),
            DynoMinute::start("worker.1", &sample(4_800, 3, 0.5)),
        ];
        let series = dyno_series(window, &minutes);
        let names: Vec<&str> = series.iter().map(|s| s.dyno.as_str()).collect();
        assert_eq!(names, ["web.2", "web.10", "worker.1"]);
        assert_eq!(series[0].points.len(), 1);
        assert_eq!(series[0].points[0].at, 5_400);
        assert_eq!(series[0].points[0].memory_rss, 9);
        assert!((series[0].points[0].load_avg_1m - 0.5).abs() < 1e-9);
        assert_eq!(series[2].process_type, "worker");
    }
}
