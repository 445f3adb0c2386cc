//! API errors in Heroku's shape: a status and `{"id": "not_found", "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf_api_types::ErrorBody;
use wharf_model::{Invalid, ScaleError};
use wharf_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub id: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            id,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_params", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid credentials provided: send an API key as `Authorization: Bearer KEY`",
        )
    }

    /// A dashboard session that expired, was closed, or whose key is gone.
    pub fn session_ended() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Your session has ended: log in again",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn app_not_found() -> Self {
        Self::not_found("Couldn't find that app.")
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// A failure of the platform itself. The cause is logged here; the client gets no
    /// internals.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "Internal server error.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            id: self.id.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(message) => ApiError::not_found(message),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::Invalid(invalid) => invalid.into(),
            StoreError::Scale(scale) => scale.into(),
            StoreError::Other(error) => ApiError::internal(&error),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::invalid(invalid.0)
    }
}

impl From<ScaleError> for ApiError {
    fn from(error: ScaleError) -> Self {
        match error {
            ScaleError::UnknownType { .. } => ApiError::not_found(error.to_string()),
            ScaleError::TooMany { .. } => ApiError::invalid(error.to_string()),
        }
    }
}
