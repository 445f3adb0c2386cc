//! Keep-alive HTTP/1.1 connections to dynos, pooled per dyno address. The router opens
//! connections itself (rather than through a generic client) to time the connect for the
//! router line, to tell a refused connection (H21) from a slow one (H19), and to get a request
//! back when a pooled connection closed before it was sent.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::ForwardBody;
use crate::error::{DynoError, PlatformError, RouterError};

pub type Sender = http1::SendRequest<ForwardBody>;

/// Idle connections kept per dyno; more are closed. High enough that a busy dyno never sees
/// its connections churn (each idle one holds a few KiB of buffers).
pub const MAX_IDLE_PER_DYNO: usize = 512;

/// An idle connection older than this is closed rather than used: servers close idle
/// keep-alive connections too, and one closed just as a request is written fails it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a finished response's connection may take to be ready for the next request
/// before it is dropped instead of pooled.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// Why no connection to a dyno could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timed out")]
    Timeout,
    #[error("connect: {0}")]
    Failed(#[from] io::Error),
    #[error("handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

impl ConnectError {
    /// H19 for a timeout, H21 when the connection failed (refused, reset, unreachable: the
    /// dyno is not listening), H99 when the router could not set up HTTP on it.
    pub fn router_error(&self) -> RouterError {
        match self {
            ConnectError::Timeout => DynoError::ConnectTimeout.into(),
            ConnectError::Failed(_) => DynoError::ConnectRefused.into(),
            ConnectError::Handshake(_) => PlatformError::Internal.into(),
        }
    }
}

/// Idle connections by router thread and dyno address: a connection's task runs on the
/// thread that opened it, so a request sent on it from another thread would cost two
/// cross-thread wake-ups. Cheap to clone.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<IdleConnections>>,
}

/// Idle connections by the router thread that opened them and the dyno they go to.
type IdleConnections = HashMap<(ThreadId, SocketAddr), Vec<Idle>>;

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Pool {
    /// The most recently used idle connection to `addr` that is still open and ready.
    pub fn take(&self, addr: SocketAddr) -> Option<Sender> {
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        let list = idle.get_mut(&(std::thread::current().id(), addr))?;
        while let Some(conn) = list.pop() {
            if conn.sender.is_ready() && conn.since.elapsed() < POOL_IDLE_TIMEOUT {
                return Some(conn.sender);
            }
        }
        None
    }

    /// Opens a new connection to `addr` within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Sender, ConnectError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        // Small writes (headers, chunks) go out at once.
        stream.set_nodelay(true)?;
        // As the router's side to clients: the head and body in one buffer, one write(2).
        let (sender, connection) = http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%addr, %error, "dyno connection ended");
            }
        });
        Ok(sender)
    }

    /// Gives back a connection whose response ended, once it is ready for another request.
    pub fn put(&self, addr: SocketAddr, mut sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if sender.is_ready() {
            self.insert(addr, sender);
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(READY_TIMEOUT, sender.ready()).await {
                pool.insert(addr, sender);
            }
        });
    }

    fn insert(&self, addr: SocketAddr, sender: Sender) {
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        let list = idle.entry((std::thread::current().id(), addr)).or_default();
        if list.len() >= MAX_IDLE_PER_DYNO {
            list.remove(0);
        }
        list.push(Idle {
            sender,
            since: Instant::now(),
        });
    }

    /// Closes the idle connections to dynos that are no longer routed to.
    pub fn retain(&self, routed: impl Fn(&SocketAddr) -> bool) {
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        idle.retain(|(_, addr), _| routed(addr));
    }

    /// Idle connections to `addr` (for tests).
    pub fn idle_count(&self, addr: SocketAddr) -> usize {
        let idle = self.idle.lock().expect("pool lock poisoned");
        idle.iter()
            .filter(|((_, a), _)| *a == addr)
            .map(|(_, list)| list.len())
            .sum()
    }
}
