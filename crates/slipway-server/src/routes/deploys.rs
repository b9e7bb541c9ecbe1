//! Deploys: create, list, read, their events, and the operator actions (approve, go, confirm,
//! abort, rollback). Actions are intents written to the store; the engine applies them, and the
//! answer waits a little for that so the caller sees the result.

use std::cmp::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use slipway_core::config::{EnvironmentConfig, ServiceConfig};
use slipway_core::decide::start;
use slipway_core::deploy::{
    DeployId, DeployRequest, DeployResult, DeploySpec, Input, RejectionCode, ReleaseRef, Role,
    compare_releases,
};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_store::{DeployQuery, ReleaseChoice, ReleaseRecord, StoredDeploy};
use utoipa::{IntoParams, ToSchema};

use super::catalog::{environment, find_release, service};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};
use crate::views::{ActionView, DeployView, EventView, Page};

/// The hash a deploy's release carries for its configuration: the service's settings as the
/// server was started with them. (Versioned config with secrets replaces this later.)
pub(crate) fn config_hash(service: &ServiceConfig) -> String {
    let json = serde_json::to_vec(service).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(json)))
}

/// A deploy to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDeployBody {
    service: String,
    environment: String,
    /// `RC 12`, `12` or `12.1`; the newest release when absent.
    release: Option<String>,
    /// Why; required with `break_glass`.
    reason: Option<String>,
    /// Outside its window or in a freeze, wait for the next allowed slot (default) or fail at
    /// once (`false`).
    #[serde(default = "yes")]
    wait: bool,
    /// Override windows, freezes, staffing, provenance and checklists once a second person
    /// confirms (`POST /api/v1/deploys/{id}/break-glass`). Needs a `reason`; announced loudly.
    #[serde(default)]
    break_glass: bool,
    /// The config version to pin; the newest by default (it must be reviewed where the
    /// environment is protected).
    config: Option<u64>,
}

fn yes() -> bool {
    true
}

/// Starts a deploy of a release to an environment. With an `Idempotency-Key` header, repeating
/// the request returns the deploy the first one created.
#[utoipa::path(post, path = "/api/v1/deploys", tag = "deploys",
    request_body = NewDeployBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request return the first one's deploy")),
    responses(
        (status = 201, description = "Created", body = DeployView),
        (status = 200, description = "The deploy this idempotency key created earlier", body = DeployView),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, description = "Unknown service, environment or release", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn create_deploy(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<NewDeployBody>,
) -> ApiResult<(StatusCode, Json<DeployView>)> {
    caller.require(Role::Deployer, "starting a deploy")?;
    // A retried request gets the deploy the first one created, before any check that the
    // first deploy itself would now fail (it is running).
    let origin = idempotency_origin(&caller, &headers)?;
    if let Some(origin) = &origin
        && let Some(id) = state.store.deploy_by_origin(origin).await?
    {
        return Ok((StatusCode::OK, Json(read_deploy(&state, id).await?)));
    }
    let service = service(&state, &body.service)?;
    let environment = environment(&state, &body.environment)?;
    check_drivable(&state, &environment.name, &environment.target)?;
    let release = match &body.release {
        Some(text) => find_release(&state, &service.name, text).await?,
        None => state
            .store
            .latest_release(&service.name)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("{} has no release yet", service.name)).with_hint(
                    format!(
                        "create one: slipway release create {} --version VERSION",
                        service.name
                    ),
                )
            })?,
    };
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if body.break_glass && reason.is_none() {
        return Err(
            ApiError::bad_request("reason_required", "break-glass needs a reason")
                .with_hint("say what is on fire: --break-glass --reason \"…\""),
        );
    }
    let started = start_deploy(
        &state,
        &caller,
        StartDeploy {
            service,
            environment,
            release,
            config: ConfigPin::Choose(body.config),
            origin,
            reason,
            wait_for_slot: body.wait,
            break_glass: body.break_glass,
        },
    )
    .await?;
    Ok(started)
}

/// A release deploy to start, its checks done by [`start_deploy`].
pub(crate) struct StartDeploy<'a> {
    pub(crate) service: &'a ServiceConfig,
    pub(crate) environment: &'a EnvironmentConfig,
    pub(crate) release: ReleaseRecord,
    /// Which config version to pin.
    pub(crate) config: ConfigPin,
    pub(crate) origin: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) wait_for_slot: bool,
    pub(crate) break_glass: bool,
}

