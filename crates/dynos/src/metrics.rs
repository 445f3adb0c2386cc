//! Runtime metrics of a running dyno: its cgroup read every interval, turned into a sample
//! that the log router keeps and, for apps with `log-runtime-metrics`, logs.

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;
use wharf_logs::metrics::{metrics_line, LoadAverage, Outgoing, Reading, Sample};

use crate::logs::now_micros;
use crate::manager::Shared;
use crate::runner::RunInput;

/// One dyno's sampling schedule and load average.
pub(crate) struct Sampler {
    interval: tokio::time::Interval,
    load: LoadAverage,
    last: Option<Instant>,
}

impl Sampler {
    pub fn new(shared: &Shared) -> Sampler {
        let mut interval = tokio::time::interval(shared.logs.metrics().interval());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Sampler {
            interval,
            load: LoadAverage::default(),
            last: None,
        }
    }

    pub async fn tick(&mut self) {
        self.interval.tick().await;
    }

    /// Reads the dyno's cgroup; records the sample and logs it if the app asked for that.
    pub async fn sample(
        &mut self,
        shared: &Arc<Shared>,
        dyno_id: Uuid,
        input: &RunInput,
        container_id: &str,
    ) {
        let Ok(stats) = shared.runtime.stats(container_id).await else {
            return;
        };
        let now = Instant::now();
        let elapsed = self
            .last
            .replace(now)
            .map(|last| now - last)
            .unwrap_or_default();
        let [load_avg_1m, load_avg_5m, load_avg_15m] = self.load.update(stats.cpu_time_ns, elapsed);
        let sample = Sample {
            at: now_micros(),
            load_avg_1m,
            load_avg_5m,
            load_avg_15m,
            reading: Reading {
                cpu_time_ns: stats.cpu_time_ns,
                memory_total: stats.memory_total_bytes,
                memory_rss: stats.memory_rss_bytes,
                memory_cache: stats.memory_cache_bytes,
                memory_swap: stats.memory_swap_bytes,
                memory_pgpgin: stats.memory_pgpgin,
                memory_pgpgout: stats.memory_pgpgout,
                memory_quota: input.size.memory_mb() * 1024 * 1024,
            },
        };
        let process = input.name.to_string();
        let metrics = shared.logs.metrics();
        metrics.record(input.app_id, &process, sample);
        metrics.queue(Outgoing {
            app_id: input.app_id,
            dyno: process.clone(),
            dyno_id,
            sample,
        });
        if metrics.enabled(input.app_id) {
            shared.logs.append(
                input.app_id,
                metrics_line(&process, input.app_id, dyno_id, &sample),
            );
        }
    }
}
