//! Notifications: the deliveries of notices to `[[notify]]` destinations and their attempts.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use slipway_core::deploy::DeployId;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Query;
use crate::views::Page;
use crate::views::notifications::NotificationView;

/// `?deploy=&limit=` of the notification listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NotificationParams {
    /// Only the notifications of this deploy.
    deploy: Option<i64>,
    /// The newest this many, 1 to 1000 (default 100).
    limit: Option<i64>,
}

/// Notifications, oldest first (the newest `limit`), each with its delivery attempts: what was
/// sent where, and whether the receiver took it.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    params(NotificationParams),
    responses((status = 200, body = Page<NotificationView>)))]
pub(crate) async fn list_notifications(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<NotificationParams>,
) -> ApiResult<Json<Page<NotificationView>>> {
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let found = state
        .store
        .notifications(params.deploy.map(DeployId), limit)
        .await?;
    Ok(Json(Page {
        items: found.iter().map(Into::into).collect(),
        next: None,
    }))
}
