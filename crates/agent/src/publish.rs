//! Publishing web dynos to the control plane's router: each up web dyno of the host gets a
//! port of its own on the host's address, where the agent relays each connection to the dyno
//! (its address on the host's dyno network, which nothing outside the host reaches).
//!
//! Only the control plane's addresses may connect: any other peer is closed at once, so a
//! dyno is reached through the router alone (its H-codes, maintenance mode, headers), as on a
//! single host. The relay is the host's own connection to the dyno, which the dyno network's
//! firewall lets through like the router's on a single host; no rule opens a container.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Published ports unless `WHARF_PUBLISH_PORTS` says otherwise.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 20_000..=29_999;

/// The host's published dynos.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    /// The host's address, where published ports listen.
    bind: IpAddr,
    ports: RangeInclusive<u16>,
    /// Who may connect: the control plane's addresses.
    peers: HashSet<IpAddr>,
    /// Dyno address to its published port and the task accepting there.
    published: Mutex<HashMap<SocketAddr, (u16, JoinHandle<()>)>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let published = self.published.get_mut().expect("published poisoned");
        for (_, (_, task)) in published.drain() {
            task.abort();
        }
    }
}

impl Publisher {
    pub fn new(bind: IpAddr, ports: RangeInclusive<u16>, peers: HashSet<IpAddr>) -> Publisher {
        Publisher {
            inner: Arc::new(Inner {
                bind,
                ports,
                peers,
                published: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Where the router reaches the dyno at `dyno`, if it is published.
    pub fn published(&self, dyno: SocketAddr) -> Option<SocketAddr> {
        let published = self.inner.published.lock().expect("published poisoned");
        published
            .get(&dyno)
            .map(|(port, _)| SocketAddr::new(self.inner.bind, *port))
    }

    /// Publishes exactly the dynos at `wanted`: new ones get a port, gone ones lose theirs
    /// (connections in flight to them run on until they end).
    pub async fn sync(&self, wanted: &HashSet<SocketAddr>) {
        let (gone, missing): (Vec<SocketAddr>, Vec<SocketAddr>) = {
            let published = self.inner.published.lock().expect("published poisoned");
            (
                published
                    .keys()
                    .filter(|dyno| !wanted.contains(dyno))
                    .copied()
                    .collect(),
                wanted
                    .iter()
                    .filter(|dyno| !published.contains_key(dyno))
                    .copied()
                    .collect(),
            )
        };
        for dyno in gone {
            let removed = self
                .inner
                .published
                .lock()
                .expect("published poisoned")
                .remove(&dyno);
            if let Some((_, task)) = removed {
                task.abort();
            }
        }
        for dyno in missing {
            match self.listen().await {
                Ok(listener) => {
                    let port = listener.local_addr().map_or(0, |address| address.port());
                    let task = tokio::spawn(relay(listener, dyno, self.inner.peers.clone()));
                    self.inner
                        .published
                        .lock()
                        .expect("published poisoned")
                        .insert(dyno, (port, task));
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
            .map(|(port, _)| *port)
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

/// Accepts on `listener` for as long as the dyno is published, relaying each connection of an
/// allowed peer to `dyno`.
async fn relay(listener: TcpListener, dyno: SocketAddr, peers: HashSet<IpAddr>) {
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
        if !peers.contains(&peer.ip()) {
            // Not the router: closed unanswered.
            drop(client);
            continue;
        }
        tokio::spawn(async move {
            if let Err(error) = forward(client, dyno).await {
                tracing::debug!(%dyno, "relay a connection: {error:#}");
            }
        });
    }
}

async fn forward(mut client: TcpStream, dyno: SocketAddr) -> anyhow::Result<()> {
    let mut upstream = TcpStream::connect(dyno)
        .await
        .with_context(|| format!("connect to {dyno}"))?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
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

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        // Unpublished: its port goes.
        publisher.sync(&[second].into()).await;
        assert_eq!(publisher.published(first), None);
        assert!(TcpStream::connect(a).await.is_err());
        assert_eq!(read(b).await, b"hello");

        // A publisher that allows another peer closes our connections unanswered.
        let strict = Publisher::new(
            loopback,
            30_000..=30_099,
            [IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))].into(),
        );
        strict.sync(&[first].into()).await;
        assert_eq!(read(strict.published(first).unwrap()).await, b"");
    }
}
