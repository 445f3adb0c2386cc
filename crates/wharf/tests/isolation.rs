//! End to end: what dynos and build steps reach on the dyno network (issue 15), with the real
//! server, the real CLI and real containers. A one-off dyno (`wharf run`) and a third-party
//! buildpack's `bin/compile` each run one probe against every destination isolation refuses
//! (the host's services at the gateway and at its other addresses, the Wharf API and router,
//! other dynos of other apps and of the same app, the cloud metadata address, an internal
//! network the operator did not allow) and every one it allows (the internet through NAT, DNS
//! through the host's loopback resolver, the app's own add-ons). A server killed with SIGKILL
//! and started again leaves no stale table, link or address, and a clean stop leaves nothing.
//!
//! Every destination is on this host or in a network namespace the test made: "the
//! internet" and "the operator's LAN" are test namespaces, and the metadata address is routed
//! into one, so nothing leaves the machine even if a rule were wrong.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use support::addon_servers::{PrivatePostgres, PrivateRedis};
use support::{commit_and_push, http_json, Outcome, Server, User, DEADLINE};
use wharf_outbound::test_net::{MetadataNet, TestNet};

/// How long the test's own checks wait for a connection (the probe uses the same).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the test polls for a state.
const POLL: Duration = Duration::from_millis(50);
/// The name the loopback resolver stand-in answers, and its address (a documentation
/// address: nothing ever connects to it).
const DNS_NAME: &str = "api.isolation-test.example";
const DNS_ANSWER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

/// The probe, run in a dyno and in a build step: one line per destination named on its
/// command line, `PROBE <name> <outcome> <detail>`.
const PROBE: &str = r#"# Tries each destination named on the command line; prints one line each:
# PROBE <name> <outcome> <detail>. name=tcp:HOST:PORT connects and reads a greeting;
# name=dns:NAME resolves NAME; name=pg:VAR logs in to the PostgreSQL at $VAR; name=redis:VAR
# authenticates to the Redis at $VAR and sends PING.

import errno
import os
import socket
import subprocess
import sys
import urllib.parse

TIMEOUT = 2.0


def connect(host, port):
    """A connected socket, or (outcome, detail) saying why there is none."""
    try:
        return socket.create_connection((host, int(port)), timeout=TIMEOUT)
    except TimeoutError:
        return ("timeout", "-")
    except OSError as error:
        return ("unreachable", errno.errorcode.get(error.errno, str(error.errno)))


def tcp(target):
    host, _, port = target.rpartition(":")
    sock = connect(host, port)
    if isinstance(sock, tuple):
        return sock
    with sock:
        try:
            words = sock.recv(200).decode(errors="replace").split()
        except OSError:
            words = []
    return ("reached", words[0] if words else "-")


def dns(name):
    try:
        return ("resolved", socket.gethostbyname(name))
    except OSError as error:
        return ("unresolved", str(error).replace(" ", "_"))


def postgres(variable):
    url = os.environ.get(variable)
    if not url:
        return ("missing", variable)
    parts = urllib.parse.urlsplit(url)
    sock = connect(parts.hostname, parts.port or 5432)
    if isinstance(sock, tuple):
        return sock
    sock.close()
    ready = subprocess.run(["pg_isready", "-d", url, "-t", "2"], capture_output=True)
    if ready.returncode != 0:
        return ("not-ready", str(ready.returncode))
    login = subprocess.run(
        ["psql", "-X", "-A", "-t", "-d", url, "-c", "SELECT 'as-' || current_user"],
        capture_output=True, text=True, timeout=20,
        env=dict(os.environ, PGCONNECT_TIMEOUT="2"))
    if login.returncode != 0:
        return ("no-login", "_".join(login.stderr.split())[:200] or "-")
    return ("login", login.stdout.strip())


def resp(*words):
    encoded = [word.encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded)


def redis(variable):
    url = os.environ.get(variable)
    if not url:
        return ("missing", variable)
    parts = urllib.parse.urlsplit(url)
    sock = connect(parts.hostname, parts.port or 6379)
    if isinstance(sock, tuple):
        return sock
    user = urllib.parse.unquote(parts.username or "default")
    password = urllib.parse.unquote(parts.password or "")
    reply = b""
    with sock:
        try:
            sock.sendall(resp("AUTH", user, password) + resp("PING"))
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(200)
                if not chunk:
                    break
                reply += chunk
        except OSError as error:
            return ("failed", errno.errorcode.get(error.errno, str(error.errno)))
    lines = reply.decode(errors="replace").split("\r\n")
    if lines[:2] == ["+OK", "+PONG"]:
        return ("pong", user)
    return ("no-pong", "_".join("_".join(lines[:2]).split()) or "-")


