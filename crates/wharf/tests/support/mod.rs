//! End-to-end harness: the real `wharf server` on a free port in a temp data dir, and the
//! real `wharf` CLI pointed at it.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod addon_servers;
pub mod fixture_apps;
pub mod hosts;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to say it is listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const LISTENING: &str = "wharf: API listening on ";
const ROUTING: &str = "wharf: routing app traffic on ";
const LISTENING_TLS: &str = "wharf: API (TLS) listening on ";

pub fn wharf_binary() -> &'static str {
    // Tests get the binary cargo built for them; benchmarks (examples) name theirs.
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match option_env!("CARGO_BIN_EXE_wharf") {
        Some(binary) => binary,
        None => BINARY.get_or_init(|| {
            std::env::var("WHARF_BINARY").expect("set WHARF_BINARY to the wharf binary to run")
        }),
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    /// Where the API (and git) is served over TLS (`https://127.0.0.1:PORT`).
    pub api_tls_url: String,
    /// Where the router serves app traffic (`http://127.0.0.1:PORT`).
    pub router_url: String,
    /// Where the router serves HTTPS app traffic (`https://127.0.0.1:PORT`).
    pub router_tls_url: String,
    pub data_dir: PathBuf,
    pub stdout: Vec<String>,
    /// The dyno network's bridge and nftables table.
    pub network_name: String,
    /// The dyno network's subnet (a `/24` of `198.19.0.0/16`).
    pub dyno_network: String,
    /// Killed with SIGKILL: what it left is for the next server on its data dir to find.
    killed: bool,
}

/// Each data dir's dyno network: a bridge name and a `/24` of `198.19.101-250.0/24` (other
/// tests take lower ones) of its own, the same again when a test restarts a server on the
/// same data dir (so that the new server finds what the killed one left, as in production).
pub fn dyno_network(data_dir: &Path) -> (String, String) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static NETWORKS: Mutex<Option<(u32, HashMap<PathBuf, u32>)>> = Mutex::new(None);
    let mut networks = NETWORKS.lock().expect("networks lock");
    let (next, known) = networks.get_or_insert_with(|| (std::process::id() % 150, HashMap::new()));
    let k = *known.entry(data_dir.to_owned()).or_insert_with(|| {
        *next = (*next + 1) % 150;
        *next + 101
    });
    (format!("wt{k}"), format!("198.19.{k}.0/24"))
}

/// `wharf server` on `data_dir` with every listener on a free loopback port and the dyno
/// network `network_name`/`dyno_network`, as every test server runs.
pub fn server_command(data_dir: &Path, network_name: &str, dyno_network: &str) -> Command {
    let mut command = Command::new(wharf_binary());
    command
        .arg("server")
        .env("WHARF_DATA_DIR", data_dir)
        .env("WHARF_API_LISTEN", "127.0.0.1:0")
        .env("WHARF_API_TLS_LISTEN", "127.0.0.1:0")
        .env("WHARF_ROUTER_LISTEN", "127.0.0.1:0")
        .env("WHARF_ROUTER_TLS_LISTEN", "127.0.0.1:0")
        .env("WHARF_RENDEZVOUS_LISTEN", "127.0.0.1:0")
        .env("WHARF_LOG", "warn")
        .env("WHARF_NETWORK_NAME", network_name)
        .env("WHARF_DYNO_NETWORK", dyno_network)
        // Runtimes (Node.js, CPython, Go) that builds install, kept between test runs so
        // that each downloads once per machine; installs into it are atomic, so test
        // servers side by side share it as servers on one host would.
        .env("WHARF_RUNTIMES_DIR", TEST_RUNTIMES_DIR)
        // Debian packages of built stacks (debian-13), downloaded once per machine.
        .env("WHARF_STACK_CACHE", TEST_STACK_CACHE)
        // A test server's clean stop leaves no container behind (tests of restarts that
        // leave dynos running say so); what a killed one leaves stops by itself in minutes.
        .env("WHARF_STOP_DYNOS", "true")
        .env("WHARF_DYNO_ORPHAN_AFTER", "300")
        .env_remove("WHARF_DATABASE_URL")
        .env_remove("WHARF_PUBLIC_URL");
    command
}

/// The runtime cache every test server shares (outside the repository, like the Heroku CLI
/// the CLI tests install).
pub const TEST_RUNTIMES_DIR: &str = "/var/cache/wharf-tests/runtimes";

/// The .deb cache every test server's stack builds share.
pub const TEST_STACK_CACHE: &str = "/var/cache/wharf-tests/stacks";

