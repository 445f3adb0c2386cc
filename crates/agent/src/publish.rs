//! Publishing web dynos to the routers: each up web dyno of the host gets a port of its own on
//! the host's address, where the agent relays each connection to the dyno (its address on the
//! host's dyno network, which nothing outside the host reaches).
//!
//! Only routers may connect: the control plane's addresses, this host's, and those of the
//! hosts that joined (the control plane's route table names them). Any other peer is
//! closed at once, so a dyno is reached through a router alone (its H-codes, maintenance
//! mode, headers), as on a single host. Dynos themselves never connect from a host's address
//! to another host: the dyno network refuses them the LAN unless the operator allows it. The relay is the host's own connection to the dyno, which the dyno network's
//! firewall lets through like the router's on a single host; no rule opens a container.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How recently bytes went through to a dyno for it to count as still serving: a stopping
/// dyno gets SIGTERM once it is unpublished and this long passed without traffic (an idle
/// connection the router keeps open for later requests does not hold it back).
pub const QUIET: Duration = Duration::from_millis(300);

/// How long a dyno stays published after it left the host's route table (it stops, or moves
/// to another host): routers still send it requests until the host's next heartbeat and the
/// control plane's next read of the table, each up to a second, and the hosts' routers until
/// the new table reaches them.
pub const UNPUBLISH_DELAY: Duration = Duration::from_secs(3);

/// Published ports unless `WHARF_PUBLISH_PORTS` says otherwise.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 20_000..=29_999;

/// One published dyno.
struct Published {
    port: u16,
    task: JoinHandle<()>,
    /// Since when it is no longer wanted; it goes [`UNPUBLISH_DELAY`] later.
    leaving: Option<Instant>,
}

/// The host's published dynos.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    /// The host's address, where published ports listen.
    bind: IpAddr,
    ports: RangeInclusive<u16>,
    /// Who may connect: the control plane's addresses, this host's own (its router) ...
    peers: HashSet<IpAddr>,
    /// ... and the other hosts that joined (their routers), as the control plane says.
    hosts: Mutex<HashSet<IpAddr>>,
    /// Dyno address to its published port and the task accepting there.
    published: Mutex<HashMap<SocketAddr, Published>>,
    /// Dyno address to when bytes last went through to or from it (milliseconds since
    /// `started`), for as long as a relayed connection to it lives.
    activity: Mutex<HashMap<SocketAddr, Arc<AtomicU64>>>,
    started: Instant,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let published = self.published.get_mut().expect("published poisoned");
        for (_, published) in published.drain() {
            published.task.abort();
        }
    }
}

impl Publisher {
    /// Publishes on `bind` (the host's address), at ports of `ports`, to the control plane at
    /// `control_plane` and this host's router.
    pub fn new(
        bind: IpAddr,
        ports: RangeInclusive<u16>,
        control_plane: HashSet<IpAddr>,
    ) -> Publisher {
        let mut peers = control_plane;
        peers.insert(bind);
        Publisher {
            inner: Arc::new(Inner {
                bind,
                ports,
                peers,
                hosts: Mutex::new(HashSet::new()),
                published: Mutex::new(HashMap::new()),
                activity: Mutex::new(HashMap::new()),
                started: Instant::now(),
            }),
        }
    }

    /// The hosts whose routers may connect besides the control plane's and this host's:
    /// `hosts` replaces the last list.
    pub fn set_hosts(&self, hosts: HashSet<IpAddr>) {
        *self.inner.hosts.lock().expect("hosts poisoned") = hosts;
    }

    /// Where the router reaches the dyno at `dyno`, if it is published.
    pub fn published(&self, dyno: SocketAddr) -> Option<SocketAddr> {
        let published = self.inner.published.lock().expect("published poisoned");
        published
            .get(&dyno)
            .map(|published| SocketAddr::new(self.inner.bind, published.port))
    }

