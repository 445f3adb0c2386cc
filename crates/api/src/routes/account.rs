//! The caller's account, creating users, and Heroku's `login -i` handshake.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use wharf_api_types as api;
use wharf_model::Email;

use crate::auth::{generate_api_key, hash_api_key, Caller};
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::views::{self, timestamp};
use crate::ApiState;

pub async fn show(caller: Caller) -> Json<api::Account> {
    Json(views::account(&caller.account))
}

/// `POST /users`: an admin creates an account; the answer carries its first API key, which is
/// shown this once and stored only as a hash.
pub async fn create_user(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<api::UserCreate>,
) -> ApiResult<(StatusCode, Json<api::UserCreated>)> {
    require_admin(&caller)?;
    let email = Email::parse(&body.email)?;
    let key = generate_api_key();
    let description = format!("created by {}", caller.account.email);
    let account = state
        .store
        .create_account(&email, false, &hash_api_key(&key), &description)
        .await?;
    tracing::info!(user = %account.email, by = %caller.account.email, "created user");
    Ok((
        StatusCode::CREATED,
        Json(api::UserCreated {
            account: views::account(&account),
            api_key: key,
        }),
    ))
}

fn require_admin(caller: &Caller) -> ApiResult<()> {
    if caller.account.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only admins can see and create users."))
    }
}

/// `GET /users` (Wharf's own; admins only): every account, by e-mail address.
pub async fn list_users(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<api::Account>>> {
    require_admin(&caller)?;
    let accounts = state.store.all_accounts().await?;
    Ok(Json(accounts.iter().map(views::account).collect()))
}

/// `POST /oauth/authorizations`: what `heroku login -i` sends, with the e-mail address and the
/// API key as Basic auth. Wharf has no passwords: the key is the credential, and the
/// "authorization" handed back is that same key.
pub async fn authorize(
    caller: Caller,
    Body(body): Body<api::OAuthAuthorizationCreate>,
) -> ApiResult<(StatusCode, Json<api::OAuthAuthorization>)> {
    let Some(credentials) = &caller.credentials else {
        return Err(ApiError::forbidden(
            "A dashboard session cannot hand out API keys: run `wharf auth:token`",
        ));
    };
    if let Some(user) = &credentials.user {
        let matches = Email::parse(user).is_ok_and(|email| email == caller.account.email);
        if !matches {
            return Err(ApiError::unauthorized());
        }
    }
    let now = timestamp(time::OffsetDateTime::now_utc());
    Ok((
        StatusCode::CREATED,
        Json(api::OAuthAuthorization {
            id: caller.key_id.to_string(),
            description: body.description.unwrap_or_else(|| "API key".to_owned()),
            scope: body.scope.unwrap_or_else(|| vec!["global".to_owned()]),
            access_token: api::AccessToken {
                id: caller.key_id.to_string(),
                token: credentials.key.clone(),
                expires_in: None,
            },
            user: api::AccountRef {
                id: caller.account.id.to_string(),
                email: caller.account.email.to_string(),
            },
            created_at: now.clone(),
            updated_at: now,
        }),
    ))
}
