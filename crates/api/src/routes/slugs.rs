//! Slugs: record a compiled app's process types (the archive itself arrives with builds).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_model::{ProcessType, StackName};
use wharf_store::NewSlug;

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::views;
use crate::ApiState;

pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::SlugCreate>,
) -> ApiResult<(StatusCode, Json<api::Slug>)> {
    for (process_type, command) in &body.process_types {
        ProcessType::parse(process_type)?;
        if command.trim().is_empty() {
            return Err(ApiError::invalid(format!(
                "Process type {process_type} has an empty command"
            )));
        }
    }
    let stack = match &body.stack {
        Some(stack) => StackName::parse(stack)?,
        None => ctx.app.build_stack,
    };
    let slug = state
        .store
        .create_slug(
            ctx.app.id,
            NewSlug {
                process_types: body.process_types,
                commit: body.commit,
                commit_description: body.commit_description,
                buildpack_provided_description: body.buildpack_provided_description,
                stack: stack.to_string(),
                size: None,
                checksum: None,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::slug(&slug))))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, slug)): Path<(String, String)>,
) -> ApiResult<Json<api::Slug>> {
    let id = Uuid::parse_str(&slug).map_err(|_| ApiError::not_found("Couldn't find that slug."))?;
    let slug = state
        .store
        .slug(ctx.app.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Couldn't find that slug."))?;
    Ok(Json(views::slug(&slug)))
}
