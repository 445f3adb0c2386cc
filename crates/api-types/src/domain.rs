//! Custom domains and SNI endpoints (the certificates served for them).

use serde::{Deserialize, Serialize};

use crate::NamedRef;

/// `GET /apps/{app}/domains` and friends. The app's own `<app>.<base-domain>` host is listed
/// first, with kind `heroku`; the domains added to it have kind `custom`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub hostname: String,
    /// `heroku` or `custom`.
    pub kind: String,
    /// The DNS target: point a CNAME (or ALIAS/ANAME at an apex) for the hostname here.
    pub cname: Option<String>,
    /// Always `none`: Wharf does no DNS verification.
    pub status: String,
    pub acm_status: Option<String>,
    pub acm_status_reason: Option<String>,
    pub sni_endpoint: Option<NamedRef>,
    pub app: NamedRef,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /apps/{app}/domains`: `sni_endpoint` is an endpoint's id or name, or `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCreate {
    pub hostname: String,
    #[serde(default)]
    pub sni_endpoint: Option<String>,
}

/// `PATCH /apps/{app}/domains/{domain}`: the endpoint to serve the domain with, or `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainUpdate {
    #[serde(default)]
    pub sni_endpoint: Option<String>,
}

/// Facts read from an SNI endpoint's leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SslCert {
    pub id: String,
    /// The DNS names (subject alternative names) the certificate covers.
    pub cert_domains: Vec<String>,
    pub starts_at: String,
    pub expires_at: String,
    pub issuer: String,
    pub subject: String,
    /// Whether the chain leads to a certificate authority that browsers trust.
    #[serde(rename = "ca_signed?")]
    pub ca_signed: bool,
    #[serde(rename = "self_signed?")]
    pub self_signed: bool,
}

/// `GET /apps/{app}/sni-endpoints` and friends. The private key is never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SniEndpoint {
    pub id: String,
    pub name: String,
    pub display_name: Option<String>,
    pub certificate_chain: String,
    /// Hostnames of the app's domains served with this endpoint.
    pub domains: Vec<String>,
    pub app: NamedRef,
    pub ssl_cert: SslCert,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /apps/{app}/sni-endpoints` and `PATCH /apps/{app}/sni-endpoints/{endpoint}`: PEM text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SniEndpointCreate {
    pub certificate_chain: String,
    pub private_key: String,
}
