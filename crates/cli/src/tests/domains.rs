//! Domain and certificate commands: requests sent and text printed.

use wharf_api_types::{Domain, NamedRef, SniEndpoint, SslCert};

use super::fixtures::to_json;
use super::harness::run;
use super::server::json;

fn domain(hostname: &str, kind: &str, endpoint: Option<&str>) -> Domain {
    Domain {
        id: format!("{hostname}-id"),
        hostname: hostname.to_string(),
        kind: kind.to_string(),
        cname: (kind == "custom").then(|| "myapp.wharf.example.net".to_string()),
        status: "none".to_string(),
        acm_status: None,
        acm_status_reason: None,
        sni_endpoint: endpoint.map(|name| NamedRef {
            id: format!("{name}-id"),
            name: name.to_string(),
        }),
        app: NamedRef {
            id: "myapp-id".to_string(),
            name: "myapp".to_string(),
        },
        created_at: "2026-11-01T10:00:00Z".to_string(),
        updated_at: "2026-11-01T10:00:00Z".to_string(),
    }
}

fn endpoint(name: &str, names: &[&str], domains: &[&str]) -> SniEndpoint {
    SniEndpoint {
        id: format!("{name}-id"),
        name: name.to_string(),
        display_name: None,
        certificate_chain: "-----BEGIN CERTIFICATE-----\n...".to_string(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        app: NamedRef {
            id: "myapp-id".to_string(),
            name: "myapp".to_string(),
        },
        ssl_cert: SslCert {
            id: format!("{name}-id"),
            cert_domains: names.iter().map(|n| n.to_string()).collect(),
            starts_at: "2026-11-01T00:00:00Z".to_string(),
            expires_at: "2027-02-01T12:30:00Z".to_string(),
            issuer: format!("/CN={}", names[0]),
            subject: format!("/CN={}", names[0]),
            ca_signed: false,
            self_signed: true,
        },
        created_at: "2026-11-01T10:00:00Z".to_string(),
        updated_at: "2026-11-01T10:00:00Z".to_string(),
    }
}

#[tokio::test]
async fn domains_lists_the_heroku_domain_then_a_custom_table() {
    let outcome = run(
        &["domains", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/domains",
            200,
            &to_json(&vec![
                domain("myapp.wharf.example.net", "heroku", None),
                domain("www.example.com", "custom", Some("tokyo-12345")),
                domain("example.com", "custom", None),
            ]),
        )],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.stdout,
        "=== myapp Heroku Domain\n\
         myapp.wharf.example.net\n\
         \n\
         === myapp Custom Domains\n\
         Domain Name  DNS Record Type  DNS Target  SNI Endpoint\n\
         ───────────────  ───────────────  ───────────────────────  ────────────\n\
         www.example.com  CNAME  myapp.wharf.example.net  tokyo-12345\n\
         example.com  ALIAS or ANAME  myapp.wharf.example.net\n"
    );
}

#[tokio::test]
async fn domains_without_custom_ones_shows_only_the_apps_own() {
    let outcome = run(
        &["domains", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/domains",
            200,
            &to_json(&vec![domain("myapp.wharf.example.net", "heroku", None)]),
        )],
    )
    .await;
    assert_eq!(
        outcome.stdout,
        "=== myapp Heroku Domain\nmyapp.wharf.example.net\n"
    );
}

#[tokio::test]
async fn domains_add_posts_the_hostname_and_says_where_to_point_dns() {
    let outcome = run(
        &["domains:add", "www.example.com", "-a", "myapp"],
        vec![json(
            "POST /apps/myapp/domains",
            201,
            &to_json(&domain("www.example.com", "custom", None)),
        )],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.request("POST /apps/myapp/domains").json(),
        serde_json::json!({"hostname": "www.example.com", "sni_endpoint": null})
    );
    assert_eq!(
        outcome.stdout,
        "Adding www.example.com to ⬢ myapp... done\n"
    );
    assert_eq!(
        outcome.stderr,
        " ›   Warning: Configure your app's DNS provider to point to the DNS Target \
         myapp.wharf.example.net (CNAME record).\n"
    );
}

#[tokio::test]
async fn domains_add_shows_the_apis_refusal() {
    let outcome = run(
        &["domains:add", "www.example.com", "-a", "myapp"],
        vec![json(
            "POST /apps/myapp/domains",
            422,
            r#"{"id":"invalid_params","message":"www.example.com is already in use by another app"}"#,
        )],
    )
    .await;
    assert_eq!(outcome.stdout, "Adding www.example.com to ⬢ myapp... !\n");
    assert_eq!(
        outcome.error_lines()[0],
        " ›   Error: www.example.com is already in use by another app"
    );
}