KINDS = {"tcp": tcp, "dns": dns, "pg": postgres, "redis": redis}

for argument in sys.argv[1:]:
    name, _, spec = argument.partition("=")
    kind, _, target = spec.partition(":")
    outcome, detail = KINDS[kind](target)
    print("PROBE", name, outcome, detail, flush=True)
"#;

/// What a destination must do for the probe.
#[derive(Debug, Clone)]
enum Expect {
    /// Refused: anything but a connection.
    Unreachable,
    /// Connected, and the listener greeted with this word.
    Greeting(String),
    /// The name resolved to this address.
    Resolved(Ipv4Addr),
    /// `pg_isready` and a `psql` login with the URL's credentials.
    Login,
    /// `AUTH` with the URL's credentials, then `PING` answered.
    Pong,
}

#[derive(Debug, Clone)]
struct Target {
    name: String,
    /// `kind:target` as the probe takes it.
    spec: String,
    expect: Expect,
}

impl Target {
    fn new(name: &str, spec: String, expect: Expect) -> Target {
        Target {
            name: name.to_owned(),
            spec,
            expect,
        }
    }

    fn argument(&self) -> String {
        format!("{}={}", self.name, self.spec)
    }
}

/// The probe's lines in `text` (anywhere in a line, so that git's `remote: ` prefix does not
/// matter), by destination: (outcome, detail).
fn probe_results(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|line| line.split_once("PROBE ").map(|(_, rest)| rest))
        .filter_map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words[..] {
                [name, outcome, detail] => {
                    Some((name.to_owned(), (outcome.to_owned(), detail.to_owned())))
                }
                _ => None,
            }
        })
        .collect()
}

/// Every target did what it must; otherwise fails with each target's outcome.
#[track_caller]
fn check(targets: &[Target], output: &str) {
    let results = probe_results(output);
    let mut failures = Vec::new();
    for target in targets {
        let Some((outcome, detail)) = results.get(&target.name) else {
            failures.push(format!("{}: no probe line", target.name));
            continue;
        };
        let ok = match &target.expect {
            Expect::Unreachable => outcome != "reached",
            Expect::Greeting(word) => outcome == "reached" && detail == word,
            Expect::Resolved(address) => outcome == "resolved" && *detail == address.to_string(),
            Expect::Login => outcome == "login" && detail.starts_with("as-"),
            Expect::Pong => outcome == "pong",
        };
        if !ok {
            failures.push(format!(
                "{} ({}): {outcome} {detail}, expected {:?}",
                target.name, target.spec, target.expect
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nall outcomes: {results:#?}\noutput:\n{output}",
        failures.join("\n")
    );
    // What each refusal looked like (a reset, an ICMP error, silence), for the record.
    for (name, (outcome, detail)) in &results {
        println!("{name}: {outcome} {detail}");
    }
}

/// A listener that greets every connection with `hello-from-<the peer's address>`.
fn greeter(listener: TcpListener) -> SocketAddr {
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let peer = stream
                .peer_addr()
                .map(|peer| peer.ip().to_string())
                .unwrap_or_default();
            let _ = stream.write_all(format!("hello-from-{peer}\n").as_bytes());
        }
    });
    address
}

/// The destination accepts connections from this host: refusing it from a dyno then proves
/// the firewall, not an empty port.
#[track_caller]
fn assert_live(address: SocketAddr, what: &str) {
    assert!(
        TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).is_ok(),
        "{what} ({address}) does not accept connections from the host"
    );
}

/// A DNS server on a loopback address, standing in for the host's resolver (a
/// systemd-resolved at 127.0.0.53): `DNS_NAME` has the A record `DNS_ANSWER`, other names
/// do not exist.
struct Resolver {
    address: SocketAddr,
    /// Queries for `DNS_NAME` it answered.
    answered: Arc<AtomicUsize>,
}

