//! The recorder: keeps each app's current minute in memory, appends finished minutes to the
//! day files (a flush every few seconds and at shutdown), deletes what is older than the
//! retention (at start and hourly), and answers queries from the files plus memory.
//!
//! The router calls [`Recorder::record_request`] for every request, so that path is short: a
//! read lock on the app map, the app's own mutex for a few increments, no allocation (but once
//! a minute, when the minute turns) and no IO.
//!
//! Consistency: a flush takes an app's `io` lock, moves its finished minutes out of memory
//! and writes them; a query holds the same lock while it reads the files and then memory, so
//! it sees each minute exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use time::{Date, OffsetDateTime};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::event::{Event, EventKind};
use crate::format;
use crate::histogram::LiveHistogram;
use crate::minute::{
    minute_of, status_class, valid_dyno_name, DynoMinute, DynoSample, ErrorCounts, RouterCode,
    RouterMinute,
};
use crate::query::{DynoFold, DynoSeries, Range, RouterFold, RouterSeries, Window};
use crate::storage::{Kind, Storage};

/// How often finished minutes go to disk.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// How often day files past the retention are deleted (and once at start).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// The most events a query returns (the newest).
pub const MAX_EVENTS: usize = 5000;
/// What an app keeps in memory when the disk refuses writes, per kind: a day of router
/// minutes, then the oldest go.
const MAX_PENDING_ROUTER: usize = 24 * 60;
const MAX_PENDING_DYNOS: usize = 50_000;
const MAX_PENDING_EVENTS: usize = 10_000;
/// A `Release vN created` line belongs to the deploy, rollback or config change logged at
/// most this long before it.
const RELEASE_NOTE_WINDOW: time::Duration = time::Duration::seconds(5);

/// Metrics history for every app. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    apps: RwLock<HashMap<Uuid, Arc<AppRecord>, BuildIdHasher>>,
    /// Deleted apps: a late request or sample of theirs records nothing.
    forgotten: Mutex<HashSet<Uuid>>,
}

struct AppRecord {
    live: Mutex<Live>,
    /// Held by a flush while it writes and by a query while it reads.
    io: Mutex<()>,
    /// Set (under `io`) when the app is deleted: no flush writes for it again.
    forgotten: AtomicBool,
}

/// What an app has not written yet.
#[derive(Default)]
struct Live {
    router: LiveRouter,
    finished_router: Vec<RouterMinute>,
    /// The current minute of each dyno that reported one.
    dynos: Vec<DynoMinute>,
    finished_dynos: Vec<DynoMinute>,
    /// Repeating events of current minutes, with how often each came.
    repeats: Vec<(i64, Event, u64)>,
    events: Vec<Event>,
}

/// The router's current minute of an app, dense so that recording never allocates.
struct LiveRouter {
    minute: i64,
    requests: u64,
    status: [u64; 4],
    latency: LiveHistogram,
    /// Per router error code, `H10` at index 0.
    errors: [u32; 90],
}

impl Default for LiveRouter {
    fn default() -> LiveRouter {
        LiveRouter {
            minute: i64::MIN,
            requests: 0,
            status: [0; 4],
            latency: LiveHistogram::new(),
            errors: [0; 90],
        }
    }
}

impl LiveRouter {
    fn record(&mut self, status: u16, total_us: Option<u64>, code: Option<RouterCode>) {
        self.requests += 1;
        if let Some(class) = status_class(status) {
            self.status[class] += 1;
        }
        if let Some(us) = total_us {
            self.latency.record(us);
        }
        if let Some(code) = code {
            let slot = &mut self.errors[usize::from(code.number() - 10)];
            *slot = slot.saturating_add(1);
        }
    }

    fn error_counts(&self) -> ErrorCounts {
        let mut counts = ErrorCounts::new();
        for (index, &count) in self.errors.iter().enumerate() {
            if count > 0 {
                let code =
                    RouterCode::from_number(index as u8 + 10).expect("indexes map to H10 to H99");
                counts.add(code, u64::from(count));
            }
        }
        counts
    }

