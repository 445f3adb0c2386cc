//! Attaching to a one-off dyno through the rendezvous (Heroku's protocol): TLS to the
//! `attach_url`'s host and port trusting Wharf's CA, the secret as one line, the server's
//! greeting thrown away, then the terminal's bytes both ways. The server's exit marker line
//! becomes the exit status.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::exit_marker::{CrLf, ExitMarker};

/// How long connecting and the server's greeting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Ends the dyno's input when stdin is not a terminal.
const END_OF_INPUT: u8 = 0x04;

/// Where to attach: `rendezvous://host:port/secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachUrl {
    pub host: String,
    pub port: u16,
    pub secret: String,
}

impl AttachUrl {
    pub fn parse(url: &str) -> Result<AttachUrl> {
        let invalid = || format!("the server gave an attach URL this client cannot use: {url}");
        let rest = url.strip_prefix("rendezvous://").with_context(invalid)?;
        let (authority, secret) = rest.split_once('/').with_context(invalid)?;
        let (host, port) = authority.rsplit_once(':').with_context(invalid)?;
        let port = port.parse().ok().with_context(invalid)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || secret.is_empty() {
            bail!(invalid());
        }
        Ok(AttachUrl {
            host: host.to_owned(),
            port,
            secret: secret.to_owned(),
        })
    }