impl Resolver {
    fn start() -> Resolver {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = socket.local_addr().unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while let Ok((length, from)) = socket.recv_from(&mut buffer) {
                if let Some((answer, known)) = dns_answer(&buffer[..length]) {
                    if known {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        Resolver { address, answered }
    }
}

/// The answer to one DNS query (RFC 1035), and whether it asked for `DNS_NAME`: its A
/// record, no record of other types, NXDOMAIN for other names.
fn dns_answer(query: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_ascii_lowercase());
        at += length;
    }
    let kind = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let mut answer = query.get(..question_end)?.to_vec();
    let known = labels.join(".") == DNS_NAME;
    let with_record = known && kind == 1;
    answer[2] = 0x84 | (query[2] & 0x01); // a response, authoritative, RD as asked
    answer[3] = if known { 0x80 } else { 0x83 }; // RA; NOERROR or NXDOMAIN
    answer[4..12].copy_from_slice(&[0, 1, 0, u8::from(with_record), 0, 0, 0, 0]);
    if with_record {
        answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        answer.extend_from_slice(&DNS_ANSWER.octets());
    }
    Some((answer, known))
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().unwrap()
}

/// The metadata stand-in (`wharf_outbound::test_net::MetadataNet`) with a greeter on port 80.
/// One at a time per machine (the route is the host's), so the tests of this binary share it
/// ([`metadata`]).
struct Metadata {
    _net: MetadataNet,
    service: SocketAddr,
}

impl Metadata {
    fn create() -> Metadata {
        let net = MetadataNet::create().unwrap();
        let service = greeter(net.listen(80).unwrap());
        Metadata { _net: net, service }
    }
}

/// The metadata stand-in, made by the first test that needs it and kept while any holds it.
fn metadata() -> Arc<Metadata> {
    static SHARED: Mutex<Weak<Metadata>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap();
    if let Some(metadata) = shared.upgrade() {
        return metadata;
    }
    let metadata = Arc::new(Metadata::create());
    *shared = Arc::downgrade(&metadata);
    metadata
}

/// The first address of `subnet` (`198.19.K.0/24` gives `198.19.K.1`).
fn gateway(subnet: &str) -> Ipv4Addr {
    let (network, _) = subnet.split_once('/').unwrap();
    let network: Ipv4Addr = network.parse().unwrap();
    Ipv4Addr::from(u32::from(network) + 1)
}

/// A port free on `address` now (bound, then released), for a listener the test must know
/// in advance.
/// `N` distinct free ports on `address`: every listener is held until all are bound, so the
/// kernel cannot hand the same port out twice.
fn free_ports<const N: usize>(address: Ipv4Addr) -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((address, 0)).unwrap())
        .collect();
    std::array::from_fn(|index| listeners[index].local_addr().unwrap().port())
}

