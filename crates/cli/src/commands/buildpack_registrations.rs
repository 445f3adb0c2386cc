//! `buildpacks:register NAME DIR`, `buildpacks:registered` and `buildpacks:unregister NAME`:
//! the buildpacks an admin made from directories on the server, which apps then add by name
//! (`buildpacks:add NAME`).

use anyhow::Result;
use wharf_api_types::{BuildpackRegistration, BuildpackRegistrationCreate};

use crate::args::{BuildpacksRegisterArgs, BuildpacksUnregisterArgs, JsonArgs};
use crate::client::decode;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn register(
    args: BuildpacksRegisterArgs,
    settings: &Settings,
    ui: &mut Ui,
) -> Result<()> {
    let body = BuildpackRegistrationCreate {
        name: args.name,
        dir: args.dir,
    };
    let value = settings
        .client()?
        .post(&["buildpack-registrations"], &body)
        .await?;
    if args.json {
        return ui.json(&value);
    }
    let registered: BuildpackRegistration = decode(value, "the registered buildpack")?;
    ui.line(format!(
        "Registered buildpack {} ({})",
        registered.name,
        registered.dir.as_deref().unwrap_or(&body.dir)
    ))?;
    ui.line(format!(
        "Apps use it with `wharf buildpacks:add {} -a APP`.",
        registered.name
    ))
}

pub async fn registered(args: JsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let value = settings.client()?.get(&["buildpack-registrations"]).await?;
    if args.json {
        return ui.json(&value);
    }
    let registrations: Vec<BuildpackRegistration> = decode(value, "the registered buildpacks")?;
    if registrations.is_empty() {
        return ui.line(
            "No buildpacks are registered. An admin registers a directory on the server with \
             `wharf buildpacks:register NAME DIR`.",
        );
    }
    ui.line(ui.header("Registered buildpacks"))?;
    let rows: Vec<Vec<String>> = registrations
        .into_iter()
        .map(|registration| {
            // Only admins are told the directories and who registered them.
            let mut row = vec![registration.name];
            row.extend(registration.dir);
            row.extend(registration.created_by.map(|account| account.email));
            row
        })
        .collect();
    ui.table(&rows)
}

pub async fn unregister(
    args: BuildpacksUnregisterArgs,
    settings: &Settings,
    ui: &mut Ui,
) -> Result<()> {
    let value = settings
        .client()?
        .delete(&["buildpack-registrations", &args.name])
        .await?;
    if args.json {
        return ui.json(&value);
    }
    let removed: BuildpackRegistration = decode(value, "the unregistered buildpack")?;
    ui.line(format!("Unregistered buildpack {}", removed.name))?;
    ui.line(format!(
        "Apps that list it fail to build until it is registered again or removed from their \
         buildpacks (`wharf buildpacks:remove {} -a APP`).",
        removed.name
    ))
}
