//! `hosts`, `hosts:add NAME`, `hosts:drain HOST`, `hosts:undrain HOST` and
//! `hosts:remove HOST` (admins only): the hosts that run dynos, with their state, capacity and
//! placed dynos.

use anyhow::Result;
use wharf_api_types::{Host, HostCreate, HostCreated, HostUpdate};

use crate::args::{HostArgs, HostsAddArgs, JsonArgs};
use crate::client::decode;
use crate::format::human_size;
use crate::settings::Settings;
use crate::ui::Ui;

const MIB: i64 = 1024 * 1024;

pub async fn list(args: JsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let value = settings.client()?.get(&["hosts"]).await?;
    if args.json {
        return ui.json(&value);
    }
    let hosts: Vec<Host> = decode(value, "the hosts")?;
    if hosts.is_empty() {
        return ui.line(
            "No hosts run dynos yet. An admin adds one with `wharf hosts:add NAME` and runs \
             the join command it prints on that host.",
        );
    }
    ui.line(ui.header("Hosts"))?;
    let mut rows = vec![vec![
        "Name".to_owned(),
        "State".to_owned(),
        "Dynos".to_owned(),
        "Memory placed / offered".to_owned(),
        "Address".to_owned(),
    ]];
    rows.extend(hosts.iter().map(row));
    ui.table(&rows)
}

fn row(host: &Host) -> Vec<String> {
    let memory = |mb: u64| human_size(i64::try_from(mb).unwrap_or(i64::MAX / MIB) * MIB);
    vec![
        host.name.clone(),
        host.state.clone(),
        host.dynos.to_string(),
        format!(
            "{} / {}",
            memory(host.placed_memory_mb),
            host.memory_mb.map_or_else(|| "?".to_owned(), memory)
        ),
        host.address.clone().unwrap_or_else(|| "-".to_owned()),
    ]
}

pub async fn add(args: HostsAddArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let body = HostCreate { name: args.name };
    let value = settings.client()?.post(&["hosts"], &body).await?;
    if args.json {
        return ui.json(&value);
    }
    let created: HostCreated = decode(value, "the new host")?;
    ui.line(format!("Added host {}.", created.host.name))?;
    ui.line(
        "Join it by running this as root on that host (the credential is shown only now; \
         keep it secret):",
    )?;
    ui.line(format!("  {}", created.join_command))
}

pub async fn drain(args: HostArgs, draining: bool, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let body = HostUpdate {
        draining: Some(draining),
    };
    let value = settings
        .client()?
        .patch(&["hosts", &args.host], &body)
        .await?;
    if args.json {
        return ui.json(&value);
    }
    let host: Host = decode(value, "the host")?;
    if draining {
        ui.line(format!(
            "Draining host {}: it gets no new dynos, and its {} dynos move to other hosts.",
            host.name, host.dynos
        ))
    } else {
        ui.line(format!("Host {} takes dynos again.", host.name))
    }
}

pub async fn remove(args: HostArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let value = settings.client()?.delete(&["hosts", &args.host]).await?;
    if args.json {
        return ui.json(&value);
    }
    let host: Host = decode(value, "the removed host")?;
    ui.line(format!(
        "Removed host {}: its credential no longer works, and its dynos are placed on other \
         hosts.",
        host.name
    ))
}
