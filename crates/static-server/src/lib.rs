//! Wharf's static file server: what `wharf static-server` runs in the dynos of apps built with
//! the static buildpack. It reads `static.json` (the subset of Heroku's static buildpack in
//! [`StaticConfig`]) and serves the document root over HTTP/1.1.
//!
//! Invariants:
//! - Nothing outside the document root is ever served: paths with `.`/`..` segments,
//!   backslashes or NULs are refused, and every file is resolved through its symlinks and
//!   checked to lie inside the (canonical) root. Dot files and directories other than
//!   `/.well-known/` are never served (the app directory holds the build's `.profile.d`,
//!   `.heroku`, ...).
//! - Memory per response is bounded: files up to 64 KiB are read in one go, larger ones are
//!   streamed in 64 KiB chunks.
//! - A request's blocking file system work (resolve, open, read a small file) is one trip to
//!   tokio's blocking pool.
//! - Only `GET` and `HEAD` are answered with content; `HEAD` sends the same headers as `GET`.

mod conditional;
mod config;
mod glob;
mod mime;
mod request_path;
mod resolve;
mod respond;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

pub use config::{load_config, Redirect, StaticConfig, CONFIG_FILE};

/// How long a client may take to send a request's headers before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for requests in flight before it drops their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (out of file descriptors, say) before the next one.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the site in `app_dir` (the directory holding `static.json`, `/app` in a dyno) on
/// `listener` until `shutdown` completes, then lets requests in flight finish (up to
/// 10 s). Fails before serving anything when `static.json` is invalid.
pub async fn serve(
    app_dir: &Path,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = load_config(app_dir)?;
    serve_config(config, listener, shutdown).await;
    Ok(())
}

/// Serves an already loaded configuration; see [`serve`].
pub async fn serve_config(
    config: StaticConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept connection");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        // Responses are written in one go or streamed in large chunks: no need for Nagle.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "set TCP_NODELAY");
        }
        let config = config.clone();
        let service = service_fn(move |request| respond::handle(config.clone(), request));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after {SHUTDOWN_GRACE:?}; closing their connections"
        );
    }
}
