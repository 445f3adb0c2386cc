//! The shim as a real process, started the way the server starts it, against a fake OCI
//! runtime: a shell script that answers `run -d` by starting the test's "container" (a shell
//! script in its own session) in the background, `kill --all` by signalling its process
//! group, and `delete` by doing nothing, logging every command line it gets.
//!
//! This test binary has its own `main`: started with `WHARF_SHIM_TEST_AS_SHIM` set, it *is* the
//! shim (`wharf_shim::main`, as in the `wharf-shim` binary); otherwise it runs the tests, each
//! on its own thread. With `WHARF_SHIM_BIN=path/to/wharf-shim`, the tests run that binary
//! instead (`cargo build -p wharf --bin wharf-shim`), to measure its own resident set.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use wharf_shim::frame;

const AS_SHIM: &str = "WHARF_SHIM_TEST_AS_SHIM";
const SHIM_BIN: &str = "WHARF_SHIM_BIN";
/// The fake runtime, one for all tests.
static RUNTIME: OnceLock<PathBuf> = OnceLock::new();
/// How long any one thing may take before the test fails (never a sleep).
const PATIENCE: Duration = Duration::from_secs(20);
const ID: &str = "web.1";

type Test = (&'static str, fn());

/// `(name, test)` for each test function named.
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), $name as fn())),*]
    };
}

const TESTS: &[Test] = tests![
    started_line_and_hello_then_output_in_order,
    output_written_without_a_server_reaches_the_next,
    past_the_buffer_the_next_server_learns_the_exact_loss,
    a_server_that_stops_reading_is_dropped_without_loss,
    an_exit_without_a_server_is_reported_to_the_next,
    an_init_killed_by_a_signal_reports_the_signal,
    an_init_the_shim_cannot_reap_has_an_unknown_status,
    a_failing_runtime_gives_a_failed_line,
    an_unknown_flag_exits_2,
    an_orphaned_shim_stops_its_container,
    an_init_ignoring_term_is_killed_after_the_grace,
    a_deleted_directory_stops_the_container,
    a_second_server_replaces_the_first,
    resident_set_with_a_live_server,
];

fn main() {
    if std::env::var_os(AS_SHIM).is_some() {
        std::process::exit(wharf_shim::main());
    }
    // Written before any thread forks: a file open for writing while another thread forks
    // would make its exec fail with "text file busy".
    let runtime_dir = tempfile::tempdir().expect("temp dir");
    let runtime = runtime_dir.path().join("runc");
    fs::write(&runtime, FAKE_RUNTIME).expect("write runtime");
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o755)).expect("chmod");
    RUNTIME.set(runtime).expect("set once");
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let handles: Vec<_> = selected
        .iter()
        .map(|&&(name, test)| (name, std::thread::spawn(test)))
        .collect();
    let mut failed = Vec::new();
    for (name, handle) in handles {
        let ok = handle.join().is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

// ---- the tests -------------------------------------------------------------------------------

fn started_line_and_hello_then_output_in_order() {
    let mut shim = Shim::start(
        "echo out; echo err >&2; i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.02; done",
        &[],
    );
    let init = shim.init;
    assert!(Path::new(&format!("/proc/{init}")).exists());
    let setup = &shim.setup;
    let run = format!(
        "--root {state} --log {bundle}/runtime.log --log-format json run -d \
         --pid-file {dir}/init.pid --bundle {bundle} {ID}\n",
        state = setup.temp.path().join("state").display(),
        bundle = setup.bundle.display(),
        dir = setup.dir.display(),
    );
    assert_eq!(shim.calls(), run);
    assert_eq!(
        fs::read_to_string(shim.dir.join("init.pid"))
            .expect("pid file")
            .trim(),
        init.to_string()
    );
    shim.stdout_reaches_its_end();
    let mode = fs::metadata(shim.dir.join(wharf_shim::SOCKET))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut server = shim.connect();
    let seen = server
        .read_until(|seen| seen.stdout.matches("tick").count() >= 20 && !seen.stderr.is_empty());
    assert!(
        seen.stdout.starts_with("out\ntick 1\ntick 2\n"),
        "{:?}",
        seen.stdout
    );
    let complete_lines = &seen.stdout[..=seen.stdout.rfind('\n').expect("a line")];
    for (index, line) in complete_lines.lines().skip(1).enumerate() {
        assert_eq!(line, format!("tick {}", index + 1));
    }
    assert_eq!(seen.stderr, "err\n");
    assert_eq!(seen.lost, 0);
}

fn output_written_without_a_server_reaches_the_next() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let go = scratch.path().join("go");
    let written = scratch.path().join("written");
    let shim = Shim::start(
        &format!(
            "echo first; while [ ! -e {go} ]; do sleep 0.02; done; \
             echo second; echo second-err >&2; touch {written}; exec sleep 1000",
            go = go.display(),
            written = written.display()
        ),
        &[],
    );
    let mut first = shim.connect();
    first.read_until(|seen| seen.stdout == "first\n");
    drop(first);
    fs::write(&go, "").expect("write go");
    wait_for(|| written.exists(), "the container to write again");

    let mut second = shim.connect();
    let seen = second.read_until(|seen| seen.stdout.len() >= 7 && seen.stderr.len() >= 11);
    assert_eq!(seen.stdout, "second\n");
    assert_eq!(seen.stderr, "second-err\n");
    assert_eq!(seen.lost, 0);
}

