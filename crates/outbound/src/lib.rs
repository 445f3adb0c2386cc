//! Where Wharf's server may connect on a tenant's behalf (log drains, git buildpack URLs):
//! the outbound destination policy.
//!
//! The server runs as root next to its own listeners (API, router, rendezvous), the
//! operator's databases and, on a cloud host, a metadata service that hands out credentials.
//! A URL a tenant names must reach none of them. So every address a connection would use is
//! judged before it is used:
//!
//! - never: loopback (`127.0.0.0/8`, `::1`), the unspecified address and "this network"
//!   (`0.0.0.0/8`, `::`), link-local (`169.254.0.0/16` with the metadata service at
//!   `169.254.169.254`, `fe80::/10`), multicast and broadcast, any IPv6 form that carries
//!   one of those (`::ffff:127.0.0.1`, NAT64 `64:ff9b::7f00:1`, 6to4 `2002:7f00:1::`), and
//!   every address of this server's own interfaces (re-read at most a second before a check);
//! - only where the operator allows it ([`AllowList`], `WHARF_OUTBOUND_ALLOW`): private and
//!   other internal or special-use networks (`10.0.0.0/8`, `172.16.0.0/12`,
//!   `192.168.0.0/16`, `100.64.0.0/10`, `198.18.0.0/15`, `fc00::/7`, documentation and
//!   reserved blocks, IPv6 outside `2000::/3`);
//! - otherwise (the internet): allowed.
//!
//! The allow list cannot open the "never" blocks, not even one port of loopback: a local
//! receiver the operator wants tenants to reach runs in a container or network namespace with
//! an address of its own, and that address is allowed.
//!
//! Use: [`resolve_checked`] resolves a host once, judges every address it resolves to, and
//! returns them; connect to exactly those (a second lookup could answer differently: DNS
//! rebinding). [`check_url`] does the same for a URL when it is added, for a clear error then;
//! the connection is checked again anyway.

mod allow;
mod cidr;
mod class;
mod own;
#[cfg(any(test, feature = "test-net"))]
pub mod test_net;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use allow::{AllowEntry, AllowList};
pub use cidr::Cidr;
pub use class::{classify, embedded_ipv4, special_v4_blocks, Class, Embedding, Never, Range};

/// How long this server's own addresses, once read, are trusted before a check reads them
/// again (an address added to an interface is refused from then on).
const OWN_ADDRESSES_MAX_AGE: Duration = Duration::from_secs(1);
/// The longest a name lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The outbound destination policy: the operator's allow list, and this server's own
/// addresses. Cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct Policy {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    allow: AllowList,
    /// Names answered without DNS (tests name receivers this way).
    hosts: HashMap<String, Vec<IpAddr>>,
    own: Mutex<Option<(Instant, Arc<Vec<Cidr>>)>>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("allow", &self.inner.allow.to_string())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// A policy that opens the internal networks of `allow` (none by default).
    pub fn new(allow: AllowList) -> Policy {
        Policy {
            inner: Arc::new(Inner {
                allow,
                ..Inner::default()
            }),
        }
    }

    /// A policy from the `WHARF_OUTBOUND_ALLOW` setting (see [`AllowList::parse`]).
    pub fn from_setting(setting: &str) -> Result<Policy, String> {
        AllowList::parse(setting).map(Policy::new)
    }

    /// The same policy, with `hosts` resolved to these addresses instead of through DNS. The
    /// addresses are judged like any others. For tests, which cannot change the host's DNS.
    pub fn with_hosts(self, hosts: impl IntoIterator<Item = (String, Vec<IpAddr>)>) -> Policy {
        let mut names = self.inner.hosts.clone();
        names.extend(
            hosts
                .into_iter()
                .map(|(name, addresses)| (normalize_name(&name), addresses)),
        );
        Policy {
            inner: Arc::new(Inner {
                allow: self.inner.allow.clone(),
                hosts: names,
                own: Mutex::new(None),
            }),
        }
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.inner.allow
    }

    /// This server's own addresses, read again when the last reading is older than a second.
    /// The server calls this at start so that a host whose tables cannot be read fails then.
    pub fn own_addresses(&self) -> Result<Arc<Vec<Cidr>>, String> {
        let mut cached = self.inner.own.lock().expect("own addresses lock poisoned");
        if let Some((read_at, own)) = cached.as_ref() {
            if read_at.elapsed() < OWN_ADDRESSES_MAX_AGE {
                return Ok(own.clone());
            }
        }
        let own = Arc::new(
            own::read().map_err(|error| format!("read this server's addresses: {error}"))?,
        );
        *cached = Some((Instant::now(), own.clone()));
        Ok(own)
    }

    /// Whether a connection to `address` is allowed now. Pure given this server's addresses.
    pub fn check(&self, address: SocketAddr) -> Result<(), Reason> {
        let own = self.own_addresses().map_err(Reason::OwnAddressesUnknown)?;
        self.judge(address, &own)
    }

    fn judge(&self, address: SocketAddr, own: &[Cidr]) -> Result<(), Reason> {
        let ip = address.ip();
        let class = classify(ip);
        if let Class::Never(never) = class {
            return Err(Reason::Never(never));
        }
        let carried = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(|(_, v4)| IpAddr::V4(v4)),
            IpAddr::V4(_) => None,
        };
        let is_own = |candidate: IpAddr| own.iter().any(|cidr| cidr.contains(candidate));
        if is_own(ip) || carried.is_some_and(is_own) {
            return Err(Reason::OwnAddress);
        }
        match class {
            Class::Internal(range) if !self.inner.allow.allows(ip, address.port()) => {
                Err(Reason::Internal(range))
            }
            _ => Ok(()),
        }
    }

    /// The addresses `host` names: an address itself, one of [`Policy::with_hosts`], or what
    /// DNS answers (in its order, without repeats).
    async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let failed = |error: String| Refused::Lookup {
            host: host.to_owned(),
            error,
        };
        if host.is_empty() {
            return Err(failed("no host named".to_owned()));
        }
        if let Some(addresses) = self.inner.hosts.get(&normalize_name(host)) {
            return Ok(addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect());
        }
        let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| failed(format!("no answer within {LOOKUP_TIMEOUT:?}")))?
            .map_err(|error| failed(error.to_string()))?;
        let mut addresses: Vec<SocketAddr> = Vec::new();
        for address in found {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        if addresses.is_empty() {
            return Err(failed("it resolves to no address".to_owned()));
        }
        Ok(addresses)
    }
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Loopback, unspecified, link-local, multicast or broadcast (or an IPv6 form of one).
    Never(Never),
    /// An address of this server's interfaces.
    OwnAddress,
    /// An internal network the operator has not allowed (for this port).
    Internal(Range),
    /// This server's own addresses could not be read, so nothing can be judged.
    OwnAddressesUnknown(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Never(never) => never.fmt(f),
            Reason::OwnAddress => f.write_str("an address of this server"),
            Reason::Internal(range) => write!(
                f,
                "an address in {range}, which this server's operator has not opened to outbound connections"
            ),
            Reason::OwnAddressesUnknown(error) => write!(
                f,
                "which cannot be checked because this server's own addresses are unknown ({error})"
            ),
        }
    }
}

