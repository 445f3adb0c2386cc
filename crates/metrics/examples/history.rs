//! Metrics history benchmark: writes 7 days of one busy app (every minute: 600 requests with
//! latencies spread over about a hundred histogram buckets, some router errors; 10 dynos
//! sampled every 20 s; a few events a day) into a temp data dir, then times the queries the
//! dashboard makes (1h, 24h, 7d of router, dynos and events), and the router's hot path
//! (`record_request`, one thread and two threads on one app).
//!
//! `cargo run --release -p wharf-metrics --example history`. Prints figures; asserts nothing.
//!
//! `... --example history -- --into DATA_DIR --app APP_ID` writes the same week into a
//! stopped server's data dir for one of its apps, and stops there (`scripts/bench-dashboard`
//! measures the dashboard's pages over it).

use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;
use uuid::Uuid;
use wharf_metrics::{DynoSample, Event, EventKind, Range, Recorder};

const DAYS: i64 = 7;
const REQUESTS_PER_MINUTE: u64 = 600;
const DYNOS: usize = 10;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let into = match args.as_slice() {
        [] => None,
        [into, dir, app, id] if into == "--into" && app == "--app" => {
            Some((std::path::PathBuf::from(dir), Uuid::parse_str(id)?))
        }
        _ => anyhow::bail!("usage: history [--into DATA_DIR --app APP_ID]"),
    };
    let temp = tempfile::tempdir()?;
    let (dir, app) = match &into {
        Some((dir, app)) => (dir.as_path(), *app),
        None => (temp.path(), Uuid::new_v4()),
    };
    let recorder = Recorder::open(dir, 8)?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs() as i64;
    let first = now - DAYS * 24 * 3600;
    let dynos: Vec<String> = (1..=DYNOS).map(|n| format!("web.{n}")).collect();

    let started = Instant::now();
    let mut random = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        // xorshift: reproducible, no dependency.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let mut minute = first - first.rem_euclid(60);
    let mut minutes = 0;
    while minute < now {
        for _ in 0..REQUESTS_PER_MINUTE {
            let r = next();
            // Mostly 1-50 ms, a tail to a few seconds.
            let ms = if r % 100 < 95 {
                1 + r % 50
            } else {
                50 + r % 3000
            };
            let micros = ms * 1000 + (r >> 32) % 1000;
            let (status, code) = match r % 1000 {
                0 => (503, Some("H12")),
                1 => (503, Some("H13")),
                2..=20 => (404, None),
                21..=30 => (302, None),
                _ => (200, None),
            };
            recorder.record_request_at(
                app,
                minute + (r % 60) as i64,
                status,
                Some(Duration::from_micros(micros)),
                code,
            );
        }
        for dyno in &dynos {
            for second in [0, 20, 40] {
                let r = next();
                recorder.record_dyno(
                    app,
                    dyno,
                    DynoSample {
                        at: minute + second,
                        memory_rss: (200 << 20) + r % (100 << 20),
                        memory_swap: r % (1 << 20),
                        memory_cache: (20 << 20) + r % (10 << 20),
                        memory_quota: 512 << 20,
                        load_avg_1m: (r % 200) as f64 / 100.0,
                    },
                );
            }
        }
        if minute % (6 * 3600) == 0 {
            let at = OffsetDateTime::from_unix_timestamp(minute)?;
            recorder.record_event(
                app,
                Event::new(
                    at,
                    EventKind::Deploy,
                    None,
                    "Deploy 1234abc by a@example.com",
                ),
            );
            recorder.record_event(
                app,
                Event::new(at, EventKind::Restart, Some("web.1"), "Restarting"),
            );
        }
        minutes += 1;
        if minutes % 600 == 0 {
            recorder.flush()?;
        }
        minute += 60;
    }
    recorder.flush_all()?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir.join("metrics").join(app.to_string()))? {
        bytes += entry?.metadata()?.len();
    }
    println!(
        "wrote {minutes} minutes ({} requests, {DYNOS} dynos) in {:.1}s: {:.1} MB of day files",
        minutes * REQUESTS_PER_MINUTE,
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );

    if into.is_some() {
        return Ok(());
    }
    // A restarted server: nothing in memory, everything from the files.
    let recorder = Recorder::open(dir, 8)?;
    println!(
        "\n{:<10} {:>6} {:>10} {:>10} {:>10} {:>8}",
        "query", "range", "first", "median", "max", "points"
    );
    for range in [Range::Hour, Range::Day, Range::Week] {
        let router = time_query(|| {
            let series = recorder.router(app, range, now)?;
            Ok(series.points.len())
        })?;
        print_row("router", range, router);
        let dynos = time_query(|| {
            let series = recorder.dynos(app, range, now)?;
            Ok(series.iter().map(|s| s.points.len()).sum())
        })?;
        print_row("dynos", range, dynos);
        let events = time_query(|| Ok(recorder.events(app, range, now)?.1.len()))?;
        print_row("events", range, events);
    }

    hot_path();
    Ok(())
}

/// (first run, median, max over 7 runs, what it returned).
fn time_query(
    mut query: impl FnMut() -> anyhow::Result<usize>,
) -> anyhow::Result<(Duration, Duration, Duration, usize)> {
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..7 {
        let started = Instant::now();
        points = query()?;
        times.push(started.elapsed());
    }
    let first = times[0];
    times.sort();
    Ok((
        first,
        times[times.len() / 2],
        times[times.len() - 1],
        points,
    ))
}

fn print_row(
    name: &str,
    range: Range,
    (first, median, max, points): (Duration, Duration, Duration, usize),
) {
    let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1000.0);
    println!(
        "{name:<10} {:>6} {:>10} {:>10} {:>10} {points:>8}",
        range.as_str(),
        ms(first),
        ms(median),
        ms(max)
    );
}

/// `record_request` as the router calls it: per call, on one thread and on two threads
/// recording for the same app.
fn hot_path() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            println!("no hot path figures: {error}");
            return;
        }
    };
    let Ok(recorder) = Recorder::open(dir.path(), 7) else {
        println!("no hot path figures");
        return;
    };
    let app = Uuid::new_v4();
    const CALLS: u64 = 5_000_000;
    println!();
    for threads in [1u64, 2] {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                let recorder = &recorder;
                scope.spawn(move || {
                    for n in 0..CALLS / threads {
                        recorder.record_request(
                            app,
                            200,
                            Some(Duration::from_micros(1000 + (n * 7 + t) % 40_000)),
                            None,
                        );
                    }
                });
            }
        });
        let elapsed = started.elapsed();
        println!(
            "record_request, {threads} thread(s) on one app: {:.0} ns per call ({:.1} M calls/s)",
            elapsed.as_secs_f64() * 1e9 / CALLS as f64 * threads as f64,
            CALLS as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
}