    /// Whether requests may still reach the dyno at `dyno` (the dyno manager's traffic probe,
    /// so that a stopping web dyno gets SIGTERM only once none can): it is published, or bytes
    /// went through to it within [`QUIET`].
    pub fn busy(&self, dyno: SocketAddr) -> bool {
        if self.published(dyno).is_some() {
            return true;
        }
        let activity = self.inner.activity.lock().expect("activity poisoned");
        activity.get(&dyno).is_some_and(|last| {
            let now = self.inner.elapsed_ms();
            now.saturating_sub(last.load(Ordering::Relaxed)) < QUIET.as_millis() as u64
        })
    }

    /// Publishes the dynos at `wanted`: new ones get a port; one no longer wanted keeps its
    /// port [`UNPUBLISH_DELAY`] more (requests the router already sends it are served), then
    /// loses it (connections in flight to it run on until they end). Call it again at least
    /// every few hundred milliseconds for the delayed ones to go.
    pub async fn sync(&self, wanted: &HashSet<SocketAddr>) {
        let now = Instant::now();
        let missing: Vec<SocketAddr> = {
            let mut published = self.inner.published.lock().expect("published poisoned");
            published.retain(|dyno, entry| {
                if wanted.contains(dyno) {
                    entry.leaving = None;
                    return true;
                }
                let since = *entry.leaving.get_or_insert(now);
                let keep = now.duration_since(since) < UNPUBLISH_DELAY;
                if !keep {
                    entry.task.abort();
                }
                keep
            });
            wanted
                .iter()
                .filter(|dyno| !published.contains_key(dyno))
                .copied()
                .collect()
        };
        {
            // Forget the traffic of dynos long gone.
            let published = self.inner.published.lock().expect("published poisoned");
            let elapsed = self.inner.elapsed_ms();
            self.inner
                .activity
                .lock()
                .expect("activity poisoned")
                .retain(|dyno, last| {
                    published.contains_key(dyno)
                        || elapsed.saturating_sub(last.load(Ordering::Relaxed))
                            < QUIET.as_millis() as u64
                });
        }
        for dyno in missing {
            match self.listen().await {
                Ok(listener) => {
                    let port = listener.local_addr().map_or(0, |address| address.port());
                    let task = tokio::spawn(relay(listener, dyno, self.inner.clone()));
                    self.inner
                        .published
                        .lock()
                        .expect("published poisoned")
                        .insert(
                            dyno,
                            Published {
                                port,
                                task,
                                leaving: None,
                            },
                        );
                }
                Err(error) => tracing::warn!(%dyno, "publish a web dyno: {error:#}"),
            }
        }
    }

    /// A listener on the first free port of the range.
    async fn listen(&self) -> anyhow::Result<TcpListener> {
        let taken: HashSet<u16> = self
            .inner
            .published
            .lock()
            .expect("published poisoned")
            .values()
            .map(|published| published.port)
            .collect();
        for port in self
            .inner
            .ports
            .clone()
            .filter(|port| !taken.contains(port))
        {
            if let Ok(listener) = TcpListener::bind((self.inner.bind, port)).await {
                return Ok(listener);
            }
        }
        anyhow::bail!(
            "every port of {}-{} on {} is taken: give WHARF_PUBLISH_PORTS a larger range",
            self.inner.ports.start(),
            self.inner.ports.end(),
            self.inner.bind
        )
    }
}

impl Inner {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether `peer` is a router's address.
    fn allowed(&self, peer: IpAddr) -> bool {
        self.peers.contains(&peer) || self.hosts.lock().expect("hosts poisoned").contains(&peer)
    }

    /// The activity clock of `dyno`'s relayed connections.
    fn activity(&self, dyno: SocketAddr) -> Arc<AtomicU64> {
        self.activity
            .lock()
            .expect("activity poisoned")
            .entry(dyno)
            .or_default()
            .clone()
    }
}

/// Accepts on `listener` for as long as the dyno is published, relaying each connection of an
/// allowed peer to `dyno`.
async fn relay(listener: TcpListener, dyno: SocketAddr, inner: Arc<Inner>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(%dyno, "accept a connection for a published dyno: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if !inner.allowed(peer.ip()) {
            // Not a router: closed unanswered.
            drop(client);
            continue;
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            if let Err(error) = forward(client, dyno, &inner).await {
                tracing::debug!(%dyno, "relay a connection: {error:#}");
            }
        });
    }
}

