//! Services and environments (from `slipway.toml`), artifacts and releases (from the store).

use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use slipway_core::config::{EnvironmentConfig, ServiceConfig};
use slipway_core::deploy::Role;
use slipway_core::plan::ReleaseKind;
use slipway_store::{ArtifactPut, ArtifactRecord, NewRelease, Page as StorePage, ReleaseRecord};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::blobs::BlobError;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};
use crate::views::{
    ArtifactPushView, ArtifactView, EnvironmentView, Page, PlacementView, PoolView, ReleaseView,
    ServiceView,
};

/// `?service=&before=&limit=` of the artifact and release listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this service's.
    service: Option<String>,
    /// Only entries older than this cursor (the `next` of the previous page).
    before: Option<i64>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<i64>,
}

impl ListParams {
    fn page(&self) -> StorePage {
        StorePage {
            before: self.before,
            limit: self.limit.unwrap_or(50).clamp(1, 1000),
        }
    }
}

/// The service of that name in the config, or a 404 with the closest name (or the names that
/// exist).
pub(crate) fn service<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a ServiceConfig> {
    state.config.service(name).ok_or_else(|| {
        let names: Vec<&str> = state
            .config
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        ApiError::not_found(format!("unknown service `{name}`"))
            .with_hint(name_hint(name, &names, "services"))
    })
}

/// The environment of that name in the config, or a 404 with the closest name (or the names
/// that exist).
pub(crate) fn environment<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a EnvironmentConfig> {
    state.config.environment(name).ok_or_else(|| {
        let names: Vec<&str> = state
            .config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        ApiError::not_found(format!("unknown environment `{name}`")).with_hint(name_hint(
            name,
            &names,
            "environments",
        ))
    })
}

/// "did you mean `idp`?", or the names there are.
fn name_hint(wrong: &str, names: &[&str], what: &str) -> String {
    match slipway_core::config::suggest::closest(wrong, names.iter().copied()) {
        Some(near) => format!("did you mean `{near}`?"),
        None if names.is_empty() => format!("slipway.toml defines no {what}"),
        None => format!("{what} in slipway.toml: {}", names.join(", ")),
    }
}

async fn service_view(state: &AppState, service: &ServiceConfig) -> ApiResult<ServiceView> {
    let mut environments = Vec::new();
    for environment in &state.config.environments {
        let running = state
            .store
            .current_release(&service.name, &environment.name)
            .await?
            .map(|stored| (&stored.deploy.spec.release).into());
        let active = state
            .store
            .active_deploy(&service.name, &environment.name)
            .await?;
        environments.push(PlacementView {
            environment: environment.name.clone(),
            running,
            active_deploy: active.map(|id| id.0),
        });
    }
    Ok(ServiceView {
        name: service.name.clone(),
        pools: service
            .pools
            .iter()
            .map(|(name, pool)| {
                let view = PoolView {
                    count: pool.count,
                    traffic: pool.traffic,
                };
                (name.clone(), view)
            })
            .collect(),
        environments,
    })
}

/// Every service with what runs in each environment.
#[utoipa::path(get, path = "/api/v1/services", tag = "catalog",
    responses((status = 200, body = Vec<ServiceView>)))]
pub(crate) async fn list_services(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let mut views = Vec::new();
    for service in &state.config.services {
        views.push(service_view(&state, service).await?);
    }
    Ok(Json(views))
}

/// One service with what runs in each environment.
#[utoipa::path(get, path = "/api/v1/services/{service}", tag = "catalog",
    params(("service" = String, Path)),
    responses((status = 200, body = ServiceView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get_service(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ServiceView>> {
    let service = service(&state, &name)?;
    Ok(Json(service_view(&state, service).await?))
}

/// Every environment, in promotion order, with the policy its deploys obey.
#[utoipa::path(get, path = "/api/v1/environments", tag = "catalog",
    responses((status = 200, body = Vec<EnvironmentView>)))]
pub(crate) async fn list_environments(
    State(state): State<AppState>,
    _caller: Caller,
) -> Json<Vec<EnvironmentView>> {
    let views = state
        .config
        .environments
        .iter()
        .map(|e| EnvironmentView {
            name: e.name.clone(),
            target: e.target.clone(),
            protected: e.policy.protected,
            regions: e.regions.clone(),
            approvals_required: e.policy.approvals.as_ref().map_or(0, |a| a.required),
            go_no_go: e.policy.go_no_go,
            confirm_scale_in: e.policy.confirm_scale_in,
            bake: e.policy.bake.to_string(),
        })
        .collect();
    Json(views)
}

/// `?service=&version=&commit=` of an artifact upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PushParams {
    service: String,
    /// Unique per service; letters, digits, `.`, `-`, `_`, `+`.
    version: String,
    /// The source commit the artifact was built from (hex).
    commit: Option<String>,
}

