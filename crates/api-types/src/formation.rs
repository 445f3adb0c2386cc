//! The formation and dyno sizes.

use serde::{Deserialize, Serialize};

use crate::NamedRef;

/// `GET /apps/{app}/formation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formation {
    pub id: String,
    pub app: NamedRef,
    #[serde(rename = "type")]
    pub process_type: String,
    pub command: String,
    pub quantity: u32,
    pub size: String,
    pub dyno_size: NamedRef,
    pub created_at: String,
    pub updated_at: String,
}

/// A quantity as clients send it: a number, or a string that may be relative (`"+1"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QuantityValue {
    Number(i64),
    Text(String),
}

/// A dyno size named by `name` or `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynoSizeRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One element of `PATCH /apps/{app}/formation`, or the whole body of
/// `PATCH /apps/{app}/formation/{type}` (where `type` comes from the path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationUpdate {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<QuantityValue>,
    /// Deprecated in Heroku's schema in favour of `dyno_size`, still sent by its CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno_size: Option<DynoSizeRef>,
}

/// `PATCH /apps/{app}/formation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationBatchUpdate {
    pub updates: Vec<FormationUpdate>,
}

/// `GET /dyno-sizes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynoSize {
    pub id: String,
    pub name: String,
    /// Memory in GB, as Heroku reports it.
    pub memory: f64,
    pub compute: u32,
    pub architecture: String,
    pub cost: Option<serde_json::Value>,
    pub dedicated: bool,
    pub precise_dyno_units: f64,
    pub private_space_only: bool,
    pub generation: NamedRef,
}