fn past_the_buffer_the_next_server_learns_the_exact_loss() {
    const LINES: usize = 400_000;
    let scratch = tempfile::tempdir().expect("temp dir");
    let written = scratch.path().join("written");
    // 3.2 MB through a 1 MiB pipe: when `seq` is done, the shim has read at least 2.2 MB
    // with no server connected, and kept only 10 kB of it.
    let shim = Shim::start(
        &format!(
            "seq -f %07g 1 {LINES}; touch {}; exec sleep 1000",
            written.display()
        ),
        &["--buffer-bytes", "10000"],
    );
    wait_for(|| written.exists(), "the container to write everything");
    let all: String = (1..=LINES).map(|n| format!("{n:07}\n")).collect();

    let mut server = shim.connect();
    let seen = server.read_until(|seen| seen.lost as usize + seen.stdout.len() >= all.len());
    let lost = seen.lost as usize;
    assert!(lost >= all.len() - 1024 * 1024 - 10_000, "lost only {lost}");
    assert_eq!(lost + seen.stdout.len(), all.len());
    assert!(
        seen.stdout == all[lost..],
        "what arrived is not the end of the output"
    );
    assert_eq!(seen.lost_frames, 1);
}

fn a_server_that_stops_reading_is_dropped_without_loss() {
    const LINES: usize = 400_000;
    let scratch = tempfile::tempdir().expect("temp dir");
    let written = scratch.path().join("written");
    let go = scratch.path().join("go");
    let shim = Shim::start(
        &format!(
            "while [ ! -e {go} ]; do sleep 0.02; done; \
             seq -f %07g 1 {LINES}; touch {written}; exec sleep 1000",
            go = go.display(),
            written = written.display()
        ),
        &["--buffer-bytes", "100000"],
    );
    let all: String = (1..=LINES).map(|n| format!("{n:07}\n")).collect();
    // The first server reads nothing: once its socket is full the shim stops reading the
    // pipes (the container waits), and after 10 s it drops the server.
    let mut first = shim.connect();
    fs::write(&go, "").expect("write go");
    let log = shim.dir.join(wharf_shim::LOG_FILE);
    wait_for(
        || fs::read_to_string(&log).is_ok_and(|log| log.contains("read nothing")),
        "the shim to drop the server that does not read",
    );
    assert!(!written.exists(), "the container waited for the server");
    let first = first.read_complete_frames();
    assert_eq!(first.hello, Some(shim.init));
    let before = first.lost as usize + first.stdout.len();
    assert!(first.stdout == all[first.lost as usize..before]);
    wait_for(|| written.exists(), "the container to write everything");

    let mut second = shim.connect();
    let seen =
        second.read_until(|seen| before + seen.lost as usize + seen.stdout.len() >= all.len());
    let resumed = before + seen.lost as usize;
    assert_eq!(resumed + seen.stdout.len(), all.len());
    assert!(
        seen.stdout == all[resumed..],
        "the second server's output does not follow on"
    );
}

