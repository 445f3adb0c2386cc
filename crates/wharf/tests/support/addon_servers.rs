//! Private add-on servers for a test, configured as the operator of an isolated Wharf should:
//! a PostgreSQL cluster that trusts only loopback admin access and asks the dyno subnet for
//! passwords, and a Redis whose `default` user has a password. Each listens on every address
//! on a free port, and stops (and its files go) when dropped.
//!
//! Shared by test crates through `#[path]` (it needs only std and tempfile).
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a private server may take to accept connections (both take well under 2 s).
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How often start-up is polled.
const POLL: Duration = Duration::from_millis(5);

/// A free TCP port on every address (bound on 0.0.0.0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// A private PostgreSQL cluster (Debian's binaries), run as the `postgres` user.
pub struct PrivatePostgres {
    child: Child,
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trusted from loopback).
    pub admin_url: String,
    /// Where the cluster's files and log are.
    pub dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// A fresh cluster listening on every address (`listen_addresses = '*'`), whose
    /// pg_hba.conf trusts the Unix socket and 127.0.0.1/32 and asks `dyno_subnet` (a CIDR)
    /// for `scram-sha-256`; nothing else may connect.
    pub fn start(dyno_subnet: &str) -> PrivatePostgres {
        PrivatePostgres::start_with(dyno_subnet, "scram-sha-256")
    }

    /// Like [`PrivatePostgres::start`], with `method` for the dyno subnet (`trust` makes a
    /// server that lets dynos in without a password).
    pub fn start_with(dyno_subnet: &str, method: &str) -> PrivatePostgres {
        let bin = postgres_bin();
        let (uid, gid) = postgres_ids();
        let dir = tempfile::tempdir().expect("a temporary directory for PostgreSQL");
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the cluster dir");
        let data = dir.path().join("data");
        let initdb = Command::new(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["--no-sync", "--auth=trust", "--username=postgres"])
            .args(["--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"])
            .uid(uid)
            .gid(gid)
            .output()
            .expect("run initdb");
        assert!(initdb.status.success(), "initdb failed: {initdb:?}");
        write_hba(&data, dyno_subnet, method);
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("create the log");
        std::os::unix::fs::chown(dir.path().join("postgres.log"), Some(uid), Some(gid))
            .expect("chown the log");
        let child = Command::new(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=*"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", "fsync=off", "-c", "password_encryption=scram-sha-256"])
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let mut server = PrivatePostgres {
            child,
            port,
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir: dir.path().to_owned(),
            _dir: dir,
        };
        server.wait_until_ready(&data);
        server
    }

    /// Waits for the postmaster to say it is ready in postmaster.pid (as `pg_ctl -w` does),
    /// so that the first connection is not told the server is starting up.
    fn wait_until_ready(&mut self, data: &Path) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let status = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
            if status.lines().nth(7).map(str::trim) == Some("ready") {
                return;
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("postgres exited ({exit}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Rewrites pg_hba.conf with `method` for `dyno_subnet` and tells the server to reload it
    /// (SIGHUP; the postmaster applies it to connections a moment later).
    pub fn reconfigure(&self, dyno_subnet: &str, method: &str) {
        write_hba(&self.dir.join("data"), dyno_subnet, method);
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "signal postgres to reload");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }
}

/// Trust for the Unix socket and 127.0.0.1, `method` for the dyno subnet, nothing else.
fn write_hba(data: &Path, dyno_subnet: &str, method: &str) {
    let hba = format!(
        "local all all trust\n\
         host all all 127.0.0.1/32 trust\n\
         host all all {dyno_subnet} {method}\n"
    );
    std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
}

impl Drop for PrivatePostgres {
    /// A fast shutdown (SIGINT): sessions end, the cluster stops, its files go.
    fn drop(&mut self) {
        stop(&mut self.child, "-INT");
    }
}

/// A private Redis listening on every address with protected mode off, its `default` user
/// protected by a password.
pub struct PrivateRedis {
    child: Child,
    pub port: u16,
    /// The `default` user's password.
    pub password: String,
    /// `redis://:PASSWORD@127.0.0.1:PORT`.
    pub admin_url: String,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let dir = tempfile::tempdir().expect("a temporary directory for Redis");
        let port = free_port();
        let password = random_hex();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "0.0.0.0"])
            .args(["--protected-mode", "no", "--requirepass", &password])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut server = PrivateRedis {
            child,
            port,
            admin_url: format!("redis://:{password}@127.0.0.1:{port}"),
            password,
            _dir: dir,
        };
        server.wait_until_ready();
        server
    }

    /// Waits until Redis answers a `PING` (with `-NOAUTH`, as its default user has a
    /// password).
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut answer = [0u8; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut answer).is_ok()
                    && &answer == b"-NOAUTH"
                {
                    return;
                }
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("redis-server exited ({exit})");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}

/// 32 random hex digits (from the kernel), for a password that other users of the machine
/// cannot guess while the server listens.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Sends `signal` and waits for the exit; kills the process if it does not stop in time.
fn stop(child: &mut Child, signal: &str) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Debian's PostgreSQL binaries (the newest installed version).
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries under /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("a PostgreSQL version with initdb under /usr/lib/postgresql")
}

/// The `postgres` system user's uid and gid (PostgreSQL refuses to run as root).
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                ["postgres", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        })
        .expect("a postgres user (Debian's postgresql package makes it)")
}
