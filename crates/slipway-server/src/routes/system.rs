//! `/healthz` and `/metrics`: for load balancers and Prometheus, without a token.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::AppState;
use crate::views::HealthView;

/// Whether the server and its database answer.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    security(()),
    responses(
        (status = 200, description = "Serving", body = HealthView),
        (status = 503, description = "The database does not answer", body = HealthView),
    )
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<HealthView>) {
    let database = state.store.ping().await;
    let (status, text, database) = match database {
        Ok(()) => (StatusCode::OK, "ok", "ok".to_owned()),
        Err(error) => {
            tracing::warn!(%error, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "degraded",
                "unavailable".to_owned(),
            )
        }
    };
    let view = HealthView {
        status: text.to_owned(),
        database,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    (status, Json(view))
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let now = state.clock.now();
    // A database failure leaves the deploy gauges at zero rather than failing the scrape.
    let phases: Vec<String> = match state.store.unfinished_deploys().await {
        Ok(deploys) => deploys
            .iter()
            .map(|d| crate::views::PhaseView::from(d.deploy.phase(now)).state)
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot count deploys");
            Vec::new()
        }
    };
    let mut text = state.metrics.render(&phases);
    if let Some(extra) = &state.settings.extra_metrics {
        // Both are OpenMetrics documents ending in `# EOF`: one document has one end.
        if let Some(body) = text.strip_suffix("# EOF\n") {
            text.truncate(body.len());
        }
        text.push_str(&(extra.0)());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
