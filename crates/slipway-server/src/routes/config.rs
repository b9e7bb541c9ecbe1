//! Config versions: the settings and secrets of a service in an environment. Every change
//! makes a new immutable version, sealed by the vault before it is stored; a version of a
//! protected environment waits for another engineer's approval before it can be deployed.
//! No answer here carries a secret's value: secrets are shown by a keyed fingerprint.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slipway_core::config::{EnvironmentConfig, ServiceConfig};
use slipway_core::deploy::Role;
use slipway_core::plan::ReleaseKind;
use slipway_core::settings::{
    self, Change, Entry, Finding, Shown, Values, check_key, check_value, diff, format_env_file,
    is_secret,
};
use slipway_secrets::Vault;
use slipway_store::{ConfigVersionRecord, NewConfigVersion, NewRelease, StoreError};
use utoipa::{IntoParams, ToSchema};

use super::catalog::{environment, service};
use super::deploys::{
    ConfigPin, StartDeploy, check_cached, check_drivable, check_idle, check_unlocked,
    idempotency_origin, start_deploy,
};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};
use crate::views::{DeployView, timestamp};

/// A config version as people may see it: plain values in full, secrets by fingerprint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ConfigVersionView {
    service: String,
    environment: String,
    version: u64,
    created_by: String,
    created_at: String,
    message: Option<String>,
    /// Keys that differ from the version before.
    changed: Vec<String>,
    approved_by: Option<String>,
    approved_at: Option<String>,
    /// Whether it waits for another engineer's approval before it can be deployed.
    awaiting_review: bool,
    /// Which master key wraps its data key.
    key_id: String,
    /// `sha256:` of its sealed content.
    digest: String,
    /// Every key: `{"kind": "plain", "value"}` or `{"kind": "secret", "fingerprint"}`.
    #[schema(value_type = Object)]
    values: BTreeMap<String, Shown>,
    /// What breaks the service's rules, if anything.
    #[schema(value_type = Vec<Object>)]
    findings: Vec<Finding>,
    /// How it differs from the version before (on a new version and a diff).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    changes: Vec<Change>,
}

/// A version in a history: no values.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ConfigVersionSummary {
    version: u64,
    created_by: String,
    created_at: String,
    message: Option<String>,
    changed: Vec<String>,
    approved_by: Option<String>,
    awaiting_review: bool,
    /// Whether it is the version the running release pins.
    running: bool,
}

/// How two versions differ.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct DiffView {
    service: String,
    environment: String,
    /// `None`: from no config at all.
    pub(crate) from: Option<u64>,
    to: u64,
    #[schema(value_type = Vec<Object>)]
    pub(crate) changes: Vec<Change>,
    #[schema(value_type = Vec<Object>)]
    pub(crate) findings: Vec<Finding>,
}

/// One value to set: `"value"`, or `{"value", "secret"?}`. Its `Debug` never shows the value.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum SetValue {
    Value(String),
    Flagged(FlaggedValue),
}

/// A value with whether it is a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlaggedValue {
    value: String,
    /// Whether it is a secret. By default: a secret if the key was one in the version before,
    /// or its rule in slipway.toml says so, or its name looks like a secret's (`*_KEY`,
    /// `*TOKEN*`, `*PASSWORD*`…). `false` makes a key plain unless its rule says `secret = true`.
    secret: Option<bool>,
}

impl std::fmt::Debug for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetValue(<value>)")
    }
}

impl SetValue {
    fn into_parts(self) -> (String, Option<bool>) {
        match self {
            SetValue::Value(value) => (value, None),
            SetValue::Flagged(FlaggedValue { value, secret }) => (value, secret),
        }
    }
}

/// A change that makes a new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeBody {
    #[serde(default)]
    set: BTreeMap<String, SetValue>,
    #[serde(default)]
    unset: Vec<String>,
    /// Why, for the history and reviewers.
    message: Option<String>,
    /// The version the change was made from: refused when another was written since.
    base: Option<u64>,
    /// Start from no keys instead of the newest version (an env file import that replaces).
    #[serde(default)]
    replace: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionParams {
    /// A version number; the newest when absent.
    version: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DiffParams {
    /// From this version; by default the one the running release pins (or the one before `to`).
    from: Option<u64>,
    /// To this version; the newest by default.
    to: Option<u64>,
}

/// A value to fingerprint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FingerprintBody {
    value: String,
}