#[tokio::test]
async fn domains_info_and_remove_name_the_domain_in_the_path() {
    let info = run(
        &["domains:info", "www.example.com", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/domains/www.example.com",
            200,
            &to_json(&domain("www.example.com", "custom", Some("tokyo-12345"))),
        )],
    )
    .await;
    info.result.as_ref().unwrap();
    assert!(
        info.stdout.starts_with("=== www.example.com\nApp:"),
        "{}",
        info.stdout
    );
    assert!(
        info.stdout
            .contains("DNS Target:      myapp.wharf.example.net\n"),
        "{}",
        info.stdout
    );
    assert!(
        info.stdout.contains("SNI Endpoint:    tokyo-12345\n"),
        "{}",
        info.stdout
    );

    let removed = run(
        &["domains:remove", "www.example.com", "-a", "myapp"],
        vec![json(
            "DELETE /apps/myapp/domains/www.example.com",
            200,
            &to_json(&domain("www.example.com", "custom", None)),
        )],
    )
    .await;
    removed.result.as_ref().unwrap();
    assert_eq!(
        removed.stdout,
        "Removing www.example.com from ⬢ myapp... done\n"
    );
}

#[tokio::test]
async fn certs_lists_endpoints_in_herokus_columns() {
    let outcome = run(
        &["certs", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/sni-endpoints",
            200,
            &to_json(&vec![endpoint(
                "tokyo-12345",
                &["www.example.com", "*.example.org"],
                &["www.example.com"],
            )]),
        )],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.stdout,
        "Name  Common Name(s)  Expires  Trusted  Type  Domains\n\
         ───────────  ──────────────────────────────  ────────────────────  ───────  ────  ───────\n\
         tokyo-12345  www.example.com, *.example.org  2027-02-01 12:30 UTC  False  SNI  1\n"
    );
    let empty = run(
        &["certs", "-a", "myapp"],
        vec![json("GET /apps/myapp/sni-endpoints", 200, "[]")],
    )
    .await;
    assert_eq!(
        empty.stdout,
        "⬢ myapp has no SSL certificates.\nUse wharf certs:add CERT_FILE KEY_FILE to add one.\n"
    );
}

#[tokio::test]
async fn certs_add_uploads_the_files_and_serves_the_domains_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("server.crt");
    let key_file = dir.path().join("server.key");
    std::fs::write(&cert_file, "CERT PEM").unwrap();
    std::fs::write(&key_file, "KEY PEM").unwrap();
    let added = endpoint("tokyo-12345", &["*.example.com"], &[]);
    let outcome = run(
        &[
            "certs:add",
            cert_file.to_str().unwrap(),
            key_file.to_str().unwrap(),
            "-a",
            "myapp",
        ],
        vec![
            json("POST /apps/myapp/sni-endpoints", 201, &to_json(&added)),
            json(
                "GET /apps/myapp/domains",
                200,
                &to_json(&vec![
                    domain("myapp.wharf.example.net", "heroku", None),
                    domain("www.example.com", "custom", None),
                    domain("example.com", "custom", None),
                    domain("shop.example.org", "custom", None),
                ]),
            ),
            json(
                "PATCH /apps/myapp/domains/www.example.com-id",
                200,
                &to_json(&domain("www.example.com", "custom", Some("tokyo-12345"))),
            ),
        ],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.request("POST /apps/myapp/sni-endpoints").json(),
        serde_json::json!({"certificate_chain": "CERT PEM", "private_key": "KEY PEM"})
    );
    assert_eq!(
        outcome
            .request("PATCH /apps/myapp/domains/www.example.com-id")
            .json(),
        serde_json::json!({"sni_endpoint": "tokyo-12345-id"})
    );
    assert_eq!(
        outcome.stdout,
        "Adding SSL certificate to ⬢ myapp... done\n\
         ⬢ myapp now served by tokyo-12345\n\
         Certificate details:\n\
         Common Name(s): *.example.com\n\
         Domain(s):\n\
         Expires At:     2027-02-01 12:30 UTC\n\
         Issuer:         /CN=*.example.com\n\
         Starts At:      2026-11-01 00:00 UTC\n\
         Subject:        /CN=*.example.com\n\
         SSL certificate is self signed.\n\
         Associating www.example.com with tokyo-12345... done\n"
    );
}

