//! Small SQL helpers for the PostgreSQL provider: statements named by their first words in
//! errors (they may carry a password), catalog look-ups, session termination, quoting.

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

/// How long an admin statement waits for a lock an app holds before it fails (and the call
/// that made it is retried): an app must not be able to stall Wharf's work on its database.
const ADMIN_LOCK_TIMEOUT: &str = "30s";

/// The session settings of every admin connection, sent at connection start so that they win
/// over what an app set on its own database (`ALTER DATABASE ... SET`, which its owner role
/// may do): a `role` there would make Wharf's session act as the app's role, a
/// `search_path` would let the app's functions shadow the catalog's, a `statement_timeout`
/// or `default_transaction_read_only` would make Wharf's checks fail.
pub(super) fn admin_options(options: PgConnectOptions) -> PgConnectOptions {
    options.disable_statement_logging().options([
        ("role", "none"),
        ("search_path", "pg_catalog"),
        ("statement_timeout", "0"),
        ("lock_timeout", ADMIN_LOCK_TIMEOUT),
        ("idle_in_transaction_session_timeout", "0"),
        ("default_transaction_read_only", "off"),
    ])
}

pub(super) async fn connect(options: &PgConnectOptions) -> anyhow::Result<PgConnection> {
    PgConnection::connect_with(options)
        .await
        .context("connect to the PostgreSQL add-on server")
}

pub(super) async fn execute(admin: &mut PgConnection, statement: &str) -> anyhow::Result<()> {
    // Statements may hold a password: the error names only the statement's first words.
    let what: String = statement
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    sqlx::Executor::execute(&mut *admin, statement)
        .await
        .with_context(|| format!("PostgreSQL refused {what}"))?;
    Ok(())
}

/// Runs `statement` and only logs a refusal: for grants an operator's server may not let a
/// non-superuser admin make, which Wharf can do without.
pub(super) async fn execute_if_allowed(admin: &mut PgConnection, statement: &str) {
    if let Err(error) = execute(admin, statement).await {
        tracing::debug!(error = format!("{error:#}"), "optional statement refused");
    }
}

pub(super) async fn role_exists(admin: &mut PgConnection, role: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_optional(&mut *admin)
        .await
        .context("look up role")?;
    Ok(row.is_some())
}

pub(super) async fn database_exists(
    admin: &mut PgConnection,
    database: &str,
) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_optional(&mut *admin)
        .await
        .context("look up database")?;
    Ok(row.is_some())
}

/// Ends every session whose `column` (`usename` or `datname`) is `value`.
pub(super) async fn terminate(
    admin: &mut PgConnection,
    column: Column,
    value: &str,
) -> anyhow::Result<()> {
    let column = match column {
        Column::User => "usename",
        Column::Database => "datname",
    };
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE {column} = $1 AND pid <> pg_backend_pid()"
    ))
    .bind(value)
    .fetch_all(&mut *admin)
    .await
    .context("terminate sessions")?;
    Ok(())
}

/// What [`terminate`] matches sessions by.
#[derive(Debug, Clone, Copy)]
pub(super) enum Column {
    User,
    Database,
}

/// A SQL string literal (passwords are alphanumeric, but quote properly anyway).
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A SQL identifier, quoted: for names an app chose (its schemas).
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// IPv6 addresses need brackets in URLs.
pub(super) fn url_host(host: &str) -> String {
    match host.contains(':') {
        true => format!("[{host}]"),
        false => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ident("we\"ird name"), "\"we\"\"ird name\"");
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(url_host("10.0.0.1"), "10.0.0.1");
    }
}
