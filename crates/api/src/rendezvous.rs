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

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use wharf_dynos::{AttachHandle, Attached};

/// How long an `attach_url` may wait for its client.
pub const SECRET_LIFETIME: Duration = Duration::from_secs(60);
/// The pause after the greeting, so that no output lands in the same TLS record as the
/// greeting (the client throws that whole first chunk away).
pub const GREETING_PAUSE: Duration = Duration::from_millis(300);
/// What the server sends first.
pub const GREETING: &[u8] = b"rendezvous\r\n";
/// Heroku's exit status marker (`heroku run --exit-code` looks for it).
pub const EXIT_MARKER: &str = "\u{FFFF} heroku-command-exit-status: ";
/// How long a client has for the TLS handshake and its secret line.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest secret line read (secrets are 48 hex digits).
const SECRET_LINE_LIMIT: u64 = 256;

/// Attach handles waiting for their client, by secret. Cheap to clone.
#[derive(Clone, Default)]
pub struct Rendezvous {
    waiting: Arc<Mutex<Secrets<AttachHandle>>>,
}

impl Rendezvous {
    /// Keeps `handle` for the client that brings the returned secret within
    /// [`SECRET_LIFETIME`]; after that the handle is dropped (and the dyno with it).
    pub fn offer(&self, handle: AttachHandle) -> String {
        let secret = crate::random_token();
        let now = Instant::now();
        self.lock().insert(secret.clone(), handle, now);
        let waiting = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(now + SECRET_LIFETIME).await;
            let expired = waiting.lock().expire(Instant::now());
            drop(expired);
        });
        secret
    }

    fn take(&self, secret: &str) -> Option<AttachHandle> {
        self.lock().take(secret, Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Secrets<AttachHandle>> {
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
            let Some(handle) = rendezvous.take(line.trim_end_matches(['\r', '\n'])) else {
                tracing::info!(%peer, "rendezvous: unknown, expired or used secret");
                return;
            };
            if let Err(error) = attach(stream, handle).await {
                tracing::debug!(%peer, "rendezvous: connection ended: {error}");
            }
        });
    }
}

/// Greets the client, starts the dyno, and pipes bytes both ways until the process exits.
async fn attach<S>(mut stream: BufReader<S>, handle: AttachHandle) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    stream.write_all(GREETING).await?;
    stream.flush().await?;
    tokio::time::sleep(GREETING_PAUSE).await;
    let Attached {
        input,
        mut output,
        exit,
    } = handle.attach();
    // The buffered reader hands out first what the client sent after its secret line.
    let (mut reader, mut writer) = tokio::io::split(stream);
    let reading = tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input.send(buffer[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let written = async {
        while let Some(chunk) = output.recv().await {
            writer.write_all(&chunk).await?;
            writer.flush().await?;
        }
        if let Ok(code) = exit.await {
            writer.write_all(exit_line(code).as_bytes()).await?;
        }
        writer.flush().await?;
        writer.shutdown().await
    }
    .await;
    reading.abort();
    written
}

/// The last line of an attached run: Heroku's exit marker.
pub fn exit_line(code: i32) -> String {
    format!("{EXIT_MARKER}{code}\n")
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
