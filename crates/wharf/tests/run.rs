//! End to end: one-off dynos of a pushed app, attached through the rendezvous (`wharf run`)
//! and detached (`wharf run:detached`), outside the formation; and `wharf run` failing when its
//! dyno cannot start.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{deploy_procfile_app, http_json, wharf_binary, Outcome, Server, User};

const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// Polls until `done` holds for the app's dynos.
fn wait_for_dynos(
    server: &Server,
    key: &str,
    app: &str,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now: Vec<(String, String)> = support::dynos(server, key, app)
            .into_iter()
            .map(|(name, state, _)| (name, state))
            .collect();
        if done(&now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {what}, have {now:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// The app's log as `wharf logs` would fetch it (not following).
fn log(server: &Server, key: &str, app: &str) -> String {
    let (status, session) = http_json(
        &server.url,
        "POST",
        &format!("/apps/{app}/log-sessions"),
        key,
        &serde_json::json!({"lines": 1500}),
    );
    assert_eq!(status, 201, "{session}");
    support::http_get(session["logplex_url"].as_str().unwrap())
}

/// Runs the CLI as `user`, trusting the server's CA, with `stdin` as its input.
fn wharf(user: &User, ca: &Path, args: &[&str], stdin: Option<&str>) -> Outcome {
    let mut child = Command::new(wharf_binary())
        .args(args)
        .current_dir(user.home.path())
        .env("HOME", user.home.path())
        .env("WHARF_API_URL", &user.api_url)
        .env("WHARF_API_KEY", user.key.as_deref().unwrap())
        .env("WHARF_CA_FILE", ca)
        .env_remove("WHARF_APP")
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            pipe.read_to_end(&mut text).unwrap();
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "wharf {args:?} did not finish: {}{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(POLL);
    };
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// A bare rendezvous client: sends the secret and returns everything the server sent.
fn rendezvous(attach_url: &str, ca: &Path) -> Vec<u8> {
    let rest = attach_url.strip_prefix("rendezvous://").unwrap();
    let (authority, secret) = rest.split_once('/').unwrap();
    let (host, _) = authority.rsplit_once(':').unwrap();
    let roots = std::fs::read_to_string(ca).unwrap();
    let connection = support::tls_client(&roots, host);
    let socket = std::net::TcpStream::connect(authority).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    tls.write_all(format!("{secret}\r\n").as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

fn formation(user: &User) -> String {
    user.run(&["ps:scale", "-a", "runner"]).ok()
}

#[test]
fn one_off_dynos_attach_detach_and_stay_out_of_the_formation() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &[("WHARF_RENDEZVOUS_LISTEN", "127.0.0.1:0")]);
    let ca: PathBuf = data.path().join("tls/ca.pem");
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "runner"]).ok();
    let _repo = deploy_procfile_app(&server, &key, "runner");
    wait_for_dynos(&server, &key, "runner", "web.1 up", |d| {
        d == [("web.1".to_owned(), "up".to_owned())]
    });
    let formation_before = formation(&user);

    // Attached, no terminal on our side: the dyno's output and exit status come back.
    let ran = wharf(
        &user,
        &ca,
        &["run", "-a", "runner", "echo hi; exit 3"],
        None,
    );
    assert_eq!(ran.code, 3, "{ran:?}");
    assert!(
        ran.stdout
            .starts_with("Running `echo hi; exit 3` on ⬢ runner... up, run."),
        "{ran:?}"
    );
    assert!(ran.stdout.lines().any(|line| line == "hi"), "{ran:?}");
    assert!(!ran.stdout.contains('\u{FFFF}'), "{ran:?}");

    // Input through the PTY, ended by ^D.
    let echoed = wharf(&user, &ca, &["run", "-a", "runner", "cat"], Some("hello\n"));
    assert_eq!(echoed.code, 0, "{echoed:?}");
    assert!(echoed.stdout.contains("hello"), "{echoed:?}");

    // Without a terminal the server itself ends the input at ^D; nothing echoes.
    let plain = wharf(
        &user,
        &ca,
        &["run", "--no-tty", "-a", "runner", "--", "wc", "-l"],
        Some("a\nb\n"),
    );
    assert_eq!(plain.code, 0, "{plain:?}");
    assert_eq!(plain.stdout.lines().last(), Some("2"), "{plain:?}");

    // Detached: the output goes to the log.
    let detached = wharf(
        &user,
        &ca,
        &["run:detached", "-a", "runner", "echo detached-output"],
        None,
    );
    assert_eq!(detached.code, 0, "{detached:?}");
    let name = detached
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("run."))
        .unwrap()
        .trim_end_matches(',')
        .to_owned();
    assert!(
        detached.stdout.contains(&format!(
            "done, {name} (Basic)\nRun `wharf logs -a runner -d {name}` to view the output."
        )),
        "{detached:?}"
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = log(&server, &key, "runner");
        let done = text.contains(&format!("app[{name}]: detached-output"))
            && text.contains(&format!("heroku[{name}]: Process exited with status 0"))
            && text.contains(&format!(
                "heroku[{name}]: State changed from up to complete"
            ));
        if done {
            assert!(text.contains(&format!(
                "heroku[{name}]: Starting process with command `echo detached-output`"
            )));
            break;
        }
        assert!(Instant::now() < deadline, "no output of {name}: {text}");
        std::thread::sleep(POLL);
    }

    // A secret is good once.
    let (status, dyno) = http_json(
        &server.url,
        "POST",
        "/apps/runner/dynos",
        &key,
        &serde_json::json!({"command": "echo once", "attach": true, "force_no_tty": true,
                            "env": {"TERM": "dumb", "COLUMNS": 80, "LINES": 24}}),
    );
    assert_eq!(status, 201, "{dyno}");
    assert_eq!(dyno["type"], "run");
    let url = dyno["attach_url"].as_str().unwrap();
    let first = String::from_utf8_lossy(&rendezvous(url, &ca)).into_owned();
    assert!(first.starts_with("rendezvous\r\n"), "{first:?}");
    assert!(first.contains("once"), "{first:?}");
    assert!(
        first.ends_with("\u{FFFF} heroku-command-exit-status: 0\n"),
        "{first:?}"
    );
    let second = rendezvous(url, &ca);
    assert!(second.is_empty(), "{:?}", String::from_utf8_lossy(&second));

    // A long one-off is listed while it runs, stopped by ps:stop, and never in the formation.
    let long = wharf(
        &user,
        &ca,
        &["run:detached", "-a", "runner", "sleep 600"],
        None,
    );
    let long_name = long
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("run."))
        .unwrap()
        .trim_end_matches(',')
        .to_owned();
    wait_for_dynos(&server, &key, "runner", "the one-off up", |d| {
        d.iter().any(|(n, s)| *n == long_name && s == "up")
    });
    assert_eq!(formation(&user), formation_before);
    user.run(&["ps:stop", &long_name, "-a", "runner"]).ok();
    wait_for_dynos(&server, &key, "runner", "only web.1 left", |d| {
        d == [("web.1".to_owned(), "up".to_owned())]
    });
    assert_eq!(formation(&user), formation_before);
}

