//! `config`, `config:get`, `config:set` and `config:unset`.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::args::{ConfigArgs, ConfigGetArgs, ConfigSetArgs, ConfigUnsetArgs};
use crate::client::{decode, Client};
use crate::commands::releases::{done_with_version, latest_version};
use crate::format::shell_quote;
use crate::settings::Settings;
use crate::ui::Ui;

/// Config vars as the API sends them.
pub type ConfigVars = BTreeMap<String, String>;

pub async fn show(args: ConfigArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let value = settings
        .client()?
        .get(&["apps", &name, "config-vars"])
        .await?;
    if args.json {
        return ui.json(&value);
    }
    let vars: ConfigVars = decode(value, "the config vars")?;
    if args.shell {
        return ui.lines(shell_lines(&vars));
    }
    ui.line(ui.header(&format!("{name} Config Vars")))?;
    ui.line("")?;
    print_vars(ui, &vars)
}

pub async fn get(args: ConfigGetArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let value = settings
        .client()?
        .get(&["apps", &name, "config-vars"])
        .await?;
    let vars: ConfigVars = decode(value, "the config vars")?;
    let value = vars.get(&args.key).map(String::as_str).unwrap_or_default();
    if args.shell {
        ui.line(format!("{}={}", args.key, shell_quote(value)))
    } else {
        ui.line(value)
    }
}

pub async fn set(args: ConfigSetArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let mut keys: Vec<String> = Vec::new();
    let mut body = Map::new();
    for pair in args.pairs {
        if !keys.contains(&pair.key) {
            keys.push(pair.key.clone());
        }
        body.insert(pair.key, Value::String(pair.value));
    }
    let label = format!(
        "Setting {} and restarting {}",
        key_list(ui, &keys),
        ui.app(&name)
    );
    let (vars, version) = ui.action(&label, change(&client, &name, &body)).await?;
    ui.line(done_with_version(version))?;
    let set: ConfigVars = keys
        .into_iter()
        .map(|key| {
            let value = vars.get(&key).cloned().unwrap_or_default();
            (key, value)
        })
        .collect();
    print_vars(ui, &set)
}

pub async fn unset(args: ConfigUnsetArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let mut keys: Vec<String> = Vec::new();
    for key in args.keys {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    // `null` removes a var.
    let body: Map<String, Value> = keys.iter().map(|key| (key.clone(), Value::Null)).collect();
    let label = format!(
        "Unsetting {} and restarting {}",
        key_list(ui, &keys),
        ui.app(&name)
    );
    let (_, version) = ui.action(&label, change(&client, &name, &body)).await?;
    ui.line(done_with_version(version))
}

/// Patches the config vars; returns the new ones and the version of the release that made.
async fn change(
    client: &Client,
    app: &str,
    body: &Map<String, Value>,
) -> Result<(ConfigVars, Option<i64>)> {
    let value = client.patch(&["apps", app, "config-vars"], body).await?;
    let vars = decode(value, "the config vars")?;
    let version = latest_version(client, app).await?;
    Ok((vars, version))
}

fn key_list(ui: &Ui, keys: &[String]) -> String {
    keys.iter()
        .map(|key| ui.key(key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `KEY: value` lines, keys aligned and coloured.
pub fn print_vars(ui: &mut Ui, vars: &ConfigVars) -> Result<()> {
    let pairs: Vec<(String, String)> = vars
        .iter()
        .map(|(key, value)| (ui.key(key), value.clone()))
        .collect();
    ui.key_values(&pairs)
}

/// `KEY=value` lines a shell can `eval`.
pub fn shell_lines(vars: &ConfigVars) -> Vec<String> {
    vars.iter()
        .map(|(key, value)| format!("{key}={}", shell_quote(value)))
        .collect()
}
