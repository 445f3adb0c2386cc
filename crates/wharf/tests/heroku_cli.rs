//! End-to-end with Heroku's own CLI (npm package `heroku`, pinned): the real `wharf server`,
//! the environment `wharf heroku-env` prints, and a scenario of the CLI's everyday commands,
//! `git push heroku main` over the API's TLS listener included, asserting on what the CLI
//! prints and on its exit codes. Its PostgreSQL add-on server is a private one asking the
//! server's dyno network for passwords (`support::addon_servers`).
//!
//! The CLI is installed with npm once per machine into a cache outside the repository
//! (`WHARF_TEST_CACHE`, default `/var/cache/wharf-tests`), so that later runs start at once.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::addon_servers::PrivatePostgres;
use support::{git, http_request, http_request_until, Server};

/// The CLI version this test pins (the protocol Wharf follows was read off this version).
const CLI_VERSION: &str = "11.10.0";
/// The Node.js the CLI runs on, from npm's `node` package: the CLI needs Node 20 or later, and
/// Debian 12's own `nodejs` is 18.
const NODE_VERSION: &str = "20.20.2";
/// How long a push (build and release) and a dyno's start may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// The `heroku` executable of the pinned CLI, installed into the cache if it is not there;
/// the `node` it runs on is in the same directory (which [`Cli::command`] puts first on
/// `PATH`). Concurrent installs each use a directory of their own and the first rename wins.
fn heroku_cli() -> PathBuf {
    let cache = std::env::var_os("WHARF_TEST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/wharf-tests"), PathBuf::from);
    let name = format!("heroku-cli-{CLI_VERSION}-node-{NODE_VERSION}");
    let prefix = cache.join(&name);
    let executable = prefix.join("node_modules/.bin/heroku");
    if executable.exists() {
        return executable;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let staging = cache.join(format!("{name}.installing-{}", std::process::id()));
    let installed = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg("--prefix")
        .arg(&staging)
        .arg(format!("heroku@{CLI_VERSION}"))
        .arg(format!("node@{NODE_VERSION}"))
        .status()
        .expect("run npm (scripts/deps.sh installs it)");
    assert!(
        installed.success(),
        "npm install heroku@{CLI_VERSION} node@{NODE_VERSION}"
    );
    if std::fs::rename(&staging, &prefix).is_err() {
        // Another run installed it first.
        std::fs::remove_dir_all(&staging).unwrap();
    }
    assert!(
        executable.exists(),
        "{} after npm install",
        executable.display()
    );
    let node = Command::new(executable.with_file_name("node"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&node.stdout).trim(),
        format!("v{NODE_VERSION}")
    );
    executable
}

/// What a user's shell has after `eval "$(wharf heroku-env)"`, plus a home of its own.
struct Cli {
    executable: PathBuf,
    env: Vec<(String, String)>,
    home: tempfile::TempDir,
    /// `HEROKU_API_KEY`, for a user who did not log in.
    api_key: Option<String>,
}

struct Output {
    code: i32,
    /// stdout and stderr.
    text: String,
}

