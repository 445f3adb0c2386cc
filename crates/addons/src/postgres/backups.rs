//! Backups of add-on databases (`pg:backups`): `pg_dump` custom-format files in
//! `<backups>/<add-on id>/`, readable by root alone, named `b001`, `b002`, ... per add-on and
//! never reused, the plan's count of them kept.
//!
//! - A capture dumps as the admin (over the cluster's socket, or the operator's admin URL)
//!   into `bNNN.dump.partial`, renamed once complete: a failed or interrupted capture leaves
//!   no backup (and its partial file is removed by the next capture).
//! - A restore never runs the backup's contents as a superuser (an app's function in a
//!   `CHECK` could `SET ROLE NONE` in a superuser's session and escape `--role`): it creates
//!   a short-lived restore role, a member of the owner role and nothing more, `pg_restore`
//!   logs in as it (with a password, over TCP) into an empty replacement database, and the
//!   replacement is swapped in whole (see [`super::database`]). A failed restore leaves the
//!   database as it was.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use futures_util::future::BoxFuture;

use super::database::restore_role;
use super::sql::{database_exists, execute, literal, role_exists};
use super::{quiet_statements, random_password, Activity, PostgresProvider};
use crate::{Backup, Backups, Plan, Refused, Resource};

/// Holds the last number given to a backup of the resource, so that none is reused.
const LAST_NUMBER: &str = "last-number";
const SUFFIX: &str = ".dump";
const PARTIAL_SUFFIX: &str = ".dump.partial";
/// The most digits a backup number has (`b` and up to nine digits).
const MAX_DIGITS: usize = 9;
/// How long a capture waits for a lock an app holds on one of its tables.
const DUMP_LOCK_WAIT: &str = "120s";
/// How long the restore role may log in: a leftover of a crash logs in no more.
const RESTORE_ROLE_VALIDITY: &str = "1 hour";

/// The number in a backup name (`b001`, `b1`), or `None` when it is not one: checked before
/// any path is made of it.
fn number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('b')?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

fn name(number: u32) -> String {
    format!("b{number:03}")
}

fn file_name(number: u32) -> String {
    format!("{}{SUFFIX}", name(number))
}

/// Of `numbers` (oldest first), those beyond the newest `keep`.
fn beyond(numbers: &[u32], keep: Option<u32>) -> Vec<u32> {
    // The backup just taken is kept whatever the plan says.
    let Some(keep) = keep.map(|keep| keep.max(1) as usize) else {
        return Vec::new();
    };
    let excess = numbers.len().saturating_sub(keep);
    numbers[..excess].to_vec()
}

fn bad_name() -> anyhow::Error {
    Refused("backup names look like b001".into()).into()
}

fn no_such_backup(name: &str) -> anyhow::Error {
    Refused(format!(
        "no backup {name} of that add-on: pg:backups lists its backups"
    ))
    .into()
}

/// The backups in `dir`, oldest first, with their numbers; none when there is no `dir`.
fn listing(dir: &Path) -> anyhow::Result<Vec<(u32, Backup)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(error).with_context(|| format!("list backups in {}", dir.display()))
        }
    };
    let mut backups = Vec::new();
    for entry in entries {
        let entry = entry.context("list backups")?;
        let file_name = entry.file_name();
        let Some(number) = file_name
            .to_str()
            .and_then(|file_name| file_name.strip_suffix(SUFFIX))
            .and_then(number)
        else {
            continue;
        };
        let metadata = entry.metadata().context("read a backup's size")?;
        backups.push((
            number,
            Backup {
                name: name(number),
                created_at: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                size: metadata.len(),
            },
        ));
    }
    backups.sort_by_key(|(number, _)| *number);
    Ok(backups)
}

/// The next backup number in `dir` (after every backup there and every number given
/// before), remembered before it is used.
fn next_number(dir: &Path, backups: &[(u32, Backup)]) -> anyhow::Result<u32> {
    let remembered = match std::fs::read_to_string(dir.join(LAST_NUMBER)) {
        Ok(text) => text.trim().parse::<u32>().unwrap_or(0),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => return Err(error).context("read the last backup number"),
    };
    let newest = backups.last().map_or(0, |(number, _)| *number);
    let next = remembered.max(newest) + 1;
    let temporary = dir.join(format!("{LAST_NUMBER}.partial"));
    std::fs::write(&temporary, next.to_string()).context("remember the backup number")?;
    std::fs::rename(&temporary, dir.join(LAST_NUMBER)).context("remember the backup number")?;
    Ok(next)
}

