//! Log drains: each app's lines forwarded to syslog (`syslog://`, `syslog+tls://`, TCP) or
//! HTTP(S) endpoints, as Heroku's logplex forwards them.
//!
//! Every drain has its own bounded queue and task. [`LogBuffer::append`] only pushes onto the
//! queue (dropping the oldest line when it is full), so a slow or dead drain never blocks a
//! dyno, the API or another drain. The task delivers batches, retries with a growing backoff,
//! and reports what its queue dropped as an `Error L10 (output buffer overflow)` line in the
//! app's log.
//!
//! Every connection goes through the outbound policy ([`wharf_outbound`]): a syslog drain's
//! host is resolved once and checked, and the connection goes to exactly the checked
//! addresses; an HTTPS drain's client resolves names through the policy, never follows
//! redirects and never uses a proxy. A refused drain sends nothing, says why in the app's log
//! (`Error (drain refused)`, once, again only when the reason changes or an hour has passed),
//! and tries again slowly: the host's DNS may change.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_outbound::{resolve_checked, Policy, Refused};

use crate::buffer::{Entry, LogBuffer};
use crate::line::format_time;
use crate::{syslog, LogLine, LogSource};

/// Lines a drain holds while it cannot deliver; beyond this its oldest are dropped.
pub const DRAIN_QUEUE_LINES: usize = 10_000;
/// Lines per delivery: one HTTPS POST, or one write to a syslog connection.
const BATCH_LINES: usize = 500;
/// The first wait after a failure; doubled after each further failure up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long one connection attempt, write or HTTPS request may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after the policy refused the drain's host, doubled up to
/// [`REFUSED_BACKOFF_MAX`]: a refusal lasts until the host's DNS or the operator's allow list
/// changes, so trying often only costs lookups.
const REFUSED_BACKOFF_START: Duration = Duration::from_secs(30);
const REFUSED_BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
/// A refusal that goes on is reported in the app's log again after this long.
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(60 * 60);

/// Where a drain sends lines, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainTarget {
    /// RFC 6587 octet-counted RFC 5424 messages over TCP, with TLS for `syslog+tls://`.
    Syslog { host: String, port: u16, tls: bool },
    /// Batches POSTed as `application/logplex-1` to `url`, whose host and port (the scheme's
    /// own if it names none) are checked before every connection.
    Http {
        url: String,
        host: String,
        port: u16,
    },
}

impl DrainTarget {
    /// Parses a drain URL; the error says what is accepted.
    pub fn parse(url: &str) -> Result<DrainTarget, String> {
        let parsed = reqwest::Url::parse(url).map_err(|error| {
            format!("{url:?} is not a URL ({error}): use syslog://host:port, syslog+tls://host:port or https://...")
        })?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{url:?} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        match parsed.scheme() {
            "syslog" | "syslog+tls" => {
                let port = parsed
                    .port()
                    .ok_or_else(|| format!("{url:?} names no port: syslog drains need one"))?;
                Ok(DrainTarget::Syslog {
                    host,
                    port,
                    tls: parsed.scheme() == "syslog+tls",
                })
            }
            "http" | "https" => Ok(DrainTarget::Http {
                url: url.to_owned(),
                host,
                port: parsed
                    .port_or_known_default()
                    .ok_or_else(|| format!("{url:?} names no port"))?,
            }),
            other => Err(format!(
                "drain URLs use syslog://, syslog+tls://, https:// or http://, not {other}://"
            )),
        }
    }
}

/// A drain to run: what the store keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainSpec {
    pub id: Uuid,
    pub app_id: Uuid,
    /// `d.<uuid>`: the HOSTNAME of every message, and `Logplex-Drain-Token`.
    pub token: String,
    pub url: String,
}

/// A drain's bounded queue: what the log buffer pushes and the drain's task takes.
pub(crate) struct DrainQueue {
    state: Mutex<QueueState>,
    ready: Notify,
    capacity: usize,
}

