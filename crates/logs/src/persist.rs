//! Each app's recent lines on disk, so they survive a restart: `<dir>/<app-id>.log`, one line
//! per record (`seq TAB unix-µs TAB source TAB process TAB message`, the message with `\`, `\n`
//! and `\r` escaped), appended to in batches and rewritten from the ring when it holds twice
//! the ring's lines.
//!
//! The hot path does not touch the disk: [`run`] wakes every [`FLUSH_INTERVAL`], copies the
//! lines numbered after what it last wrote out of the ring, and writes them on a blocking
//! thread. Lines that came and went from the ring between two flushes are not written; a
//! SIGKILL loses at most the last interval's lines. A clean shutdown flushes once more.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::buffer::{Entry, LogBuffer};
use crate::{LogLine, LogSource};

/// How often new lines are written out.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// Reads every app's file in `dir` into the buffer (the last `lines_per_app` of each).
/// Unreadable records are skipped.
pub fn restore(buffer: &LogBuffer, dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for item in fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let path = item.context("list log files")?.path();
        let Some(app_id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| Uuid::parse_str(n).ok())
        else {
            continue;
        };
        let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let mut entries: Vec<Entry> = text.lines().filter_map(decode).collect();
        // Numbers only grow in a file; keep the newest ring's worth.
        entries.sort_by_key(|entry| entry.seq);
        entries.dedup_by_key(|entry| entry.seq);
        let skip = entries.len().saturating_sub(buffer.lines_per_app());
        buffer.restore(app_id, entries.split_off(skip));
    }
    Ok(())
}

/// Writes new lines to `dir` until `shutdown`, then once more.
pub async fn run(buffer: LogBuffer, dir: PathBuf, shutdown: CancellationToken) {
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(FLUSH_INTERVAL) => false,
        };
        let writes = pending_writes(&buffer);
        let dir = dir.clone();
        let written = tokio::task::spawn_blocking(move || write_all(&dir, writes)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!("write log lines: {error:#}"),
            Err(error) => tracing::warn!("log writer task failed: {error}"),
        }
        if stopping {
            return;
        }
    }
}

enum FileWrite {
    Append(Vec<Arc<Entry>>),
    Rewrite(Vec<Arc<Entry>>),
    Remove,
}

/// What to write per app, read from the buffer under its lock (clones of `Arc`s only).
fn pending_writes(buffer: &LogBuffer) -> HashMap<Uuid, FileWrite> {
    let mut writes = HashMap::new();
    let cap = buffer.lines_per_app();
    let mut apps = buffer.apps();
    for (app_id, app) in apps.iter_mut() {
        let newest = app.ring.back().map_or(0, |entry| entry.seq);
        if newest <= app.persisted_seq {
            continue;
        }
        let new: Vec<Arc<Entry>> = app
            .ring
            .iter()
            .filter(|entry| entry.seq > app.persisted_seq)
            .cloned()
            .collect();
        app.persisted_seq = newest;
        if app.file_lines + new.len() > 2 * cap {
            app.file_lines = app.ring.len();
            writes.insert(
                *app_id,
                FileWrite::Rewrite(app.ring.iter().cloned().collect()),
            );
        } else {
            app.file_lines += new.len();
            writes.insert(*app_id, FileWrite::Append(new));
        }
    }
    drop(apps);
    for removed in buffer.take_forgotten() {
        writes.insert(removed, FileWrite::Remove);
    }
    writes
}

fn write_all(dir: &Path, writes: HashMap<Uuid, FileWrite>) -> anyhow::Result<()> {
    for (app_id, write) in writes {
        let path = dir.join(format!("{app_id}.log"));
        match write {
            FileWrite::Append(entries) => {
                let mut file = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("open {}", path.display()))?;
                file.write_all(&encode_all(&entries))
                    .with_context(|| format!("append to {}", path.display()))?;
            }
            FileWrite::Rewrite(entries) => {
                let temporary = dir.join(format!("{app_id}.log.new"));
                fs::write(&temporary, encode_all(&entries))
                    .with_context(|| format!("write {}", temporary.display()))?;
                fs::rename(&temporary, &path)
                    .with_context(|| format!("replace {}", path.display()))?;
            }
            FileWrite::Remove => match fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).with_context(|| format!("remove {}", path.display()))
                }
                _ => {}
            },
        }
    }
    Ok(())
}