/// The port of an `http://host:port` URL.
fn url_port(url: &str) -> u16 {
    url.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// A server whose dynos have an internet (a test namespace they are allowed to reach), an
/// operator's LAN (a test namespace they are not), the metadata address, a loopback resolver,
/// private add-on servers, and a service of the host's listening on every address. The API
/// and the router listen on the LAN stand-in's host address (an address of this host other
/// than loopback, as on a server reachable from its LAN), so that a dyno refused them there
/// is refused by the firewall, not by an empty port. Fields drop in order: the server stops
/// its dynos before the rest goes.
struct Lab {
    server: Server,
    /// The admin's key, and the CLI as the admin.
    key: String,
    user: User,
    rendezvous_port: u16,
    gateway: Ipv4Addr,
    internet: TestNet,
    lan: TestNet,
    metadata: Arc<Metadata>,
    resolver: Resolver,
    /// The host's stand-in service on 0.0.0.0.
    host_service: u16,
    internet_service: SocketAddr,
    lan_service: SocketAddr,
    postgres: PrivatePostgres,
    _redis: PrivateRedis,
    _data: tempfile::TempDir,
}

impl Lab {
    fn start() -> Lab {
        let data = tempfile::tempdir().unwrap();
        let (_, subnet) = support::dyno_network(data.path());
        let internet = TestNet::create().unwrap();
        let lan = TestNet::create().unwrap();
        let metadata = metadata();
        let resolver = Resolver::start();
        let host_service = greeter(TcpListener::bind("0.0.0.0:0").unwrap()).port();
        let internet_service = greeter(internet.listen(0).unwrap());
        let lan_service = greeter(lan.listen(0).unwrap());
        let postgres = PrivatePostgres::start(&subnet);
        let redis = PrivateRedis::start();
        let on_lan = format!("{}:0", lan.host);
        let [api_port, rendezvous_port] = free_ports(lan.host);
        let api = format!("{}:{api_port}", lan.host);
        let rendezvous = format!("{}:{rendezvous_port}", lan.host);
        let server = Server::start_with(
            data.path(),
            &[
                ("WHARF_API_LISTEN", &api),
                // Where `wharf run` finds the rendezvous, and a name its certificate covers.
                ("WHARF_PUBLIC_URL", &format!("http://{api}")),
                ("WHARF_API_TLS_LISTEN", &on_lan),
                ("WHARF_RENDEZVOUS_LISTEN", &rendezvous),
                ("WHARF_ROUTER_LISTEN", &on_lan),
                ("WHARF_ROUTER_TLS_LISTEN", &on_lan),
                ("WHARF_DYNO_ALLOW", &internet.peer.to_string()),
                ("WHARF_DYNO_RESOLVERS", &resolver.address.to_string()),
                ("WHARF_ADDON_POSTGRES_ADMIN_URL", &postgres.admin_url),
                ("WHARF_ADDON_REDIS_URL", &redis.admin_url),
            ],
        );
        assert_eq!(server.dyno_network, subnet);
        let key = server.admin_key();
        let user = User::new(&server.url, Some(&key));
        Lab {
            rendezvous_port,
            gateway: gateway(&subnet),
            server,
            key,
            user,
            internet,
            lan,
            metadata,
            resolver,
            host_service,
            internet_service,
            lan_service,
            postgres,
            _redis: redis,
            _data: data,
        }
    }

    /// Creates `app` with its own `heroku-postgresql` and `heroku-redis` add-ons.
    fn create_app_with_addons(&self, app: &str) {
        self.user.run(&["apps:create", app]).ok();
        for service in ["heroku-postgresql", "heroku-redis"] {
            self.user.run(&["addons:create", service, "-a", app]).ok();
        }
    }

    /// Pushes the probe app to `app`; fails the test if the push fails.
    fn push(&self, app: &str) -> String {
        let repo = probe_app();
        let (ok, output) = commit_and_push(&self.server, &self.key, app, repo.path());
        assert!(ok, "push to {app} failed:\n{output}");
        output
    }

    /// Every destination the probe tries, with what it must do; `dynos` are other dynos'
    /// addresses (by a name for the report). Each refused destination that something listens
    /// on is checked to accept connections from the host first.
    fn targets(&self, dynos: &[(String, SocketAddr)]) -> Vec<Target> {
        let at = |ip: Ipv4Addr, port: u16| SocketAddr::from((ip, port));
        let gateway = self.gateway;
        let api_port = url_port(&self.server.url);
        let router_port = url_port(&self.server.router_url);
        let mut refused = vec![
            (
                "host-service-at-gateway",
                at(gateway, self.host_service),
                true,
            ),
            (
                "host-service-at-lan-address",
                at(self.lan.host, self.host_service),
                true,
            ),
            (
                "host-service-at-internet-address",
                at(self.internet.host, self.host_service),
                true,
            ),
            ("api-at-lan-address", at(self.lan.host, api_port), true),
            (
                "api-tls-at-lan-address",
                at(self.lan.host, url_port(&self.server.api_tls_url)),
                true,
            ),
            (
                "rendezvous-at-lan-address",
                at(self.lan.host, self.rendezvous_port),
                true,
            ),
            (
                "router-at-lan-address",
                at(self.lan.host, router_port),
                true,
            ),
            (
                "router-tls-at-lan-address",
                at(self.lan.host, url_port(&self.server.router_tls_url)),
                true,
            ),
            // Nothing listens there (the API is on the LAN address, the machine's
            // PostgreSQL and Redis on loopback), and it must stay so.
            ("api-at-gateway", at(gateway, api_port), false),
            ("host-postgres-at-gateway", at(gateway, 5432), false),
            ("host-redis-at-gateway", at(gateway, 6379), false),
            // The dyno's own loopback: the host's is out of its reach.
            ("loopback-postgres", at(Ipv4Addr::LOCALHOST, 5432), false),
            // The add-on server's port is open at the gateway only.
            (
                "addon-postgres-at-lan-address",
                at(self.lan.host, self.postgres.port),
                true,
            ),
            ("lan", self.lan_service, true),
            ("metadata", self.metadata.service, true),
        ];
        for (name, address) in dynos {
            refused.push((name.as_str(), *address, true));
        }
        let mut targets = Vec::new();
        for (name, address, live) in refused {
            if live {
                assert_live(address, name);
            }
            targets.push(Target::new(
                name,
                format!("tcp:{address}"),
                Expect::Unreachable,
            ));
        }
        // No IPv6 address of the host on the dyno network: dynos have IPv4 alone, and a
        // link-local address on the bridge would be one more way to the host.
        assert_eq!(
            bridge_ipv6_addresses(&self.server.network_name),
            "",
            "the bridge has no IPv6 address"
        );
        assert_live(self.internet_service, "the internet stand-in");
        targets.extend([
            Target::new(
                "internet",
                format!("tcp:{}", self.internet_service),
                // Through NAT: the internet sees the host, not the dyno.
                Expect::Greeting(format!("hello-from-{}", self.internet.host)),
            ),
            Target::new(
                "dns",
                format!("dns:{DNS_NAME}"),
                Expect::Resolved(DNS_ANSWER),
            ),
            Target::new(
                "addon-postgres",
                "pg:DATABASE_URL".to_owned(),
                Expect::Login,
            ),
            Target::new("addon-redis", "redis:REDIS_URL".to_owned(), Expect::Pong),
        ]);
        targets
    }

    /// Polls until `app` has `count` dynos, each `up`, and each said its address and port.
    fn web_dynos(&self, app: &str, count: usize) -> Vec<(String, SocketAddr)> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let states = support::dynos(&self.server, &self.key, app);
            let up = states.iter().filter(|(_, state, _)| state == "up").count();
            let addresses = dyno_addresses(&self.user.run(&["logs", "-n", "1500", "-a", app]).ok());
            if up == count && states.len() == count && addresses.len() == count {
                return addresses
                    .into_iter()
                    .map(|(dyno, address)| (format!("{app}-{dyno}"), address))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {count} web dynos of {app}: {states:?}, addresses {addresses:?}"
            );
            std::thread::sleep(POLL);
        }
    }
}