/// The config version a new deploy runs with.
pub(crate) enum ConfigPin {
    /// Check and pin this version, or the newest ([`super::config::pin_config`]).
    Choose(Option<u64>),
    /// Already checked and pinned by the caller (a config recycle checks before it numbers
    /// its release): the version and the hash approvals are bound to.
    Pinned { version: Option<u64>, hash: String },
}

/// Checks that the release can go to the environment now (cached artifact, newer than what
/// runs, unlocked, idle, a config version that may be deployed) and creates its deploy.
pub(crate) async fn start_deploy(
    state: &AppState,
    caller: &Caller,
    wanted: StartDeploy<'_>,
) -> ApiResult<(StatusCode, Json<DeployView>)> {
    let StartDeploy {
        service,
        environment,
        release,
        config,
        origin,
        reason,
        wait_for_slot,
        break_glass,
    } = wanted;
    check_cached(
        state,
        &service.name,
        &release.label,
        &release.version,
        &release.artifact,
    )?;
    let previous = state
        .store
        .current_release(&service.name, &environment.name)
        .await?
        .map(|stored| stored.deploy.spec.release);
    if let Some(previous) = &previous {
        check_replaces(&release, previous, &environment.name)?;
        check_order(&release, previous, &service.name, &environment.name)?;
    }
    check_unlocked(state, &service.name, &environment.name).await?;
    check_idle(state, &service.name, &environment.name).await?;
    let (config_version, config) = match config {
        ConfigPin::Choose(version) => {
            super::config::pin_config(state, service, &environment.name, version).await?
        }
        ConfigPin::Pinned { version, hash } => (version, hash),
    };
    let now = state.clock.now();
    let request = DeployRequest {
        service,
        environment,
        kind: release.kind,
        release: ReleaseRef {
            label: release.label.clone(),
            version: release.version.clone(),
            artifact: release.artifact.clone(),
            config,
            config_version,
        },
        previous,
        requested_by: caller.user.name.clone(),
        reason,
    };
    let (commit, authors) = (release.commit.clone(), release.authors.clone());
    let (id, created) = state
        .store
        .create_deploy(None, origin.as_deref(), now, |id| {
            let spec = DeploySpec {
                wait_for_slot,
                break_glass,
                commit,
                authors,
                ..DeploySpec::new(id, request, now)
            };
            start(spec, now)
        })
        .await?;
    state.store.wake_handle().notify_one();
    let view = read_deploy(state, id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Refuses a deploy that cannot replace what runs: the same release (its scale-in would stop the
/// only fleet), or a `config` release carrying another artifact (it would skip `migrate`).
fn check_replaces(
    release: &ReleaseRecord,
    previous: &ReleaseRef,
    environment: &str,
) -> ApiResult<()> {
    if release.label == previous.label {
        return Err(ApiError::conflict(
            "already_running",
            format!("{} already runs in {environment}", release.label),
        )
        .with_hint("deploy a newer release, or go back with `slipway rollback`"));
    }
    if release.kind == ReleaseKind::Config && release.artifact != previous.artifact {
        return Err(ApiError::conflict(
            "config_release_changes_artifact",
            format!(
                "{} is a config release, but its artifact ({}) is not the one running in \
                 {environment} ({}); a config release skips migrations",
                release.label, release.artifact, previous.artifact
            ),
        )
        .with_hint(format!(
            "release a new build as `--kind full` or `--kind patch`; a config release reuses version {}",
            previous.version
        )));
    }
    Ok(())
}

/// Refuses a release older than the one running: going back is a rollback, which brings the
/// old release back with the config it ran with.
fn check_order(
    release: &ReleaseRecord,
    previous: &ReleaseRef,
    service: &str,
    environment: &str,
) -> ApiResult<()> {
    if compare_releases(&release.label, &previous.label) != Some(Ordering::Less) {
        return Ok(());
    }
    Err(ApiError::conflict(
        "older_release",
        format!(
            "{} is older than {}, which runs in {environment}",
            release.label, previous.label
        ),
    )
    .with_hint(format!(
        "deploy {} or newer; to go back, roll back: `slipway rollback {service} --env {environment} --to {}`",
        previous.label, release.label
    )))
}

/// Refuses a deploy while someone holds the environment's lock (`slipway lock`).
pub(crate) async fn check_unlocked(
    state: &AppState,
    service: &str,
    environment: &str,
) -> ApiResult<()> {
    let Some(lock) = state.store.lock_of(service, environment).await? else {
        return Ok(());
    };
    Err(ApiError::conflict(
        "locked",
        format!(
            "{service} is locked in {environment} by {} since {}: {}",
            lock.by,
            crate::views::timestamp(lock.at),
            lock.reason
        ),
    )
    .with_hint(format!(
        "ask {} to unlock it when it is safe: `slipway unlock {service} --env {environment}`",
        lock.by
    )))
}

/// Refuses a second deploy of a service to an environment while one runs. (Two requests at
/// once can both pass this; preflight's lock check then fails the later one.)
pub(crate) async fn check_idle(
    state: &AppState,
    service: &str,
    environment: &str,
) -> ApiResult<()> {
    let Some(running) = state.store.active_deploy(service, environment).await? else {
        return Ok(());
    };
    Err(ApiError::conflict(
        "deploy_running",
        format!(
            "deploy {running} of {service} to {environment} is still running; one deploy per service and environment at a time"
        ),
    )
    .with_hint(format!(
        "wait for it (`slipway status {running} --follow`), or abort it: `slipway abort {running} --reason \"…\"`"
    )))
}

/// Refuses a deploy whose artifact is not in this server's cache: its launch would fail.
pub(crate) fn check_cached(
    state: &AppState,
    service: &str,
    label: &str,
    version: &str,
    artifact: &str,
) -> ApiResult<()> {
    if state.blobs.contains(artifact) {
        return Ok(());
    }
    Err(ApiError::conflict(
        "artifact_missing",
        format!("the artifact of {label} ({artifact}) is not in this server's artifact cache"),
    )
    .with_hint(format!(
        "push it again: slipway artifact push FILE --service {service} --version {version}"
    )))
}

/// Refuses a deploy to an environment whose target this server cannot drive.
pub(crate) fn check_drivable(state: &AppState, environment: &str, target: &str) -> ApiResult<()> {
    if state.settings.drivable.contains(environment) {
        return Ok(());
    }
    Err(ApiError::conflict(
        "target_unavailable",
        format!(
            "environment `{environment}` uses target `{target}`, which this server cannot drive"
        ),
    )
    .with_hint("docs/targets.md lists the targets that are available and how to configure them"))
}

/// The deploy origin an `Idempotency-Key` header asks for: scoped to the caller, so two people
/// cannot collide.
pub(crate) fn idempotency_origin(
    caller: &Caller,
    headers: &HeaderMap,
) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 200 => {
            Ok(Some(format!("api/{}/{key}", caller.user.name)))
        }
        _ => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "the Idempotency-Key header must be 1 to 200 visible ASCII characters",
        )
        .with_hint("send a random value, e.g. a UUID, and the same one on a retry")),
    }
}

