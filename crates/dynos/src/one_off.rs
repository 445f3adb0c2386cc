//! One-off dynos (`wharf run`, `wharf run:detached`): a command run once from the app's current
//! release, in a container set up like any dyno's, named `run.N`, outside the formation.
//!
//! - Detached, its output goes to the app's log as `app[run.N]` lines.
//! - Attached, its stdio goes to whoever attaches ([`AttachHandle`]); the process starts only
//!   then, so no output is lost. With a terminal (the default) the command runs under
//!   util-linux's `script`, which gives it a PTY (our runtime driver has no console socket);
//!   stdout and stderr then both come through the PTY. Stdin is a FIFO bound into the
//!   container, because the runtime's own stdin is always empty.
//! - It is never restarted, ends after [`IDLE_TIMEOUT`] without input or output, and is
//!   removed when its process exits.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;
use wharf_containers::{ContainerSpec, Mount};
use wharf_model::DynoSize;

use crate::logs::{now_micros, LogLine, LogSource};
use crate::manager::{DynoInfo, DynoManager, Shared};
use crate::messages;
use crate::registry::{DynoEntry, RunHandle};
use crate::runner::{run_once, RunEnd};
use crate::state::{DynoName, DynoState};

/// A one-off dyno without input or output for this long is stopped (as on Heroku).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The process type of one-off dynos.
pub const ONE_OFF_TYPE: &str = "run";
/// One-off dynos are numbered at random in this range, unique per app.
const NUMBERS: std::ops::RangeInclusive<u32> = 1000..=9999;
/// Where the stdin FIFO's directory is bound in an attached one-off (below `/tmp`, whose
/// tmpfs takes the mount point).
const STDIN_DIR: &str = "/tmp/.wharf-stdin";
const STDIN_FIFO: &str = "fifo";
/// Chunks of output an attached one-off may have in flight before it waits for the client.
const OUTPUT_CHUNKS: usize = 64;
/// Chunks of input in flight before the client waits for the dyno.
const INPUT_CHUNKS: usize = 64;
/// How often the stdin FIFO is tried until the dyno has opened it (a FIFO tells no one when
/// a reader arrives; the container is aborted if it never does).
const STDIN_OPEN_RETRY: Duration = Duration::from_millis(10);
/// End of transmission: without a terminal it ends the dyno's input (with one, the PTY's line
/// discipline treats it so by itself).
pub const END_OF_INPUT: u8 = 0x04;
/// `open` of a FIFO for writing without blocking, while no one reads it.
const ENXIO: i32 = 6;

/// What `POST /apps/{app}/dynos` asks for.
#[derive(Debug, Clone)]
pub struct OneOffRequest {
    /// The dyno's id, when the control plane chose it (a one-off it placed on this host);
    /// else a new one.
    pub id: Option<Uuid>,
    /// The number of its name (`run.N`), when the control plane chose it and it is free here;
    /// else a free one.
    pub number: Option<u32>,
    pub command: String,
    /// Added to (and winning over) the release's config vars.
    pub env: Vec<(String, String)>,
    pub size: DynoSize,
    /// Hand the dyno's stdio to whoever attaches, rather than to the log.
    pub attach: bool,
    /// With `attach`: run the command in a PTY.
    pub tty: bool,
    /// Who asked (for the `app[api]` log line).
    pub user: String,
}

/// A one-off dyno just created.
#[derive(Debug)]
pub struct OneOff {
    pub info: DynoInfo,
    /// For an attached one-off: its stdio. The process starts once [`AttachHandle::attach`] is
    /// called; dropping the handle unattached removes the dyno without running it.
    pub attach: Option<AttachHandle>,
}

/// Why a one-off dyno could not be created.
#[derive(Debug)]
pub enum OneOffError {
    /// The app has no release with code to run.
    NoRelease,
    /// The manager is shutting down.
    ShuttingDown,
    Store(anyhow::Error),
}

impl fmt::Display for OneOffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OneOffError::NoRelease => f.write_str("the app has no release with code to run"),
            OneOffError::ShuttingDown => f.write_str("the dyno manager is shutting down"),
            OneOffError::Store(error) => write!(f, "read the app's release: {error:#}"),
        }
    }
}

impl std::error::Error for OneOffError {}

