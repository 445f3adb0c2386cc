//! The recorder against real files in a temp dir: what it records reads back the same from
//! memory, from the files, and after a restart; repeating events are counted once per
//! minute; a deleted app's files go.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use uuid::Uuid;
use wharf_metrics::{DynoSample, Event, EventKind, Range, Recorder, RouterCode};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

/// Requests in three past minutes and the current one: `(minute offset, status, ms, code)`.
fn record_traffic(recorder: &Recorder, app: Uuid, base: i64) {
    for (offset, status, ms, code) in [
        (-180, 200, 10, None),
        (-180, 200, 20, None),
        (-120, 302, 5, None),
        (-120, 404, 7, None),
        (-60, 503, 30_000, Some("H12")),
        (-60, 503, 30_000, Some("H12")),
        (0, 200, 40, None),
    ] {
        recorder.record_request_at(
            app,
            base + offset,
            status,
            Some(Duration::from_millis(ms)),
            code,
        );
    }
    // A request no dyno was tried for has no time.
    recorder.record_request_at(app, base, 503, None, Some("H14"));
}

fn check_traffic(recorder: &Recorder, app: Uuid, base: i64) {
    let series = recorder.router(app, Range::Hour, base).unwrap();
    let points: Vec<(i64, u64, [u64; 4])> = series
        .points
        .iter()
        .map(|p| {
            (
                p.minute - (base - base.rem_euclid(60)),
                p.requests,
                p.status,
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            (-180, 2, [2, 0, 0, 0]),
            (-120, 2, [0, 1, 1, 0]),
            (-60, 2, [0, 0, 0, 2]),
            (0, 2, [1, 0, 0, 1]),
        ]
    );
    assert_eq!(series.totals.requests, 8);
    assert_eq!(series.totals.latency.count(), 7);
    assert_eq!(series.totals.latency.max(), Some(30_000_000));
    let h12 = RouterCode::parse("H12").unwrap();
    let h14 = RouterCode::parse("H14").unwrap();
    assert_eq!((series.errors.get(h12), series.errors.get(h14)), (2, 1));
    let p50 = series.points[0].latency.quantile(0.5).unwrap();
    assert!(p50.abs_diff(10_000) * 64 <= 10_000, "{p50}");
}

#[test]
fn requests_read_back_from_memory_files_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = Uuid::new_v4();
    let base = now();
    let recorder = Recorder::open(dir.path(), 7).unwrap();
    record_traffic(&recorder, app, base);
    // From memory alone.
    check_traffic(&recorder, app, base);
    // Finished minutes on disk, the current one in memory: each counted once.
    recorder.flush().unwrap();
    check_traffic(&recorder, app, base);
    recorder.flush().unwrap();
    check_traffic(&recorder, app, base);
    // A shutdown writes the current minute too; a new recorder reads it all back.
    recorder.flush_all().unwrap();
    drop(recorder);
    let restarted = Recorder::open(dir.path(), 7).unwrap();
    check_traffic(&restarted, app, base);
    // The rest of the current minute after the restart merges with what was written.
    restarted.record_request_at(app, base, 200, Some(Duration::from_millis(1)), None);
    restarted.flush_all().unwrap();
    let series = restarted.router(app, Range::Hour, base).unwrap();
    assert_eq!(series.points.last().unwrap().requests, 3);
    // Another app sees nothing of it.
    let other = restarted.router(Uuid::new_v4(), Range::Hour, base).unwrap();
    assert!(other.points.is_empty());
    assert_eq!(other.totals.latency.quantile(0.5), None);
}

#[test]
fn a_torn_last_line_is_skipped_and_the_next_write_survives() {
    let dir = tempfile::tempdir().unwrap();
    let app = Uuid::new_v4();
    let base = now();
    let recorder = Recorder::open(dir.path(), 7).unwrap();
    recorder.record_request_at(app, base - 120, 200, Some(Duration::from_millis(3)), None);
    recorder.flush().unwrap();
    // What a SIGKILL halfway through the next append leaves.
    let app_dir = dir.path().join("metrics").join(app.to_string());
    let file = std::fs::read_dir(&app_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "router"))
        .unwrap();
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&text.clone()[..12]);
    std::fs::write(&file, &text).unwrap();
    let restarted = Recorder::open(dir.path(), 7).unwrap();
    assert_eq!(
        restarted
            .router(app, Range::Hour, base)
            .unwrap()
            .totals
            .requests,
        1
    );
    restarted.record_request_at(app, base - 60, 500, Some(Duration::from_millis(3)), None);
    restarted.flush().unwrap();
    let series = restarted.router(app, Range::Hour, base).unwrap();
    assert_eq!(series.totals.requests, 2);
    assert_eq!(series.totals.status, [1, 0, 0, 1]);
}