    /// The minute so far, if it had requests.
    fn snapshot(&self) -> Option<RouterMinute> {
        (self.requests > 0).then(|| RouterMinute {
            minute: self.minute,
            requests: self.requests,
            status: self.status,
            latency: self.latency.snapshot(),
            errors: self.error_counts(),
        })
    }

    /// The minute so far, if it had requests; starts empty again.
    fn finish(&mut self) -> Option<RouterMinute> {
        if self.requests == 0 {
            return None;
        }
        let errors = self.error_counts();
        let minute = RouterMinute {
            minute: self.minute,
            requests: self.requests,
            status: self.status,
            latency: self.latency.take(),
            errors,
        };
        self.requests = 0;
        self.status = [0; 4];
        self.errors = [0; 90];
        Some(minute)
    }
}

/// What a flush takes out of memory.
#[derive(Default)]
struct Finished {
    router: Vec<RouterMinute>,
    dynos: Vec<DynoMinute>,
    events: Vec<Event>,
}

impl Live {
    fn request(
        &mut self,
        minute: i64,
        status: u16,
        total_us: Option<u64>,
        code: Option<RouterCode>,
    ) {
        // A request finishing as the minute turns on another thread may arrive after the
        // next minute began: it counts in the current one.
        if minute > self.router.minute {
            if let Some(done) = self.router.finish() {
                push_capped(&mut self.finished_router, done, MAX_PENDING_ROUTER);
            }
            self.router.minute = minute;
        }
        self.router.record(status, total_us, code);
    }

    fn sample(&mut self, dyno: &str, sample: &DynoSample) {
        let minute = minute_of(sample.at);
        match self.dynos.iter().position(|d| d.dyno == dyno) {
            Some(at) if self.dynos[at].minute == minute => self.dynos[at].add(sample),
            Some(at) => {
                let done = std::mem::replace(&mut self.dynos[at], DynoMinute::start(dyno, sample));
                push_capped(&mut self.finished_dynos, done, MAX_PENDING_DYNOS);
            }
            None => self.dynos.push(DynoMinute::start(dyno, sample)),
        }
    }

    fn event(&mut self, event: Event) {
        if !event.kind.repeats() {
            push_capped(&mut self.events, event, MAX_PENDING_EVENTS);
            return;
        }
        let minute = minute_of(event.at.unix_timestamp());
        let same = self.repeats.iter_mut().find(|(at, seen, _)| {
            *at == minute && seen.kind == event.kind && seen.dyno == event.dyno
        });
        match same {
            Some((_, _, count)) => *count += 1,
            None => self.repeats.push((minute, event, 1)),
        }
    }

    fn note_release(&mut self, at: OffsetDateTime, version: &str) {
        let recent = self.events.iter_mut().rev().find(|event| {
            matches!(
                event.kind,
                EventKind::Deploy | EventKind::Rollback | EventKind::Config
            ) && at >= event.at
                && at - event.at <= RELEASE_NOTE_WINDOW
        });
        if let Some(event) = recent {
            if !event.message.ends_with(')') {
                event.message.push_str(&format!(" ({version})"));
            }
        }
    }

    /// Moves every minute before `minute` (all of them with `i64::MAX`) to the finished lists.
    fn rotate(&mut self, minute: i64) {
        if self.router.minute < minute {
            if let Some(done) = self.router.finish() {
                push_capped(&mut self.finished_router, done, MAX_PENDING_ROUTER);
            }
        }
        let (done, current): (Vec<DynoMinute>, Vec<DynoMinute>) = std::mem::take(&mut self.dynos)
            .into_iter()
            .partition(|d| d.minute < minute);
        self.dynos = current;
        for minute in done {
            push_capped(&mut self.finished_dynos, minute, MAX_PENDING_DYNOS);
        }
        let (done, current): (Vec<_>, Vec<_>) = std::mem::take(&mut self.repeats)
            .into_iter()
            .partition(|(at, _, _)| *at < minute);
        self.repeats = current;
        for (_, event, count) in done {
            push_capped(&mut self.events, repeated(event, count), MAX_PENDING_EVENTS);
        }
    }