fn an_exit_without_a_server_is_reported_to_the_next() {
    let mut shim = Shim::start("echo bye; exit 7", &[]);
    let exit_file = shim.dir.join(wharf_shim::EXIT_FILE);
    wait_for(|| exit_file.exists(), "the exit file");
    assert_eq!(
        fs::read_to_string(&exit_file).expect("exit file"),
        "exited 7"
    );

    let mut server = shim.connect();
    let seen = server.read_until(|seen| seen.exit.is_some());
    assert_eq!(seen.stdout, "bye\n");
    assert_eq!(seen.exit, Some((7, 0)));
    assert!(
        shim.try_wait().is_none(),
        "the shim waits for the server to hang up"
    );
    drop(server);
    let status = shim.wait();
    assert_eq!(status.code(), Some(0));
    assert!(!shim.dir.join(wharf_shim::SOCKET).exists());
    assert!(
        !shim.calls().contains("delete"),
        "deleting is the server's job"
    );
}

fn an_init_killed_by_a_signal_reports_the_signal() {
    let mut shim = Shim::start("echo going; kill -KILL $$", &[]);
    let mut server = shim.connect();
    let seen = server.read_until(|seen| seen.exit.is_some());
    assert_eq!(seen.stdout, "going\n");
    assert_eq!(seen.exit, Some((-1, 9)));
    let exit_file = fs::read_to_string(shim.dir.join(wharf_shim::EXIT_FILE)).expect("exit file");
    assert_eq!(wharf_shim::parse_exit_file(&exit_file), Some((-1, 9)));
    drop(server);
    assert_eq!(shim.wait().code(), Some(0));
}

fn an_init_the_shim_cannot_reap_has_an_unknown_status() {
    let setup = Setup::new("echo short; exit 5");
    fs::write(setup.bundle.join("reap-init"), "").expect("write marker");
    let shim = Shim::spawn(setup, &[]);
    let mut server = shim.connect();
    let seen = server.read_until(|seen| seen.exit.is_some());
    assert_eq!(seen.stdout, "short\n");
    assert_eq!(seen.exit, Some((-1, 0)));
    let exit_file = fs::read_to_string(shim.dir.join(wharf_shim::EXIT_FILE)).expect("exit file");
    assert_eq!(wharf_shim::parse_exit_file(&exit_file), Some((-1, 0)));
}

fn a_failing_runtime_gives_a_failed_line() {
    let setup = Setup::new("exec sleep 1000");
    fs::write(setup.bundle.join("fail"), "").expect("write fail marker");
    let mut child = setup.spawn(&[]);
    let line = first_line(child.stdout.take().expect("stdout"));
    assert!(
        line.starts_with("failed ") && line.contains('3'),
        "{line:?}"
    );
    assert_eq!(wait_child(&mut child).code(), Some(1));
    assert!(!setup.dir.join(wharf_shim::SOCKET).exists());
    assert!(fs::read_to_string(setup.bundle.join("runtime.log"))
        .expect("log")
        .contains("no such image"));
}

fn an_unknown_flag_exits_2() {
    let output = shim_command()
        .args(["--dir", "/nonexistent", "--frobnicate", "1"])
        .output()
        .expect("run the shim");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown flag --frobnicate"));
    assert!(output.stdout.is_empty());
}

fn an_orphaned_shim_stops_its_container() {
    let mut shim = Shim::start(
        "while :; do echo tick; sleep 0.05; done",
        &["--orphan-after", "1"],
    );
    let status = shim.wait();
    assert_eq!(status.code(), Some(0));
    let calls = shim.calls();
    let term = calls
        .find(&format!("kill --all {ID} TERM"))
        .expect("TERM through the runtime");
    let delete = calls
        .find(&format!("delete --force {ID}"))
        .expect("delete through the runtime");
    assert!(term < delete, "{calls}");
    assert!(!calls.contains("KILL"), "the init obeyed TERM: {calls}");
    assert!(!process_exists(shim.init));
    assert!(!shim.dir.join(wharf_shim::SOCKET).exists());
    let log = fs::read_to_string(shim.dir.join(wharf_shim::LOG_FILE)).expect("shim log");
    assert!(log.contains("orphaned: no server connected"), "{log}");
    assert!(shim.dir.join(wharf_shim::EXIT_FILE).exists());
}

