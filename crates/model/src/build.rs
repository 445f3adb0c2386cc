//! Builds: one run of the slug compiler over an app's source, with its output and outcome.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Account, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    Pending,
    Succeeded,
    Failed,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<BuildStatus, Invalid> {
        match raw {
            "pending" => Ok(BuildStatus::Pending),
            "succeeded" => Ok(BuildStatus::Succeeded),
            "failed" => Ok(BuildStatus::Failed),
            other => Err(Invalid::new(format!("unknown build status {other:?}"))),
        }
    }
}

impl fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub id: Uuid,
    pub app_id: Uuid,
    pub status: BuildStatus,
    /// Where the source came from (a source blob URL, or `git push`).
    pub source_url: Option<String>,
    /// The commit or version the source is.
    pub source_version: Option<String>,
    /// The buildpacks that ran, once known.
    pub buildpacks: Vec<String>,
    pub slug_id: Option<Uuid>,
    /// The stack its slug was built on, once it has one.
    pub stack: Option<String>,
    pub release_id: Option<Uuid>,
    pub user: Account,
    /// The secret in the build's output stream URL.
    pub output_token: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in [
            BuildStatus::Pending,
            BuildStatus::Succeeded,
            BuildStatus::Failed,
        ] {
            assert_eq!(BuildStatus::parse(status.as_str()), Ok(status));
        }
        assert!(BuildStatus::parse("done").is_err());
    }
}
