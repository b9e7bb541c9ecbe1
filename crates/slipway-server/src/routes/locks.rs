//! Locks: `slipway lock SERVICE --env ENV --reason …` stops new deploys of a service to an
//! environment until it is unlocked. Rollbacks are still allowed: a lock must never keep a
//! team from undoing a bad release.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use slipway_core::deploy::Role;
use slipway_store::{Lock, StoreError};
use utoipa::ToSchema;

use super::catalog::{environment, service};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};
use crate::views::timestamp;

/// A lock to take.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockBody {
    service: String,
    environment: String,
    /// Why; shown to whoever tries to deploy.
    reason: String,
}

/// A held lock.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct LockView {
    pub(crate) service: String,
    pub(crate) environment: String,
    pub(crate) reason: String,
    pub(crate) locked_by: String,
    pub(crate) locked_at: String,
}

impl From<&Lock> for LockView {
    fn from(lock: &Lock) -> Self {
        LockView {
            service: lock.service.clone(),
            environment: lock.environment.clone(),
            reason: lock.reason.clone(),
            locked_by: lock.by.clone(),
            locked_at: timestamp(lock.at),
        }
    }
}

/// Locks a service in an environment: no new deploy starts there until it is unlocked.
#[utoipa::path(post, path = "/api/v1/locks", tag = "locks",
    request_body = LockBody,
    responses(
        (status = 201, body = LockView),
        (status = 400, description = "No reason given", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown service or environment", body = crate::error::ErrorBody),
        (status = 409, description = "Already locked", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn lock(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<LockBody>,
) -> ApiResult<(StatusCode, Json<LockView>)> {
    caller.require(Role::Deployer, "locking deploys")?;
    let service = service(&state, &body.service)?;
    let environment = environment(&state, &body.environment)?;
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(
            ApiError::bad_request("reason_required", "a lock needs a reason").with_hint(
                "say why nobody may deploy: --reason \"investigating the login errors\"",
            ),
        );
    }
    let lock = Lock {
        service: service.name.clone(),
        environment: environment.name.clone(),
        reason: reason.to_owned(),
        by: caller.user.name.clone(),
        at: state.clock.now(),
    };
    match state.store.take_lock(&lock).await {
        Ok(()) => Ok((StatusCode::CREATED, Json((&lock).into()))),
        Err(StoreError::AlreadyExists { .. }) => {
            let held = state
                .store
                .lock_of(&lock.service, &lock.environment)
                .await?
                .map(|held| {
                    format!(
                        " by {} since {}: {}",
                        held.by,
                        timestamp(held.at),
                        held.reason
                    )
                })
                .unwrap_or_default();
            Err(ApiError::conflict(
                "already_locked",
                format!(
                    "{} is already locked in {}{held}",
                    lock.service, lock.environment
                ),
            )
            .with_hint("it stays locked until someone runs `slipway unlock`"))
        }
        Err(other) => Err(other.into()),
    }
}

/// Unlocks a service in an environment.
#[utoipa::path(delete, path = "/api/v1/locks/{service}/{environment}", tag = "locks",
    params(("service" = String, Path), ("environment" = String, Path)),
    responses(
        (status = 200, description = "The lock that was held", body = LockView),
        (status = 404, description = "Not locked, or unknown service or environment", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    Path((service_name, environment_name)): Path<(String, String)>,
) -> ApiResult<Json<LockView>> {
    caller.require(Role::Deployer, "unlocking deploys")?;
    let service = service(&state, &service_name)?;
    let environment = environment(&state, &environment_name)?;
    let held = state
        .store
        .release_lock(
            &service.name,
            &environment.name,
            &caller.user.name,
            state.clock.now(),
        )
        .await?;
    match held {
        Some(lock) => Ok(Json((&lock).into())),
        None => Err(ApiError::not_found(format!(
            "{} is not locked in {}",
            service.name, environment.name
        ))
        .with_hint("`slipway locks` lists the locks that are held")),
    }
}

/// Every lock held.
#[utoipa::path(get, path = "/api/v1/locks", tag = "locks",
    responses((status = 200, body = Vec<LockView>)))]
pub(crate) async fn list_locks(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<LockView>>> {
    let locks = state.store.locks().await?;
    Ok(Json(locks.iter().map(LockView::from).collect()))
}
