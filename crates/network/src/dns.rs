//! The DNS forwarder containers use: it listens on the gateway address (UDP and TCP port 53)
//! and relays each query to the host's own resolvers, read from the host's
//! `/etc/resolv.conf`. That is how DNS works in a container even when the host's resolver is
//! a loopback address (systemd-resolved's `127.0.0.53`, a local dnsmasq), which the firewall
//! keeps containers from reaching themselves. Queries are relayed as bytes: the forwarder
//! parses nothing but the TCP length prefix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long an upstream resolver may take to answer one query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Queries relayed at once (UDP and TCP together); more wait for a slot (UDP ones are
/// dropped when even the wait queue is long, and the client retries).
const MAX_IN_FLIGHT: usize = 256;
/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The largest DNS message over UDP (EDNS) and TCP.
const MAX_MESSAGE: usize = 65_535;

/// The resolvers in a `resolv.conf` text, in order (port 53); loopback's when there are none
/// (glibc's default).
pub fn upstreams(resolv_conf: &str) -> Vec<SocketAddr> {
    let mut found: Vec<SocketAddr> = resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|address| address.split('%').next()?.parse::<IpAddr>().ok())
        .map(|address| SocketAddr::new(address, 53))
        .collect();
    if found.is_empty() {
        found.push(SocketAddr::from((Ipv4Addr::LOCALHOST, 53)));
    }
    found
}

/// Binds UDP and TCP port 53 on `address` and relays until `shutdown`. When a DNS server of
/// the host already answers on every address (a dnsmasq without `bind-interfaces`), that one
/// serves containers and the forwarder stays off.
pub async fn serve(
    address: Ipv4Addr,
    upstreams: Vec<SocketAddr>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bind = SocketAddr::from((address, 53));
    let udp = match UdpSocket::bind(bind).await {
        Ok(udp) => udp,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(
                "udp {bind} is taken: the host's own DNS server (listening on every address) \
                 answers containers' queries"
            );
            return Ok(());
        }
        Err(error) => {
            return Err(error).with_context(|| format!("listen for DNS on udp {bind}"));
        }
    };
    let tcp = TcpListener::bind(bind)
        .await
        .with_context(|| format!("listen for DNS on tcp {bind}"))?;
    let forwarder = Arc::new(Forwarder {
        udp,
        upstreams,
        slots: Semaphore::new(MAX_IN_FLIGHT),
    });
    tokio::spawn(forwarder.clone().serve_udp(shutdown.clone()));
    tokio::spawn(forwarder.serve_tcp(tcp, shutdown));
    Ok(())
}

struct Forwarder {
    udp: UdpSocket,
    upstreams: Vec<SocketAddr>,
    slots: Semaphore,
}

