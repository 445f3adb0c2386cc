//! The dashboard's log-in: `POST /session` trades an e-mail address and API key for a session
//! cookie (HttpOnly, `SameSite=Strict`, `Secure` and `__Host-` over TLS) and a CSRF token;
//! `GET /session` says who is logged in; `DELETE /session` logs out. These routes read the
//! cookie themselves: they are outside the key check.

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use time::OffsetDateTime;
use wharf_api_types as api;
use wharf_model::Email;
use wharf_store::Session;

use crate::auth::{
    cookie_token, cross_site, generate_api_key, hash_api_key, require_csrf, SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
};
use crate::error::{ApiError, ApiResult};
use crate::json::decode;
use crate::views::timestamp;
use crate::ApiState;

/// Marks requests that arrived over TLS (the API's TLS listener adds it).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// The `Set-Cookie` value for a session token (`None` clears the cookie).
pub(crate) fn session_cookie(token: Option<&str>, over_tls: bool, max_age: i64) -> String {
    let (name, secure) = if over_tls {
        (SECURE_SESSION_COOKIE, "; Secure")
    } else {
        (SESSION_COOKIE, "")
    };
    match token {
        Some(token) => {
            format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
        }
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

fn info(session: &Session) -> api::SessionInfo {
    api::SessionInfo {
        email: session.caller.account.email.to_string(),
        admin: session.caller.account.admin,
        csrf_token: session.csrf_token.clone(),
        expires_at: timestamp(session.expires_at),
    }
}

/// `POST /session`: a JSON body only (`Content-Type: application/json`), so that no form on
/// another site can log a browser in to an account of its choosing.
pub async fn create(
    State(state): State<ApiState>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json || cross_site(&headers) {
        return Err(ApiError::bad_request(
            "Log in with a JSON body ({\"email\": ..., \"api_key\": ...}) sent as \
             `Content-Type: application/json` from the dashboard itself",
        ));
    }
    let login: api::SessionCreate = decode(&body)?;
    let wrong = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "That e-mail address and API key do not belong to one account: \
             `wharf auth:token` prints your key",
        )
    };
    let email = Email::parse(login.email.trim()).map_err(|_| wrong())?;
    let found = state
        .store
        .authenticate(&hash_api_key(&login.api_key))
        .await?
        .filter(|found| found.account.email == email)
        .ok_or_else(wrong)?;
    let token = generate_api_key();
    let csrf_token = generate_api_key();
    let lifetime = state.config.session_lifetime;
    let expires_at = OffsetDateTime::now_utc() + lifetime;
    state
        .store
        .open_session(found.key_id, &hash_api_key(&token), &csrf_token, expires_at)
        .await?;
    tracing::info!(user = %found.account.email, "dashboard log-in");
    let session = Session {
        caller: found,
        csrf_token,
        expires_at,
    };
    let cookie = session_cookie(
        Some(&token),
        tls.is_some(),
        lifetime.as_secs().try_into().unwrap_or(i64::MAX),
    );
    Ok(with_cookie(Json(info(&session)).into_response(), &cookie))
}

/// `GET /session`: the session's account and CSRF token, or 401.
pub async fn show(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<api::SessionInfo>> {
    let session = live_session(&state, &headers)
        .await?
        .ok_or_else(ApiError::session_ended)?;
    Ok(Json(info(&session)))
}

/// `DELETE /session`: closes the session (with its CSRF token) and clears the cookie. Without
/// a live session there is nothing to close, and the cookie is cleared all the same.
pub async fn destroy(
    State(state): State<ApiState>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(token_hash) = cookie_token(&headers).map(hash_api_key) {
        if let Some(session) = state.store.session(&token_hash).await? {
            require_csrf(&headers, &session)?;
            state.store.close_session(&token_hash).await?;
        }
    }
    let cookie = session_cookie(None, tls.is_some(), 0);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

async fn live_session(state: &ApiState, headers: &HeaderMap) -> ApiResult<Option<Session>> {
    match cookie_token(headers) {
        Some(token) => Ok(state.store.session(&hash_api_key(token)).await?),
        None => Ok(None),
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    let value = HeaderValue::from_str(cookie).expect("cookies are built from hex and ASCII");
    response.headers_mut().insert(SET_COOKIE, value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_say_how_they_may_be_sent() {
        assert_eq!(
            session_cookie(Some("abc"), false, 60),
            "wharf_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert_eq!(
            session_cookie(Some("abc"), true, 60),
            "__Host-wharf_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert_eq!(
            session_cookie(None, true, 60),
            "__Host-wharf_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        );
    }
}
