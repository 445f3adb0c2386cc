//! `rollback`: a new release with the code and config of an earlier one.

use anyhow::{Context, Result};
use wharf_api_types::{Release, ReleaseCreate};

use crate::args::RollbackArgs;
use crate::client::decode;
use crate::commands::releases::{fetch, RECENT_RANGE};
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn rollback(args: RollbackArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let target: Release = match &args.release {
        Some(release) => decode(fetch(&client, &name, release).await?, "the release")?,
        None => {
            let value = client
                .get_range(&["apps", &name, "releases"], RECENT_RANGE)
                .await?;
            let releases: Vec<Release> = decode(value, "the releases")?;
            previous_eligible(releases).context("No eligible release found")?
        }
    };
    let body = ReleaseCreate {
        release: Some(target.id.clone()),
        ..ReleaseCreate::default()
    };
    let label = format!("Rolling back {} to v{}", ui.app(&name), target.version);
    let value = ui
        .action(&label, client.post(&["apps", &name, "releases"], &body))
        .await?;
    let created: Release = decode(value, "the new release")?;
    ui.line(format!("done, v{}", created.version))?;
    ui.line(format!(
        "To undo, run: wharf rollback v{}",
        created.version - 1
    ))
}

/// From releases newest first, the one before the newest that can be rolled back to.
fn previous_eligible(releases: Vec<Release>) -> Option<Release> {
    releases
        .into_iter()
        .filter(|release| release.eligible_for_rollback)
        .nth(1)
}
