//! Certificates for SNI endpoints: checking a PEM chain and key before the store keeps them,
//! and reading the facts the API shows (names, validity, issuer, whether browsers trust it).
//!
//! PEM is split by `rustls-pki-types`; X.509 fields are read by `x509-parser`; whether the key
//! belongs to the leaf is rustls's own check (`CertifiedKey::keys_match`: the key's public half,
//! as the ring provider derives it, equals the leaf's SubjectPublicKeyInfo), and trust is
//! rustls's WebPKI verifier over the Mozilla roots of `webpki-roots`: the same code the router
//! serves the certificate with and browsers' root set.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use time::OffsetDateTime;
use wharf_model::Invalid;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// What the API shows about an endpoint's leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// DNS names the certificate covers (its subject alternative names, else its common name).
    pub names: Vec<String>,
    pub starts_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// OpenSSL's one-line form: `/C=US/O=Example/CN=www.example.com`.
    pub issuer: String,
    pub subject: String,
    /// Whether the chain verifies to a root browsers trust.
    pub ca_signed: bool,
    pub self_signed: bool,
}

/// Checks a chain and key as given to `POST` or `PATCH /apps/{app}/sni-endpoints`: the chain
/// parses as PEM certificates (leaf first), the key parses and belongs to the leaf, and the
/// leaf has not expired at `now`.
pub fn validate(
    certificate_chain: &str,
    private_key: &str,
    now: OffsetDateTime,
) -> Result<CertificateFacts, Invalid> {
    let chain = parse_chain(certificate_chain)?;
    let key = parse_key(private_key)?;
    let signing_key = provider::sign::any_supported_type(&key).map_err(|_| {
        Invalid::new(
            "The private key's type is not supported: use an RSA, ECDSA (P-256 or P-384) or \
             Ed25519 key",
        )
    })?;
    CertifiedKey::new(chain.clone(), signing_key)
        .keys_match()
        .map_err(|_| {
            Invalid::new(
                "The private key does not match the certificate: give the key the leaf (first) \
                 certificate was issued for",
            )
        })?;
    let facts = facts_of(&chain)?;
    if facts.expires_at <= now {
        return Err(Invalid::new(format!(
            "The certificate expired at {}: renew it and add the new certificate",
            crate::views::timestamp(facts.expires_at)
        )));
    }
    Ok(facts)
}

/// The facts of a chain the store keeps (validated when it was added).
pub fn facts(certificate_chain: &str) -> anyhow::Result<CertificateFacts> {
    let chain = parse_chain(certificate_chain).map_err(|invalid| anyhow::anyhow!(invalid.0))?;
    facts_of(&chain).map_err(|invalid| anyhow::anyhow!(invalid.0))
}

fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            Invalid::new(format!("The certificate chain is not valid PEM: {error}"))
        })?;
    if chain.is_empty() {
        return Err(Invalid::new(
            "The certificate chain holds no PEM certificate: give the certificate file \
             (-----BEGIN CERTIFICATE-----), the leaf first, then its intermediates",
        ));
    }
    for (index, certificate) in chain.iter().enumerate() {
        X509Certificate::from_der(certificate).map_err(|error| {
            Invalid::new(format!(
                "Certificate {} of the chain is not a valid X.509 certificate: {error}",
                index + 1
            ))
        })?;
    }
    Ok(chain)
}

fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, Invalid> {
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(Invalid::new(
            "The private key is encrypted: decrypt it first (openssl pkey -in key.pem -out \
             plain-key.pem) and give the plain key",
        ));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        Invalid::new(
            "The private key is not a PEM private key: give the key file (-----BEGIN PRIVATE \
             KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
        )
    })
}