async fn load(state: &AppState, id: i64) -> ApiResult<StoredDeploy> {
    state.store.deploy(DeployId(id)).await?.ok_or_else(|| {
        ApiError::not_found(format!("no deploy {id}"))
            .with_hint("list deploys with `slipway deploys`")
    })
}

/// A deploy as the API shows it, with the rollback deploy that took over from it, if any.
pub(crate) async fn read_deploy(state: &AppState, id: DeployId) -> ApiResult<DeployView> {
    let stored = load(state, id.0).await?;
    let mut view = DeployView::new(&stored.deploy, state.clock.now());
    if stored.deploy.progress.unwind.is_some() {
        view.rollback_deploy = state
            .store
            .deploy_by_origin(&format!("rollback-of/{id}"))
            .await?
            .map(|d| d.0);
    }
    Ok(view)
}

/// `?service=&environment=&before=&limit=` of the deploy listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeployListParams {
    service: Option<String>,
    environment: Option<String>,
    /// Only deploys with a smaller id (the `next` of the previous page).
    before: Option<i64>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<i64>,
}

/// Deploys, newest first.
#[utoipa::path(get, path = "/api/v1/deploys", tag = "deploys",
    params(DeployListParams),
    responses((status = 200, body = Page<DeployView>)))]
pub(crate) async fn list_deploys(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<DeployListParams>,
) -> ApiResult<Json<Page<DeployView>>> {
    if let Some(name) = &params.service {
        service(&state, name)?;
    }
    if let Some(name) = &params.environment {
        environment(&state, name)?;
    }
    let limit = params.limit.unwrap_or(50).clamp(1, 1000);
    let query = DeployQuery {
        service: params.service,
        environment: params.environment,
        before: params.before.map(DeployId),
        limit,
    };
    let now = state.clock.now();
    let deploys = state.store.list_deploys(&query).await?;
    let last = deploys.last().map(|stored| stored.deploy.spec.id.0);
    let views = deploys
        .iter()
        .map(|stored| DeployView::new(&stored.deploy, now))
        .collect();
    Ok(Json(Page::new(views, limit, last)))
}

