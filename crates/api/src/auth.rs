//! API keys and who is calling: keys are random, stored only as SHA-256 hashes, and sent as
//! `Authorization: Bearer KEY` or as the password of HTTP Basic auth (any user name, as git and
//! Heroku's credential helper send it). The dashboard's browsers send a session cookie instead
//! (`routes/session.rs` opens them): with it every change must also carry the session's CSRF
//! token in `X-CSRF-Token`.
//!
//! Why a token and not only `SameSite`: apps are served at `<app>.<base-domain>`, which is the
//! same *site* as a dashboard at `wharf.<base-domain>`, so a tenant's page could make a
//! browser send the cookie. It cannot read the token (no CORS), and a custom header cannot be
//! sent cross-origin without a preflight that the API never grants.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use wharf_model::Account;
use wharf_store::Session;

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
    /// The key as sent; `None` for a dashboard session, which never holds a key.
    pub credentials: Option<Credentials>,
}

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "wharf_session";
/// Its name over TLS: the `__Host-` prefix makes browsers refuse it unless it is `Secure`,
/// for this host only and `Path=/`, so no app's page under the base domain can plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-wharf_session";
/// The header that carries a session's CSRF token on every change.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session token a browser sent in its cookie, if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == SECURE_SESSION_COOKIE || *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether a browser says the request comes from another site (`Sec-Fetch-Site`). A cookie
/// is never honoured for such a request.
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"cross-site"))
}

/// Whether `sent` is the expected token, in time that does not depend on where they differ.
pub fn tokens_match(sent: &str, expected: &str) -> bool {
    let (sent, expected) = (sent.as_bytes(), expected.as_bytes());
    sent.len() == expected.len()
        && sent
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Refuses any request without a valid key or session; hands the [`Caller`] to the handlers.
/// A request with both is judged by its key alone.
pub async fn require_key(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = match request.headers().get(AUTHORIZATION) {
        Some(header) => {
            let credentials = header
                .to_str()
                .ok()
                .and_then(credentials)
                .ok_or_else(ApiError::unauthorized)?;
            let found = state
                .store
                .authenticate(&hash_api_key(&credentials.key))
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            Caller {
                account: found.account,
                key_id: found.key_id,
                credentials: Some(credentials),
            }
        }
        None => session_caller(&state, request.method(), request.headers()).await?,
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// The caller of a dashboard session, with its CSRF token checked on anything but a read.
async fn session_caller(
    state: &ApiState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let token = cookie_token(headers).ok_or_else(ApiError::unauthorized)?;
    let session = state
        .store
        .session(&hash_api_key(token))
        .await?
        .ok_or_else(ApiError::session_ended)?;
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    if !reads.contains(method) {
        require_csrf(headers, &session)?;
    }
    Ok(Caller {
        account: session.caller.account,
        key_id: session.caller.key_id,
        credentials: None,
    })
}

/// The session token of the request's cookie, unless a browser marks the request cross-site.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    session_token(headers).filter(|_| !cross_site(headers))
}

/// Refuses a change made with `session` that does not carry its CSRF token.
pub(crate) fn require_csrf(headers: &HeaderMap, session: &Session) -> Result<(), ApiError> {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if sent.is_some_and(|sent| tokens_match(sent, &session.csrf_token)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "This change needs the session's CSRF token in `X-CSRF-Token`: reload the \
             dashboard and try again",
        ))
    }
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
    fn reads_the_session_cookie_among_others() {
        let headers = |cookies: &[&str]| {
            let mut map = HeaderMap::new();
            for cookie in cookies {
                map.append(COOKIE, cookie.parse().unwrap());
            }
            map
        };
        let check = |cookies: &[&str], expected: Option<&str>| {
            assert_eq!(session_token(&headers(cookies)), expected, "{cookies:?}");
        };
        check(&["wharf_session=abc"], Some("abc"));
        check(&["theme=dark; __Host-wharf_session=xyz; a=b"], Some("xyz"));
        check(&["theme=dark", "wharf_session=abc"], Some("abc"));
        check(&["wharf_session="], None);
        check(&["wharf_sessionx=abc", "xwharf_session=abc"], None);
        check(&[], None);
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let mut headers = HeaderMap::new();
        assert!(!cross_site(&headers));
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(!cross_site(&headers));
        headers.insert("sec-fetch-site", "Cross-Site".parse().unwrap());
        assert!(cross_site(&headers));
    }

    #[test]
    fn tokens_match_only_whole() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abd", "abc"));
        assert!(!tokens_match("ab", "abc"));
        assert!(!tokens_match("", "abc"));
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
