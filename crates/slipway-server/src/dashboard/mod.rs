//! The web dashboard: server-rendered HTML for people, served by the same app as the API, at
//! `/` (the API stays under `/api/v1`).
//!
//! Pages read the store and reuse the API's handlers and views, so what a person sees and may do
//! is what the API shows and allows: roles and rules apply unchanged, and secrets appear only as
//! their fingerprints. Sign-in turns an API token into a cookie session (`session.rs`); every
//! action is a form POST carrying the session's CSRF token (`actions.rs`); pages update live
//! through server-sent events (`live.rs`). No JavaScript build step: one small stylesheet and a
//! few lines of plain script, and every page works on reload without them. `docs/dashboard.md`
//! describes it for users.

mod actions;
mod charts;
mod live;
mod pages;
mod render;
mod session;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub(crate) use session::Dashboard;

use crate::AppState;

/// The dashboard's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/deploys/{id}", get(pages::deploy))
        .route("/deploys/{id}/{action}", post(actions::deploy_action))
        .route("/approvals", get(pages::approvals))
        .route("/config", get(pages::config_reviews))
        .route(
            "/config/{service}/{environment}/versions/{version}/approve",
            post(actions::approve_config),
        )
        .route("/schedule", get(pages::schedule))
        .route("/audit", get(pages::audit))
        .route("/runbook", get(pages::runbook))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/events", get(live::events))
        .route("/assets/dashboard.css", get(stylesheet))
        .route("/assets/live.js", get(script))
}

/// The answer to a path no route knows that is not the API's: an HTML page.
pub(crate) fn not_found(path: &str) -> axum::response::Response {
    render::PageError(
        crate::error::ApiError::not_found(format!("there is no page at {path}"))
            .with_hint("start from the overview at /"),
    )
    .into_response()
}

/// The answer to a method a dashboard path does not take: an HTML page.
pub(crate) fn method_not_allowed(
    method: &axum::http::Method,
    path: &str,
) -> axum::response::Response {
    render::PageError(
        crate::error::ApiError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
        .with_hint("use the page's links and buttons"),
    )
    .into_response()
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("dashboard.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("live.js"),
    )
}
