//! The release ledger: list (Range-paged by version), show by version or id, the config at a
//! release, and new releases (a rollback, or a slug).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use uuid::Uuid;
use wharf_api_types as api;
use wharf_model::{Release, ReleaseStatus};
use wharf_store::{ReleaseOrder, ReleaseRange};

use super::AppCtx;
use crate::error::{ApiError, ApiResult};
use crate::json::Body;
use crate::range::{Order, Page, RangeSpec};
use crate::views;
use crate::ApiState;

pub async fn list(
    State(state): State<ApiState>,
    ctx: AppCtx,
    headers: HeaderMap,
) -> ApiResult<Page<api::Release>> {
    let spec = RangeSpec::from_headers(&headers, &["version", "id"], Order::Asc)?;
    let bound = |value: &Option<String>| -> ApiResult<Option<i64>> {
        value
            .as_deref()
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!("Range bound {v:?} is not a release version"))
                })
            })
            .transpose()
    };
    let range = ReleaseRange {
        start: bound(&spec.start)?,
        start_exclusive: spec.start_exclusive,
        end: bound(&spec.end)?,
        order: match spec.order {
            Order::Asc => ReleaseOrder::Ascending,
            Order::Desc => ReleaseOrder::Descending,
        },
        // One more than a page, to learn whether another page follows.
        limit: spec.max + 1,
    };
    let mut releases = state.store.list_releases(ctx.app.id, &range).await?;
    let more = releases.len() > spec.max as usize;
    releases.truncate(spec.max as usize);
    let next_range = if more {
        releases.last().map(|r| {
            let mut by_version = spec.clone();
            by_version.field = "version".into();
            by_version.next_after(&r.version.to_string())
        })
    } else {
        None
    };
    Ok(Page {
        items: releases
            .iter()
            .map(|r| views::release(r, &ctx.app))
            .collect(),
        next_range,
    })
}

async fn find(state: &ApiState, ctx: &AppCtx, identity: &str) -> ApiResult<Release> {
    let version = identity.strip_prefix('v').unwrap_or(identity);
    let found = if let Ok(version) = version.parse::<i64>() {
        state.store.release_by_version(ctx.app.id, version).await?
    } else if let Ok(id) = Uuid::parse_str(identity) {
        state.store.release_by_id(ctx.app.id, id).await?
    } else {
        None
    };
    found.ok_or_else(|| ApiError::not_found("Couldn't find that release."))
}

pub async fn show(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<api::Release>> {
    let release = find(&state, &ctx, &identity).await?;
    Ok(Json(views::release(&release, &ctx.app)))
}

pub async fn config_vars(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Path((_, identity)): Path<(String, String)>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let release = find(&state, &ctx, &identity).await?;
    Ok(Json(release.config.as_map().clone()))
}

/// `{"release": id}` rolls back to that release (code and config); `{"slug": id}` releases
/// that slug with the current config.
pub async fn create(
    State(state): State<ApiState>,
    ctx: AppCtx,
    Body(body): Body<api::ReleaseCreate>,
) -> ApiResult<(StatusCode, Json<api::Release>)> {
    let user = &ctx.caller.account;
    let release = match (body.release, body.slug) {
        (Some(target), None) => {
            let target = find(&state, &ctx, &target).await?;
            state.store.rollback(ctx.app.id, target.id, user).await?
        }
        (None, Some(slug)) => {
            let slug_id = Uuid::parse_str(&slug)
                .map_err(|_| ApiError::invalid(format!("Slug id {slug:?} is not a UUID")))?;
            let slug = state
                .store
                .slug(ctx.app.id, slug_id)
                .await?
                .ok_or_else(|| ApiError::not_found("Couldn't find that slug."))?;
            let description = body.description.unwrap_or_else(|| match &slug.commit {
                Some(commit) => format!("Deploy {}", commit.chars().take(7).collect::<String>()),
                None => "Deploy".to_owned(),
            });
            state
                .store
                .release_slug(ctx.app.id, slug.id, &description, ReleaseStatus::Succeeded, user)
                .await?
        }
        _ => {
            return Err(ApiError::invalid(
                "Send either \"release\" (the release to roll back to) or \"slug\" (the slug to release)",
            ))
        }
    };
    state.release_created(&ctx, &release);
    Ok((
        StatusCode::CREATED,
        Json(views::release(&release, &ctx.app)),
    ))
}
