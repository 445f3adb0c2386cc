//! Dynos and log sessions.

use serde::{Deserialize, Serialize};

use crate::NamedRef;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynoRelease {
    pub id: String,
    pub version: i64,
}

/// `GET /apps/{app}/dynos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dyno {
    pub id: String,
    pub app: NamedRef,
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: String,
    /// `starting`, `up`, `crashed`, `down` or `idle`.
    pub state: String,
    pub command: String,
    pub size: String,
    pub attach_url: Option<String>,
    pub release: DynoRelease,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /apps/{app}/log-sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSessionCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSession {
    pub id: String,
    /// Where to read the lines: `text/event-stream`, no credentials needed (the URL holds a
    /// secret).
    pub logplex_url: String,
    pub created_at: String,
    pub updated_at: String,
}
