//! Wharf's certificate authority: created on a server's first start under
//! `<data-dir>/tls/`, it issues the server's certificate for the names clients reach it by
//! (`localhost`, `127.0.0.1`, the host's name, `*.<base-domain>`). Clients trust Wharf by
//! trusting `ca.pem` (`NODE_EXTRA_CA_CERTS`, `git -c http.sslCAInfo`, the CLI).
//!
//! Invariants:
//! - The CA key never leaves `<data-dir>/tls/` and is written with mode 0600.
//! - The server certificate is issued again when the names it must cover change; the CA stays,
//!   so clients keep trusting the server.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const CA_NAME: &str = "Wharf CA";
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";
/// The names the current server certificate covers, to know when to issue it again.
const SERVER_NAMES: &str = "server-names.json";
const CA_YEARS: i64 = 20;
const SERVER_DAYS: i64 = 825;

/// The server's TLS identity.
#[derive(Clone)]
pub struct Tls {
    ca_path: PathBuf,
    config: Arc<rustls::ServerConfig>,
    key: Arc<rustls::sign::CertifiedKey>,
    issuer: Arc<Issuer<'static, KeyPair>>,
    ca_cert: CertificateDer<'static>,
}

impl Tls {
    /// Loads the CA and server certificate under `dir`, creating what is missing, and issuing
    /// the server certificate again if `names` changed.
    pub fn load_or_create(dir: &Path, names: &[String]) -> anyhow::Result<Tls> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let ca_key_path = dir.join(CA_KEY);
        let ca_key = if ca_key_path.is_file() {
            let pem = std::fs::read_to_string(&ca_key_path)
                .with_context(|| format!("read {}", ca_key_path.display()))?;
            KeyPair::from_pem(&pem).context("parse the CA key")?
        } else {
            let key = KeyPair::generate().context("generate the CA key")?;
            let cert = ca_params()?
                .self_signed(&key)
                .context("sign the CA certificate")?;
            write_file(&dir.join(CA_CERT), cert.pem().as_bytes(), 0o644)?;
            write_file(&ca_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            tracing::info!(ca = %dir.join(CA_CERT).display(), "created Wharf's certificate authority");
            // A new CA makes any older server certificate useless.
            let _ = std::fs::remove_file(dir.join(SERVER_NAMES));
            key
        };
        let issuer = Issuer::new(ca_params()?, ca_key);
        let names_path = dir.join(SERVER_NAMES);
        let wanted = serde_json::to_string(names).context("encode names")?;
        let current = std::fs::read_to_string(&names_path).unwrap_or_default();
        if current != wanted || !dir.join(SERVER_CERT).is_file() {
            let key = KeyPair::generate().context("generate the server key")?;
            let cert = server_params(names)?
                .signed_by(&key, &issuer)
                .context("sign the server certificate")?;
            write_file(&dir.join(SERVER_CERT), cert.pem().as_bytes(), 0o644)?;
            write_file(&dir.join(SERVER_KEY), key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&names_path, wanted.as_bytes(), 0o644)?;
        }
        let ca_cert =
            CertificateDer::from_pem_file(dir.join(CA_CERT)).context("read the CA certificate")?;
        let chain = vec![
            CertificateDer::from_pem_file(dir.join(SERVER_CERT))
                .context("read the server certificate")?,
            ca_cert.clone(),
        ];
        let key =
            PrivateKeyDer::from_pem_file(dir.join(SERVER_KEY)).context("read the server key")?;
        let certified = rustls::sign::CertifiedKey::new(
            chain.clone(),
            rustls::crypto::ring::sign::any_supported_type(&key).context("use the server key")?,
        );
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("use the server certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            ca_path: dir.join(CA_CERT),
            config: Arc::new(config),
            key: Arc::new(certified),
            issuer: Arc::new(issuer),
            ca_cert,
        })
    }

    /// A certificate for `name` alone, issued now by the CA (a key and a signature: about a
    /// millisecond). For names the server certificate cannot cover: strict clients refuse
    /// `*.localhost`, a wildcard over a single label.
    pub fn issue(&self, name: &str) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
        let key = KeyPair::generate().context("generate a key")?;
        let cert = server_params(&[name.to_owned()])?
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("sign a certificate for {name}"))?;
        let private = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|error| anyhow::anyhow!("encode the key: {error}"))?;
        Ok(Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert.der().clone(), self.ca_cert.clone()],
            rustls::crypto::ring::sign::any_supported_type(&private).context("use the key")?,
        )))
    }

    /// The CA certificate clients should trust.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The server certificate (with the CA's) and its key, for a server that picks among
    /// several certificates (the router, by SNI).
    pub fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.key.clone()
    }

    /// The server side of a TLS handshake with the server certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "Wharf");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365 * CA_YEARS);
    Ok(params)
}

