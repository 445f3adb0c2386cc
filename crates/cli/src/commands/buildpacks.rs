//! `buildpacks`, `buildpacks:add`, `:remove`, `:set` and `:clear`: the app's buildpack list,
//! read, edited here (see [`crate::buildpack_list`]) and sent back whole.

use anyhow::{bail, Result};
use wharf_api_types::{BuildpackInstallation, BuildpackInstallationsUpdate, BuildpackUpdate};

use crate::args::{
    AppArgs, AppJsonArgs, BuildpacksAddArgs, BuildpacksRemoveArgs, BuildpacksSetArgs,
};
use crate::buildpack_list::{self, numbered, Edit};
use crate::client::{decode, Client};
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn list(args: AppJsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let value = client
        .get(&["apps", &name, "buildpack-installations"])
        .await?;
    if args.json {
        return ui.json(&value);
    }
    let urls = urls(decode(value, "the buildpacks")?);
    if urls.is_empty() {
        return ui.line(format!(
            "{} has no buildpack URL set: buildpacks are detected on each build",
            ui.app(&name)
        ));
    }
    ui.line(ui.header(&format!("{} Buildpack URLs", ui.app(&name))))?;
    ui.lines(numbered(&urls, ""))
}

pub async fn add(args: BuildpacksAddArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let edit = Edit::Add {
        url: args.url,
        index: args.index.map(index),
    };
    update(&args.app, edit, "Buildpack added", settings, ui).await
}

pub async fn set(args: BuildpacksSetArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let edit = Edit::Set {
        url: args.url,
        index: index(args.index),
    };
    update(&args.app, edit, "Buildpack set", settings, ui).await
}

pub async fn remove(args: BuildpacksRemoveArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let edit = match (args.url, args.index) {
        (Some(url), _) => Edit::RemoveUrl(url),
        (None, Some(position)) => Edit::RemoveIndex(index(position)),
        // clap requires one of the two.
        (None, None) => bail!("Say which buildpack to remove: a URL or --index N"),
    };
    update(&args.app, edit, "Buildpack removed", settings, ui).await
}

pub async fn clear(args: AppArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    update(&args, Edit::Clear, "Buildpacks cleared", settings, ui).await
}

/// Reads the list, applies `edit`, sends the result, and shows what the next build uses.
async fn update(
    app: &AppArgs,
    edit: Edit,
    done: &str,
    settings: &Settings,
    ui: &mut Ui,
) -> Result<()> {
    let name = settings.app(app)?;
    let client = settings.client()?;
    let current = fetch(&client, &name).await?;
    if current.is_empty() && matches!(edit, Edit::RemoveUrl(_) | Edit::RemoveIndex(_)) {
        bail!(
            "No buildpacks were found. Next release on {} will detect buildpacks normally.",
            ui.app(&name)
        );
    }
    let wanted = buildpack_list::apply(&current, &edit)?;
    let body = BuildpackInstallationsUpdate {
        updates: wanted
            .iter()
            .map(|url| BuildpackUpdate {
                buildpack: url.clone(),
            })
            .collect(),
    };
    let value = client
        .put(&["apps", &name, "buildpack-installations"], &body)
        .await?;
    let saved = urls(decode(value, "the buildpacks")?);
    if saved.is_empty() {
        return ui.line(format!(
            "{done}. Next release on {} will detect buildpacks normally.",
            ui.app(&name)
        ));
    }
    ui.line(format!(
        "{done}. Next release on {} will use:",
        ui.app(&name)
    ))?;
    ui.lines(numbered(&saved, "  "))?;
    let these = match saved.len() {
        1 => "this buildpack",
        _ => "these buildpacks",
    };
    ui.line(format!(
        "Run `git push wharf main` or `wharf deploy` to create a new release using {these}."
    ))
}

async fn fetch(client: &Client, app: &str) -> Result<Vec<String>> {
    let value = client
        .get(&["apps", app, "buildpack-installations"])
        .await?;
    Ok(urls(decode(value, "the buildpacks")?))
}

/// The URLs in the order builds run them.
fn urls(mut installations: Vec<BuildpackInstallation>) -> Vec<String> {
    installations.sort_by_key(|installation| installation.ordinal);
    installations
        .into_iter()
        .map(|installation| installation.buildpack.url)
        .collect()
}

/// A 1-based index from the command line.
fn index(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}
