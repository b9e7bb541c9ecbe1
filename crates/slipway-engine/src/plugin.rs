//! The plugin traits: what a target driver, a metric source and a notifier must do.
//!
//! All are object-safe and used as `Arc<dyn …>`. Every method that changes the world receives
//! the effect's idempotency key: calling it twice with the same key must do nothing new (a crash
//! between the call and the recording of its result makes the engine call it again).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use slipway_core::deploy::{Deploy, EffectKey, Notice, ReleaseRef, Split, Verdict};
use slipway_core::time::Span;

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

/// A source of verification results (built-in proxy metrics, Prometheus, probes…).
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// Judge `release` (against `baseline` where there is one) for the step being verified.
    async fn check(
        &self,
        scope: &Scope,
        release: &ReleaseRef,
        baseline: Option<&ReleaseRef>,
        step: &str,
    ) -> Result<(Verdict, String), PluginError>;
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

/// A check run in preflight before a deploy acts (windows, provenance, checklists…).
#[async_trait]
pub trait PreflightCheck: Send + Sync {
    /// `Err` names what is wrong and how to fix it.
    async fn check(&self, deploy: &Deploy) -> Result<(), PluginError>;
}
