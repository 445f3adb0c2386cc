//! `stack` and `stack:set STACK`: the stacks an app can build on, and choosing one for its
//! next build (Heroku's `heroku stack` and `heroku stack:set`).

use anyhow::Result;
use clap::Args;
use wharf_api_types::{App, AppUpdate, Stack};

use crate::args::AppArgs;
use crate::client::decode;
use crate::settings::Settings;
use crate::ui::Ui;

#[derive(Debug, Clone, Args)]
pub struct StackSetArgs {
    /// The stack the app's next build runs on, e.g. debian-13 (`wharf stack` lists them)
    #[arg(value_name = "STACK")]
    pub stack: String,
    #[command(flatten)]
    pub app: AppArgs,
}

/// Lists the server's stacks: `*` marks the one the app runs on, and the one its next build
/// will use, when another, says so.
pub async fn list(args: AppArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args)?;
    let client = settings.client()?;
    let app: App = decode(client.get(&["apps", &name]).await?, "the app")?;
    let mut stacks: Vec<Stack> = decode(client.get(&["stacks"]).await?, "the stacks")?;
    stacks.sort_by(|a, b| a.name.cmp(&b.name));
    ui.line(ui.header(&format!("{} Available Stacks", ui.app(&app.name))))?;
    let lines: Vec<String> = stacks
        .iter()
        .map(|stack| stack_line(&stack.name, &app, ui))
        .collect();
    ui.lines(lines)
}

fn stack_line(stack: &str, app: &App, ui: &Ui) -> String {
    if stack == app.stack.name {
        ui.current(&format!("* {stack}"))
    } else if stack == app.build_stack.name {
        format!("  {stack} (active on next deploy)")
    } else {
        format!("  {stack}")
    }
}

/// Sets the stack of the app's next build; what runs keeps its stack until then.
pub async fn set(args: StackSetArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = AppUpdate {
        build_stack: Some(args.stack.clone()),
        ..AppUpdate::default()
    };
    let label = format!("Setting stack to {}", ui.current(&args.stack));
    let app = ui
        .action(&label, client.patch(&["apps", &name], &body))
        .await?;
    ui.line("done")?;
    let app: App = decode(app, "the app")?;
    let shown = ui.app(&app.name);
    ui.line(format!(
        "You will need to redeploy {shown} for the change to take effect."
    ))?;
    ui.line(format!(
        "Run git push wharf main to trigger a new build on {shown}."
    ))
}
