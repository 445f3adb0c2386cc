//! Runtime metrics (Heroku's `log-runtime-metrics`): every interval, each running dyno's
//! load and memory, read from its cgroup, as one `heroku[web.1]` line of `sample#` fields, and
//! the last hour of samples kept per dyno for the API.
//!
//! Load average: a cgroup has no run queue length to read on both cgroup versions, so Wharf
//! feeds the kernel's load-average formula (exponentially damped over 1, 5 and 15 minutes)
//! with the number of CPUs the dyno kept busy over each interval (CPU-time delta divided by
//! wall time). It counts running tasks, not tasks waiting for a CPU, so it reads lower than
//! Heroku's under contention; 1.0 means one CPU fully used on average.
//!
//! When the server keeps a metrics history ([`Metrics::set_history`]), every sample also goes
//! there (per minute, for days), and an app's history goes with the app.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{LogLine, LogSource, Outbox};

/// How often dynos are sampled unless configured (`WHARF_METRICS_INTERVAL`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(20);
/// Samples kept per dyno: an hour at the default interval.
pub const SAMPLES_KEPT: usize = 180;
/// The app feature that writes the samples to the app's log.
pub const FEATURE: &str = "log-runtime-metrics";

/// One reading of a dyno's cgroup, in bytes and pages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    pub cpu_time_ns: u64,
    pub memory_total: u64,
    pub memory_rss: u64,
    pub memory_cache: u64,
    pub memory_swap: u64,
    /// cgroup v1 only.
    pub memory_pgpgin: Option<u64>,
    pub memory_pgpgout: Option<u64>,
    /// The dyno size's memory quota.
    pub memory_quota: u64,
}

/// A sample: a reading plus the load averages at that time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: OffsetDateTime,
    pub load_avg_1m: f64,
    pub load_avg_5m: f64,
    pub load_avg_15m: f64,
    pub reading: Reading,
}

/// The damped load averages of one dyno.
#[derive(Debug, Clone, Default)]
pub struct LoadAverage {
    averages: [f64; 3],
    last_cpu_ns: Option<u64>,
}

const PERIODS: [f64; 3] = [60.0, 300.0, 900.0];

impl LoadAverage {
    /// Folds in the CPU time used since the last call, `elapsed` ago; returns the 1, 5 and 15
    /// minute averages. The first call only records the CPU time.
    pub fn update(&mut self, cpu_time_ns: u64, elapsed: Duration) -> [f64; 3] {
        if let Some(last) = self.last_cpu_ns.replace(cpu_time_ns) {
            let seconds = elapsed.as_secs_f64();
            if seconds > 0.0 {
                let busy = cpu_time_ns.saturating_sub(last) as f64 / 1e9 / seconds;
                for (average, period) in self.averages.iter_mut().zip(PERIODS) {
                    let decay = (-seconds / period).exp();
                    *average = *average * decay + busy * (1.0 - decay);
                }
            }
        }
        self.averages
    }
}

/// `heroku[web.1]: source=web.1 dyno=heroku.<app-id>.<dyno-id> sample#load_avg_1m=...`
pub fn metrics_line(process: &str, app_id: Uuid, dyno_id: Uuid, sample: &Sample) -> LogLine {
    let mb = |bytes: u64| format!("{:.2}MB", bytes as f64 / (1024.0 * 1024.0));
    let r = &sample.reading;
    let mut message = format!(
        "source={process} dyno=heroku.{app_id}.{dyno_id} sample#load_avg_1m={:.2} sample#load_avg_5m={:.2} sample#load_avg_15m={:.2} sample#memory_total={} sample#memory_rss={} sample#memory_cache={} sample#memory_swap={}",
        sample.load_avg_1m,
        sample.load_avg_5m,
        sample.load_avg_15m,
        mb(r.memory_total),
        mb(r.memory_rss),
        mb(r.memory_cache),
        mb(r.memory_swap),
    );
    if let (Some(pgpgin), Some(pgpgout)) = (r.memory_pgpgin, r.memory_pgpgout) {
        message.push_str(&format!(
            " sample#memory_pgpgin={pgpgin}pages sample#memory_pgpgout={pgpgout}pages"
        ));
    }
    message.push_str(&format!(" sample#memory_quota={}", mb(r.memory_quota)));
    LogLine {
        at: sample.at,
        source: LogSource::Heroku,
        process: process.to_owned(),
        message,
    }
}

/// The most samples an agent's host keeps for the control plane while it cannot reach it
/// (the oldest go first): a quarter of an hour of 30 dynos at the default interval.
pub const OUTBOX_SAMPLES: usize = 1350;

/// A sample on its way to the control plane (on an agent's host).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub app_id: Uuid,
    /// The dyno (`web.1`).
    pub dyno: String,
    pub dyno_id: Uuid,
    pub sample: Sample,
}

/// Recent samples per dyno, which apps log them, and the sampling interval. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

