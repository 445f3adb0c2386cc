//! `pg:backups`, `pg:backups:capture`, `pg:backups:restore` and `pg:backups:download`, in
//! Heroku's words. Backups are numbered per database (`b001`); `APP::b001` names one of
//! another app's, and no number means the latest.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use tokio::io::AsyncWriteExt;
use wharf_api_types::{AddonBackup, AddonRestore};

use crate::args::AppArgs;
use crate::client::{decode, Client};
use crate::commands::datastores::{self, Datastore, DatastoreArgs, Service};
use crate::commands::pg::DATA_TIMEOUT;
use crate::format::human_size;
use crate::progress::ProgressBar;
use crate::prompt;
use crate::settings::Settings;
use crate::ui::Ui;

/// Heroku's file name for a downloaded backup.
const DEFAULT_DOWNLOAD: &str = "latest.dump";
/// How long a download may go without a byte before it is given up.
const DOWNLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Args)]
pub struct PgBackupsArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Print the API's JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PgBackupsCaptureArgs {
    #[command(flatten)]
    pub target: DatastoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PgBackupsRestoreArgs {
    /// The backup: b001, or APP::b001 for one of another app's [default: the database's latest]
    #[arg(value_name = "BACKUP")]
    pub backup: Option<String>,
    /// The database to overwrite: its name, or the name it is attached as (DATABASE)
    /// [default: the app's only one, else the one attached as DATABASE]
    #[arg(value_name = "DATABASE")]
    pub database: Option<String>,
    #[command(flatten)]
    pub app: AppArgs,
    /// The app's name again, to confirm
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PgBackupsDownloadArgs {
    /// The backup: b001, or APP::b001 for one of another app's [default: the latest]
    #[arg(value_name = "BACKUP")]
    pub backup: Option<String>,
    /// The database whose backup it is (a Wharf addition)
    /// [default: the app's only one, else the one attached as DATABASE]
    #[arg(value_name = "DATABASE")]
    pub database: Option<String>,
    #[command(flatten)]
    pub app: AppArgs,
    /// Where to save it; an existing file is replaced, once the download is complete
    #[arg(short, long, value_name = "FILE", default_value = DEFAULT_DOWNLOAD)]
    pub output: PathBuf,
}

/// A backup as the user names it: `b001`, `APP::b001`, or `APP::` (that app's latest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupRef {
    /// Another app's backup.
    pub app: Option<String>,
    /// `None`: the latest.
    pub name: Option<String>,
}

pub fn parse_backup(raw: &str) -> Result<BackupRef> {
    let invalid = || format!("{raw:?} is not a backup: give b001, or APP::b001 for another app's");
    let (app, name) = match raw.split_once("::") {
        Some((app, name)) => (Some(app), name),
        None => (None, raw),
    };
    if app.is_some_and(str::is_empty) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!(invalid());
    }
    if app.is_none() && name.is_empty() {
        bail!(invalid());
    }
    Ok(BackupRef {
        app: app.map(str::to_owned),
        name: (!name.is_empty()).then(|| name.to_owned()),
    })
}

/// Whether a lone argument of `pg:backups:restore` names a backup (`b001`, `APP::b001`)
/// rather than a database.
fn looks_like_backup(raw: &str) -> bool {
    let mut chars = raw.chars();
    raw.contains("::")
        || (chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && raw.len() > 1
            && chars.all(|c| c.is_ascii_digit()))
}

/// `2026-01-01 10:00:00 +0000`, as Heroku shows a backup's time; unparsable input as is.
fn backup_time(rfc3339: &str) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] +0000");
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .and_then(|at| at.to_offset(UtcOffset::UTC).format(format).ok())
        .unwrap_or_else(|| rfc3339.to_owned())
}

async fn backups_of(client: &Client, app: &str, datastore: &Datastore) -> Result<Vec<Value>> {
    decode(
        client
            .get(&["apps", app, "addons", &datastore.addon.name, "backups"])
            .await?,
        "the backups",
    )
}

/// The latest backup of `datastore` on `app` (the API lists them oldest first).
async fn latest(client: &Client, app: &str, datastore: &Datastore) -> Result<String> {
    let backups = backups_of(client, app, datastore).await?;
    let last = backups.into_iter().last().with_context(|| {
        format!(
            "{} on {app} has no backups: capture one with `wharf pg:backups:capture -a {app}`",
            datastore.addon.name
        )
    })?;
    let backup: AddonBackup = decode(last, "the backup")?;
    Ok(backup.name)
}

