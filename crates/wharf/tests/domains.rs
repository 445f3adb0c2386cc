//! End to end: custom domains and SNI endpoints through the real `wharf` CLI and server.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use rcgen::{CertificateParams, KeyPair};
use support::{Server, User};

#[test]
fn the_cli_adds_domains_and_serves_them_with_a_certificate() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let admin = User::new(&server.url, Some(&key));
    admin.run(&["apps:create", "shop"]).ok();

    let added = admin
        .run(&["domains:add", "www.example.com", "-a", "shop"])
        .ok();
    assert_eq!(added, "Adding www.example.com to ⬢ shop... done\n");
    let refused = admin
        .run(&["domains:add", "not_a_host.example.com", "-a", "shop"])
        .failed();
    assert!(refused.contains("letters, digits and dashes"), "{refused}");

    let params = CertificateParams::new(vec!["*.example.com".to_owned()]).unwrap();
    let cert_key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&cert_key).unwrap();
    let files = tempfile::tempdir().unwrap();
    let cert_file = files.path().join("server.crt");
    let key_file = files.path().join("server.key");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, cert_key.serialize_pem()).unwrap();
    let certs_add = admin
        .run(&[
            "certs:add",
            cert_file.to_str().unwrap(),
            key_file.to_str().unwrap(),
            "-a",
            "shop",
        ])
        .ok();
    assert!(
        certs_add.contains("SSL certificate is self signed."),
        "{certs_add}"
    );
    assert!(
        certs_add.contains("Associating www.example.com with "),
        "{certs_add}"
    );

    let listed = admin.run(&["domains", "-a", "shop"]).ok();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], "=== shop Heroku Domain");
    assert!(lines[1].starts_with("shop."), "{listed}");
    let row = lines
        .iter()
        .find(|l| l.starts_with("www.example.com"))
        .unwrap();
    let endpoint = admin.run(&["certs", "-a", "shop", "--json"]).ok();
    let endpoint: serde_json::Value = serde_json::from_str(&endpoint).unwrap();
    let name = endpoint[0]["name"].as_str().unwrap();
    assert!(row.ends_with(name), "{listed}");
    assert_eq!(
        endpoint[0]["domains"],
        serde_json::json!(["www.example.com"])
    );
    assert!(endpoint[0].get("private_key").is_none());

    admin
        .run(&[
            "certs:remove",
            "--name",
            name,
            "--confirm",
            "shop",
            "-a",
            "shop",
        ])
        .ok();
    admin
        .run(&["domains:remove", "www.example.com", "-a", "shop"])
        .ok();
    let listed = admin.run(&["domains", "-a", "shop"]).ok();
    assert!(!listed.contains("Custom Domains"), "{listed}");
}
