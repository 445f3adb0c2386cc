//! `maintenance`, `maintenance:on` and `maintenance:off`.

use anyhow::Result;
use wharf_api_types::{App, AppUpdate};

use crate::args::AppArgs;
use crate::client::decode;
use crate::commands::apps::on_off;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn show(args: AppArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args)?;
    let app: App = decode(settings.client()?.get(&["apps", &name]).await?, "the app")?;
    ui.line(on_off(app.maintenance))
}

pub async fn set(args: AppArgs, on: bool, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args)?;
    let client = settings.client()?;
    let body = AppUpdate {
        maintenance: Some(on),
        ..AppUpdate::default()
    };
    let verb = if on { "Enabling" } else { "Disabling" };
    let label = format!("{verb} maintenance mode for {}", ui.app(&name));
    ui.action(&label, client.patch(&["apps", &name], &body))
        .await?;
    ui.line("done")
}