/// The IPv6 addresses of `bridge` (`ip -o -6 addr` lines), empty when it has none.
fn bridge_ipv6_addresses(bridge: &str) -> String {
    String::from_utf8_lossy(&ip(&["-o", "-6", "addr", "show", "dev", bridge]).stdout)
        .trim()
        .to_owned()
}

/// The last address and port each dyno logged (`app[web.N]: ADDRESS a PORT p`).
fn dyno_addresses(log: &str) -> BTreeMap<String, SocketAddr> {
    let mut found = BTreeMap::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once(" app[") else {
            continue;
        };
        let Some((dyno, message)) = rest.split_once("]: ") else {
            continue;
        };
        let words: Vec<&str> = message.split_whitespace().collect();
        if let ["ADDRESS", address, "PORT", port] = words[..] {
            if let (Ok(address), Ok(port)) = (address.parse::<Ipv4Addr>(), port.parse::<u16>()) {
                found.insert(dyno.to_owned(), SocketAddr::from((address, port)));
            }
        }
    }
    found
}

/// An app (in a new directory) with the probe, whose web process logs its own address and
/// port, then serves HTTP on them.
fn probe_app() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("probe.py"), PROBE).unwrap();
    std::fs::write(
        repo.path().join("Procfile"),
        "web: echo \"ADDRESS $(hostname -I) PORT $PORT\"; \
         exec python3 -m http.server --bind 0.0.0.0 \"$PORT\"\n",
    )
    .unwrap();
    repo
}

