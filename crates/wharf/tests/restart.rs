//! End to end: restarting `wharf server` does not restart dynos. Each dyno runs detached
//! under its holder (`wharf-shim`); a server that stops (SIGTERM) or dies (SIGKILL) leaves the
//! formation running, and the next start on the data dir takes every dyno up again: the same
//! containers and processes, no `Starting process` line, routes back at once, output written
//! meanwhile delivered, and a dyno that exited while no server watched is found, logged and
//! restarted. With `--stop-dynos` a clean stop leaves nothing behind.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{fixture_apps, http_json, wait_for, Server, User, DEADLINE};

/// Settings of a server that leaves its dynos running when it stops.
const LEAVE_RUNNING: [(&str, &str); 2] =
    [("WHARF_STOP_DYNOS", "false"), ("WHARF_LOG_LINES", "20000")];

/// A web process that answers every request, and a worker that counts, ten lines a second.
const PROCFILE: &str = "web: python3 server.py\n\
    worker: i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done\n";

/// Each dyno container of the data dir's runtime: its init's pid and that process's start
/// time (clock ticks since boot): the same pair means the same process, never restarted.
fn processes(data: &Path) -> BTreeMap<String, (u32, u64)> {
    let mut processes = BTreeMap::new();
    for id in support::runtime_containers(data) {
        let Some(pid) = support::container_pid(data, &id) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 22, counted after the command's closing parenthesis.
        let started = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(19))
            .and_then(|ticks| ticks.parse().ok())
            .unwrap_or(0);
        processes.insert(id, (pid, started));
    }
    processes
}

/// The app's log, as many lines as the server keeps.
fn app_log(server: &Server, key: &str, app: &str) -> String {
    let (status, session) = http_json(
        &server.url,
        "POST",
        &format!("/apps/{app}/log-sessions"),
        key,
        &serde_json::json!({"lines": 20000}),
    );
    assert_eq!(status, 201, "{session}");
    support::http_get(session["logplex_url"].as_str().unwrap())
}

/// The worker's counts in the log, in order.
fn ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("app[worker.1]: tick "))
        .filter_map(|line| line.rsplit_once("tick ")?.1.trim().parse().ok())
        .collect()
}

/// The counts missing between the first and the last one seen.
fn missing(ticks: &[u64]) -> Vec<u64> {
    let mut missing = Vec::new();
    for pair in ticks.windows(2) {
        missing.extend(pair[0] + 1..pair[1].max(pair[0] + 1));
    }
    missing
}

/// Requests through the router to each app in turn, one at a time, until stopped: how many
/// failed, and when the first and last failures were.
struct Load {
    stop: Arc<AtomicBool>,
    results: Arc<Mutex<LoadResults>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default, Debug, Clone)]
struct LoadResults {
    sent: u64,
    failed: u64,
    /// The longest run of consecutive failures, in time.
    longest_gap: Duration,
    /// How the last failure looked (the response's first line, or what went wrong).
    last_failure: String,
}

