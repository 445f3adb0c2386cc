//! Registered buildpacks (a Wharf extension): directories on the server that an admin named,
//! so that apps may use them by that name in their buildpack lists.

use serde::{Deserialize, Serialize};

use crate::AccountRef;

/// `POST /buildpack-registrations` (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackRegistrationCreate {
    /// Lowercase letters, digits, `-`, `_` and `.`; not a built-in buildpack's name.
    pub name: String,
    /// An absolute path on the server: a directory with `bin/detect` and `bin/compile`.
    pub dir: String,
}

/// `GET /buildpack-registrations`: any user sees the names; only admins see `dir` and
/// `created_by` (`null` for others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackRegistration {
    pub name: String,
    pub dir: Option<String>,
    pub created_at: String,
    pub created_by: Option<AccountRef>,
}
