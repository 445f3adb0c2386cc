//! Containers run detached under a holder (`wharf-shim`, one per container): the holder keeps
//! the container's output pipes and reaps its init, so the container outlives the server
//! process that started it. This is the server's side: starting a holder, and a connection to
//! one (new or found again after a restart) that yields the output, what was lost while nobody
//! was connected, and the exit status.
//!
//! Server paths only: the holder's socket in the server's bundle dir.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::UnixStream;
use tokio::process::Command;
use tokio::sync::{oneshot, watch};
use wharf_shim::frame;

use crate::container::ContainerStdio;

/// A container's output as the caller reads it.
pub type Output = Pin<Box<dyn tokio::io::AsyncRead + Send + Sync>>;

/// How long starting a container under its holder may take (the runtime's `run -d`, on a
/// loaded host).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to a holder may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a holder let go of may take to close its end.
const LET_GO_GRACE: Duration = Duration::from_secs(2);
/// How much output may wait between the holder's socket and the caller's reader.
const OUTPUT_BUFFER: usize = 1024 * 1024;

/// The holder binary and what it does on its own.
#[derive(Clone, Debug)]
pub struct HolderConfig {
    /// `wharf-shim`.
    pub binary: PathBuf,
    /// A holder that no server has connected to for this long stops its container
    /// (SIGTERM, `stop_grace`, SIGKILL) and removes it: nothing outlives a server that never
    /// comes back. A holder whose bundle dir is gone (the data dir removed) does the same at
    /// once.
    pub orphan_after: Duration,
    pub stop_grace: Duration,
}

/// What a holder said when it started its container.
pub(crate) enum Started {
    /// The container runs (the holder's hello gives its init's pid).
    Running,
    /// The runtime could not start it (its log in the bundle says why).
    Failed(String),
}

/// Starts `id` from `bundle_dir` detached under a holder, and waits until the runtime has
/// started it (or failed to).
pub(crate) async fn start(
    holder: &HolderConfig,
    runtime: (&Path, &Path),
    bundle_dir: &Path,
    id: &str,
) -> anyhow::Result<Started> {
    let (binary, state_dir) = runtime;
    let mut command = Command::new(&holder.binary);
    command
        .arg("--dir")
        .arg(bundle_dir)
        .arg("--runtime")
        .arg(binary)
        .arg("--root")
        .arg(state_dir)
        .arg("--bundle")
        .arg(bundle_dir)
        .arg("--id")
        .arg(id)
        .arg("--orphan-after")
        .arg(holder.orphan_after.as_secs().max(1).to_string())
        .arg("--stop-grace")
        .arg(holder.stop_grace.as_secs().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("start {} for container {id}", holder.binary.display()))?;
    let stdout = child.stdout.take().context("the holder's stdout")?;
    let mut stderr = child.stderr.take().context("the holder's stderr")?;
    let mut line = String::new();
    let read = async {
        let mut reader = tokio::io::BufReader::new(stdout);
        reader.read_line(&mut line).await
    };
    let read = tokio::time::timeout(START_TIMEOUT, read).await;
    // The holder lives on in a session of its own; reap it whenever it ends.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    match read {
        Err(_) => bail!("container {id}: the runtime did not start it in {START_TIMEOUT:?}"),
        Ok(Err(error)) => Err(error).context("read the holder's answer"),
        Ok(Ok(_)) => {
            if line.starts_with("started ") {
                return Ok(Started::Running);
            }
            if let Some(status) = line.trim().strip_prefix("failed") {
                return Ok(Started::Failed(status.trim().to_owned()));
            }
            let mut complaint = String::new();
            let _ =
                tokio::time::timeout(CONNECT_TIMEOUT, stderr.read_to_string(&mut complaint)).await;
            bail!(
                "container {id}: its holder ended before it started the container: {}",
                complaint.trim()
            )
        }
    }
}

/// The holder's socket for the container whose bundle is `bundle_dir`.
pub(crate) fn socket_path(bundle_dir: &Path) -> PathBuf {
    bundle_dir.join(wharf_shim::SOCKET)
}

/// A connection to a container's holder: the container's output, what was lost, its exit.
pub(crate) struct Held {
    pub stdout: Option<Output>,
    pub stderr: Option<Output>,
    /// `Some((code, signal))` once the init exited; `None` when the holder went without
    /// saying (it was killed).
    pub exit: oneshot::Receiver<Option<(i32, i32)>>,
    /// Bytes of output the holder dropped while no server was connected.
    pub lost: watch::Receiver<u64>,
}