fn check_version(version: &str) -> ApiResult<()> {
    let valid = !version.is_empty()
        && version.len() <= 128
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_version",
            format!("version `{version}` is not valid"),
        )
        .with_hint("use 1 to 128 letters, digits, `.`, `-`, `_` or `+`, e.g. 2026.11.23-3f2a9c1"))
    }
}

pub(crate) fn check_commit(commit: &str) -> ApiResult<()> {
    if (7..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_commit",
            format!("commit `{commit}` is not a hexadecimal commit id"),
        )
        .with_hint("pass the full or abbreviated (7+) commit hash, e.g. --commit 3f2a9c1"))
    }
}

/// Uploads an artifact: the body is the file, streamed into content-addressed storage.
/// Pushing the same file again under the same version changes nothing (200); another file under
/// an existing version is refused (409).
#[utoipa::path(post, path = "/api/v1/artifacts", tag = "catalog",
    params(PushParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = ArtifactPushView),
        (status = 200, description = "Already stored under this version", body = ArtifactPushView),
        (status = 409, description = "The version exists with another digest", body = crate::error::ErrorBody),
        (status = 413, description = "Larger than the server's limit", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn push_artifact(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<PushParams>,
    headers: axum::http::HeaderMap,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<ArtifactPushView>)> {
    caller.require(Role::Deployer, "pushing an artifact")?;
    service(&state, &params.service)?;
    check_version(&params.version)?;
    if let Some(commit) = &params.commit {
        check_commit(commit)?;
    }
    let limit = state.settings.max_artifact_size;
    // A declared length over the limit is refused before a byte is read.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let blob = state
        .blobs
        .store(body.into_data_stream(), limit)
        .await
        .map_err(|error| match error {
            BlobError::TooLarge { limit } => too_large(limit),
            BlobError::Interrupted(reason) => ApiError::bad_request(
                "upload_interrupted",
                format!("the upload broke off: {reason}"),
            )
            .with_hint("push it again; nothing was kept"),
            io @ BlobError::Io { .. } => ApiError::internal(&io),
        })?;
    let record = ArtifactRecord {
        id: 0,
        service: params.service,
        version: params.version,
        digest: blob.digest,
        size: i64::try_from(blob.size).unwrap_or(i64::MAX),
        commit: params.commit.map(|c| c.to_ascii_lowercase()),
        pushed_by: caller.user.name.clone(),
        pushed_at: state.clock.now(),
    };
    let (status, created, record) = match state.store.record_artifact(&record).await? {
        ArtifactPut::Stored(record) => (StatusCode::CREATED, true, record),
        ArtifactPut::AlreadyStored(record) => (StatusCode::OK, false, record),
    };
    let artifact = ArtifactView::from(&record);
    Ok((status, Json(ArtifactPushView { created, artifact })))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "artifact_too_large",
        format!("the artifact is larger than the server's limit of {limit} bytes"),
    )
    .with_hint("raise the server's --max-artifact-size, or make the artifact smaller")
}

/// Artifacts, newest first.
#[utoipa::path(get, path = "/api/v1/artifacts", tag = "catalog",
    params(ListParams),
    responses((status = 200, body = Page<ArtifactView>)))]