impl std::fmt::Debug for FingerprintBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintBody(<value>)")
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct FingerprintView {
    fingerprint: String,
}

/// The outcome of a key rotation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct RotationView {
    key_id: String,
    rewrapped: u64,
}

/// A config recycle to start.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecycleBody {
    /// The version to roll out; the newest by default.
    version: Option<u64>,
    reason: Option<String>,
}

/// The vault, or an error saying how to configure a master key.
pub(crate) fn vault(state: &AppState) -> ApiResult<&Vault> {
    state.vault.as_deref().ok_or_else(|| {
        ApiError::conflict(
            "no_master_key",
            "config versions need a master key, and this server has none",
        )
        .with_hint(
            "write one with `slipway config keygen --out master.key`, add [secrets] key_file = \
             \"master.key\" to slipway.toml (or set SLIPWAY_MASTER_KEY), and restart slipway serve",
        )
    })
}

/// The service and environment the path names, and the vault (each a 404 or 409 with a hint).
fn place<'a>(
    state: &'a AppState,
    service_name: &str,
    environment_name: &str,
) -> ApiResult<(&'a ServiceConfig, &'a EnvironmentConfig, &'a Vault)> {
    Ok((
        service(state, service_name)?,
        environment(state, environment_name)?,
        vault(state)?,
    ))
}

/// Opens a stored version; a key problem is the operator's to fix, so it is said (it names
/// key ids, never key material or values).
pub(crate) fn open(vault: &Vault, record: &ConfigVersionRecord) -> ApiResult<Values> {
    vault.open_values(record).map_err(|error| {
        ApiError::conflict(
            "config_unreadable",
            format!(
                "config version {} of {} in {} cannot be opened: {error}",
                record.number, record.service, record.environment
            ),
        )
        .with_hint(KEY_HINT)
    })
}

fn shown(vault: &Vault, values: &Values) -> BTreeMap<String, Shown> {
    let fingerprint = |_: &str, value: &str| vault.fingerprint(value);
    values
        .iter()
        .map(|(key, entry)| (key.clone(), Shown::of(key, entry, &fingerprint)))
        .collect()
}

fn changes(vault: &Vault, before: &Values, after: &Values) -> Vec<Change> {
    diff(before, after, &|_, value| vault.fingerprint(value))
}

fn protected(state: &AppState, environment: &str) -> bool {
    state
        .config
        .environment(environment)
        .is_some_and(|env| env.policy.protected)
}

fn view(
    state: &AppState,
    vault: &Vault,
    record: &ConfigVersionRecord,
    values: &Values,
    findings: Vec<Finding>,
) -> ConfigVersionView {
    ConfigVersionView {
        service: record.service.clone(),
        environment: record.environment.clone(),
        version: record.number,
        created_by: record.created_by.clone(),
        created_at: timestamp(record.created_at),
        message: record.message.clone(),
        changed: record.changed.clone(),
        approved_by: record.approved_by.clone(),
        approved_at: record.approved_at.map(timestamp),
        awaiting_review: awaiting_review(state, record),
        key_id: record.sealed.key_id.clone(),
        digest: record.digest.clone(),
        values: shown(vault, values),
        findings,
        changes: Vec::new(),
    }
}

/// Whether a version of a protected environment still needs another engineer's approval.
/// (Versions are written unapproved everywhere; only a protected environment waits for one.)
fn awaiting_review(state: &AppState, record: &ConfigVersionRecord) -> bool {
    protected(state, &record.environment) && !record.reviewed()
}

async fn version_or_latest(
    state: &AppState,
    service: &str,
    environment: &str,
    version: Option<u64>,
) -> ApiResult<ConfigVersionRecord> {
    let found = match version {
        Some(number) => {
            state
                .store
                .config_version(service, environment, number)
                .await?
        }
        None => {
            state
                .store
                .latest_config_version(service, environment)
                .await?
        }
    };
    found.ok_or_else(|| {
        let what = match version {
            Some(number) => format!("{service} has no config version {number} in {environment}"),
            None => format!("{service} has no config in {environment} yet"),
        };
        ApiError::not_found(what).with_hint(format!(
            "`slipway config history {service} --env {environment}` lists the versions; \
             `slipway config set {service} --env {environment} KEY=VALUE` makes one"
        ))
    })
}

