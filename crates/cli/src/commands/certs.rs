//! `certs`, `certs:add`, `certs:info`, `certs:update` and `certs:remove`: the app's SNI
//! endpoints (certificates and keys the router serves for its custom domains by SNI).

use std::path::Path;

use anyhow::{bail, Context, Result};
use wharf_api_types::{Domain, DomainUpdate, SniEndpoint, SniEndpointCreate};

use crate::args::{AppJsonArgs, CertsAddArgs, CertsInfoArgs, CertsRemoveArgs, CertsUpdateArgs};
use crate::client::{decode, Client};
use crate::commands::domains::with_header;
use crate::prompt;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn list(args: AppJsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = client.get(&["apps", &name, "sni-endpoints"]).await?;
    if args.json {
        return ui.json(&body);
    }
    let endpoints: Vec<SniEndpoint> = decode(body, "the SNI endpoints")?;
    if endpoints.is_empty() {
        ui.line(format!("{} has no SSL certificates.", ui.app(&name)))?;
        return ui.line("Use wharf certs:add CERT_FILE KEY_FILE to add one.");
    }
    let rows = endpoints
        .iter()
        .map(|endpoint| {
            let trusted = if endpoint.ssl_cert.ca_signed {
                "True"
            } else {
                "False"
            };
            vec![
                endpoint.name.clone(),
                endpoint.ssl_cert.cert_domains.join(", "),
                expiry(&endpoint.ssl_cert.expires_at),
                trusted.to_owned(),
                "SNI".to_owned(),
                endpoint.domains.len().to_string(),
            ]
        })
        .collect();
    ui.table(&with_header(
        &[
            "Name",
            "Common Name(s)",
            "Expires",
            "Trusted",
            "Type",
            "Domains",
        ],
        rows,
    ))
}

pub async fn add(args: CertsAddArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let body = read_pair(&args.cert_file, &args.key_file)?;
    let client = settings.client()?;
    let label = format!("Adding SSL certificate to {}", ui.app(&name));
    let created = ui
        .action(
            &label,
            client.post(&["apps", &name, "sni-endpoints"], &body),
        )
        .await?;
    ui.line("done")?;
    let endpoint: SniEndpoint = decode(created, "the SNI endpoint")?;
    ui.line(format!("{} now served by {}", ui.app(&name), endpoint.name))?;
    ui.line("Certificate details:")?;
    details(ui, &endpoint)?;
    associate_covered_domains(&client, &name, &endpoint, ui).await
}

/// Serves the app's custom domains that the certificate covers with it, as Heroku's CLI
/// offers to after `certs:add`.
async fn associate_covered_domains(
    client: &Client,
    app: &str,
    endpoint: &SniEndpoint,
    ui: &mut Ui,
) -> Result<()> {
    let domains: Vec<Domain> = decode(client.get(&["apps", app, "domains"]).await?, "the domains")?;
    let covered = domains.iter().filter(|domain| {
        domain.kind == "custom"
            && domain.sni_endpoint.as_ref().map(|e| &e.id) != Some(&endpoint.id)
            && endpoint
                .ssl_cert
                .cert_domains
                .iter()
                .any(|name| covers(name, &domain.hostname))
    });
    for domain in covered {
        let label = format!("Associating {} with {}", domain.hostname, endpoint.name);
        let body = DomainUpdate {
            sni_endpoint: Some(endpoint.id.clone()),
        };
        ui.action(
            &label,
            client.patch(&["apps", app, "domains", &domain.id], &body),
        )
        .await?;
        ui.line("done")?;
    }
    Ok(())
}

pub async fn info(args: CertsInfoArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let endpoint = pick(&client, &name, args.name.as_deref()).await?;
    if args.json {
        return ui.json(&serde_json::to_value(&endpoint).context("encode JSON")?);
    }
    ui.line(format!(
        "Fetching SSL certificate {} info for {}... done",
        endpoint.name,
        ui.app(&name)
    ))?;
    ui.line("Certificate details:")?;
    details(ui, &endpoint)
}

pub async fn update(args: CertsUpdateArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let body = read_pair(&args.cert_file, &args.key_file)?;
    let client = settings.client()?;
    let endpoint = pick(&client, &name, args.name.as_deref()).await?;
    let label = format!(
        "Updating SSL certificate {} for {}",
        endpoint.name,
        ui.app(&name)
    );
    let path = ["apps", &name, "sni-endpoints", &endpoint.id];
    let updated = ui.action(&label, client.patch(&path, &body)).await?;
    ui.line("done")?;
    let endpoint: SniEndpoint = decode(updated, "the SNI endpoint")?;
    ui.line("Updated certificate details:")?;
    details(ui, &endpoint)
}