struct MetricsInner {
    interval: Mutex<Duration>,
    default_enabled: Mutex<bool>,
    enabled: Mutex<HashMap<Uuid, bool>>,
    samples: Mutex<HashMap<(Uuid, String), VecDeque<Sample>>>,
    history: OnceLock<wharf_metrics::Recorder>,
    /// Samples for the control plane, on an agent's host ([`Metrics::ship_samples`]).
    outbox: OnceLock<Outbox<Outgoing>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Arc::new(MetricsInner {
                interval: Mutex::new(DEFAULT_INTERVAL),
                default_enabled: Mutex::new(false),
                enabled: Mutex::new(HashMap::new()),
                samples: Mutex::new(HashMap::new()),
                history: OnceLock::new(),
                outbox: OnceLock::new(),
            }),
        }
    }
}

impl Metrics {
    pub fn interval(&self) -> Duration {
        *self.inner.interval.lock().expect("metrics lock poisoned")
    }

    /// Sets the sampling interval for dynos started from now on (at least a second).
    pub fn set_interval(&self, interval: Duration) {
        *self.inner.interval.lock().expect("metrics lock poisoned") =
            interval.max(Duration::from_secs(1));
    }

    /// Whether apps without a setting of their own log their samples.
    pub fn set_default_enabled(&self, enabled: bool) {
        *self
            .inner
            .default_enabled
            .lock()
            .expect("metrics lock poisoned") = enabled;
    }

    /// Turns logging of the app's samples on or off.
    pub fn set_enabled(&self, app_id: Uuid, enabled: bool) {
        self.inner
            .enabled
            .lock()
            .expect("metrics lock poisoned")
            .insert(app_id, enabled);
    }

    /// Whether the app's samples go to its log.
    pub fn enabled(&self, app_id: Uuid) -> bool {
        let enabled = self.inner.enabled.lock().expect("metrics lock poisoned");
        enabled.get(&app_id).copied().unwrap_or_else(|| {
            *self
                .inner
                .default_enabled
                .lock()
                .expect("metrics lock poisoned")
        })
    }

    /// Keeps samples, and the platform's events, in `history` too (set once, at start).
    pub fn set_history(&self, history: wharf_metrics::Recorder) {
        if self.inner.history.set(history).is_err() {
            tracing::warn!("the metrics history was already set; keeping the first");
        }
    }

    /// The metrics history, when the server keeps one.
    pub fn history(&self) -> Option<&wharf_metrics::Recorder> {
        self.inner.history.get()
    }

    pub fn record(&self, app_id: Uuid, dyno: &str, sample: Sample) {
        if let Some(history) = self.history() {
            let r = &sample.reading;
            history.record_dyno(
                app_id,
                dyno,
                wharf_metrics::DynoSample {
                    at: sample.at.unix_timestamp(),
                    memory_rss: r.memory_rss,
                    memory_swap: r.memory_swap,
                    memory_cache: r.memory_cache,
                    memory_quota: r.memory_quota,
                    load_avg_1m: sample.load_avg_1m,
                },
            );
        }
        let mut samples = self.inner.samples.lock().expect("metrics lock poisoned");
        let kept = samples.entry((app_id, dyno.to_owned())).or_default();
        if kept.len() >= SAMPLES_KEPT {
            kept.pop_front();
        }
        kept.push_back(sample);
    }

    /// Keeps every dyno sample from now on for [`Metrics::outgoing`] too (an agent's host,
    /// which ships them to the control plane), up to [`OUTBOX_SAMPLES`].
    pub fn ship_samples(&self) {
        self.inner
            .outbox
            .get_or_init(|| Outbox::new(OUTBOX_SAMPLES));
    }

    /// Queues the sample for the control plane, when this host ships them.
    pub fn queue(&self, outgoing: Outgoing) {
        if let Some(outbox) = self.inner.outbox.get() {
            outbox.push(outgoing);
        }
    }

    /// The samples waiting for the control plane, once [`Metrics::ship_samples`] was called.
    pub fn outgoing(&self) -> Option<&Outbox<Outgoing>> {
        self.inner.outbox.get()
    }

    /// The dyno's recent samples, oldest first.
    pub fn samples(&self, app_id: Uuid, dyno: &str) -> Vec<Sample> {
        let samples = self.inner.samples.lock().expect("metrics lock poisoned");
        samples
            .get(&(app_id, dyno.to_owned()))
            .map_or_else(Vec::new, |kept| kept.iter().copied().collect())
    }

    /// Forgets a dyno's samples (when it stops).
    pub fn forget_dyno(&self, app_id: Uuid, dyno: &str) {
        let mut samples = self.inner.samples.lock().expect("metrics lock poisoned");
        samples.remove(&(app_id, dyno.to_owned()));
    }

