//! Request bodies: JSON read whole (within the body limit) and decoded with messages that say
//! what was wrong. An empty body reads as `{}`, so `curl -X POST` without data works.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The most bytes a JSON request body may have.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "request_too_large",
                            format!("Request body is over the limit of {JSON_BODY_LIMIT} bytes"),
                        )
                    } else {
                        ApiError::bad_request(format!(
                            "Could not read the request body: {rejection}"
                        ))
                    }
                })?;
        decode(&bytes).map(Body)
    }
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|error| {
        let what = if error.is_data() {
            "Request body has a field of the wrong type"
        } else {
            "Request body is not valid JSON"
        };
        ApiError::bad_request(format!("{what}: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_api_types::AppUpdate;

    #[test]
    fn messages_say_what_was_wrong() {
        let err = decode::<AppUpdate>(br#"{"maintenance": "yes"}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("wrong type"), "{}", err.message);
        assert!(
            err.message.contains("expected a boolean"),
            "{}",
            err.message
        );

        let err = decode::<AppUpdate>(b"{nope").unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        assert_eq!(decode::<AppUpdate>(b"").unwrap(), AppUpdate::default());
        assert_eq!(decode::<AppUpdate>(b" \n").unwrap(), AppUpdate::default());
    }
}