#[derive(Default)]
struct QueueState {
    lines: VecDeque<Arc<Entry>>,
    dropped: u64,
    dropped_since: Option<OffsetDateTime>,
}

impl DrainQueue {
    fn new(capacity: usize) -> DrainQueue {
        DrainQueue {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().expect("drain queue lock poisoned")
    }

    /// Never waits: when full, the oldest line goes and is counted.
    pub(crate) fn push(&self, entry: Arc<Entry>) {
        {
            let mut state = self.lock();
            if state.lines.len() >= self.capacity {
                if let Some(oldest) = state.lines.pop_front() {
                    state.dropped += 1;
                    state.dropped_since.get_or_insert(oldest.at);
                }
            }
            state.lines.push_back(entry);
        }
        self.ready.notify_one();
    }

    /// Up to `max` lines, oldest first.
    fn take(&self, max: usize) -> Vec<Arc<Entry>> {
        let mut state = self.lock();
        let n = state.lines.len().min(max);
        state.lines.drain(..n).collect()
    }

    /// How many lines were dropped since when, resetting the count.
    fn take_dropped(&self) -> Option<(u64, OffsetDateTime)> {
        let mut state = self.lock();
        let dropped = std::mem::take(&mut state.dropped);
        let since = state.dropped_since.take()?;
        Some((dropped, since))
    }
}

/// The `heroku[logplex]` line that reports a drain's dropped lines.
pub fn overflow_line(dropped: u64, since: OffsetDateTime) -> LogLine {
    LogLine::now(
        LogSource::Heroku,
        "logplex",
        format!(
            "Error L10 (output buffer overflow): {dropped} messages dropped since {}",
            format_time(since)
        ),
    )
}

/// The `heroku[logplex]` line that says the outbound policy refused a drain's host.
pub fn refused_line(token: &str, refused: &Refused) -> LogLine {
    LogLine::now(
        LogSource::Heroku,
        "logplex",
        format!(
            "Error (drain refused): drain {token}: {refused}: drains must point at hosts outside this server and its internal networks"
        ),
    )
}

/// The running drains of every app. Cheap to clone.
#[derive(Clone)]
pub struct Drains {
    inner: Arc<DrainsInner>,
}

struct DrainsInner {
    buffer: LogBuffer,
    tls: Arc<rustls::ClientConfig>,
    policy: Policy,
    queue_lines: usize,
    running: Mutex<HashMap<Uuid, Running>>,
}

struct Running {
    app_id: Uuid,
    queue: Arc<DrainQueue>,
    stop: CancellationToken,
}

impl Drains {
    /// Drains that trust the Web PKI's roots for `syslog+tls://` and `https://`, and connect
    /// where `policy` allows.
    pub fn new(buffer: LogBuffer, policy: Policy) -> anyhow::Result<Drains> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Drains::with_roots(buffer, roots, DRAIN_QUEUE_LINES, policy)
    }