impl Server {
    /// Starts `wharf server` on `data_dir` with the API on a free loopback port.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// Like [`Server::start`], with extra environment variables (settings).
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        // Every listener on a free port and a dyno network of its own, so that tests run
        // side by side.
        let (network_name, dyno_network) = dyno_network(data_dir);
        let mut child = server_command(data_dir, &network_name, &dyno_network)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wharf server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, wanted or not: a successor the server starts writes here too.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        let url = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix(LISTENING) {
                        let url = url.trim().to_owned();
                        seen.push(line);
                        break url;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("wharf server did not start listening; it printed {seen:?}");
                }
            }
        };
        let routing = |scheme: &str| {
            seen.iter()
                .filter_map(|line| line.strip_prefix(ROUTING))
                .map(|url| url.trim().to_owned())
                .find(|url| url.starts_with(scheme))
                .unwrap_or_else(|| panic!("the server says where it routes {scheme}: {seen:?}"))
        };
        let (router_url, router_tls_url) = (routing("http://"), routing("https://"));
        let api_tls_url = seen
            .iter()
            .find_map(|line| line.strip_prefix(LISTENING_TLS))
            .map(|url| url.trim().to_owned())
            .unwrap_or_else(|| panic!("the server says where its API serves TLS: {seen:?}"));
        Server {
            child,
            url,
            api_tls_url,
            router_url,
            router_tls_url,
            data_dir: data_dir.to_owned(),
            stdout: seen,
            network_name,
            dyno_network,
            killed: false,
        }
    }

    /// The router's `host:port`, for raw HTTP requests.
    pub fn router_authority(&self) -> String {
        self.router_url
            .strip_prefix("http://")
            .expect("an http:// router URL")
            .to_owned()
    }

    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin-api-key"))
            .expect("read admin key")
            .trim()
            .to_owned()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("kill server");
        self.child.wait().expect("reap server");
        self.killed = true;
    }

    /// Like [`Server::terminate`], without the harness removing the dyno network afterwards:
    /// for a test of what the server's own clean stop leaves.
    pub fn terminate_as_is(mut self, timeout: Duration) -> std::process::ExitStatus {
        self.killed = true;
        self.terminate(timeout)
    }

    /// Waits for the server to exit by itself (it handed over to a successor), leaving what
    /// it left to the successor.
    pub fn wait_for_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        self.killed = true;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll server") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    /// Stops the server as an operator would (SIGTERM), so that it stops its dynos and no
    /// container outlives the test; SIGKILL only if it does not stop in time.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.killed {
            return;
        }
        // A server that did not stop cleanly leaves its network and disk pool behind.
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(self.data_dir.join("disk/mnt"))
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.network_name])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.network_name])
            .stderr(Stdio::null())
            .status();
    }
}

/// What one CLI run did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.stdout
    }

    #[track_caller]
    pub fn failed(self) -> String {
        assert_ne!(self.code, 0, "command should have failed: {self:?}");
        self.stderr
    }
}

/// The CLI as one user: its own HOME (for ~/.netrc), run in an empty directory.
pub struct User {
    pub home: tempfile::TempDir,
    pub api_url: String,
    pub key: Option<String>,
}

impl User {
    pub fn new(api_url: &str, key: Option<&str>) -> User {
        User {
            home: tempfile::tempdir().expect("temp home"),
            api_url: api_url.to_owned(),
            key: key.map(str::to_owned),
        }
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        let mut command = Command::new(wharf_binary());
        command
            .args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("WHARF_API_URL", &self.api_url)
            .env_remove("WHARF_APP")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        match &self.key {
            Some(key) => command.env("WHARF_API_KEY", key),
            None => command.env_remove("WHARF_API_KEY"),
        };
        let output = command.output().expect("run wharf");
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A minimal HTTP/1.1 JSON request, for the API calls the CLI has no command for yet.
pub fn http_json(
    base_url: &str,
    method: &str,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let authority = base_url
        .strip_prefix("http://")
        .expect("an http:// URL")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).expect("connect to the API");
    let body = body.to_string();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\n\
         Accept: application/vnd.heroku+json; version=3\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, serde_json::from_str(body).expect("a JSON body"))
}

/// Runs git in `dir` as a test user; fails the test if git fails.
pub fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {output:?}");
}

/// Pushes the procfile-only fixture app (`buildpacks/test/fixtures`) to `app`; returns the
/// repository.
pub fn deploy_procfile_app(server: &Server, key: &str, app: &str) -> tempfile::TempDir {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../buildpacks/test/fixtures/procfile-only");
    let repo = tempfile::tempdir().expect("temp repository");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture.display()))
        .arg(repo.path())
        .status()
        .expect("run cp");
    assert!(copied.success());
    git(repo.path(), &["init", "--quiet", "--initial-branch=main"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "--quiet", "-m", "app"]);
    let authority = server.url.strip_prefix("http://").expect("an http URL");
    let remote = format!("http://git:{key}@{authority}/{app}.git");
    git(repo.path(), &["push", "--quiet", &remote, "main"]);
    repo
}