fn encode_all(entries: &[Arc<Entry>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(encode(entry).as_bytes());
        out.push(b'\n');
    }
    out
}

fn encode(entry: &Entry) -> String {
    let micros = entry.at.unix_timestamp_nanos() / 1_000;
    let mut message = String::with_capacity(entry.message.len());
    for c in entry.message.chars() {
        match c {
            '\\' => message.push_str("\\\\"),
            '\n' => message.push_str("\\n"),
            '\r' => message.push_str("\\r"),
            c => message.push(c),
        }
    }
    format!(
        "{}\t{micros}\t{}\t{}\t{message}",
        entry.seq, entry.source, entry.process
    )
}

fn decode(record: &str) -> Option<Entry> {
    let mut fields = record.splitn(5, '\t');
    let seq = fields.next()?.parse().ok()?;
    let micros: i128 = fields.next()?.parse().ok()?;
    let source = LogSource::parse(fields.next()?)?;
    let process = fields.next()?.to_owned();
    let escaped = fields.next()?;
    let mut message = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                'n' => message.push('\n'),
                'r' => message.push('\r'),
                other => message.push(other),
            }
        } else {
            message.push(c);
        }
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).ok()?;
    Some(Entry {
        seq,
        line: LogLine {
            at,
            source,
            process,
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn records_round_trip() {
        let entry = Entry {
            seq: 42,
            line: LogLine {
                at: datetime!(2026-11-22 10:00:00.123456 UTC),
                source: LogSource::Heroku,
                process: "web.1".to_owned(),
                message: "tab\there \\ back\nslash\r".to_owned(),
            },
        };
        let record = encode(&entry);
        expect_test::expect![[r#"42	1795341600123456	heroku	web.1	tab	here \\ back\nslash\r"#]]
            .assert_eq(&record);
        assert_eq!(decode(&record), Some(entry));
        assert_eq!(decode("garbage"), None);
    }

    #[tokio::test]
    async fn lines_survive_a_restart_and_files_stay_small() {
        let dir = tempfile::tempdir().unwrap();
        let app = Uuid::from_u128(9);
        let gone = Uuid::from_u128(10);
        let buffer = LogBuffer::new(5);
        let shutdown = CancellationToken::new();
        let writer = tokio::spawn(run(buffer.clone(), dir.path().to_owned(), shutdown.clone()));
        for n in 1..=23 {
            buffer.append(
                app,
                LogLine::now(LogSource::App, "web.1", format!("line {n}")),
            );
            if n % 4 == 0 {
                tokio::time::sleep(FLUSH_INTERVAL * 2).await;
            }
        }
        buffer.append(gone, LogLine::now(LogSource::App, "web.1", "bye"));
        tokio::time::sleep(FLUSH_INTERVAL * 2).await;
        buffer.forget(gone);
        shutdown.cancel();
        writer.await.unwrap();

        let file = fs::read_to_string(dir.path().join(format!("{app}.log"))).unwrap();
        assert!(file.lines().count() <= 10, "{file}");
        assert!(!dir.path().join(format!("{gone}.log")).exists());

        let restored = LogBuffer::new(5);
        restore(&restored, dir.path()).unwrap();
        let lines: Vec<(u64, String)> = restored
            .recent_entries(app, 100)
            .iter()
            .map(|e| (e.seq, e.message.clone()))
            .collect();
        let expected: Vec<(u64, String)> = (19..=23).map(|n| (n, format!("line {n}"))).collect();
        assert_eq!(lines, expected);
        assert_eq!(
            restored.append(app, LogLine::now(LogSource::App, "web.1", "after")),
            24
        );
        assert!(restored.recent(gone, 10).is_empty());
    }
}