pub async fn list(args: PgBackupsArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let addons = datastores::addons_of(&client, &app).await?;
    let mut backups: Vec<(AddonBackup, Value, String)> = Vec::new();
    for datastore in datastores::all(&addons, Service::Postgres, &app)? {
        for raw in backups_of(&client, &app, &datastore).await? {
            let backup: AddonBackup = decode(raw.clone(), "the backup")?;
            backups.push((backup, raw, datastore.label().to_owned()));
        }
    }
    // Newest first, as Heroku lists them.
    backups.sort_by_cached_key(|(backup, _, _)| {
        std::cmp::Reverse((
            OffsetDateTime::parse(&backup.created_at, &Rfc3339).ok(),
            backup.name.clone(),
        ))
    });
    if args.json {
        return ui.json(&Value::Array(
            backups.into_iter().map(|(_, raw, _)| raw).collect(),
        ));
    }
    ui.line(ui.header("Backups"))?;
    if backups.is_empty() {
        return ui.line(format!(
            "No backups. Capture one with `wharf pg:backups:capture -a {app}`"
        ));
    }
    let mut rows = vec![vec![
        "ID".to_owned(),
        "Created at".to_owned(),
        "Size".to_owned(),
        "Database".to_owned(),
    ]];
    for (backup, _, database) in backups {
        rows.push(vec![
            backup.name,
            backup_time(&backup.created_at),
            size_text(backup.size),
            database,
        ]);
    }
    ui.table(&rows)
}

pub async fn capture(args: PgBackupsCaptureArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let (app, client, datastore) = args.target.resolve(Service::Postgres, settings).await?;
    let name = &datastore.addon.name;
    let label = format!(
        "Capturing a backup of {name} ({}) on {}",
        datastore.label(),
        ui.app(&app)
    );
    let raw = ui
        .action(
            &label,
            client.post_waiting(
                &["apps", &app, "addons", name, "backups"],
                &serde_json::json!({}),
                DATA_TIMEOUT,
            ),
        )
        .await
        .context("capture a backup")?;
    ui.line("done")?;
    let backup: AddonBackup = decode(raw, "the backup")?;
    ui.line(format!(
        "Backup {} of {name} captured ({})",
        backup.name,
        size_text(backup.size)
    ))
}

pub async fn restore(args: PgBackupsRestoreArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    // `pg:backups:restore DATABASE` restores that database's latest backup.
    let (backup, database) = match (args.backup, args.database) {
        (Some(first), None) if !looks_like_backup(&first) => (None, Some(first)),
        pair => pair,
    };
    let reference = backup.as_deref().map(parse_backup).transpose()?;
    let reference = reference.unwrap_or_default();
    let datastore = datastores::find(&client, Service::Postgres, &app, database.as_deref()).await?;
    let name = match (&reference.name, &reference.app) {
        (Some(name), _) => name.clone(),
        (None, None) => latest(&client, &app, &datastore).await?,
        (None, Some(other)) => {
            let source = datastores::find(&client, Service::Postgres, other, None).await?;
            latest(&client, other, &source).await?
        }
    };
    let shown = match &reference.app {
        Some(other) => format!("{other}::{name}"),
        None => name.clone(),
    };
    let target = &datastore.addon.name;
    prompt::confirm_app(
        &app,
        args.confirm,
        &format!(
            "This will replace all data in {target} ({}) on {} with backup {shown}.",
            datastore.label(),
            ui.app(&app)
        ),
    )?;
    let body = AddonRestore {
        backup: name,
        from_app: reference.app.clone(),
    };
    let label = format!("Restoring {shown} to {target} ({})", datastore.label());
    ui.action(
        &label,
        client.post_waiting(
            &["apps", &app, "addons", target, "actions", "restore"],
            &body,
            DATA_TIMEOUT,
        ),
    )
    .await
    .context("restore the backup")?;
    ui.line("done")
}

pub async fn download(args: PgBackupsDownloadArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app = settings.app(&args.app)?;
    let client = settings.client()?;
    let reference = args.backup.as_deref().map(parse_backup).transpose()?;
    let reference = reference.unwrap_or_default();
    let source_app = reference.app.clone().unwrap_or(app);
    let datastore = datastores::find(
        &client,
        Service::Postgres,
        &source_app,
        args.database.as_deref(),
    )
    .await?;
    let name = match reference.name {
        Some(name) => name,
        None => latest(&client, &source_app, &datastore).await?,
    };
    if args.output.is_dir() {
        bail!(
            "{} is a directory: give a file name with -o",
            args.output.display()
        );
    }
    let addon = &datastore.addon.name;
    let label = format!("Downloading {name} of {addon} to {}", args.output.display());
    let path = ["apps", &source_app, "addons", addon, "backups", &name];
    let response = client.download(&path).await?;
    match (ui.progress(), response.content_length()) {
        (true, Some(total)) => {
            let mut bar = ProgressBar::new(&label, total);
            let saved = save(response, &args.output, |done| bar.update(done)).await;
            bar.finish(if saved.is_ok() { "done" } else { "!" });
            saved.map(drop)
        }
        _ => {
            let saved = ui
                .action(&label, save(response, &args.output, |_| {}))
                .await?;
            ui.line(format!("done, {}", size_text(saved)))
        }
    }
}

