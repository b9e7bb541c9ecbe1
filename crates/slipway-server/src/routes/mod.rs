//! The routes of the API, each documented for the OpenAPI document with `#[utoipa::path]`.

mod audit;
mod catalog;
mod chat;
mod checklists;
pub(crate) mod config;
pub(crate) mod deploys;
mod locks;
mod logs;
mod notifications;
mod people;
mod provenance;
mod runbook;
pub(crate) mod schedule;
pub(crate) mod scheduler;
mod system;
mod trains;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// The parts of the document no route describes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "slipway",
        description = "A self-hosted release control plane. Every `/api/v1` route takes \
                       `Authorization: Bearer TOKEN`; errors have one shape, \
                       `{\"error\": {\"code\", \"message\", \"hint\"}}`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(catalog::list_services))
        .routes(routes!(catalog::get_service))
        .routes(routes!(catalog::list_environments))
        .routes(routes!(catalog::push_artifact, catalog::list_artifacts))
        .routes(routes!(catalog::get_artifact))
        .routes(routes!(provenance::attest, provenance::list_attestations))
        .routes(routes!(catalog::create_release, catalog::list_releases))
        .routes(routes!(catalog::get_release))
        .routes(routes!(deploys::create_deploy, deploys::list_deploys))
        .routes(routes!(deploys::get_deploy))
        .routes(routes!(deploys::deploy_events))
        .routes(routes!(deploys::approve))
        .routes(routes!(deploys::go))
        .routes(routes!(deploys::break_glass))
        .routes(routes!(locks::lock, locks::list_locks))
        .routes(routes!(locks::unlock))
        .routes(routes!(deploys::confirm))
        .routes(routes!(deploys::abort))
        .routes(routes!(deploys::rollback_deploy))
        .routes(routes!(deploys::rollback))
        .routes(routes!(logs::list_logs))
        .routes(routes!(logs::read_log))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::export))
        .routes(routes!(people::me))
        .routes(routes!(people::add_user, people::list_users))
        .routes(routes!(people::set_role))
        .routes(routes!(people::create_token, people::list_tokens))
        .routes(routes!(people::revoke_token))
        .routes(routes!(checklists::get_checklist))
        .routes(routes!(checklists::tick))
        .routes(routes!(checklists::untick))
        .routes(routes!(runbook::get_runbook))
        .routes(routes!(schedule::get_schedule))
        .routes(routes!(config::get_config, config::change_config))
        .routes(routes!(config::list_versions))
        .routes(routes!(config::diff_versions))
        .routes(routes!(config::approve_version))
        .routes(routes!(config::export))
        .routes(routes!(config::recycle))
        .routes(routes!(config::fingerprint))
        .routes(routes!(config::rotate_key))
        .routes(routes!(trains::cut))
        .routes(routes!(trains::get_train))
        .routes(routes!(trains::get_notes, trains::edit_notes))
        .routes(routes!(trains::publish))
        .routes(routes!(notifications::list_notifications))
}

/// The OpenAPI 3.1 document of the API, generated from the routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().split_for_parts().1
}

pub(crate) fn router(state: AppState) -> Router {
    let (api, document) = documented().split_for_parts();
    let document = Arc::new(document);
    api.route(
        "/api/openapi.json",
        get(move || {
            let document = Arc::clone(&document);
            async move { axum::Json(document.as_ref().clone()) }
        }),
    )
    .route("/metrics", get(system::metrics))
    .merge(crate::dashboard::router())
    .route("/chat/slack/commands", post(chat::commands))
    .route("/chat/slack/interactions", post(chat::interactions))
    .fallback(not_found)
    .method_not_allowed_fallback(method_not_allowed)
    .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    // The API answers in its error shape; any other path is a page of the dashboard.
    if !uri.path().starts_with("/api") {
        return crate::dashboard::not_found(uri.path());
    }
    ApiError::not_found(format!("no route for {}", uri.path()))
        .with_hint("the API lives under /api/v1; /api/openapi.json lists every route")
        .into_response()
}

async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !uri.path().starts_with("/api") {
        return crate::dashboard::method_not_allowed(&method, uri.path());
    }
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
    .with_hint("/api/openapi.json lists the methods of every route")
    .into_response()
}