#[tokio::test]
async fn certs_commands_need_a_name_when_the_app_has_several() {
    let outcome = run(
        &["certs:info", "-a", "myapp"],
        vec![json(
            "GET /apps/myapp/sni-endpoints",
            200,
            &to_json(&vec![
                endpoint("tokyo-12345", &["a.example.com"], &[]),
                endpoint("osaka-54321", &["b.example.com"], &[]),
            ]),
        )],
    )
    .await;
    assert_eq!(
        outcome.error_lines()[0],
        " ›   Error: myapp has more than one SSL certificate: pick one with --name (tokyo-12345, \
         osaka-54321)"
    );
}

#[tokio::test]
async fn certs_update_patches_the_named_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("new.crt");
    let key_file = dir.path().join("new.key");
    std::fs::write(&cert_file, "NEW CERT").unwrap();
    std::fs::write(&key_file, "NEW KEY").unwrap();
    let current = endpoint("tokyo-12345", &["www.example.com"], &["www.example.com"]);
    let outcome = run(
        &[
            "certs:update",
            cert_file.to_str().unwrap(),
            key_file.to_str().unwrap(),
            "--name",
            "tokyo-12345",
            "-a",
            "myapp",
        ],
        vec![
            json(
                "GET /apps/myapp/sni-endpoints/tokyo-12345",
                200,
                &to_json(&current),
            ),
            json(
                "PATCH /apps/myapp/sni-endpoints/tokyo-12345-id",
                200,
                &to_json(&current),
            ),
        ],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome
            .request("PATCH /apps/myapp/sni-endpoints/tokyo-12345-id")
            .json(),
        serde_json::json!({"certificate_chain": "NEW CERT", "private_key": "NEW KEY"})
    );
    assert!(outcome.stdout.starts_with(
        "Updating SSL certificate tokyo-12345 for ⬢ myapp... done\nUpdated certificate details:\n"
    ));
}

#[tokio::test]
async fn certs_remove_needs_the_apps_name_to_confirm() {
    let current = endpoint("tokyo-12345", &["www.example.com"], &[]);
    let refused = run(
        &[
            "certs:remove",
            "--name",
            "tokyo-12345",
            "--confirm",
            "other",
            "-a",
            "myapp",
        ],
        vec![json(
            "GET /apps/myapp/sni-endpoints/tokyo-12345",
            200,
            &to_json(&current),
        )],
    )
    .await;
    assert_eq!(
        refused.error_lines(),
        [" ›   Error: Confirmation did not match myapp. Aborted."]
    );
    assert!(refused
        .requests
        .iter()
        .all(|request| !request.route.starts_with("DELETE")));

    let removed = run(
        &[
            "certs:remove",
            "--name",
            "tokyo-12345",
            "--confirm",
            "myapp",
            "-a",
            "myapp",
        ],
        vec![
            json(
                "GET /apps/myapp/sni-endpoints/tokyo-12345",
                200,
                &to_json(&current),
            ),
            json(
                "DELETE /apps/myapp/sni-endpoints/tokyo-12345-id",
                200,
                &to_json(&current),
            ),
        ],
    )
    .await;
    removed.result.as_ref().unwrap();
    assert_eq!(
        removed.stdout,
        "Removing SSL certificate tokyo-12345 from ⬢ myapp... done\n"
    );
}

#[tokio::test]
async fn domains_update_names_the_endpoint() {
    let outcome = run(
        &[
            "domains:update",
            "www.example.com",
            "--cert",
            "tokyo-12345",
            "-a",
            "myapp",
        ],
        vec![json(
            "PATCH /apps/myapp/domains/www.example.com",
            200,
            &to_json(&domain("www.example.com", "custom", Some("tokyo-12345"))),
        )],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome
            .request("PATCH /apps/myapp/domains/www.example.com")
            .json(),
        serde_json::json!({"sni_endpoint": "tokyo-12345"})
    );
    assert_eq!(
        outcome.stdout,
        "Updating www.example.com to use tokyo-12345 certificate... done\n"
    );
}

#[tokio::test]
async fn domains_clear_removes_only_custom_domains() {
    let outcome = run(
        &["domains:clear", "-a", "myapp"],
        vec![
            json(
                "GET /apps/myapp/domains",
                200,
                &to_json(&vec![
                    domain("myapp.wharf.example.net", "heroku", None),
                    domain("www.example.com", "custom", None),
                    domain("api.example.com", "custom", None),
                ]),
            ),
            json("DELETE /apps/myapp/domains/www.example.com-id", 200, "{}"),
            json("DELETE /apps/myapp/domains/api.example.com-id", 200, "{}"),
        ],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(outcome.requests.len(), 3);
    assert_eq!(
        outcome.stdout,
        "Removing all domains from ⬢ myapp... done\n"
    );
}
