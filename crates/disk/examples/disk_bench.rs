//! Measures the disk pool: `create` and `remove` of a capped directory (median and 90th
//! percentile of N rounds, default 100), in a pool in a temporary dir, with PAUSE_MS between
//! the two (a dyno's life: direct I/O is switched on in the background meanwhile; 0 removes
//! at once, while that switch may still run). Run as root:
//! `cargo run --release -p wharf-disk --example disk_bench [ROUNDS] [CAP_MIB] [PAUSE_MS]`.

use std::time::{Duration, Instant};

use anyhow::Context;
use wharf_disk::DiskPool;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let cap_mib: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2048);
    let pause = Duration::from_millis(args.next().map(|a| a.parse()).transpose()?.unwrap_or(100));
    let scratch = tempfile::Builder::new()
        .prefix("wharf-disk-bench-")
        .tempdir()
        .context("make a temporary dir")?;
    let dir = scratch.path().join("disk");
    let pool = DiskPool::open(&dir, 4 << 30).await?;
    let result = measure(&pool, rounds, cap_mib << 20, pause).await;
    pool.close().await?;
    let (create, remove) = result?;
    println!(
        "{rounds} rounds, {cap_mib} MiB cap, {} ms apart: create median {} p90 {}; remove \
         median {} p90 {}",
        pause.as_millis(),
        show(percentile(&create, 50)),
        show(percentile(&create, 90)),
        show(percentile(&remove, 50)),
        show(percentile(&remove, 90)),
    );
    Ok(())
}

async fn measure(
    pool: &DiskPool,
    rounds: usize,
    cap: u64,
    pause: Duration,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut create, mut remove) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let name = format!("dyno-{round}");
        let started = Instant::now();
        pool.create(&name, cap, (200_000, 200_000)).await?;
        create.push(started.elapsed());
        tokio::time::sleep(pause).await;
        let started = Instant::now();
        pool.remove(&name).await?;
        remove.push(started.elapsed());
    }
    Ok((create, remove))
}

fn percentile(samples: &[Duration], percent: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * percent / 100]
}

fn show(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