/// The version the release running in the environment pins, if any.
async fn running_version(
    state: &AppState,
    service: &str,
    environment: &str,
) -> ApiResult<Option<u64>> {
    Ok(state
        .store
        .current_release(service, environment)
        .await?
        .and_then(|stored| stored.deploy.spec.release.config_version))
}

async fn findings(
    state: &AppState,
    vault: &Vault,
    service: &ServiceConfig,
    environment: &str,
    values: &Values,
) -> ApiResult<Vec<Finding>> {
    vault
        .findings(&state.config, service, environment, values)
        .await
        .map_err(|error| match error {
            slipway_secrets::VaultError::Key(error) => ApiError::conflict(
                "config_unreadable",
                format!("another config version cannot be opened to compare values: {error}"),
            )
            .with_hint(KEY_HINT),
            other => ApiError::internal(&other),
        })
}

const KEY_HINT: &str = "start slipway with the master key it was sealed under ([secrets] previous_key_files keeps old keys readable)";

/// A 422 listing what breaks the rules.
fn invalid(code: &'static str, what: String, findings: &[Finding]) -> ApiError {
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    let hints: Vec<&str> = findings.iter().map(|f| f.hint.as_str()).collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        format!("{what}: {}", messages.join("; ")),
    )
    .with_hint(hints.join("; "))
}

/// A config version of a service in an environment (the newest by default).
#[utoipa::path(get, path = "/api/v1/config/{service}/{environment}", tag = "config",
    params(("service" = String, Path), ("environment" = String, Path), VersionParams),
    responses(
        (status = 200, body = ConfigVersionView),
        (status = 404, description = "Unknown service, environment or version", body = crate::error::ErrorBody),
        (status = 409, description = "No master key configured", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn get_config(
    State(state): State<AppState>,
    _caller: Caller,
    Path((service_name, environment_name)): Path<(String, String)>,
    Query(params): Query<VersionParams>,
) -> ApiResult<Json<ConfigVersionView>> {
    let (service, environment, vault) = place(&state, &service_name, &environment_name)?;
    let record =
        version_or_latest(&state, &service.name, &environment.name, params.version).await?;
    let values = open(vault, &record)?;
    let found = findings(&state, vault, service, &environment.name, &values).await?;
    Ok(Json(view(&state, vault, &record, &values, found)))
}

/// The versions of a service's config in an environment, newest first, without values.
#[utoipa::path(get, path = "/api/v1/config/{service}/{environment}/versions", tag = "config",
    params(("service" = String, Path), ("environment" = String, Path)),
    responses((status = 200, body = Vec<ConfigVersionSummary>)))]