/// How long the end-to-end tests wait for dynos to reach a state.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The app's dynos as (name, state, release version).
pub fn dynos(server: &Server, key: &str, app: &str) -> Vec<(String, String, i64)> {
    let (status, body) = http_json(
        &server.url,
        "GET",
        &format!("/apps/{app}/dynos"),
        key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
                d["release"]["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Polls until the app runs exactly `names`, all `up`, of `version`.
pub fn wait_for(server: &Server, key: &str, app: &str, names: &[&str], version: i64) {
    let wanted: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = dynos(server, key, app);
        let up: BTreeSet<String> = now
            .iter()
            .filter(|(_, state, v)| state == "up" && *v == version)
            .map(|(name, _, _)| name.clone())
            .collect();
        if up == wanted && now.len() == names.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {wanted:?} at v{version}, have {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A GET to `authority` for `host`, the whole response as text.
pub fn http_request(authority: &str, host: &str, path: &str) -> String {
    try_http_request(authority, host, path).unwrap()
}

/// A GET, the whole response as text; an error if the connection failed.
pub fn try_http_request(authority: &str, host: &str, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(authority)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// GETs through the router until the status is `status`, the whole response as text. The
/// router reads what the API changed (maintenance mode, domains) right after the change, so
/// this waits moments, not the router's refresh interval.
pub fn http_request_until(authority: &str, host: &str, path: &str, status: u16) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let response = http_request(authority, host, path);
        if response.starts_with(&format!("HTTP/1.1 {status} ")) {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "never answered {status}: {response}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A GET of an `http://` URL, the whole response as text.
pub fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    http_request(authority, authority, &format!("/{path}"))
}

/// The dyno containers the server's runtime knows.
pub fn runtime_containers(data: &Path) -> Vec<String> {
    runtime_containers_named(data, "dyno-")
}

/// The ids of the containers the server's runtime knows that start with `prefix`.
pub fn runtime_containers_named(data: &Path, prefix: &str) -> Vec<String> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "runc --root {0}/runtime list -q 2>/dev/null; crun --root {0}/runtime list -q 2>/dev/null",
            data.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|id| id.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// The host pid of running container `id`'s init, as the runtime of `data` reports it.
pub fn container_pid(data: &Path, id: &str) -> Option<u32> {
    let state = ["crun", "runc"].iter().find_map(|runtime| {
        let output = Command::new(runtime)
            .arg("--root")
            .arg(data.join("runtime"))
            .args(["state", id])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        serde_json::from_slice::<serde_json::Value>(&output.stdout).ok()
    })?;
    match (state["status"].as_str(), state["pid"].as_u64()) {
        (Some("running"), Some(pid)) => u32::try_from(pid).ok(),
        _ => None,
    }
}

/// The address of each running container of the runtime of `data` whose id starts with
/// `prefix`, read inside its network namespace (`nsenter`): where its dyno listens.
pub fn container_addresses(data: &Path, prefix: &str) -> BTreeMap<String, std::net::Ipv4Addr> {
    let mut addresses = BTreeMap::new();
    for id in runtime_containers_named(data, prefix) {
        let Some(pid) = container_pid(data, &id) else {
            continue;
        };
        let output = Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-n",
                "ip",
                "-o",
                "-4",
                "addr",
                "show",
            ])
            .output()
            .expect("run nsenter");
        let address = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                words
                    .windows(2)
                    .find(|pair| pair[0] == "inet")
                    .and_then(|pair| pair[1].split('/').next())
                    .and_then(|address| address.parse::<std::net::Ipv4Addr>().ok())
            })
            .find(|address| !address.is_loopback());
        if let Some(address) = address {
            addresses.insert(id, address);
        }
    }
    addresses
}

/// A TLS client connection to `server_name` that trusts only the certificates in `roots_pem`.
pub fn tls_client(roots_pem: &str, server_name: &str) -> rustls::ClientConnection {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots
            .add(certificate.expect("a PEM certificate"))
            .expect("a usable root");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).expect("a name");
    rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("a TLS client")
}

/// Commits everything in `repo` (a git repository, made if missing) and pushes it to `app`
/// as `key`'s user; returns whether git accepted the push, and all it printed.
pub fn commit_and_push(server: &Server, key: &str, app: &str, repo: &Path) -> (bool, String) {
    if !repo.join(".git").exists() {
        git(repo, &["init", "--quiet", "--initial-branch=main"]);
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "--quiet", "--allow-empty", "-m", "push"]);
    let authority = server.url.strip_prefix("http://").expect("an http URL");
    let output = Command::new("git")
        .args([
            "push",
            &format!("http://git:{key}@{authority}/{app}.git"),
            "main",
        ])
        .current_dir(repo)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git push");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}