    /// Drains that trust `roots`, each holding at most `queue_lines` undelivered lines.
    pub fn with_roots(
        buffer: LogBuffer,
        roots: rustls::RootCertStore,
        queue_lines: usize,
        policy: Policy,
    ) -> anyhow::Result<Drains> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("choose TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Drains {
            inner: Arc::new(DrainsInner {
                buffer,
                tls: Arc::new(tls),
                policy,
                queue_lines,
                running: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Starts forwarding the app's lines from now on. Starting a running drain does nothing.
    pub fn start(&self, spec: DrainSpec) -> anyhow::Result<()> {
        let target = DrainTarget::parse(&spec.url).map_err(anyhow::Error::msg)?;
        let http = match &target {
            DrainTarget::Http { port, .. } => Some(self.http_client(*port)?),
            DrainTarget::Syslog { .. } => None,
        };
        let mut running = self.inner.running.lock().expect("drains lock poisoned");
        if running.contains_key(&spec.id) {
            return Ok(());
        }
        let queue = Arc::new(DrainQueue::new(self.inner.queue_lines));
        let stop = CancellationToken::new();
        self.inner.buffer.attach(spec.app_id, queue.clone());
        running.insert(
            spec.id,
            Running {
                app_id: spec.app_id,
                queue: queue.clone(),
                stop: stop.clone(),
            },
        );
        let task = DrainTask {
            spec,
            target,
            queue,
            buffer: self.inner.buffer.clone(),
            tls: self.inner.tls.clone(),
            policy: self.inner.policy.clone(),
            http,
            connection: None,
            reported: None,
        };
        tokio::spawn(task.run(stop));
        Ok(())
    }

    /// An HTTP client for one drain on `port`: names resolve through the policy (for that
    /// port, which reqwest does not tell a resolver), redirects are not followed (a drain
    /// could redirect to a refused host), and no proxy from the environment is used (the
    /// policy must judge the drain's host, not a proxy's).
    fn http_client(&self, port: u16) -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .use_preconfigured_tls((*self.inner.tls).clone())
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: self.inner.policy.clone(),
                port,
            }))
            .build()
            .context("build HTTP client")
    }

    /// Stops a drain; what it had not delivered is dropped.
    pub fn stop(&self, drain_id: Uuid) {
        let removed = self
            .inner
            .running
            .lock()
            .expect("drains lock poisoned")
            .remove(&drain_id);
        if let Some(running) = removed {
            self.inner.buffer.detach(running.app_id, &running.queue);
            running.stop.cancel();
        }
    }

    /// Stops every drain of an app (when it is deleted).
    pub fn stop_app(&self, app_id: Uuid) {
        let ids: Vec<Uuid> = self
            .inner
            .running
            .lock()
            .expect("drains lock poisoned")
            .iter()
            .filter(|(_, r)| r.app_id == app_id)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.stop(id);
        }
    }
}