/// Removes the partial files interrupted captures left in `dir`.
fn remove_partials(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).context("list backups")? {
        let entry = entry.context("list backups")?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.ends_with(PARTIAL_SUFFIX))
        {
            std::fs::remove_file(entry.path()).context("remove a partial backup")?;
        }
    }
    Ok(())
}

/// Writes `path` (a file or a directory) to disk.
fn sync(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("write {} to disk", path.display()))
}

impl PostgresProvider {
    fn backup_dir(&self, resource: Resource) -> anyhow::Result<PathBuf> {
        let backups = self
            .backups
            .as_ref()
            .context("this PostgreSQL server keeps no backups")?;
        Ok(backups.join(resource.id.simple().to_string()))
    }

    pub(super) async fn backup_list(&self, resource: Resource) -> anyhow::Result<Vec<Backup>> {
        let dir = self.backup_dir(resource)?;
        Ok(listing(&dir)?
            .into_iter()
            .map(|(_, backup)| backup)
            .collect())
    }

    /// The file of backup `name` of `resource`; [`Refused`] for a bad name or a backup that
    /// does not exist.
    fn backup_file(&self, resource: Resource, name: &str) -> anyhow::Result<PathBuf> {
        let number = number(name).ok_or_else(bad_name)?;
        let path = self.backup_dir(resource)?.join(file_name(number));
        match path.is_file() {
            true => Ok(path),
            false => Err(no_such_backup(name)),
        }
    }

    /// Removes the resource's backups (when it is destroyed).
    pub(super) async fn delete_backups(&self, resource: Resource) -> anyhow::Result<()> {
        if self.backups.is_none() {
            return Ok(());
        }
        let dir = self.backup_dir(resource)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error).with_context(|| format!("remove {}", dir.display())),
        }
    }

    async fn capture_backup(&self, resource: Resource, plan: &Plan) -> anyhow::Result<Backup> {
        let _busy = self
            .busy
            .claim(resource, Activity::Capturing, "capture a backup")?;
        let database = resource.base_name();
        let mut admin = self.admin(None).await?;
        let exists = database_exists(&mut admin, &database).await?;
        sqlx::Connection::close(admin).await.ok();
        if !exists {
            return Err(Refused("the add-on has no database to back up".into()).into());
        }
        let dir = self.backup_dir(resource)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("create {}", dir.display()))?;
        remove_partials(&dir)?;
        let backups = listing(&dir)?;
        let number = next_number(&dir, &backups)?;
        let path = dir.join(file_name(number));
        let partial = dir.join(format!("{}{PARTIAL_SUFFIX}", name(number)));
        // Created here, readable by root alone, before pg_dump writes into it.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("create {}", partial.display()))?;
        let args = [
            "--format=custom".to_owned(),
            format!("--file={}", partial.display()),
            format!("--lock-wait-timeout={DUMP_LOCK_WAIT}"),
            "--no-password".to_owned(),
        ];
        let mut env = self.admin_endpoint.env(
            self.admin.get_username(),
            self.admin_password.as_deref(),
            &database,
        );
        // Wharf's session, not a `role` the app set on its database.
        env.push(("PGOPTIONS", "-c role=none".to_owned()));
        if let Err(error) = self.tools.run("pg_dump", &args, &env).await {
            std::fs::remove_file(&partial).ok();
            return Err(error.context("capture a backup"));
        }
        sync(&partial)?;
        std::fs::rename(&partial, &path).context("keep the backup")?;
        sync(&dir)?;
        let backups = listing(&dir)?;
        let numbers: Vec<u32> = backups.iter().map(|(number, _)| *number).collect();
        for old in beyond(&numbers, plan.limits.backups) {
            std::fs::remove_file(dir.join(file_name(old))).context("remove an old backup")?;
        }
        backups
            .into_iter()
            .find(|(kept, _)| *kept == number)
            .map(|(_, backup)| backup)
            .context("the new backup disappeared")
    }

    async fn restore_backup(
        &self,
        into: Resource,
        from: Resource,
        name: &str,
    ) -> anyhow::Result<()> {
        let file = self.backup_file(from, name)?;
        let _busy = self
            .busy
            .claim(into, Activity::Restoring, "restore a backup")?;
        let owner = into.base_name();
        let role = restore_role(into);
        let password = random_password();
        let mut admin = self.locked_admin(into).await?;
        self.recover(&mut admin, into).await?;
        let replacement = self.create_replacement(&mut admin, into).await?;
        let valid_until: String = sqlx::query_scalar(&format!(
            "SELECT (now() + interval '{RESTORE_ROLE_VALIDITY}')::text"
        ))
        .fetch_one(&mut admin)
        .await
        .context("compute the restore role's expiry")?;
        quiet_statements(&mut admin).await;
        let verb = match role_exists(&mut admin, &role).await? {
            true => "ALTER",
            false => "CREATE",
        };
        execute(
            &mut admin,
            &format!(
                "{verb} ROLE {role} LOGIN NOSUPERUSER PASSWORD {} VALID UNTIL {}",
                literal(&password),
                literal(&valid_until)
            ),
        )
        .await
        .context("create the restore role")?;
        execute(&mut admin, &format!("GRANT {owner} TO {role}")).await?;
        execute(&mut admin, &format!("ALTER ROLE {role} SET role = {owner}")).await?;
        // Not locked while pg_restore runs: limit checks and rotations of the add-on go on.
        sqlx::Connection::close(admin).await.ok();

        let args = [
            "--no-owner".to_owned(),
            "--no-acl".to_owned(),
            format!("--role={owner}"),
            "--exit-on-error".to_owned(),
            "--no-tablespaces".to_owned(),
            "--no-subscriptions".to_owned(),
            "--no-publications".to_owned(),
            "--no-security-labels".to_owned(),
            "--no-password".to_owned(),
            format!("--dbname={}", replacement),
            file.display().to_string(),
        ];
        let env = self
            .restore_endpoint
            .env(&role, Some(&password), &replacement);
        let restored = self.tools.run("pg_restore", &args, &env).await;

        let mut admin = self.locked_admin(into).await?;
        let outcome = match restored {
            Ok(()) => self.swap(&mut admin, into).await,
            Err(error) => {
                execute(
                    &mut admin,
                    &format!("DROP DATABASE IF EXISTS {replacement} WITH (FORCE)"),
                )
                .await?;
                Err(error.context("restore the backup"))
            }
        };
        self.drop_login_role(&mut admin, into, &role)
            .await
            .context("drop the restore role")?;
        sqlx::Connection::close(admin).await.ok();
        outcome
    }
}

