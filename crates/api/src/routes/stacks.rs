//! Stacks: the ones this server offers, for `heroku stack` and `wharf stack`.

use axum::extract::Path;
use axum::Json;
use wharf_api_types as api;
use wharf_model::StackName;

use crate::error::{ApiError, ApiResult};
use crate::views;

pub async fn list() -> Json<Vec<api::Stack>> {
    Json(StackName::ALL.into_iter().map(views::stack).collect())
}

pub async fn show(Path(identity): Path<String>) -> ApiResult<Json<api::Stack>> {
    StackName::parse(&identity)
        .map(|stack| Json(views::stack(stack)))
        .map_err(|_| ApiError::not_found("Couldn't find that stack."))
}
