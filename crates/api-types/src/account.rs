//! Accounts, users, API keys and OAuth authorizations.

use serde::{Deserialize, Serialize};

use crate::AccountRef;

/// `GET /account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_login: Option<String>,
    pub allow_tracking: bool,
    pub beta: bool,
    pub verified: bool,
    pub federated: bool,
    pub two_factor_authentication: bool,
    pub sms_number: Option<String>,
    pub suspended_at: Option<String>,
    pub delinquent_at: Option<String>,
    pub default_organization: Option<serde_json::Value>,
    pub default_team: Option<serde_json::Value>,
    pub identity_provider: Option<serde_json::Value>,
    pub country_of_residence: Option<String>,
    /// Wharf's own field: admins may create users.
    pub admin: bool,
}

/// `POST /users` (Wharf's own endpoint; admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreate {
    pub email: String,
}

/// The answer to `POST /users`: the new account and its first API key, shown only once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    pub account: Account,
    pub api_key: String,
}

/// `POST /oauth/authorizations`: Heroku's `login -i` posts this with Basic auth
/// (e-mail and API key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthAuthorizationCreate {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub scope: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: String,
    pub token: String,
    pub expires_in: Option<i64>,
}

/// An OAuth authorization: in Wharf, an API key of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthAuthorization {
    pub id: String,
    pub description: String,
    pub scope: Vec<String>,
    pub access_token: AccessToken,
    pub user: AccountRef,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /session` (Wharf's own: the dashboard's log-in): an account's e-mail address and one
/// of its API keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreate {
    pub email: String,
    pub api_key: String,
}

/// A dashboard session: who is logged in, and the token every change must carry in
/// `X-CSRF-Token`. The session itself is an HttpOnly cookie, never in a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub email: String,
    pub admin: bool,
    pub csrf_token: String,
    pub expires_at: String,
}