impl Cli {
    /// The environment `wharf heroku-env` prints for the server's data dir and the API TLS
    /// listener at `api_tls_url` (the server's own, or a tunnel's).
    fn new(server: &Server, api_tls_url: &str) -> Cli {
        let executable = heroku_cli();
        let address = api_tls_url.strip_prefix("https://").unwrap();
        let printed = Command::new(support::wharf_binary())
            .arg("heroku-env")
            .args(["--api-tls-listen", address])
            .env("WHARF_DATA_DIR", &server.data_dir)
            .output()
            .unwrap();
        assert!(printed.status.success(), "{printed:?}");
        let env: Vec<(String, String)> = String::from_utf8(printed.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .map(|line| {
                let (name, value) = line.split_once('=').unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect();
        let host = env.iter().find(|(name, _)| name == "HEROKU_HOST").unwrap();
        assert_eq!(host.1, api_tls_url);
        Cli {
            executable,
            env,
            home: tempfile::tempdir().unwrap(),
            api_key: None,
        }
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let bin = self.executable.parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut command = Command::new(&self.executable);
        command
            .args(args)
            .current_dir(dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("HOME", self.home.path())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            // The user's machine may point git and Node elsewhere; this user trusts Wharf's CA
            // only through what heroku-env printed.
            .env_remove("GIT_SSL_CAINFO")
            .env_remove("GIT_SSL_CAPATH")
            .env_remove("HEROKU_API_KEY")
            .env_remove("HEROKU_APP");
        if let Some(key) = &self.api_key {
            command.env("HEROKU_API_KEY", key);
        }
        command
    }

    /// Runs `heroku ARGS` in `dir` with `stdin`.
    fn run_with(&self, dir: &Path, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(dir, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Output {
            code: output.status.code().unwrap_or(-1),
            text,
        }
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.run_with(dir, args, "")
    }

    /// Runs `heroku ARGS`, which must succeed; returns what it printed.
    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let output = self.run(dir, args);
        assert_eq!(output.code, 0, "heroku {args:?}:\n{}", output.text);
        output.text
    }

    /// Runs `heroku ARGS` until what it prints contains `expected`.
    fn until(&self, dir: &Path, args: &[&str], expected: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = self.ok(dir, args);
            if text.contains(expected) {
                return text;
            }
            if Instant::now() >= deadline {
                let logs = self.run(dir, &["logs", "-n", "100"]).text;
                panic!("heroku {args:?} never printed {expected:?}; last:\n{text}\nlogs:\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `heroku login -i`: the e-mail address, then the API key once the CLI asks for the
    /// password (its prompt reads its input only then).
    fn login(&self, dir: &Path, email: &str, key: &str) -> Output {
        let mut child = self
            .command(dir, &["login", "-i"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let lines = read_chunks(&mut child);
        writeln!(stdin, "{email}").unwrap();
        let mut seen = String::new();
        wait_for_text(&lines, &mut seen, "Password");
        writeln!(stdin, "{key}").unwrap();
        drop(stdin);
        let status = child.wait().unwrap();
        while let Ok(chunk) = lines.recv_timeout(Duration::from_secs(5)) {
            seen.push_str(&chunk);
        }
        Output {
            code: status.code().unwrap_or(-1),
            text: seen,
        }
    }
}

/// The child's stdout and stderr as they come, in chunks.
fn read_chunks(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    let streams: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for mut stream in streams {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = stream.read(&mut buffer) {
                let chunk = String::from_utf8_lossy(&buffer[..read]).into_owned();
                if sender.send(chunk).is_err() {
                    break;
                }
            }
        });
    }
    receiver
}

fn wait_for_text(chunks: &mpsc::Receiver<String>, seen: &mut String, expected: &str) {
    let deadline = Instant::now() + DEADLINE;
    while !seen.contains(expected) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match chunks.recv_timeout(remaining) {
            Ok(chunk) => seen.push_str(&chunk),
            Err(_) => panic!("never saw {expected:?}; saw:\n{seen}"),
        }
    }
}

/// A repository with the procfile-only fixture app plus a worker process type.
fn app_repository() -> tempfile::TempDir {
    let repo = support::fixture_apps::fixture_copy("procfile-only");
    std::fs::write(
        repo.path().join("Procfile"),
        "web: python3 server.py\nworker: python3 -c 'import time; time.sleep(86400)'\n",
    )
    .unwrap();
    git(repo.path(), &["init", "--quiet", "--initial-branch=main"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "--quiet", "-m", "app"]);
    repo
}

#[test]
fn heroku_cli_drives_wharf() {
    let data = tempfile::tempdir().unwrap();
    // Declared before the server, so dropped after it.
    let (_, subnet) = support::dyno_network(data.path());
    let postgres = PrivatePostgres::start(&subnet);
    let server = Server::start_with(
        data.path(),
        &[("WHARF_ADDON_POSTGRES_ADMIN_URL", &postgres.admin_url)],
    );
    let key = server.admin_key();
    let cli = Cli::new(&server, &server.api_tls_url);
    let repo = app_repository();
    let dir = repo.path();

    // Logging in writes the key to ~/.netrc, which every later command uses.
    let login = cli.login(dir, "admin@localhost", &key);
    assert_eq!(login.code, 0, "{}", login.text);
    assert!(
        login.text.contains("Logged in as admin@localhost"),
        "{}",
        login.text
    );
    let netrc = std::fs::read_to_string(cli.home.path().join(".netrc")).unwrap();
    assert!(netrc.contains(&key), "{netrc}");
    assert!(cli.ok(dir, &["auth:whoami"]).contains("admin@localhost"));
    assert!(cli.ok(dir, &["apps"]).contains("You have no apps."));

    // Creating the app inside the repository adds the `heroku` remote on the TLS listener.
    let created = cli.ok(dir, &["apps:create", "myapp"]);
    let git_url = format!("{}/myapp.git", server.api_tls_url);
    assert!(created.contains(&git_url), "{created}");
    let apps = cli.ok(dir, &["apps"]);
    assert!(apps.contains("=== admin@localhost Apps"), "{apps}");
    assert!(apps.contains("myapp"), "{apps}");
    let info = cli.ok(dir, &["apps:info", "-a", "myapp"]);
    assert!(info.contains("=== myapp"), "{info}");
    assert!(info.contains("Owner:          admin@localhost"), "{info}");
    let remote = cli.ok(dir, &["git:remote", "-a", "myapp"]);
    assert!(
        remote.contains(&format!("set git remote heroku to {git_url}")),
        "{remote}"
    );

    // git push heroku main: git over TLS, the CLI's credential helper answering for git.
    let push = cli_git(&cli, dir, &["push", "heroku", "main"]);
    let pushed = format!(
        "{}{}",
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr)
    );
    assert!(push.status.success(), "git push heroku main:\n{pushed}");
    assert!(pushed.contains("Released v2"), "{pushed}");

    // The app answers through the router, and `logs` shows the router's line.
    cli.until(dir, &["ps"], "web.1: up");
    let router = server.router_url.strip_prefix("http://").unwrap();
    let response = http_request(router, "myapp.localhost", "/hello-cli");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    cli.until(
        dir,
        &["logs", "-n", "200"],
        "heroku[router]: at=info method=GET path=\"/hello-cli\"",
    );

    let scaled = cli.ok(dir, &["ps:scale", "web=2", "worker=1"]);
    assert!(scaled.contains("web at 2:"), "{scaled}");
    assert!(scaled.contains("worker at 1:"), "{scaled}");
    let ps = cli.until(dir, &["ps"], "worker.1: up");
    assert!(
        ps.contains("=== web (Basic): python3 server.py (2)"),
        "{ps}"
    );
    assert!(cli
        .ok(dir, &["ps:restart"])
        .contains("Restarting all dynos on myapp... done"));
    let stopped = cli.ok(dir, &["ps:stop", "web.1"]);
    assert!(
        stopped.contains("Stopping dyno web.1 on myapp... done"),
        "{stopped}"
    );

    let set = cli.ok(dir, &["config:set", "GREETING=hello", "COLOUR=blue"]);
    assert!(set.contains("done, v3"), "{set}");
    assert!(set.contains("GREETING: hello"), "{set}");
    assert_eq!(cli.ok(dir, &["config:get", "GREETING"]).trim(), "hello");
    let unset = cli.ok(dir, &["config:unset", "COLOUR"]);
    assert!(unset.contains("done, v4"), "{unset}");
    let config = cli.ok(dir, &["config"]);
    assert!(config.contains("=== myapp Config Vars"), "{config}");
    assert!(config.contains("GREETING: hello"), "{config}");
    assert!(!config.contains("COLOUR"), "{config}");

    let releases = cli.ok(dir, &["releases"]);
    assert!(releases.contains("Current: v4"), "{releases}");
    for line in ["Remove COLOUR config vars", "Deploy ", "Initial release"] {
        assert!(releases.contains(line), "{releases}");
    }
    let release = cli.ok(dir, &["releases:info", "v2"]);
    assert!(release.contains("=== Release v2"), "{release}");
    assert!(release.contains("Change:"), "{release}");
    let rollback = cli.ok(dir, &["rollback", "v1"]);
    assert!(
        rollback.contains("Rolling back myapp to v1... done, v5"),
        "{rollback}"
    );
    let rollback = cli.ok(dir, &["rollback"]);
    assert!(
        rollback.contains("Rolling back myapp to v4... done, v6"),
        "{rollback}"
    );
    assert_eq!(cli.ok(dir, &["config:get", "GREETING"]).trim(), "hello");

    // `logs --tail` keeps streaming: a request made once it is connected (it printed the one
    // recent line asked for) shows up.
    let mut tail = cli
        .command(dir, &["logs", "--tail", "-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let chunks = read_chunks(&mut tail);
    let mut tailed = String::new();
    wait_for_text(&chunks, &mut tailed, "]: ");
    let response = http_request(router, "myapp.localhost", "/while-tailing");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    wait_for_text(&chunks, &mut tailed, "path=\"/while-tailing\"");
    tail.kill().unwrap();
    tail.wait().unwrap();

    // One-off dynos: attached (over the rendezvous, TLS) and detached.
    let bash = cli.run_with(dir, &["run", "bash"], "echo hello-$((6*7))\nexit\n");
    assert_eq!(bash.code, 0, "{}", bash.text);
    assert!(bash.text.contains("hello-42"), "{}", bash.text);
    let exit = cli.run(dir, &["run", "--exit-code", "exit 3"]);
    assert_eq!(exit.code, 3, "{}", exit.text);
    assert!(
        exit.text.contains("Process exited with code 3"),
        "{}",
        exit.text
    );
    let detached = cli.ok(dir, &["run:detached", "echo detached-$((6*7))"]);
    assert!(
        detached.contains("Run heroku logs --app myapp --dyno run."),
        "{detached}"
    );
    cli.until(dir, &["logs", "-n", "300"], "detached-42");

    // Add-ons.
    assert!(cli
        .ok(dir, &["addons"])
        .contains("No add-ons for app myapp."));
    let addon = cli.ok(dir, &["addons:create", "heroku-postgresql"]);
    let name = addon
        .split("Created ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the add-on's name: {addon}"))
        .to_owned();
    assert!(addon.contains("as DATABASE_URL"), "{addon}");
    let addons = cli.ok(dir, &["addons"]);
    assert!(addons.contains(&name), "{addons}");
    // heroku-postgresql is Wharf's own PostgreSQL service under its Heroku name.
    assert!(addons.contains("wharf-postgresql"), "{addons}");
    assert!(addons.contains("as DATABASE"), "{addons}");
    assert!(cli.ok(dir, &["config"]).contains("DATABASE_URL:"));
    // Dynos reach the add-on server at their network's gateway (the subnet's first address).
    let database_url = cli.ok(dir, &["config:get", "DATABASE_URL"]);
    let gateway = format!("{}1", subnet.strip_suffix("0/24").unwrap());
    assert!(
        database_url
            .trim()
            .contains(&format!("@{gateway}:{}/", postgres.port)),
        "{database_url}"
    );
    cli.ok(dir, &["addons:destroy", &name, "--confirm", "myapp"]);
    assert!(cli
        .ok(dir, &["addons"])
        .contains("No add-ons for app myapp."));

    // Domains, drains, maintenance.
    let added = cli.ok(dir, &["domains:add", "www.example.com"]);
    assert!(added.contains("DNS Target myapp.localhost"), "{added}");
    let domains = cli.ok(dir, &["domains"]);
    assert!(domains.contains("=== myapp Heroku Domain"), "{domains}");
    assert!(domains.contains("www.example.com"), "{domains}");
    let drain = "syslog://logs.example.com:5140";
    assert!(cli
        .ok(dir, &["drains:add", drain])
        .contains("Successfully added drain"));
    assert!(cli.ok(dir, &["drains"]).contains(drain));
    cli.ok(dir, &["maintenance:on"]);
    assert_eq!(cli.ok(dir, &["maintenance"]).trim(), "on");
    http_request_until(router, "myapp.localhost", "/", 503);
    cli.ok(dir, &["maintenance:off"]);
    assert_eq!(cli.ok(dir, &["maintenance"]).trim(), "off");

    // The router's session affinity, with Heroku's `features` commands.
    let affinity_line = |text: &str| {
        text.lines()
            .find(|line| line.contains("http-session-affinity"))
            .unwrap_or_else(|| panic!("no http-session-affinity in:\n{text}"))
            .to_owned()
    };
    assert!(affinity_line(&cli.ok(dir, &["features"])).contains("[ ]"));
    cli.ok(dir, &["features:enable", "http-session-affinity"]);
    assert!(affinity_line(&cli.ok(dir, &["features"])).contains("[+]"));
    cli.ok(dir, &["features:disable", "http-session-affinity"]);
    assert!(affinity_line(&cli.ok(dir, &["features"])).contains("[ ]"));

    // Stacks: Heroku's `stack` lists Wharf's, `stack:set` chooses the next build's.
    let stacks = cli.ok(dir, &["stack"]);
    assert!(stacks.contains("* debian-12"), "{stacks}");
    assert!(stacks.contains("debian-13"), "{stacks}");
    let set = cli.ok(dir, &["stack:set", "debian-13"]);
    assert!(set.contains("debian-13"), "{set}");
    let info = cli.ok(dir, &["apps:info"]);
    assert!(info.contains("debian-13"), "{info}");
    cli.ok(dir, &["stack:set", "debian-12"]);
    http_request_until(router, "myapp.localhost", "/", 200);

    // Through `wharf tunnel`, as for a server on another machine: the CLI talks TLS to the
    // server through a port on 127.0.0.1, with the API key in HEROKU_API_KEY.
    let api_tls_authority = server.api_tls_url.strip_prefix("https://").unwrap();
    let mut tunnel = Command::new(support::wharf_binary())
        .args(["tunnel", api_tls_authority, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let chunks = read_chunks(&mut tunnel);
    let mut said = String::new();
    wait_for_text(&chunks, &mut said, "forwarding to");
    let tunnel_address = said
        .split("tunnel listening on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .to_owned();
    let remote = Cli {
        api_key: Some(key.clone()),
        ..Cli::new(&server, &format!("https://{tunnel_address}"))
    };
    assert!(remote.ok(dir, &["auth:whoami"]).contains("admin@localhost"));
    assert!(remote
        .ok(dir, &["apps:info", "-a", "myapp"])
        .contains("=== myapp"));
    // git through the tunnel, with the credential helper the CLI set up for that host.
    let tunnel_git_url = format!("https://{tunnel_address}/myapp.git");
    let refs = cli_git(&remote, dir, &["ls-remote", &tunnel_git_url]);
    assert!(refs.status.success(), "{refs:?}");
    assert!(
        String::from_utf8_lossy(&refs.stdout).contains("refs/heads/main"),
        "{refs:?}"
    );
    tunnel.kill().unwrap();
    tunnel.wait().unwrap();

    // Destroying the app removes the remote as well.
    let destroyed = cli.ok(dir, &["apps:destroy", "-a", "myapp", "--confirm", "myapp"]);
    assert!(destroyed.contains("Destroying myapp"), "{destroyed}");
    assert!(cli.ok(dir, &["apps"]).contains("You have no apps."));
    let remotes = Command::new("git")
        .arg("remote")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(remotes.status.success());
    assert_eq!(String::from_utf8_lossy(&remotes.stdout), "");
}

/// git as the CLI's user runs it: their home (with the CLI's credential helper) and
/// environment.
fn cli_git(cli: &Cli, dir: &Path, args: &[&str]) -> std::process::Output {
    let environment = cli.command(dir, &[]);
    let mut git = Command::new("git");
    git.args(args).current_dir(dir);
    for (name, value) in environment.get_envs() {
        match value {
            Some(value) => git.env(name, value),
            None => git.env_remove(name),
        };
    }
    git.output().unwrap()
}
