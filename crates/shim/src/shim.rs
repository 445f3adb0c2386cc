//! The shim's event loop, one thread: container output to the connected server (or a capped
//! buffer while none is), the init's exit, and the orphan watchdog.
//!
//! The shim cannot ignore SIGTERM, SIGINT or SIGHUP (installing a handler needs `unsafe`);
//! its own session keeps a terminal's signals away. A shim killed outright (SIGKILL, or any
//! signal) leaves its container running without a holder: the server notices the socket is
//! dead and deals with the container itself.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::SendFlags;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

use crate::config::Config;
use crate::outbox::{self, Outbox};
use crate::runtime::Runtime;
use crate::start::{DirIdentity, Started};
use crate::{cgroup, exit_file_text, frame, EXIT_FILE, LOG_FILE, SOCKET};

/// The longest poll: timers (orphan watchdog, directory check, deadlines) run at least this often.
const TICK: Duration = Duration::from_secs(1);
/// A server that has read nothing for this long while output waits is dropped; its output
/// goes back to the buffer for the next one.
const STALL_LIMIT: Duration = Duration::from_secs(10);
/// After the init exits, how long the shim waits for the pipes' other ends to close.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// After SIGKILL, how long an orphaned shim waits for the init before it gives up on it.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// Frames queued for a connected server past which the shim stops reading the pipes, so the
/// container waits for the server rather than the shim's memory growing.
const HIGH_WATER: usize = 256 * 1024;

pub(crate) struct Shim {
    config: Config,
    dir: DirIdentity,
    listener: UnixListener,
    client: Option<Client>,
    /// Read ends of stdout and stderr, until their end (or the drain's deadline).
    pipes: [Option<OwnedFd>; 2],
    init: Init,
    cgroups: Vec<PathBuf>,
    outbox: Outbox,
    read_buffer: Vec<u8>,
    /// Since when no server has been connected (the start counts as a disconnect).
    alone_since: Instant,
    exit: ExitState,
    stop: Option<Stop>,
}

struct Client {
    stream: UnixStream,
    /// Since when the server has read nothing while frames wait for it.
    stalled_since: Option<Instant>,
    /// The EXIT frame reached this server: the shim ends when it hangs up.
    exit_delivered: bool,
}

struct Init {
    pid: Pid,
    pidfd: Option<OwnedFd>,
    /// `(code, signal)` once reaped, as in the EXIT frame.
    status: Option<(i32, i32)>,
}

enum ExitState {
    Running,
    /// The init is reaped; the output still in the pipes is read until this deadline.
    Draining {
        until: Instant,
    },
    /// EXIT is queued, or went to a server (and is queued again for any next one).
    Reported,
}

/// An orphaned shim stopping its container.
struct Stop {
    deadline: Instant,
    /// SIGKILL was sent (by the runtime or directly); `deadline` is then the last wait.
    killed: bool,
    /// A runtime command failed: its state is probably gone, so the shim cleans up after it.
    runtime_failed: bool,
}

/// What `poll` reported, per descriptor.
struct Ready {
    listener: PollFlags,
    client: PollFlags,
    pipes: [PollFlags; 2],
    init: PollFlags,
}

impl Shim {
    pub(crate) fn new(config: Config, started: Started) -> Shim {
        let [stdout, stderr] = started.pipes;
        Shim {
            config,
            dir: started.dir,
            listener: started.listener,
            client: None,
            pipes: [Some(stdout), Some(stderr)],
            init: Init {
                pid: started.init,
                pidfd: started.pidfd,
                status: None,
            },
            cgroups: started.cgroups,
            outbox: Outbox::default(),
            read_buffer: vec![0; frame::MAX_PAYLOAD],
            alone_since: Instant::now(),
            exit: ExitState::Running,
            stop: None,
        }
    }

    /// Runs until the shim's work is done; returns the process exit code.
    pub(crate) fn run(mut self) -> i32 {
        loop {
            if let Some(code) = self.tick(Instant::now()) {
                return code;
            }
            let ready = match self.wait() {
                Ok(ready) => ready,
                Err(error) => {
                    self.log(&format!("poll: {error}"));
                    std::thread::sleep(TICK);
                    continue;
                }
            };
            if let Some(code) = self.handle(ready) {
                return code;
            }
        }
    }

