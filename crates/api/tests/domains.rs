//! Domains and SNI endpoints through the API: Heroku's shapes, Range paging as the Heroku CLI
//! asks for it, hostname and certificate validation, and hostnames unique across apps.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use serde_json::{json, Value};
use support::TestApi;
use time::OffsetDateTime;

/// A self-signed certificate for `names`, valid from `days.0` to `days.1` days from now, and
/// its key, as PEM.
fn certificate(names: &[&str], days: (i64, i64)) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, names[0]);
    params.distinguished_name = subject;
    let today = OffsetDateTime::now_utc();
    params.not_before = today + time::Duration::days(days.0);
    params.not_after = today + time::Duration::days(days.1);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn add_domain(api: &TestApi, key: &str, app: &str, hostname: &str) -> support::Reply {
    api.call(
        "POST",
        &format!("/apps/{app}/domains"),
        Some(key),
        Some(json!({"hostname": hostname, "sni_endpoint": null})),
    )
    .await
}

async fn add_endpoint(
    api: &TestApi,
    key: &str,
    app: &str,
    chain: &str,
    private_key: &str,
) -> support::Reply {
    api.call(
        "POST",
        &format!("/apps/{app}/sni-endpoints"),
        Some(key),
        Some(json!({"certificate_chain": chain, "private_key": private_key})),
    )
    .await
}

/// The app's `app[api]` log lines, oldest first.
async fn api_log_lines(api: &TestApi, key: &str, app: &str) -> Vec<String> {
    let session = api
        .call(
            "POST",
            &format!("/apps/{app}/log-sessions"),
            Some(key),
            Some(json!({"lines": 100})),
        )
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{:?}", session.body);
    let url = session.body["logplex_url"].as_str().unwrap();
    let path = url.strip_prefix("http://127.0.0.1:5000").unwrap();
    let stream = api.request("GET", path, None, &[], None).await;
    stream
        .body
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|l| l.split_once(" app[api]: ").map(|(_, m)| m.to_owned()))
        .collect()
}

