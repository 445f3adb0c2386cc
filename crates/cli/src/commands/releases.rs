//! `releases` and `releases:info`, and release lookups shared with `config:set` and
//! `rollback`.

use anyhow::{Context, Result};
use serde_json::Value;
use time::OffsetDateTime;
use wharf_api_types::Release;

use crate::args::{ReleasesArgs, ReleasesInfoArgs};
use crate::client::{decode, Client};
use crate::commands::config_vars::{print_vars, shell_lines, ConfigVars};
use crate::format::{timestamp, truncate};
use crate::settings::Settings;
use crate::ui::Ui;

/// The releases `releases:info` and `rollback` choose from when given none.
pub const RECENT_RANGE: &str = "version ..; max=10, order=desc";
/// Just the newest release.
const LATEST_RANGE: &str = "version ..; order=desc,max=1";
/// How much of a description fits in a terminal row.
const DESCRIPTION_WIDTH: usize = 40;

pub async fn list(args: ReleasesArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let range = format!("version ..; max={}, order=desc", args.num);
    let value = settings
        .client()?
        .get_range(&["apps", &name, "releases"], &range)
        .await?;
    if args.json {
        return ui.json(&value);
    }
    let releases: Vec<Release> = decode(value, "the releases")?;
    let title = match releases.iter().find(|release| release.current) {
        Some(current) => format!("{} Releases - Current: v{}", ui.app(&name), current.version),
        None => format!("{} Releases", ui.app(&name)),
    };
    ui.line(ui.header(&title))?;
    ui.line("")?;
    if releases.is_empty() {
        return ui.line(format!("{} has no releases yet.", ui.app(&name)));
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|release| {
            let description = describe(release);
            let description = match ui.terminal() {
                true => truncate(&description, DESCRIPTION_WIDTH),
                false => description,
            };
            vec![
                format!("v{}", release.version),
                description,
                release.user.email.clone(),
                timestamp(&release.created_at, now),
            ]
        })
        .collect();
    ui.table(&rows)
}

pub async fn info(args: ReleasesInfoArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let value = match &args.release {
        Some(release) => fetch(&client, &name, release).await?,
        None => {
            let list = client
                .get_range(&["apps", &name, "releases"], RECENT_RANGE)
                .await?;
            first(list).with_context(|| format!("{name} has no releases"))?
        }
    };
    if args.json {
        return ui.json(&value);
    }
    let release: Release = decode(value, "the release")?;
    let version = release.version.to_string();
    let vars: ConfigVars = decode(
        client
            .get(&["apps", &name, "releases", &version, "config-vars"])
            .await?,
        "the release's config vars",
    )?;
    let now = OffsetDateTime::now_utc();
    let pairs = [
        ("Add-ons", release.addon_plan_names.join(", ")),
        ("Change", describe(&release)),
        ("By", release.user.email.clone()),
        ("When", timestamp(&release.created_at, now)),
        ("Status", release.status.clone()),
    ]
    .map(|(key, value)| (key.to_string(), value));
    ui.line(ui.header(&format!("Release v{version}")))?;
    ui.key_values(&pairs)?;
    ui.line("")?;
    ui.line(ui.header(&format!("v{version} Config vars")))?;
    if args.shell {
        ui.lines(shell_lines(&vars))
    } else {
        print_vars(ui, &vars)
    }
}

/// One release by `vN`, `N` or id.
pub async fn fetch(client: &Client, app: &str, release: &str) -> Result<Value> {
    client
        .get(&["apps", app, "releases", &release_path(release)])
        .await
}

/// The version of the newest release, if there is one.
pub async fn latest_version(client: &Client, app: &str) -> Result<Option<i64>> {
    let value = client
        .get_range(&["apps", app, "releases"], LATEST_RANGE)
        .await?;
    let releases: Vec<Release> = decode(value, "the releases")?;
    Ok(releases.first().map(|release| release.version))
}

/// `done, v5`, or `done` when the version is unknown.
pub fn done_with_version(version: Option<i64>) -> String {
    match version {
        Some(version) => format!("done, v{version}"),
        None => "done".to_string(),
    }
}

/// The path segment for a release argument: `v5` and `5` are versions, anything else an id.
fn release_path(release: &str) -> String {
    match release.strip_prefix('v') {
        Some(digits) if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) => {
            digits.to_string()
        }
        _ => release.to_string(),
    }
}

/// The description, with what went wrong when the release did not succeed.
fn describe(release: &Release) -> String {
    let status = match release.status.as_str() {
        "pending" => "release command executing",
        "failed" => "release command failed",
        "expired" => "expired",
        _ => return release.description.clone(),
    };
    format!("{} ({status})", release.description)
}

fn first(value: Value) -> Option<Value> {
    match value {
        Value::Array(items) => items.into_iter().next(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_arguments_name_versions_or_ids() {
        let check = |argument: &str, expected: &str| {
            assert_eq!(release_path(argument), expected, "{argument}");
        };
        check("v5", "5");
        check("12", "12");
        check("v", "v");
        check("vx", "vx");
        check(
            "01234567-89ab-cdef-0123-456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdef",
        );
    }
}
