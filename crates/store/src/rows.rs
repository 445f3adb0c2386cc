//! Turning rows into model values: timestamps, ids, JSON columns and the joined account.

use anyhow::Context;
use sqlx::any::AnyRow;
use sqlx::Row;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;
use uuid::Uuid;
use wharf_model::{Account, Email};

/// Fixed width, so that text order is time order.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    // Keep what the column can hold, so that a value read back equals the one written.
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .expect("a whole number of microseconds is a valid nanosecond")
}

pub(crate) fn time_text(at: OffsetDateTime) -> String {
    at.format(TIMESTAMP).expect("UTC timestamps always format")
}

pub(crate) fn now_text() -> String {
    time_text(now())
}

pub(crate) fn parse_time(text: &str) -> anyhow::Result<OffsetDateTime> {
    time::PrimitiveDateTime::parse(text, TIMESTAMP)
        .map(|t| t.assume_utc())
        .with_context(|| format!("parse stored timestamp {text:?}"))
}

pub(crate) fn get_text(row: &AnyRow, column: &str) -> anyhow::Result<String> {
    row.try_get::<String, _>(column)
        .with_context(|| format!("read column {column}"))
}

pub(crate) fn get_opt_text(row: &AnyRow, column: &str) -> anyhow::Result<Option<String>> {
    row.try_get::<Option<String>, _>(column)
        .with_context(|| format!("read column {column}"))
}

pub(crate) fn get_i64(row: &AnyRow, column: &str) -> anyhow::Result<i64> {
    row.try_get::<i64, _>(column)
        .with_context(|| format!("read column {column}"))
}

pub(crate) fn get_opt_i64(row: &AnyRow, column: &str) -> anyhow::Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(column)
        .with_context(|| format!("read column {column}"))
}

pub(crate) fn get_uuid(row: &AnyRow, column: &str) -> anyhow::Result<Uuid> {
    let text = get_text(row, column)?;
    Uuid::parse_str(&text).with_context(|| format!("parse id {text:?} in column {column}"))
}

pub(crate) fn get_time(row: &AnyRow, column: &str) -> anyhow::Result<OffsetDateTime> {
    parse_time(&get_text(row, column)?)
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> anyhow::Result<T> {
    let text = get_text(row, column)?;
    serde_json::from_str(&text).with_context(|| format!("parse JSON in column {column}"))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("model values always serialize")
}

/// The columns [`account_from`] reads, for an `accounts` table aliased as `prefix`.
pub(crate) fn account_columns(prefix: &str) -> String {
    format!(
        "{prefix}.id AS {prefix}_id, {prefix}.email AS {prefix}_email, \
         {prefix}.admin AS {prefix}_admin, {prefix}.created_at AS {prefix}_created_at"
    )
}

pub(crate) fn account_from(row: &AnyRow, prefix: &str) -> anyhow::Result<Account> {
    let email = get_text(row, &format!("{prefix}_email"))?;
    Ok(Account {
        id: get_uuid(row, &format!("{prefix}_id"))?,
        email: Email::parse(&email).context("stored e-mail address")?,
        admin: get_i64(row, &format!("{prefix}_admin"))? != 0,
        created_at: get_time(row, &format!("{prefix}_created_at"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_sort_as_text() {
        let earlier = now();
        let later = earlier + time::Duration::microseconds(1);
        assert_eq!(parse_time(&time_text(earlier)).unwrap(), earlier);
        assert!(time_text(earlier) < time_text(later));
        assert_eq!(
            time_text(earlier).len(),
            "2026-11-22T10:00:00.000000Z".len()
        );
    }
}