impl Load {
    fn start(authority: Arc<Mutex<String>>, hosts: Vec<String>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(LoadResults::default()));
        let (stop_flag, shared) = (stop.clone(), results.clone());
        let thread = std::thread::spawn(move || {
            let mut failing_since: Option<Instant> = None;
            // Bounded: a test that hangs elsewhere never leaves this running for ever.
            for n in 0..200_000usize {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let host = &hosts[n % hosts.len()];
                let target = authority.lock().unwrap().clone();
                let outcome = get(&target, host);
                let ok = outcome.starts_with("HTTP/1.1 200 ");
                let mut results = shared.lock().unwrap();
                results.sent += 1;
                if ok {
                    if let Some(since) = failing_since.take() {
                        results.longest_gap = results.longest_gap.max(since.elapsed());
                    }
                } else {
                    results.failed += 1;
                    results.last_failure = outcome;
                    failing_since.get_or_insert_with(Instant::now);
                    drop(results);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Load {
            stop,
            results,
            thread: Some(thread),
        }
    }

    fn take(&self) -> LoadResults {
        std::mem::take(&mut *self.results.lock().unwrap())
    }

    fn finish(mut self) -> LoadResults {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.take()
    }
}

/// One GET through the router: the response's first line, or what went wrong.
fn get(authority: &str, host: &str) -> String {
    let mut stream = match TcpStream::connect(authority) {
        Ok(stream) => stream,
        Err(error) => return format!("connect: {error}"),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if let Err(error) = write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    ) {
        return format!("send: {error}");
    }
    let mut response = String::new();
    if let Err(error) = stream.read_to_string(&mut response) {
        return format!("read: {error} after {response:?}");
    }
    response
        .lines()
        .next()
        .unwrap_or("an empty response")
        .to_owned()
}

/// Waits until `check` holds, or fails with `what`.
fn wait_until(what: impl Fn() -> String, check: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {}", what());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn restarting_the_server_restarts_no_dyno() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &LEAVE_RUNNING);
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    for app in ["steady", "calm", "brisk"] {
        user.run(&["apps:create", app]).ok();
    }
    fixture_apps::push_fixture_with(
        &server,
        &key,
        "steady",
        "procfile-only",
        &[("Procfile", PROCFILE)],
    );
    fixture_apps::push_fixture(&server, &key, "calm", "procfile-only");
    fixture_apps::push_fixture(&server, &key, "brisk", "procfile-only");
    user.run(&["ps:scale", "web=2", "worker=1", "-a", "steady"])
        .ok();
    wait_for(&server, &key, "steady", &["web.1", "web.2", "worker.1"], 2);
    wait_for(&server, &key, "calm", &["web.1"], 2);
    wait_for(&server, &key, "brisk", &["web.1"], 2);
    let before = processes(data.path());
    assert_eq!(before.len(), 5, "{before:?}");

    // The router moves to the new server's port on each start; the load follows it.
    let authority = Arc::new(Mutex::new(server.router_authority()));
    let load = Load::start(
        authority.clone(),
        // Two apps under load; the third's log (its worker's count) stays short enough to
        // read whole.
        vec!["calm.localhost".to_owned(), "brisk.localhost".to_owned()],
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut report = Vec::new();

    // 1. A clean stop (SIGTERM), then a start.
    let stopping = Instant::now();
    assert!(server.terminate_as_is(DEADLINE).success());
    let stop_took = stopping.elapsed();
    assert_eq!(
        processes(data.path()),
        before,
        "the stop left every dyno running"
    );
    let server = Server::start_with(data.path(), &LEAVE_RUNNING);
    *authority.lock().unwrap() = server.router_authority();
    wait_for(&server, &key, "steady", &["web.1", "web.2", "worker.1"], 2);
    wait_for(&server, &key, "calm", &["web.1"], 2);
    wait_for(&server, &key, "brisk", &["web.1"], 2);
    assert_eq!(
        processes(data.path()),
        before,
        "the same containers and processes"
    );
    std::thread::sleep(Duration::from_millis(500));
    report.push(("SIGTERM, start", stop_took, load.take()));
    let log = app_log(&server, &key, "steady");
    assert_eq!(
        log.matches("Starting process with command").count(),
        3,
        "no dyno started again: {log}"
    );
    let counted = ticks(&log);
    assert!(counted.len() > 10, "{log}");
    assert_eq!(
        missing(&counted),
        Vec::<u64>::new(),
        "the worker's output is whole"
    );

    // 2. SIGKILL, then a start.
    server.kill();
    assert_eq!(
        processes(data.path()),
        before,
        "a killed server's dynos run on"
    );
    std::thread::sleep(Duration::from_millis(500));
    let server = Server::start_with(data.path(), &LEAVE_RUNNING);
    *authority.lock().unwrap() = server.router_authority();
    wait_for(&server, &key, "steady", &["web.1", "web.2", "worker.1"], 2);
    assert_eq!(
        processes(data.path()),
        before,
        "the same containers and processes"
    );
    std::thread::sleep(Duration::from_millis(500));
    report.push(("SIGKILL, start", Duration::ZERO, load.take()));
    let log = app_log(&server, &key, "steady");
    assert_eq!(
        log.matches("Starting process with command").count(),
        3,
        "{log}"
    );
    let counted = ticks(&log);
    // What a killed server had read but not yet written to its log store is gone with it:
    // at most its flush interval (250 ms) of lines, about three of the worker's.
    let lost = missing(&counted);
    eprintln!("worker lines lost to the SIGKILL: {lost:?}");
    assert!(lost.len() <= 5, "lost {lost:?}");

    // 3. The worker's process ends while no server runs: found and restarted.
    server.kill();
    let worker = before
        .keys()
        .find(|id| id.contains("-worker.1-"))
        .unwrap()
        .clone();
    let killed = ["crun", "runc"].iter().any(|runtime| {
        Command::new(runtime)
            .arg("--root")
            .arg(data.path().join("runtime"))
            .args(["kill", &worker, "KILL"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    });
    assert!(killed, "killed the worker's container");
    let server = Server::start_with(data.path(), &LEAVE_RUNNING);
    *authority.lock().unwrap() = server.router_authority();
    wait_until(
        || format!("{:?}", processes(data.path())),
        || {
            let now = processes(data.path());
            now.len() == 5 && !now.contains_key(&worker)
        },
    );
    wait_for(&server, &key, "steady", &["web.1", "web.2", "worker.1"], 2);
    let after = processes(data.path());
    for (id, process) in &before {
        if *id != worker {
            assert_eq!(after.get(id), Some(process), "{id} ran on");
        }
    }
    let log = app_log(&server, &key, "steady");
    assert!(
        log.contains("heroku[worker.1]: Process exited with status 137"),
        "{log}"
    );
    assert_eq!(
        log.matches("heroku[worker.1]: Starting process with command")
            .count(),
        2,
        "{log}"
    );
    let results = load.finish();
    report.push(("SIGKILL, worker gone", Duration::ZERO, results));
    for (how, stop_took, results) in &report {
        eprintln!(
            "restart ({how}): stop took {stop_took:?}; {} requests, {} failed, longest run of \
             failures {:?}",
            results.sent, results.failed, results.longest_gap
        );
    }

    // 4. A server with --stop-dynos takes them up too, and its clean stop leaves nothing.
    server.kill();
    let server = Server::start_with(data.path(), &[("WHARF_STOP_DYNOS", "true")]);
    wait_for(&server, &key, "steady", &["web.1", "web.2", "worker.1"], 2);
    let (network_name, dyno_network) = (server.network_name.clone(), server.dyno_network.clone());
    // This test's containers (other tests' run beside them).
    let ours: Vec<String> = processes(data.path())
        .into_keys()
        .chain(before.keys().cloned())
        .collect();
    assert!(server.terminate_as_is(DEADLINE).success());
    assert!(
        support::runtime_containers(data.path()).is_empty(),
        "{:?}",
        support::runtime_containers(data.path())
    );
    let links = || {
        String::from_utf8(
            Command::new("ip")
                .args(["-o", "link"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    assert!(
        !links().contains(&format!(": {network_name}:")),
        "{}",
        links()
    );
    // No container's veth (`wv` and the address in hex) of this server's subnet either.
    let subnet: std::net::Ipv4Addr = dyno_network.split('/').next().unwrap().parse().unwrap();
    let [a, b, c, _] = subnet.octets();
    let veths = format!(": wv{a:02x}{b:02x}{c:02x}");
    assert!(!links().contains(&veths), "{}", links());
    // Every hierarchy's Wharf cgroup (v2: one; v1 and hybrid: one per controller).
    let hierarchies = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|entry| entry.path().join("wharf"))
        .chain([Path::new("/sys/fs/cgroup/wharf").to_owned()]);
    let cgroups = hierarchies
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .filter(|entry| ours.contains(&entry.file_name().to_string_lossy().into_owned()))
        .map(|entry| entry.path())
        .collect::<Vec<_>>();
    assert!(cgroups.is_empty(), "{cgroups:?}");
    wait_until(
        || format!("holders left: {}", holders(data.path())),
        || holders(data.path()).is_empty(),
    );
}

/// Whether the process `pid` still runs (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// The holders (`wharf-shim`) of containers under `data`.
fn holders(data: &Path) -> String {
    let output = Command::new("pgrep")
        .args(["-f", &format!("wharf-shim --dir {}", data.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_corrupt_record_is_replaced_and_nothing_outlives_a_server_that_never_returns() {
    let data = tempfile::tempdir().unwrap();
    let settings = [
        ("WHARF_STOP_DYNOS", "false"),
        ("WHARF_DYNO_ORPHAN_AFTER", "3"),
    ];
    let server = Server::start_with(data.path(), &settings);
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "fragile"]).ok();
    fixture_apps::push_fixture(&server, &key, "fragile", "procfile-only");
    user.run(&["ps:scale", "web=2", "-a", "fragile"]).ok();
    wait_for(&server, &key, "fragile", &["web.1", "web.2"], 2);
    let before = processes(data.path());
    assert_eq!(before.len(), 2, "{before:?}");

    // A crash mid-write can leave a record half-written: that dyno is replaced, not taken
    // up; the other is taken up as it was.
    server.kill();
    let web2 = before
        .keys()
        .find(|id| id.contains("-web.2-"))
        .unwrap()
        .clone();
    std::fs::write(
        data.path().join("dynos").join(&web2).join("dyno.json"),
        b"{\"dyno_id\":\"",
    )
    .unwrap();
    let server = Server::start_with(data.path(), &settings);
    wait_for(&server, &key, "fragile", &["web.1", "web.2"], 2);
    let after = processes(data.path());
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(!after.contains_key(&web2), "web.2 was replaced: {after:?}");
    let web1 = before.keys().find(|id| id.contains("-web.1-")).unwrap();
    assert_eq!(after.get(web1), before.get(web1), "web.1 was taken up");
    let served =
        support::http_request_until(&server.router_authority(), "fragile.localhost", "/", 200);
    assert!(served.contains("Hello from procfile-only"), "{served}");

    // A server that never comes back: after WHARF_DYNO_ORPHAN_AFTER without one, each
    // holder stops its dyno and removes it.
    let (network_name, pids) = (
        server.network_name.clone(),
        after.values().map(|(pid, _)| *pid).collect::<Vec<_>>(),
    );
    server.kill();
    wait_until(
        || {
            format!(
                "containers {:?}, holders {}",
                support::runtime_containers(data.path()),
                holders(data.path())
            )
        },
        || {
            support::runtime_containers(data.path()).is_empty()
                && holders(data.path()).is_empty()
                && !pids.iter().any(|pid| alive(*pid))
        },
    );

    // A data dir that is gone: the holders stop their dynos at once, runtime state or not.
    let server = Server::start_with(data.path(), &settings);
    wait_for(&server, &key, "fragile", &["web.1", "web.2"], 2);
    let pids: Vec<u32> = processes(data.path())
        .values()
        .map(|(pid, _)| *pid)
        .collect();
    assert_eq!(pids.len(), 2);
    server.kill();
    let unmounted = Command::new("umount")
        .args(["--recursive", "--lazy"])
        .arg(data.path().join("disk/mnt"))
        .status()
        .unwrap();
    assert!(unmounted.success());
    std::fs::remove_dir_all(data.path()).unwrap();
    wait_until(
        || format!("dyno processes {pids:?}, holders {}", holders(data.path())),
        || !pids.iter().any(|pid| alive(*pid)) && holders(data.path()).is_empty(),
    );
    // What the killed server itself left: its network.
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", &network_name])
        .status();
    let _ = Command::new("ip")
        .args(["link", "del", &network_name])
        .status();
}

/// The process that holds the data dir's lock (the server running on it).
fn lock_holder(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("wharf.lock"))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| alive(*pid))
}

/// Waits until a server other than `old` holds the data dir and answers at `url`; its pid.
fn new_server(data: &Path, old: u32, url: &str, key: &str) -> u32 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(pid) = lock_holder(data).filter(|pid| *pid != old) {
            let (status, _) = http_json(url, "GET", "/apps", key, &serde_json::json!({}));
            if status == 200 {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no new server took over from {old}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops whichever server holds the data dir when the test ends, passed or not: servers that
/// took over are no children of the test. Its dynos stop once the data dir is gone.
struct StopTheLastServer<'a> {
    data: &'a Path,
    network_name: String,
}

impl Drop for StopTheLastServer<'_> {
    fn drop(&mut self) {
        if let Some(pid) = lock_holder(self.data) {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + DEADLINE;
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(self.data.join("disk/mnt"))
            .stderr(std::process::Stdio::null())
            .status();
        for args in [
            vec!["nft", "delete", "table", "inet", &self.network_name],
            vec!["ip", "link", "del", &self.network_name],
        ] {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

#[test]
fn an_upgrade_hands_the_sockets_over_and_refuses_no_request() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &LEAVE_RUNNING);
    let _last = StopTheLastServer {
        data: data.path(),
        network_name: server.network_name.clone(),
    };
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    for app in ["calm", "brisk"] {
        user.run(&["apps:create", app]).ok();
        fixture_apps::push_fixture(&server, &key, app, "procfile-only");
        wait_for(&server, &key, app, &["web.1"], 2);
    }
    let before = processes(data.path());
    assert_eq!(before.len(), 2, "{before:?}");
    let (url, router) = (server.url.clone(), server.router_authority());
    let load = Load::start(
        Arc::new(Mutex::new(router.clone())),
        vec!["calm.localhost".to_owned(), "brisk.localhost".to_owned()],
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut report = Vec::new();

    // 1. `wharf server --upgrade` with the server's settings: it takes the very sockets over,
    // then the data dir and the dynos; the old server exits once it serves.
    let upgrading = Instant::now();
    let mut upgrade = LEAVE_RUNNING.to_vec();
    upgrade.push(("WHARF_UPGRADE", "true"));
    let successor = Server::start_with(data.path(), &upgrade);
    assert_eq!(
        (successor.url.as_str(), successor.router_authority()),
        (url.as_str(), router.clone())
    );
    assert!(server.wait_for_exit(DEADLINE).success());
    let took = upgrading.elapsed();
    wait_for(&successor, &key, "calm", &["web.1"], 2);
    wait_for(&successor, &key, "brisk", &["web.1"], 2);
    assert_eq!(processes(data.path()), before, "no dyno restarted");
    std::thread::sleep(Duration::from_millis(500));
    report.push(("wharf server --upgrade", took, load.take()));

    // 2. A successor whose database does not answer is refused before it takes anything.
    let upgrade_with = |setting: (&str, &str)| {
        support::server_command(
            data.path(),
            &successor.network_name,
            &successor.dyno_network,
        )
        .envs(upgrade.iter().copied())
        .env(setting.0, setting.1)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
    };
    let serving = lock_holder(data.path()).unwrap();
    let refused = upgrade_with(("WHARF_DATABASE_URL", "postgres://wharf@127.0.0.1:1/nothing"));
    assert!(!refused.success());
    assert_eq!(
        lock_holder(data.path()),
        Some(serving),
        "the running server is untouched"
    );

    // 3. A successor that fails after it took the sockets (its dynos' holder is missing): the
    // running server starts its own binary again, which takes over; nothing is refused.
    let failed = upgrade_with(("WHARF_SHIM", "/nonexistent/wharf-shim"));
    assert!(!failed.success());
    assert!(
        successor.wait_for_exit(DEADLINE).success(),
        "it handed over to its own binary"
    );
    let again = new_server(data.path(), serving, &url, &key);
    assert_eq!(processes(data.path()), before, "no dyno restarted");
    std::thread::sleep(Duration::from_millis(500));
    report.push((
        "failed successor, then the same binary",
        Duration::ZERO,
        load.take(),
    ));

    // 4. SIGUSR2 (the systemd unit's reload): the server starts the binary installed where
    // its own is, which takes over.
    let signalled = Instant::now();
    assert!(Command::new("kill")
        .args(["-USR2", &again.to_string()])
        .status()
        .unwrap()
        .success());
    let last = new_server(data.path(), again, &url, &key);
    wait_until(|| format!("{again} still runs"), || !alive(again));
    let took = signalled.elapsed();
    assert_eq!(processes(data.path()), before, "no dyno restarted");
    std::thread::sleep(Duration::from_millis(500));
    let results = load.finish();
    report.push(("SIGUSR2", took, results));
    for (how, took, results) in &report {
        eprintln!(
            "upgrade ({how}): took {took:?}; {} requests, {} failed, longest run of failures \
             {:?}, last failure {:?}",
            results.sent, results.failed, results.longest_gap, results.last_failure
        );
    }
    for (how, _, results) in &report {
        assert_eq!(results.failed, 0, "{how}: no request failed");
        assert!(results.sent > 0, "{how}");
    }

    // The last server stops its dynos on SIGTERM when started so: hand over to one that does.
    let mut stopping = LEAVE_RUNNING.to_vec();
    stopping.extend([("WHARF_UPGRADE", "true"), ("WHARF_STOP_DYNOS", "true")]);
    let final_server = Server::start_with(data.path(), &stopping);
    wait_until(|| format!("{last} still runs"), || !alive(last));
    drop(final_server);
    assert!(support::runtime_containers(data.path()).is_empty());
}

/// The shipped systemd unit is one systemd accepts, pointing at the binaries as installed.
#[test]
fn the_systemd_unit_is_valid() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/wharf.service"),
    )
    .unwrap();
    for line in [
        "Type=notify",
        "KillMode=process",
        "ExecReload=/bin/kill -USR2 $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in {unit}");
    }
    // Verified against the binary this test was built with, installed or not.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wharf.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/wharf", support::wharf_binary()),
    )
    .unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd) verifies the unit");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}
