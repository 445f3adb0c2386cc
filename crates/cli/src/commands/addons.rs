//! `addons`, `addons:create`, `addons:info`, `addons:destroy`, `addons:attach`,
//! `addons:detach`, `addons:open` and `pg:credentials:rotate`, in Heroku's words.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;
use wharf_api_types::{
    Addon, AddonAttachment, AddonCreate, AttachmentCreate, AttachmentSpec, Identity, PlanSpec,
};

use crate::args::AppArgs;
use crate::client::decode;
use crate::prompt;
use crate::settings::Settings;
use crate::ui::Ui;

#[derive(Debug, Clone, Args)]
pub struct AddonsArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Print the API's JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AddonsCreateArgs {
    /// The service and plan: heroku-postgresql, wharf-redis:mini
    #[arg(value_name = "SERVICE[:PLAN]")]
    pub service: String,
    /// The attachment name: its config vars are NAME_URL and so on [default: DATABASE, REDIS]
    #[arg(long = "as", value_name = "NAME")]
    pub attachment: Option<String>,
    /// The add-on's name [default: generated]
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub app: AppArgs,
    /// Print the API's JSON
    #[arg(long)]
    pub json: bool,
    /// Options for the provider: -- --key value
    #[arg(last = true, value_name = "OPTIONS")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AddonArgs {
    /// The add-on: its name, or the name it is attached as (DATABASE)
    #[arg(value_name = "ADDON")]
    pub addon: String,
    #[command(flatten)]
    pub app: AppArgs,
    /// Print the API's JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AddonsDestroyArgs {
    /// The add-on: its name, or the name it is attached as (DATABASE)
    #[arg(value_name = "ADDON")]
    pub addon: String,
    #[command(flatten)]
    pub app: AppArgs,
    /// The app's name again, to confirm
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AddonsAttachArgs {
    /// The add-on to attach (its name), from any app you can see
    #[arg(value_name = "ADDON")]
    pub addon: String,
    /// The attachment name [default: DATABASE, REDIS, or a colour name when taken]
    #[arg(long = "as", value_name = "NAME")]
    pub attachment: Option<String>,
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Clone, Args)]
pub struct AddonsDetachArgs {
    /// The attachment's name (DATABASE) or id
    #[arg(value_name = "ATTACHMENT")]
    pub attachment: String,
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CredentialsRotateArgs {
    /// The database (add-on name or attachment name)
    #[arg(value_name = "DATABASE", default_value = "DATABASE")]
    pub addon: String,
    #[command(flatten)]
    pub app: AppArgs,
    /// The app's name again, to confirm
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

/// Heroku's words for an add-on's state.
fn state_word(state: &str) -> &str {
    match state {
        "provisioned" => "created",
        "provisioning" => "creating",
        "deprovisioned" => "errored",
        other => other,
    }
}

fn price(addon: &Addon) -> String {
    match &addon.billed_price {
        Some(price) if price.cents == 0 => "free".to_owned(),
        Some(price) => format!(
            "${:.2}/{}",
            price.cents as f64 / 100.0,
            addon.plan.price.unit
        ),
        None => "free".to_owned(),
    }
}

/// The plan's name without its `service:` prefix.
fn short_plan(addon: &Addon) -> &str {
    addon
        .plan
        .name
        .split_once(':')
        .map_or(addon.plan.name.as_str(), |(_, plan)| plan)
}

pub async fn list(args: AddonsArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let raw = client.get(&["apps", &app, "addons"]).await?;
    if args.json {
        return ui.json(&raw);
    }
    let addons: Vec<Addon> = decode(raw, "the add-ons")?;
    if addons.is_empty() {
        return ui.line(format!("No add-ons for app {app}."));
    }
    let attachments: Vec<AddonAttachment> = decode(
        client.get(&["apps", &app, "addon-attachments"]).await?,
        "the add-on attachments",
    )?;
    let mut rows = vec![vec![
        "Add-on".to_owned(),
        "Plan".to_owned(),
        "Price".to_owned(),
        "State".to_owned(),
    ]];
    for addon in &addons {
        let billed = match addon.app.name == app {
            true => price(addon),
            false => format!("(billed to {} app)", addon.app.name),
        };
        rows.push(vec![
            format!("{} ({})", addon.addon_service.name, addon.name),
            short_plan(addon).to_owned(),
            billed,
            state_word(&addon.state).to_owned(),
        ]);
        for attachment in attachments.iter().filter(|t| t.addon.id == addon.id) {
            rows.push(vec![
                format!(" └─ as {}", attachment.name),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    ui.table(&rows)?;
    ui.line("")?;
    ui.line(format!(
        "The table above shows add-ons and the attachments to the current app ({app}) or other apps."
    ))
}

/// `-- --key value --flag` as provider options.
fn parse_options(words: &[String]) -> Result<BTreeMap<String, String>> {
    let mut options = BTreeMap::new();
    let mut words = words.iter().peekable();
    while let Some(word) = words.next() {
        let key = word.strip_prefix("--").with_context(|| {
            format!("provider option {word:?} must look like --key value or --key=value")
        })?;
        match key.split_once('=') {
            Some((key, value)) => {
                options.insert(key.to_owned(), value.to_owned());
            }
            None => {
                let value = match words.peek() {
                    Some(next) if !next.starts_with("--") => {
                        words.next().cloned().unwrap_or_default()
                    }
                    _ => "true".to_owned(),
                };
                options.insert(key.to_owned(), value);
            }
        }
    }
    Ok(options)
}

pub async fn create(args: AddonsCreateArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = AddonCreate {
        plan: PlanSpec::Object {
            name: args.service.clone(),
        },
        attachment: Some(AttachmentSpec {
            name: args.attachment.clone(),
        }),
        config: parse_options(&args.options)?
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect(),
        name: args.name.clone(),
        confirm: None,
    };
    let label = format!("Creating {} on {}", args.service, ui.app(&app));
    let raw = ui
        .action(&label, client.post(&["apps", &app, "addons"], &body))
        .await?;
    let addon: Addon = decode(raw.clone(), "the add-on")?;
    ui.line(price(&addon))?;
    if args.json {
        return ui.json(&raw);
    }
    if let Some(message) = &addon.provision_message {
        ui.line(message)?;
    }
    ui.line(format!(
        "Created {} as {}",
        addon.name,
        addon.config_vars.join(", ")
    ))?;
    ui.line(format!(
        "Use wharf addons:info {} to see its details",
        addon.name
    ))
}

pub async fn info(args: AddonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let raw = client.get(&["apps", &app, "addons", &args.addon]).await?;
    if args.json {
        return ui.json(&raw);
    }
    let addon: Addon = decode(raw, "the add-on")?;
    let attachments: Vec<AddonAttachment> = decode(
        client.get(&["addon-attachments"]).await?,
        "the add-on attachments",
    )?;
    let attached: Vec<String> = attachments
        .iter()
        .filter(|t| t.addon.id == addon.id)
        .map(|t| format!("{}::{}", t.app.name, t.name))
        .collect();
    ui.line(ui.header(&format!("=== {}", addon.name)))?;
    ui.key_values(&[
        ("Attachments".into(), attached.join(", ")),
        ("Config vars".into(), addon.config_vars.join(", ")),
        ("Installed at".into(), addon.created_at.clone()),
        ("Owning app".into(), addon.app.name.clone()),
        ("Plan".into(), addon.plan.name.clone()),
        ("Price".into(), price(&addon)),
        ("State".into(), state_word(&addon.state).to_owned()),
    ])
}

pub async fn destroy(args: AddonsDestroyArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let addon: Addon = decode(
        client.get(&["apps", &app, "addons", &args.addon]).await?,
        "the add-on",
    )?;
    prompt::confirm_app(
        &app,
        args.confirm,
        &format!(
            "This will destroy {} on {} and all its data.",
            addon.name,
            ui.app(&app)
        ),
    )?;
    let label = format!("Destroying {} on {}", addon.name, ui.app(&app));
    ui.action(&label, client.delete(&["apps", &app, "addons", &addon.id]))
        .await?;
    ui.line("done")
}

pub async fn attach(args: AddonsAttachArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = AttachmentCreate {
        addon: Identity::Plain(args.addon.clone()),
        app: Identity::Plain(app.clone()),
        name: args.attachment.clone(),
        confirm: None,
    };
    let label = format!("Attaching {} to {}", args.addon, ui.app(&app));
    let raw = ui
        .action(&label, client.post(&["addon-attachments"], &body))
        .await?;
    ui.line("done")?;
    let attachment: AddonAttachment = decode(raw, "the attachment")?;
    ui.line(format!(
        "Set {} config vars and restarted {}",
        attachment.name,
        ui.app(&app)
    ))
}

pub async fn detach(args: AddonsDetachArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let attachment: AddonAttachment = decode(
        client
            .get(&["apps", &app, "addon-attachments", &args.attachment])
            .await?,
        "the attachment",
    )?;
    let label = format!("Detaching {} from {}", attachment.name, ui.app(&app));
    ui.action(
        &label,
        client.delete(&["addon-attachments", &attachment.id]),
    )
    .await?;
    ui.line("done")?;
    ui.line(format!(
        "Unset {} config vars and restarted {}",
        attachment.name,
        ui.app(&app)
    ))
}

/// Prints the add-on's URL (its `*_URL` config var on this app).
pub async fn open(args: AddonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let addon: Addon = decode(
        client.get(&["apps", &app, "addons", &args.addon]).await?,
        "the add-on",
    )?;
    let config: BTreeMap<String, Value> = decode(
        client.get(&["apps", &app, "config-vars"]).await?,
        "the config vars",
    )?;
    let url = addon
        .config_vars
        .iter()
        .filter(|name| name.ends_with("_URL"))
        .find_map(|name| config.get(name).and_then(Value::as_str))
        .with_context(|| format!("{} sets no URL on {app}", addon.name))?;
    ui.line(url)
}

pub async fn rotate(args: CredentialsRotateArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    prompt::confirm_app(
        &app,
        args.confirm,
        &format!(
            "This rotates the credentials of {} on {}: the old ones stop working once its \
             apps' dynos have restarted.",
            args.addon,
            ui.app(&app)
        ),
    )?;
    let label = format!("Rotating all credentials on {}", args.addon);
    ui.action(
        &label,
        client.post(
            &[
                "apps",
                &app,
                "addons",
                &args.addon,
                "actions",
                "rotate-credentials",
            ],
            &serde_json::json!({}),
        ),
    )
    .await?;
    ui.line("done")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_options() {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        let options = parse_options(&words(&["--version", "15", "--fork=x", "--follow"])).unwrap();
        assert_eq!(options["version"], "15");
        assert_eq!(options["fork"], "x");
        assert_eq!(options["follow"], "true");
        assert!(parse_options(&words(&["oops"])).is_err());
    }
}
