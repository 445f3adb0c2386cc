//! Agent hosts for the many-host tests and benchmarks: each a network namespace of the
//! test's own on a LAN of the test's own (a bridge in another namespace, with this namespace,
//! where the control plane runs, on it too; addresses of `198.18.0.0/16`), running the real
//! `wharf agent` with its own data dir, dyno network, containers and router.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wharf_outbound::test_net::{TestLan, TestNet};

use super::{http_json, Server};

/// How long a dyno move may take in these tests: a lease, a scheduler pass, an agent's next
/// heartbeat and read, and a boot, with room for a loaded machine.
pub const MOVE_DEADLINE: Duration = Duration::from_secs(90);

/// A control plane for agent hosts: the real server, with `env` besides, and its API on
/// every address of this namespace (the agents reach it over the LAN) at a fixed port, so that
/// a restart comes back where the agents look. Answers the server and `WHARF_API_LISTEN`.
pub fn control_plane(data: &std::path::Path, env: &[(&str, &str)]) -> (Server, String) {
    let api_port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api_listen = format!("0.0.0.0:{api_port}");
    let mut all = vec![("WHARF_API_LISTEN", api_listen.as_str())];
    all.extend_from_slice(env);
    (Server::start_with(data, &all), api_listen)
}

/// Creates the app `name` on `server` and pushes the Procfile-only app to it.
pub fn deploy_app(server: &Server, name: &str) -> tempfile::TempDir {
    let (status, body) = http_json(
        &server.url,
        "POST",
        "/apps",
        &server.admin_key(),
        &serde_json::json!({ "name": name }),
    );
    assert_eq!(status, 201, "{body}");
    super::deploy_procfile_app(server, &server.admin_key(), name)
}

/// Where each host's router listens, in its namespace.
pub const ROUTER_PORT: u16 = 18080;

/// One agent host: its namespace, data dir and process.
pub struct AgentHost {
    pub name: String,
    pub net: TestNet,
    pub data: tempfile::TempDir,
    child: Option<Child>,
}

impl AgentHost {
    /// Adds the host to the control plane and starts its agent in a new namespace on `lan`;
    /// returns once the agent holds a lease.
    pub fn join(server: &Server, lan: &TestLan, name: &str, index: u8) -> AgentHost {
        let api_port = server
            .url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse::<u16>().ok())
            .expect("the control plane's URL ends with its port");
        let net = lan.join().unwrap();
        let (status, created) = http_json(
            &server.url,
            "POST",
            "/hosts",
            &server.admin_key(),
            &serde_json::json!({ "name": name }),
        );
        assert_eq!(status, 201, "{created}");
        let credential = created["credential"].as_str().unwrap().to_owned();
        let data = tempfile::tempdir().unwrap();
        // `nsenter` switches the network namespace alone: `ip netns exec` would also mount a
        // /sys of the namespace's, hiding the cgroup tree the agent's containers need.
        let mut child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", net.name()))
            .arg(super::wharf_binary())
            .arg("agent")
            .env("WHARF_HOST_CREDENTIAL", &credential)
            .env(
                "WHARF_CONTROL_PLANE",
                format!("http://{}:{api_port}", net.host),
            )
            // No WHARF_HOST_ADDRESS: the agent finds its address towards the control plane.
            .env_remove("WHARF_HOST_ADDRESS")
            .env("WHARF_HOST_MEMORY_MB", "8192")
            .env("WHARF_ROUTER_LISTEN", format!("0.0.0.0:{ROUTER_PORT}"))
            .env("WHARF_DATA_DIR", data.path())
            .env("WHARF_NETWORK_NAME", format!("wh{index}"))
            .env("WHARF_DYNO_NETWORK", format!("198.19.{}.0/24", 90 + index))
            .env("WHARF_STACK_CACHE", super::TEST_STACK_CACHE)
            .env("WHARF_STOP_DYNOS", "true")
            .env("WHARF_DYNO_ORPHAN_AFTER", "300")
            .env("WHARF_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let joined = lines_rx
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_else(|_| panic!("agent {name} never held a lease"));
        assert!(joined.contains("holding a lease"), "{joined}");
        AgentHost {
            name: name.to_owned(),
            net,
            data,
            child: Some(child),
        }
    }

    /// Where this host's router is reached (from the control plane's namespace, on the LAN).
    pub fn router(&self) -> String {
        format!("{}:{ROUTER_PORT}", self.net.peer)
    }

    /// The packed slugs this host keeps (`<slug-id>.tar.zst`).
    pub fn packed_slugs(&self) -> Vec<String> {
        let mut slugs: Vec<String> = std::fs::read_dir(self.data.path().join("slugs"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.ends_with(".tar.zst"))
                    .collect()
            })
            .unwrap_or_default();
        slugs.sort();
        slugs
    }

    /// The dyno containers running on this host, by dyno name (`web.1`).
    pub fn dynos(&self) -> Vec<String> {
        let mut names: Vec<String> = super::runtime_containers(self.data.path())
            .into_iter()
            .filter(|id| super::container_pid(self.data.path(), id).is_some())
            .filter_map(|id| dyno_name(&id))
            .collect();
        names.sort();
        names
    }

    /// What each web dyno on this host answers to a GET from its host (the dyno network is
    /// the host's own: nothing else reaches a dyno), by dyno name.
    pub fn answers(&self) -> BTreeMap<String, String> {
        let mut answers = BTreeMap::new();
        for (id, address) in super::container_addresses(self.data.path(), "dyno-") {
            let pid = super::container_pid(self.data.path(), &id).unwrap();
            let listening = Command::new("nsenter")
                .args(["-t", &pid.to_string(), "-n", "ss", "-Hltn"])
                .output()
                .unwrap();
            let port = String::from_utf8_lossy(&listening.stdout)
                .lines()
                .filter_map(|line| line.split_whitespace().nth(3))
                .filter_map(|local| local.rsplit(':').next()?.parse::<u16>().ok())
                .next()
                .unwrap_or_else(|| panic!("{id} listens on no port"));
            let fetched = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", self.net.name()))
                .args(["curl", "-sS", "-m", "5"])
                .arg(format!("http://{address}:{port}/"))
                .output()
                .unwrap();
            answers.insert(
                dyno_name(&id).unwrap(),
                String::from_utf8_lossy(&fetched.stdout).into_owned(),
            );
        }
        answers
    }

    /// Cuts the host's link: its side of the pair goes down.
    pub fn cut(&self) {
        self.link("down");
    }

    pub fn mend(&self) {
        self.link("up");
    }

    fn link(&self, state: &str) {
        let done = self
            .net
            .command("ip")
            .args(["link", "set", "dev"])
            .arg(inside_link(&self.net))
            .arg(state)
            .status()
            .unwrap();
        assert!(done.success());
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_free_sigterm(child.id());
            let deadline = Instant::now() + Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.wait();
        }
    }
}

