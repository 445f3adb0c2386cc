//! Keep-alive HTTP/1.1 connections to dynos, pooled per router thread and dyno address. The
//! router opens connections itself to time the connect for the router line and to tell a
//! refused connection (H21) from a slow one (H19).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::error::{DynoError, RouterError};
use crate::upstream::DynoConnection;

/// Idle connections kept per dyno; more are closed. High enough that a busy dyno never sees
/// its connections churn (each idle one holds a few KiB of buffers).
pub const MAX_IDLE_PER_DYNO: usize = 512;

/// An idle connection older than this is closed rather than used: servers close idle
/// keep-alive connections too, and one closed just as a request is written fails it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no connection to a dyno could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timed out")]
    Timeout,
    #[error("connect: {0}")]
    Failed(#[from] io::Error),
}

impl ConnectError {
    /// H19 for a timeout, H21 when the connection failed (refused, reset, unreachable: the
    /// dyno is not listening).
    pub fn router_error(&self) -> RouterError {
        match self {
            ConnectError::Timeout => DynoError::ConnectTimeout.into(),
            ConnectError::Failed(_) => DynoError::ConnectRefused.into(),
        }
    }
}

/// Idle connections by router thread and dyno address: a connection's socket is registered
/// with the event loop of the thread that opened it, so it is used on that thread only.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<IdleConnections>>,
}

/// Idle connections by the router thread that opened them and the dyno they go to.
type IdleConnections = HashMap<(ThreadId, SocketAddr), Vec<Idle>>;

struct Idle {
    conn: DynoConnection,
    since: Instant,
}

impl Pool {
    /// The most recently used idle connection to `addr` that is still open.
    pub fn take(&self, addr: SocketAddr) -> Option<DynoConnection> {
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        let list = idle.get_mut(&(std::thread::current().id(), addr))?;
        while let Some(idle) = list.pop() {
            if idle.since.elapsed() < POOL_IDLE_TIMEOUT && idle.conn.is_open() {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Opens a new connection to `addr` within `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<DynoConnection, ConnectError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        // Small writes (headers, chunks) go out at once.
        stream.set_nodelay(true)?;
        Ok(DynoConnection::new(stream))
    }

    /// Gives back a connection whose response ended.
    pub fn put(&self, addr: SocketAddr, conn: DynoConnection) {
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        let list = idle.entry((std::thread::current().id(), addr)).or_default();
        if list.len() >= MAX_IDLE_PER_DYNO {
            list.remove(0);
        }
        list.push(Idle {
            conn,
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