    /// Timers: reaping, the stalled server, the end of the drain, stopping, the watchdog.
    fn tick(&mut self, now: Instant) -> Option<i32> {
        self.reap();
        self.check_init_without_pidfd();
        if let Some(client) = &self.client {
            if client
                .stalled_since
                .is_some_and(|since| now.duration_since(since) >= STALL_LIMIT)
            {
                self.log("the server read nothing for 10 s: dropped it, buffering output");
                self.disconnect();
            }
        }
        if let ExitState::Draining { until } = self.exit {
            if self.pipes.iter().all(Option::is_none) || now >= until {
                self.pipes = [None, None];
                let (code, signal) = self.init.status.unwrap_or((-1, 0));
                self.outbox.push_exit(code, signal);
                self.exit = ExitState::Reported;
            }
        }
        if self.stop.is_some() {
            return self.continue_stop(now);
        }
        let reason = self.orphan_reason(now)?;
        self.begin_stop(&reason)
    }

    fn wait(&self) -> io::Result<Ready> {
        let now = Instant::now();
        let timeout = self
            .deadlines()
            .into_iter()
            .flatten()
            .map(|deadline| deadline.saturating_duration_since(now))
            .fold(TICK, Duration::min);
        let mut fds = Vec::with_capacity(5);
        let listener = match self.stop {
            None => watch(&mut fds, self.listener.as_fd(), PollFlags::IN),
            Some(_) => None,
        };
        let client = self.client.as_ref().and_then(|client| {
            let mut flags = PollFlags::IN;
            if !self.outbox.is_empty() {
                flags |= PollFlags::OUT;
            }
            watch(&mut fds, client.stream.as_fd(), flags)
        });
        let mut pipes = [None; 2];
        if self.reading_pipes() {
            for (slot_of_pipe, pipe) in pipes.iter_mut().zip(&self.pipes) {
                if let Some(pipe) = pipe {
                    *slot_of_pipe = watch(&mut fds, pipe.as_fd(), PollFlags::IN);
                }
            }
        }
        let init = self
            .init
            .pidfd
            .as_ref()
            .and_then(|pidfd| watch(&mut fds, pidfd.as_fd(), PollFlags::IN));
        let timeout = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(Errno::INTR) => return Ok(Ready::nothing()),
            Err(error) => return Err(error.into()),
        }
        let revents = |slot: Option<usize>| slot.map_or(PollFlags::empty(), |i| fds[i].revents());
        Ok(Ready {
            listener: revents(listener),
            client: revents(client),
            pipes: [revents(pipes[0]), revents(pipes[1])],
            init: revents(init),
        })
    }

    fn handle(&mut self, ready: Ready) -> Option<i32> {
        for (index, flags) in ready.pipes.into_iter().enumerate() {
            if !flags.is_empty() {
                self.read_pipe(index);
            }
        }
        if !ready.init.is_empty() {
            self.init_readable();
        }
        // A new server replaces the one `ready.client` is about.
        let replaced = ready.listener.contains(PollFlags::IN) && self.accept();
        if !replaced
            && ready
                .client
                .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
        {
            if let Some(code) = self.client_readable() {
                return Some(code);
            }
        }
        self.flush();
        None
    }

    fn deadlines(&self) -> [Option<Instant>; 3] {
        let drain = match self.exit {
            ExitState::Draining { until } => Some(until),
            _ => None,
        };
        let stall = self
            .client
            .as_ref()
            .and_then(|client| client.stalled_since)
            .map(|since| since + STALL_LIMIT);
        [drain, stall, self.stop.as_ref().map(|stop| stop.deadline)]
    }

    /// Whether the pipes are read: always while draining or without a server; with one, only
    /// while it keeps up (back-pressure on the container).
    fn reading_pipes(&self) -> bool {
        matches!(self.exit, ExitState::Draining { .. })
            || self.client.is_none()
            || self.outbox.queued_bytes() < HIGH_WATER
    }

    fn read_pipe(&mut self, index: usize) {
        let Some(pipe) = &self.pipes[index] else {
            return;
        };
        match rustix::io::read(pipe, &mut self.read_buffer[..]) {
            Ok(0) => self.pipes[index] = None,
            Ok(len) => {
                let kind = [frame::STDOUT, frame::STDERR][index];
                let encoded = outbox::encode(kind, &self.read_buffer[..len]);
                let connected = self.client.is_some();
                self.outbox
                    .push_output(encoded, connected, self.config.buffer_bytes);
            }
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(error) => {
                self.log(&format!("read output pipe: {error}"));
                self.pipes[index] = None;
            }
        }
    }

    /// The init's pidfd is readable: it has exited.
    fn init_readable(&mut self) {
        match rustix::process::waitpid(Some(self.init.pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => self.init_exited(status_pair(status)),
            Ok(None) | Err(Errno::INTR) => {}
            Err(Errno::CHILD) => {
                // Not reparented to the shim (a runtime that does not fork its init off):
                // the status is unknown.
                self.log("the init exited but is not the shim's child: status unknown");
                self.init_exited((-1, 0));
            }
            Err(error) => self.log(&format!("wait for the init: {error}")),
        }
    }

    /// Reaps every exited child: the init (when there is no pidfd) and processes of the
    /// container reparented to the shim.
    fn reap(&mut self) {
        loop {
            match rustix::process::waitpid(None, WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    if pid == self.init.pid && self.init.status.is_none() {
                        self.init_exited(status_pair(status));
                    }
                }
                Err(Errno::INTR) => {}
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Without a pidfd (an old kernel, or the init gone before the shim could open one), the
    /// init's end shows in `reap`, or, if it is not the shim's child, as its pid vanishing.
    fn check_init_without_pidfd(&mut self) {
        if self.init.status.is_some() || self.init.pidfd.is_some() {
            return;
        }
        if rustix::process::test_kill_process(self.init.pid) == Err(Errno::SRCH) {
            self.log("the init is gone and was not the shim's child: status unknown");
            self.init_exited((-1, 0));
        }
    }

    fn init_exited(&mut self, (code, signal): (i32, i32)) {
        self.init.status = Some((code, signal));
        self.init.pidfd = None;
        if self.dir_is_ours() {
            let text = exit_file_text(code, signal);
            let temporary = self.config.dir.join(format!("{EXIT_FILE}.tmp"));
            let written = fs::write(&temporary, &text)
                .and_then(|()| fs::rename(&temporary, self.config.dir.join(EXIT_FILE)));
            if let Err(error) = written {
                self.log(&format!("write {EXIT_FILE}: {error}"));
            }
        }
        if self.stop.is_none() {
            self.exit = ExitState::Draining {
                until: Instant::now() + DRAIN_LIMIT,
            };
        }
    }

    /// Accepts every waiting connection, each replacing the one before. Returns whether the
    /// server changed.
    fn accept(&mut self) -> bool {
        let mut replaced = false;
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return replaced,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.log(&format!("accept: {error}"));
                    return replaced;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            self.disconnect();
            let exit = match self.exit {
                ExitState::Reported => self.init.status,
                _ => None,
            };
            let pid = self.init.pid.as_raw_nonzero().get().unsigned_abs();
            self.outbox.connect(pid, exit);
            self.client = Some(Client {
                stream,
                stalled_since: None,
                exit_delivered: false,
            });
            replaced = true;
        }
    }

    /// The server sent something or hung up. It has nothing to say; a hang-up after EXIT ends
    /// the shim.
    fn client_readable(&mut self) -> Option<i32> {
        let client = self.client.as_mut()?;
        let mut scratch = [0; 256];
        let closed = loop {
            match client.stream.read(&mut scratch) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if !closed {
            return None;
        }
        if client.exit_delivered {
            self.remove_socket();
            return Some(0);
        }
        self.disconnect();
        None
    }

    /// Writes what the server can take now.
    fn flush(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let mut progress = false;
        while let Some(unsent) = self.outbox.unsent() {
            match rustix::net::send(
                &client.stream,
                unsent,
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(written) => {
                    progress = true;
                    if self.outbox.advance(written) == Some(frame::EXIT) {
                        client.exit_delivered = true;
                    }
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => {}
                Err(_) => {
                    self.disconnect();
                    return;
                }
            }
        }
        client.stalled_since = match (self.outbox.is_empty(), progress) {
            (true, _) => None,
            (false, true) => Some(Instant::now()),
            (false, false) => client.stalled_since.or(Some(Instant::now())),
        };
    }

    fn disconnect(&mut self) {
        if self.client.take().is_some() {
            self.outbox.disconnect(self.config.buffer_bytes);
            self.alone_since = Instant::now();
        }
    }

    /// Why the shim should stop its container now, if it should.
    fn orphan_reason(&self, now: Instant) -> Option<String> {
        if !self.dir_is_ours() {
            return Some(format!("{} is gone or replaced", self.config.dir.display()));
        }
        let alone = now.duration_since(self.alone_since);
        (self.client.is_none() && alone >= self.config.orphan_after)
            .then(|| format!("no server connected for {} s", alone.as_secs()))
    }

    fn begin_stop(&mut self, reason: &str) -> Option<i32> {
        self.log(&format!("orphaned: {reason}: stopping the container"));
        self.disconnect();
        if self.init.status.is_some() {
            return Some(self.finish(false));
        }
        let runtime_failed = match Runtime::new(&self.config).kill_all("TERM") {
            Ok(()) => false,
            Err(error) => {
                self.log(&format!("{error}: sending SIGKILL to the init"));
                self.kill_init();
                true
            }
        };
        let wait = if runtime_failed {
            KILL_WAIT
        } else {
            self.config.stop_grace
        };
        self.stop = Some(Stop {
            deadline: Instant::now() + wait,
            killed: runtime_failed,
            runtime_failed,
        });
        None
    }

    fn continue_stop(&mut self, now: Instant) -> Option<i32> {
        let stop = self.stop.as_ref()?;
        let runtime_failed = stop.runtime_failed;
        if self.init.status.is_some() {
            return Some(self.finish(runtime_failed));
        }
        if now < stop.deadline {
            return None;
        }
        if stop.killed {
            self.log("the init did not exit after SIGKILL: leaving it");
            return Some(self.finish(runtime_failed));
        }
        let killed_by_runtime = Runtime::new(&self.config).kill_all("KILL");
        if let Err(error) = &killed_by_runtime {
            self.log(&format!("{error}: sending SIGKILL to the init"));
            self.kill_init();
        }
        self.stop = Some(Stop {
            deadline: Instant::now() + KILL_WAIT,
            killed: true,
            runtime_failed: runtime_failed || killed_by_runtime.is_err(),
        });
        None
    }

    /// Kills the init directly. Safe from pid reuse: the shim is its reaper and has not reaped
    /// it, so the pid still names it; the pid namespace dies with it.
    fn kill_init(&self) {
        if self.init.status.is_none() {
            let _ = rustix::process::kill_process(self.init.pid, Signal::KILL);
        }
    }

    /// The init is reaped (or given up on): the runtime forgets the container, the shim goes.
    fn finish(&mut self, mut runtime_failed: bool) -> i32 {
        if let Err(error) = Runtime::new(&self.config).delete_force() {
            self.log(&error);
            runtime_failed = true;
        }
        if runtime_failed {
            cgroup::remove(&self.cgroups);
        }
        self.remove_socket();
        0
    }

    /// The socket goes only from the shim's own directory, never from a replacement (where
    /// it would be a new shim's).
    fn remove_socket(&self) {
        if self.dir_is_ours() {
            let _ = fs::remove_file(self.config.dir.join(SOCKET));
        }
    }

    fn dir_is_ours(&self) -> bool {
        DirIdentity::of(&self.config.dir) == Some(self.dir)
    }

    /// Appends a line to the shim's log, the only place a detached shim can tell anything.
    fn log(&self, message: &str) {
        if !self.dir_is_ours() {
            return;
        }
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let line = format!("{seconds} {} {message}\n", self.config.id);
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.dir.join(LOG_FILE))
            .and_then(|mut file| file.write_all(line.as_bytes()));
    }
}

impl Ready {
    fn nothing() -> Ready {
        let none = PollFlags::empty();
        Ready {
            listener: none,
            client: none,
            pipes: [none; 2],
            init: none,
        }
    }
}

/// Adds `fd` to the poll set; returns its index there.
fn watch<'fd>(fds: &mut Vec<PollFd<'fd>>, fd: BorrowedFd<'fd>, flags: PollFlags) -> Option<usize> {
    fds.push(PollFd::from_borrowed_fd(fd, flags));
    Some(fds.len() - 1)
}

/// `(code, signal)` as in the EXIT frame.
fn status_pair(status: WaitStatus) -> (i32, i32) {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => (code, 0),
        (None, Some(signal)) => (-1, signal),
        (None, None) => (-1, 0),
    }
}