impl Drop for AgentHost {
    /// Stops the agent (SIGTERM: it stops its dynos and unmounts its disks). One that was
    /// killed left its disk pool mounted: it is unmounted here, so that the data dir goes and
    /// the holders of its dynos, finding their directories gone, stop them.
    fn drop(&mut self) {
        self.terminate();
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(self.data.path().join("disk/mnt"))
            .stderr(Stdio::null())
            .status();
        // The holders of a killed agent's dynos name its data dir: gone once they stopped
        // them (they write the runtime's state as they go, so the dir is removed after).
        let data = self.data.path().display().to_string();
        let _ = std::fs::remove_dir_all(self.data.path());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && Command::new("pgrep")
                .args(["-f", &data])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// SIGTERM through `kill(1)`: no `unsafe` in tests.
fn unsafe_free_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// The namespace's end of its pair (the only link in it but `lo`).
fn inside_link(net: &TestNet) -> String {
    let output = net
        .command("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap().to_owned())
        .find(|name| name.starts_with("wi"))
        .expect("the namespace's end of its pair")
}

/// `web.1` from a dyno container's id (`dyno-<app>-web.1-...`-style ids end with the name).
fn dyno_name(id: &str) -> Option<String> {
    ["web.", "worker."]
        .iter()
        .find_map(|prefix| id.find(prefix).map(|at| &id[at..]))
        .map(|rest| rest.split(['-', '_']).next().unwrap().to_owned())
}

/// Per host name, the dynos running there.
pub fn spread(hosts: &[&AgentHost]) -> BTreeMap<String, Vec<String>> {
    hosts
        .iter()
        .map(|host| (host.name.clone(), host.dynos()))
        .collect()
}

/// Polls until `check` holds of the spread over `hosts`; answers how long it took.
pub fn wait_for_spread(
    hosts: &[&AgentHost],
    what: &str,
    check: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = spread(hosts);
        if check(&now) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < MOVE_DEADLINE,
            "waiting for {what}; have {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How long a starting control plane waits before it places anything (a lease and a
/// heartbeat).
pub fn wharf_scheduler_grace() -> Duration {
    Duration::from_secs(5)
}

pub fn all_dynos(spread: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = spread.values().flatten().cloned().collect();
    all.sort();
    all
}

pub fn scale(server: &Server, app: &str, web: u32) {
    let (status, body) = http_json(
        &server.url,
        "PATCH",
        &format!("/apps/{app}/formation"),
        &server.admin_key(),
        &serde_json::json!({ "updates": [{ "type": "web", "quantity": web }] }),
    );
    assert_eq!(status, 200, "{body}");
}

pub fn host_state(server: &Server, name: &str) -> serde_json::Value {
    let (status, body) = http_json(
        &server.url,
        "GET",
        &format!("/hosts/{name}"),
        &server.admin_key(),
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// A client sending GETs one after another through a router until stopped, counting what was
/// answered `200` and what was not (a refused or cut connection counts as failed).
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u32, BTreeMap<String, u32>)>,
}

impl Load {
    pub fn start(router: &str, host: &str) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (router, host, stopped) = (router.to_owned(), host.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, BTreeMap::new());
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                let failure = match super::try_http_request(&router, &host, "/") {
                    Ok(response) if response.starts_with("HTTP/1.1 200 ") => {
                        ok += 1;
                        continue;
                    }
                    Ok(response) => response.lines().next().unwrap_or("").to_owned(),
                    Err(error) => error.to_string(),
                };
                *failed.entry(failure).or_insert(0) += 1;
            }
            (ok, failed)
        });
        Load { stop, thread }
    }

    /// Stops the client: how many requests were answered `200`, and how many ended each
    /// other way.
    pub fn stop(self) -> (u32, BTreeMap<String, u32>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// The control plane's API goes silent for as long as this lives: an nftables table of the
/// test's own drops every packet to and from its port in this namespace (where the control
/// plane runs), as an unreachable control plane would look to its agents.
pub struct Silence {
    table: String,
}

impl Silence {
    pub fn start(api_port: u16) -> Silence {
        let table = format!("wharf-test-silence-{}", std::process::id());
        let rules = format!(
            "table inet {table} {{\n chain input {{\n  type filter hook input priority -10; \
             policy accept;\n  tcp dport {api_port} drop\n }}\n chain output {{\n  type \
             filter hook output priority -10; policy accept;\n  tcp sport {api_port} drop\n \
             }}\n}}\n"
        );
        let mut nft = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        nft.stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft refused {rules}");
        Silence { table }
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}
