//! Upgrading Wharf without refusing a connection: the running server hands its listening
//! sockets (API, API over TLS, router, router over TLS, rendezvous) to its successor over a
//! unix socket in the data dir (`handover.sock`, root's alone), as descriptors
//! (`SCM_RIGHTS`). Both then hold the same sockets, so the kernel keeps queueing connections
//! while the old server stops accepting, finishes what it has in flight, lets go of its
//! dynos and releases the data dir, and the successor takes the data dir, the dynos and the
//! queue up. The successor says `serving` once it accepts; only then does the old one exit.
//! A successor that ends before (a binary that fails to start) leaves the old server to
//! start its own binary again, which takes the same sockets and dynos up.
//!
//! Who starts the successor: `wharf server --upgrade` (by hand, with the server's settings),
//! or the running server itself on `SIGUSR2` (the systemd unit's `ExecReload`), which starts
//! the binary now installed where its own was with its own arguments.
//!
//! Server paths only: the socket in the server's data dir.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The hand-over socket's name in the data dir.
const SOCKET: &str = "handover.sock";
/// What a successor asks, and what it says once it serves.
const ASK: &[u8] = b"take over\n";
const SERVING: &[u8] = b"serving\n";
/// The listeners handed over, in this order.
const NAMES: [&str; 5] = ["api", "api-tls", "router", "router-tls", "rendezvous"];
/// How long a successor may take from the hand-over to serving (it waits for the old server
/// to let go of the data dir, then starts as any server does).
pub const SUCCESSOR_DEADLINE: Duration = Duration::from_secs(180);
/// How long a successor waits for the old server to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's listening sockets.
pub struct Listeners {
    pub api: TcpListener,
    pub api_tls: TcpListener,
    pub router: TcpListener,
    pub router_tls: TcpListener,
    pub rendezvous: TcpListener,
}

impl Listeners {
    fn in_order(&self) -> [&TcpListener; 5] {
        [
            &self.api,
            &self.api_tls,
            &self.router,
            &self.router_tls,
            &self.rendezvous,
        ]
    }

    /// Copies of the same sockets (new descriptors): one set serves, one is kept to hand
    /// over.
    pub fn try_clone(&self) -> anyhow::Result<Listeners> {
        let [api, api_tls, router, router_tls, rendezvous] = self.in_order();
        Ok(Listeners {
            api: api.try_clone().context("copy the API listener")?,
            api_tls: api_tls.try_clone().context("copy the API TLS listener")?,
            router: router.try_clone().context("copy the router's listener")?,
            router_tls: router_tls
                .try_clone()
                .context("copy the router's TLS listener")?,
            rendezvous: rendezvous
                .try_clone()
                .context("copy the rendezvous listener")?,
        })
    }
}

/// The running server's end: the socket successors ask at.
pub struct Offer {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode: a successor's socket at the same path is not
    /// this one's to remove.
    identity: (u64, u64),
}

