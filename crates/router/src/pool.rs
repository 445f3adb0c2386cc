//! Keep-alive HTTP/1.1 connections to dynos, pooled per router thread and dyno address. The
//! router opens connections itself to time the connect for the router line and to tell a
//! refused connection (H21) from a slow one (H19).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::FxBuildHasher;
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
/// with the event loop of the thread that opened it, so it is used on that thread only. Each
/// thread has its own part (its lock is only contended when dynos leave the route table).
/// Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    threads: Arc<[Mutex<IdleConnections>]>,
}

/// One router thread's idle connections, by the dyno they go to.
type IdleConnections = HashMap<SocketAddr, Vec<Idle>, FxBuildHasher>;

struct Idle {
    conn: DynoConnection,
    since: Instant,
}

impl Pool {
    /// An empty pool for `threads` router threads (numbered from 0).
    pub fn new(threads: usize) -> Pool {
        Pool {
            threads: (0..threads.max(1))
                .map(|_| Mutex::new(IdleConnections::default()))
                .collect(),
        }
    }

    fn thread(&self, thread: usize) -> std::sync::MutexGuard<'_, IdleConnections> {
        self.threads[thread].lock().expect("pool lock poisoned")
    }

    /// The most recently used idle connection to `addr` that router thread `thread` opened
    /// and that is still open.
    pub fn take(&self, thread: usize, addr: SocketAddr) -> Option<DynoConnection> {
        let mut idle = self.thread(thread);
        let list = idle.get_mut(&addr)?;
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

    /// Gives back a connection that router thread `thread` opened, once its response ended.
    pub fn put(&self, thread: usize, addr: SocketAddr, conn: DynoConnection) {
        let mut idle = self.thread(thread);
        let list = idle.entry(addr).or_default();
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
        for thread in 0..self.threads.len() {
            self.thread(thread).retain(|addr, _| routed(addr));
        }
    }
}