fn an_init_ignoring_term_is_killed_after_the_grace() {
    let mut shim = Shim::start(
        "trap '' TERM; while :; do sleep 0.05; done",
        &["--orphan-after", "1", "--stop-grace", "1"],
    );
    assert_eq!(shim.wait().code(), Some(0));
    let calls = shim.calls();
    let term = calls.find(&format!("kill --all {ID} TERM")).expect("TERM");
    let kill = calls
        .find(&format!("kill --all {ID} KILL"))
        .expect("KILL after the grace");
    let delete = calls.find(&format!("delete --force {ID}")).expect("delete");
    assert!(term < kill && kill < delete, "{calls}");
    assert!(!process_exists(shim.init));
}

fn a_deleted_directory_stops_the_container() {
    let mut shim = Shim::start("while :; do echo tick; sleep 0.05; done", &[]);
    // As when the data dir goes: the runtime's state went with it, so its kill fails and the
    // shim kills the init itself.
    fs::write(shim.setup.state().join("kill-fails"), "").expect("write marker");
    let mut server = shim.connect();
    server.read_until(|seen| seen.stdout.contains("tick"));
    fs::remove_dir_all(&shim.dir).expect("remove the shim's dir");
    let status = shim.wait();
    assert_eq!(status.code(), Some(0));
    assert!(!process_exists(shim.init));
    let calls = shim.calls();
    assert!(calls.contains(&format!("kill --all {ID} TERM")), "{calls}");
    assert!(calls.contains(&format!("delete --force {ID}")), "{calls}");
    assert!(
        !shim.dir.exists(),
        "the shim writes nothing into a deleted directory"
    );
}

fn a_second_server_replaces_the_first() {
    let shim = Shim::start("while :; do echo tick; sleep 0.02; done", &[]);
    let mut first = shim.connect();
    first.read_until(|seen| seen.stdout.contains("tick"));
    let mut second = shim.connect();
    let seen = second.read_until(|seen| seen.stdout.matches("tick").count() >= 3);
    assert_eq!(seen.hello, Some(shim.init));
    first.read_to_end();
}

fn resident_set_with_a_live_server() {
    let shim = Shim::start("while :; do echo tick; sleep 0.01; done", &[]);
    let mut server = shim.connect();
    server.read_until(|seen| seen.stdout.matches("tick").count() >= 50);
    let pid = shim.child.id();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    // Pss shares the binary's and libc's pages among the processes mapping them; Anonymous is
    // the shim's own memory (heap, stack), which is what each more shim costs.
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let kib = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let shim_binary = match std::env::var_os(SHIM_BIN).filter(|bin| !bin.is_empty()) {
        Some(bin) => bin.to_string_lossy().into_owned(),
        None if cfg!(debug_assertions) => "the debug test binary".to_owned(),
        None => "the release test binary".to_owned(),
    };
    eprintln!(
        "shim resident set ({shim_binary}, live server): VmRSS {} kB (RssAnon {} kB, \
         RssFile {} kB), Pss {} kB, Anonymous {} kB, VmHWM {} kB",
        kib(&status, "VmRSS:"),
        kib(&status, "RssAnon:"),
        kib(&status, "RssFile:"),
        kib(&rollup, "Pss:"),
        kib(&rollup, "Anonymous:"),
        kib(&status, "VmHWM:"),
    );
    let rss = kib(&status, "VmRSS:");
    assert!(rss > 0 && rss < 4 * 1024, "VmRSS {rss} kB");
}

// ---- the fixture -----------------------------------------------------------------------------

