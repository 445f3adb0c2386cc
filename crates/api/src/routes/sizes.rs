//! Dyno sizes: what each size gives a dyno.

use axum::extract::Path;
use axum::Json;
use wharf_api_types as api;
use wharf_model::DynoSize;

use crate::error::{ApiError, ApiResult};
use crate::views;

pub async fn list() -> Json<Vec<api::DynoSize>> {
    Json(DynoSize::ALL.into_iter().map(views::dyno_size).collect())
}

pub async fn show(Path(identity): Path<String>) -> ApiResult<Json<api::DynoSize>> {
    DynoSize::ALL
        .into_iter()
        .find(|size| views::size_id(*size) == identity)
        .map_or_else(|| DynoSize::parse(&identity), Ok)
        .map(|size| Json(views::dyno_size(size)))
        .map_err(|_| ApiError::not_found("Couldn't find that dyno size."))
}
