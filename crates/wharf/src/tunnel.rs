//! `wharf tunnel`: makes a Wharf server on another machine reachable at `127.0.0.1`, the only
//! kind of host Heroku's CLI sends its token to (any other makes it fall back to Heroku's own
//! API). A plain TCP forwarder from a loopback port to the server's API TLS listener: TLS runs
//! end to end between the client and the server, whose certificate names `127.0.0.1` too, so
//! the tunnel never sees a token. The API, git pushes (`https://127.0.0.1:PORT/<app>.git`) and
//! everything else on that listener go through it; log streams and `run`'s rendezvous use the
//! URLs the server hands out, which the CLI does not restrict.

use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

/// After a failed accept (out of file descriptors, say), wait this long before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

#[derive(clap::Args, Debug, Clone)]
pub struct TunnelArgs {
    /// The server's API TLS listener, as host:port (its WHARF_API_TLS_LISTEN port)
    pub server: String,
    /// Where the tunnel listens: use this address in HEROKU_HOST (`wharf heroku-env
    /// --api-tls-listen` takes it)
    #[arg(long, default_value = "127.0.0.1:5443")]
    pub listen: String,
}

pub async fn run(args: TunnelArgs) -> anyhow::Result<()> {
    let mut signals = crate::server::ShutdownSignals::listen()?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let address = listener.local_addr().context("read the tunnel's address")?;
    println!(
        "wharf: tunnel listening on {address}, forwarding to {}",
        args.server
    );
    let server = args.server;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            signal = signals.recv() => {
                eprintln!("wharf tunnel: stopping on {signal}");
                return Ok(());
            }
        };
        let (mut client, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("wharf tunnel: accept: {error}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let forwarded = async {
                let mut upstream = TcpStream::connect(&server)
                    .await
                    .with_context(|| format!("connect to {server}"))?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream)
                    .await
                    .context("forward")
            };
            if let Err(error) = forwarded.await {
                eprintln!("wharf tunnel: {peer}: {error:#}");
            }
        });
    }
}
