//! The API over TLS: a listener that hands axum only connections whose TLS handshake is done,
//! so that the same router (API and git smart HTTP) serves `https://` as it serves `http://`.
//! Heroku's CLI needs this: it always pushes to `https://<api host>/<app>.git`.
//!
//! Handshakes run side by side (a slow or silent client holds up no other) and each has
//! [`HANDSHAKE_TIMEOUT`]; a failed one is logged at debug level and forgotten.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (out of file descriptors, say), wait this long before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// TCP connections in, TLS streams out (an [`axum::serve::Listener`]).
pub struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    /// Accepts on `listener` with `config`'s certificate. The API speaks HTTP/1.1 only, so
    /// ALPN offers just that whatever `config` offers.
    pub fn new(listener: TcpListener, config: &ServerConfig) -> TlsListener {
        let mut config = config.clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsListener {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshakes: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        self.handshakes.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => Some((stream, peer)),
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "API TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "API TLS handshake timed out");
                    None
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.start_handshake(stream, peer),
                    Err(error) => {
                        tracing::warn!(%error, "API (TLS): accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connected)) = done {
                        return connected;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}