    fn take_finished(&mut self) -> Finished {
        Finished {
            router: std::mem::take(&mut self.finished_router),
            dynos: std::mem::take(&mut self.finished_dynos),
            events: std::mem::take(&mut self.events),
        }
    }

    /// Puts back what a flush could not write, before what came since.
    fn restore(&mut self, mut unwritten: Finished) {
        unwritten.router.append(&mut self.finished_router);
        self.finished_router = unwritten.router;
        unwritten.dynos.append(&mut self.finished_dynos);
        self.finished_dynos = unwritten.dynos;
        unwritten.events.append(&mut self.events);
        self.events = unwritten.events;
        trim(&mut self.finished_router, MAX_PENDING_ROUTER);
        trim(&mut self.finished_dynos, MAX_PENDING_DYNOS);
        trim(&mut self.events, MAX_PENDING_EVENTS);
    }
}

/// A repeating event with how often it came in its minute.
fn repeated(mut event: Event, count: u64) -> Event {
    if count > 1 {
        event.message = format!("{} ({count} times in this minute)", event.message);
    }
    event
}

fn push_capped<T>(list: &mut Vec<T>, item: T, cap: usize) {
    list.push(item);
    trim(list, cap);
}

fn trim<T>(list: &mut Vec<T>, cap: usize) {
    if list.len() > cap {
        let excess = list.len() - cap;
        list.drain(..excess);
        tracing::warn!(
            dropped = excess,
            "metrics could not be written: dropped the oldest"
        );
    }
}

/// Hashes an app id by folding its 128 bits: ids are random (v4) and made by the server, so
/// SipHash's defence against chosen keys buys nothing on the router's path.
#[derive(Clone, Copy, Default)]
struct BuildIdHasher;

impl std::hash::BuildHasher for BuildIdHasher {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A `Uuid` hashes as its 16 bytes (after a length prefix): fold them in.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

/// The current time in unix seconds.
fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

fn day_of(unix_seconds: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date()
}

impl Recorder {
    /// A recorder keeping its files under `<data_dir>/metrics` for `retention_days`.
    pub fn open(data_dir: &std::path::Path, retention_days: u32) -> anyhow::Result<Recorder> {
        let storage =
            Storage::open(data_dir, retention_days).context("open the metrics directory")?;
        Ok(Recorder {
            inner: Arc::new(Inner {
                storage,
                apps: RwLock::new(HashMap::default()),
                forgotten: Mutex::new(HashSet::new()),
            }),
        })
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The app's record, made on first use; `None` for a deleted app.
    fn app(&self, app_id: Uuid) -> Option<Arc<AppRecord>> {
        if let Some(app) = self.existing(app_id) {
            return Some(app);
        }
        if self
            .inner
            .forgotten
            .lock()
            .expect("metrics lock poisoned")
            .contains(&app_id)
        {
            return None;
        }
        let mut apps = self.inner.apps.write().expect("metrics lock poisoned");
        let app = apps.entry(app_id).or_insert_with(|| {
            Arc::new(AppRecord {
                live: Mutex::new(Live::default()),
                io: Mutex::new(()),
                forgotten: AtomicBool::new(false),
            })
        });
        Some(app.clone())
    }

    fn existing(&self, app_id: Uuid) -> Option<Arc<AppRecord>> {
        let apps = self.inner.apps.read().expect("metrics lock poisoned");
        apps.get(&app_id).cloned()
    }

    /// Runs `change` on the app's unwritten state.
    fn with_live(&self, app_id: Uuid, change: impl FnOnce(&mut Live)) {
        {
            // The common case: the app is known. No clone of its `Arc`, no allocation.
            let apps = self.inner.apps.read().expect("metrics lock poisoned");
            if let Some(app) = apps.get(&app_id) {
                change(&mut app.live.lock().expect("metrics lock poisoned"));
                return;
            }
        }
        if let Some(app) = self.app(app_id) {
            change(&mut app.live.lock().expect("metrics lock poisoned"));
        }
    }

    /// One request the router finished for the app: its status, its total time (connect +
    /// service; `None` when no dyno was tried) and its router error code (`H12`), if any.
    pub fn record_request(
        &self,
        app_id: Uuid,
        status: u16,
        total_time: Option<Duration>,
        error_code: Option<&str>,
    ) {
        self.record_request_at(app_id, now_seconds(), status, total_time, error_code);
    }

    /// [`Recorder::record_request`] at `unix_seconds` (for tests and benchmarks).
    pub fn record_request_at(
        &self,
        app_id: Uuid,
        unix_seconds: i64,
        status: u16,
        total_time: Option<Duration>,
        error_code: Option<&str>,
    ) {
        let minute = minute_of(unix_seconds);
        let total_us = total_time.map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX));
        let code = error_code.and_then(RouterCode::parse);
        self.with_live(app_id, |live| live.request(minute, status, total_us, code));
    }