fn size_text(bytes: u64) -> String {
    human_size(i64::try_from(bytes).unwrap_or(i64::MAX))
}

/// `FILE.partial`, where a download goes until it is complete.
fn partial_path(output: &Path) -> PathBuf {
    let mut name = OsString::from(output.as_os_str());
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes the response's body to `FILE.partial` and renames it to `output` once all of it
/// came: an interrupted download never leaves a truncated dump under the real name, nor
/// replaces a good one. The partial file is removed on any failure. Returns the bytes saved.
async fn save(
    response: reqwest::Response,
    output: &Path,
    progress: impl FnMut(u64),
) -> Result<u64> {
    let partial = partial_path(output);
    let saved = async {
        let written = write_partial(response, &partial, progress).await?;
        tokio::fs::rename(&partial, output)
            .await
            .with_context(|| format!("rename {} to {}", partial.display(), output.display()))?;
        Ok(written)
    }
    .await;
    if saved.is_err() {
        // The failure is what matters; a partial file that cannot be removed is named so.
        let _ = tokio::fs::remove_file(&partial).await;
    }
    saved
}

async fn write_partial(
    mut response: reqwest::Response,
    partial: &Path,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let expected = response.content_length();
    // A stale partial file from an interrupted run is replaced; a new one is the user's only
    // (a dump holds all of the database's data).
    match tokio::fs::remove_file(partial).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("remove {}", partial.display()));
        }
        _ => {}
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(partial)
        .await
        .with_context(|| format!("create {}", partial.display()))?;
    let mut written: u64 = 0;
    loop {
        let chunk = tokio::time::timeout(DOWNLOAD_IDLE_TIMEOUT, response.chunk())
            .await
            .with_context(|| {
                format!(
                    "download the backup: nothing came for {} seconds",
                    DOWNLOAD_IDLE_TIMEOUT.as_secs()
                )
            })?
            .context("download the backup")?;
        let Some(chunk) = chunk else { break };
        file.write_all(&chunk)
            .await
            .with_context(|| format!("write {}", partial.display()))?;
        written += chunk.len() as u64;
        progress(written);
    }
    file.sync_all()
        .await
        .with_context(|| format!("write {}", partial.display()))?;
    if let Some(expected) = expected.filter(|expected| *expected != written) {
        bail!("download the backup: got {written} of {expected} bytes");
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_references() {
        let check = |raw: &str, app: Option<&str>, name: Option<&str>| {
            let parsed = parse_backup(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(
                parsed,
                BackupRef {
                    app: app.map(str::to_owned),
                    name: name.map(str::to_owned)
                },
                "{raw}"
            );
        };
        check("b001", None, Some("b001"));
        check("other-app::b012", Some("other-app"), Some("b012"));
        check("other-app::", Some("other-app"), None);
        for bad in ["", "::b001", "b001/../x", "a::b::c", "b 1"] {
            assert!(parse_backup(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_lone_restore_argument_is_a_backup_or_a_database() {
        for backup in ["b001", "a12", "other::b003", "other::"] {
            assert!(looks_like_backup(backup), "{backup}");
        }
        for database in [
            "DATABASE",
            "DATABASE_URL",
            "postgresql-curved-12345",
            "b",
            "b1x",
        ] {
            assert!(!looks_like_backup(database), "{database}");
        }
    }

    #[test]
    fn backup_times_read_as_heroku_shows_them() {
        assert_eq!(
            backup_time("2026-01-02T03:04:05Z"),
            "2026-01-02 03:04:05 +0000"
        );
        assert_eq!(
            backup_time("2026-01-02T05:04:05+02:00"),
            "2026-01-02 03:04:05 +0000"
        );
        assert_eq!(backup_time("soon"), "soon");
    }

    #[test]
    fn partial_files_sit_beside_the_output() {
        assert_eq!(
            partial_path(Path::new("dir/latest.dump")),
            Path::new("dir/latest.dump.partial")
        );
    }
}
