//! The release ledger: each release is a slug plus config vars, numbered v1, v2, ... per app,
//! appended and never edited.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Account, ConfigVars, Invalid};

/// Process type name to command, as a slug's Procfile and buildpack define them.
pub type ProcessTypes = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseStatus {
    /// Waiting for its release phase to finish.
    Pending,
    Succeeded,
    /// Its release phase failed; it never went live.
    Failed,
}

impl ReleaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Pending => "pending",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<ReleaseStatus, Invalid> {
        match raw {
            "pending" => Ok(ReleaseStatus::Pending),
            "succeeded" => Ok(ReleaseStatus::Succeeded),
            "failed" => Ok(ReleaseStatus::Failed),
            other => Err(Invalid::new(format!("unknown release status {other:?}"))),
        }
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub id: Uuid,
    pub app_id: Uuid,
    pub version: i64,
    pub description: String,
    pub slug_id: Option<Uuid>,
    pub config: ConfigVars,
    pub addon_plan_names: Vec<String>,
    pub status: ReleaseStatus,
    pub user: Account,
    pub created_at: OffsetDateTime,
    /// Whether this is the app's newest succeeded release (computed, not stored).
    pub current: bool,
}

impl Release {
    /// Heroku's rule: any succeeded release, the current one included, can be rolled back to.
    pub fn eligible_for_rollback(&self) -> bool {
        self.status == ReleaseStatus::Succeeded
    }

    /// The description of a rollback to this release.
    pub fn rollback_description(&self) -> String {
        format!("Rollback to v{}", self.version)
    }
}

/// What a caller supplies to append a release; the store assigns the id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub description: String,
    pub slug_id: Option<Uuid>,
    pub config: ConfigVars,
    pub addon_plan_names: Vec<String>,
    pub status: ReleaseStatus,
}

/// A compiled app: its archive on disk plus the process types it defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug {
    pub id: Uuid,
    pub app_id: Uuid,
    pub process_types: ProcessTypes,
    pub commit: Option<String>,
    pub commit_description: Option<String>,
    pub buildpack_provided_description: Option<String>,
    pub stack: String,
    /// Bytes of the archive, once uploaded.
    pub size: Option<i64>,
    /// `SHA256:<hex>` of the archive, once uploaded.
    pub checksum: Option<String>,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in [
            ReleaseStatus::Pending,
            ReleaseStatus::Succeeded,
            ReleaseStatus::Failed,
        ] {
            assert_eq!(ReleaseStatus::parse(status.as_str()), Ok(status));
        }
        assert!(ReleaseStatus::parse("done").is_err());
    }
}
