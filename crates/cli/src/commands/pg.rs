//! `pg:info`, `pg:psql` and `pg:reset`, in Heroku's words. psql runs in a one-off dyno, where
//! the database's URL is a config var: the password never reaches this machine.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::commands::datastores::{self, DatastoreArgs, Service};
use crate::format::shell_quote;
use crate::prompt;
use crate::settings::Settings;
use crate::ui::Ui;

/// How long emptying a database, or capturing or restoring a backup, may take before the
/// client stops waiting (the server finishes the work anyway).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Args)]
pub struct PgInfoArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
    /// Print the API's JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PgPsqlArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
    /// An SQL command to run instead of an interactive session
    #[arg(short, long, value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PgResetArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
    /// The app's name again, to confirm
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

pub async fn info(args: PgInfoArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let (app, client, datastore) = args.target.resolve(Service::Postgres, settings).await?;
    let header = datastore.header();
    datastores::show_info(&client, &app, &datastore, &header, args.json, ui).await
}

/// The command the dyno runs: psql on the URL in `url_var`, which the dyno's shell expands,
/// and an SQL command quoted as one word for that shell.
pub fn psql_command(url_var: &str, sql: Option<&str>) -> String {
    let mut command = format!("psql \"${url_var}\"");
    if let Some(sql) = sql {
        command.push_str(" -c ");
        command.push_str(&shell_quote(sql));
    }
    command
}

pub async fn psql(args: PgPsqlArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let (app, _, datastore) = args.target.resolve(Service::Postgres, settings).await?;
    datastores::attach_client(
        &app,
        &datastore,
        |url_var| psql_command(url_var, args.command.as_deref()),
        settings,
        ui,
    )
    .await
}

pub async fn reset(args: PgResetArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let (app, client, datastore) = args.target.resolve(Service::Postgres, settings).await?;
    let name = &datastore.addon.name;
    prompt::confirm_app(
        &app,
        args.confirm,
        &format!(
            "This will empty {name} ({}) on {}: all its data will be lost.",
            datastore.label(),
            ui.app(&app)
        ),
    )?;
    let label = format!("Resetting {name}");
    ui.action(
        &label,
        client.post_waiting(
            &["apps", &app, "addons", name, "actions", "reset"],
            &serde_json::json!({}),
            DATA_TIMEOUT,
        ),
    )
    .await
    .with_context(|| format!("reset {name}"))?;
    ui.line("done")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_commands() {
        assert_eq!(
            psql_command("DATABASE_URL", None),
            r#"psql "$DATABASE_URL""#
        );
        assert_eq!(
            psql_command("REPORTS_URL", Some("SELECT 1")),
            r#"psql "$REPORTS_URL" -c 'SELECT 1'"#
        );
        assert_eq!(
            psql_command("DATABASE_URL", Some("it's")),
            r#"psql "$DATABASE_URL" -c 'it'\''s'"#
        );
    }
}