fn server_params(names: &[String]) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(names.to_vec())
        .with_context(|| format!("server certificate names {names:?}"))?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        names.first().map_or("wharf", String::as_str),
    );
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SERVER_DAYS);
    Ok(params)
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .with_context(|| format!("create {}", temporary.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    /// A TLS client that trusts only `ca`, connecting as `server_name` to a server using `tls`.
    async fn handshake(tls: &Tls, ca: &Path, server_name: &str) -> Result<(), String> {
        handshake_with(tls.server_config(), ca, server_name).await
    }

    async fn handshake_with(
        config: Arc<rustls::ServerConfig>,
        ca: &Path,
        server_name: &str,
    ) -> Result<(), String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let server = tokio::spawn(async move {
            if let Ok(mut stream) = acceptor.accept(server_io).await {
                let _ = stream.write_all(b"rendezvous\r\n").await;
                let _ = stream.shutdown().await;
            }
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| e.to_string())?;
        let mut stream = connector
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        let mut greeting = String::new();
        let _ = stream.read_to_string(&mut greeting).await;
        server.abort();
        if greeting == "rendezvous\r\n" {
            Ok(())
        } else {
            Err(format!("read {greeting:?}"))
        }
    }

    #[tokio::test]
    async fn clients_trusting_the_ca_reach_every_name() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::load_or_create(
            dir.path(),
            &names(&["localhost", "127.0.0.1", "*.apps.example.com"]),
        )
        .unwrap();
        for name in ["localhost", "127.0.0.1", "myapp.apps.example.com"] {
            handshake(&tls, tls.ca_path(), name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(handshake(&tls, tls.ca_path(), "elsewhere.example.org")
            .await
            .is_err());
        let mode = std::fs::metadata(dir.path().join(CA_KEY))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn the_ca_survives_restarts_and_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let first = Tls::load_or_create(dir.path(), &names(&["localhost"])).unwrap();
        let ca = std::fs::read(first.ca_path()).unwrap();
        let server = std::fs::read(dir.path().join(SERVER_CERT)).unwrap();

        let again = Tls::load_or_create(dir.path(), &names(&["localhost"])).unwrap();
        assert_eq!(std::fs::read(again.ca_path()).unwrap(), ca);
        assert_eq!(
            std::fs::read(dir.path().join(SERVER_CERT)).unwrap(),
            server,
            "same names, same certificate"
        );

        let renamed =
            Tls::load_or_create(dir.path(), &names(&["localhost", "wharf.example.com"])).unwrap();
        assert_eq!(
            std::fs::read(renamed.ca_path()).unwrap(),
            ca,
            "the CA stays"
        );
        assert_ne!(std::fs::read(dir.path().join(SERVER_CERT)).unwrap(), server);
        handshake(&renamed, renamed.ca_path(), "wharf.example.com")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn another_ca_is_not_trusted() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let tls = Tls::load_or_create(ours.path(), &names(&["localhost"])).unwrap();
        let other = Tls::load_or_create(theirs.path(), &names(&["localhost"])).unwrap();
        assert!(handshake(&tls, other.ca_path(), "localhost").await.is_err());
    }

    #[derive(Debug)]
    struct Always(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for Always {
        fn resolve(
            &self,
            _: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    #[tokio::test]
    async fn issues_certificates_for_single_names() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::load_or_create(dir.path(), &names(&["localhost", "*.localhost"])).unwrap();
        let config = |key| {
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Always(key)));
            Arc::new(config)
        };
        // Strict clients refuse the server certificate's `*.localhost` for an app host...
        assert!(handshake(&tls, tls.ca_path(), "shop.localhost")
            .await
            .is_err());
        // ...and accept one issued for the name.
        let issued = tls.issue("shop.localhost").unwrap();
        handshake_with(config(issued.clone()), tls.ca_path(), "shop.localhost")
            .await
            .unwrap();
        assert!(
            handshake_with(config(issued), tls.ca_path(), "other.localhost")
                .await
                .is_err()
        );
    }
}
