//! The rendezvous: where `wharf run` (and Heroku's `heroku run`) attach to a one-off dyno, as
//! Heroku's rendezvous protocol has it. A TLS listener of its own; the client sends the secret
//! of its `attach_url` (`rendezvous://host:port/<secret>`) as one line, gets `rendezvous\r\n`
//! back as a write of its own, and from then on the connection carries the dyno's stdin one
//! way and its output the other. When the process exits the server sends Heroku's exit marker
//! line (`\u{FFFF} heroku-command-exit-status: N`) and closes the connection.
//!
//! Secrets are single use and expire after [`SECRET_LIFETIME`]; an unattached dyno is removed
//! when its secret expires. A wrong, expired or reused secret gets the connection closed at
//! once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use wharf_dynos::{serve_attached, AttachHandle};

/// How long an `attach_url` may wait for its client.
pub const SECRET_LIFETIME: Duration = Duration::from_secs(60);
pub use wharf_dynos::{exit_line, EXIT_MARKER, GREETING, GREETING_PAUSE};
/// How long a client has for the TLS handshake and its secret line.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest secret line read (secrets are 48 hex digits).
const SECRET_LINE_LIMIT: u64 = 256;

/// A client's connection, after its secret line (what it sent after it is still buffered).
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A client's connection handed over for a one-off dyno on another host.
pub type ClientStream = Box<dyn Duplex>;

/// What a secret leads to.
enum Waiting {
    /// A one-off dyno of this server's: the client is attached to it here.
    Local(AttachHandle),
    /// A one-off dyno on a host: the client's connection goes to that host's agent, which
    /// attaches it there (`GET /agent/one-offs/{id}/attach`).
    Remote(oneshot::Sender<ClientStream>),
}

/// One-off dynos waiting for their client, by secret. Cheap to clone.
#[derive(Clone, Default)]
pub struct Rendezvous {
    waiting: Arc<Mutex<Secrets<Waiting>>>,
}

impl Rendezvous {
    /// Keeps `handle` for the client that brings the returned secret within
    /// [`SECRET_LIFETIME`]; after that the handle is dropped (and the dyno with it).
    pub fn offer(&self, handle: AttachHandle) -> String {
        self.wait_for(Waiting::Local(handle))
    }

    /// A secret for a one-off dyno on another host: the client that brings it within
    /// [`SECRET_LIFETIME`] has its connection sent on the returned channel.
    pub fn offer_remote(&self) -> (String, oneshot::Receiver<ClientStream>) {
        let (sender, receiver) = oneshot::channel();
        (self.wait_for(Waiting::Remote(sender)), receiver)
    }

    fn wait_for(&self, waiting: Waiting) -> String {
        let secret = crate::random_token();
        let now = Instant::now();
        self.lock().insert(secret.clone(), waiting, now);
        let expiring = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(now + SECRET_LIFETIME).await;
            let expired = expiring.lock().expire(Instant::now());
            drop(expired);
        });
        secret
    }

    fn take(&self, secret: &str) -> Option<Waiting> {
        self.lock().take(secret, Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Secrets<Waiting>> {
        self.waiting.lock().expect("rendezvous lock poisoned")
    }
}

/// Single-use secrets with a deadline; pure (time is passed in).
pub(crate) struct Secrets<T> {
    entries: HashMap<String, (T, Instant)>,
}

impl<T> Default for Secrets<T> {
    fn default() -> Self {
        Secrets {
            entries: HashMap::new(),
        }
    }
}

impl<T> Secrets<T> {
    pub fn insert(&mut self, secret: String, value: T, now: Instant) {
        self.entries.insert(secret, (value, now + SECRET_LIFETIME));
    }

    /// The value of a live secret, which is used up by this.
    pub fn take(&mut self, secret: &str, now: Instant) -> Option<T> {
        let (value, expires) = self.entries.remove(secret)?;
        (now < expires).then_some(value)
    }

    /// Removes and returns the expired entries.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, (_, expires))| now >= *expires)
            .map(|(secret, _)| secret.clone())
            .collect();
        expired
            .iter()
            .filter_map(|secret| self.entries.remove(secret))
            .map(|(value, _)| value)
            .collect()
    }
}

/// Accepts rendezvous connections on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    rendezvous: Rendezvous,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (socket, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("rendezvous: accept: {error}");
                    continue;
                }
            },
        };
        let (acceptor, rendezvous) = (acceptor.clone(), rendezvous.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                let stream = acceptor.accept(socket).await?;
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                (&mut stream)
                    .take(SECRET_LINE_LIMIT)
                    .read_line(&mut line)
                    .await?;
                std::io::Result::Ok((stream, line))
            })
            .await;
            let (stream, line) = match handshake {
                Ok(Ok(connected)) => connected,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, "rendezvous: handshake: {error}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "rendezvous: no secret in time");
                    return;
                }
            };
            match rendezvous.take(line.trim_end_matches(['\r', '\n'])) {
                None => tracing::info!(%peer, "rendezvous: unknown, expired or used secret"),
                Some(Waiting::Local(handle)) => {
                    if let Err(error) = serve_attached(stream, handle).await {
                        tracing::debug!(%peer, "rendezvous: connection ended: {error}");
                    }
                }
                // The host's agent greets the client and runs the dyno; a host that never
                // came for it (gone meanwhile) has the connection closed.
                Some(Waiting::Remote(host)) => {
                    let _ = host.send(Box::new(stream));
                }
            }
        });
    }
}

/// `rendezvous://<host>:<port>/<secret>` for an API at `public_url`.
pub fn attach_url(public_url: &str, port: u16, secret: &str) -> String {
    format!("rendezvous://{}:{port}/{secret}", host_of(public_url))
}

/// The host of a URL (`http://[::1]:5000/x` gives `[::1]`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_single_use_and_expire() {
        let start = Instant::now();
        let mut secrets = Secrets::default();
        secrets.insert("a".into(), 1, start);
        secrets.insert("b".into(), 2, start);
        secrets.insert("c".into(), 3, start);
        assert_eq!(secrets.take("a", start + Duration::from_secs(1)), Some(1));
        assert_eq!(secrets.take("a", start + Duration::from_secs(1)), None);
        assert_eq!(secrets.take("nope", start), None);
        assert_eq!(secrets.take("b", start + SECRET_LIFETIME), None);
        assert_eq!(
            secrets.expire(start + SECRET_LIFETIME - Duration::from_millis(1)),
            Vec::<i32>::new()
        );
        assert_eq!(secrets.expire(start + SECRET_LIFETIME), [3]);
        assert_eq!(secrets.take("c", start), None);
    }

    #[test]
    fn attach_urls() {
        assert_eq!(
            attach_url("http://127.0.0.1:5000", 5001, "s3"),
            "rendezvous://127.0.0.1:5001/s3"
        );
        assert_eq!(
            attach_url("https://wharf.example.com/", 443, "x"),
            "rendezvous://wharf.example.com:443/x"
        );
        assert_eq!(
            attach_url("http://[::1]:5000", 5001, "x"),
            "rendezvous://[::1]:5001/x"
        );
    }

    #[test]
    fn exit_line_is_herokus_marker() {
        assert_eq!(exit_line(3), "\u{FFFF} heroku-command-exit-status: 3\n");
    }
}
