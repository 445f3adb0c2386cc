//! `deploy`: builds a directory without git, as Heroku's Builds API does: pack it, upload the
//! tarball to a source URL, start a build of it, follow the build's output, and exit by its
//! outcome.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use wharf_api_types::{Build, BuildCreate, Source, SourceBlobCreate};

use crate::args::DeployArgs;
use crate::client::{decode, Client};
use crate::commands::builds::stream_output;
use crate::format::human_size;
use crate::git;
use crate::progress::ProgressBar;
use crate::settings::Settings;
use crate::source_archive::{self, Packed};
use crate::ui::Ui;

/// The server refuses larger uploads; better to say so before sending a gigabyte.
const SOURCE_LIMIT: usize = 1024 * 1024 * 1024;
/// The output stream closes when the build ends, a moment before its final status may be
/// stored: how long to keep asking for it.
const FINAL_STATUS_DEADLINE: Duration = Duration::from_secs(30);
const FINAL_STATUS_INTERVAL: Duration = Duration::from_millis(500);
const UPLOAD_LABEL: &str = "Uploading source";

pub async fn deploy(args: DeployArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let directory = args.directory;

    let label = format!("Packing {}", shown(&directory));
    let packed = ui.action(&label, pack(directory.clone())).await?;
    ui.line(format!("done, {}", human_size(size(packed.bytes.len()))))?;
    for skipped in &packed.skipped {
        eprintln!(
            " ›   Warning: left out {}: not a file, directory or link",
            skipped.display()
        );
    }
    if packed.bytes.len() > SOURCE_LIMIT {
        bail!(
            "The source is {}, over the upload limit of {}: leave files out with .slugignore",
            human_size(size(packed.bytes.len())),
            human_size(size(SOURCE_LIMIT))
        );
    }

    let value = client
        .post(&["apps", &name, "sources"], &serde_json::json!({}))
        .await?;
    let source: Source = decode(value, "the source URLs")?;
    upload(&client, &source.source_blob.put_url, packed.bytes, ui).await?;

    let body = BuildCreate {
        source_blob: SourceBlobCreate {
            url: source.source_blob.get_url,
            version: git::head_commit(&directory),
            checksum: None,
        },
        buildpacks: None,
    };
    let value = client.post(&["apps", &name, "builds"], &body).await?;
    let build: Build = decode(value, "the new build")?;
    stream_output(&client, &build.output_stream_url, ui).await?;

    let build = final_build(&client, &name, &build.id).await?;
    if build.status != "succeeded" {
        bail!("Build failed");
    }
    Ok(())
}

async fn pack(directory: PathBuf) -> Result<Packed> {
    let shown = directory.display().to_string();
    tokio::task::spawn_blocking(move || source_archive::pack(&directory))
        .await
        .context("join the packing task")?
        .with_context(|| format!("pack {shown}"))
}

/// Sends the tarball, with a progress bar on a terminal and a plain line otherwise.
async fn upload(client: &Client, url: &str, bytes: Vec<u8>, ui: &mut Ui) -> Result<()> {
    if !ui.progress() {
        ui.action(UPLOAD_LABEL, client.upload(url, bytes, |_| {}))
            .await?;
        return ui.line("done");
    }
    let bar = Arc::new(Mutex::new(ProgressBar::new(
        UPLOAD_LABEL,
        bytes.len() as u64,
    )));
    let updates = Arc::clone(&bar);
    let result = client
        .upload(url, bytes, move |sent| {
            if let Ok(mut bar) = updates.lock() {
                bar.update(sent);
            }
        })
        .await;
    let outcome = if result.is_ok() { "done" } else { "!" };
    if let Ok(bar) = bar.lock() {
        bar.finish(outcome);
    }
    result
}

/// The build once it has left `pending`.
async fn final_build(client: &Client, app: &str, id: &str) -> Result<Build> {
    let deadline = Instant::now() + FINAL_STATUS_DEADLINE;
    loop {
        let build: Build = decode(client.get(&["apps", app, "builds", id]).await?, "the build")?;
        if build.status != "pending" {
            return Ok(build);
        }
        if Instant::now() >= deadline {
            bail!(
                "Build {id} is still pending: run `wharf builds:output {id} -a {app}` to follow it"
            );
        }
        tokio::time::sleep(FINAL_STATUS_INTERVAL).await;
    }
}

/// The directory as given, or its full path when that says more than `.` or `..`.
fn shown(directory: &Path) -> String {
    if directory.file_name().is_none() {
        if let Ok(full) = std::fs::canonicalize(directory) {
            return full.display().to_string();
        }
    }
    directory.display().to_string()
}

fn size(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
