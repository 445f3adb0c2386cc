//! `drains`, `drains:add URL`, `drains:remove URL|ID`, and the labs commands (`labs`,
//! `labs:enable FEATURE`, `labs:disable FEATURE`) that turn on app features such as
//! `log-runtime-metrics`.

use anyhow::Result;
use clap::Args;
use wharf_api_types::{AppFeature, AppFeatureUpdate, LogDrain, LogDrainCreate};

use crate::args::{AppArgs, AppJsonArgs};
use crate::client::decode;
use crate::settings::Settings;
use crate::ui::Ui;

#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// syslog://host:port, syslog+tls://host:port or https://... (to remove: the URL, id or
    /// token)
    pub url: String,
}

#[derive(Debug, Clone, Args)]
pub struct FeatureArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// The feature, e.g. log-runtime-metrics
    pub feature: String,
}

pub async fn list(args: AppJsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let drains = settings
        .client()?
        .get(&["apps", &name, "log-drains"])
        .await?;
    if args.json {
        return ui.json(&drains);
    }
    let drains: Vec<LogDrain> = decode(drains, "the log drains")?;
    if drains.is_empty() {
        return ui.line(format!("{} has no drains.", ui.app(&name)));
    }
    ui.line(ui.header("Drains"))?;
    ui.lines(
        drains
            .into_iter()
            .map(|drain| format!("{} ({})", drain.url, drain.token)),
    )
}

pub async fn add(args: DrainArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let body = LogDrainCreate {
        url: args.url.clone(),
    };
    let drain: LogDrain = decode(
        settings
            .client()?
            .post(&["apps", &name, "log-drains"], &body)
            .await?,
        "the new drain",
    )?;
    ui.line(format!(
        "Successfully added drain {} (token {})",
        drain.url, drain.token
    ))
}

pub async fn remove(args: DrainArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let drain: LogDrain = decode(
        settings
            .client()?
            .delete(&["apps", &name, "log-drains", &args.url])
            .await?,
        "the removed drain",
    )?;
    ui.line(format!("Successfully removed drain {}", drain.url))
}

pub async fn labs(args: AppJsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let features = settings.client()?.get(&["apps", &name, "features"]).await?;
    if args.json {
        return ui.json(&features);
    }
    let features: Vec<AppFeature> = decode(features, "the app's features")?;
    ui.line(ui.header(&format!("App Features ({name})")))?;
    let rows: Vec<Vec<String>> = features
        .into_iter()
        .map(|f| {
            let mark = if f.enabled { "[+]" } else { "[ ]" };
            vec![mark.to_owned(), f.name, f.description]
        })
        .collect();
    ui.table(&rows)
}

pub async fn set_feature(
    args: FeatureArgs,
    enabled: bool,
    settings: &Settings,
    ui: &mut Ui,
) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let verb = if enabled { "Enabling" } else { "Disabling" };
    let label = format!("{verb} {} for {}", args.feature, ui.app(&name));
    let body = AppFeatureUpdate { enabled };
    ui.action(
        &label,
        client.patch(&["apps", &name, "features", &args.feature], &body),
    )
    .await?;
    ui.line("done")
}
