//! Per-version metrics of every route: responses by status class, a latency histogram and the
//! requests in flight. Exposed in Prometheus text (`Proxy::metrics_text`) and as numbers the
//! engine can compare between versions (`Proxy::snapshot`).
//!
//! The request path touches only atomics: each route's table holds the handles of its versions,
//! resolved once when the table is built, so no label set is hashed per request.

use std::array;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::route::Route;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    service: String,
    /// Empty for a service with a single region.
    region: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    service: String,
    region: String,
    version: String,
    /// `2xx`, `5xx`…: bounded cardinality, and what error rates are computed from.
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    service: String,
    region: String,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The proxy's metrics and their registry.
pub(crate) struct Metrics {
    registry: Registry,
    responses: Family<ClassLabels, Counter>,
    latency: Family<VersionLabels, Latency>,
    in_flight: Family<VersionLabels, Gauge>,
    unrouted: Family<RouteLabels, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("slipway_proxy");
        let responses = Family::<ClassLabels, Counter>::default();
        registry.register(
            "responses",
            "Responses by route, version and status class; 502 and 504 count against the version that failed",
            responses.clone(),
        );
        let latency = Family::<VersionLabels, Latency>::default();
        registry.register(
            "response_duration_seconds",
            "Time from a request's arrival to its response headers, by route and version",
            latency.clone(),
        );
        let in_flight = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "in_flight_requests",
            "Requests sent to a version whose response has not ended",
            in_flight.clone(),
        );
        let unrouted = Family::<RouteLabels, Counter>::default();
        registry.register(
            "unrouted",
            "Requests answered 503 because no version had a healthy backend",
            unrouted.clone(),
        );
        Metrics {
            registry,
            responses,
            latency,
            in_flight,
            unrouted,
        }
    }

    /// The handles of one version of a route (created on first use).
    pub(crate) fn version(&self, route: &Route, version: &str) -> VersionMetrics {
        let labels = version_labels(route, version);
        VersionMetrics {
            responses: array::from_fn(|class| {
                self.responses
                    .get_or_create_owned(&class_labels(&labels, CLASSES[class]))
            }),
            latency: self.latency.get_or_create_owned(&labels),
            in_flight: self.in_flight.get_or_create_owned(&labels),
        }
    }

    /// Forgets a version that left the route, so label sets do not pile up deploy after deploy.
    pub(crate) fn remove_version(&self, route: &Route, version: &str) {
        let labels = version_labels(route, version);
        for class in CLASSES {
            self.responses.remove(&class_labels(&labels, class));
        }
        self.latency.remove(&labels);
        self.in_flight.remove(&labels);
    }

    pub(crate) fn unrouted(&self, route: &Route) -> Counter {
        self.unrouted.get_or_create_owned(&RouteLabels {
            service: route.service.clone(),
            region: route.region.clone().unwrap_or_default(),
        })
    }

    /// Every metric in the Prometheus text format (OpenMetrics flavour).
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn version_labels(route: &Route, version: &str) -> VersionLabels {
    VersionLabels {
        service: route.service.clone(),
        region: route.region.clone().unwrap_or_default(),
        version: version.to_owned(),
    }
}

fn class_labels(labels: &VersionLabels, class: &'static str) -> ClassLabels {
    ClassLabels {
        service: labels.service.clone(),
        region: labels.region.clone(),
        version: labels.version.clone(),
        class,
    }
}

/// One version's metric handles; clones share the counts.
#[derive(Clone, Debug)]
pub(crate) struct VersionMetrics {
    responses: [Counter; 5],
    latency: Latency,
    pub(crate) in_flight: Gauge,
}

impl VersionMetrics {
    pub(crate) fn record(&self, status: StatusCode, elapsed: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.responses[class].inc();
        self.latency.observe(elapsed);
    }

    pub(crate) fn snapshot(&self) -> VersionSnapshot {
        let [
            informational,
            success,
            redirection,
            client_error,
            server_error,
        ] = self.responses.each_ref().map(Counter::get);
        let classes = ClassCounts {
            informational,
            success,
            redirection,
            client_error,
            server_error,
        };
        VersionSnapshot::new(
            classes,
            self.in_flight.get().max(0) as u64,
            self.latency.read(),
        )
    }
}

/// Responses counted by status class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub informational: u64,
    pub success: u64,
    pub redirection: u64,
    pub client_error: u64,
    pub server_error: u64,
}

impl ClassCounts {
    fn total(&self) -> u64 {
        self.informational + self.success + self.redirection + self.client_error + self.server_error
    }
}

/// One version's numbers on one route, counted since the proxy started (or since the version
/// joined the route). Compare two snapshots with `since` to get a window.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionSnapshot {
    /// Responses sent, 502/504 from the proxy included.
    pub requests: u64,
    /// Of which 5xx (the backend's or the proxy's 502/504).
    pub errors_5xx: u64,
    pub by_class: ClassCounts,
    /// Requests whose response has not ended yet.
    pub in_flight: u64,
    /// Time to the response headers.
    pub latency: LatencySnapshot,
    /// Estimated from the histogram (linear within a bucket); `None` without requests.
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
}

