//! `domains`, `domains:add`, `domains:info`, `domains:update`, `domains:remove` and
//! `domains:clear`: the app's own hostname and the custom domains that route to it, as
//! Heroku's CLI shows them.

use anyhow::Result;
use wharf_api_types::{Domain, DomainCreate, DomainUpdate};

use crate::args::{
    AppArgs, AppJsonArgs, DomainArgs, DomainJsonArgs, DomainsAddArgs, DomainsUpdateArgs,
};
use crate::client::decode;
use crate::format;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn list(args: AppJsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = client.get(&["apps", &name, "domains"]).await?;
    if args.json {
        return ui.json(&body);
    }
    let domains: Vec<Domain> = decode(body, "the domains")?;
    let (own, custom): (Vec<&Domain>, Vec<&Domain>) =
        domains.iter().partition(|domain| domain.kind == "heroku");
    ui.line(ui.header(&format!("{name} Heroku Domain")))?;
    for domain in own {
        ui.line(&domain.hostname)?;
    }
    if custom.is_empty() {
        return Ok(());
    }
    ui.line("")?;
    ui.line(ui.header(&format!("{name} Custom Domains")))?;
    let rows: Vec<Vec<String>> = custom
        .iter()
        .map(|domain| {
            vec![
                domain.hostname.clone(),
                record_type(&domain.hostname).to_owned(),
                domain.cname.clone().unwrap_or_default(),
                endpoint_name(domain),
            ]
        })
        .collect();
    ui.table(&with_header(
        &[
            "Domain Name",
            "DNS Record Type",
            "DNS Target",
            "SNI Endpoint",
        ],
        rows,
    ))
}

pub async fn add(args: DomainsAddArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = DomainCreate {
        hostname: args.hostname.clone(),
        sni_endpoint: args.cert.clone(),
    };
    let label = format!("Adding {} to {}", args.hostname, ui.app(&name));
    let created = ui
        .action(&label, client.post(&["apps", &name, "domains"], &body))
        .await?;
    ui.line("done")?;
    if args.json {
        return ui.json(&created);
    }
    let domain: Domain = decode(created, "the domain")?;
    if let Some(target) = &domain.cname {
        ui.warning(&format!(
            "Configure your app's DNS provider to point to the DNS Target {target} ({} record).",
            record_type(&domain.hostname)
        ));
    }
    if domain.status != "none" {
        ui.line("")?;
        ui.line(format!(
            "The domain {} has been enqueued for addition",
            domain.hostname
        ))?;
    }
    Ok(())
}

pub async fn info(args: DomainJsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = client
        .get(&["apps", &name, "domains", &args.hostname])
        .await?;
    if args.json {
        return ui.json(&body);
    }
    let domain: Domain = decode(body, "the domain")?;
    ui.line(ui.header(&domain.hostname))?;
    let mut pairs = vec![
        ("App".to_owned(), domain.app.name.clone()),
        ("Kind".to_owned(), domain.kind.clone()),
    ];
    if let Some(target) = &domain.cname {
        pairs.push((
            "DNS Record Type".to_owned(),
            record_type(&domain.hostname).to_owned(),
        ));
        pairs.push(("DNS Target".to_owned(), target.clone()));
    }
    pairs.extend([
        ("SNI Endpoint".to_owned(), endpoint_name(&domain)),
        ("Status".to_owned(), domain.status.clone()),
        ("Created At".to_owned(), domain.created_at.clone()),
        ("Updated At".to_owned(), domain.updated_at.clone()),
        ("Id".to_owned(), domain.id.clone()),
    ]);
    ui.key_values(&pairs)
}

pub async fn remove(args: DomainArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let label = format!("Removing {} from {}", args.hostname, ui.app(&name));
    let path = ["apps", &name, "domains", &args.hostname];
    ui.action(&label, client.delete(&path)).await?;
    ui.line("done")
}

pub async fn update(args: DomainsUpdateArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let label = format!(
        "Updating {} to use {} certificate",
        args.hostname, args.cert
    );
    let body = DomainUpdate {
        sni_endpoint: Some(args.cert.clone()),
    };
    let path = ["apps", &name, "domains", &args.hostname];
    ui.action(&label, client.patch(&path, &body)).await?;
    ui.line("done")
}

pub async fn clear(args: AppArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args)?;
    let client = settings.client()?;
    let label = format!("Removing all domains from {}", ui.app(&name));
    let work = async {
        let domains: Vec<Domain> = decode(
            client.get(&["apps", &name, "domains"]).await?,
            "the domains",
        )?;
        for domain in domains.iter().filter(|domain| domain.kind == "custom") {
            client
                .delete(&["apps", &name, "domains", &domain.id])
                .await?;
        }
        Ok(())
    };
    ui.action(&label, work).await?;
    ui.line("done")
}

/// The DNS record to point the hostname at its target with: an apex (`example.com`) cannot
/// have a CNAME, so it needs the ALIAS or ANAME record some DNS providers offer. Like
/// Heroku's CLI, a two-label name is taken as an apex.
pub(crate) fn record_type(hostname: &str) -> &'static str {
    if !hostname.contains('*') && hostname.split('.').count() == 2 {
        "ALIAS or ANAME"
    } else {
        "CNAME"
    }
}

fn endpoint_name(domain: &Domain) -> String {
    domain
        .sni_endpoint
        .as_ref()
        .map(|endpoint| endpoint.name.clone())
        .unwrap_or_default()
}

/// A header row and a rule under it, then the rows, as Heroku's CLI prints tables.
pub(crate) fn with_header(headers: &[&str], rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(column, header)| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| format::visible_width(cell))
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut table = vec![
        headers.iter().map(|h| h.to_string()).collect(),
        widths.iter().map(|w| "─".repeat(*w)).collect(),
    ];
    table.extend(rows);
    table
}