    fn is_local(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Which certificates the client trusts for the rendezvous: `WHARF_CA_FILE`, else
/// `~/.config/wharf/ca.pem`, else the public roots (never for a server on this host, whose
/// certificate only Wharf's CA vouches for).
pub fn trusted_roots(
    url: &AttachUrl,
    ca_file: Option<&Path>,
    home: Option<&Path>,
) -> Result<RootCertStore> {
    let user_ca = home
        .map(|home| home.join(".config/wharf/ca.pem"))
        .filter(|path| path.exists());
    let path: Option<PathBuf> = ca_file.map(Path::to_path_buf).or(user_ca);
    let mut roots = RootCertStore::empty();
    match path {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(&path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| anyhow::anyhow!("{error}"))
                .with_context(|| format!("read the CA certificate {}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                bail!("{} holds no usable CA certificate", path.display());
            }
        }
        None if url.is_local() => bail!(
            "Cannot verify the server's certificate for attaching to the dyno: \
             set WHARF_CA_FILE to the server's CA certificate, <data-dir>/tls/ca.pem \
             (`wharf server` prints where it is on start)"
        ),
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// A rendezvous connection past its greeting.
pub type Connection = tokio_rustls::client::TlsStream<TcpStream>;

/// Connects, sends the secret and waits for the greeting (whose chunk is thrown away).
pub async fn connect(url: &AttachUrl, roots: RootCertStore) -> Result<Connection> {
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("set up TLS")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(url.host.clone())
        .with_context(|| format!("{} is not a host name", url.host))?;
    let address = format!("{}:{}", url.host, url.port);
    let address = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        address
    };
    let connecting = async {
        let tcp = TcpStream::connect(&address)
            .await
            .with_context(|| format!("connect to the rendezvous at {address}"))?;
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .with_context(|| {
                format!(
                    "TLS with the rendezvous at {address} (if the certificate is not trusted, \
                     set WHARF_CA_FILE to the server's <data-dir>/tls/ca.pem)"
                )
            })?;
        tls.write_all(format!("{}\r\n", url.secret).as_bytes())
            .await
            .context("send the attach secret")?;
        tls.flush().await.context("send the attach secret")?;
        let mut greeting = [0u8; 1024];
        let read = tls.read(&mut greeting).await.unwrap_or(0);
        if read == 0 {
            bail!("the server closed the connection: the attach URL expired or was used already");
        }
        Ok(tls)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .context("the rendezvous did not answer in time")?
}

/// Puts the terminal in raw mode (`stty raw -echo`) and back as it was when dropped, on
/// errors and panics too.
struct RawMode {
    saved: String,
}

impl RawMode {
    fn enter() -> Result<RawMode> {
        let saved = stty(&["-g"])?;
        stty(&["raw", "-echo"])?;
        Ok(RawMode {
            saved: saved.trim().to_owned(),
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing more can be done if the terminal cannot be restored.
        let _ = stty(&[self.saved.as_str()]);
    }
}

/// Runs `stty` on the terminal that is our stdin.
fn stty(arguments: &[&str]) -> Result<String> {
    let output = std::process::Command::new("stty")
        .args(arguments)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("run stty")?;
    if !output.status.success() {
        bail!("stty {} failed", arguments.join(" "));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Copies stdin to the dyno and its output to stdout until the server closes the connection;
/// returns the exit status the server reported.
pub async fn session(connection: Connection) -> Result<Option<i32>> {
    let terminal_in = std::io::stdin().is_terminal();
    let terminal_out = std::io::stdout().is_terminal();
    let raw = if terminal_in {
        Some(RawMode::enter()?)
    } else {
        None
    };
    let (mut reader, mut writer) = tokio::io::split(connection);
    let (input_tx, mut input_rx) = mpsc::channel::<Vec<u8>>(16);
    // A thread of its own: a read of stdin cannot be cancelled, and a blocking task would
    // keep the runtime from shutting down.
    std::thread::spawn(move || read_stdin(&input_tx, terminal_in));
    let sending = tokio::spawn(async move {
        while let Some(chunk) = input_rx.recv().await {
            if writer.write_all(&chunk).await.is_err() || writer.flush().await.is_err() {
                break;
            }
        }
        // Never half-close: the server ends the connection when the process exits. The
        // writer stays open until then.
        std::future::pending::<()>().await;
    });
    let mut marker = ExitMarker::default();
    let mut crlf = (!terminal_out).then(CrLf::default);
    let mut stdout = std::io::stdout();
    let mut show = |bytes: Vec<u8>, crlf: &mut Option<CrLf>| -> Result<()> {
        let bytes = match crlf {
            Some(crlf) => crlf.push(&bytes),
            None => bytes,
        };
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .context("write to stdout")
    };
    let mut buffer = vec![0u8; 16 * 1024];
    let ended = loop {
        match reader.read(&mut buffer).await {
            Ok(0) => break Ok(()),
            Ok(n) => show(marker.push(&buffer[..n]), &mut crlf)?,
            Err(error) => break Err(error),
        }
    };
    sending.abort();
    let (rest, code) = marker.finish();
    show(rest, &mut crlf)?;
    if let Some(crlf) = crlf.take() {
        show(crlf.finish(), &mut None)?;
    }
    drop(raw);
    // A server that closes without TLS's close_notify still ended the session.
    if let Err(error) = ended {
        if code.is_none() {
            return Err(error).context("read from the dyno");
        }
    }
    Ok(code)
}

/// Sends stdin's bytes; without a terminal, ends with [`END_OF_INPUT`].
fn read_stdin(input: &mpsc::Sender<Vec<u8>>, terminal: bool) {
    let mut stdin = std::io::stdin();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if input.blocking_send(buffer[..n].to_vec()).is_err() {
                    return;
                }
            }
        }
    }
    if !terminal {
        let _ = input.blocking_send(vec![END_OF_INPUT]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_urls() {
        assert_eq!(
            AttachUrl::parse("rendezvous://127.0.0.1:5001/abc").unwrap_or_else(|e| panic!("{e}")),
            AttachUrl {
                host: "127.0.0.1".into(),
                port: 5001,
                secret: "abc".into()
            }
        );
        let v6 = AttachUrl::parse("rendezvous://[::1]:5001/abc").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v6.host, "::1");
        assert!(v6.is_local());
        for bad in [
            "http://x:1/a",
            "rendezvous://x/a",
            "rendezvous://x:y/a",
            "rendezvous://x:1/",
        ] {
            assert!(AttachUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_local_server_needs_its_ca() {
        let local =
            AttachUrl::parse("rendezvous://localhost:5001/a").unwrap_or_else(|e| panic!("{e}"));
        let error = trusted_roots(&local, None, None).expect_err("no CA");
        assert!(error.to_string().contains("WHARF_CA_FILE"), "{error}");
        let remote = AttachUrl::parse("rendezvous://wharf.example.com:5001/a")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!trusted_roots(&remote, None, None)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
        assert!(trusted_roots(&local, Some(Path::new("/nonexistent/ca.pem")), None).is_err());
    }
}