    /// A sample of one of the app's dynos (`web.1`). A name that could not be stored is
    /// ignored.
    pub fn record_dyno(&self, app_id: Uuid, dyno: &str, sample: DynoSample) {
        if !valid_dyno_name(dyno) {
            tracing::warn!(app = %app_id, dyno, "a dyno name metrics cannot store");
            return;
        }
        self.with_live(app_id, |live| live.sample(dyno, &sample));
    }

    /// An event of the app. Repeating kinds (R14, R15, router errors) are kept once per
    /// kind, dyno and minute, with a count.
    pub fn record_event(&self, app_id: Uuid, event: Event) {
        if event.dyno.as_deref().is_some_and(|d| !valid_dyno_name(d)) {
            return;
        }
        self.with_live(app_id, |live| live.event(event));
    }

    /// A release (`v5`) was created at `at`: the deploy, rollback or config change event
    /// logged just before it names it.
    pub fn note_release(&self, app_id: Uuid, at: OffsetDateTime, version: &str) {
        self.with_live(app_id, |live| live.note_release(at, version));
    }

    /// Forgets the app and deletes its files (when the app is deleted).
    pub fn forget_app(&self, app_id: Uuid) {
        self.inner
            .forgotten
            .lock()
            .expect("metrics lock poisoned")
            .insert(app_id);
        let removed = self
            .inner
            .apps
            .write()
            .expect("metrics lock poisoned")
            .remove(&app_id);
        // A flush under way for the app finishes first; none starts after.
        let _io = removed
            .as_ref()
            .map(|app| app.io.lock().expect("metrics lock poisoned"));
        if let Some(app) = &removed {
            app.forgotten.store(true, Ordering::SeqCst);
        }
        if let Err(error) = self.inner.storage.forget(app_id) {
            tracing::warn!(app = %app_id, error = format!("{error:#}"), "delete an app's metrics");
        }
    }

    /// Writes every finished minute and event (those before the current minute).
    pub fn flush(&self) -> anyhow::Result<()> {
        self.flush_before(minute_of(now_seconds()))
    }

    /// Writes everything, the current minutes too (at shutdown; after a restart the rest of
    /// a minute is written again as its own line, and readers merge the two).
    pub fn flush_all(&self) -> anyhow::Result<()> {
        self.flush_before(i64::MAX)
    }