    /// Forgets an app (when it is deleted), its history too.
    pub fn forget_app(&self, app_id: Uuid) {
        if let Some(history) = self.history() {
            history.forget_app(app_id);
        }
        self.inner
            .samples
            .lock()
            .expect("metrics lock poisoned")
            .retain(|(app, _), _| *app != app_id);
        self.inner
            .enabled
            .lock()
            .expect("metrics lock poisoned")
            .remove(&app_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn samples_are_queued_only_on_a_host_that_ships_them() {
        let metrics = Metrics::default();
        let outgoing = || Outgoing {
            app_id: Uuid::from_u128(1),
            dyno: "web.1".to_owned(),
            dyno_id: Uuid::from_u128(2),
            sample: Sample {
                at: datetime!(2026-11-22 10:00:20 UTC),
                load_avg_1m: 0.0,
                load_avg_5m: 0.0,
                load_avg_15m: 0.0,
                reading: Reading::default(),
            },
        };
        // A server: nothing is kept.
        metrics.queue(outgoing());
        assert!(metrics.outgoing().is_none());
        metrics.ship_samples();
        metrics.queue(outgoing());
        assert_eq!(metrics.outgoing().unwrap().take(10), [outgoing()]);
    }

    #[test]
    fn metrics_line_format() {
        let sample = |pages: Option<u64>| Sample {
            at: datetime!(2026-11-22 10:00:20 UTC),
            load_avg_1m: 0.4567,
            load_avg_5m: 0.1,
            load_avg_15m: 0.0333,
            reading: Reading {
                cpu_time_ns: 0,
                memory_total: 45 * 1024 * 1024 + 512 * 1024,
                memory_rss: 40 * 1024 * 1024,
                memory_cache: 5 * 1024 * 1024,
                memory_swap: 0,
                memory_pgpgin: pages,
                memory_pgpgout: pages.map(|p| p / 2),
                memory_quota: 512 * 1024 * 1024,
            },
        };
        let app = Uuid::from_u128(0x1234);
        let dyno = Uuid::from_u128(0xabcd);
        let v1 = metrics_line("web.1", app, dyno, &sample(Some(12_000)));
        let v2 = metrics_line("worker.2", app, dyno, &sample(None));
        expect_test::expect![[r#"
            2026-11-22T10:00:20.000000+00:00 heroku[web.1]: source=web.1 dyno=heroku.00000000-0000-0000-0000-000000001234.00000000-0000-0000-0000-00000000abcd sample#load_avg_1m=0.46 sample#load_avg_5m=0.10 sample#load_avg_15m=0.03 sample#memory_total=45.50MB sample#memory_rss=40.00MB sample#memory_cache=5.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=12000pages sample#memory_pgpgout=6000pages sample#memory_quota=512.00MB
            2026-11-22T10:00:20.000000+00:00 heroku[worker.2]: source=worker.2 dyno=heroku.00000000-0000-0000-0000-000000001234.00000000-0000-0000-0000-00000000abcd sample#load_avg_1m=0.46 sample#load_avg_5m=0.10 sample#load_avg_15m=0.03 sample#memory_total=45.50MB sample#memory_rss=40.00MB sample#memory_cache=5.00MB sample#memory_swap=0.00MB sample#memory_quota=512.00MB
        "#]]
        .assert_eq(&format!("{v1}\n{v2}\n"));
    }

    #[test]
    fn load_average_follows_busy_cpus() {
        let mut load = LoadAverage::default();
        let interval = Duration::from_secs(20);
        assert_eq!(load.update(1_000_000_000, interval), [0.0; 3]);
        // One CPU busy the whole time: every average climbs towards 1, the 1-minute fastest.
        let mut cpu = 1_000_000_000;
        let mut last = [0.0; 3];
        for _ in 0..30 {
            cpu += 20_000_000_000;
            last = load.update(cpu, interval);
        }
        assert!(last[0] > 0.99 && last[0] <= 1.0, "{last:?}");
        assert!(
            last[0] > last[1] && last[1] > last[2] && last[2] > 0.4,
            "{last:?}"
        );
        // Idle: they fall again.
        let idle = load.update(cpu, interval);
        assert!(idle[0] < last[0]);
    }

    #[test]
    fn keeps_recent_samples_per_dyno() {
        let metrics = Metrics::default();
        let app = Uuid::from_u128(1);
        assert!(!metrics.enabled(app));
        metrics.set_enabled(app, true);
        assert!(metrics.enabled(app));
        let sample = Sample {
            at: datetime!(2026-11-22 10:00:20 UTC),
            load_avg_1m: 0.0,
            load_avg_5m: 0.0,
            load_avg_15m: 0.0,
            reading: Reading::default(),
        };
        for _ in 0..SAMPLES_KEPT + 3 {
            metrics.record(app, "web.1", sample);
        }
        assert_eq!(metrics.samples(app, "web.1").len(), SAMPLES_KEPT);
        assert!(metrics.samples(app, "web.2").is_empty());
        metrics.forget_app(app);
        assert!(metrics.samples(app, "web.1").is_empty());
        assert!(!metrics.enabled(app));
    }
}