impl Forwarder {
    async fn serve_udp(self: Arc<Self>, shutdown: CancellationToken) {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = self.udp.recv_from(&mut buffer) => received,
            };
            let Ok((length, client)) = received else {
                continue;
            };
            let Ok(permit) = self.slots.try_acquire() else {
                continue; // overloaded: the client retries
            };
            permit.forget();
            let query = buffer[..length].to_vec();
            let forwarder = self.clone();
            tokio::spawn(async move {
                if let Some(answer) = forwarder.ask_udp(&query).await {
                    let _ = forwarder.udp.send_to(&answer, client).await;
                }
                forwarder.slots.add_permits(1);
            });
        }
    }

    /// The first answer an upstream gives over UDP, trying each in turn.
    async fn ask_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        for upstream in &self.upstreams {
            let local: SocketAddr = match upstream {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let Ok(socket) = UdpSocket::bind(local).await else {
                continue;
            };
            if socket.connect(upstream).await.is_err() || socket.send(query).await.is_err() {
                continue;
            }
            let mut buffer = vec![0u8; MAX_MESSAGE];
            match tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv(&mut buffer)).await {
                Ok(Ok(length)) if length >= 2 && buffer[..2] == query[..2.min(query.len())] => {
                    buffer.truncate(length);
                    return Some(buffer);
                }
                _ => continue,
            }
        }
        None
    }

    async fn serve_tcp(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let forwarder = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = forwarder.relay_tcp(stream) => {}
                }
            });
        }
    }

    /// Relays the queries of one TCP client, one at a time.
    async fn relay_tcp(&self, mut client: TcpStream) {
        let mut upstream: Option<TcpStream> = None;
        loop {
            let Ok(Some(query)) = tokio::time::timeout(TCP_IDLE, read_message(&mut client))
                .await
                .map(Result::ok)
                .map(Option::flatten)
            else {
                return;
            };
            let Ok(_permit) = self.slots.acquire().await else {
                return;
            };
            let answer = self.ask_tcp(&mut upstream, &query).await;
            drop(_permit);
            let Some(answer) = answer else {
                return;
            };
            if write_message(&mut client, &answer).await.is_err() {
                return;
            }
        }
    }

    async fn ask_tcp(&self, upstream: &mut Option<TcpStream>, query: &[u8]) -> Option<Vec<u8>> {
        for _ in 0..2 {
            if upstream.is_none() {
                for address in &self.upstreams {
                    let connect = TcpStream::connect(address);
                    if let Ok(Ok(stream)) = tokio::time::timeout(UPSTREAM_TIMEOUT, connect).await {
                        *upstream = Some(stream);
                        break;
                    }
                }
            }
            let stream = upstream.as_mut()?;
            let exchange = async {
                write_message(stream, query).await.ok()?;
                read_message(stream).await.ok().flatten()
            };
            match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
                Ok(Some(answer)) => return Some(answer),
                _ => *upstream = None, // closed or stuck: once more on a new connection
            }
        }
        None
    }
}

/// One length-prefixed DNS message; `None` at a clean end of stream.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 2];
    match stream.read_exact(&mut length).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

async fn write_message(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_resolvers() {
        let conf = "# comment\nsearch example\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\n\
                    nameserver junk\noptions edns0\n";
        assert_eq!(
            upstreams(conf),
            vec![
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(upstreams(""), vec!["127.0.0.1:53".parse().unwrap()]);
    }

    /// A query relayed over UDP and TCP to a resolver on loopback, answered with its own id.
    #[tokio::test]
    async fn relays_over_udp_and_tcp() {
        // The same port for UDP and TCP: another when the TCP one is taken.
        let mut bound = None;
        for _ in 0..100 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                bound = Some((udp, tcp));
                break;
            }
        }
        let (resolver, resolver_tcp) = bound.expect("a port free for UDP and TCP");
        let upstream = resolver.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            loop {
                let (length, from) = resolver.recv_from(&mut buffer).await.unwrap();
                let mut answer = buffer[..length].to_vec();
                answer.extend_from_slice(b"-answer");
                resolver.send_to(&answer, from).await.unwrap();
            }
        });
        tokio::spawn(async move {
            let (mut stream, _) = resolver_tcp.accept().await.unwrap();
            while let Some(query) = read_message(&mut stream).await.unwrap() {
                let mut answer = query.clone();
                answer.extend_from_slice(b"-tcp");
                write_message(&mut stream, &answer).await.unwrap();
            }
        });
        // The forwarder on another loopback address, port 53 as in production.
        let address = Ipv4Addr::new(127, 0, 0, 53 + (std::process::id() % 100) as u8 + 100);
        let shutdown = CancellationToken::new();
        serve(address, vec![upstream], shutdown.clone())
            .await
            .unwrap();

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client
            .send_to(b"\x12\x34query", (address, 53))
            .await
            .unwrap();
        let mut buffer = [0u8; 512];
        let length = client.recv(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..length], b"\x12\x34query-answer");

        let mut stream = TcpStream::connect((address, 53)).await.unwrap();
        for id in [b"\x00\x01", b"\x00\x02"] {
            let mut query = id.to_vec();
            query.extend_from_slice(b"q");
            write_message(&mut stream, &query).await.unwrap();
            let answer = read_message(&mut stream).await.unwrap().unwrap();
            assert_eq!(answer, [&query[..], b"-tcp"].concat());
        }
        shutdown.cancel();
    }
}