    fn flush_before(&self, minute: i64) -> anyhow::Result<()> {
        let apps: Vec<(Uuid, Arc<AppRecord>)> = self
            .inner
            .apps
            .read()
            .expect("metrics lock poisoned")
            .iter()
            .map(|(id, app)| (*id, app.clone()))
            .collect();
        let mut failed = None;
        for (app_id, app) in apps {
            let _io = app.io.lock().expect("metrics lock poisoned");
            if app.forgotten.load(Ordering::SeqCst) {
                continue;
            }
            let finished = {
                let mut live = app.live.lock().expect("metrics lock poisoned");
                live.rotate(minute);
                live.take_finished()
            };
            let unwritten = self.write(app_id, finished);
            if let Some((unwritten, error)) = unwritten {
                app.live
                    .lock()
                    .expect("metrics lock poisoned")
                    .restore(unwritten);
                failed = Some(error);
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Appends `finished` to the app's day files; returns what could not be written.
    fn write(&self, app_id: Uuid, finished: Finished) -> Option<(Finished, anyhow::Error)> {
        let storage = &self.inner.storage;
        let mut unwritten = Finished::default();
        let mut failure = None;
        let router = write_days(
            storage,
            app_id,
            Kind::Router,
            finished.router,
            |m| m.minute,
            format::write_router,
        );
        let dynos = write_days(
            storage,
            app_id,
            Kind::Dynos,
            finished.dynos,
            |m| m.minute,
            format::write_dyno,
        );
        let events = write_days(
            storage,
            app_id,
            Kind::Events,
            finished.events,
            |e| e.at.unix_timestamp(),
            format::write_event,
        );
        if let Err((items, error)) = router {
            unwritten.router = items;
            failure = Some(error);
        }
        if let Err((items, error)) = dynos {
            unwritten.dynos = items;
            failure = Some(error);
        }
        if let Err((items, error)) = events {
            unwritten.events = items;
            failure = Some(error);
        }
        failure.map(|error| (unwritten, error))
    }

    /// Deletes the day files past the retention.
    pub fn prune(&self) -> anyhow::Result<usize> {
        self.inner.storage.prune(OffsetDateTime::now_utc())
    }

    /// Flushes every [`FLUSH_INTERVAL`] and prunes at start and every [`PRUNE_INTERVAL`]
    /// until `shutdown`; then writes everything, current minutes too.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_prune = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let prune = Instant::now() >= next_prune;
            if prune {
                next_prune = Instant::now() + PRUNE_INTERVAL;
            }
            let recorder = self.clone();
            let done = tokio::task::spawn_blocking(move || {
                if prune {
                    match recorder.prune() {
                        Ok(0) => {}
                        Ok(removed) => {
                            tracing::info!(removed, "deleted metrics past the retention")
                        }
                        Err(error) => {
                            tracing::warn!(error = format!("{error:#}"), "delete old metrics")
                        }
                    }
                }
                recorder.flush()
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(error = format!("{error:#}"), "write metrics; retrying")
                }
                Err(error) => tracing::error!(%error, "the metrics flush panicked"),
            }
        }
        let recorder = self.clone();
        match tokio::task::spawn_blocking(move || recorder.flush_all()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = format!("{error:#}"), "write metrics at shutdown")
            }
            Err(error) => tracing::error!(%error, "the metrics flush panicked"),
        }
    }

    /// Calls `line` with each of the app's `kind` lines of the days `window` covers; counts
    /// those `line` refuses (damaged lines, skipped).
    fn read(
        &self,
        app_id: Uuid,
        kind: Kind,
        window: Window,
        mut line: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<()> {
        let mut damaged = 0usize;
        self.inner.storage.read_lines(
            app_id,
            kind,
            day_of(window.from),
            day_of(window.to - 1),
            |text| {
                if !line(text) {
                    damaged += 1;
                }
            },
        )?;
        if damaged > 0 {
            tracing::debug!(app = %app_id, damaged, "skipped metrics lines that do not parse");
        }
        Ok(())
    }

    /// The app's requests over `range`, ending with the minute of `now` (unix seconds).
    pub fn router(&self, app_id: Uuid, range: Range, now: i64) -> anyhow::Result<RouterSeries> {
        let window = range.window(now);
        let app = self.existing(app_id);
        let _io = app
            .as_ref()
            .map(|a| a.io.lock().expect("metrics lock poisoned"));
        let mut fold = RouterFold::new(window);
        self.read(
            app_id,
            Kind::Router,
            window,
            |line| match format::line_minute(line) {
                Some(minute) if !window.contains(minute) => true,
                Some(_) => format::parse_router(line).map(|m| fold.add(m)).is_some(),
                None => false,
            },
        )?;
        if let Some(app) = &app {
            let live = app.live.lock().expect("metrics lock poisoned");
            for minute in live.finished_router.iter().chain(&live.router.snapshot()) {
                fold.add(minute.clone());
            }
        }
        Ok(fold.finish())
    }

    /// The app's dynos' memory and load over `range`.
    pub fn dynos(&self, app_id: Uuid, range: Range, now: i64) -> anyhow::Result<Vec<DynoSeries>> {
        let window = range.window(now);
        let app = self.existing(app_id);
        let _io = app
            .as_ref()
            .map(|a| a.io.lock().expect("metrics lock poisoned"));
        let mut fold = DynoFold::new(window);
        self.read(
            app_id,
            Kind::Dynos,
            window,
            |line| match format::line_minute(line) {
                Some(minute) if !window.contains(minute) => true,
                Some(_) => format::parse_dyno_fields(line)
                    .map(|(dyno, process_type, point)| {
                        fold.add(dyno, process_type, point.at, &point)
                    })
                    .is_some(),
                None => false,
            },
        )?;
        if let Some(app) = &app {
            let live = app.live.lock().expect("metrics lock poisoned");
            for minute in live.finished_dynos.iter().chain(&live.dynos) {
                fold.add_minute(minute);
            }
        }
        Ok(fold.finish())
    }

    /// The app's events over `range`, oldest first; the newest [`MAX_EVENTS`] when more.
    pub fn events(
        &self,
        app_id: Uuid,
        range: Range,
        now: i64,
    ) -> anyhow::Result<(Window, Vec<Event>)> {
        let window = range.window(now);
        let app = self.existing(app_id);
        let _io = app
            .as_ref()
            .map(|a| a.io.lock().expect("metrics lock poisoned"));
        let mut events = Vec::new();
        self.read(app_id, Kind::Events, window, |line| {
            format::parse_event(line).map(|e| events.push(e)).is_some()
        })?;
        if let Some(app) = &app {
            let live = app.live.lock().expect("metrics lock poisoned");
            events.extend(live.events.iter().cloned());
            events.extend(
                live.repeats
                    .iter()
                    .map(|(_, event, count)| repeated(event.clone(), *count)),
            );
        }
        events.retain(|event| window.contains(event.at.unix_timestamp()));
        events.sort_by_key(|event| event.at);
        if events.len() > MAX_EVENTS {
            events.drain(..events.len() - MAX_EVENTS);
        }
        Ok((window, events))
    }
}

/// Appends `items` to the day files they belong to; on a failure, returns the items of the
/// days not written.
fn write_days<T>(
    storage: &Storage,
    app_id: Uuid,
    kind: Kind,
    items: Vec<T>,
    seconds: impl Fn(&T) -> i64,
    write: impl Fn(&mut String, &T),
) -> Result<(), (Vec<T>, anyhow::Error)> {
    let mut days: Vec<(Date, Vec<T>)> = Vec::new();
    for item in items {
        let day = day_of(seconds(&item));
        match days.iter_mut().find(|(d, _)| *d == day) {
            Some((_, list)) => list.push(item),
            None => days.push((day, vec![item])),
        }
    }
    let mut failed: Option<(Vec<T>, anyhow::Error)> = None;
    for (day, list) in days {
        if let Some((unwritten, _)) = &mut failed {
            unwritten.extend(list);
            continue;
        }
        let mut text = String::new();
        for item in &list {
            write(&mut text, item);
        }
        if let Err(error) = storage.append(app_id, kind, day, &text) {
            failed = Some((list, error));
        }
    }
    match failed {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}
