//! slipway's own proxy as a metric source.
//!
//! The proxy counts every response per route and version (`Proxy::snapshot`), cumulatively. A
//! sampler task keeps a short history of those counts, one snapshot per `resolution`, so that a
//! window is the difference between the counts now (read fresh at the moment of the check) and
//! the last snapshot taken before the window began. A check therefore never waits for a sample:
//! a bad version is visible as soon as its requests are answered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use slipway_core::analysis::Metric;
use slipway_proxy::{Proxy, Route, VersionSnapshot};
use slipway_targets::route_for;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::source::{Reading, Source, SourceError, Subject};

/// Reads slipway's proxy. Dropping it stops its sampler.
pub struct ProxySource {
    inner: Arc<Inner>,
    sampler: JoinHandle<()>,
}

struct Inner {
    proxy: Proxy,
    history: Mutex<HashMap<(Route, String), History>>,
    keep: Duration,
}

/// One version's snapshots on one route with the moment each was taken, oldest first.
type History = VecDeque<(Instant, VersionSnapshot)>;

impl Drop for ProxySource {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

impl ProxySource {
    /// Starts sampling every route of `proxy` every `resolution`, keeping `keep` of history
    /// (the longest analysis window plus a step is enough). Must run inside a Tokio runtime.
    pub fn start(proxy: Proxy, resolution: Duration, keep: Duration) -> ProxySource {
        let inner = Arc::new(Inner {
            proxy,
            history: Mutex::default(),
            keep: keep + resolution,
        });
        inner.sample(Instant::now());
        let sampling = inner.clone();
        let sampler = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(resolution);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                sampling.sample(Instant::now());
            }
        });
        ProxySource { inner, sampler }
    }

    /// The counts of `subject`'s version now and, for each of `starts`, the last snapshot taken
    /// at or before it with the moment it was taken (`None` where the history does not reach
    /// back that far, which means the version had no requests then).
    fn counts(
        &self,
        subject: &Subject<'_>,
        starts: &[Instant],
    ) -> (
        Option<VersionSnapshot>,
        Vec<Option<(Instant, VersionSnapshot)>>,
    ) {
        let route = route_for(subject.environment, subject.service, subject.region);
        let now = self.inner.proxy.snapshot(&route).remove(subject.release);
        let history = self
            .inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let past = history.get(&(route, subject.release.to_owned()));
        let at = |start: Instant| {
            let past = past?;
            let index = past.partition_point(|(taken, _)| *taken <= start);
            index.checked_sub(1).map(|i| past[i].clone())
        };
        (now, starts.iter().map(|&start| at(start)).collect())
    }
}

impl Inner {
    fn sample(&self, now: Instant) {
        let mut taken: BTreeMap<(Route, String), VersionSnapshot> = BTreeMap::new();
        for route in self.proxy.routes() {
            for (version, snapshot) in self.proxy.snapshot(&route) {
                taken.insert((route.clone(), version), snapshot);
            }
        }
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        // Versions that left every route are forgotten with their history.
        history.retain(|key, _| taken.contains_key(key));
        for (key, snapshot) in taken {
            let entries = history.entry(key).or_default();
            entries.push_back((now, snapshot));
            while entries
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > self.keep)
            {
                entries.pop_front();
            }
        }
    }
}

/// What happened between `earlier` and `later` (all of `later` without an earlier snapshot, or
/// when the counts went down because the version left the route and came back).
fn between(later: &VersionSnapshot, earlier: Option<&VersionSnapshot>) -> VersionSnapshot {
    match earlier {
        Some(earlier) if earlier.requests <= later.requests => later.since(earlier),
        _ => later.clone(),
    }
}

/// `metric` of a window's counts; `None` without requests (except the request rate, which is
/// zero then).
fn value_of(window: &VersionSnapshot, metric: Metric, seconds: f64) -> Option<f64> {
    let millis = |d: Duration| d.as_secs_f64() * 1000.0;
    match metric {
        Metric::RequestRate => Some(window.requests as f64 / seconds.max(1e-3)),
        Metric::ErrorRate => window.error_rate(),
        Metric::LatencyMean => (window.latency.count > 0)
            .then(|| millis(window.latency.sum) / window.latency.count as f64),
        Metric::LatencyP50 | Metric::LatencyP90 | Metric::LatencyP99 => {
            let q = metric.quantile().unwrap_or(0.99);
            window.latency.quantile(q).map(millis)
        }
    }
}

#[async_trait]
impl Source for ProxySource {
    fn name(&self) -> &'static str {
        "proxy"
    }

    async fn read(
        &self,
        subject: &Subject<'_>,
        metric: Metric,
        window: Duration,
    ) -> Result<Reading, SourceError> {
        let now = Instant::now();
        let start = now.checked_sub(window).unwrap_or(now);
        let (latest, mut past) = self.counts(subject, &[start]);
        let Some(latest) = latest else {
            return Ok(Reading {
                value: None,
                requests: Some(0),
            });
        };
        let past = past.pop().flatten();
        // A rate is over the time the counts really span: from the snapshot before the window.
        let seconds = past
            .as_ref()
            .map_or(window, |(taken, _)| now.duration_since(*taken))
            .as_secs_f64();
        let counts = between(&latest, past.as_ref().map(|(_, snapshot)| snapshot));
        Ok(Reading {
            value: value_of(&counts, metric, seconds),
            requests: Some(counts.requests),
        })
    }

    async fn samples(
        &self,
        subject: &Subject<'_>,
        metric: Metric,
        window: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, SourceError> {
        if step.is_zero() {
            return Err(SourceError::new("the analysis step must be longer than 0s"));
        }
        let now = Instant::now();
        let steps = (window.as_secs_f64() / step.as_secs_f64()).floor() as u32;
        // Boundaries oldest first; the last step ends now.
        let starts: Vec<Instant> = (1..=steps)
            .rev()
            .filter_map(|k| now.checked_sub(step * k))
            .collect();
        let (latest, past) = self.counts(subject, &starts);
        let Some(latest) = latest else {
            return Ok(Vec::new());
        };
        let past: Vec<Option<&VersionSnapshot>> = past
            .iter()
            .map(|taken| taken.as_ref().map(|(_, snapshot)| snapshot))
            .collect();
        let ends = past.iter().skip(1).copied().chain([Some(&latest)]);
        let mut samples = Vec::new();
        for (start, end) in past.iter().zip(ends) {
            let Some(end) = end else { continue };
            let counts = between(end, *start);
            if counts.requests == 0 {
                continue;
            }
            if let Some(value) = value_of(&counts, metric, step.as_secs_f64()) {
                samples.push(value);
            }
        }
        Ok(samples)
    }
}