pub async fn remove(args: CertsRemoveArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let endpoint = pick(&client, &name, args.name.as_deref()).await?;
    prompt::confirm_app(
        &name,
        args.confirm,
        &format!(
            "This command will remove the endpoint {} from {}.",
            endpoint.name,
            ui.app(&name)
        ),
    )?;
    let label = format!(
        "Removing SSL certificate {} from {}",
        endpoint.name,
        ui.app(&name)
    );
    let path = ["apps", &name, "sni-endpoints", &endpoint.id];
    ui.action(&label, client.delete(&path)).await?;
    ui.line("done")
}

/// The endpoint `--name` names, else the app's only one.
async fn pick(client: &Client, app: &str, name: Option<&str>) -> Result<SniEndpoint> {
    if let Some(name) = name {
        let body = client.get(&["apps", app, "sni-endpoints", name]).await?;
        return decode(body, "the SNI endpoint");
    }
    let mut endpoints: Vec<SniEndpoint> = decode(
        client.get(&["apps", app, "sni-endpoints"]).await?,
        "the SNI endpoints",
    )?;
    match endpoints.len() {
        0 => bail!(
            "{app} has no SSL certificates: add one with `wharf certs:add CERT_FILE KEY_FILE`"
        ),
        1 => Ok(endpoints.remove(0)),
        _ => {
            let names: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
            bail!(
                "{app} has more than one SSL certificate: pick one with --name ({})",
                names.join(", ")
            )
        }
    }
}

fn read_pair(cert_file: &Path, key_file: &Path) -> Result<SniEndpointCreate> {
    let read = |path: &Path, what: &str| {
        std::fs::read_to_string(path).with_context(|| format!("read the {what} {}", path.display()))
    };
    Ok(SniEndpointCreate {
        certificate_chain: read(cert_file, "certificate file")?,
        private_key: read(key_file, "key file")?,
    })
}

/// The certificate's facts, as Heroku's CLI prints them.
fn details(ui: &mut Ui, endpoint: &SniEndpoint) -> Result<()> {
    let cert = &endpoint.ssl_cert;
    ui.key_values(&[
        ("Common Name(s)".to_owned(), cert.cert_domains.join(", ")),
        ("Domain(s)".to_owned(), endpoint.domains.join(", ")),
        ("Expires At".to_owned(), expiry(&cert.expires_at)),
        ("Issuer".to_owned(), cert.issuer.clone()),
        ("Starts At".to_owned(), expiry(&cert.starts_at)),
        ("Subject".to_owned(), cert.subject.clone()),
    ])?;
    ui.line(if cert.ca_signed {
        "SSL certificate is verified by a root authority."
    } else if cert.self_signed || cert.issuer == cert.subject {
        "SSL certificate is self signed."
    } else {
        "SSL certificate is not trusted."
    })
}

/// `2026-11-22T10:00:00Z` as `2026-11-22 10:00 UTC`.
fn expiry(rfc3339: &str) -> String {
    match rfc3339.split_once('T') {
        Some((date, time)) if time.len() >= 5 => format!("{date} {} UTC", &time[..5]),
        _ => rfc3339.to_owned(),
    }
}

/// Whether a certificate name (`www.example.com`, `*.example.com`) covers the hostname: the
/// same name, or a wildcard standing for exactly one label.
fn covers(certificate_name: &str, hostname: &str) -> bool {
    let certificate_name = certificate_name.to_ascii_lowercase();
    let hostname = hostname.to_ascii_lowercase();
    if certificate_name == hostname {
        return true;
    }
    match (
        certificate_name.strip_prefix("*."),
        hostname.split_once('.'),
    ) {
        (Some(suffix), Some((first, rest))) => first != "*" && rest == suffix,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("www.example.com", "WWW.example.com"));
        assert!(covers("*.example.com", "api.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("api.example.com", "www.example.com"));
    }

    #[test]
    fn expiry_is_minutes_in_utc() {
        assert_eq!(expiry("2026-11-22T10:05:09Z"), "2026-11-22 10:05 UTC");
        assert_eq!(expiry("soon"), "soon");
    }
}
