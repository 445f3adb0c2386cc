//! `builds`, `builds:info`, `builds:output` and `builds:cache:purge`, and the build output
//! streaming `deploy` shares.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use time::OffsetDateTime;
use wharf_api_types::Build;

use crate::args::{BuildsArgs, BuildsCachePurgeArgs, BuildsInfoArgs, BuildsOutputArgs};
use crate::client::{decode, Client};
use crate::format::timestamp;
use crate::prompt;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn list(args: BuildsArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let value = settings.client()?.get(&["apps", &name, "builds"]).await?;
    let Value::Array(all) = value else {
        bail!("decode the builds from the server: not a list");
    };
    // The API lists builds oldest first.
    let count = usize::try_from(args.num).unwrap_or(usize::MAX);
    let newest: Vec<Value> = all.into_iter().rev().take(count).collect();
    if args.json {
        return ui.json(&Value::Array(newest));
    }
    let builds: Vec<Build> = decode(Value::Array(newest), "the builds")?;
    ui.line(ui.header(&format!("{} Builds", ui.app(&name))))?;
    if builds.is_empty() {
        return ui.line(format!("{} has no builds yet.", ui.app(&name)));
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = builds
        .iter()
        .map(|build| {
            vec![
                build.id.clone(),
                build.status.clone(),
                build.user.email.clone(),
                timestamp(&build.created_at, now),
                build.source_blob.version.clone().unwrap_or_default(),
            ]
        })
        .collect();
    ui.table(&rows)
}

pub async fn info(args: BuildsInfoArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let value = fetch_or_newest(&client, &name, args.id.as_deref()).await?;
    if args.json {
        return ui.json(&value);
    }
    let build: Build = decode(value, "the build")?;
    let buildpacks: Vec<&str> = build
        .buildpacks
        .iter()
        .map(|buildpack| buildpack.url.as_str())
        .collect();
    let now = OffsetDateTime::now_utc();
    let pairs = [
        ("Id", build.id.clone()),
        ("Status", build.status.clone()),
        ("Buildpacks", buildpacks.join(", ")),
        (
            "Version",
            build.source_blob.version.clone().unwrap_or_default(),
        ),
        (
            "Release",
            build
                .release
                .as_ref()
                .map(|release| release.id.clone())
                .unwrap_or_default(),
        ),
        ("Created", timestamp(&build.created_at, now)),
        ("User", build.user.email.clone()),
    ]
    .map(|(key, value)| (key.to_string(), value));
    ui.key_values(&pairs)
}

pub async fn output(args: BuildsOutputArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let value = fetch_or_newest(&client, &name, args.id.as_deref()).await?;
    let build: Build = decode(value, "the build")?;
    stream_output(&client, &build.output_stream_url, ui).await
}

pub async fn purge_cache(
    args: BuildsCachePurgeArgs,
    settings: &Settings,
    ui: &mut Ui,
) -> Result<()> {
    let name = settings.app(&args.app)?;
    prompt::confirm_app(
        &name,
        args.confirm,
        &format!(
            "This will delete the build cache of {}: the next build starts from scratch.",
            ui.app(&name)
        ),
    )?;
    let client = settings.client()?;
    let label = format!("Purging build cache for {}", ui.app(&name));
    ui.action(&label, client.delete(&["apps", &name, "build-cache"]))
        .await?;
    ui.line("done")
}

/// Prints a build's output as it comes, until the server closes the stream (the build
/// ended); ends with a newline so that what follows starts a line.
pub async fn stream_output(client: &Client, url: &str, ui: &mut Ui) -> Result<()> {
    const WHAT: &str = "read the build output";
    let mut response = client.open_stream(url, WHAT).await?;
    let mut last = b'\n';
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| anyhow::Error::new(error.without_url()).context(WHAT))?
    {
        if let Some(&byte) = chunk.last() {
            last = byte;
        }
        ui.raw(&chunk)?;
    }
    if last != b'\n' {
        ui.raw(b"\n")?;
    }
    Ok(())
}

/// One build by id, or the newest.
async fn fetch_or_newest(client: &Client, app: &str, id: Option<&str>) -> Result<Value> {
    if let Some(id) = id {
        return client.get(&["apps", app, "builds", id]).await;
    }
    match client.get(&["apps", app, "builds"]).await? {
        Value::Array(builds) => builds
            .into_iter()
            .last()
            .with_context(|| format!("{app} has no builds")),
        _ => bail!("decode the builds from the server: not a list"),
    }
}
