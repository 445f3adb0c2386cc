//! Stacks: the root filesystems apps build and run on.

use serde::{Deserialize, Serialize};

/// `GET /stacks/{stack_id_or_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub id: String,
    pub name: String,
    /// `public`, `beta` or `deprecated`.
    pub state: String,
    /// Whether new apps get this stack.
    pub default: bool,
    pub created_at: String,
    pub updated_at: String,
}
