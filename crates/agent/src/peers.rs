//! Telling a control plane that is down from a host that is cut off. An agent whose lease ran
//! out in silence asks the other hosts (those the control plane's route table last named) how
//! long ago their own leases were renewed. If every one of them answers and every one is
//! silent too, the control plane is down (or cut off from every host): it can place nothing
//! elsewhere, since it takes every host for lost, so the agent keeps its dynos running rather
//! than stop every app. If any host cannot be asked, or any was renewed lately, the agent may
//! be the one cut off and fences itself as before.
//!
//! Each agent answers on its address at [`DEFAULT_PORT`] (`WHARF_PEER_PORT`), to the hosts of
//! the route table alone, with one line: `wharf-lease-age-ms N` (or `none` before its first
//! lease). A host's answer can only keep another host's dynos running, never stop them or
//! reach them.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Where agents answer each other unless `WHARF_PEER_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 5002;
/// How long a host has to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);
/// A host whose last renewal is older than this (two heartbeats) is silent too.
pub const SILENT_AFTER: Duration = Duration::from_secs(2);
/// What starts an answer.
const ANSWER: &str = "wharf-lease-age-ms ";
/// The longest answer read.
const ANSWER_LIMIT: u64 = 64;

/// This host's view of the others, and its own last renewal. Cheap to clone.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<Inner>,
}

struct Inner {
    own: IpAddr,
    port: u16,
    /// The other hosts holding a lease, as the route table last named them.
    hosts: Mutex<HashSet<IpAddr>>,
    last_renewed: Mutex<Option<Instant>>,
}

impl Peers {
    /// This host at `own`; every host answers at `port`.
    pub fn new(own: IpAddr, port: u16) -> Peers {
        Peers {
            inner: Arc::new(Inner {
                own,
                port,
                hosts: Mutex::new(HashSet::new()),
                last_renewed: Mutex::new(None),
            }),
        }
    }

    /// The hosts holding a lease (this one is left out): `hosts` replaces the last list.
    pub fn set_hosts(&self, hosts: impl IntoIterator<Item = IpAddr>) {
        let own = self.inner.own;
        *self.inner.hosts.lock().expect("peers poisoned") =
            hosts.into_iter().filter(|host| *host != own).collect();
    }

    /// This host's lease was renewed now.
    pub fn renewed(&self) {
        *self.inner.last_renewed.lock().expect("peers poisoned") = Some(Instant::now());
    }

    fn age(&self) -> Option<Duration> {
        self.inner
            .last_renewed
            .lock()
            .expect("peers poisoned")
            .map(|at| at.elapsed())
    }

    fn is_host(&self, address: IpAddr) -> bool {
        self.inner
            .hosts
            .lock()
            .expect("peers poisoned")
            .contains(&address)
    }

    /// Whether every other host answered and none was renewed within [`SILENT_AFTER`]: the
    /// control plane is silent to all of them too. False with no other host known.
    pub async fn all_silent(&self) -> bool {
        let hosts: Vec<IpAddr> = self
            .inner
            .hosts
            .lock()
            .expect("peers poisoned")
            .iter()
            .copied()
            .collect();
        if hosts.is_empty() {
            return false;
        }
        let port = self.inner.port;
        let asked = futures_util::future::join_all(
            hosts
                .into_iter()
                .map(|host| ask(SocketAddr::new(host, port))),
        )
        .await;
        asked
            .into_iter()
            .all(|answer| matches!(answer, Some(age) if age.is_none_or(|age| age > SILENT_AFTER)))
    }

    /// Answers the hosts of the list on `listener` until `shutdown`; anyone else is closed
    /// unanswered.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            let (mut stream, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!("accept a host's question: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            if !self.is_host(peer.ip()) {
                continue;
            }
            let answer = match self.age() {
                Some(age) => format!("{ANSWER}{}\n", age.as_millis()),
                None => format!("{ANSWER}none\n"),
            };
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(ASK_TIMEOUT, stream.write_all(answer.as_bytes())).await;
            });
        }
    }
}

/// How long ago the host at `address` was renewed (`Some(None)`: never), or `None` when it did
/// not answer in time or answered something else.
async fn ask(address: SocketAddr) -> Option<Option<Duration>> {
    let answer = tokio::time::timeout(ASK_TIMEOUT, async {
        let stream = TcpStream::connect(address).await.ok()?;
        let mut text = String::new();
        stream
            .take(ANSWER_LIMIT)
            .read_to_string(&mut text)
            .await
            .ok()?;
        Some(text)
    })
    .await
    .ok()??;
    parse(&answer)
}

fn parse(answer: &str) -> Option<Option<Duration>> {
    let value = answer.strip_prefix(ANSWER)?.strip_suffix('\n')?;
    if value == "none" {
        return Some(None);
    }
    value.parse().ok().map(|ms| Some(Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_anything_else_is_no_answer() {
        assert_eq!(
            parse("wharf-lease-age-ms 2500\n"),
            Some(Some(Duration::from_millis(2500)))
        );
        assert_eq!(parse("wharf-lease-age-ms none\n"), Some(None));
        assert_eq!(parse("wharf-lease-age-ms 12"), None);
        assert_eq!(parse("HTTP/1.1 400 Bad Request\r\n"), None);
    }

    /// A host answering on 127.0.0.N, as `peers` sees it.
    async fn host(own: IpAddr) -> (Peers, u16, CancellationToken) {
        let listener = TcpListener::bind((own, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peers = Peers::new(own, port);
        let shutdown = CancellationToken::new();
        tokio::spawn(peers.clone().serve(listener, shutdown.clone()));
        (peers, port, shutdown)
    }

    #[tokio::test]
    async fn a_host_holds_off_only_when_every_other_host_is_silent_too() {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let (other, port, _stop) = host(IpAddr::from([127, 0, 0, 2])).await;
        // The asking host connects from 127.0.0.1: the other host answers it only once the
        // route table names it.
        let asking = Peers::new(loopback, port);
        asking.set_hosts([IpAddr::from([127, 0, 0, 2]), loopback]);
        assert!(!asking.all_silent().await, "not answered: may be cut off");
        other.set_hosts([loopback]);
        // Never renewed: silent.
        assert!(asking.all_silent().await);
        // Renewed just now: the control plane is there for it.
        other.renewed();
        assert!(!asking.all_silent().await);
        // No other host at all: nothing to go by.
        let alone = Peers::new(loopback, port);
        alone.set_hosts([loopback]);
        assert!(!alone.all_silent().await);
    }
}
