//! Apps and their collaborators.

use serde::{Deserialize, Serialize};

use crate::{AccountRef, NamedRef};

/// `GET /apps/{app}` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    pub owner: AccountRef,
    pub region: NamedRef,
    pub stack: NamedRef,
    pub build_stack: NamedRef,
    pub generation: NamedRef,
    pub web_url: Option<String>,
    pub git_url: Option<String>,
    pub repo_size: Option<i64>,
    pub slug_size: Option<i64>,
    pub maintenance: bool,
    pub acm: bool,
    pub archived_at: Option<String>,
    pub buildpack_provided_description: Option<String>,
    pub internal_routing: Option<bool>,
    pub organization: Option<NamedRef>,
    pub team: Option<NamedRef>,
    pub space: Option<NamedRef>,
    pub created_at: String,
    pub updated_at: String,
    pub released_at: Option<String>,
}

/// `POST /apps`: without a name, the server generates one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCreate {
    #[serde(default)]
    pub name: Option<String>,
    /// Accepted for compatibility; Wharf has one region per server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The stack the app builds on (`debian-12` when left out), by name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// `PATCH /apps/{app}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
    /// The stack the app's next build runs on, by name or id (`stack:set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_stack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollaboratorUser {
    pub id: String,
    pub email: String,
    pub federated: bool,
}

/// `GET /apps/{app}/collaborators`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaborator {
    pub id: String,
    pub app: NamedRef,
    pub user: CollaboratorUser,
    pub role: Option<String>,
    pub permissions: Vec<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /apps/{app}/collaborators`: `user` is an e-mail address or account id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollaboratorCreate {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent: Option<bool>,
}

/// `GET /app-summaries` (Wharf's own, for the dashboard's apps page in one request): each app
/// the caller may see, with what the page shows beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    pub id: String,
    pub name: String,
    pub web_url: String,
    pub owner: String,
    pub maintenance: bool,
    pub formation: Vec<FormationSummary>,
    /// For an app with Eco web dynos: whether it sleeps now. `null` for any other app.
    pub sleeping: Option<bool>,
    pub last_release: Option<ReleaseSummary>,
}

/// One process type of an [`AppSummary`]: `web 2 × Basic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationSummary {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: u32,
    pub size: String,
}

/// The live release of an [`AppSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSummary {
    pub version: i64,
    pub created_at: String,
    pub description: String,
}
