//! `apps` and `apps:info`: showing apps.

use anyhow::Result;
use wharf_api_types::{Account, App};

use crate::args::{AppsInfoArgs, JsonArgs};
use crate::client::decode;
use crate::format::human_size;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn list(args: JsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let client = settings.client()?;
    let (account, apps) = tokio::join!(client.get(&["account"]), client.get(&["apps"]));
    let apps = apps?;
    if args.json {
        return ui.json(&apps);
    }
    let account: Account = decode(account?, "the account")?;
    let mut apps: Vec<App> = decode(apps, "the apps")?;
    if apps.is_empty() {
        return ui.line("You have no apps.");
    }
    apps.sort_by(|left, right| left.name.cmp(&right.name));
    let (owned, collaborated): (Vec<&App>, Vec<&App>) = apps
        .iter()
        .partition(|app| app.owner.email == account.email);
    ui.line(ui.header(&format!("{} Apps", account.email)))?;
    for app in owned {
        ui.line(&app.name)?;
    }
    if !collaborated.is_empty() {
        ui.line("")?;
        ui.line(ui.header("Collaborated Apps"))?;
        let rows: Vec<Vec<String>> = collaborated
            .iter()
            .map(|app| vec![app.name.clone(), app.owner.email.clone()])
            .collect();
        ui.table(&rows)?;
    }
    Ok(())
}

pub async fn info(args: AppsInfoArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = match args.name {
        Some(name) => name,
        None => settings.app(&args.app)?,
    };
    let value = settings.client()?.get(&["apps", &name]).await?;
    if args.json {
        return ui.json(&value);
    }
    let app: App = decode(value, "the app")?;
    let size = |bytes: Option<i64>| bytes.map(human_size).unwrap_or_default();
    // Heroku's words when the next build runs on another stack (after `stack:set`).
    let stack = if app.build_stack.name == app.stack.name {
        app.stack.name
    } else {
        format!(
            "{} (next build will use {})",
            app.stack.name, app.build_stack.name
        )
    };
    let pairs = [
        ("Git URL", app.git_url.unwrap_or_default()),
        ("Owner", app.owner.email),
        ("Region", app.region.name),
        ("Repo Size", size(app.repo_size)),
        ("Slug Size", size(app.slug_size)),
        ("Stack", stack),
        ("Web URL", app.web_url.unwrap_or_default()),
        ("Maintenance", on_off(app.maintenance).to_string()),
    ]
    .map(|(key, value)| (key.to_string(), value));
    ui.line(ui.header(&app.name))?;
    ui.key_values(&pairs)
}

pub fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}
