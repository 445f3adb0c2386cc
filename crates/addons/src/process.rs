//! Servers Wharf runs itself for managed add-ons (a `redis-server` per add-on, one PostgreSQL
//! cluster): each is a child process of the Wharf server, run as an unprivileged user, that
//! dies with Wharf and is started again when it exits.
//!
//! Invariants:
//! - A supervised server never outlives the Wharf process: it is started through `setpriv`
//!   with a parent-death signal (its server's clean shutdown signal, so it writes its data
//!   out), and every child is started by one thread that lives as long as the process (the
//!   kernel sends the signal when the *thread* that forked exits). A next start of Wharf
//!   finds the port free and the data on disk.
//! - A server that exits while supervised is started again after a backoff (1 s doubling to
//!   30 s, back to 1 s after a minute up), and the exit is reported through the callback.
//! - [`Supervisor::stop`] ends supervision before it signals, so a stopped server is never
//!   restarted; stopping one that is not running succeeds.
//! - Output goes to a log file of the server's own (appended), never into Wharf's log, so a
//!   server that prints a credential does not leak it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The first wait before a server that exited is started again; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A server up this long is healthy again: its next exit waits [`FIRST_BACKOFF`].
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How often [`Supervisor::stop`] checks whether the server exited.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Stack of the threads that wait for a child: they only call `wait`.
const WAITER_STACK: usize = 64 * 1024;

/// How to run one server.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The unprivileged user and group it runs as.
    pub uid: u32,
    pub gid: u32,
    /// Its working directory.
    pub dir: PathBuf,
    /// Its standard output and error, appended.
    pub log: PathBuf,
    /// Asks it to shut down cleanly (`SIGTERM` for Redis, `SIGINT`, "fast shutdown", for
    /// PostgreSQL): sent by [`Supervisor::stop`] and by the kernel when Wharf dies.
    pub stop_signal: StopSignal,
}

/// A signal a server understands as "shut down cleanly now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Term,
    Int,
}

impl StopSignal {
    fn name(self) -> &'static str {
        match self {
            StopSignal::Term => "TERM",
            StopSignal::Int => "INT",
        }
    }

    fn signal(self) -> rustix::process::Signal {
        match self {
            StopSignal::Term => rustix::process::Signal::TERM,
            StopSignal::Int => rustix::process::Signal::INT,
        }
    }
}

/// Called with the server's key and how it ended when a supervised server exits on its own
/// (not when [`Supervisor::stop`] stopped it).
pub type ExitCallback = Arc<dyn Fn(&str, ExitStatus) + Send + Sync>;

/// The supervised servers, by key. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    spawner: Mutex<mpsc::Sender<Request>>,
    servers: Mutex<HashMap<String, Entry>>,
    on_exit: ExitCallback,
}

struct Entry {
    spec: ProcessSpec,
    /// The running process, `None` while waiting to be started again.
    pid: Option<u32>,
    /// Bumped by every restart, so a waiter or restart of an older run does nothing.
    run: u64,
    backoff: Duration,
}

/// Work for the spawner thread.
struct Request {
    key: String,
    run: u64,
    reply: Option<tokio::sync::oneshot::Sender<anyhow::Result<u32>>>,
}

impl Supervisor {
    /// Starts the spawner thread; `on_exit` hears of servers that exit on their own.
    pub fn new(on_exit: ExitCallback) -> anyhow::Result<Supervisor> {
        let (sender, receiver) = mpsc::channel::<Request>();
        let inner = Arc::new(Inner {
            spawner: Mutex::new(sender),
            servers: Mutex::new(HashMap::new()),
            on_exit,
        });
        let weak = Arc::downgrade(&inner);
        // Hazard: children get their parent-death signal when this thread exits, so it must
        // live as long as any child: it ends only when every `Supervisor` is gone.
        std::thread::Builder::new()
            .name("addon-servers".into())
            .spawn(move || {
                while let Ok(request) = receiver.recv() {
                    let Some(inner) = weak.upgrade() else { break };
                    let outcome = spawn(&inner, &request.key, request.run);
                    match request.reply {
                        Some(reply) => {
                            let _ = reply.send(outcome);
                        }
                        None => {
                            if let Err(error) = outcome {
                                tracing::warn!(
                                    server = request.key,
                                    error = format!("{error:#}"),
                                    "start add-on server again"
                                );
                                schedule_restart(&inner, &request.key, request.run);
                            }
                        }
                    }
                }
            })
            .context("start the add-on server thread")?;
        Ok(Supervisor { inner })
    }