async fn forward(client: TcpStream, dyno: SocketAddr, inner: &Arc<Inner>) -> anyhow::Result<()> {
    let upstream = TcpStream::connect(dyno)
        .await
        .with_context(|| format!("connect to {dyno}"))?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let activity = inner.activity(dyno);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let clock = || inner.elapsed_ms();
    // Each direction until its end, then its write half shut: as `copy_bidirectional`, with
    // the time of every chunk noted.
    let (to_dyno, from_dyno) = tokio::join!(
        pipe(client_read, upstream_write, &activity, &clock),
        pipe(upstream_read, client_write, &activity, &clock),
    );
    to_dyno.and(from_dyno)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    activity: &AtomicU64,
    clock: &impl Fn() -> u64,
) -> anyhow::Result<()> {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        activity.store(clock(), Ordering::Relaxed);
        if read == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buffer[..read]).await?;
    }
}

/// `LOW-HIGH` as a port range.
pub fn parse_ports(text: &str) -> anyhow::Result<RangeInclusive<u16>> {
    let (low, high) = text
        .split_once('-')
        .with_context(|| format!("{text:?} is not a port range: write LOW-HIGH (20000-29999)"))?;
    let parse = |part: &str| {
        part.trim()
            .parse::<u16>()
            .with_context(|| format!("{part:?} in {text:?} is not a port"))
    };
    let (low, high) = (parse(low)?, parse(high)?);
    anyhow::ensure!(
        0 < low && low <= high,
        "{text:?} is not a port range: LOW must be at least 1 and at most HIGH"
    );
    Ok(low..=high)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn port_ranges_parse_or_say_why_not() {
        assert_eq!(parse_ports("20000-29999").unwrap(), 20_000..=29_999);
        assert_eq!(parse_ports("5-5").unwrap(), 5..=5);
        for bad in ["", "20000", "2-1", "0-10", "a-b", "1-70000"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }

    /// A dyno stand-in that answers `hello` to every connection.
    async fn dyno() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"hello").await;
            }
        });
        address
    }

    async fn read(address: SocketAddr) -> Vec<u8> {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got).await;
        got
    }

    #[tokio::test]
    async fn published_dynos_relay_to_allowed_peers_only() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (first, second) = (dyno().await, dyno().await);
        let publisher = Publisher::new(loopback, 20_000..=29_999, [loopback].into());
        publisher.sync(&[first, second].into()).await;
        let (a, b) = (
            publisher.published(first).unwrap(),
            publisher.published(second).unwrap(),
        );
        assert_ne!(a.port(), b.port());
        assert_eq!(read(a).await, b"hello");
        assert!(publisher.busy(first), "published: requests may come");
        // No longer wanted: it stays published a while (the router may still send it
        // requests), then its port goes, and once its traffic is a while past, it is idle.
        publisher.sync(&[second].into()).await;
        assert_eq!(read(a).await, b"hello");
        tokio::time::sleep(UNPUBLISH_DELAY).await;
        publisher.sync(&[second].into()).await;
        assert_eq!(publisher.published(first), None);
        assert!(TcpStream::connect(a).await.is_err());
        tokio::time::sleep(QUIET).await;
        assert!(!publisher.busy(first));
        assert!(publisher.busy(second));
        assert_eq!(read(b).await, b"hello");

        // A publisher on 127.0.0.2 that allows another control plane closes our connections
        // (from 127.0.0.1) unanswered, until the control plane names our address as a host's.
        let strict = Publisher::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            30_000..=30_099,
            [IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))].into(),
        );
        strict.sync(&[first].into()).await;
        let published = strict.published(first).unwrap();
        assert_eq!(read(published).await, b"");
        strict.set_hosts([loopback].into());
        assert_eq!(read(published).await, b"hello");
        strict.set_hosts(HashSet::new());
        assert_eq!(read(published).await, b"");
    }
}
