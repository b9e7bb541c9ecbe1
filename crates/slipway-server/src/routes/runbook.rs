//! The runbook of a service as Markdown, rendered from the configuration the server runs with
//! (the dashboard shows it; `slipway runbook --from-server` prints it).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use slipway_core::runbook::render;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};

/// `?environment=` of a runbook.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunbookParams {
    /// Only this environment; every environment, in promotion order, when absent.
    environment: Option<String>,
}

/// A service's runbook as Markdown: prerequisites, how to deploy (the plan slipway derives),
/// what is checked, how to monitor and how to roll back.
#[utoipa::path(get, path = "/api/v1/services/{service}/runbook", tag = "catalog",
    params(("service" = String, Path), RunbookParams),
    responses(
        (status = 200, content_type = "text/markdown", body = String),
        (status = 404, description = "Unknown service or environment", body = crate::error::ErrorBody)))]
pub(crate) async fn get_runbook(
    State(state): State<AppState>,
    _caller: Caller,
    Path(service): Path<String>,
    Query(params): Query<RunbookParams>,
) -> ApiResult<impl IntoResponse> {
    let markdown = render(&state.config, &service, params.environment.as_deref())
        .map_err(|error| ApiError::not_found(error.message).with_hint(error.hint))?;
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        markdown,
    ))
}