    /// Starts the server `key` unless it is already supervised (running or waiting to be
    /// started again); returns its process id, `None` while it waits for a restart. Returns
    /// once the process exists, not once it serves: callers wait for their server to answer.
    pub async fn ensure(&self, key: &str, spec: ProcessSpec) -> anyhow::Result<Option<u32>> {
        let run = {
            let mut servers = lock(&self.inner.servers);
            if let Some(entry) = servers.get(key) {
                return Ok(entry.pid);
            }
            servers.insert(
                key.to_owned(),
                Entry {
                    spec,
                    pid: None,
                    run: 0,
                    backoff: FIRST_BACKOFF,
                },
            );
            0
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.request(Request {
            key: key.to_owned(),
            run,
            reply: Some(reply),
        })?;
        let outcome = answer
            .await
            .context("the add-on server thread stopped")
            .and_then(|outcome| outcome);
        match outcome {
            Ok(pid) => Ok(Some(pid)),
            Err(error) => {
                lock(&self.inner.servers).remove(key);
                Err(error)
            }
        }
    }

    /// The process id of `key` while it runs.
    pub fn pid(&self, key: &str) -> Option<u32> {
        lock(&self.inner.servers)
            .get(key)
            .and_then(|entry| entry.pid)
    }

    /// Whether `key` is supervised (running, or waiting to be started again).
    pub fn supervises(&self, key: &str) -> bool {
        lock(&self.inner.servers).contains_key(key)
    }

    /// Stops supervising `key`, asks the server to shut down cleanly, and kills it if it has
    /// not exited after `grace`. Succeeds when it was not running.
    pub async fn stop(&self, key: &str, grace: Duration) -> anyhow::Result<()> {
        let Some(entry) = lock(&self.inner.servers).remove(key) else {
            return Ok(());
        };
        let Some(pid) = entry.pid else {
            return Ok(());
        };
        let stop_signal = entry.spec.stop_signal;
        signal(pid, stop_signal.signal());
        let deadline = Instant::now() + grace;
        while alive(pid) {
            if Instant::now() >= deadline {
                tracing::warn!(server = key, "add-on server did not stop in time: killed");
                signal(pid, rustix::process::Signal::KILL);
                while alive(pid) {
                    tokio::time::sleep(STOP_POLL).await;
                }
                break;
            }
            tokio::time::sleep(STOP_POLL).await;
        }
        Ok(())
    }

    /// Stops every server, each with `grace` (Wharf's clean shutdown).
    pub async fn stop_all(&self, grace: Duration) {
        let keys: Vec<String> = lock(&self.inner.servers).keys().cloned().collect();
        let stops = keys.iter().map(|key| self.stop(key, grace));
        for outcome in futures_util::future::join_all(stops).await {
            if let Err(error) = outcome {
                tracing::warn!(error = format!("{error:#}"), "stop add-on server");
            }
        }
    }

    fn request(&self, request: Request) -> anyhow::Result<()> {
        lock(&self.inner.spawner)
            .send(request)
            .ok()
            .context("the add-on server thread stopped")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `pid` still runs (and is not a zombie awaiting its waiter).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    // ESRCH: it exited meanwhile, which is what was asked.
    let _ = rustix::process::kill_process(pid, signal);
}

/// On the spawner thread: starts run `run` of `key` and a thread that waits for it.
fn spawn(inner: &Arc<Inner>, key: &str, run: u64) -> anyhow::Result<u32> {
    let spec = {
        let servers = lock(&inner.servers);
        match servers.get(key) {
            Some(entry) if entry.run == run => entry.spec.clone(),
            // Stopped (or stopped and started anew) meanwhile.
            _ => anyhow::bail!("the add-on server {key} was stopped"),
        }
    };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .with_context(|| format!("open {}", spec.log.display()))?;
    let errors = log.try_clone().context("duplicate the log file")?;
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={}", spec.uid))
        .arg(format!("--regid={}", spec.gid))
        .arg("--clear-groups")
        .arg(format!("--pdeathsig={}", spec.stop_signal.name()))
        .arg("--")
        .arg(&spec.program)
        .args(&spec.args)
        .current_dir(&spec.dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(errors);
    let child = command
        .spawn()
        .with_context(|| format!("start {} (with setpriv)", spec.program.display()))?;
    let pid = child.id();
    {
        let mut servers = lock(&inner.servers);
        match servers.get_mut(key) {
            Some(entry) if entry.run == run => entry.pid = Some(pid),
            _ => {
                // Stopped while it was being started: stop this run too.
                signal(pid, spec.stop_signal.signal());
            }
        }
    }
    let waiter = Arc::downgrade(inner);
    let waited_key = key.to_owned();
    let started = Instant::now();
    std::thread::Builder::new()
        .name("addon-wait".into())
        .stack_size(WAITER_STACK)
        .spawn(move || wait(child, waiter, waited_key, run, started))
        .context("start a thread to wait for the add-on server")?;
    Ok(pid)
}

/// On a waiter thread: reaps the child and, unless it was stopped, reports and restarts it.
fn wait(mut child: Child, inner: std::sync::Weak<Inner>, key: String, run: u64, started: Instant) {
    let status = match child.wait() {
        Ok(status) => status,
        Err(error) => {
            tracing::warn!(server = key, "wait for add-on server: {error}");
            return;
        }
    };
    let Some(inner) = inner.upgrade() else { return };
    {
        let mut servers = lock(&inner.servers);
        let Some(entry) = servers.get_mut(&key) else {
            return; // stopped on purpose
        };
        if entry.run != run {
            return;
        }
        entry.pid = None;
        if started.elapsed() >= HEALTHY_AFTER {
            entry.backoff = FIRST_BACKOFF;
        }
    }
    tracing::warn!(server = key, %status, "add-on server exited: starting it again");
    (inner.on_exit)(&key, status);
    schedule_restart(&inner, &key, run);
}

/// Waits the entry's backoff (on the calling thread, never the spawner) and asks the spawner
/// to start it again, unless it was stopped meanwhile.
fn schedule_restart(inner: &Arc<Inner>, key: &str, run: u64) {
    let backoff = {
        let mut servers = lock(&inner.servers);
        let Some(entry) = servers.get_mut(key) else {
            return;
        };
        let backoff = entry.backoff;
        entry.backoff = (backoff * 2).min(MAX_BACKOFF);
        entry.run = run + 1;
        backoff
    };
    let weak = Arc::downgrade(inner);
    let key = key.to_owned();
    let spawned = std::thread::Builder::new()
        .name("addon-restart".into())
        .stack_size(WAITER_STACK)
        .spawn(move || {
            std::thread::sleep(backoff);
            let Some(inner) = weak.upgrade() else { return };
            let current = lock(&inner.servers).get(&key).map(|entry| entry.run);
            if current != Some(run + 1) {
                return; // stopped, or started anew, meanwhile
            }
            let _ = lock(&inner.spawner).send(Request {
                key,
                run: run + 1,
                reply: None,
            });
        });
    if let Err(error) = spawned {
        tracing::warn!("start a thread to restart an add-on server: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            uid: 65534,
            gid: 65534,
            dir: dir.to_owned(),
            log: dir.join("server.log"),
            stop_signal: StopSignal::Term,
        }
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[tokio::test]
    async fn runs_unprivileged_restarts_after_exit_and_stops_for_good() {
        if !is_root() {
            panic!("this test starts processes as another user and must run as root");
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let exits = Arc::new(Mutex::new(Vec::new()));
        let seen = exits.clone();
        let supervisor = Supervisor::new(Arc::new(move |key: &str, status: ExitStatus| {
            lock(&seen).push((key.to_owned(), status.code()));
        }))
        .expect("a supervisor");
        let script = "id -u; exec sleep 1000";
        let first = supervisor
            .ensure("sleeper", spec(dir.path(), script))
            .await
            .expect("started")
            .expect("a pid");
        // A second ensure finds it.
        assert_eq!(
            supervisor
                .ensure("sleeper", spec(dir.path(), script))
                .await
                .expect("found"),
            Some(first)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let log = dir.path().join("server.log");
        let lines = || std::fs::read_to_string(&log).unwrap_or_default();
        while lines().lines().count() < 1 {
            assert!(Instant::now() < deadline, "the first run printed nothing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Killed from outside: reported and started again.
        signal(first, rustix::process::Signal::KILL);
        let second = loop {
            match supervisor.pid("sleeper") {
                Some(pid) if pid != first => break pid,
                _ if Instant::now() > deadline => panic!("not restarted"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        assert_eq!(lock(&exits).as_slice(), &[("sleeper".to_owned(), None)]);
        while lines().lines().count() < 2 {
            assert!(Instant::now() < deadline, "the second run printed nothing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        supervisor
            .stop("sleeper", Duration::from_secs(5))
            .await
            .expect("stopped");
        assert!(!alive(second));
        assert_eq!(supervisor.pid("sleeper"), None);
        // Not restarted after a stop, and the stop was not reported as an exit.
        tokio::time::sleep(FIRST_BACKOFF + Duration::from_millis(500)).await;
        assert!(!supervisor.supervises("sleeper"));
        assert_eq!(lock(&exits).len(), 1);
        assert_eq!(lines().lines().collect::<Vec<_>>(), ["65534", "65534"]);
    }

    #[tokio::test]
    async fn a_server_that_ignores_the_stop_signal_is_killed_after_the_grace() {
        if !is_root() {
            panic!("this test starts processes as another user and must run as root");
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let supervisor = Supervisor::new(Arc::new(|_: &str, _| {})).expect("a supervisor");
        let pid = supervisor
            .ensure(
                "stubborn",
                spec(dir.path(), "trap '' TERM; while :; do sleep 1; done"),
            )
            .await
            .expect("started")
            .expect("a pid");
        supervisor
            .stop("stubborn", Duration::from_millis(300))
            .await
            .expect("stopped");
        assert!(!alive(pid));
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_and_leaves_nothing_supervised() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let supervisor = Supervisor::new(Arc::new(|_: &str, _| {})).expect("a supervisor");
        let mut missing = spec(dir.path(), "");
        missing.log = dir.path().join("no-such-dir").join("server.log");
        assert!(supervisor.ensure("missing", missing).await.is_err());
        assert!(!supervisor.supervises("missing"));
    }
}