/// A temp dir laid out as the server lays it out, with the fake runtime.
struct Setup {
    temp: tempfile::TempDir,
    dir: PathBuf,
    bundle: PathBuf,
}

impl Setup {
    /// `container` is the body of the container's init, a `sh` script.
    fn new(container: &str) -> Setup {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("shim");
        let bundle = temp.path().join("bundle");
        for path in [&dir, &bundle, &temp.path().join("state")] {
            fs::create_dir(path).expect("create dir");
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        fs::write(bundle.join("init.sh"), container).expect("write init");
        Setup { temp, dir, bundle }
    }

    /// The runtime's state root (`--root`), where the fake runtime keeps its files.
    fn state(&self) -> PathBuf {
        self.temp.path().join("state")
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        shim_command()
            .arg("--dir")
            .arg(&self.dir)
            .arg("--runtime")
            .arg(RUNTIME.get().expect("written in main"))
            .arg("--root")
            .arg(self.state())
            .arg("--bundle")
            .arg(&self.bundle)
            .args(["--id", ID])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the shim")
    }
}

/// `--root STATE run -d --pid-file F --bundle B ID` starts `B/init.sh` in its own session
/// (forked off, as runc's init is, so that it is never this script's child to reap; with
/// `B/reap-init`, as its own child, which it waits for); `kill
/// --all ID SIG` signals that session's process group (failing if `STATE/kill-fails`
/// exists); `delete` succeeds. Every command line goes to `STATE/calls`.
const FAKE_RUNTIME: &str = r#"#!/bin/sh
state=$2
echo "$*" >> "$state/calls"
while [ "$1" != run ] && [ "$1" != kill ] && [ "$1" != delete ]; do shift; done
case $1 in
run)
    pid_file=$4; bundle=$6
    if [ -e "$bundle/fail" ]; then echo '{"msg":"no such image"}' >> "$bundle/runtime.log"; exit 3; fi
    if [ -e "$bundle/reap-init" ]; then
        setsid sh "$bundle/init.sh" &
        echo $! > "$pid_file"
        wait
        exit 0
    fi
    setsid -f sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec sh "$1"' \
        "$state/init.pid" "$bundle/init.sh"
    while [ ! -e "$state/init.pid" ]; do sleep 0.01; done
    cp "$state/init.pid" "$pid_file"
    ;;
kill)
    [ -e "$state/kill-fails" ] && exit 1
    kill -s "$4" -- "-$(cat "$state/init.pid")"
    ;;
delete)
    ;;
esac
"#;

/// A started shim.
struct Shim {
    setup: Setup,
    dir: PathBuf,
    child: Child,
    stdout: Option<BufReader<ChildStdout>>,
    init: u32,
    exited: Option<ExitStatus>,
}

impl Shim {
    fn start(container: &str, extra: &[&str]) -> Shim {
        Shim::spawn(Setup::new(container), extra)
    }

    fn spawn(setup: Setup, extra: &[&str]) -> Shim {
        let mut child = setup.spawn(extra);
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the started line");
        let init = line
            .strip_prefix("started ")
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or_else(|| panic!("not a started line: {line:?}"));
        let dir = setup.dir.clone();
        Shim {
            setup,
            dir,
            child,
            stdout: Some(stdout),
            init,
            exited: None,
        }
    }

