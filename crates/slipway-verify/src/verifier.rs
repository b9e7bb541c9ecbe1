//! Runs a plan's checks: reads metric sources, probes the new instances, runs commands, and
//! compares the new release with its baseline. The engine judges the measurements.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{BoxFuture, FutureExt, join_all};
use slipway_core::analysis::{
    Classification, CompareRule, Measurement, MeasurementKind, Metric, Unit, compare, threshold,
};
use slipway_core::config::{CheckKind, MetricSourceKind, Threshold};
use slipway_core::deploy::ReleaseRef;
use slipway_engine::plugin::{self, CheckRequest};

use crate::prometheus::Prometheus;
use crate::source::{Source, Subject};
use crate::{command, probe};

/// Longest one check may take; below the engine's bound on a whole verification, so the other
/// checks' measurements are kept. Probe and command timeouts are capped below it in the config.
pub const MAX_CHECK_TIME: Duration = Duration::from_secs(50);

/// The sources and clients checks use. Cheap to share.
pub struct Verifier {
    /// slipway's proxy, for `local` environments.
    proxy: Option<Arc<dyn Source>>,
    /// The `[prometheus]` server, when configured.
    prometheus: Option<Arc<Prometheus>>,
    http: reqwest::Client,
    /// Where command checks run: the directory of `slipway.toml`.
    workdir: Option<PathBuf>,
}

impl Verifier {
    pub fn new(
        proxy: Option<Arc<dyn Source>>,
        prometheus: Option<Arc<Prometheus>>,
        workdir: Option<PathBuf>,
    ) -> Verifier {
        Verifier {
            proxy,
            prometheus,
            // Probes go straight to instances on this machine or the fleet's network, and a
            // redirect is an answer to judge, not a place to go.
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            workdir,
        }
    }

    fn source(&self, kind: MetricSourceKind) -> Result<&dyn Source, &'static str> {
        match kind {
            MetricSourceKind::Proxy => self
                .proxy
                .as_deref()
                .ok_or("slipway's proxy does not serve this environment"),
            MetricSourceKind::Prometheus => self
                .prometheus
                .as_deref()
                .map(|p| p as &dyn Source)
                .ok_or("no [prometheus] is configured"),
        }
    }
}

fn subject<'a>(request: &'a CheckRequest<'a>, release: &'a ReleaseRef) -> Subject<'a> {
    Subject {
        service: &request.scope.service,
        environment: &request.scope.environment,
        region: request.scope.region.as_deref(),
        release: &release.label,
        version: &release.version,
    }
}

/// A measurement without data, saying why.
fn no_data(
    name: &str,
    kind: MeasurementKind,
    source: &str,
    unit: Unit,
    why: String,
) -> Measurement {
    let mut m = Measurement::new(name, kind, source, unit, Classification::NoData);
    m.note = why;
    m
}