/// One deploy: its plan, where it is, approvals and how it ended.
#[utoipa::path(get, path = "/api/v1/deploys/{id}", tag = "deploys",
    params(("id" = i64, Path)),
    responses((status = 200, body = DeployView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get_deploy(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<DeployView>> {
    Ok(Json(read_deploy(&state, DeployId(id)).await?))
}

/// `?after=&limit=` of an event listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventParams {
    /// Only events after this sequence number (the `next` of the previous page).
    after: Option<i64>,
    /// Page size, 1 to 1000 (default 200).
    limit: Option<i64>,
}

/// A deploy's events, oldest first. `next` is always the position to poll from.
#[utoipa::path(get, path = "/api/v1/deploys/{id}/events", tag = "deploys",
    params(("id" = i64, Path), EventParams),
    responses((status = 200, body = Page<EventView>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn deploy_events(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<i64>,
    Query(params): Query<EventParams>,
) -> ApiResult<Json<Page<EventView>>> {
    load(&state, id).await?;
    let after = params.after.unwrap_or(0);
    let limit = params.limit.unwrap_or(200).clamp(1, 1000);
    let events = state.store.events(Some(DeployId(id)), after, limit).await?;
    let next = events.last().map_or(after, |e| e.seq);
    Ok(Json(Page {
        items: events.iter().map(Into::into).collect(),
        next: Some(next),
    }))
}

/// What an operator action may carry.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionBody {
    /// Why: required to abort or roll back.
    reason: Option<String>,
}

/// Writes the intent and waits (bounded) for the engine to apply or refuse it.
async fn act(state: &AppState, id: i64, input: Input) -> ApiResult<(StatusCode, Json<ActionView>)> {
    let stored = load(state, id).await?;
    if let Some(ending) = &stored.deploy.progress.ending {
        return Err(ApiError::conflict(
            "deploy_finished",
            format!(
                "deploy {id} has already finished ({})",
                ending.result.name()
            ),
        )
        .with_hint(match ending.result {
            DeployResult::Succeeded => format!(
                "to undo it: slipway rollback {} --env {}",
                stored.deploy.spec.service, stored.deploy.spec.environment
            ),
            _ => "start a new deploy with `slipway deploy`".to_owned(),
        }));
    }
    let now = state.clock.now();
    let intent = state.store.submit_intent(DeployId(id), &input, now).await?;
    let deadline = tokio::time::Instant::now() + state.settings.intent_wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let status = state.store.intent_status(intent).await?;
        if let Some(status) = status.filter(|s| s.consumed_at.is_some()) {
            if let Some(rejection) = status.rejection {
                let status = match rejection.code {
                    RejectionCode::Forbidden => StatusCode::FORBIDDEN,
                    RejectionCode::Conflict => StatusCode::CONFLICT,
                    RejectionCode::Invalid => StatusCode::BAD_REQUEST,
                };
                return Err(
                    ApiError::new(status, "rejected", rejection.message).with_hint(rejection.hint)
                );
            }
            let deploy = read_deploy(state, DeployId(id)).await?;
            let view = ActionView {
                status: "applied".to_owned(),
                intent: Some(intent),
                deploy,
            };
            return Ok((StatusCode::OK, Json(view)));
        }
        if tokio::time::Instant::now() >= deadline {
            let deploy = read_deploy(state, DeployId(id)).await?;
            let view = ActionView {
                status: "pending".to_owned(),
                intent: Some(intent),
                deploy,
            };
            return Ok((StatusCode::ACCEPTED, Json(view)));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn required_reason(body: Option<Body<ActionBody>>, doing: &str) -> ApiResult<String> {
    body.and_then(|Body(b)| b.reason)
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("reason_required", format!("{doing} needs a reason")).with_hint(
                "say why in `reason` (CLI: --reason \"…\"); it goes into the audit trail",
            )
        })
}

/// What an approver saw: an approval is refused unless it matches the deploy as stored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveBody {
    /// The deploy the approver reviewed; an approval for another deploy is refused (an
    /// approval cannot be replayed onto another deploy).
    deploy: Option<i64>,
    /// The artifact digest the approver reviewed (`binding.artifact` of the deploy).
    artifact: Option<String>,
    /// The config hash the approver reviewed.
    config: Option<String>,
    /// The plan hash the approver reviewed.
    plan: Option<String>,
}

/// Approves a deploy, bound to its artifact, config and plan: send the `binding` you reviewed
/// (the CLI does), and the approval is refused if the deploy no longer matches it. Needs the
/// approver role and a person other than the requester.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/approve", tag = "actions",
    params(("id" = i64, Path)),
    request_body = ApproveBody,
    responses((status = 200, body = ActionView), (status = 202, body = ActionView),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Option<Body<ApproveBody>>,
) -> ApiResult<(StatusCode, Json<ActionView>)> {
    // Which roles may approve is the environment's policy; `decide` checks it.
    caller.require(Role::Deployer, "approving a deploy")?;
    let stored = load(&state, id).await?;
    let seen = body.map(|Body(b)| b).unwrap_or_default();
    let mut binding = stored.deploy.spec.binding();
    binding.deploy = seen.deploy.map_or(binding.deploy, DeployId);
    binding.artifact = seen.artifact.unwrap_or(binding.artifact);
    binding.config = seen.config.unwrap_or(binding.config);
    binding.plan = seen.plan.unwrap_or(binding.plan);
    let input = Input::Approve {
        by: caller.actor(),
        binding,
    };
    act(&state, id, input).await
}

/// Acknowledges the go/no-go announcement.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/go", tag = "actions",
    params(("id" = i64, Path)),
    responses((status = 200, body = ActionView), (status = 202, body = ActionView),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn go(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<ActionView>)> {
    caller.require(Role::Deployer, "acknowledging a go/no-go")?;
    act(&state, id, Input::Go { by: caller.actor() }).await
}

/// Confirms a break-glass deploy as the second person: its preflight refusals of windows,
/// freezes, staffing, provenance and checklists are then recorded as overridden. Needs the
/// approver role and someone other than the requester.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/break-glass", tag = "actions",
    params(("id" = i64, Path)),
    responses((status = 200, body = ActionView), (status = 202, body = ActionView),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn break_glass(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<ActionView>)> {
    caller.require(Role::Approver, "confirming break-glass")?;
    act(&state, id, Input::BreakGlass { by: caller.actor() }).await
}

/// Confirms scale-in: the old fleet may be drained and stopped.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/confirm", tag = "actions",
    params(("id" = i64, Path)),
    responses((status = 200, body = ActionView), (status = 202, body = ActionView),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<ActionView>)> {
    caller.require(Role::Deployer, "confirming scale-in")?;
    act(&state, id, Input::ConfirmScaleIn { by: caller.actor() }).await
}

/// Aborts a deploy: whatever it started is undone.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/abort", tag = "actions",
    params(("id" = i64, Path)),
    request_body = ActionBody,
    responses((status = 200, body = ActionView), (status = 202, body = ActionView),
        (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn abort(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Option<Body<ActionBody>>,
) -> ApiResult<(StatusCode, Json<ActionView>)> {
    caller.require(Role::Deployer, "aborting a deploy")?;
    let reason = required_reason(body, "aborting")?;
    let input = Input::Abort {
        by: caller.actor(),
        reason,
    };
    act(&state, id, input).await
}

/// Rolls a deploy in progress back to what ran before it.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/rollback", tag = "actions",
    params(("id" = i64, Path)),
    request_body = ActionBody,
    responses((status = 200, body = ActionView), (status = 202, body = ActionView),
        (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn rollback_deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Option<Body<ActionBody>>,
) -> ApiResult<(StatusCode, Json<ActionView>)> {
    caller.require(Role::Deployer, "rolling back")?;
    let reason = required_reason(body, "rolling back")?;
    let input = Input::Rollback {
        by: caller.actor(),
        reason,
    };
    act(&state, id, input).await
}

/// A rollback of what runs in an environment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackBody {
    service: String,
    environment: String,
    /// The release to go back to: one that succeeded there before. The last one that ran
    /// before the current one when absent.
    to: Option<String>,
    reason: String,
}

/// Rolls back a service in an environment, at any time. A deploy in progress there is undone;
/// otherwise a fast-tracked rollback deploy of an earlier release starts, from the stored
/// artifact and config it ran with (no source control, no CI). A rollback already under way is
/// returned as it is, never undone by a second request.
#[utoipa::path(post, path = "/api/v1/rollbacks", tag = "actions",
    request_body = RollbackBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request return the first one's rollback deploy")),
    responses(
        (status = 201, description = "A rollback deploy was created", body = ActionView),
        (status = 200, description = "The deploy in progress is being undone, or a rollback is already under way", body = ActionView),
        (status = 202, description = "The undo is recorded; the engine has not applied it yet", body = ActionView),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Nothing to roll back to", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<RollbackBody>,
) -> ApiResult<(StatusCode, Json<ActionView>)> {
    caller.require(Role::Deployer, "rolling back")?;
    let service = service(&state, &body.service)?;
    let environment = environment(&state, &body.environment)?;
    let reason = Some(body.reason)
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("reason_required", "rolling back needs a reason")
                .with_hint("say why with --reason \"…\"; it goes into the audit trail")
        })?;
    if let Some(active) = state
        .store
        .active_deploy(&service.name, &environment.name)
        .await?
    {
        let stored = load(&state, active.0).await?;
        if stored.deploy.spec.purpose == Purpose::Rollback
            || stored.deploy.progress.unwind.is_some()
        {
            // Undoing a rollback would bring the bad release back.
            let view = ActionView {
                status: "already_rolling_back".to_owned(),
                intent: None,
                deploy: DeployView::new(&stored.deploy, state.clock.now()),
            };
            return Ok((StatusCode::OK, Json(view)));
        }
        if body.to.is_some() {
            return Err(ApiError::conflict(
                "deploy_in_progress",
                format!(
                    "deploy {active} of {} to {} is in progress; it rolls back to what ran before it",
                    service.name, environment.name
                ),
            )
            .with_hint("leave out --to to undo it, then roll back further once it has ended"));
        }
        let input = Input::Rollback {
            by: caller.actor(),
            reason,
        };
        return act(&state, active.0, input).await;
    }
    check_drivable(&state, &environment.name, &environment.target)?;
    let current = state
        .store
        .current_release(&service.name, &environment.name)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "nothing_running",
                format!(
                    "nothing of {} runs in {} yet",
                    service.name, environment.name
                ),
            )
            .with_hint("there is nothing to roll back; deploy a release first")
        })?;
    let current_spec = &current.deploy.spec;
    if current_spec.purpose == Purpose::Rollback && body.to.is_none() {
        return Err(ApiError::conflict(
            "already_rolled_back",
            format!(
                "{} in {} is already a rollback (deploy {}); rolling back again would bring back {}",
                current_spec.release.label,
                environment.name,
                current_spec.id,
                current_spec.previous.as_ref().map_or("the release it replaced", |p| p.label.as_str())
            ),
        )
        .with_hint("name the release to go to with --to RC"));
    }
    let target = rollback_target(&state, &current, body.to.as_deref()).await?;
    // A rollback is fast-tracked past approvals, go, windows and checklists because it goes
    // back; bringing a newer release back that way would dodge them.
    let order = compare_releases(&target.label, &current_spec.release.label);
    if matches!(order, Some(Ordering::Greater | Ordering::Equal)) {
        return Err(ApiError::conflict(
            "rollback_goes_forward",
            format!(
                "{} is not older than {}, which runs in {}; a rollback only goes back",
                target.label, current_spec.release.label, environment.name
            ),
        )
        .with_hint(format!(
            "deploy it with its approvals and checks: `slipway deploy {} --env {} --release {}`",
            service.name,
            environment.name,
            target.label.trim_start_matches("RC ")
        )));
    }
    check_cached(
        &state,
        &service.name,
        &target.label,
        &target.version,
        &target.artifact,
    )?;
    let origin = idempotency_origin(&caller, &headers)?;
    let now = state.clock.now();
    let requested_by = caller.user.name.clone();
    let (id, created) = state
        .store
        .create_deploy(None, origin.as_deref(), now, |id| {
            let regions = current_spec.plan.regions();
            let spec = DeploySpec::rollback(
                id,
                current_spec,
                target,
                &regions,
                requested_by,
                reason,
                now,
            );
            start(spec, now)
        })
        .await?;
    state.store.wake_handle().notify_one();
    let view = ActionView {
        status: "applied".to_owned(),
        intent: None,
        deploy: read_deploy(&state, id).await?,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// The release a rollback goes to: `to` if given, otherwise the newest release that succeeded in
/// the environment before the current one — in both cases as the deploy that ran it had it
/// (artifact and config), so nothing needs rebuilding. A release that never succeeded there is
/// refused: it would skip approvals, go and migrations as a fast-tracked rollback.
async fn rollback_target(
    state: &AppState,
    current: &StoredDeploy,
    to: Option<&str>,
) -> ApiResult<ReleaseRef> {
    let spec = &current.deploy.spec;
    let choice = match to {
        Some(text) => {
            let wanted = find_release(state, &spec.service, text).await?;
            if wanted.label == spec.release.label {
                return Err(ApiError::conflict(
                    "already_running",
                    format!("{} already runs in {}", wanted.label, spec.environment),
                )
                .with_hint("name an earlier release with --to"));
            }
            Some(wanted.label)
        }
        None => None,
    };
    let wanted = match &choice {
        Some(label) => ReleaseChoice::Named(label),
        None => ReleaseChoice::Other(&spec.release.label),
    };
    let found = state
        .store
        .previous_success(&spec.service, &spec.environment, spec.id, wanted)
        .await?;
    match (found, choice) {
        (Some(stored), _) => Ok(stored.deploy.spec.release),
        (None, Some(label)) => Err(ApiError::conflict(
            "not_run_here",
            format!("{label} never ran successfully in {} before {}", spec.environment, spec.release.label),
        )
        .with_hint("a rollback goes back to a release that ran there; to ship another one, use `slipway deploy --release`")),
        (None, None) => Err(ApiError::conflict(
            "no_earlier_release",
            format!("no release ran in {} before {}", spec.environment, spec.release.label),
        )
        .with_hint("there is nothing earlier to go back to; deploy a fixed release instead")),
    }
}

/// Whether `caller` can answer what `deploy` waits for at `now` — an approval (the step's
/// roles, not the requester, not an author when it says so, not already approved by them), a
/// go (by someone other than the requester when the step says so), a scale-in confirmation or a
/// break-glass confirmation — by the rules `decide` applies when the action arrives. `false`
/// when it waits for nothing a person gives.
pub(crate) fn can_answer(
    deploy: &slipway_core::deploy::Deploy,
    caller: &Caller,
    now: slipway_core::time::Time,
) -> bool {
    use slipway_core::decide::{may_approve, may_confirm_break_glass, may_go};
    use slipway_core::deploy::{Phase, WaitingFor};

    let by = caller.actor();
    let Phase::Waiting { for_what, .. } = deploy.phase(now) else {
        return false;
    };
    match for_what {
        WaitingFor::Approval { .. } => {
            may_approve(deploy, &by).is_ok()
                && !deploy
                    .progress
                    .approvals
                    .iter()
                    .any(|a| a.by == by.name && a.expires_at > now)
        }
        WaitingFor::Go => may_go(deploy, &by).is_ok(),
        WaitingFor::ScaleInConfirmation => by.role.can_deploy(),
        WaitingFor::BreakGlass => may_confirm_break_glass(deploy, &by).is_ok(),
        WaitingFor::Slot { .. } => false,
    }
}
