//! `redis:info`, `redis:cli`, `redis:credentials` and `redis:maxmemory`, in Heroku's words.
//! redis-cli runs in a one-off dyno, where the add-on's URL is a config var.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;
use wharf_api_types::{AddonInfoRow, AddonSettings};

use crate::client::decode;
use crate::commands::datastores::{self, Datastore, DatastoreArgs, Service};
use crate::settings::Settings;
use crate::ui::Ui;

/// The setting `redis:maxmemory` changes.
const MAXMEMORY_POLICY: &str = "maxmemory-policy";

#[derive(Debug, Clone, Args)]
pub struct RedisInfoArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
    /// Print the API's JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RedisCliArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RedisCredentialsArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
    /// Give the add-on a new password; the old one stops once the dynos have restarted
    #[arg(long)]
    pub reset: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RedisMaxmemoryArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
    /// What Redis evicts when full: noeviction, allkeys-lru, volatile-lru, allkeys-lfu,
    /// volatile-lfu, allkeys-random, volatile-random, volatile-ttl
    #[arg(short, long, value_name = "POLICY")]
    pub policy: String,
}

/// `redis-xxx (REDIS_URL)`, as Heroku names one in its headers.
fn title(datastore: &Datastore) -> String {
    match &datastore.url_var {
        Some(_) => format!("{} ({})", datastore.addon.name, datastore.header()),
        None => datastore.addon.name.clone(),
    }
}

pub async fn info(args: RedisInfoArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let (app, client, datastore) = args.target.resolve(Service::Redis, settings).await?;
    datastores::show_info(&client, &app, &datastore, &title(&datastore), args.json, ui).await
}

/// The command the dyno runs: redis-cli on the URL in `url_var`, which the dyno's shell
/// expands. Heroku's URLs carry a password and no user name (`redis://:PASSWORD@host`), which
/// redis-cli 7.0 turns into `AUTH "" PASSWORD` (an empty user name, refused): the URL is given
/// the `default` user's name, which is what `AUTH PASSWORD` logs in as.
pub fn redis_cli_command(url_var: &str) -> String {
    format!(
        "redis-cli --no-auth-warning -u \"$(printf '%s' \"${url_var}\" | \
         sed 's#^\\(rediss*\\)://:#\\1://default:#')\""
    )
}

pub async fn cli(args: RedisCliArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let (app, _, datastore) = args.target.resolve(Service::Redis, settings).await?;
    datastores::attach_client(&app, &datastore, redis_cli_command, settings, ui).await
}

pub async fn credentials(
    args: RedisCredentialsArgs,
    settings: &Settings,
    ui: &mut Ui,
) -> Result<()> {
    let (app, client, datastore) = args.target.resolve(Service::Redis, settings).await?;
    let name = &datastore.addon.name;
    if !args.reset {
        let url_var = datastore.require_url_var(&app)?;
        let config: BTreeMap<String, Value> = decode(
            client.get(&["apps", &app, "config-vars"]).await?,
            "the config vars",
        )?;
        let url = config
            .get(url_var)
            .and_then(Value::as_str)
            .with_context(|| format!("{app} has no config var {url_var}"))?;
        return ui.line(url);
    }
    let label = format!("Resetting credentials for {name}");
    ui.action(
        &label,
        client.post(
            &[
                "apps",
                &app,
                "addons",
                name,
                "actions",
                "rotate-credentials",
            ],
            &serde_json::json!({}),
        ),
    )
    .await?;
    ui.line("done")?;
    ui.line(
        "The old password stops working once the dynos of the apps it is attached to have \
         restarted with the new one.",
    )
}

pub async fn maxmemory(args: RedisMaxmemoryArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let (app, client, datastore) = args.target.resolve(Service::Redis, settings).await?;
    let body = AddonSettings {
        settings: BTreeMap::from([(MAXMEMORY_POLICY.to_owned(), args.policy.clone())]),
    };
    let rows: Vec<AddonInfoRow> = decode(
        client
            .patch(
                &["apps", &app, "addons", &datastore.addon.name, "settings"],
                &body,
            )
            .await?,
        "the add-on's settings",
    )?;
    let policy = rows
        .iter()
        .find(|row| row.name == MAXMEMORY_POLICY)
        .map_or(args.policy.as_str(), |row| row.value.as_str());
    ui.line(format!(
        "Maxmemory policy for {} set to {policy}.",
        title(&datastore)
    ))
}
