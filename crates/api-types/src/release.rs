//! Releases and slugs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AccountRef, NamedRef};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    pub id: String,
}

/// `GET /apps/{app}/releases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub app: NamedRef,
    pub version: i64,
    pub description: String,
    pub status: String,
    pub user: AccountRef,
    pub slug: Option<IdRef>,
    pub addon_plan_names: Vec<String>,
    pub artifacts: Vec<serde_json::Value>,
    pub current: bool,
    pub eligible_for_rollback: bool,
    pub output_stream_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /apps/{app}/releases`: `{"release": id}` rolls back to that release; `{"slug": id}`
/// releases a slug with the current config vars.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /apps/{app}/slugs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slug {
    pub id: String,
    pub process_types: BTreeMap<String, String>,
    pub commit: Option<String>,
    pub commit_description: Option<String>,
    pub buildpack_provided_description: Option<String>,
    pub stack: NamedRef,
    pub size: Option<i64>,
    pub checksum: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /apps/{app}/slugs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlugCreate {
    pub process_types: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_provided_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}
