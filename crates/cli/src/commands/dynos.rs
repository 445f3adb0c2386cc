//! `ps`, `ps:restart` and `ps:stop`: an app's dynos as they run.

use anyhow::{bail, Result};
use serde_json::Value;
use time::OffsetDateTime;
use wharf_api_types::Dyno;

use crate::args::{DynoTargetArgs, PsArgs, PsRestartArgs, PsStopArgs};
use crate::client::decode;
use crate::dyno_list;
use crate::dyno_target::DynoTarget;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn list(args: PsArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let value = settings.client()?.get(&["apps", &name, "dynos"]).await?;
    let Value::Array(items) = value else {
        bail!("decode the dynos from the server: not a list");
    };
    let dynos: Vec<Dyno> = decode(Value::Array(items.clone()), "the dynos")?;
    let wanted = |dyno: &Dyno| args.types.is_empty() || args.types.contains(&dyno.process_type);
    let (items, dynos): (Vec<Value>, Vec<Dyno>) = items
        .into_iter()
        .zip(dynos)
        .filter(|(_, dyno)| wanted(dyno))
        .unzip();
    for process_type in &args.types {
        if !dynos.iter().any(|dyno| &dyno.process_type == process_type) {
            bail!("No {process_type} dynos on ⬢ {name}");
        }
    }
    if args.json {
        return ui.json(&Value::Array(items));
    }
    if dynos.is_empty() {
        return ui.line(format!("No dynos on {}", ui.app(&name)));
    }
    let lines = dyno_list::layout(&dynos, OffsetDateTime::now_utc(), ui.color());
    ui.lines(lines)
}

pub async fn restart(args: PsRestartArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let target = target(&args.target);
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let label = format!("Restarting {} on {}", target.describe(), ui.app(&name));
    ui.action(&label, client.delete(&target.restart_path(&name)))
        .await?;
    ui.line("done")
}

pub async fn stop(args: PsStopArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let target = target(&args.target);
    let name = settings.app(&args.app)?;
    // clap insists on a target, so there is always a path.
    let Some(path) = target.stop_path(&name) else {
        bail!("Name a dyno (web.1) or a process type (web) to stop");
    };
    let client = settings.client()?;
    let label = format!("Stopping {} on {}", target.describe(), ui.app(&name));
    ui.action(&label, client.post(&path, &serde_json::json!({})))
        .await?;
    ui.line("done")
}

fn target(args: &DynoTargetArgs) -> DynoTarget {
    DynoTarget::from_args(
        args.name.as_deref(),
        args.process_type.as_deref(),
        args.dyno_name.as_deref(),
    )
}