#[test]
fn dynos_keep_the_most_memory_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let app = Uuid::new_v4();
    let base = now();
    let recorder = Recorder::open(dir.path(), 7).unwrap();
    let sample = |at: i64, rss: u64, load: f64| DynoSample {
        at,
        memory_rss: rss,
        memory_swap: 1,
        memory_cache: 2,
        memory_quota: 512 << 20,
        load_avg_1m: load,
    };
    let minute = base - base.rem_euclid(60);
    recorder.record_dyno(app, "web.1", sample(minute - 120, 100, 1.0));
    recorder.record_dyno(app, "web.1", sample(minute - 100, 300, 0.0));
    recorder.record_dyno(app, "worker.1", sample(minute - 60, 50, 0.5));
    recorder.flush().unwrap();
    recorder.record_dyno(app, "web.1", sample(minute, 70, 0.25));
    recorder.record_dyno(app, "bad name", sample(minute, 70, 0.25));
    let check = |recorder: &Recorder| {
        let series = recorder.dynos(app, Range::Hour, base).unwrap();
        let names: Vec<&str> = series.iter().map(|s| s.dyno.as_str()).collect();
        assert_eq!(names, ["web.1", "worker.1"]);
        let web: Vec<(i64, u64)> = series[0]
            .points
            .iter()
            .map(|p| (p.at - minute, p.memory_rss))
            .collect();
        assert_eq!(web, [(-120, 300), (0, 70)]);
        assert!((series[0].points[0].load_avg_1m - 0.5).abs() < 1e-9);
        assert_eq!(series[1].process_type, "worker");
        // A week folds the minutes into 10-minute steps.
        let week = recorder.dynos(app, Range::Week, base).unwrap();
        assert!(week[0].points.len() <= 2);
        assert_eq!(week[0].points.iter().map(|p| p.memory_rss).max(), Some(300));
    };
    check(&recorder);
    recorder.flush_all().unwrap();
    check(&Recorder::open(dir.path(), 7).unwrap());
}

#[test]
fn events_repeat_once_per_minute_and_releases_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let app = Uuid::new_v4();
    let base = now();
    let minute = base - base.rem_euclid(60);
    let recorder = Recorder::open(dir.path(), 7).unwrap();
    let event = |seconds: i64, kind: EventKind, dyno: Option<&str>, message: &str| {
        Event::new(at(seconds), kind, dyno, message)
    };
    recorder.record_event(
        app,
        event(
            minute - 120,
            EventKind::Config,
            None,
            "Set FOO config vars by a@example.com",
        ),
    );
    recorder.note_release(app, at(minute - 120), "v6");
    let h12 = EventKind::Router(RouterCode::parse("H12").unwrap());
    for second in 0..3 {
        recorder.record_event(
            app,
            event(minute - 60 + second, h12, Some("web.1"), "Request timeout"),
        );
    }
    recorder.record_event(
        app,
        event(minute - 60, h12, Some("web.2"), "Request timeout"),
    );
    recorder.record_event(
        app,
        event(
            minute,
            EventKind::R14,
            Some("web.1"),
            "Error R14 (Memory quota exceeded)",
        ),
    );
    let expected = [
        ("config", None, "Set FOO config vars by a@example.com (v6)"),
        (
            "H12",
            Some("web.1"),
            "Request timeout (3 times in this minute)",
        ),
        ("H12", Some("web.2"), "Request timeout"),
        ("R14", Some("web.1"), "Error R14 (Memory quota exceeded)"),
    ];
    let check = |recorder: &Recorder| {
        let (_, events) = recorder.events(app, Range::Hour, base).unwrap();
        let seen: Vec<(String, Option<&str>, &str)> = events
            .iter()
            .map(|e| (e.kind.to_string(), e.dyno.as_deref(), e.message.as_str()))
            .collect();
        let expected: Vec<(String, Option<&str>, &str)> = expected
            .iter()
            .map(|(k, d, m)| (k.to_string(), *d, *m))
            .collect();
        assert_eq!(seen, expected);
    };
    check(&recorder);
    recorder.flush().unwrap();
    check(&recorder);
    recorder.flush_all().unwrap();
    check(&Recorder::open(dir.path(), 7).unwrap());
}

#[test]
fn a_deleted_app_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = Uuid::new_v4();
    let base = now();
    let recorder = Recorder::open(dir.path(), 7).unwrap();
    recorder.record_request_at(app, base - 120, 200, Some(Duration::from_millis(3)), None);
    recorder.flush().unwrap();
    let app_dir = dir.path().join("metrics").join(app.to_string());
    assert!(app_dir.is_dir());
    recorder.forget_app(app);
    assert!(!app_dir.exists());
    // A request still in flight when the app went records nothing.
    recorder.record_request_at(app, base - 60, 200, Some(Duration::from_millis(3)), None);
    recorder.flush_all().unwrap();
    assert!(!app_dir.exists());
    assert!(recorder
        .router(app, Range::Hour, base)
        .unwrap()
        .points
        .is_empty());
}
