//! Whether dynos reach an add-on server, and whether they get in without a password.
//!
//! Dynos live in a network of their own (`WHARF_DYNO_NETWORK`) behind a host bridge whose
//! address, the *gateway*, is the host as dynos see it. An add-on server the operator
//! configured at a loopback address is reached by dynos at the gateway on the same port (the
//! operator makes it listen there); a server anywhere else is reached where it is
//! ([`dyno_address`]).
//!
//! A probe connects as a dyno would, from the gateway's address (so the server applies the
//! rules it has for the dyno network), never sends a password, and classifies the answer
//! ([`DynoAccess`]): PostgreSQL through its startup message (protocol 3.0, no TLS) for the
//! user `postgres` on the database `postgres`; Redis through a `PING` without `AUTH`. The
//! whole probe takes at most [`PROBE_TIMEOUT`].
//!
//! What a probe cannot see: a PostgreSQL that trusts the dyno network only over TLS
//! (`hostssl ... trust`), or only for other users or databases than `postgres`; the server's
//! own words are passed on when it turns the probe away.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::resp::{self, Reply};

/// The longest a probe (connecting, asking and reading the answer) may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest PostgreSQL message a probe reads (an error with its fields is far smaller).
const POSTGRES_MESSAGE_LIMIT: usize = 16 * 1024;
/// PostgreSQL's protocol 3.0 in a startup message.
const POSTGRES_PROTOCOL: i32 = 3 << 16;

/// The dyno network as add-on servers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynoNetwork {
    /// The host's address on the dyno bridge: dynos reach the host there, and probes connect
    /// from it.
    pub gateway: Ipv4Addr,
    /// The dynos' subnet (`198.19.0.0/16`), named in what operators are told to configure.
    pub subnet: (Ipv4Addr, u8),
}

impl DynoNetwork {
    /// The subnet as `pg_hba.conf` writes it (`198.19.0.0/16`).
    pub fn subnet_text(&self) -> String {
        format!("{}/{}", self.subnet.0, self.subnet.1)
    }
}

/// Where dynos reach a server whose admin URL names `admin_host`: a loopback address means
/// the host itself, which dynos reach at the gateway; any other address is reached as it is.
pub fn dyno_address(admin_host: IpAddr, gateway: Ipv4Addr) -> IpAddr {
    match admin_host.is_loopback() {
        true => IpAddr::V4(gateway),
        false => admin_host,
    }
}

/// The address of `host` (a name or an address) on `port`, resolved once (at start-up: the
/// firewall opens what it found, so a later change of the name's address is not followed).
/// IPv4 addresses first, as the dyno network is IPv4. `what` names the setting in errors.
pub async fn resolve(host: &str, port: u16, what: &str) -> anyhow::Result<SocketAddr> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| {
            anyhow::anyhow!("cannot resolve {host:?}, the host of {what} ({error}): fix {what}")
        })?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| anyhow::anyhow!("{host:?}, the host of {what}, has no address: fix {what}"))
}

/// The protocol an add-on server speaks, which says how to probe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Postgres,
    Redis,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Postgres => "PostgreSQL",
            Protocol::Redis => "Redis",
        }
    }
}

/// An add-on server as dynos reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddonServer {
    pub protocol: Protocol,
    /// The address and port dynos connect to (the host in the URLs apps get).
    pub address: SocketAddr,
}

/// What a dyno meets when it connects to an add-on server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynoAccess {
    /// The server asks a dyno for a password, or turns it away before one would matter.
    PasswordRequired,
    /// A dyno gets in without a password (PostgreSQL trusts the dyno network for
    /// `postgres`; Redis's `default` user has none).
    Open,
    /// Dynos cannot use the server (why, in words).
    Unreachable(String),
}

impl DynoAccess {
    /// As `GET /addon-services` shows it.
    pub fn state(&self) -> &'static str {
        match self {
            DynoAccess::PasswordRequired => "password_required",
            DynoAccess::Open => "open",
            DynoAccess::Unreachable(_) => "unreachable",
        }
    }
}

/// A probe's finding about one server, with what it means for the operator in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub server: AddonServer,
    pub access: DynoAccess,
    /// Where dynos reach the server and whether they need a password; for `Open` and
    /// `Unreachable`, what to change.
    pub message: String,
}

/// What the server answered, as far as a probe cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    access: DynoAccess,
    /// The server's own words when it turned the probe away.
    refusal: Option<String>,
}

impl Finding {
    fn of(access: DynoAccess) -> Finding {
        Finding {
            access,
            refusal: None,
        }
    }
}

