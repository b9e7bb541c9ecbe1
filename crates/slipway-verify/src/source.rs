//! What a metric source answers: a metric's value over a window, or one sample per step.

use std::time::Duration;

use async_trait::async_trait;
use slipway_core::analysis::Metric;

/// The release a source is asked about: one service in one environment (and region).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject<'a> {
    pub service: &'a str,
    pub environment: &'a str,
    pub region: Option<&'a str>,
    /// The release's label, `RC 12`: how slipway's proxy names its version.
    pub release: &'a str,
    /// The artifact's version string.
    pub version: &'a str,
}

impl Subject<'_> {
    /// The region label of slipway's proxy route for this subject: `ENV` or `ENV/REGION`.
    pub fn route_label(&self) -> String {
        match self.region {
            Some(region) => format!("{}/{region}", self.environment),
            None => self.environment.to_owned(),
        }
    }
}

/// A metric's value over a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// `None` when there was nothing to measure (no requests, no series).
    pub value: Option<f64>,
    /// The requests behind the value, where the source knows them.
    pub requests: Option<u64>,
}

/// A source that could not answer; the check counts it as no data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
}

impl SourceError {
    pub fn new(message: impl Into<String>) -> SourceError {
        SourceError {
            message: message.into(),
        }
    }
}

/// A metric source: slipway's proxy or Prometheus.
#[async_trait]
pub trait Source: Send + Sync {
    /// `proxy` or `prometheus`: shown with every measurement.
    fn name(&self) -> &'static str;

    /// `metric` of `subject` over the last `window`.
    async fn read(
        &self,
        subject: &Subject<'_>,
        metric: Metric,
        window: Duration,
    ) -> Result<Reading, SourceError>;

    /// One value of `metric` per `step` over the last `window`, oldest first; a step without
    /// data (no request in it) is left out rather than counted as zero.
    async fn samples(
        &self,
        subject: &Subject<'_>,
        metric: Metric,
        window: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, SourceError>;
}
