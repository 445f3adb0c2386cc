//! The formation: how many dynos of which size run each process type, and the rules for
//! changing it.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::{DynoSize, Invalid, ProcessTypes};

/// The most dynos one process type may be scaled to.
pub const MAX_QUANTITY: u32 = 100;
const PROCESS_TYPE_MAX: usize = 30;

/// A process type name from a Procfile: `[A-Za-z0-9_-]+`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ProcessType(String);

impl ProcessType {
    pub fn parse(name: &str) -> Result<ProcessType, Invalid> {
        let valid = !name.is_empty()
            && name.len() <= PROCESS_TYPE_MAX
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(ProcessType(name.to_owned()))
        } else {
            Err(Invalid::new(format!(
                "Process type {name:?} is invalid: use 1 to {PROCESS_TYPE_MAX} letters, digits, \
                 dashes and underscores"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProcessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One process type's entry in an app's formation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormationEntry {
    pub id: uuid::Uuid,
    pub process_type: ProcessType,
    pub quantity: u32,
    pub size: DynoSize,
    /// The command from the current release's process types.
    pub command: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// How many dynos to run: an absolute count, or a change to the current count (`+1`, `-2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Absolute(u32),
    Relative(i64),
}

impl Quantity {
    /// Parses `"3"`, `"+1"` or `"-1"` (Heroku's CLI sends quantities as strings).
    pub fn parse(raw: &str) -> Result<Quantity, Invalid> {
        let raw = raw.trim();
        let invalid = || {
            Invalid::new(format!(
                "Quantity {raw:?} is invalid: use a whole number such as 2, or +1 / -1 to change \
                 the current count"
            ))
        };
        if raw.starts_with('+') || raw.starts_with('-') {
            raw.parse::<i64>()
                .map(Quantity::Relative)
                .map_err(|_| invalid())
        } else {
            raw.parse::<u32>()
                .map(Quantity::Absolute)
                .map_err(|_| invalid())
        }
    }

    fn resolve(self, current: u32) -> i64 {
        match self {
            Quantity::Absolute(n) => i64::from(n),
            Quantity::Relative(delta) => i64::from(current).saturating_add(delta),
        }
    }
}

/// A requested change to one process type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormationUpdate {
    pub process_type: String,
    pub quantity: Option<Quantity>,
    pub size: Option<DynoSize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    #[error("{}", unknown_type_message(.requested, .existing))]
    UnknownType {
        requested: String,
        existing: Vec<String>,
    },
    #[error(
        "Cannot scale {process_type} to {quantity}: the most is {MAX_QUANTITY} dynos per process type"
    )]
    TooMany { process_type: String, quantity: i64 },
}

fn unknown_type_message(requested: &str, existing: &[String]) -> String {
    if existing.is_empty() {
        format!(
            "Couldn't find that process type ({requested}): this app has no process types yet; \
             deploy code with a Procfile first"
        )
    } else {
        format!(
            "Couldn't find that process type ({requested}): this app's process types are {}",
            existing.join(", ")
        )
    }
}

/// Applies `updates` to `current` for an app whose current release defines `defined`.
/// All or nothing: the first bad update refuses the batch. Returns the entries that changed,
/// with their new values; quantities below zero become zero.
pub fn apply_formation_updates(
    current: &[FormationEntry],
    defined: &ProcessTypes,
    updates: &[FormationUpdate],
    now: OffsetDateTime,
) -> Result<Vec<FormationEntry>, ScaleError> {
    let mut changed: Vec<FormationEntry> = Vec::new();
    for update in updates {
        let entry = changed
            .iter()
            .find(|e| e.process_type.as_str() == update.process_type)
            .or_else(|| {
                current
                    .iter()
                    .find(|e| e.process_type.as_str() == update.process_type)
            })
            .filter(|e| defined.contains_key(e.process_type.as_str()))
            .cloned()
            .ok_or_else(|| ScaleError::UnknownType {
                requested: update.process_type.clone(),
                existing: defined.keys().cloned().collect(),
            })?;
        let mut next = entry;
        if let Some(quantity) = update.quantity {
            let wanted = quantity.resolve(next.quantity).max(0);
            if wanted > i64::from(MAX_QUANTITY) {
                return Err(ScaleError::TooMany {
                    process_type: update.process_type.clone(),
                    quantity: wanted,
                });
            }
            next.quantity = u32::try_from(wanted).expect("bounded by MAX_QUANTITY above");
        }
        if let Some(size) = update.size {
            next.size = size;
        }
        next.updated_at = now;
        changed.retain(|e| e.process_type != next.process_type);
        changed.push(next);
    }
    Ok(changed)
}

/// The quantity a process type starts with when a release first defines it: one `web` dyno,
/// none of anything else (as on Heroku).
pub fn initial_quantity(process_type: &str) -> u32 {
    u32::from(process_type == "web")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn entry(process_type: &str, quantity: u32) -> FormationEntry {
        FormationEntry {
            id: uuid::Uuid::nil(),
            process_type: ProcessType::parse(process_type).expect("valid"),
            quantity,
            size: DynoSize::DEFAULT,
            command: format!("run-{process_type}"),
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn defined(types: &[&str]) -> ProcessTypes {
        types
            .iter()
            .map(|t| (t.to_string(), format!("run-{t}")))
            .collect()
    }

    fn update(process_type: &str, quantity: &str) -> FormationUpdate {
        FormationUpdate {
            process_type: process_type.into(),
            quantity: Some(Quantity::parse(quantity).expect("valid")),
            size: None,
        }
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(Quantity::parse("3"), Ok(Quantity::Absolute(3)));
        assert_eq!(Quantity::parse("+1"), Ok(Quantity::Relative(1)));
        assert_eq!(Quantity::parse("-2"), Ok(Quantity::Relative(-2)));
        assert!(Quantity::parse("three").is_err());
        assert!(Quantity::parse("1.5").is_err());
        assert!(Quantity::parse("").is_err());
    }

    #[test]
    fn absolute_relative_and_floor_at_zero() {
        let current = [entry("web", 1), entry("worker", 2)];
        let types = defined(&["web", "worker"]);
        let changed = apply_formation_updates(
            &current,
            &types,
            &[update("web", "+2"), update("worker", "-5")],
            NOW,
        )
        .expect("valid");
        let quantities: Vec<_> = changed
            .iter()
            .map(|e| (e.process_type.as_str(), e.quantity))
            .collect();
        assert_eq!(quantities, [("web", 3), ("worker", 0)]);
    }

    #[test]
    fn repeated_type_in_one_batch_builds_on_itself() {
        let changed = apply_formation_updates(
            &[entry("web", 1)],
            &defined(&["web"]),
            &[update("web", "+1"), update("web", "+1")],
            NOW,
        )
        .expect("valid");
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].quantity, 3);
    }

    #[test]
    fn unknown_type_names_the_types_that_exist() {
        let err = apply_formation_updates(
            &[entry("web", 1), entry("worker", 0)],
            &defined(&["web", "worker"]),
            &[update("web", "2"), update("clock", "1")],
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Couldn't find that process type (clock): this app's process types are web, worker"
        );
    }

    #[test]
    fn types_no_longer_defined_cannot_be_scaled() {
        let err = apply_formation_updates(
            &[entry("web", 1), entry("old", 0)],
            &defined(&["web"]),
            &[update("old", "1")],
            NOW,
        )
        .unwrap_err();
        assert!(matches!(err, ScaleError::UnknownType { .. }));
    }

    #[test]
    fn over_the_limit_is_refused() {
        let err = apply_formation_updates(
            &[entry("web", 1)],
            &defined(&["web"]),
            &[update("web", "101")],
            NOW,
        )
        .unwrap_err();
        assert!(matches!(err, ScaleError::TooMany { quantity: 101, .. }));
    }

    #[test]
    fn process_type_rules() {
        for good in ["web", "worker_2", "clock-1", "A"] {
            assert!(ProcessType::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "web worker", "web.1", "wéb", &"w".repeat(31)] {
            assert!(ProcessType::parse(bad).is_err(), "{bad}");
        }
    }
}
