//! Request and response bodies of Wharf's HTTP API, in the shapes of Heroku's Platform API v3
//! (see `shared/reference/heroku-platform-api-schema.json`). This is the only wire format: the
//! server serializes these types and the CLI deserializes them.
//!
//! Fields that Heroku's clients read are always present, `null` when there is no value, so
//! `Option` fields serialize as `null` rather than being skipped. Timestamps are RFC 3339 strings
//! in UTC (`2026-11-22T10:00:00Z`); ids are UUID strings.

mod account;
mod addon;
mod app;
mod build;
mod buildpack_registration;
mod domain;
mod dyno;
mod formation;
mod host;
mod log_drain;
mod metrics;
mod release;
mod stack;

pub use account::*;
pub use addon::*;
pub use app::*;
pub use build::*;
pub use buildpack_registration::*;
pub use domain::*;
pub use dyno::*;
pub use formation::*;
pub use host::*;
pub use log_drain::*;
pub use metrics::*;
pub use release::*;
pub use stack::*;

use serde::{Deserialize, Serialize};

/// The media type Heroku's clients send in `Accept`; any `version=3*` is treated the same.
pub const ACCEPT_V3: &str = "application/vnd.heroku+json; version=3";

/// Every error response: `{"id": "not_found", "message": "Couldn't find that app."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub id: String,
    pub message: String,
}

/// A reference to another resource by id and name (`app`, `stack`, `region`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

/// A reference to an account (`owner`, `user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRef {
    pub id: String,
    pub email: String,
}