/// Connects to `server` from `network`'s gateway as a dyno would and says whether a dyno gets
/// in without a password. Never sends a password; never takes longer than
/// [`PROBE_TIMEOUT`].
pub async fn probe(server: AddonServer, network: &DynoNetwork) -> Report {
    let source = IpAddr::V4(network.gateway);
    let finding = match tokio::time::timeout(PROBE_TIMEOUT, ask(server, source)).await {
        Ok(finding) => finding,
        Err(_) => Finding::of(DynoAccess::Unreachable(format!(
            "no answer within {} s",
            PROBE_TIMEOUT.as_secs()
        ))),
    };
    Report {
        server,
        message: describe(server, network, &finding),
        access: finding.access,
    }
}

async fn ask(server: AddonServer, source: IpAddr) -> Finding {
    let stream = match connect_from(source, server.address).await {
        Ok(stream) => stream,
        Err(reason) => return Finding::of(DynoAccess::Unreachable(reason)),
    };
    match server.protocol {
        Protocol::Postgres => match postgres_first_reply(stream).await {
            Ok(reply) => classify_postgres(&reply),
            Err(reason) => Finding::of(DynoAccess::Unreachable(reason)),
        },
        Protocol::Redis => {
            let mut connection = resp::Connection::new(stream);
            match connection.raw(&["PING"]).await {
                Ok(reply) => classify_redis(&reply),
                Err(error) => Finding::of(DynoAccess::Unreachable(format!(
                    "Redis did not answer PING: {error:#}"
                ))),
            }
        }
    }
}

/// A TCP connection to `address` from `source` (port chosen by the kernel), as a dyno's
/// connection arrives from the dyno network.
async fn connect_from(source: IpAddr, address: SocketAddr) -> Result<TcpStream, String> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|error| format!("cannot open a socket: {error}"))?;
    socket.bind(SocketAddr::new(source, 0)).map_err(|error| {
        format!(
            "cannot connect from {source}, the dyno network's gateway ({error}): is the dyno \
             bridge up?"
        )
    })?;
    socket
        .connect(address)
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            _ => format!("cannot connect: {error}"),
        })
}

/// The first message a PostgreSQL server sends after a startup message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PostgresReply {
    /// `R`: an authentication request (0 = OK, 3 = cleartext, 5 = MD5, 10 = SASL, ...).
    Authentication(i32),
    /// `E`: an error with its SQLSTATE and message.
    Error { code: String, message: String },
    /// Any other message type.
    Other(u8),
}

/// The startup message for `postgres` on `postgres`, protocol 3.0, with no TLS asked for.
fn postgres_startup() -> Vec<u8> {
    let mut body = POSTGRES_PROTOCOL.to_be_bytes().to_vec();
    for (key, value) in [
        ("user", "postgres"),
        ("database", "postgres"),
        ("application_name", "wharf-probe"),
    ] {
        for text in [key, value] {
            body.extend_from_slice(text.as_bytes());
            body.push(0);
        }
    }
    body.push(0);
    let length = i32::try_from(body.len() + 4).expect("a startup message of a few dozen bytes");
    let mut message = length.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

async fn postgres_first_reply(mut stream: TcpStream) -> Result<PostgresReply, String> {
    stream
        .write_all(&postgres_startup())
        .await
        .map_err(|error| format!("cannot send PostgreSQL's startup message: {error}"))?;
    let mut head = [0u8; 5];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|error| format!("PostgreSQL did not answer the startup message: {error}"))?;
    let length = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let length = usize::try_from(length)
        .ok()
        .and_then(|length| length.checked_sub(4))
        .filter(|length| *length <= POSTGRES_MESSAGE_LIMIT)
        .ok_or_else(|| format!("not a PostgreSQL answer (a message of length {length})"))?;
    let mut body = vec![0u8; length];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|error| format!("PostgreSQL's answer was cut short: {error}"))?;
    Ok(parse_postgres_reply(head[0], &body))
}

fn parse_postgres_reply(kind: u8, body: &[u8]) -> PostgresReply {
    match kind {
        b'R' if body.len() >= 4 => {
            PostgresReply::Authentication(i32::from_be_bytes([body[0], body[1], body[2], body[3]]))
        }
        b'E' => {
            let (mut code, mut message) = (String::new(), String::new());
            // Fields: a type byte and a NUL-terminated text each, then a final NUL.
            let mut rest = body;
            while let Some((&field, after)) = rest.split_first() {
                if field == 0 {
                    break;
                }
                let end = after.iter().position(|&b| b == 0).unwrap_or(after.len());
                let text = String::from_utf8_lossy(&after[..end]).into_owned();
                match field {
                    b'C' => code = text,
                    b'M' => message = text,
                    _ => {}
                }
                rest = after.get(end + 1..).unwrap_or_default();
            }
            PostgresReply::Error { code, message }
        }
        other => PostgresReply::Other(other),
    }
}