pub(crate) async fn list_versions(
    State(state): State<AppState>,
    _caller: Caller,
    Path((service_name, environment_name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<ConfigVersionSummary>>> {
    let service = service(&state, &service_name)?;
    let environment = environment(&state, &environment_name)?;
    let running = running_version(&state, &service.name, &environment.name).await?;
    let records = state
        .store
        .config_versions(&service.name, &environment.name)
        .await?;
    Ok(Json(
        records
            .iter()
            .map(|record| ConfigVersionSummary {
                version: record.number,
                created_by: record.created_by.clone(),
                created_at: timestamp(record.created_at),
                message: record.message.clone(),
                changed: record.changed.clone(),
                approved_by: record.approved_by.clone(),
                awaiting_review: awaiting_review(&state, record),
                running: running == Some(record.number),
            })
            .collect(),
    ))
}

/// Sets and unsets keys: a new version, checked against the service's rules and the values
/// other services must not share. In a protected environment it then awaits review.
#[utoipa::path(post, path = "/api/v1/config/{service}/{environment}", tag = "config",
    params(("service" = String, Path), ("environment" = String, Path)),
    request_body = ChangeBody,
    responses(
        (status = 201, description = "The new version, with how it differs from the one before", body = ConfigVersionView),
        (status = 400, description = "A key or value that cannot be kept", body = crate::error::ErrorBody),
        (status = 409, description = "Nothing changes, or another version was written since `base`", body = crate::error::ErrorBody),
        (status = 422, description = "The values break the service's rules", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn change_config(
    State(state): State<AppState>,
    caller: Caller,
    Path((service_name, environment_name)): Path<(String, String)>,
    Body(body): Body<ChangeBody>,
) -> ApiResult<(StatusCode, Json<ConfigVersionView>)> {
    caller.require(Role::Deployer, "changing config")?;
    let (service, environment, vault) = place(&state, &service_name, &environment_name)?;
    let latest = state
        .store
        .latest_config_version(&service.name, &environment.name)
        .await?;
    let number = latest.as_ref().map(|record| record.number);
    if let Some(base) = body.base
        && Some(base) != number
    {
        return Err(ApiError::conflict(
            "config_changed",
            format!(
                "version {} of {} in {} was written since version {base}",
                number.unwrap_or(0),
                service.name,
                environment.name
            ),
        )
        .with_hint("look at it (`slipway config get`), then make your change again"));
    }
    let before = match &latest {
        Some(record) => open(vault, record)?,
        None => Values::new(),
    };
    let message = body.message.clone();
    let after = apply(service, &environment.name, &before, body)?;
    let changed = changes(vault, &before, &after);
    if changed.is_empty() && latest.is_some() {
        return Err(ApiError::conflict(
            "no_change",
            format!(
                "nothing changes: version {} of {} in {} already holds these values",
                number.unwrap_or(0),
                service.name,
                environment.name
            ),
        )
        .with_hint("`slipway config get` shows what is set"));
    }
    let found = findings(&state, vault, service, &environment.name, &after).await?;
    if !found.is_empty() {
        return Err(invalid(
            "config_invalid",
            format!("the change breaks the rules of {}", service.name),
            &found,
        ));
    }
    let next = number.unwrap_or(0) + 1;
    let (sealed, digest) = vault.seal(&service.name, &environment.name, next, &after);
    let new = NewConfigVersion {
        service: service.name.clone(),
        environment: environment.name.clone(),
        sealed,
        digest,
        changed: changed.iter().map(|c| c.key.clone()).collect(),
        by: caller.user.name.clone(),
        message: message.filter(|m| !m.trim().is_empty()),
        approved: false,
        parent: Some(number.unwrap_or(0)),
    };
    let record = match state
        .store
        .create_config_version(&new, state.clock.now())
        .await
    {
        Ok(record) => record,
        Err(StoreError::AlreadyExists { .. }) => {
            return Err(ApiError::conflict(
                "config_changed",
                format!(
                    "another version of {} in {} was written while this one was made",
                    service.name, environment.name
                ),
            )
            .with_hint("make your change again"));
        }
        Err(other) => return Err(other.into()),
    };
    let mut answer = view(&state, vault, &record, &after, Vec::new());
    answer.changes = changed;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `before` with `body`'s keys set and unset: each key and value checked, each secret flag
/// decided (a secret stays one unless `secret: false` says otherwise).
fn apply(
    service: &ServiceConfig,
    environment: &str,
    before: &Values,
    body: ChangeBody,
) -> ApiResult<Values> {
    let mut after = if body.replace {
        Values::new()
    } else {
        before.clone()
    };
    for key in &body.unset {
        if after.remove(key).is_none() {
            return Err(ApiError::bad_request(
                "unknown_key",
                format!("{} has no key `{key}` in {environment}", service.name),
            )
            .with_hint(format!(
                "keys set now: {}",
                if before.is_empty() {
                    "none".to_owned()
                } else {
                    before.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            )));
        }
    }
    if body.set.is_empty() && body.unset.is_empty() && !body.replace {
        return Err(
            ApiError::bad_request("empty_change", "the change sets and unsets nothing")
                .with_hint("name keys to set (KEY=VALUE) or to unset"),
        );
    }
    for (key, set) in body.set {
        let (value, flag) = set.into_parts();
        check_key(&key).map_err(|problem| {
            ApiError::bad_request("invalid_key", problem)
                .with_hint("keys are environment variable names, e.g. QUEUE_NAME")
        })?;
        check_value(&key, &value).map_err(|problem| {
            ApiError::bad_request("invalid_value", problem)
                .with_hint("keep files out of config; store a path or URL to them instead")
        })?;
        let rule = service.config.keys.get(&key).and_then(|r| r.secret);
        // A secret stays one unless a person says otherwise: omitting --secret when changing
        // it must not show the new value to every reviewer.
        let secret = match (flag, rule) {
            (Some(false), Some(true)) => {
                return Err(ApiError::bad_request(
                    "secret_required",
                    format!("`{key}` is a secret by the rules of {}", service.name),
                )
                .with_hint("set it without --plain; slipway.toml says `secret = true`"));
            }
            (Some(given), _) => given,
            (None, _) => {
                before.get(&key).is_some_and(|entry| entry.secret)
                    || is_secret(&service.config, &key, false)
            }
        };
        after.insert(key, Entry { value, secret });
    }
    Ok(after)
}

/// How two versions differ: each key that changed, plain values in full, secrets by
/// fingerprint. By default from what runs to the newest version.
#[utoipa::path(get, path = "/api/v1/config/{service}/{environment}/diff", tag = "config",
    params(("service" = String, Path), ("environment" = String, Path), DiffParams),
    responses((status = 200, body = DiffView)))]
pub(crate) async fn diff_versions(
    State(state): State<AppState>,
    _caller: Caller,
    Path((service_name, environment_name)): Path<(String, String)>,
    Query(params): Query<DiffParams>,
) -> ApiResult<Json<DiffView>> {
    let (service, environment, vault) = place(&state, &service_name, &environment_name)?;
    let to = version_or_latest(&state, &service.name, &environment.name, params.to).await?;
    let from = match params.from {
        Some(number) => Some(number),
        None => match running_version(&state, &service.name, &environment.name).await? {
            Some(running) if running != to.number => Some(running),
            _ => to.number.checked_sub(1).filter(|n| *n > 0),
        },
    };
    let before = match from {
        Some(number) => {
            let record =
                version_or_latest(&state, &service.name, &environment.name, Some(number)).await?;
            open(vault, &record)?
        }
        None => Values::new(),
    };
    let after = open(vault, &to)?;
    let found = findings(&state, vault, service, &environment.name, &after).await?;
    Ok(Json(DiffView {
        service: service.name.clone(),
        environment: environment.name.clone(),
        from,
        to: to.number,
        changes: changes(vault, &before, &after),
        findings: found,
    }))
}

/// Whether `caller` may approve a config version written by `author` (`None`: whoever wrote
/// it): the approver role, and not its author.
pub(crate) fn may_approve_version(caller: &Caller, author: Option<&str>) -> ApiResult<()> {
    caller.require(Role::Approver, "approving config")?;
    if author == Some(caller.user.name.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "self_approval",
            "you wrote this config version; another engineer must review it",
        )
        .with_hint("ask someone with the approver role to approve it"));
    }
    Ok(())
}

/// Approves a version for deploys: by an approver other than its author, and only while it
/// meets the rules.
#[utoipa::path(post, path = "/api/v1/config/{service}/{environment}/versions/{version}/approve", tag = "config",
    params(("service" = String, Path), ("environment" = String, Path), ("version" = u64, Path)),
    responses(
        (status = 200, body = ConfigVersionView),
        (status = 403, description = "Not an approver, or the version's author", body = crate::error::ErrorBody),
        (status = 409, description = "Already approved", body = crate::error::ErrorBody),
        (status = 422, description = "It breaks the rules", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn approve_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((service_name, environment_name, number)): Path<(String, String, u64)>,
) -> ApiResult<Json<ConfigVersionView>> {
    may_approve_version(&caller, None)?;
    let (service, environment, vault) = place(&state, &service_name, &environment_name)?;
    let record = version_or_latest(&state, &service.name, &environment.name, Some(number)).await?;
    may_approve_version(&caller, Some(&record.created_by)).map_err(|error| {
        error.with_hint(format!(
            "ask someone with the approver role: slipway config approve {} --env {} --version {number}",
            service.name, environment.name
        ))
    })?;
    if let Some(by) = &record.approved_by {
        return Err(ApiError::conflict(
            "already_approved",
            format!("config version {number} was approved by {by}"),
        )
        .with_hint("it can be deployed"));
    }
    let values = open(vault, &record)?;
    let found = findings(&state, vault, service, &environment.name, &values).await?;
    if !found.is_empty() {
        return Err(invalid(
            "config_invalid",
            format!(
                "config version {number} breaks the rules of {}",
                service.name
            ),
            &found,
        ));
    }
    let approved = state
        .store
        .approve_config_version(
            &service.name,
            &environment.name,
            number,
            &caller.user.name,
            state.clock.now(),
        )
        .await?;
    Ok(Json(view(&state, vault, &approved, &values, Vec::new())))
}

/// A version as an env file: plain values as `KEY=value`, each secret as a comment with its
/// fingerprint (a secret's value never leaves the server).
#[utoipa::path(get, path = "/api/v1/config/{service}/{environment}/export", tag = "config",
    params(("service" = String, Path), ("environment" = String, Path), VersionParams),
    responses((status = 200, description = "An env file", body = String, content_type = "text/plain")))]
pub(crate) async fn export(
    State(state): State<AppState>,
    _caller: Caller,
    Path((service_name, environment_name)): Path<(String, String)>,
    Query(params): Query<VersionParams>,
) -> ApiResult<impl IntoResponse> {
    let (service, environment, vault) = place(&state, &service_name, &environment_name)?;
    let record =
        version_or_latest(&state, &service.name, &environment.name, params.version).await?;
    let values = open(vault, &record)?;
    let text = format!(
        "# {} in {}, config version {}\n{}",
        service.name,
        environment.name,
        record.number,
        format_env_file(&values, &|_, value| vault.fingerprint(value))
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// The fingerprint of a value, to confirm it is the one a version holds without showing it.
#[utoipa::path(post, path = "/api/v1/config/fingerprint", tag = "config",
    request_body = FingerprintBody,
    responses((status = 200, body = FingerprintView)))]
pub(crate) async fn fingerprint(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<FingerprintBody>,
) -> ApiResult<Json<FingerprintView>> {
    // Whoever may set values may check one; readers could otherwise test guesses.
    caller.require(Role::Deployer, "fingerprinting a value")?;
    let vault = vault(&state)?;
    Ok(Json(FingerprintView {
        fingerprint: vault.fingerprint(&body.value),
    }))
}

/// Re-wraps every stored data key under the current master key; the values stay as they are.
/// Afterwards the old key can be removed from `[secrets] previous_key_files`.
#[utoipa::path(post, path = "/api/v1/config/rotate-key", tag = "config",
    responses((status = 200, body = RotationView)))]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<RotationView>> {
    caller.require(Role::Admin, "rotating the master key")?;
    let vault = vault(&state)?;
    let rewrapped = vault
        .rotate(&caller.user.name, state.clock.now())
        .await
        .map_err(|error| match error {
            slipway_secrets::VaultError::Store(StoreError::Invalid { message, hint }) => {
                ApiError::conflict("rotation_failed", message).with_hint(hint)
            }
            other => ApiError::conflict("rotation_failed", other.to_string()).with_hint(
                "every key the versions were sealed under must be configured: the current one \
                 and [secrets] previous_key_files",
            ),
        })?;
    Ok(Json(RotationView {
        key_id: vault.key_id().to_owned(),
        rewrapped,
    }))
}