/// The first `run.N` in `text`.
fn one_off_name(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .find(|word| {
            word.strip_prefix("run.")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

#[test]
fn a_one_off_that_cannot_start_fails_the_run() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let ca: PathBuf = data.path().join("tls/ca.pem");
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));

    // No code to run: the API refuses the dyno, and the run fails with its message.
    user.run(&["apps:create", "nocode"]).ok();
    let refused = wharf(&user, &ca, &["run", "-a", "nocode", "echo never"], None);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("nocode has no code to run yet: deploy it first."),
        "{refused:?}"
    );

    // A slug that is gone from the server's disk (a platform fault: the data dir lost it): the
    // attached dyno is created, then fails to start, so there is no exit status.
    user.run(&["apps:create", "unstartable"]).ok();
    let _repo = deploy_procfile_app(&server, &key, "unstartable");
    user.run(&["ps:scale", "web=0", "-a", "unstartable"]).ok();
    let deadline = Instant::now() + DEADLINE;
    while !support::dynos(&server, &key, "unstartable").is_empty() {
        assert!(Instant::now() < deadline, "web dynos did not stop");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let slugs = data.path().join("slugs");
    for entry in std::fs::read_dir(&slugs).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }

    for flags in [&[][..], &["--exit-code"][..]] {
        let mut args = vec!["run", "-a", "unstartable"];
        args.extend_from_slice(flags);
        args.push("echo never-ran");
        let ran = wharf(&user, &ca, &args, None);
        assert_eq!(ran.code, 1, "{flags:?}: {ran:?}");
        let name = one_off_name(&ran.stdout).unwrap_or_else(|| panic!("no dyno: {ran:?}"));
        assert!(
            ran.stdout.contains(&format!(
                "up, {name}\nError R99 (Platform error) -> Failed to launch the dyno\n"
            )),
            "the server says why: {ran:?}"
        );
        assert!(!ran.stdout.contains("never-ran\n"), "{ran:?}");
        assert_eq!(
            ran.stderr,
            format!(
                " ›   Error: No exit code returned: {name} could not start, or was stopped \
                 before it exited (see why with `wharf logs -a unstartable -d {name}`)\n"
            ),
            "{ran:?}"
        );
        let logged = log(&server, &key, "unstartable");
        assert!(
            logged.contains(&format!(
                "heroku[{name}]: Error R99 (Platform error) -> Failed to launch the dyno"
            )),
            "{logged}"
        );
    }
}