#[tokio::test]
async fn domains_are_added_listed_shown_and_removed() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "shop").await;

    let added = add_domain(&api, &key, "shop", "WWW.Example.com").await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let www = added.body;
    assert_eq!(www["hostname"], "www.example.com");
    assert_eq!(www["kind"], "custom");
    assert_eq!(www["cname"], "shop.localhost");
    assert_eq!(www["status"], "none");
    assert_eq!(www["acm_status"], Value::Null);
    assert_eq!(www["acm_status_reason"], Value::Null);
    assert_eq!(www["sni_endpoint"], Value::Null);
    assert_eq!(www["app"]["name"], "shop");
    assert!(www["created_at"].as_str().unwrap().ends_with('Z'));

    let listed = api
        .request(
            "GET",
            "/apps/shop/domains",
            Some(&key),
            &[("range", "id ..; max=1000;")],
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert!(!listed.headers.contains_key("next-range"));
    let items = listed.body.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "heroku");
    assert_eq!(items[0]["hostname"], "shop.localhost");
    assert_eq!(items[0]["cname"], Value::Null);
    assert_eq!(items[1], www);

    for identity in ["www.example.com", www["id"].as_str().unwrap()] {
        let shown = api
            .call(
                "GET",
                &format!("/apps/shop/domains/{identity}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(shown.status, StatusCode::OK);
        assert_eq!(shown.body, www);
    }
    let own = api
        .call("GET", "/apps/shop/domains/shop.localhost", Some(&key), None)
        .await;
    assert_eq!(own.body["kind"], "heroku");
    let refused = api
        .call(
            "DELETE",
            "/apps/shop/domains/shop.localhost",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("own hostname"));

    let removed = api
        .call(
            "DELETE",
            "/apps/shop/domains/www.example.com",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(removed.body["hostname"], "www.example.com");
    let gone = api
        .call(
            "GET",
            "/apps/shop/domains/www.example.com",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["id"], "not_found");

    assert_eq!(
        api_log_lines(&api, &key, "shop").await,
        [
            "Add www.example.com domain by admin@example.com",
            "Remove www.example.com domain by admin@example.com",
        ]
    );
}

#[tokio::test]
async fn range_pages_follow_next_range_and_the_last_answers_200() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "paged").await;
    for host in ["a.example.com", "b.example.com", "c.example.com"] {
        assert_eq!(
            add_domain(&api, &key, "paged", host).await.status,
            StatusCode::CREATED
        );
    }
    let mut range = "id ..; max=2;".to_owned();
    let mut seen = Vec::new();
    let mut statuses = Vec::new();
    loop {
        let page = api
            .request(
                "GET",
                "/apps/paged/domains",
                Some(&key),
                &[("range", &range)],
                None,
            )
            .await;
        statuses.push(page.status);
        seen.extend(
            page.body
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["hostname"].as_str().unwrap().to_owned()),
        );
        match page.headers.get("next-range") {
            Some(next) => range = next.to_str().unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(statuses, [StatusCode::PARTIAL_CONTENT, StatusCode::OK]);
    assert_eq!(
        seen,
        [
            "paged.localhost",
            "a.example.com",
            "b.example.com",
            "c.example.com"
        ]
    );
}

#[tokio::test]
async fn hostnames_are_validated_and_unique_across_apps() {
    let api = TestApi::new().await;
    let owner = api.user("owner@example.com").await;
    let other = api.user("other@example.com").await;
    api.app(&owner, "secret-shop").await;
    api.app(&other, "rival").await;

    for (hostname, fragment) in [
        ("not a host", "letters, digits and dashes"),
        ("localhost", "at least two labels"),
        ("10.1.2.3", "IP addresses"),
        ("*.*.example.com", "wildcard"),
        ("rival.localhost", "Wharf's own app hosts"),
        ("", "missing"),
    ] {
        let reply = add_domain(&api, &owner, "secret-shop", hostname).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{hostname:?}"
        );
        assert_eq!(reply.body["id"], "invalid_params");
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{hostname:?}: {message}");
    }

    assert_eq!(
        add_domain(&api, &owner, "secret-shop", "*.example.com")
            .await
            .status,
        StatusCode::CREATED
    );
    let again = add_domain(&api, &owner, "secret-shop", "*.example.com").await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body["message"].as_str().unwrap().contains("this app"));
    let taken = add_domain(&api, &other, "rival", "*.EXAMPLE.com").await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = taken.body["message"].as_str().unwrap();
    assert!(message.contains("another app"), "{message}");
    assert!(
        !message.contains("secret-shop"),
        "names the other app: {message}"
    );

    // Another user's app answers as if it did not exist.
    let hidden = api
        .call(
            "GET",
            "/apps/secret-shop/domains/*.example.com",
            Some(&other),
            None,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.body["message"], "Couldn't find that app.");

    // Deleting the app frees its hostnames.
    let deleted = api
        .call("DELETE", "/apps/secret-shop", Some(&owner), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        add_domain(&api, &other, "rival", "*.example.com")
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn sni_endpoints_serve_domains_and_never_show_the_key() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "secure").await;
    let (chain, private_key) = certificate(&["www.example.com", "*.example.org"], (-1, 90));

    let added = add_endpoint(&api, &key, "secure", &chain, &private_key).await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let endpoint = added.body;
    let name = endpoint["name"].as_str().unwrap().to_owned();
    let (place, digits) = name.split_once('-').unwrap();
    assert!(!place.is_empty() && digits.len() == 5, "{name}");
    assert!(!endpoint.to_string().contains("PRIVATE KEY"));
    assert!(endpoint.get("private_key").is_none());
    assert_eq!(endpoint["certificate_chain"], chain.as_str());
    assert_eq!(endpoint["display_name"], Value::Null);
    assert_eq!(endpoint["app"]["name"], "secure");
    assert_eq!(endpoint["domains"], json!([]));
    let cert = &endpoint["ssl_cert"];
    assert_eq!(
        cert["cert_domains"],
        json!(["www.example.com", "*.example.org"])
    );
    assert_eq!(cert["subject"], "/CN=www.example.com");
    assert_eq!(cert["issuer"], "/CN=www.example.com");
    assert_eq!(cert["self_signed?"], true);
    assert_eq!(cert["ca_signed?"], false);
    assert!(cert["starts_at"].as_str().unwrap() < cert["expires_at"].as_str().unwrap());

    let www = api
        .call(
            "POST",
            "/apps/secure/domains",
            Some(&key),
            Some(json!({"hostname": "www.example.com", "sni_endpoint": name})),
        )
        .await;
    assert_eq!(www.status, StatusCode::CREATED, "{:?}", www.body);
    assert_eq!(www.body["sni_endpoint"]["name"], name.as_str());
    let api_host = add_domain(&api, &key, "secure", "api.example.org").await;
    let patched = api
        .call(
            "PATCH",
            "/apps/secure/domains/api.example.org",
            Some(&key),
            Some(json!({"sni_endpoint": endpoint["id"]})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["id"], api_host.body["id"]);
    assert_eq!(patched.body["sni_endpoint"]["id"], endpoint["id"]);
    let unknown = api
        .call(
            "PATCH",
            "/apps/secure/domains/api.example.org",
            Some(&key),
            Some(json!({"sni_endpoint": "nowhere-00000"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let listed = api
        .call("GET", "/apps/secure/sni-endpoints", Some(&key), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body[0]["domains"],
        json!(["api.example.org", "www.example.com"])
    );

    // A renewal replaces the certificate in place.
    let (renewed, renewed_key) = certificate(&["www.example.com", "*.example.org"], (-1, 365));
    let updated = api
        .call(
            "PATCH",
            &format!("/apps/secure/sni-endpoints/{name}"),
            Some(&key),
            Some(json!({"certificate_chain": renewed, "private_key": renewed_key})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["id"], endpoint["id"]);
    assert_eq!(updated.body["certificate_chain"], renewed.as_str());
    assert!(updated.body["ssl_cert"]["expires_at"].as_str() > cert["expires_at"].as_str());

    let removed = api
        .call(
            "DELETE",
            &format!("/apps/secure/sni-endpoints/{name}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    let after = api
        .call(
            "GET",
            "/apps/secure/domains/www.example.com",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(after.body["sni_endpoint"], Value::Null);
    let gone = api
        .call(
            "GET",
            &format!("/apps/secure/sni-endpoints/{name}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let lines = api_log_lines(&api, &key, "secure").await;
    assert!(
        lines.contains(&format!("Add SNI endpoint {name} by admin@example.com")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("Remove SNI endpoint {name} by admin@example.com")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn certificates_are_checked_before_they_are_kept() {
    let api = TestApi::new().await;
    let key = api.admin_key.clone();
    api.app(&key, "strict").await;
    let (chain, _) = certificate(&["www.example.com"], (-1, 90));
    let (_, other_key) = certificate(&["www.example.com"], (-1, 90));
    let (expired, expired_key) = certificate(&["old.example.com"], (-90, -1));

    for (chain, private_key, fragment) in [
        (chain.as_str(), other_key.as_str(), "does not match"),
        (expired.as_str(), expired_key.as_str(), "expired"),
        ("garbage", other_key.as_str(), "no PEM certificate"),
        (chain.as_str(), "garbage", "not a PEM private key"),
    ] {
        let reply = add_endpoint(&api, &key, "strict", chain, private_key).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{fragment}");
        assert_eq!(reply.body["id"], "invalid_params");
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{message}");
    }
    let listed = api
        .call("GET", "/apps/strict/sni-endpoints", Some(&key), None)
        .await;
    assert_eq!(listed.body, json!([]));

    // A renewal is checked the same way, and a refused one leaves the certificate as it was.
    let (good, good_key) = certificate(&["www.example.com"], (-1, 90));
    let added = add_endpoint(&api, &key, "strict", &good, &good_key).await;
    assert_eq!(added.status, StatusCode::CREATED);
    let path = format!(
        "/apps/strict/sni-endpoints/{}",
        added.body["id"].as_str().unwrap()
    );
    let refused = api
        .call(
            "PATCH",
            &path,
            Some(&key),
            Some(json!({"certificate_chain": chain, "private_key": other_key})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("does not match"));
    let kept = api.call("GET", &path, Some(&key), None).await;
    assert_eq!(kept.body["certificate_chain"], good.as_str());
}
