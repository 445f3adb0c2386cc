//! HTTPS through the router: the certificate picked by SNI (per domain, or the default), HTTP/1.1
//! and HTTP/2 by ALPN, and `X-Forwarded-Proto: https`.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use wharf_router::tls::{certified_key, server_config};
use wharf_router::CertResolver;

struct Pki {
    ca: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap().der().clone();
        Pki {
            ca,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names`: its DER (to compare) and the key the router serves.
    fn issue(&self, names: &[&str]) -> (CertificateDer<'static>, Arc<rustls::sign::CertifiedKey>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let served = certified_key(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        (cert.der().clone(), Arc::new(served))
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

async fn connect(connector: &TlsConnector, addr: SocketAddr, name: &str) -> TlsStream<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), stream)
        .await
        .unwrap()
}

fn served_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn serves_https_with_the_certificate_for_the_name_asked() {
    let upstream = Upstream::start(|req| async move {
        let proto = req.headers()["x-forwarded-proto"]
            .to_str()
            .unwrap()
            .to_owned();
        let port = req.headers()["x-forwarded-port"]
            .to_str()
            .unwrap()
            .to_owned();
        Response::new(full(format!("{proto} {port} {:?}", req.version())))
    })
    .await;
    let pki = Pki::new();
    let (default_der, default_key) = pki.issue(&["*.wharf.test"]);
    let (shop_der, shop_key) = pki.issue(&["shop.example.com"]);
    let resolver = Arc::new(CertResolver::new(Some(default_key)));
    resolver.set("shop.example.com", shop_key);
    let mut routes = table([app("myapp", &[upstream.addr])]);
    routes
        .domains
        .insert("shop.example.com".into(), "myapp".into());
    let router = Harness::with(
        routes,
        |config| config.threads = 2,
        Some(Arc::new(server_config(resolver).unwrap())),
    )
    .await;
    let tls_addr = router.tls_addr.unwrap();
    let port = tls_addr.port();

    // HTTP/1.1 (ALPN) to the app's own name: the default (wildcard) certificate. The two
    // connections stay open: the second is served by the other router thread, handed over
    // (TLS handshake and all) when the first thread accepted it.
    let connector = pki.connector(&[b"http/1.1"]);
    let mut open = Vec::new();
    for (name, der) in [
        ("myapp.wharf.test", &default_der),
        ("shop.example.com", &shop_der),
    ] {
        let stream = connect(&connector, tls_addr, name).await;
        assert_eq!(&served_certificate(&stream), der, "{name}");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::builder()
            .uri("/")
            .header("host", name)
            .body(empty())
            .unwrap();
        let reply = read(sender.send_request(request).await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            (reply.status, reply.body),
            (200, format!("https {port} HTTP/1.1"))
        );
        open.push(sender);
    }
    assert_eq!(router.connections.per_thread(), [1, 1]);

    // HTTP/2 by ALPN.
    let stream = connect(
        &pki.connector(&[b"h2", b"http/1.1"]),
        tls_addr,
        "myapp.wharf.test",
    )
    .await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .uri("https://myapp.wharf.test/over-h2")
        .body(empty())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let reply = read(response).await.unwrap();
    assert_eq!(
        (reply.status, reply.body),
        (200, format!("https {port} HTTP/1.1"))
    );

    let lines = router.wait_for_lines(3).await;
    assert!(
        lines.iter().all(|l| l.ends_with(" protocol=https")),
        "{lines:?}"
    );
    assert!(
        lines[2].contains(" path=\"/over-h2\" host=myapp.wharf.test "),
        "{}",
        lines[2]
    );

    // Plain HTTP still works beside it.
    let reply = get_once(router.addr, "myapp.wharf.test", "/").await;
    assert_eq!(reply.body, format!("http {} HTTP/1.1", router.addr.port()));
    router.stop().await;
}

#[tokio::test]
async fn a_certificate_set_while_running_is_served_from_the_next_handshake() {
    let pki = Pki::new();
    let (default_der, default_key) = pki.issue(&["*.wharf.test"]);
    let (new_der, new_key) = pki.issue(&["www.example.org"]);
    let resolver = Arc::new(CertResolver::new(Some(default_key)));
    let config = Arc::new(server_config(resolver.clone()).unwrap());
    let router = Harness::with(table([]), |_| {}, Some(config)).await;
    let tls_addr = router.tls_addr.unwrap();
    let connector = pki.connector(&[]);
    // Without its own certificate the name gets the default, which does not cover it.
    let stream = TcpStream::connect(tls_addr).await.unwrap();
    let refused = connector
        .connect(ServerName::try_from("www.example.org").unwrap(), stream)
        .await;
    assert!(refused.is_err());
    resolver.set("www.example.org", new_key);
    let stream = connect(&connector, tls_addr, "www.example.org").await;
    assert_eq!(served_certificate(&stream), new_der);
    let stream = connect(&connector, tls_addr, "other.wharf.test").await;
    assert_eq!(served_certificate(&stream), default_der);
    router.stop().await;
}
