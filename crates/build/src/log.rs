//! A build's output: kept in memory while the build runs so that any number of readers (the
//! pushing `git`, `output_stream_url` streams) follow it live, and written to a file as it
//! goes so that it outlives the build.
//!
//! Server paths only: `<data-dir>/builds/<id>.log` and files beside the build's work dirs,
//! which no container mounts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::watch;

/// The most output one build keeps; past it, lines are dropped with a note.
const OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

pub struct BuildLog {
    path: PathBuf,
    state: Mutex<State>,
    /// Bytes written so far, and whether the build is over.
    progress: watch::Sender<(usize, bool)>,
}

struct State {
    bytes: Vec<u8>,
    file: Option<std::fs::File>,
    truncated: bool,
}

impl BuildLog {
    pub fn create(path: &Path) -> anyhow::Result<Arc<BuildLog>> {
        let file =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        let (progress, _) = watch::channel((0, false));
        Ok(Arc::new(BuildLog {
            path: path.to_owned(),
            state: Mutex::new(State {
                bytes: Vec::new(),
                file: Some(file),
                truncated: false,
            }),
            progress,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends output. Never fails the build: a log that cannot be written is reported once
    /// in the platform's own diagnostics.
    pub fn write(&self, chunk: &[u8]) {
        let mut state = self.state.lock().expect("build log lock is never poisoned");
        if state.bytes.len() + chunk.len() > OUTPUT_LIMIT {
            if !state.truncated {
                state.truncated = true;
                let note = b"\n !     Build output over 16 MB: the rest is not kept\n";
                state.bytes.extend_from_slice(note);
                append_to_file(&mut state, note);
            }
            return;
        }
        state.bytes.extend_from_slice(chunk);
        append_to_file(&mut state, chunk);
        let len = state.bytes.len();
        drop(state);
        self.progress.send_modify(|(written, _)| *written = len);
    }

    pub fn line(&self, text: &str) {
        self.write(format!("{text}\n").as_bytes());
    }

    /// Heroku's section heading: `-----> text`.
    pub fn heading(&self, text: &str) {
        self.line(&format!("-----> {text}"));
    }

    /// A detail line under a heading, indented seven spaces.
    pub fn detail(&self, text: &str) {
        self.line(&format!("       {text}"));
    }

    /// An error line: ` !     text`.
    pub fn error(&self, text: &str) {
        self.line(&format!(" !     {text}"));
    }

    /// Ends the log: readers see the end once they have read everything.
    pub fn finish(&self) {
        let mut state = self.state.lock().expect("build log lock is never poisoned");
        if let Some(file) = state.file.take() {
            if let Err(error) = file.sync_all() {
                tracing::warn!(path = %self.path.display(), %error, "sync build log");
            }
        }
        drop(state);
        self.progress.send_modify(|(_, done)| *done = true);
    }

    /// Output from `offset` on, waiting for more while the build runs. `None` at the end.
    pub async fn read_from(&self, offset: usize) -> Option<Vec<u8>> {
        let mut progress = self.progress.subscribe();
        loop {
            let (written, done) = *progress.borrow_and_update();
            if written > offset {
                let state = self.state.lock().expect("build log lock is never poisoned");
                return Some(state.bytes[offset..].to_vec());
            }
            if done {
                return None;
            }
            if progress.changed().await.is_err() {
                return None;
            }
        }
    }

    pub fn contents(&self) -> Vec<u8> {
        self.state
            .lock()
            .expect("build log lock is never poisoned")
            .bytes
            .clone()
    }
}

fn append_to_file(state: &mut State, chunk: &[u8]) {
    if let Some(file) = state.file.as_mut() {
        if let Err(error) = file.write_all(chunk) {
            tracing::warn!(%error, "write build log; keeping it in memory only");
            state.file = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_follow_live_and_see_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = BuildLog::create(&dir.path().join("b.log")).unwrap();
        log.heading("Building");
        let reader = {
            let log = log.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while let Some(chunk) = log.read_from(seen.len()).await {
                    seen.extend(chunk);
                }
                seen
            })
        };
        log.detail("step");
        log.error("broke");
        log.finish();
        let seen = String::from_utf8(reader.await.unwrap()).unwrap();
        assert_eq!(seen, "-----> Building\n       step\n !     broke\n");
        assert_eq!(std::fs::read_to_string(log.path()).unwrap(), seen);
        assert!(log.read_from(seen.len()).await.is_none());
    }
}