impl Backups for PostgresProvider {
    fn capture<'a>(
        &'a self,
        resource: Resource,
        plan: &'a Plan,
    ) -> BoxFuture<'a, anyhow::Result<Backup>> {
        Box::pin(self.capture_backup(resource, plan))
    }

    fn list(&self, resource: Resource) -> BoxFuture<'_, anyhow::Result<Vec<Backup>>> {
        Box::pin(self.backup_list(resource))
    }

    fn restore<'a>(
        &'a self,
        into: Resource,
        from: Resource,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.restore_backup(into, from, name))
    }

    fn file<'a>(
        &'a self,
        resource: Resource,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<PathBuf>> {
        Box::pin(async move { self.backup_file(resource, name) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_are_b_and_digits() {
        let check =
            |text: &str, expected: Option<u32>| assert_eq!(number(text), expected, "{text}");
        check("b001", Some(1));
        check("b1", Some(1));
        check("b123456789", Some(123_456_789));
        check("b1234567890", None);
        check("b", None);
        check("", None);
        check("b-1", None);
        check("b+1", None);
        check("B001", None);
        check("b001/../../etc", None);
        check("../b001", None);
        check("b０01", None);
        assert_eq!(name(7), "b007");
        assert_eq!(name(1234), "b1234");
    }

    #[test]
    fn retention_removes_the_oldest() {
        assert_eq!(beyond(&[1, 2, 3], Some(2)), [1]);
        assert_eq!(beyond(&[4, 7, 9, 12], Some(2)), [4, 7]);
        assert_eq!(beyond(&[1, 2], Some(2)), Vec::<u32>::new());
        assert_eq!(beyond(&[1, 2, 3], None), Vec::<u32>::new());
        assert_eq!(beyond(&[1, 2, 3], Some(0)), [1, 2]);
    }

    #[test]
    fn numbers_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_number(dir.path(), &[]).unwrap(), 1);
        // b001 was removed (or its capture failed): the next is still new.
        assert_eq!(next_number(dir.path(), &[]).unwrap(), 2);
        std::fs::write(dir.path().join("b007.dump"), "x").unwrap();
        std::fs::write(dir.path().join("b008.dump.partial"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let backups = listing(dir.path()).unwrap();
        assert_eq!(
            backups
                .iter()
                .map(|(number, _)| *number)
                .collect::<Vec<_>>(),
            [7]
        );
        assert_eq!(next_number(dir.path(), &backups).unwrap(), 8);
        remove_partials(dir.path()).unwrap();
        assert!(!dir.path().join("b008.dump.partial").exists());
        assert!(dir.path().join("b007.dump").exists());
    }
}
