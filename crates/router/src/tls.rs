//! HTTPS: certificates picked by the server name a client asks for (SNI), per domain, by a
//! one-label wildcard, from an issuer (certificates made on first use, e.g. by Wharf's own
//! CA for app hosts), or a default. Certificates can be set and removed while the router runs,
//! so one obtained later (by ACME, say) is served from the next handshake on.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Makes a certificate for a server name on first use, or declines (`None`). Called during
/// a handshake: it must be quick (a key and a signature are).
pub type Issuer = Box<dyn Fn(&str) -> Option<Arc<CertifiedKey>> + Send + Sync>;

/// How many issued certificates are kept; past it the cache starts again (names are only
/// issued for hosts the issuer accepts, but clients choose what they ask for).
pub const ISSUED_CACHE: usize = 4096;

/// Certificates by domain (`www.example.com`, `*.example.com`), issued ones, and a default
/// for any other name (or none sent).
#[derive(Default)]
pub struct CertResolver {
    by_domain: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    default: RwLock<Option<Arc<CertifiedKey>>>,
    issuer: Option<Issuer>,
    issued: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver")
            .field("domains", &self.by_domain.read().map(|d| d.len()).ok())
            .field("issuer", &self.issuer.is_some())
            .finish_non_exhaustive()
    }
}

impl CertResolver {
    pub fn new(default: Option<Arc<CertifiedKey>>) -> CertResolver {
        CertResolver {
            default: RwLock::new(default),
            ..CertResolver::default()
        }
    }

    /// Names no domain's certificate covers are first offered to `issuer`.
    pub fn with_issuer(mut self, issuer: Issuer) -> CertResolver {
        self.issuer = Some(issuer);
        self
    }

    /// Serves `key` for `domain` (case-insensitive; `*.example.com` covers one label).
    pub fn set(&self, domain: &str, key: Arc<CertifiedKey>) {
        let mut by_domain = self.by_domain.write().expect("certificate lock poisoned");
        by_domain.insert(domain.to_ascii_lowercase(), key);
    }

    pub fn remove(&self, domain: &str) {
        let mut by_domain = self.by_domain.write().expect("certificate lock poisoned");
        by_domain.remove(&domain.to_ascii_lowercase());
    }

    pub fn set_default(&self, key: Option<Arc<CertifiedKey>>) {
        *self.default.write().expect("certificate lock poisoned") = key;
    }

    /// The certificate for `server_name`: the domain's, else its parent's wildcard, else one
    /// the issuer makes, else the default.
    pub fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = server_name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let by_domain = self.by_domain.read().expect("certificate lock poisoned");
            let found = by_domain.get(&name).or_else(|| {
                let (_, parent) = name.split_once('.')?;
                by_domain.get(&format!("*.{parent}"))
            });
            if let Some(key) = found {
                return Some(key.clone());
            }
            drop(by_domain);
            if let Some(key) = self.issued(&name) {
                return Some(key);
            }
        }
        self.default
            .read()
            .expect("certificate lock poisoned")
            .clone()
    }
}

impl CertResolver {
    fn issued(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let issuer = self.issuer.as_ref()?;
        if let Some(key) = self
            .issued
            .read()
            .expect("certificate lock poisoned")
            .get(name)
        {
            return Some(key.clone());
        }
        let key = issuer(name)?;
        let mut issued = self.issued.write().expect("certificate lock poisoned");
        if issued.len() >= ISSUED_CACHE {
            issued.clear();
        }
        issued.insert(name.to_owned(), key.clone());
        Some(key)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(client_hello.server_name())
    }
}

/// A certificate chain and its private key, from PEM.
pub fn certified_key(chain_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("read the certificate chain")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in the chain");
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("read the private key")?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).context("use the private key")?;
    Ok(CertifiedKey::new(chain, signing))
}

/// A server configuration that picks certificates with `resolver` and offers HTTP/2 and
/// HTTP/1.1 by ALPN.
pub fn server_config(resolver: Arc<CertResolver>) -> anyhow::Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("certificate");
        let key = certified_key(
            cert.cert.pem().as_bytes(),
            cert.signing_key.serialize_pem().as_bytes(),
        )
        .expect("certified key");
        Arc::new(key)
    }

    #[test]
    fn picks_by_name() {
        let (default, www, wild) = (key("default"), key("www.example.com"), key("*.example.com"));
        let resolver = CertResolver::new(Some(default.clone()));
        resolver.set("WWW.example.com", www.clone());
        resolver.set("*.example.com", wild.clone());
        let check = |name: Option<&str>, expected: &Arc<CertifiedKey>| {
            let got = resolver.lookup(name).expect("a certificate");
            assert!(Arc::ptr_eq(&got, expected), "{name:?}");
        };
        check(Some("www.example.com"), &www);
        check(Some("Www.Example.Com."), &www);
        check(Some("api.example.com"), &wild);
        check(Some("a.b.example.com"), &default);
        check(Some("example.com"), &default);
        check(None, &default);
        resolver.remove("www.example.com");
        check(Some("www.example.com"), &wild);
        resolver.set_default(None);
        assert!(resolver.lookup(Some("other.org")).is_none());
    }

    #[test]
    fn issues_for_names_the_issuer_accepts_once() {
        let default = key("default");
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let resolver =
            CertResolver::new(Some(default.clone())).with_issuer(Box::new(move |name| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                name.ends_with(".apps.test").then(|| key(name))
            }));
        resolver.set("www.example.com", key("www.example.com"));
        let shop = resolver.lookup(Some("Shop.apps.test")).expect("issued");
        let again = resolver.lookup(Some("shop.apps.test")).expect("cached");
        assert!(Arc::ptr_eq(&shop, &again));
        assert!(!Arc::ptr_eq(&shop, &default));
        let other = resolver.lookup(Some("other.org")).expect("the default");
        assert!(Arc::ptr_eq(&other, &default));
        resolver
            .lookup(Some("www.example.com"))
            .expect("the domain's");
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "issued once per name; never for a domain with its own certificate"
        );
    }

    #[test]
    fn refuses_bad_pem() {
        assert!(certified_key(b"", b"").is_err());
        let cert = rcgen::generate_simple_self_signed(vec!["a".to_owned()]).expect("certificate");
        assert!(certified_key(cert.cert.pem().as_bytes(), b"not a key").is_err());
        assert!(server_config(Arc::new(CertResolver::default())).is_ok());
    }
}