/// The stdio of an attached one-off, not yet attached.
#[derive(Debug)]
pub struct AttachHandle {
    start: oneshot::Sender<()>,
    attached: Attached,
}

impl AttachHandle {
    /// Starts the process and hands over its stdio.
    pub fn attach(self) -> Attached {
        // The supervisor may be gone (stopped meanwhile): the channels then simply close.
        let _ = self.start.send(());
        self.attached
    }
}

/// What the rendezvous sends an attaching client first (Heroku's rendezvous protocol).
pub const GREETING: &[u8] = b"rendezvous\r\n";
/// The pause after the greeting, so that no output lands in the same TLS record as the
/// greeting (the client throws that whole first chunk away).
pub const GREETING_PAUSE: Duration = Duration::from_millis(300);
/// Heroku's exit status marker (`heroku run --exit-code` looks for it).
pub const EXIT_MARKER: &str = "\u{FFFF} heroku-command-exit-status: ";

/// The last line of an attached run: Heroku's exit marker.
pub fn exit_line(code: i32) -> String {
    format!("{EXIT_MARKER}{code}\n")
}

/// Greets the client on `stream`, starts the one-off, and pipes bytes both ways until the
/// process exits, then sends the exit marker line and shuts the stream down. What the client
/// sent after its secret line (still in `stream`'s buffer) goes in first.
pub async fn serve_attached<S>(mut stream: S, handle: AttachHandle) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    stream.write_all(GREETING).await?;
    stream.flush().await?;
    tokio::time::sleep(GREETING_PAUSE).await;
    let Attached {
        input,
        mut output,
        exit,
    } = handle.attach();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let reading = tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input.send(buffer[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let written = async {
        while let Some(chunk) = output.recv().await {
            writer.write_all(&chunk).await?;
            writer.flush().await?;
        }
        if let Ok(code) = exit.await {
            writer.write_all(exit_line(code).as_bytes()).await?;
        }
        writer.flush().await?;
        writer.shutdown().await
    }
    .await;
    reading.abort();
    written
}

/// An attached one-off's stdio.
#[derive(Debug)]
pub struct Attached {
    /// Bytes for the process's stdin; dropping it ends the input.
    pub input: mpsc::Sender<Vec<u8>>,
    /// The process's output (stdout and stderr); closed once the process is gone.
    pub output: mpsc::Receiver<Vec<u8>>,
    /// The exit status, sent after the last output (dropped if it never ran).
    pub exit: oneshot::Receiver<i32>,
}

/// The supervisor's side of a one-off's stdio.
pub(crate) struct OneOffIo {
    pub tty: bool,
    /// `None` for a detached one-off (output to the log).
    pub output: Option<mpsc::Sender<Vec<u8>>>,
    pub input: Mutex<Option<mpsc::Receiver<Vec<u8>>>>,
    /// When input or output last went through.
    pub activity: Arc<watch::Sender<Instant>>,
}

impl DynoManager {
    /// Creates a one-off dyno running `request.command` from the app's current release. It is
    /// listed by [`DynoManager::dynos`] until its process exits, and stopped by
    /// [`DynoManager::stop`] and at shutdown.
    pub async fn run_one_off(
        &self,
        app_id: Uuid,
        request: OneOffRequest,
    ) -> Result<OneOff, OneOffError> {
        let shared = &self.shared;
        let apps = HashSet::from([app_id]);
        let read = shared
            .source
            .read(Some(&apps), &HashSet::new())
            .await
            .map_err(OneOffError::Store)?;
        let app = read
            .desired
            .apps
            .get(&app_id)
            .ok_or(OneOffError::NoRelease)?;
        let slug_id = app.release.slug_id.ok_or(OneOffError::NoRelease)?;
        let mut config: Vec<(String, String)> = app
            .release
            .config
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        config.extend(request.env.iter().cloned());

        let (start_tx, start_rx) = oneshot::channel();
        let (input_tx, input_rx) = mpsc::channel(INPUT_CHUNKS);
        let (output_tx, output_rx) = mpsc::channel(OUTPUT_CHUNKS);
        let (exit_tx, exit_rx) = oneshot::channel();
        let io = OneOffIo {
            tty: request.tty,
            output: request.attach.then_some(output_tx),
            input: Mutex::new(Some(input_rx)),
            activity: Arc::new(watch::Sender::new(Instant::now())),
        };
        let now = now_micros();
        let id = request.id.unwrap_or_else(Uuid::new_v4);
        let info = {
            let mut registry = shared.registry();
            if shared.closing.is_cancelled() {
                return Err(OneOffError::ShuttingDown);
            }
            let taken: HashSet<u32> = registry
                .dynos
                .values()
                .filter(|d| d.app_id == app_id && d.name.process_type() == ONE_OFF_TYPE)
                .map(|d| d.name.number())
                .collect();
            let number = request
                .number
                .filter(|number| *number > 0 && !taken.contains(number))
                .unwrap_or_else(|| free_number(&taken, &mut rand::thread_rng()));
            let name = DynoName::new(ONE_OFF_TYPE, number);
            let entry = DynoEntry {
                id,
                app_id,
                app_name: app.name.clone(),
                name,
                release: app.release.version,
                slug_id,
                stack: app.release.stack.clone(),
                command: request.command.clone(),
                config,
                size: request.size,
                state: DynoState::Starting,
                updated_at: now,
                started_at: now,
                crashes: 0,
                next_restart: None,
                cycle_at: None,
                address: None,
                container_id: None,
                intent: None,
                run: Some(RunHandle::new()),
                one_off: true,
            };
            let info = DynoInfo::of(&entry);
            registry.dynos.insert(id, entry);
            info
        };
        shared.logs.append(
            app_id,
            LogLine::now(
                LogSource::App,
                "api",
                format!(
                    "Starting process with command `{}` by user {}",
                    request.command, request.user
                ),
            ),
        );
        let (start, exit) = if request.attach {
            (Some(start_rx), Some(exit_tx))
        } else {
            (None, None)
        };
        shared
            .tasks
            .spawn(supervise_one_off(shared.clone(), id, io, start, exit));
        let attach = request.attach.then(|| AttachHandle {
            start: start_tx,
            attached: Attached {
                input: input_tx,
                output: output_rx,
                exit: exit_rx,
            },
        });
        Ok(OneOff { info, attach })
    }
}

/// A random number from [`NUMBERS`] not in `taken` (the first free one when chance keeps
/// missing; the last one when all are taken, which 9000 one-offs of one app would need).
pub fn free_number(taken: &HashSet<u32>, rng: &mut impl Rng) -> u32 {
    for _ in 0..100 {
        let number = rng.gen_range(NUMBERS);
        if !taken.contains(&number) {
            return number;
        }
    }
    NUMBERS
        .clone()
        .find(|n| !taken.contains(n))
        .unwrap_or(*NUMBERS.end())
}

/// Runs a one-off's process once (an attached one waits for its client first) and removes it.
async fn supervise_one_off(
    shared: Arc<Shared>,
    id: Uuid,
    io: OneOffIo,
    start: Option<oneshot::Receiver<()>>,
    exit: Option<oneshot::Sender<i32>>,
) {
    let stop = shared
        .registry()
        .dynos
        .get(&id)
        .and_then(|d| d.run.as_ref().map(|run| run.stop.clone()));
    let Some(stop) = stop else {
        return;
    };
    if let Some(start) = start {
        let attached = tokio::select! {
            started = start => started.is_ok(),
            () = stop.cancelled() => false,
        };
        if !attached {
            // A client that still attaches reads why nothing ran.
            tell_no_status(&io, STOPPED_BEFORE_START);
            shared.end_one_off(id);
            return;
        }
    }
    let Some(input) = shared.begin_run(id) else {
        tell_no_status(&io, STOPPED_BEFORE_START);
        shared.end_one_off(id);
        return;
    };
    let (end, code) = run_once(&shared, id, &input, Some(&io)).await;
    if code.is_none() {
        tell_no_status(
            &io,
            match end {
                RunEnd::LaunchFailed => messages::R99,
                RunEnd::Stopped => STOPPED_BEFORE_START,
                RunEnd::Exited | RunEnd::Detached => STATUS_LOST,
            },
        );
    }
    // The output channel closes before the exit status goes out.
    drop(io);
    shared.end_one_off(id);
    if let (Some(exit), Some(code)) = (exit, code) {
        let _ = exit.send(code);
    }
}

/// What an attached client reads when its dyno was stopped before its process started.
const STOPPED_BEFORE_START: &str = "The dyno was stopped before its process started";
/// What an attached client reads when its process ran but the runtime lost its exit status.
const STATUS_LOST: &str = "Error R99 (Platform error) -> The process's exit status was lost";

/// Tells an attached one-off's client why its dyno ends without an exit status (and so without
/// the exit marker): the last line of its output. Clients take a missing marker as a failure.
fn tell_no_status(io: &OneOffIo, why: &str) {
    if let Some(output) = &io.output {
        // Nothing else is in flight now; a client gone or not attached yet loses nothing more.
        let _ = output.try_send(format!("{why}\r\n").into_bytes());
    }
}

impl Shared {
    /// A one-off's process is gone: the dyno is removed (one-offs never restart).
    fn end_one_off(&self, id: Uuid) {
        let mut registry = self.registry();
        let Some(entry) = registry.dynos.remove(&id) else {
            return;
        };
        if entry.state == DynoState::Up {
            self.log(entry.app_id, &entry.name, messages::completed(entry.state));
        }
        self.publish_routes(&registry);
        drop(registry);
        if let Some(run) = entry.run {
            run.done.cancel();
        }
    }
}

/// Sets up an attached one-off's container: its stdin FIFO (bound at [`STDIN_DIR`]) and, with
/// a terminal, the command under `script`. Returns the FIFO's path on the host; `None` (and
/// the spec unchanged) for a detached one-off.
pub(crate) async fn prepare(
    io: &OneOffIo,
    spec: &mut ContainerSpec,
    command: &str,
    config: &[(String, String)],
    dyno_dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    if io.output.is_none() {
        return Ok(None);
    }
    let dir = dyno_dir.join("stdin");
    let fifo = dir.join(STDIN_FIFO);
    make_fifo(&dir, &fifo).await?;
    spec.mounts.push(Mount {
        source: dir,
        destination: STDIN_DIR.to_owned(),
        readonly: true,
    });
    let sized = ["COLUMNS", "LINES"]
        .iter()
        .all(|key| config.iter().any(|(k, v)| k == key && !v.is_empty()));
    if let Some(script) = spec.args.get_mut(2) {
        *script = attached_command(command, io.tty, sized);
    }
    Ok(Some(fifo))
}

async fn make_fifo(dir: &Path, fifo: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Server path: the one-off's stdin directory, made and owned by root (the
    // container may read it, not write it).
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", dir.display()))?;
    // Server path: the FIFO goes in that root-owned directory.
    let output = tokio::process::Command::new("mkfifo")
        .args(["-m", "0666"])
        .arg(fifo)
        .output()
        .await
        .context("run mkfifo")?;
    if !output.status.success() {
        anyhow::bail!(
            "mkfifo {}: {}",
            fifo.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The shell command of an attached one-off: stdin from the FIFO, then the profile and the
/// command, under `script` (a PTY sized from `$COLUMNS`/`$LINES` when `sized`) with a
/// terminal. `script -e` exits with the command's status.
pub(crate) fn attached_command(command: &str, tty: bool, sized: bool) -> String {
    let profiled = wharf_build::builder::profile_command(command);
    let stdin = format!("exec <{STDIN_DIR}/{STDIN_FIFO}");
    if !tty {
        return format!("{stdin}; {profiled}");
    }
    let inner = if sized {
        format!("stty cols \"$COLUMNS\" rows \"$LINES\" 2>/dev/null; {profiled}")
    } else {
        profiled
    };
    format!(
        "{stdin}; exec /usr/bin/script -qfec {} /dev/null",
        shell_quote(&inner)
    )
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Copies the client's input into the dyno's stdin (the FIFO at `fifo`). Without a terminal,
/// [`END_OF_INPUT`] ends the input (what comes before it still goes in); so does the client
/// going away.
pub(crate) fn feed_stdin(fifo: PathBuf, io: &OneOffIo) -> JoinHandle<()> {
    let input = io.input.lock().expect("one-off input lock poisoned").take();
    let (tty, activity) = (io.tty, io.activity.clone());
    tokio::spawn(async move {
        let Some(mut input) = input else {
            return;
        };
        // Write-only, once the dyno has opened its end: a FIFO that nobody holds open loses
        // what is in it, so the input may only end (this end close) after the reader came.
        let mut stdin = loop {
            match pipe::OpenOptions::new().open_sender(&fifo) {
                Ok(sender) => break sender,
                Err(error) if error.raw_os_error() == Some(ENXIO) => {
                    tokio::time::sleep(STDIN_OPEN_RETRY).await;
                }
                Err(error) => {
                    tracing::warn!(fifo = %fifo.display(), "open the dyno's stdin: {error}");
                    return;
                }
            }
        };
        while let Some(chunk) = input.recv().await {
            activity.send_replace(Instant::now());
            let (data, ended) = if tty {
                (chunk.as_slice(), false)
            } else {
                until_end_of_input(&chunk)
            };
            if stdin.write_all(data).await.is_err() || ended {
                break;
            }
        }
        // Dropping the only writer gives the process end-of-file.
    })
}

/// The bytes before [`END_OF_INPUT`], and whether it was there.
pub(crate) fn until_end_of_input(chunk: &[u8]) -> (&[u8], bool) {
    match chunk.iter().position(|&b| b == END_OF_INPUT) {
        Some(at) => (&chunk[..at], true),
        None => (chunk, false),
    }
}

/// Copies an attached one-off's output to its client; once the client is gone it keeps
/// reading (and drops the bytes), so the process never blocks on a full pipe.
pub(crate) fn pump_attached(
    mut pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    output: mpsc::Sender<Vec<u8>>,
    activity: Option<Arc<watch::Sender<Instant>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        let mut connected = true;
        loop {
            match pipe.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(activity) = &activity {
                        activity.send_replace(Instant::now());
                    }
                    if connected && output.send(buffer[..n].to_vec()).await.is_err() {
                        connected = false;
                    }
                }
            }
        }
    })
}

/// Resolves once nothing went through for [`IDLE_TIMEOUT`]; never without `activity`.
pub(crate) async fn idle(activity: Option<&Arc<watch::Sender<Instant>>>) {
    let Some(activity) = activity else {
        return std::future::pending().await;
    };
    loop {
        let last = *activity.borrow();
        tokio::time::sleep_until(last + IDLE_TIMEOUT).await;
        if *activity.borrow() <= last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn end_of_input_cuts_the_chunk() {
        assert_eq!(until_end_of_input(b"hello\n"), (&b"hello\n"[..], false));
        assert_eq!(until_end_of_input(b"hi\n\x04rest"), (&b"hi\n"[..], true));
        assert_eq!(until_end_of_input(b"\x04"), (&b""[..], true));
    }

    #[test]
    fn numbers_are_free_and_in_range() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut taken = HashSet::new();
        for _ in 0..2000 {
            let number = free_number(&taken, &mut rng);
            assert!(NUMBERS.contains(&number));
            assert!(taken.insert(number), "{number} given twice");
        }
        let all_but_one: HashSet<u32> = NUMBERS.filter(|n| *n != 4321).collect();
        assert_eq!(free_number(&all_but_one, &mut rng), 4321);
    }

    #[test]
    fn attached_commands() {
        let plain = attached_command("cat", false, true);
        assert!(plain.starts_with("exec </tmp/.wharf-stdin/fifo; for f in /app/.profile.d/"));
        assert!(plain.ends_with("; cat"));
        let tty = attached_command("echo 'it''s'", true, true);
        assert!(tty.starts_with("exec </tmp/.wharf-stdin/fifo; exec /usr/bin/script -qfec '"));
        assert!(tty.contains(r#"stty cols "$COLUMNS" rows "$LINES" 2>/dev/null; for f in"#));
        assert!(tty.ends_with(r#"; echo '\''it'\'''\''s'\''' /dev/null"#));
        assert!(!attached_command("bash", true, false).contains("stty"));
    }

    #[test]
    fn quoting_round_trips_through_a_shell() {
        let text = r#"echo "a b" 'c' $HOME \x"#;
        let output = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("printf %s {}", shell_quote(text))])
            .output()
            .expect("run sh");
        assert_eq!(String::from_utf8_lossy(&output.stdout), text);
    }
}