    /// After the started line, the shim lets go of the server's pipe.
    fn stdout_reaches_its_end(&mut self) {
        let mut stdout = self.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = sender.send(stdout.read_to_end(&mut rest).map(|_| rest));
        });
        let rest = receiver
            .recv_timeout(PATIENCE)
            .expect("the shim closes its stdout");
        assert_eq!(rest.expect("read stdout"), b"");
    }

    fn connect(&self) -> Server {
        let stream = UnixStream::connect(self.dir.join(wharf_shim::SOCKET)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Server {
            stream,
            buffer: Vec::new(),
            seen: Seen::default(),
        }
    }

    fn calls(&self) -> String {
        fs::read_to_string(self.setup.state().join("calls")).unwrap_or_default()
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "the shim did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            // The shim still holds the init unreaped, so its pid is still the container's.
            if let Some(pid) = Pid::from_raw(self.init as i32) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Everything one connection has received so far.
#[derive(Default, Debug)]
struct Seen {
    hello: Option<u32>,
    stdout: String,
    stderr: String,
    lost: u64,
    lost_frames: usize,
    exit: Option<(i32, i32)>,
}

/// The server's side of a connection.
struct Server {
    stream: UnixStream,
    buffer: Vec<u8>,
    seen: Seen,
}

impl Server {
    /// Reads frames until `done`; checks HELLO comes first and EXIT last.
    fn read_until(&mut self, done: impl Fn(&Seen) -> bool) -> &Seen {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.seen) {
            assert!(
                Instant::now() < deadline,
                "gave up waiting; so far: {:?}",
                self.seen
            );
            if let Some((kind, payload)) = self.next_frame() {
                self.record(kind, &payload);
            }
        }
        &self.seen
    }

    /// Reads until the shim closes the connection; returns the whole frames received (the
    /// last may have come in part, when the shim gave up on this server).
    fn read_complete_frames(&mut self) -> Seen {
        let deadline = Instant::now() + PATIENCE;
        let mut chunk = [0; 65536];
        loop {
            assert!(
                Instant::now() < deadline,
                "the shim did not close the connection"
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(len) => self.buffer.extend_from_slice(&chunk[..len]),
                Err(error) if is_timeout(&error) => {}
                Err(error) => panic!("read: {error}"),
            }
        }
        let buffer = std::mem::take(&mut self.buffer);
        let mut rest = &buffer[..];
        while let Some((kind, range, total)) = frame::decode(rest).expect("valid frames") {
            self.record(kind, &rest[range]);
            rest = &rest[total..];
        }
        std::mem::take(&mut self.seen)
    }

    /// Expects the shim to close this connection.
    fn read_to_end(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let mut chunk = [0; 4096];
        loop {
            assert!(
                Instant::now() < deadline,
                "the shim did not close the connection"
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if is_timeout(&error) => {}
                Err(error) => panic!("read: {error}"),
            }
        }
    }

    fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((kind, range, total)) = frame::decode(&self.buffer).expect("valid frames") {
                let payload = self.buffer[range].to_vec();
                self.buffer.drain(..total);
                return Some((kind, payload));
            }
            let mut chunk = [0; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the shim closed the connection; so far: {:?}", self.seen),
                Ok(len) => self.buffer.extend_from_slice(&chunk[..len]),
                Err(error) if is_timeout(&error) => return None,
                Err(error) => panic!("read: {error}"),
            }
        }
    }

    fn record(&mut self, kind: u8, payload: &[u8]) {
        let seen = &mut self.seen;
        assert_eq!(
            seen.hello.is_some(),
            kind != frame::HELLO,
            "HELLO first and only once"
        );
        assert!(seen.exit.is_none(), "nothing after EXIT");
        let text = || String::from_utf8(payload.to_vec()).expect("text output");
        match kind {
            frame::HELLO => seen.hello = Some(frame::parse_hello(payload).expect("pid")),
            frame::STDOUT => seen.stdout += &text(),
            frame::STDERR => seen.stderr += &text(),
            frame::LOST => {
                seen.lost += frame::parse_lost(payload).expect("count");
                seen.lost_frames += 1;
            }
            frame::EXIT => seen.exit = Some(frame::parse_exit(payload).expect("status")),
            _ => unreachable!("decode checks kinds"),
        }
    }
}

/// The shim: `WHARF_SHIM_BIN` if given, else this test binary acting as the shim.
fn shim_command() -> Command {
    match std::env::var_os(SHIM_BIN).filter(|bin| !bin.is_empty()) {
        Some(bin) => Command::new(bin),
        None => {
            let mut command = Command::new(std::env::current_exe().expect("test binary"));
            command.env(AS_SHIM, "1");
            command
        }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn first_line(stdout: ChildStdout) -> String {
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read a line");
    line
}

fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(condition: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (not a zombie, which the shim would have reaped).
fn process_exists(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}