fn classify_postgres(reply: &PostgresReply) -> Finding {
    match reply {
        PostgresReply::Authentication(0) => Finding::of(DynoAccess::Open),
        // Cleartext, MD5, SASL (SCRAM), and the Kerberos/GSSAPI/SSPI ones: all ask for
        // something a dyno must know.
        PostgresReply::Authentication(_) => Finding::of(DynoAccess::PasswordRequired),
        // invalid_authorization_specification: pg_hba.conf has no entry for the dyno
        // network, or one that rejects it; either way no dyno gets in without a password.
        PostgresReply::Error { code, message } if code == "28000" => Finding {
            access: DynoAccess::PasswordRequired,
            refusal: Some(message.clone()),
        },
        PostgresReply::Error { code, message } => Finding::of(DynoAccess::Unreachable(format!(
            "PostgreSQL answered with an error ({code}): {message}"
        ))),
        PostgresReply::Other(kind) => Finding::of(DynoAccess::Unreachable(format!(
            "not a PostgreSQL answer (a message of type {:?})",
            char::from(*kind)
        ))),
    }
}

fn classify_redis(reply: &Reply) -> Finding {
    match reply {
        Reply::Status(status) if status == "PONG" => Finding::of(DynoAccess::Open),
        Reply::Error(error) => {
            let word = error.split_whitespace().next().unwrap_or_default();
            match word {
                "NOAUTH" | "WRONGPASS" => Finding::of(DynoAccess::PasswordRequired),
                // Protected mode: Redis turns away every client but loopback ones.
                "DENIED" => Finding {
                    access: DynoAccess::PasswordRequired,
                    refusal: Some(error.clone()),
                },
                // Logged in as `default` without a password, which may not PING: still in.
                "NOPERM" => Finding::of(DynoAccess::Open),
                _ => Finding::of(DynoAccess::Unreachable(format!(
                    "Redis answered PING with an error: {error}"
                ))),
            }
        }
        other => Finding::of(DynoAccess::Unreachable(format!(
            "not a Redis answer to PING: {other:?}"
        ))),
    }
}

/// The operator's line about a server: where dynos reach it, whether they need a password,
/// and what to change when they do not or cannot reach it.
fn describe(server: AddonServer, network: &DynoNetwork, finding: &Finding) -> String {
    let name = server.protocol.name();
    let address = server.address;
    let subnet = network.subnet_text();
    match (&finding.access, server.protocol) {
        (DynoAccess::PasswordRequired, Protocol::Postgres) => match &finding.refusal {
            None => format!("dynos reach {name} at {address} and must give a password"),
            Some(refusal) => format!(
                "dynos reach {name} at {address}, which turns user postgres away without \
                 asking for a password ({refusal}); apps log in with their own roles, which \
                 need `host all all {subnet} scram-sha-256` in pg_hba.conf"
            ),
        },
        (DynoAccess::PasswordRequired, Protocol::Redis) => match &finding.refusal {
            None => format!("dynos reach {name} at {address} and must give a password"),
            Some(refusal) => format!(
                "dynos reach {name} at {address}, which turns them away ({refusal}): give \
                 its default user a password (requirepass) so that apps can log in as their \
                 own users"
            ),
        },
        (DynoAccess::Open, Protocol::Postgres) => format!(
            "dynos reach {name} at {address} and log in as postgres WITHOUT a password \
             (pg_hba.conf trusts the dyno network): put `host all all {subnet} scram-sha-256` \
             in pg_hba.conf above any line that trusts these addresses, and reload PostgreSQL"
        ),
        (DynoAccess::Open, Protocol::Redis) => format!(
            "dynos reach {name} at {address} and use it as its default user WITHOUT a \
             password: give the default user a password (`requirepass`, or `ACL SETUSER \
             default on >PASSWORD`) and put it in WHARF_ADDON_REDIS_URL"
        ),
        (DynoAccess::Unreachable(reason), protocol) => {
            let fix = match (address.ip() == IpAddr::V4(network.gateway), protocol) {
                (true, Protocol::Postgres) => format!(
                    "make PostgreSQL listen there too: add {} to listen_addresses and restart it",
                    network.gateway
                ),
                (true, Protocol::Redis) => format!(
                    "make Redis listen there too: add {} to bind and restart it",
                    network.gateway
                ),
                (false, _) => {
                    format!("check that {name} listens on {address} and that this host reaches it")
                }
            };
            format!("dynos cannot reach {name} at {address} ({reason}): {fix}")
        }
    }
}

/// Why a new add-on of `service` is refused, given the last probe of its server: only when
/// dynos would get in without a password and the operator has not accepted that risk
/// (`allow_open`). A server that cannot be reached is not refused here: provisioning itself
/// then says what failed.
pub fn provisioning_refusal(service: &str, report: &Report, allow_open: bool) -> Option<String> {
    match (&report.access, allow_open) {
        (DynoAccess::Open, false) => Some(format!(
            "{service} is not offered while its server lets dynos in without a password \
             ({}). The operator fixes the server, or accepts the risk with \
             WHARF_ADDONS_ALLOW_OPEN_SERVERS=true",
            report.message
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
