//! API keys and who is calling: keys are random, stored only as SHA-256 hashes, and sent as
//! `Authorization: Bearer KEY` or as the password of HTTP Basic auth (any user name, as git and
//! Heroku's credential helper send it).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use wharf_model::Account;

use crate::error::ApiError;
use crate::ApiState;

const KEY_BYTES: usize = 32;

/// A new API key: 64 hex characters of randomness from the OS.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the store keeps of a key. Keys are high-entropy, so a fast hash is enough: there is
/// nothing to brute-force.
pub fn hash_api_key(key: &str) -> String {
    hex(&Sha256::digest(key.trim().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Credentials as sent: the key, and the user name when Basic auth was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: Option<String>,
    pub key: String,
}

/// Reads `Authorization: Bearer KEY` or `Authorization: Basic base64(user:KEY)`.
pub fn credentials(header: &str) -> Option<Credentials> {
    let (scheme, value) = header.trim().split_once(' ')?;
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!value.is_empty()).then(|| Credentials {
            user: None,
            key: value.to_owned(),
        });
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, key) = decoded.split_once(':')?;
        return (!key.is_empty()).then(|| Credentials {
            user: (!user.is_empty()).then(|| user.to_owned()),
            key: key.to_owned(),
        });
    }
    None
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: Account,
    pub key_id: Uuid,
    pub credentials: Credentials,
}

/// Refuses any request without a valid key; hands the [`Caller`] to the handlers.
pub async fn require_key(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let credentials = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credentials)
        .ok_or_else(ApiError::unauthorized)?;
    let found = state
        .store
        .authenticate(&hash_api_key(&credentials.key))
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    request.extensions_mut().insert(Caller {
        account: found.account,
        key_id: found.key_id,
        credentials,
    });
    Ok(next.run(request).await)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_and_key: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_and_key)
        )
    }

    #[test]
    fn reads_bearer_and_basic() {
        assert_eq!(
            credentials("Bearer abc"),
            Some(Credentials {
                user: None,
                key: "abc".into()
            })
        );
        assert_eq!(
            credentials(&basic("heroku:abc")),
            Some(Credentials {
                user: Some("heroku".into()),
                key: "abc".into()
            })
        );
        assert_eq!(
            credentials(&basic(":abc")),
            Some(Credentials {
                user: None,
                key: "abc".into()
            })
        );
        assert_eq!(credentials(&basic("user:")), None);
        assert_eq!(credentials("Bearer "), None);
        assert_eq!(credentials("Token abc"), None);
        assert_eq!(credentials("Basic !!!"), None);
    }

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let (a, b) = (generate_api_key(), generate_api_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash_api_key(&a), hash_api_key(&format!(" {a}\n")));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
        assert_ne!(hash_api_key(&a), a);
    }
}