impl Offer {
    /// Listens at `<data_dir>/handover.sock` (root's alone; a stale one from a killed server
    /// is replaced: this server holds the data dir's lock).
    pub fn open(data_dir: &Path) -> anyhow::Result<Offer> {
        let path = data_dir.join(SOCKET);
        // Server path: the data dir's own socket, never a tenant's.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("remove {}", path.display())),
        }
        let listener =
            UnixListener::bind(&path).with_context(|| format!("listen on {}", path.display()))?;
        // Server path: the socket just made.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("make {} root's alone", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("make the hand-over socket non-blocking")?;
        let identity = identity(&path).with_context(|| format!("stat {}", path.display()))?;
        Ok(Offer {
            listener,
            path,
            identity,
        })
    }

    /// Waits for a successor that asks, and hands it the listeners. Returns the connection,
    /// on which it says when it serves.
    pub async fn hand_over(&self, listeners: &Listeners) -> anyhow::Result<Successor> {
        let listener = tokio::net::UnixListener::from_std(
            self.listener
                .try_clone()
                .context("copy the hand-over socket")?,
        )
        .context("watch the hand-over socket")?;
        loop {
            let (stream, _) = listener.accept().await.context("accept a successor")?;
            let mut stream = stream.into_std().context("a successor's connection")?;
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
            let mut asked = [0u8; ASK.len()];
            if stream.read_exact(&mut asked).is_err() || asked != ASK {
                tracing::warn!("something connected to the hand-over socket and did not ask");
                continue;
            }
            send_listeners(&stream, listeners).context("hand the listeners over")?;
            tracing::info!("listeners handed over to a successor: stopping to let it take over");
            return Ok(Successor { stream });
        }
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        if identity(&self.path).is_ok_and(|now| now == self.identity) {
            // Server path: this server's own socket (not a successor's at the same path).
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    // Server path: the hand-over socket in the data dir.
    let metadata = std::fs::symlink_metadata(path)?;
    Ok((metadata.dev(), metadata.ino()))
}

/// A successor that has the listeners.
pub struct Successor {
    stream: UnixStream,
}

impl Successor {
    /// Whether it says it serves within [`SUCCESSOR_DEADLINE`]. Blocking.
    pub fn serving(mut self) -> bool {
        let deadline = Instant::now() + SUCCESSOR_DEADLINE;
        let mut said = Vec::new();
        while Instant::now() < deadline {
            let _ = self.stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut byte = [0u8; 1];
            match self.stream.read(&mut byte) {
                Ok(0) => return false,
                Ok(_) => {
                    said.push(byte[0]);
                    if said.ends_with(SERVING) {
                        return true;
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// Asks the server running on `data_dir` for its listeners; the successor's end of the
/// connection, to say `serving` on, comes with them.
pub fn take_over(data_dir: &Path) -> anyhow::Result<(Listeners, TakenOver)> {
    let path = data_dir.join(SOCKET);
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "no wharf server to take over from on {} ({} does not answer): start one without \
             --upgrade",
            data_dir.display(),
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    stream.write_all(ASK).context("ask for the listeners")?;
    let listeners = receive_listeners(&stream).context("receive the listeners")?;
    Ok((listeners, TakenOver { stream }))
}

/// A successor's connection to the server it takes over from.
pub struct TakenOver {
    stream: UnixStream,
}

impl TakenOver {
    /// Tells the old server this one serves: it exits.
    pub fn serving(mut self) {
        if let Err(error) = self.stream.write_all(SERVING) {
            tracing::warn!("tell the previous server this one serves: {error}");
        }
    }
}

fn send_listeners(stream: &UnixStream, listeners: &Listeners) -> anyhow::Result<()> {
    let fds = listeners.in_order().map(AsFd::as_fd);
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(5))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        bail!("the descriptors do not fit their message");
    }
    let names = NAMES.join(",");
    rustix::net::sendmsg(
        stream,
        &[IoSlice::new(names.as_bytes())],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .context("send the descriptors")?;
    Ok(())
}

fn receive_listeners(stream: &UnixStream) -> anyhow::Result<Listeners> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(5))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut names = [0u8; 256];
    let received = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut names)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("receive the descriptors")?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    let names = String::from_utf8_lossy(&names[..received.bytes]);
    if names != NAMES.join(",") || fds.len() != NAMES.len() {
        bail!(
            "the running server handed over {} descriptors named {names:?}: is it the same \
             version of Wharf?",
            fds.len()
        );
    }
    let mut listeners = fds.into_iter().map(TcpListener::from);
    let mut next = || listeners.next().context("a listener");
    Ok(Listeners {
        api: next()?,
        api_tls: next()?,
        router: next()?,
        router_tls: next()?,
        rendezvous: next()?,
    })
}

/// Starts a successor: `binary` with this process's arguments (plus `--upgrade`) and
/// environment, its output where this one's goes.
pub fn start_successor(binary: &Path) -> anyhow::Result<tokio::process::Child> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|arg| arg == "--upgrade") {
        args.push("--upgrade".into());
    }
    tokio::process::Command::new(binary)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", binary.display()))
}

/// Tells systemd (a `Type=notify` unit, `NotifyAccess=all`) that this process is the service's
/// main process now and ready: after an upgrade, the successor is. Nothing without systemd.
pub fn notify_systemd_ready() {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message = format!("MAINPID={}\nREADY=1\n", std::process::id());
    let sent = (|| -> std::io::Result<()> {
        let datagram = std::os::unix::net::UnixDatagram::unbound()?;
        let socket = socket.to_string_lossy();
        match socket.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                let address =
                    std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())?;
                datagram.send_to_addr(message.as_bytes(), &address)?;
            }
            None => {
                datagram.send_to(message.as_bytes(), socket.as_ref())?;
            }
        }
        Ok(())
    })();
    if let Err(error) = sent {
        tracing::warn!("tell systemd this server is ready: {error}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn listeners() -> Listeners {
        let bind = || TcpListener::bind("127.0.0.1:0").unwrap();
        Listeners {
            api: bind(),
            api_tls: bind(),
            router: bind(),
            router_tls: bind(),
            rendezvous: bind(),
        }
    }

    #[tokio::test]
    async fn the_successor_gets_the_same_sockets_and_says_when_it_serves() {
        let dir = tempfile::tempdir().unwrap();
        let offer = Offer::open(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(SOCKET))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let old = listeners();
        let addresses: Vec<_> = old
            .in_order()
            .iter()
            .map(|l| l.local_addr().unwrap())
            .collect();
        let path = dir.path().to_owned();
        let successor = tokio::task::spawn_blocking(move || {
            let (listeners, taken) = take_over(&path).unwrap();
            let got: Vec<_> = listeners
                .in_order()
                .iter()
                .map(|l| l.local_addr().unwrap())
                .collect();
            // A connection made now is queued on the very socket the old server bound.
            let client = std::net::TcpStream::connect(got[2]).unwrap();
            let (_, peer) = listeners.router.accept().unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            taken.serving();
            got
        });
        let handed = offer.hand_over(&old).await.unwrap();
        let serving = tokio::task::spawn_blocking(move || handed.serving());
        assert_eq!(successor.await.unwrap(), addresses);
        assert!(serving.await.unwrap());
        // A successor's socket at the same path is not the old server's to remove.
        let successor = Offer::open(dir.path()).unwrap();
        drop(offer);
        assert!(dir.path().join(SOCKET).exists());
        drop(successor);
        assert!(!dir.path().join(SOCKET).exists());
    }

    #[tokio::test]
    async fn a_successor_that_dies_is_not_serving() {
        let dir = tempfile::tempdir().unwrap();
        let offer = Offer::open(dir.path()).unwrap();
        let old = listeners();
        let path = dir.path().to_owned();
        let successor = tokio::task::spawn_blocking(move || drop(take_over(&path).unwrap()));
        let handed = offer.hand_over(&old).await.unwrap();
        successor.await.unwrap();
        assert!(!tokio::task::spawn_blocking(move || handed.serving())
            .await
            .unwrap());
    }

    #[test]
    fn no_server_to_take_over_from_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let error = take_over(dir.path()).err().unwrap();
        assert!(
            format!("{error:#}").contains("no wharf server to take over from"),
            "{error:#}"
        );
    }
}
