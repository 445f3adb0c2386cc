//! Drains against real receivers: a real rsyslog (a child process with its own configuration)
//! for `syslog://`, in-test TLS servers with a certificate from Wharf's CA for `https://` and
//! `syslog+tls://`, and a syslog drain whose receiver goes away and comes back while the app
//! and another drain carry on. The receivers live in a network namespace each test makes
//! (`TestNet`), whose block the drains' policy allows, because the policy never lets a drain
//! reach this host itself; that it does not is tested against receivers on loopback, which
//! must never see a connection.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use uuid::Uuid;
use wharf_logs::{DrainSpec, Drains, LogBuffer, LogLine, LogSource};
use wharf_outbound::test_net::{TestNet, TEST_BLOCK};
use wharf_outbound::Policy;

const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Some`, or fails after [`DEADLINE`] with `what`.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

fn line(process: &str, message: String) -> LogLine {
    LogLine::now(LogSource::App, process, message)
}

/// The name the tests' policy resolves to a namespace's address (with certificates for it).
const DRAIN_HOST: &str = "drain.test";

/// What the server's policy would be with the test block allowed, `drain.test` naming the
/// namespace's receivers.
fn policy(net: &TestNet) -> Policy {
    Policy::from_setting(TEST_BLOCK)
        .unwrap()
        .with_hosts([(DRAIN_HOST.to_owned(), vec![IpAddr::V4(net.peer)])])
}

/// A tokio listener inside the namespace.
fn listen_in(net: &TestNet, port: u16) -> TcpListener {
    let listener = net.listen(port).unwrap();
    listener.set_nonblocking(true).unwrap();
    TcpListener::from_std(listener).unwrap()
}

fn spec(app_id: Uuid, url: String) -> DrainSpec {
    DrainSpec {
        id: Uuid::new_v4(),
        app_id,
        token: format!("d.{}", Uuid::new_v4()),
        url,
    }
}

/// An rsyslog of the test's own, writing what it receives to a file.
struct Rsyslog {
    child: tokio::process::Child,
    port: u16,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rsyslog {
    /// An rsyslog listening on the namespace's address.
    async fn start(net: &TestNet) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let config = format!(
            r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" port="0" address="{address}" listenPortFileName="{port}")
template(name="fields" type="string" string="%hostname%|%app-name%|%procid%|%msg%\n")
*.* action(type="omfile" file="{output}" template="fields")
"#,
            work = dir.path().display(),
            address = net.peer,
            port = path("port"),
            output = path("received.log"),
        );
        std::fs::write(dir.path().join("rsyslog.conf"), config).unwrap();
        let child = tokio::process::Command::from(net.command("rsyslogd"))
            .arg("-n")
            .arg("-f")
            .arg(dir.path().join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.path().join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run rsyslogd (scripts/deps.sh installs rsyslog)");
        let port_file = dir.path().join("port");
        let port = eventually("rsyslog to listen", || {
            std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.trim().parse().ok())
        })
        .await;
        Rsyslog {
            child,
            port,
            output: dir.path().join("received.log"),
            _dir: dir,
        }
    }

    fn received(&self) -> Vec<String> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn rsyslog_receives_syslog_drain_lines() {
    let net = TestNet::create().unwrap();
    let rsyslog = Rsyslog::start(&net).await;
    let buffer = LogBuffer::new(100);
    let drains = Drains::new(buffer.clone(), policy(&net)).unwrap();
    let app = Uuid::new_v4();
    let drain = spec(app, format!("syslog://{}:{}", net.peer, rsyslog.port));
    drains.start(drain.clone()).unwrap();
    buffer.append(app, line("web.1", "hello from web.1".to_owned()));
    buffer.append(
        app,
        LogLine::now(
            LogSource::Heroku,
            "router",
            "at=info method=GET path=\"/\" status=200",
        ),
    );
    // Another app's lines do not reach this drain.
    buffer.append(
        Uuid::new_v4(),
        line("web.1", "not for this drain".to_owned()),
    );
    buffer.append(
        app,
        line("worker.2", "ünïcode ✓ and a long tail".to_owned()),
    );
    let received = eventually("rsyslog to write three lines", || {
        let lines = rsyslog.received();
        (lines.len() >= 3).then_some(lines)
    })
    .await;
    let token = &drain.token;
    assert_eq!(
        received,
        [
            format!("{token}|app|web.1|hello from web.1"),
            format!("{token}|heroku|router|at=info method=GET path=\"/\" status=200"),
            format!("{token}|app|worker.2|ünïcode ✓ and a long tail"),
        ]
    );
}

/// One request an HTTPS drain made.
#[derive(Debug, Clone)]
struct Batch {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 server over TLS in the namespace, with a certificate for
/// [`DRAIN_HOST`], that records every request and answers 200 (503 while `failing`, a
/// redirect while `redirect` names a URL).
struct HttpsSink {
    port: u16,
    batches: Arc<Mutex<Vec<Batch>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    redirect: Arc<Mutex<Option<String>>>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
    roots: rustls::RootCertStore,
    _dir: tempfile::TempDir,
}

/// How the sink answers.
#[derive(Clone)]
struct Answer {
    failing: Arc<std::sync::atomic::AtomicBool>,
    redirect: Arc<Mutex<Option<String>>>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpsSink {
    async fn start(net: &TestNet) -> HttpsSink {
        let dir = tempfile::tempdir().unwrap();
        let tls = wharf_tls::Tls::load_or_create(&dir.path().join("tls"), &[DRAIN_HOST.to_owned()])
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(tls.ca_path()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
        let listener = listen_in(net, 0);
        let port = listener.local_addr().unwrap().port();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let answer = Answer {
            failing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            redirect: Arc::new(Mutex::new(None)),
            requests: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        };
        let (recorded, answering) = (batches.clone(), answer.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (acceptor, recorded, answer) =
                    (acceptor.clone(), recorded.clone(), answering.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    serve(stream, recorded, answer).await;
                });
            }
        });
        HttpsSink {
            port,
            batches,
            failing: answer.failing,
            redirect: answer.redirect,
            requests: answer.requests,
            roots,
            _dir: dir,
        }
    }

    fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap().clone()
    }
}

async fn serve(
    stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    recorded: Arc<Mutex<Vec<Batch>>>,
    answer: Answer,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await.unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.unwrap();
        answer
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let redirect = answer.redirect.lock().unwrap().clone();
        let status = if let Some(location) = redirect {
            format!("307 Temporary Redirect\r\nlocation: {location}")
        } else if answer.failing.load(std::sync::atomic::Ordering::SeqCst) {
            "503 Service Unavailable".to_owned()
        } else {
            recorded.lock().unwrap().push(Batch { headers, body });
            "200 OK".to_owned()
        };
        let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        reader
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .unwrap();
    }
}

/// The messages of a body of octet-counted frames.
fn frames(mut body: &[u8]) -> Vec<String> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        let space = body.iter().position(|&b| b == b' ').unwrap();
        let length: usize = std::str::from_utf8(&body[..space])
            .unwrap()
            .parse()
            .unwrap();
        let message = &body[space + 1..space + 1 + length];
        messages.push(String::from_utf8(message.to_vec()).unwrap());
        body = &body[space + 1 + length..];
    }
    messages
}

#[tokio::test]
async fn https_drain_posts_logplex_batches() {
    let net = TestNet::create().unwrap();
    let sink = HttpsSink::start(&net).await;
    let buffer = LogBuffer::new(100);
    let drains =
        Drains::with_roots(buffer.clone(), sink.roots.clone(), 1000, policy(&net)).unwrap();
    let app = Uuid::new_v4();
    let drain = spec(app, format!("https://{DRAIN_HOST}:{}/logs", sink.port));
    drains.start(drain.clone()).unwrap();
    // Refused batches are retried until accepted.
    sink.failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for n in 0..20 {
        buffer.append(app, line("web.1", format!("line {n}")));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sink.failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let batches = eventually("20 lines in batches", || {
        let batches = sink.batches();
        let count: usize = batches.iter().map(|b| frames(&b.body).len()).sum();
        (count >= 20).then_some(batches)
    })
    .await;
    let mut messages = Vec::new();
    for batch in &batches {
        let in_batch = frames(&batch.body);
        assert_eq!(batch.headers["content-type"], "application/logplex-1");
        assert_eq!(
            batch.headers["logplex-msg-count"],
            in_batch.len().to_string()
        );
        assert_eq!(batch.headers["logplex-drain-token"], drain.token);
        assert!(!batch.headers["logplex-frame-id"].is_empty());
        messages.extend(in_batch);
    }
    let expected: Vec<String> = (0..20).map(|n| format!("line {n}")).collect();
    let bodies: Vec<String> = messages
        .iter()
        .map(|m| {
            assert!(
                m.starts_with("<190>1 ") && m.contains(&format!(" {} app web.1 - - ", drain.token)),
                "{m}"
            );
            m.rsplit(" - - ").next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(bodies, expected);
}

/// A syslog receiver in the test: the messages of the frames it got, over any connections.
async fn syslog_receiver(listener: TcpListener, received: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        let received = received.clone();
        tokio::spawn(async move {
            let mut data = Vec::new();
            let mut chunk = vec![0; 64 * 1024];
            while let Ok(n) = tcp.read(&mut chunk).await {
                if n == 0 {
                    return;
                }
                data.extend_from_slice(&chunk[..n]);
                // Take every complete frame.
                while let Some(space) = data.iter().position(|&b| b == b' ') {
                    let length: usize = std::str::from_utf8(&data[..space])
                        .unwrap()
                        .parse()
                        .unwrap();
                    if data.len() < space + 1 + length {
                        break;
                    }
                    let message =
                        String::from_utf8(data[space + 1..space + 1 + length].to_vec()).unwrap();
                    received.lock().unwrap().push(message);
                    data.drain(..space + 1 + length);
                }
            }
        });
    }
}

/// A port nothing listens on in the namespace.
fn free_port(net: &TestNet) -> u16 {
    net.listen(0).unwrap().local_addr().unwrap().port()
}

fn numbered(messages: &[String]) -> Vec<u32> {
    messages
        .iter()
        .filter_map(|m| m.rsplit(" - - burst ").next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_drain_that_goes_down_loses_a_bounded_number_of_lines_and_says_so() {
    const QUEUE: usize = 100;
    const BURST: u32 = 2_000;
    let net = TestNet::create().unwrap();
    let https = HttpsSink::start(&net).await;
    let buffer = LogBuffer::new(5_000);
    let drains =
        Drains::with_roots(buffer.clone(), https.roots.clone(), QUEUE, policy(&net)).unwrap();
    let app = Uuid::new_v4();
    let port = free_port(&net);
    drains
        .start(spec(app, format!("syslog://{}:{port}", net.peer)))
        .unwrap();
    drains
        .start(spec(app, format!("https://{DRAIN_HOST}:{}/", https.port)))
        .unwrap();

    // The syslog receiver is down: appending goes on regardless, and the HTTPS drain gets
    // every line (its queue holds as few lines as the dead drain's: pace the burst so that it
    // never has more than a quarter of that outstanding).
    let https_count = || {
        let got: Vec<String> = https
            .batches()
            .iter()
            .flat_map(|b| frames(&b.body))
            .collect();
        numbered(&got).len()
    };
    for n in 0..BURST {
        buffer.append(app, line("web.1", format!("burst {n}")));
        if n % 25 == 24 {
            let sent = n as usize + 1;
            eventually("the HTTPS drain to keep up", || {
                (https_count() >= sent).then_some(())
            })
            .await;
        }
    }
    let kept = buffer.recent(app, usize::MAX);
    let bursts = kept
        .iter()
        .filter(|l| l.message.starts_with("burst "))
        .count();
    assert_eq!(bursts as u32, BURST);
    let start = Instant::now();
    loop {
        let got: Vec<String> = https
            .batches()
            .iter()
            .flat_map(|b| frames(&b.body))
            .collect();
        let got = numbered(&got);
        if got == (0..BURST).collect::<Vec<_>>() {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the HTTPS drain did not get every line once, in order: {} lines, first wrong at {:?}",
            got.len(),
            got.iter().enumerate().find(|(i, n)| *i as u32 != **n)
        );
        tokio::time::sleep(POLL).await;
    }

    // It comes back.
    let received = Arc::new(Mutex::new(Vec::new()));
    let listener = listen_in(&net, port);
    tokio::spawn(syslog_receiver(listener, received.clone()));
    buffer.append(app, line("web.1", "after".to_owned()));
    let got = eventually("the syslog drain to deliver again", || {
        let got = received.lock().unwrap().clone();
        got.iter().any(|m| m.ends_with(" - - after")).then_some(got)
    })
    .await;
    // Bounded loss: what the drain held arrived, in order: the batch it had in hand when the
    // receiver went (at most a queue's worth) and the newest lines of its queue.
    let burst = numbered(&got);
    assert!(!burst.is_empty() && burst.len() <= 2 * QUEUE, "{burst:?}");
    assert!(burst.windows(2).all(|w| w[0] < w[1]), "{burst:?}");
    assert_eq!(*burst.last().unwrap(), BURST - 1);

    // The app's log says what the drain dropped.
    let log: Vec<String> = buffer
        .recent(app, usize::MAX)
        .iter()
        .map(ToString::to_string)
        .collect();
    let overflow: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("heroku[logplex]: Error L10 (output buffer overflow): "))
        .collect();
    assert!(!overflow.is_empty(), "no L10 line");
    let dropped: u64 = overflow
        .iter()
        .map(|l| {
            let count = l.split("): ").nth(1).unwrap().split(' ').next().unwrap();
            count.parse::<u64>().unwrap()
        })
        .sum();
    assert!(dropped >= u64::from(BURST) - 2 * QUEUE as u64, "{dropped}");
    // Lines after it came back all arrive.
    for n in 0..10 {
        buffer.append(app, line("web.1", format!("later {n}")));
    }
    eventually("the later lines", || {
        let got = received.lock().unwrap().clone();
        let later = got.iter().filter(|m| m.contains(" - - later ")).count();
        (later == 10).then_some(())
    })
    .await;
}

#[tokio::test]
async fn syslog_over_tls_reaches_a_receiver_with_a_certificate_from_wharfs_ca() {
    let net = TestNet::create().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tls =
        wharf_tls::Tls::load_or_create(&dir.path().join("tls"), &[DRAIN_HOST.to_owned()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls.ca_path()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
    let listener = listen_in(&net, 0);
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut stream = acceptor.accept(tcp).await.unwrap();
        let mut data = Vec::new();
        let mut chunk = vec![0; 16 * 1024];
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                return;
            }
            data.extend_from_slice(&chunk[..n]);
            *sink.lock().unwrap() = frames_so_far(&data);
        }
    });
    let buffer = LogBuffer::new(100);
    let drains = Drains::with_roots(buffer.clone(), roots, 1000, policy(&net)).unwrap();
    let app = Uuid::new_v4();
    let drain = spec(app, format!("syslog+tls://{DRAIN_HOST}:{port}"));
    drains.start(drain.clone()).unwrap();
    buffer.append(app, line("web.1", "over TLS".to_owned()));
    let got = eventually("the line over TLS", || {
        let got = received.lock().unwrap().clone();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("<190>1 ")
            && got[0].ends_with(&format!(" {} app web.1 - - over TLS", drain.token)),
        "{got:?}"
    );
}

/// The messages of the complete octet-counted frames at the start of `data`.
fn frames_so_far(mut data: &[u8]) -> Vec<String> {
    let mut messages = Vec::new();
    while let Some(space) = data.iter().position(|&b| b == b' ') {
        let length: usize = std::str::from_utf8(&data[..space])
            .unwrap()
            .parse()
            .unwrap();
        if data.len() < space + 1 + length {
            break;
        }
        messages.push(String::from_utf8(data[space + 1..space + 1 + length].to_vec()).unwrap());
        data = &data[space + 1 + length..];
    }
    messages
}

/// A loopback listener that stands for this server's own services: how many connections
/// reached it (without waiting for any).
fn connections_waiting(listener: &std::net::TcpListener) -> usize {
    let mut count = 0;
    loop {
        match listener.accept() {
            Ok(_) => count += 1,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return count,
            Err(error) => panic!("accept: {error}"),
        }
    }
}

fn bait() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// The app's `Error (drain refused)` lines.
fn refusals(buffer: &LogBuffer, app: Uuid) -> Vec<String> {
    buffer
        .recent(app, usize::MAX)
        .iter()
        .map(ToString::to_string)
        .filter(|line| line.contains(" heroku[logplex]: Error (drain refused): "))
        .collect()
}

#[tokio::test]
async fn drains_whose_hosts_are_this_server_never_connect_and_say_why() {
    let (bait, port) = bait();
    // DNS now answers loopback for a host that was somewhere else when the drain was added.
    let policy = Policy::from_setting(TEST_BLOCK).unwrap().with_hosts([(
        "logs.example.com".to_owned(),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    )]);
    let buffer = LogBuffer::new(100);
    let drains = Drains::new(buffer.clone(), policy).unwrap();
    let app = Uuid::new_v4();
    let urls = [
        format!("syslog://logs.example.com:{port}"),
        format!("syslog+tls://[::ffff:127.0.0.1]:{port}"),
        // Through reqwest's resolver, and an address reqwest never asks a resolver about.
        format!("https://localhost:{port}/logs"),
        format!("http://127.0.0.1:{port}/logs"),
        format!("http://2130706433:{port}/logs"),
    ];
    let specs: Vec<DrainSpec> = urls.iter().map(|url| spec(app, url.clone())).collect();
    for drain in &specs {
        drains.start(drain.clone()).unwrap();
    }
    buffer.append(app, line("web.1", "for the drains".to_owned()));
    let refused = eventually("a refusal from every drain", || {
        let refused = refusals(&buffer, app);
        specs
            .iter()
            .all(|drain| {
                refused
                    .iter()
                    .any(|l| l.contains(&format!("drain {}: ", drain.token)))
            })
            .then_some(refused)
    })
    .await;
    assert_eq!(refused.len(), specs.len(), "{refused:#?}");
    let first = refused
        .iter()
        .find(|l| l.contains(&specs[0].token))
        .unwrap();
    assert!(
        first.ends_with(&format!(
            "heroku[logplex]: Error (drain refused): drain {}: host \"logs.example.com\" resolves to 127.0.0.1, a loopback address of this server: drains must point at hosts outside this server and its internal networks",
            specs[0].token
        )),
        "{first}"
    );
    for line in &refused {
        assert!(line.contains("a loopback address of this server"), "{line}");
    }
    assert_eq!(connections_waiting(&bait), 0, "a drain reached this server");
}

#[tokio::test]
async fn an_https_drain_follows_no_redirect() {
    let (bait, port) = bait();
    let net = TestNet::create().unwrap();
    let sink = HttpsSink::start(&net).await;
    *sink.redirect.lock().unwrap() = Some(format!("http://127.0.0.1:{port}/logs"));
    let buffer = LogBuffer::new(100);
    let drains =
        Drains::with_roots(buffer.clone(), sink.roots.clone(), 1000, policy(&net)).unwrap();
    let app = Uuid::new_v4();
    drains
        .start(spec(
            app,
            format!("https://{DRAIN_HOST}:{}/logs", sink.port),
        ))
        .unwrap();
    buffer.append(app, line("web.1", "redirected".to_owned()));
    // The second request comes after the drain finished with the first answer.
    eventually("the drain to try twice", || {
        (sink.requests.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    assert_eq!(
        connections_waiting(&bait),
        0,
        "the drain followed a redirect"
    );
    *sink.redirect.lock().unwrap() = None;
    let batches = eventually("the batch at the drain itself", || {
        let batches = sink.batches();
        (!batches.is_empty()).then_some(batches)
    })
    .await;
    assert!(frames(&batches[0].body)[0].ends_with(" - - redirected"));
    assert_eq!(connections_waiting(&bait), 0);
}