impl Held {
    /// Connects to the holder of the container whose bundle is `bundle_dir`. Its buffered
    /// output comes first, then what the container writes from now on.
    pub(crate) async fn connect(bundle_dir: &Path, stdio: ContainerStdio) -> anyhow::Result<Held> {
        let path = socket_path(bundle_dir);
        // A socket's path may not exceed 108 bytes: it is reached through a descriptor of its
        // directory (`/proc/self/fd/N/shim.sock`), however deep the data dir.
        // Server path: the bundle dir the server made, opened as a directory, never a link.
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(
                rustix::fs::OFlags::DIRECTORY.bits() as i32
                    | rustix::fs::OFlags::NOFOLLOW.bits() as i32,
            )
            .open(bundle_dir)
            .with_context(|| format!("open {}", bundle_dir.display()))?;
        let short = format!(
            "/proc/self/fd/{}/{}",
            std::os::fd::AsRawFd::as_raw_fd(&dir),
            wharf_shim::SOCKET
        );
        let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&short))
            .await
            .with_context(|| format!("connect to {}: no answer", path.display()))?
            .with_context(|| format!("connect to {}", path.display()))?;
        drop(dir);
        let hello = tokio::time::timeout(CONNECT_TIMEOUT, next_frame(&mut stream))
            .await
            .context("the holder said nothing")??;
        match hello {
            Some((frame::HELLO, payload)) if frame::parse_hello(&payload).is_some() => {}
            other => bail!(
                "the holder at {} began with {:?} rather than its hello",
                path.display(),
                other.map(|(kind, _)| kind)
            ),
        };
        let (exit_tx, exit) = oneshot::channel();
        let (lost_tx, lost) = watch::channel(0u64);
        let (outputs, readers) = match stdio {
            ContainerStdio::Piped => {
                let (out_w, out_r) = tokio::io::duplex(OUTPUT_BUFFER);
                let (err_w, err_r) = tokio::io::duplex(OUTPUT_BUFFER);
                (
                    [Some(out_w), Some(err_w)],
                    [
                        Some(Box::pin(out_r) as Output),
                        Some(Box::pin(err_r) as Output),
                    ],
                )
            }
            ContainerStdio::Null => ([None, None], [None, None]),
        };
        tokio::spawn(relay(stream, outputs, lost_tx, exit_tx));
        let [stdout, stderr] = readers;
        Ok(Held {
            stdout,
            stderr,
            exit,
            lost,
        })
    }
}

/// Reads the holder's frames until its exit frame (or its end): output to the readers (a
/// reader gone means the output is not wanted), losses to `lost`, the exit to `exit`. When the
/// waiter is gone (the server lets go of the container) it tells the holder, which stops
/// sending (and buffers what follows for the next server), and reads what was sent until
/// the holder closes: nothing sent is dropped.
async fn relay(
    mut stream: UnixStream,
    outputs: [Option<DuplexStream>; 2],
    lost: watch::Sender<u64>,
    mut exit: oneshot::Sender<Option<(i32, i32)>>,
) {
    let [mut stdout, mut stderr] = outputs;
    let mut letting_go = false;
    let mut buffer = Vec::with_capacity(64 * 1024);
    let status = loop {
        let (kind, payload) = match frame::decode(&buffer) {
            Ok(Some((kind, payload, total))) => {
                let payload = buffer[payload].to_vec();
                buffer.drain(..total);
                (kind, payload)
            }
            Ok(None) => {
                // A read is cancel safe: a read given up for the let-go consumed nothing.
                let mut chunk = [0u8; 16 * 1024];
                let read = match letting_go {
                    false => tokio::select! {
                        biased;
                        () = exit.closed() => {
                            // Nobody waits any more: tell the holder (it stops sending and
                            // closes; a frame it cut short it sends whole to the next server),
                            // and read what it sent until then.
                            letting_go = true;
                            let _ = stream.shutdown().await;
                            continue;
                        }
                        read = stream.read(&mut chunk) => read,
                    },
                    true => tokio::time::timeout(LET_GO_GRACE, stream.read(&mut chunk))
                        .await
                        .unwrap_or(Ok(0)),
                };
                match read {
                    Ok(0) => break None,
                    Ok(n) => {
                        buffer.extend_from_slice(&chunk[..n]);
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!("read from a container's holder: {error}");
                        break None;
                    }
                }
            }
            Err(error) => {
                tracing::warn!("a container holder's stream: {error}");
                break None;
            }
        };
        match kind {
            frame::STDOUT | frame::STDERR => {
                let output = if kind == frame::STDOUT {
                    &mut stdout
                } else {
                    &mut stderr
                };
                if let Some(writer) = output {
                    if writer.write_all(&payload).await.is_err() {
                        *output = None;
                    }
                }
            }
            frame::LOST => {
                if let Some(bytes) = frame::parse_lost(&payload) {
                    lost.send_modify(|n| *n += bytes);
                }
            }
            frame::EXIT => break frame::parse_exit(&payload),
            _ => {}
        }
    };
    // Output first, then the exit: the readers see their end before the waiter its status.
    drop((stdout, stderr));
    if !letting_go {
        let _ = stream.shutdown().await;
    }
    drop(stream);
    let _ = exit.send(status);
}