#[async_trait]
impl plugin::Verifier for Verifier {
    async fn measure(&self, request: &CheckRequest<'_>) -> Vec<Measurement> {
        let spec = request.spec;
        let analysis = &spec.analysis;
        let window = request.window;
        let new = subject(request, request.release);
        let env = command::check_env(request);
        // Every check at once: a slow probe or command must not delay what the proxy already
        // knows (the rollback clock runs).
        let mut checks: Vec<BoxFuture<'_, Measurement>> = Vec::new();
        for check in &spec.checks {
            let name = check.name.as_str();
            match &check.kind {
                CheckKind::Metric { metric, min, max } => {
                    let (metric, min, max) = (
                        *metric,
                        min.map(Threshold::value),
                        max.map(Threshold::value),
                    );
                    let source = self.source(analysis.source);
                    checks.push(
                        async move {
                            let source = match source {
                                Ok(source) => source,
                                Err(why) => {
                                    return no_data(
                                        name,
                                        MeasurementKind::Threshold,
                                        "none",
                                        metric.unit(),
                                        why.to_owned(),
                                    );
                                }
                            };
                            match source.read(&new, metric, window).await {
                                // The request rate is judged on its value: no requests is 0/s.
                                Ok(reading) => threshold(
                                    name,
                                    source.name(),
                                    metric.unit(),
                                    reading.value,
                                    reading.requests.filter(|_| metric != Metric::RequestRate),
                                    analysis.min_requests,
                                    min,
                                    max,
                                ),
                                Err(error) => no_data(
                                    name,
                                    MeasurementKind::Threshold,
                                    source.name(),
                                    metric.unit(),
                                    format!("{} could not answer: {error}", source.name()),
                                ),
                            }
                        }
                        .boxed(),
                    );
                }
                CheckKind::Query { query, min, max } => {
                    let unit = min.or(*max).map_or(Unit::Number, Threshold::unit);
                    let (min, max) = (min.map(Threshold::value), max.map(Threshold::value));
                    let prometheus = self.prometheus.as_deref();
                    checks.push(
                        async move {
                            let Some(prometheus) = prometheus else {
                                return no_data(
                                    name,
                                    MeasurementKind::Threshold,
                                    "prometheus",
                                    unit,
                                    "no [prometheus] is configured".to_owned(),
                                );
                            };
                            match prometheus.query_value(query, &new, window).await {
                                Ok(value) => {
                                    threshold(name, "prometheus", unit, value, None, 0, min, max)
                                }
                                Err(error) => no_data(
                                    name,
                                    MeasurementKind::Threshold,
                                    "prometheus",
                                    unit,
                                    format!("prometheus could not answer: {error}"),
                                ),
                            }
                        }
                        .boxed(),
                    );
                }
                CheckKind::Probe {
                    path,
                    status,
                    body,
                    timeout,
                } => {
                    let timeout = Duration::from_millis(timeout.as_millis());
                    checks.push(
                        probe::probe(
                            &self.http,
                            name,
                            request.endpoints,
                            path,
                            *status,
                            body.as_deref(),
                            timeout,
                        )
                        .boxed(),
                    );
                }
                CheckKind::Command {
                    command: text,
                    timeout,
                } => {
                    let timeout = Duration::from_millis(timeout.as_millis());
                    let (env, workdir) = (&env, self.workdir.as_deref());
                    checks.push(command::run_check(name, text, timeout, env, workdir).boxed());
                }
            }
        }
        if let Some(baseline) = request.baseline {
            let old = subject(request, baseline);
            let step = Duration::from_millis(analysis.step.as_millis());
            for comparison in &analysis.compare {
                let rule = CompareRule {
                    metric: comparison.metric,
                    allowed_increase: comparison.allowed_increase,
                    confidence: analysis.confidence,
                    min_samples: analysis.min_samples,
                };
                let source = self.source(analysis.source);
                checks.push(
                    async move {
                        let name = rule.metric.name();
                        let unit = rule.metric.unit();
                        let source = match source {
                            Ok(source) => source,
                            Err(why) => {
                                let kind = MeasurementKind::Comparison;
                                return no_data(name, kind, "none", unit, why.to_owned());
                            }
                        };
                        let (canary, baseline) = futures_util::join!(
                            source.samples(&new, rule.metric, window, step),
                            source.samples(&old, rule.metric, window, step)
                        );
                        match (canary, baseline) {
                            (Ok(canary), Ok(baseline)) => {
                                compare(source.name(), &rule, &canary, &baseline)
                            }
                            (Err(error), _) | (_, Err(error)) => no_data(
                                name,
                                MeasurementKind::Comparison,
                                source.name(),
                                unit,
                                format!("{} could not answer: {error}", source.name()),
                            ),
                        }
                    }
                    .boxed(),
                );
            }
        }
        // Each check is bounded on its own, so one that hangs costs only its own data: what the
        // others measured (a failing error rate, say) still counts.
        let bounded = checks.into_iter().map(|check| async move {
            match tokio::time::timeout(MAX_CHECK_TIME, check).await {
                Ok(measurement) => measurement,
                Err(_) => no_data(
                    "check",
                    MeasurementKind::Command,
                    "verifier",
                    Unit::Number,
                    format!(
                        "a check did not answer within {}s",
                        MAX_CHECK_TIME.as_secs()
                    ),
                ),
            }
        });
        join_all(bounded).await
    }
}