/// "Config recycle": rolls a config version out with the artifact that runs, as a `config`
/// release that skips `migrate`, through the environment's usual plan.
#[utoipa::path(post, path = "/api/v1/config/{service}/{environment}/recycle", tag = "config",
    params(("service" = String, Path), ("environment" = String, Path)),
    request_body = RecycleBody,
    responses(
        (status = 201, body = DeployView),
        (status = 409, description = "Nothing runs there, or the version already runs", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn recycle(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((service_name, environment_name)): Path<(String, String)>,
    Body(body): Body<RecycleBody>,
) -> ApiResult<(StatusCode, Json<DeployView>)> {
    caller.require(Role::Deployer, "recycling config")?;
    let service = service(&state, &service_name)?;
    let environment = environment(&state, &environment_name)?;
    let origin = idempotency_origin(&caller, &headers)?;
    if let Some(origin) = &origin
        && let Some(id) = state.store.deploy_by_origin(origin).await?
    {
        return Ok((
            StatusCode::OK,
            Json(super::deploys::read_deploy(&state, id).await?),
        ));
    }
    let running = state
        .store
        .current_release(&service.name, &environment.name)
        .await?
        .map(|stored| stored.deploy.spec.release)
        .ok_or_else(|| {
            ApiError::conflict(
                "nothing_runs",
                format!("{} does not run in {} yet", service.name, environment.name),
            )
            .with_hint(format!(
                "deploy a release first: slipway deploy {} --env {}",
                service.name, environment.name
            ))
        })?;
    let record = version_or_latest(&state, &service.name, &environment.name, body.version).await?;
    if running.config_version == Some(record.number) {
        return Err(ApiError::conflict(
            "config_running",
            format!(
                "config version {} already runs in {} with {}",
                record.number, environment.name, running.label
            ),
        )
        .with_hint(format!(
            "change it first: slipway config set {} --env {} KEY=VALUE",
            service.name, environment.name
        )));
    }
    // Refused before a release is numbered for it: nothing is left behind.
    check_drivable(&state, &environment.name, &environment.target)?;
    check_cached(
        &state,
        &service.name,
        &running.label,
        &running.version,
        &running.artifact,
    )?;
    check_unlocked(&state, &service.name, &environment.name).await?;
    check_idle(&state, &service.name, &environment.name).await?;
    let (version, hash) =
        pin_config(&state, service, &environment.name, Some(record.number)).await?;
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    let release = state
        .store
        .create_release(
            &NewRelease {
                service: service.name.clone(),
                version: running.version.clone(),
                kind: ReleaseKind::Config,
                created_by: caller.user.name.clone(),
                reason: reason.clone(),
                authors: Vec::new(),
                reconfigures: Some(running.label.clone()),
            },
            state.clock.now(),
        )
        .await?;
    let started = start_deploy(
        &state,
        &caller,
        StartDeploy {
            service,
            environment,
            release,
            config: ConfigPin::Pinned { version, hash },
            origin,
            reason,
            wait_for_slot: true,
            break_glass: false,
        },
    )
    .await?;
    Ok(started)
}

/// The config a new deploy pins: the version asked for, or the newest — reviewed where the
/// environment is protected and meeting the rules — and the hash approvals are bound to
/// (the service's settings in slipway.toml and the version's sealed content).
pub(crate) async fn pin_config(
    state: &AppState,
    service: &ServiceConfig,
    environment: &str,
    version: Option<u64>,
) -> ApiResult<(Option<u64>, String)> {
    let settings_hash = super::deploys::config_hash(service);
    let record = match version {
        Some(number) => {
            Some(version_or_latest(state, &service.name, environment, Some(number)).await?)
        }
        None => {
            state
                .store
                .latest_config_version(&service.name, environment)
                .await?
        }
    };
    let Some(record) = record else {
        let found = settings::validate(&service.config, &Values::new());
        if !found.is_empty() {
            return Err(invalid(
                "config_invalid",
                format!("{} has no config in {environment}", service.name),
                &found,
            ));
        }
        return Ok((None, settings_hash));
    };
    let vault = vault(state)?;
    if awaiting_review(state, &record) {
        return Err(ApiError::conflict(
            "config_unreviewed",
            format!(
                "config version {} of {} in {environment} (by {}) awaits review",
                record.number, service.name, record.created_by
            ),
        )
        .with_hint(format!(
            "another engineer approves it (`slipway config approve {} --env {environment} --version {}`), or deploy a reviewed version with --config-version N",
            service.name, record.number
        )));
    }
    let values = open(vault, &record)?;
    let found = findings(state, vault, service, environment, &values).await?;
    if !found.is_empty() {
        return Err(invalid(
            "config_invalid",
            format!(
                "config version {} of {} breaks its rules",
                record.number, service.name
            ),
            &found,
        ));
    }
    let pinned = format!("{settings_hash}\0{}", record.digest);
    let hash = format!("sha256:{}", hex::encode(Sha256::digest(pinned)));
    Ok((Some(record.number), hash))
}