/// The next whole frame from the holder (read exactly: nothing of the next is consumed);
/// `None` at the end of the stream.
async fn next_frame(stream: &mut UnixStream) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; frame::HEADER_LEN];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error).context("read from the holder"),
    }
    let length = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > frame::MAX_PAYLOAD {
        bail!("the holder sent a frame of {length} bytes");
    }
    let mut payload = vec![0u8; length];
    stream
        .read_exact(&mut payload)
        .await
        .context("read from the holder")?;
    Ok(Some((header[0], payload)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A holder that says hello, sends `frames`, then waits for the server to close.
    async fn fake_holder(dir: &Path, frames: Vec<(u8, Vec<u8>)>) -> tokio::task::JoinHandle<()> {
        // Bound as the holder does, for a path of any length: through the directory (the
        // test's own temp dir).
        let handle = std::fs::File::open(dir).unwrap();
        let short = format!(
            "/proc/self/fd/{}/{}",
            std::os::fd::AsRawFd::as_raw_fd(&handle),
            wharf_shim::SOCKET
        );
        let listener = tokio::net::UnixListener::bind(short).unwrap();
        drop(handle);
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut out = Vec::new();
            frame::encode(frame::HELLO, &42u32.to_le_bytes(), &mut out);
            for (kind, payload) in frames {
                frame::encode(kind, &payload, &mut out);
            }
            stream.write_all(&out).await.unwrap();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        })
    }

    #[tokio::test]
    async fn output_losses_and_exit_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let holder = fake_holder(
            dir.path(),
            vec![
                (frame::STDOUT, b"out\n".to_vec()),
                (frame::STDERR, b"err\n".to_vec()),
                (frame::LOST, 7u64.to_le_bytes().to_vec()),
                (frame::EXIT, frame::exit_payload(-1, 9).to_vec()),
            ],
        )
        .await;
        let mut held = Held::connect(dir.path(), ContainerStdio::Piped)
            .await
            .unwrap();
        let mut out = String::new();
        held.stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        let mut err = String::new();
        held.stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
        assert_eq!((&mut held.exit).await.unwrap(), Some((-1, 9)));
        assert_eq!(*held.lost.borrow(), 7);
        holder.await.unwrap();
    }

    #[tokio::test]
    async fn a_holder_deeper_than_a_socket_path_may_be_is_reached() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        assert!(socket_path(&deep).as_os_str().len() > 108);
        let holder = fake_holder(
            &deep,
            vec![(frame::EXIT, frame::exit_payload(0, 0).to_vec())],
        )
        .await;
        let mut held = Held::connect(&deep, ContainerStdio::Null).await.unwrap();
        assert_eq!((&mut held.exit).await.unwrap(), Some((0, 0)));
        holder.await.unwrap();
    }

    #[tokio::test]
    async fn letting_go_ends_the_output_and_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let holder = fake_holder(dir.path(), vec![(frame::STDOUT, b"a\n".to_vec())]).await;
        let mut held = Held::connect(dir.path(), ContainerStdio::Piped)
            .await
            .unwrap();
        let mut stdout = held.stdout.take().unwrap();
        drop(held);
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(5), stdout.read_to_string(&mut out))
            .await
            .expect("the output ends once the container is let go")
            .unwrap();
        assert_eq!(out, "a\n");
        tokio::time::timeout(Duration::from_secs(5), holder)
            .await
            .expect("the holder sees the connection end")
            .unwrap();
    }
}