/// Name lookups of one HTTP drain's client, through the outbound policy: reqwest connects to
/// exactly the addresses this returns.
struct CheckedResolver {
    policy: Policy,
    port: u16,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (policy, port, host) = (self.policy.clone(), self.port, name.as_str().to_owned());
        Box::pin(async move {
            let addresses = resolve_checked(&host, port, &policy).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The policy's refusal behind a failed delivery, if that is why it failed.
fn policy_refusal(error: &anyhow::Error) -> Option<&Refused> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Refused>())
        .filter(|refused| refused.is_policy())
}

type Connection = Box<dyn tokio::io::AsyncWrite + Send + Sync + Unpin>;

struct DrainTask {
    spec: DrainSpec,
    target: DrainTarget,
    queue: Arc<DrainQueue>,
    buffer: LogBuffer,
    tls: Arc<rustls::ClientConfig>,
    policy: Policy,
    /// The client of an HTTP drain (none for syslog).
    http: Option<reqwest::Client>,
    connection: Option<Connection>,
    /// The last refusal written to the app's log, and when.
    reported: Option<(String, Instant)>,
}

impl DrainTask {
    async fn run(mut self, stop: CancellationToken) {
        let mut backoff = BACKOFF_START;
        let mut refused_backoff = REFUSED_BACKOFF_START;
        loop {
            self.report_overflow();
            let batch = self.queue.take(BATCH_LINES);
            if batch.is_empty() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = self.queue.ready.notified() => continue,
                }
            }
            let frame_id = Uuid::new_v4().simple().to_string();
            // The same batch until it is delivered: lines behind it queue up (and the oldest
            // of those drop) meanwhile, so the loss is bounded by the queue.
            loop {
                let delivered = tokio::select! {
                    () = stop.cancelled() => return,
                    delivered = self.deliver(&batch, &frame_id) => delivered,
                };
                match delivered {
                    Ok(()) => {
                        backoff = BACKOFF_START;
                        refused_backoff = REFUSED_BACKOFF_START;
                        self.reported = None;
                        break;
                    }
                    Err(error) => {
                        self.connection = None;
                        let wait = match policy_refusal(&error) {
                            Some(refused) => {
                                let refused = refused.clone();
                                self.report_refusal(&refused);
                                let wait = refused_backoff;
                                refused_backoff = (refused_backoff * 2).min(REFUSED_BACKOFF_MAX);
                                wait
                            }
                            None => {
                                tracing::debug!(drain = %self.spec.id, app = %self.spec.app_id, "drain delivery failed: {error:#}");
                                let wait = backoff;
                                backoff = (backoff * 2).min(BACKOFF_MAX);
                                wait
                            }
                        };
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                        self.report_overflow();
                    }
                }
            }
        }
    }

    /// Writes the L10 line for what the queue dropped, if it dropped anything.
    fn report_overflow(&self) {
        if let Some((dropped, since)) = self.queue.take_dropped() {
            self.buffer
                .append(self.spec.app_id, overflow_line(dropped, since));
        }
    }

    /// Says in the app's log that the policy refused the drain's host: the first time, when
    /// the reason changes, and every [`REFUSAL_REPORT_EVERY`] while it lasts.
    fn report_refusal(&mut self, refused: &Refused) {
        let message = refused.to_string();
        let repeat = match &self.reported {
            Some((last, at)) => *last != message || at.elapsed() >= REFUSAL_REPORT_EVERY,
            None => true,
        };
        if !repeat {
            return;
        }
        tracing::info!(drain = %self.spec.id, app = %self.spec.app_id, "drain refused: {message}");
        self.buffer
            .append(self.spec.app_id, refused_line(&self.spec.token, refused));
        self.reported = Some((message, Instant::now()));
    }

    async fn deliver(&mut self, batch: &[Arc<Entry>], frame_id: &str) -> anyhow::Result<()> {
        match &self.target {
            DrainTarget::Http { url, host, port } => {
                // reqwest asks no resolver for an address in the URL: check it here.
                if host.parse::<IpAddr>().is_ok() {
                    resolve_checked(host, *port, &self.policy).await?;
                }
                let Some(http) = &self.http else {
                    bail!("an HTTP drain has no client");
                };
                let lines = batch.iter().map(|entry| &entry.line);
                let body = syslog::batch_body(&self.spec.token, lines);
                let mut request = http.post(url).body(body);
                for (name, value) in syslog::batch_headers(&self.spec.token, frame_id, batch.len())
                {
                    request = request.header(name, value);
                }
                let response = request.send().await.context("send batch")?;
                if !response.status().is_success() {
                    bail!("drain answered {}", response.status());
                }
                Ok(())
            }
            DrainTarget::Syslog { .. } => {
                let mut out = Vec::new();
                for entry in batch {
                    syslog::push_frame(&mut out, &self.spec.token, &entry.line);
                }
                if self.connection.is_none() {
                    self.connection = Some(self.connect().await?);
                }
                let connection = self
                    .connection
                    .as_mut()
                    .expect("a connection was just made");
                tokio::time::timeout(DELIVERY_TIMEOUT, async {
                    connection.write_all(&out).await?;
                    connection.flush().await
                })
                .await
                .context("write timed out")?
                .context("write frames")
            }
        }
    }

    async fn connect(&self) -> anyhow::Result<Connection> {
        let DrainTarget::Syslog { host, port, tls } = &self.target else {
            bail!("only syslog drains hold a connection");
        };
        let tcp = tokio::time::timeout(DELIVERY_TIMEOUT, async {
            let addresses = resolve_checked(host, *port, &self.policy).await?;
            connect_any(&addresses).await
        })
        .await
        .context("connect timed out")?
        .with_context(|| format!("connect to {host}:{port}"))?;
        tcp.set_nodelay(true).ok();
        if !tls {
            return Ok(Box::new(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .with_context(|| format!("{host:?} is not a TLS server name"))?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let stream = tokio::time::timeout(DELIVERY_TIMEOUT, connector.connect(name, tcp))
            .await
            .context("TLS handshake timed out")?
            .context("TLS handshake")?;
        Ok(Box::new(stream))
    }
}

/// A TCP connection to the first of `addresses` that accepts (they were checked together).
async fn connect_any(addresses: &[SocketAddr]) -> anyhow::Result<tokio::net::TcpStream> {
    let mut last = None;
    for address in addresses {
        match tokio::net::TcpStream::connect(address).await {
            Ok(tcp) => return Ok(tcp),
            Err(error) => last = Some(anyhow::Error::from(error).context(address.to_string())),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no address to connect to")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_drain_urls() {
        let check = |url: &str, expected: Result<DrainTarget, &str>| {
            let parsed = DrainTarget::parse(url).map_err(|e| e.to_string());
            match expected {
                Ok(target) => assert_eq!(parsed, Ok(target), "{url}"),
                Err(part) => {
                    let error = parsed.expect_err(url);
                    assert!(error.contains(part), "{url}: {error}");
                }
            }
        };
        let syslog = |host: &str, port, tls| DrainTarget::Syslog {
            host: host.to_owned(),
            port,
            tls,
        };
        check(
            "syslog://logs.example.com:514",
            Ok(syslog("logs.example.com", 514, false)),
        );
        check(
            "syslog+tls://127.0.0.1:6514",
            Ok(syslog("127.0.0.1", 6514, true)),
        );
        check("syslog://[::1]:514", Ok(syslog("::1", 514, false)));
        check(
            "https://user:pass@example.com/logs?x=1",
            Ok(DrainTarget::Http {
                url: "https://user:pass@example.com/logs?x=1".to_owned(),
                host: "example.com".to_owned(),
                port: 443,
            }),
        );
        check(
            "http://[::1]:8080/",
            Ok(DrainTarget::Http {
                url: "http://[::1]:8080/".to_owned(),
                host: "::1".to_owned(),
                port: 8080,
            }),
        );
        // An address in another spelling is read as the address.
        check(
            "http://2130706433/",
            Ok(DrainTarget::Http {
                url: "http://2130706433/".to_owned(),
                host: "127.0.0.1".to_owned(),
                port: 80,
            }),
        );
        check("syslog://example.com", Err("no port"));
        check("ftp://example.com:21", Err("not ftp://"));
        check("example.com:514", Err("names no host"));
        check("not a url", Err("not a URL"));
    }

    #[test]
    fn full_queue_drops_its_oldest_and_counts() {
        let queue = DrainQueue::new(2);
        for seq in 1..=5 {
            let mut line = LogLine::now(LogSource::App, "web.1", seq.to_string());
            line.at = datetime!(2026-11-22 10:00:00 UTC) + Duration::from_secs(seq);
            queue.push(Arc::new(Entry { seq, line }));
        }
        let kept: Vec<u64> = queue.take(10).iter().map(|e| e.seq).collect();
        assert_eq!(kept, [4, 5]);
        let (dropped, since) = queue.take_dropped().unwrap();
        assert_eq!(dropped, 3);
        let mut line = overflow_line(dropped, since);
        line.at = datetime!(2026-11-22 10:00:09.5 UTC);
        expect_test::expect!["2026-11-22T10:00:09.500000+00:00 heroku[logplex]: Error L10 (output buffer overflow): 3 messages dropped since 2026-11-22T10:00:01.000000+00:00"]
            .assert_eq(&line.to_string());
        assert!(queue.take_dropped().is_none());
    }

    #[tokio::test]
    async fn a_refused_drain_says_why_in_the_apps_log() {
        // DNS now answers loopback for the drain's host.
        let policy = Policy::default().with_hosts([(
            "logs.example.com".to_owned(),
            vec![IpAddr::from([127, 0, 0, 1])],
        )]);
        let refused = resolve_checked("logs.example.com", 514, &policy)
            .await
            .unwrap_err();
        let mut line = refused_line("d.1f0c", &refused);
        line.at = datetime!(2026-11-22 10:00:09.5 UTC);
        expect_test::expect![[r#"2026-11-22T10:00:09.500000+00:00 heroku[logplex]: Error (drain refused): drain d.1f0c: host "logs.example.com" resolves to 127.0.0.1, a loopback address of this server: drains must point at hosts outside this server and its internal networks"#]]
            .assert_eq(&line.to_string());
    }
}
