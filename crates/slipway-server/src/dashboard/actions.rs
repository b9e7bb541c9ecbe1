//! The dashboard's actions: form POSTs checked for their origin and the session's CSRF token,
//! then handed to the very handlers the API uses, so roles and rules apply unchanged. Success
//! redirects back to the page with a notice; a refusal is a page with the message and hint.

use std::collections::HashMap;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use slipway_core::deploy::{DeployId, DeployResult};
use slipway_store::StoredDeploy;

use super::pages::no_such_deploy;
use super::render::PageError;
use super::session::{Viewer, check_form};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path as ApiPath};
use crate::routes::{config, deploys};
use crate::views::ActionView;

/// A body of the API built from form fields (its fields are the API's own, private to it).
fn body<T: DeserializeOwned>(value: serde_json::Value) -> ApiResult<Body<T>> {
    serde_json::from_value(value)
        .map(Body)
        .map_err(|e| ApiError::bad_request("invalid_form", e.to_string()))
}

fn field(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `POST /deploys/{id}/{action}`: approve, go, confirm, break-glass, abort or rollback.
pub(crate) async fn deploy_action(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    // A body that is not a form carries no CSRF token either: `check_form` refuses it.
    let form = form.map(|Form(f)| f).unwrap_or_default();
    match run(&state, &viewer, &headers, &id, &action, &form).await {
        Ok(location) => Redirect::to(&location).into_response(),
        Err(error) => PageError(error).into_response(),
    }
}

async fn run(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    id: &str,
    action: &str,
    form: &HashMap<String, String>,
) -> ApiResult<String> {
    check_form(viewer, headers, form)?;
    let id: i64 = id.parse().map_err(|_| no_such_deploy(id))?;
    let caller = viewer.caller.clone();
    let state_of = || State(state.clone());
    let answer = match action {
        "approve" => {
            let seen = json!({
                "deploy": id,
                "artifact": field(form, "artifact"),
                "config": field(form, "config"),
                "plan": field(form, "plan"),
            });
            deploys::approve(state_of(), caller, ApiPath(id), Some(body(seen)?)).await?
        }
        "go" => deploys::go(state_of(), caller, ApiPath(id)).await?,
        "confirm" => deploys::confirm(state_of(), caller, ApiPath(id)).await?,
        "break-glass" => deploys::break_glass(state_of(), caller, ApiPath(id)).await?,
        "abort" => {
            let reason = json!({ "reason": field(form, "reason") });
            deploys::abort(state_of(), caller, ApiPath(id), Some(body(reason)?)).await?
        }
        "rollback" => {
            let stored = state
                .store
                .deploy(DeployId(id))
                .await?
                .ok_or_else(|| no_such_deploy(id))?;
            let reason = field(form, "reason");
            if stored.deploy.is_finished() {
                // A finished deploy is rolled back only while its release is what runs there,
                // and then explicitly to the release it replaced: never to whatever the
                // environment-wide rollback would pick for a later deploy.
                let to = finished_rollback_target(state, &stored).await?;
                let spec = &stored.deploy.spec;
                let wanted = json!({
                    "service": spec.service,
                    "environment": spec.environment,
                    "to": to,
                    "reason": reason.unwrap_or_default(),
                });
                deploys::rollback(state_of(), caller, HeaderMap::new(), body(wanted)?).await?
            } else {
                let reason = json!({ "reason": reason });
                deploys::rollback_deploy(state_of(), caller, ApiPath(id), Some(body(reason)?))
                    .await?
            }
        }
        other => {
            return Err(ApiError::not_found(format!("there is no action {other}"))
                .with_hint("the deploy page offers the actions its state allows"));
        }
    };
    let (status, axum::Json(ActionView { deploy, .. })) = answer;
    let done = if status == StatusCode::ACCEPTED {
        "pending"
    } else {
        action
    };
    Ok(format!("/deploys/{}?done={done}", deploy.id))
}

/// The release a rollback from the page of the finished deploy `stored` goes to: the one it
/// replaced, provided the deploy succeeded, its release is still the one that runs in its
/// environment and no other deploy is active there. Anything else is refused with a hint, so
/// the button of an old deploy cannot roll back a later one.
pub(super) async fn finished_rollback_target(
    state: &AppState,
    stored: &StoredDeploy,
) -> ApiResult<String> {
    let spec = &stored.deploy.spec;
    let deploys_page = format!(
        "the page of the deploy that runs it now, listed on /, rolls back {} in {}",
        spec.service, spec.environment
    );
    if stored.deploy.progress.ending.as_ref().map(|e| e.result) != Some(DeployResult::Succeeded) {
        return Err(ApiError::conflict(
            "not_running",
            format!(
                "deploy {} did not succeed; there is nothing of it to roll back",
                spec.id
            ),
        )
        .with_hint(deploys_page));
    }
    if let Some(active) = state
        .store
        .active_deploy(&spec.service, &spec.environment)
        .await?
    {
        return Err(ApiError::conflict(
            "deploy_in_progress",
            format!(
                "deploy {active} of {} to {} is in progress; this deploy's page no longer decides what runs there",
                spec.service, spec.environment
            ),
        )
        .with_hint(format!("roll back from the page of deploy {active}")));
    }
    let current = state
        .store
        .current_release(&spec.service, &spec.environment)
        .await?;
    let runs_now = current
        .as_ref()
        .is_some_and(|c| c.deploy.spec.release.label == spec.release.label);
    if !runs_now {
        let now = current.map_or("nothing".to_owned(), |c| c.deploy.spec.release.label);
        return Err(ApiError::conflict(
            "not_current",
            format!(
                "{} no longer runs in {} ({now} does); rolling back from this deploy's page would undo a later deploy",
                spec.release.label, spec.environment
            ),
        )
        .with_hint(deploys_page));
    }
    spec.previous
        .as_ref()
        .map(|previous| previous.label.clone())
        .ok_or_else(|| {
            ApiError::conflict(
                "nothing_before",
                format!(
                    "{} was the first release of {} in {}; there is nothing to roll back to",
                    spec.release.label, spec.service, spec.environment
                ),
            )
            .with_hint("deploy a fixed release instead")
        })
}

/// `POST /config/{service}/{environment}/versions/{version}/approve`.
pub(crate) async fn approve_config(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((service, environment, version)): Path<(String, String, String)>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let result = async {
        check_form(&viewer, &headers, &form)?;
        let version: u64 = version.parse().map_err(|_| {
            ApiError::not_found(format!("there is no config version {version}"))
                .with_hint("versions are numbers; /config lists those awaiting review")
        })?;
        let _approved = config::approve_version(
            State(state.clone()),
            viewer.caller.clone(),
            ApiPath((service, environment, version)),
        )
        .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/config?done=config").into_response(),
        Err(error) => PageError(error).into_response(),
    }
}