/// Why Wharf will not connect for a tenant: the policy refuses an address, the name does not
/// resolve, or the URL names no host. [`Refused::is_policy`] tells the first apart, which is
/// the tenant's to fix; a failed lookup may be passing.
///
/// Callers put the subject in front and advice behind, e.g. `drain host "x" resolves to
/// 127.0.0.1, a loopback address of this server: drains must point at hosts outside it`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{}", describe(host, address, reason))]
    Address {
        /// The host as named (a name or an address).
        host: String,
        /// The refused address (the first of those the host resolves to that is refused).
        address: SocketAddr,
        reason: Reason,
    },
    #[error("host {host:?} could not be looked up: {error}")]
    Lookup { host: String, error: String },
    #[error("{url:?} {error}")]
    Url { url: String, error: String },
}

impl Refused {
    /// Whether the policy refused an address (rather than a lookup or the URL failing).
    pub fn is_policy(&self) -> bool {
        matches!(self, Refused::Address { .. })
    }
}

fn describe(host: &str, address: &SocketAddr, reason: &Reason) -> String {
    let ip = address.ip();
    let verb = match host.parse::<IpAddr>() {
        Ok(named) if named == ip => "is",
        _ => "resolves to",
    };
    let form = match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6)
            .map(|(form, v4)| format!(", the {form} form of {v4},"))
            .unwrap_or_default(),
        IpAddr::V4(_) => String::new(),
    };
    let comma = if form.is_empty() { "," } else { "" };
    format!("host {host:?} {verb} {ip}{form}{comma} {reason}")
}

/// Resolves `host` (a name, an address, or an IPv6 address in brackets) for `port` once,
/// refuses if ANY address it resolves to is refused (a name with one good and one bad
/// address is refused: the connection could go to either), and returns the addresses to
/// connect to, in the resolver's order. Connect to these and no others: resolving again
/// could answer differently.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    policy: &Policy,
) -> Result<Vec<SocketAddr>, Refused> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addresses = policy.lookup(bare, port).await?;
    let refuse = |address: SocketAddr, reason: Reason| Refused::Address {
        host: bare.to_owned(),
        address,
        reason,
    };
    let own = policy
        .own_addresses()
        .map_err(|error| refuse(addresses[0], Reason::OwnAddressesUnknown(error)))?;
    for address in &addresses {
        policy
            .judge(*address, &own)
            .map_err(|reason| refuse(*address, reason))?;
    }
    Ok(addresses)
}

/// Checks a URL's host and port ([`resolve_checked`]) when a tenant names it, for a clear
/// error then. The port is the URL's, else its scheme's (`http` 80, `https` 443, `git` 9418,
/// `ssh` 22); a URL without either is refused. `Err(Refused::Lookup)` means the name does
/// not resolve now: a caller may accept such a URL, since every connection is checked again.
pub async fn check_url(url: &str, policy: &Policy) -> Result<(), Refused> {
    let bad = |error: &str| Refused::Url {
        url: url.to_owned(),
        error: error.to_owned(),
    };
    let parsed = url::Url::parse(url).map_err(|error| bad(&format!("is not a URL ({error})")))?;
    let host = match parsed.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(bad("names no host")),
    };
    let port = parsed
        .port_or_known_default()
        .or(match parsed.scheme() {
            "git" => Some(9418),
            "ssh" | "git+ssh" | "ssh+git" => Some(22),
            _ => None,
        })
        .ok_or_else(|| bad("names no port"))?;
    resolve_checked(&host, port, policy).await.map(|_| ())
}

#[cfg(test)]
mod tests;