impl VersionSnapshot {
    fn new(by_class: ClassCounts, in_flight: u64, latency: LatencySnapshot) -> VersionSnapshot {
        VersionSnapshot {
            requests: by_class.total(),
            errors_5xx: by_class.server_error,
            by_class,
            in_flight,
            p50: latency.quantile(0.5),
            p99: latency.quantile(0.99),
            latency,
        }
    }

    /// The share of requests that got a 5xx; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors_5xx as f64 / self.requests as f64)
    }

    /// What happened between `earlier` (a snapshot of the same version) and this one.
    pub fn since(&self, earlier: &VersionSnapshot) -> VersionSnapshot {
        let (a, b) = (&self.by_class, &earlier.by_class);
        let by_class = ClassCounts {
            informational: a.informational.saturating_sub(b.informational),
            success: a.success.saturating_sub(b.success),
            redirection: a.redirection.saturating_sub(b.redirection),
            client_error: a.client_error.saturating_sub(b.client_error),
            server_error: a.server_error.saturating_sub(b.server_error),
        };
        let latency = LatencySnapshot {
            count: self.latency.count.saturating_sub(earlier.latency.count),
            sum: self.latency.sum.saturating_sub(earlier.latency.sum),
            buckets: self
                .latency
                .buckets
                .iter()
                .zip(&earlier.latency.buckets)
                .map(|(&(bound, now), &(_, then))| (bound, now.saturating_sub(then)))
                .collect(),
        };
        VersionSnapshot::new(by_class, self.in_flight, latency)
    }
}

/// A latency histogram's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencySnapshot {
    pub count: u64,
    pub sum: Duration,
    /// `(upper bound, cumulative count)`; the last bound is `Duration::MAX` (`+Inf`).
    pub buckets: Vec<(Duration, u64)>,
}

impl LatencySnapshot {
    /// The `q` quantile, interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.buckets.last().map_or(0, |&(_, count)| count);
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut lower = (Duration::ZERO, 0);
        for &(bound, cumulative) in &self.buckets {
            if cumulative as f64 >= rank && cumulative > lower.1 {
                if bound == Duration::MAX {
                    // Above the last finite bound: that bound is all we know.
                    return Some(lower.0);
                }
                let within = (rank - lower.1 as f64) / (cumulative - lower.1) as f64;
                return Some(lower.0 + (bound - lower.0).mul_f64(within.clamp(0.0, 1.0)));
            }
            lower = (bound, cumulative);
        }
        Some(lower.0)
    }
}

/// Upper bounds in microseconds: 100 µs doubling to 13.1 s, then `+Inf`.
const BOUNDS_MICROS: [u64; 18] = {
    let mut bounds = [0; 18];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = 100 << i;
        i += 1;
    }
    bounds
};

/// A lock-free latency histogram with fixed buckets. prometheus-client's `Histogram` takes a
/// mutex per observation and does not expose its buckets, which `snapshot` needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Latency {
    inner: Arc<LatencyInner>,
}

#[derive(Debug, Default)]
struct LatencyInner {
    /// Per bucket, not cumulative; the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Latency {
    fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.inner.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.inner.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn read(&self) -> LatencySnapshot {
        let mut cumulative = 0;
        let buckets = self
            .inner
            .buckets
            .iter()
            .enumerate()
            .map(|(i, count)| {
                cumulative += count.load(Ordering::Relaxed);
                let bound = BOUNDS_MICROS
                    .get(i)
                    .map_or(Duration::MAX, |&micros| Duration::from_micros(micros));
                (bound, cumulative)
            })
            .collect();
        LatencySnapshot {
            count: cumulative,
            sum: Duration::from_micros(self.inner.sum_micros.load(Ordering::Relaxed)),
            buckets,
        }
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .inner
            .buckets
            .iter()
            .enumerate()
            .map(|(i, count)| {
                let bound = BOUNDS_MICROS
                    .get(i)
                    .map_or(f64::INFINITY, |&micros| micros as f64 / 1e6);
                (bound, count.load(Ordering::Relaxed))
            })
            .collect();
        let count = buckets.iter().map(|&(_, count)| count).sum();
        let sum = self.inner.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let latency = Latency::default();
        for _ in 0..50 {
            latency.observe(Duration::from_micros(150)); // (100, 200]
        }
        for _ in 0..50 {
            latency.observe(Duration::from_micros(300)); // (200, 400]
        }
        let snapshot = latency.read();
        assert_eq!(snapshot.count, 100);
        assert_eq!(snapshot.quantile(0.5), Some(Duration::from_micros(200)));
        assert_eq!(snapshot.quantile(0.99), Some(Duration::from_micros(396)));
        assert_eq!(
            LatencySnapshot {
                count: 0,
                sum: Duration::ZERO,
                buckets: vec![]
            }
            .quantile(0.5),
            None
        );
    }
}