fn facts_of(chain: &[CertificateDer<'static>]) -> Result<CertificateFacts, Invalid> {
    let leaf_der = chain.first().expect("parse_chain refuses an empty chain");
    let (_, leaf) = X509Certificate::from_der(leaf_der)
        .map_err(|error| Invalid::new(format!("The leaf certificate is invalid: {error}")))?;
    let mut names: Vec<String> = match leaf.subject_alternative_name() {
        Ok(Some(extension)) => extension
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = leaf
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_ascii_lowercase)
            .collect();
    }
    let self_signed =
        leaf.issuer().as_raw() == leaf.subject().as_raw() && leaf.verify_signature(None).is_ok();
    Ok(CertificateFacts {
        starts_at: leaf.validity().not_before.to_datetime(),
        expires_at: leaf.validity().not_after.to_datetime(),
        issuer: one_line(leaf.issuer()),
        subject: one_line(leaf.subject()),
        ca_signed: !self_signed && trusted(chain, names.first()),
        self_signed,
        names,
    })
}

/// OpenSSL's `/C=US/O=Example/CN=www.example.com`.
fn one_line(name: &X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    name.iter_attributes()
        .map(|attribute| {
            let key = x509_parser::objects::oid2abbrev(attribute.attr_type(), registry)
                .map(str::to_owned)
                .unwrap_or_else(|_| attribute.attr_type().to_id_string());
            let value = attribute.as_str().unwrap_or("?");
            format!("/{key}={value}")
        })
        .collect()
}

/// Whether a browser would trust the chain for `name`: rustls's WebPKI verifier over Mozilla's
/// roots.
fn trusted(chain: &[CertificateDer<'static>], name: Option<&String>) -> bool {
    let Some(name) = name else { return false };
    // A wildcard certificate is verified for one name it covers.
    let name = match name.strip_prefix("*.") {
        Some(rest) => format!("wharf-check.{rest}"),
        None => name.clone(),
    };
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(provider::default_provider()),
    )
    .build() else {
        return false;
    };
    use rustls::client::danger::ServerCertVerifier;
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &server_name, &[], UnixTime::now())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn issue(names: &[&str], days_from_now: (i64, i64)) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("valid names");
        let mut subject = DistinguishedName::new();
        subject.push(DnType::OrganizationName, "Example");
        subject.push(DnType::CommonName, names[0]);
        params.distinguished_name = subject;
        let today = OffsetDateTime::now_utc();
        params.not_before = today + time::Duration::days(days_from_now.0);
        params.not_after = today + time::Duration::days(days_from_now.1);
        let key = KeyPair::generate().expect("generate a key");
        let certificate = params.self_signed(&key).expect("sign");
        (certificate.pem(), key.serialize_pem())
    }

    fn problem(chain: &str, key: &str) -> String {
        validate(chain, key, OffsetDateTime::now_utc())
            .expect_err("should be refused")
            .0
    }

    #[test]
    fn a_matching_self_signed_certificate_is_accepted_with_its_facts() {
        let (chain, key) = issue(&["www.example.com", "*.example.org"], (-1, 90));
        let facts = validate(&chain, &key, OffsetDateTime::now_utc()).expect("valid");
        assert_eq!(facts.names, ["www.example.com", "*.example.org"]);
        assert_eq!(facts.subject, "/O=Example/CN=www.example.com");
        assert_eq!(facts.issuer, facts.subject);
        assert!(facts.self_signed);
        assert!(!facts.ca_signed);
        assert!(facts.starts_at < facts.expires_at);
        assert_eq!(facts, super::facts(&chain).expect("facts"));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let (chain, key) = issue(&["www.example.com"], (-1, 90));
        let (_, other_key) = issue(&["www.example.com"], (-1, 90));
        let (expired, expired_key) = issue(&["old.example.com"], (-90, -1));
        assert!(
            problem("", &key).contains("no PEM certificate"),
            "{}",
            problem("", &key)
        );
        assert!(problem("not pem", &key).contains("no PEM certificate"));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            problem(garbage, &key).contains("not a valid X.509"),
            "{}",
            problem(garbage, &key)
        );
        assert!(problem(&chain, "").contains("not a PEM private key"));
        assert!(problem(&chain, &chain).contains("not a PEM private key"));
        assert!(problem(&chain, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n").contains("encrypted"));
        assert!(problem(&chain, &other_key).contains("does not match"));
        assert!(problem(&expired, &expired_key).contains("expired"));
    }
}
