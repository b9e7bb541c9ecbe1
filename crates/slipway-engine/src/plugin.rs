//! The plugin traits: what a target driver, a verifier and a notifier must do.
//!
//! All are object-safe and used as `Arc<dyn …>`. Every method that changes the world receives
//! the effect's idempotency key: calling it twice with the same key must do nothing new (a crash
//! between the call and the recording of its result makes the engine call it again).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use slipway_core::analysis::Measurement;
use slipway_core::deploy::{Deploy, EffectKey, Notice, ReleaseRef, Split};
use slipway_core::plan::VerificationSpec;
use slipway_core::time::{Span, Time};

/// Where an effect applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub service: String,
    pub environment: String,
    pub region: Option<String>,
}

/// A request to make `pools` instances of `release` run healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRequest {
    pub release: ReleaseRef,
    /// Desired instances per pool. The target tops up to this count; it never duplicates.
    pub pools: BTreeMap<String, u32>,
    /// Fail if the instances are not healthy within this time.
    pub timeout: Span,
}

/// What a target sees running.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub fleets: Vec<FleetState>,
}

/// The instances of one release in one region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetState {
    /// The release's label (fleets are named by it).
    pub release: String,
    pub desired: u32,
    pub running: u32,
    pub healthy: u32,
    /// Base URLs of the healthy instances that serve HTTP (`http://127.0.0.1:41234`), for
    /// probes; empty when the target does not know them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

/// A failure reported by a plugin, with a message fit for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    pub message: String,
}

impl PluginError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The driver that runs instances for an environment.
#[async_trait]
pub trait Target: Send + Sync {
    /// Ensure the requested instances run and are healthy; returns a short description.
    async fn launch(
        &self,
        key: &EffectKey,
        scope: &Scope,
        request: &LaunchRequest,
    ) -> Result<String, PluginError>;

    /// Route the scope's traffic as `split` says. Only healthy instances may receive traffic.
    async fn set_traffic(
        &self,
        key: &EffectKey,
        scope: &Scope,
        split: &Split,
    ) -> Result<String, PluginError>;

    /// Drain and stop every instance of `release` in the scope.
    async fn stop(
        &self,
        key: &EffectKey,
        scope: &Scope,
        release: &ReleaseRef,
    ) -> Result<String, PluginError>;

    /// Run a one-off task (`migrate`) with `release`, once.
    async fn run_task(
        &self,
        key: &EffectKey,
        scope: &Scope,
        task: &str,
        release: &ReleaseRef,
    ) -> Result<String, PluginError>;

    /// What runs in the scope now.
    async fn observe(&self, scope: &Scope) -> Result<Observation, PluginError>;
}

/// What one verification check of a new fleet looks at.
#[derive(Clone, Debug)]
pub struct CheckRequest<'a> {
    pub key: &'a EffectKey,
    pub scope: &'a Scope,
    /// The release being verified.
    pub release: &'a ReleaseRef,
    /// The release it is compared with, while that one still takes traffic beside it.
    pub baseline: Option<&'a ReleaseRef>,
    /// `canary`, `bake` or `post-verify`.
    pub step: &'a str,
    /// The plan's checks and analysis settings.
    pub spec: &'a VerificationSpec,
    /// How far back to look from `now`: the analysis window, but not before the step's traffic
    /// began (zero right at its start).
    pub window: Duration,
    /// Base URLs of the release's healthy instances.
    pub endpoints: &'a [String],
    pub now: Time,
}

/// Runs the checks of a verification (metric sources, probes, commands) and measures them.
/// Never fails: a check that cannot run is a measurement with no data.
#[async_trait]
pub trait Verifier: Send + Sync {
    async fn measure(&self, request: &CheckRequest<'_>) -> Vec<Measurement>;
}

/// Somewhere notices are sent (chat, webhooks).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(
        &self,
        key: &EffectKey,
        deploy: &Deploy,
        notice: &Notice,
    ) -> Result<(), PluginError>;
}

/// Where targets read the values of a pinned config version (`ReleaseRef::config_version`) when
/// they start instances or tasks. The values exist in clear only in the caller's memory: a
/// target passes them to the processes it starts and never logs, records or returns them.
#[async_trait]
pub trait ConfigSource: Send + Sync {
    /// Version `version` of `service`'s config in `environment`, decrypted.
    async fn values(
        &self,
        service: &str,
        environment: &str,
        version: u64,
    ) -> Result<slipway_core::settings::Values, PluginError>;
}

/// A check run in preflight before a deploy acts (windows, provenance, checklists…).
#[async_trait]
pub trait PreflightCheck: Send + Sync {
    /// Short name for events, messages and the receipt: `schedule`, `provenance`, `checklist`.
    fn name(&self) -> &'static str;

    /// `Ok(detail)`: passed, with what was verified (recorded in the deploy's events, so a
    /// receipt can show it). `Err` refuses the deploy.
    async fn check(&self, deploy: &Deploy, now: Time) -> Result<String, Refusal>;
}

/// Why a preflight check refuses a deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong, naming the rule (`prod is frozen: winter break (2026-12-21..2027-01-04)`).
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// When the check would pass by itself (a window opens, a freeze ends): the deploy waits
    /// until then unless it was asked to fail at once. `None` when only a person can fix it.
    pub until: Option<Time>,
    /// Whether a confirmed break-glass override lets the deploy through: policy (windows,
    /// freezes, staffing, provenance, checklists), never safety (locks, release order).
    pub overridable: bool,
}