pub(crate) async fn list_artifacts(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<ArtifactView>>> {
    if let Some(name) = &params.service {
        service(&state, name)?;
    }
    let page = params.page();
    let records = state
        .store
        .artifacts(params.service.as_deref(), &page)
        .await?;
    let last = records.last().map(|r| r.id);
    let views = records.iter().map(Into::into).collect();
    Ok(Json(Page::new(views, page.limit, last)))
}

/// One artifact of a service.
#[utoipa::path(get, path = "/api/v1/artifacts/{service}/{version}", tag = "catalog",
    params(("service" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = ArtifactView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get_artifact(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<ArtifactView>> {
    service(&state, &name)?;
    match state.store.artifact(&name, &version).await? {
        Some(record) => Ok(Json((&record).into())),
        None => Err(
            ApiError::not_found(format!("no artifact of {name} with version `{version}`"))
                .with_hint(format!(
                    "push it with `slipway artifact push FILE --service {name} --version {version}`"
                )),
        ),
    }
}

/// A release to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewReleaseBody {
    service: String,
    /// The version of a pushed artifact.
    version: String,
    /// `full` (default), `patch`, `off-cycle` or `config`.
    #[schema(value_type = Option<String>)]
    kind: Option<ReleaseKind>,
    /// Why; required for an off-cycle release.
    reason: Option<String>,
    /// Who wrote the release's commits; an environment may refuse their approvals.
    #[serde(default)]
    authors: Vec<String>,
}

/// Numbers a release of a pushed artifact: `RC N` (next full number), or `RC N.M` for a patch.
#[utoipa::path(post, path = "/api/v1/releases", tag = "catalog",
    request_body = NewReleaseBody,
    responses(
        (status = 201, body = ReleaseView),
        (status = 404, description = "Unknown service or artifact", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn create_release(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewReleaseBody>,
) -> ApiResult<(StatusCode, Json<ReleaseView>)> {
    caller.require(Role::Deployer, "creating a release")?;
    service(&state, &body.service)?;
    let kind = body.kind.unwrap_or(ReleaseKind::Full);
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if kind == ReleaseKind::OffCycle && reason.is_none() {
        return Err(ApiError::bad_request(
            "reason_required",
            "an off-cycle release needs a reason",
        )
        .with_hint("say why it cannot wait for the train: --reason \"…\""));
    }
    let new = NewRelease {
        service: body.service,
        version: body.version,
        kind,
        created_by: caller.user.name.clone(),
        reason,
        authors: body
            .authors
            .into_iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        reconfigures: None,
    };
    let record = state.store.create_release(&new, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json((&record).into())))
}

/// Releases, newest first.
#[utoipa::path(get, path = "/api/v1/releases", tag = "catalog",
    params(ListParams),
    responses((status = 200, body = Page<ReleaseView>)))]
pub(crate) async fn list_releases(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<ReleaseView>>> {
    if let Some(name) = &params.service {
        service(&state, name)?;
    }
    let page = params.page();
    let records = state
        .store
        .releases(params.service.as_deref(), &page)
        .await?;
    let last = records.last().map(|r| r.id);
    let views = records.iter().map(Into::into).collect();
    Ok(Json(Page::new(views, page.limit, last)))
}

/// `RC 12`, `rc12`, `12` and `12.1` all name a release; the store's label is `RC 12`/`RC 12.1`.
pub(crate) fn release_label(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let number = trimmed
        .strip_prefix("RC")
        .or_else(|| trimmed.strip_prefix("rc"))
        .unwrap_or(trimmed)
        .trim();
    let (major, minor) = match number.split_once('.') {
        Some((major, minor)) => (major, Some(minor)),
        None => (number, None),
    };
    let major: u64 = major.parse().ok()?;
    match minor.map(str::parse::<u64>) {
        Some(Err(_)) => None,
        // `12.0` is `RC 12`: patches count from 1.
        Some(Ok(0)) | None => Some(format!("RC {major}")),
        Some(Ok(minor)) => Some(format!("RC {major}.{minor}")),
    }
}

/// The release `text` names, or a 404 saying which exist.
pub(crate) async fn find_release(
    state: &AppState,
    service: &str,
    text: &str,
) -> ApiResult<ReleaseRecord> {
    let label = release_label(text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_release",
            format!("`{text}` is not a release number"),
        )
        .with_hint("name a release as `RC 12`, `12` or `12.1`")
    })?;
    match state.store.release(service, &label).await? {
        Some(record) => Ok(record),
        None => {
            let latest = state.store.latest_release(service).await?;
            let hint = match latest {
                Some(latest) => format!("the newest release of {service} is {}", latest.label),
                None => format!(
                    "{service} has no release yet: slipway release create {service} --version V"
                ),
            };
            Err(ApiError::not_found(format!("{service} has no release {label}")).with_hint(hint))
        }
    }
}

/// One release of a service, by number (`12`, `12.1`).
#[utoipa::path(get, path = "/api/v1/releases/{service}/{number}", tag = "catalog",
    params(("service" = String, Path), ("number" = String, Path, description = "`12` or `12.1`")),
    responses((status = 200, body = ReleaseView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get_release(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, number)): Path<(String, String)>,
) -> ApiResult<Json<ReleaseView>> {
    service(&state, &name)?;
    let record = find_release(&state, &name, &number).await?;
    Ok(Json((&record).into()))
}