/// A third-party buildpack (in a new directory) for any app with a Procfile, whose
/// `bin/compile` runs the probe against `targets`, with the app's add-on URLs from its
/// `ENV_DIR` in the environment.
fn probe_buildpack(targets: &[Target]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("probe.py"), PROBE).unwrap();
    let arguments: Vec<String> = targets.iter().map(Target::argument).collect();
    std::fs::write(dir.path().join("targets"), arguments.join("\n")).unwrap();
    for (script, body) in [
        (
            "detect",
            "[ -f \"$1/Procfile\" ] && echo Prober && exit 0\nexit 1",
        ),
        (
            "compile",
            "BP=$(dirname \"$0\")/..\n\
             for var in DATABASE_URL REDIS_URL; do\n  \
               [ -f \"$3/$var\" ] && export \"$var=$(cat \"$3/$var\")\"\n\
             done\n\
             echo '-----> Probing the network from bin/compile'\n\
             python3 \"$BP/probe.py\" $(cat \"$BP/targets\")",
        ),
    ] {
        let path = dir.path().join("bin").join(script);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// `wharf run --no-tty -a APP -- COMMAND...` as the lab's admin (trusting the server's CA for
/// the rendezvous).
fn run_one_off(lab: &Lab, app: &str, command: &[&str]) -> Outcome {
    let output = Command::new(support::wharf_binary())
        .args(["run", "--no-tty", "-a", app, "--"])
        .args(command)
        .current_dir(lab.user.home.path())
        .env("HOME", lab.user.home.path())
        .env("WHARF_API_URL", &lab.server.url)
        .env("WHARF_API_KEY", &lab.key)
        .env("WHARF_CA_FILE", lab.server.data_dir.join("tls/ca.pem"))
        .env_remove("WHARF_APP")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_dyno_reaches_the_internet_dns_and_its_addons_and_nothing_else() {
    let lab = Lab::start();
    lab.create_app_with_addons("prober");
    lab.user.run(&["apps:create", "neighbour"]).ok();
    lab.push("prober");
    lab.push("neighbour");
    lab.user.run(&["ps:scale", "web=2", "-a", "prober"]).ok();
    let mut dynos = lab.web_dynos("prober", 2);
    dynos.extend(lab.web_dynos("neighbour", 1));
    let targets = lab.targets(&dynos);
    let mut command = vec!["python3".to_owned(), "probe.py".to_owned()];
    command.extend(targets.iter().map(Target::argument));
    let command: Vec<&str> = command.iter().map(String::as_str).collect();

    let ran = run_one_off(&lab, "prober", &command);
    assert_eq!(ran.code, 0, "{ran:?}");
    check(&targets, &ran.stdout);
    assert!(
        lab.resolver.answered.load(Ordering::SeqCst) > 0,
        "the dyno's query reached the host's loopback resolver"
    );
}

#[test]
fn a_build_step_gets_the_same_rules() {
    let lab = Lab::start();
    lab.user.run(&["apps:create", "neighbour"]).ok();
    lab.push("neighbour");
    let dynos = lab.web_dynos("neighbour", 1);
    lab.create_app_with_addons("built");
    let targets = lab.targets(&dynos);
    let buildpack = probe_buildpack(&targets);
    let (status, body) = http_json(
        &lab.server.url,
        "POST",
        "/buildpack-registrations",
        &lab.key,
        &serde_json::json!({"name": "prober", "dir": buildpack.path().to_str().unwrap()}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http_json(
        &lab.server.url,
        "PUT",
        "/apps/built/buildpack-installations",
        &lab.key,
        &serde_json::json!({"updates": [{"buildpack": "prober"}]}),
    );
    assert_eq!(status, 200, "{body}");

    let output = lab.push("built");
    assert!(
        output.contains("Probing the network from bin/compile"),
        "{output}"
    );
    check(&targets, &output);
    assert!(
        lab.resolver.answered.load(Ordering::SeqCst) > 0,
        "the build step's query reached the host's loopback resolver"
    );
}

/// The names of this host's links.
fn links() -> BTreeSet<String> {
    let output = ip(&["-o", "link"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect()
}

/// The host ends of veth pairs for addresses of `subnet` (`wv` and the address in hex).
fn network_veths(subnet: &str) -> BTreeSet<String> {
    let octets = gateway(subnet).octets();
    let prefix = format!("wv{:02x}{:02x}{:02x}", octets[0], octets[1], octets[2]);
    links()
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// The host ends of the veth pairs of the containers the runtime of `data` runs: each
/// container's address, read in its network namespace, named as the network names them.
fn container_veths(data: &Path) -> BTreeSet<String> {
    support::container_addresses(data, "")
        .values()
        .map(|address| format!("wv{:08x}", u32::from(*address)))
        .collect()
}

/// How many `table inet <name>` this host has.
fn tables_named(name: &str) -> usize {
    let output = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(output.status.success(), "nft list tables: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.trim() == format!("table inet {name}"))
        .count()
}

/// The bridge's addresses, one `ip -o addr` line each.
fn bridge_addresses(name: &str) -> Vec<String> {
    let output = ip(&["-o", "addr", "show", "dev", name]);
    assert!(
        output.status.success(),
        "ip addr show dev {name}: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            line.split_whitespace()
                .skip(2)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Removes a network a failed test left (what a clean stop removes), after its server.
struct NetworkLeftovers(String);

impl Drop for NetworkLeftovers {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.0])
            .stderr(Stdio::null())
            .status();
        let _ = ip(&["link", "del", &self.0]);
    }
}

/// Polls until `done` holds; `what` says what was waited for and shows the state.
#[track_caller]
fn wait_until(what: impl Fn() -> String, done: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "waiting for {}", what());
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_killed_server_leaves_no_link_address_or_rule_after_its_restart() {
    let data = tempfile::tempdir().unwrap();
    let (name, subnet) = support::dyno_network(data.path());
    let _leftovers = NetworkLeftovers(name.clone());
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "survivor"]).ok();
    let _repo = support::deploy_procfile_app(&server, &key, "survivor");
    user.run(&["ps:scale", "web=2", "-a", "survivor"]).ok();
    support::wait_for(&server, &key, "survivor", &["web.1", "web.2"], 2);
    user.run(&["run:detached", "-a", "survivor", "sleep 600"])
        .ok();
    let one_off_up = || {
        support::dynos(&server, &key, "survivor")
            .iter()
            .any(|(dyno, state, _)| dyno.starts_with("run.") && state == "up")
    };
    wait_until(
        || {
            format!(
                "the one-off: {:?}",
                support::dynos(&server, &key, "survivor")
            )
        },
        one_off_up,
    );
    // Three containers, each with its veth on this network, and no other veth.
    wait_until(
        || {
            format!(
                "{:?} / {:?}",
                network_veths(&subnet),
                container_veths(data.path())
            )
        },
        || network_veths(&subnet) == container_veths(data.path()),
    );
    let before = network_veths(&subnet);
    assert_eq!(before.len(), 3, "{before:?}");

    // SIGKILL: the containers, their veths, the table and the bridge stay behind.
    server.kill();
    let left = network_veths(&subnet);
    assert_eq!(left, before, "a killed server cannot remove its veths");
    assert_eq!(tables_named(&name), 1);

    let server = Server::start(data.path());
    let web_up = || {
        let dynos = support::dynos(&server, &key, "survivor");
        let up: BTreeSet<&str> = dynos
            .iter()
            .filter(|(_, state, _)| state == "up")
            .map(|(dyno, _, _)| dyno.as_str())
            .collect();
        up.contains("web.1") && up.contains("web.2")
    };
    wait_until(
        || {
            format!(
                "web.1 and web.2: {:?}",
                support::dynos(&server, &key, "survivor")
            )
        },
        web_up,
    );
    // Every veth of this network belongs to a running container of the new server: the
    // killed server's leftovers are gone (their containers too), the new dynos' are there.
    wait_until(
        || {
            format!(
                "veths {:?} of containers {:?}: {:?}",
                network_veths(&subnet),
                support::runtime_containers_named(data.path(), ""),
                container_veths(data.path())
            )
        },
        || {
            let veths = network_veths(&subnet);
            veths == container_veths(data.path()) && veths.len() == 2
        },
    );
    assert_eq!(
        tables_named(&name),
        1,
        "exactly one table after the restart"
    );
    // Exactly one address, the gateway (IPv6 is off on the dyno network's links).
    let addresses = bridge_addresses(&name);
    assert_eq!(
        addresses,
        [format!("inet {}/24", gateway(&subnet))],
        "the bridge has the gateway address only"
    );
    let served =
        support::http_request_until(&server.router_authority(), "survivor.localhost", "/", 200);
    assert!(
        served.contains("Hello from procfile-only on Wharf"),
        "{served}"
    );

    // A clean stop removes the whole network.
    let status = server.terminate_as_is(DEADLINE);
    assert!(status.success(), "the server stops cleanly: {status}");
    assert_eq!(tables_named(&name), 0, "no table after a clean stop");
    assert!(
        !links().contains(&name),
        "no bridge after a clean stop: {:?}",
        links()
    );
    assert!(
        network_veths(&subnet).is_empty(),
        "no veth after a clean stop: {:?}",
        network_veths(&subnet)
    );
}
