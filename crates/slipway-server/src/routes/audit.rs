//! The audit trail: verify the hash chain, export the raw events.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use slipway_core::deploy::DeployId;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Query;
use crate::views::{AuditRecord, AuditReportView, Page};

/// Checks every event against the hash chain and the recorded head; names the first bad event.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The report; `intact` says whether the log is whole", body = AuditReportView)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<AuditReportView>> {
    let report = state.store.verify_chain().await?;
    Ok(Json((&report).into()))
}

/// `?after=&limit=&deploy=` of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// Only events after this sequence number (the `next` of the previous page).
    after: Option<i64>,
    /// Page size, 1 to 5000 (default 1000).
    limit: Option<i64>,
    /// Only this deploy's events.
    deploy: Option<i64>,
}

/// The raw event log, oldest first, in pages. `next` is always the position to continue from.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit",
    params(ExportParams),
    responses((status = 200, body = Page<AuditRecord>)))]
pub(crate) async fn export(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<ExportParams>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let after = params.after.unwrap_or(0);
    let limit = params.limit.unwrap_or(1000).clamp(1, 5000);
    let events = state
        .store
        .events(params.deploy.map(DeployId), after, limit)
        .await?;
    let next = events.last().map_or(after, |e| e.seq);
    let items = events
        .into_iter()
        .map(|e| AuditRecord {
            seq: e.seq,
            at: e.at.as_millis(),
            deploy: e.deploy.map(|d| d.0),
            kind: e.kind,
            payload: e.payload,
            prev_hash: e.prev_hash,
            hash: e.hash,
        })
        .collect();
    Ok(Json(Page {
        items,
        next: Some(next),
    }))
}
