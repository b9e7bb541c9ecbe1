//! Analysis math: the numbers a verification check measures and how they become a verdict.
//!
//! Pure like the rest of the core: the metric sources (proxy, Prometheus, probes, commands) live
//! in `slipway-verify` and hand their numbers here. Two kinds of judgement:
//! - a **threshold** compares one value over the analysis window with a limit
//!   (`error_rate <= 1%`); too few requests behind the value is no data, never a pass;
//! - a **comparison** (canary against baseline, in the manner of Kayenta) takes one sample per
//!   analysis step from each side and runs a one-sided Mann-Whitney U test: the canary fails a
//!   metric when it is worse with the configured confidence *and* by more than the allowed
//!   change. Too few samples on either side is no data.
//!
//! [`judge`] turns the measurements into a score (the share of measurements with data that
//! passed) and a verdict: any failed threshold, probe or command fails at once; any measurement
//! without data makes the check inconclusive; otherwise the score decides, with a pass level and
//! a marginal level (between the two the check is inconclusive and runs again).

use serde::{Deserialize, Serialize};

use crate::deploy::Verdict;

/// A metric slipway reads from its own proxy or, with the same meaning, from Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of responses that were 5xx (the proxy's own 502/504 included).
    ErrorRate,
    /// Response time percentiles, to the response headers.
    LatencyP50,
    LatencyP90,
    LatencyP99,
    /// Mean response time.
    LatencyMean,
    /// Responses per second.
    RequestRate,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::ErrorRate,
        Metric::LatencyP50,
        Metric::LatencyP90,
        Metric::LatencyP99,
        Metric::LatencyMean,
        Metric::RequestRate,
    ];

    /// The name written in `slipway.toml` and shown in events.
    pub fn name(self) -> &'static str {
        match self {
            Metric::ErrorRate => "error_rate",
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP90 => "latency_p90",
            Metric::LatencyP99 => "latency_p99",
            Metric::LatencyMean => "latency_mean",
            Metric::RequestRate => "request_rate",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The unit its values are in.
    pub fn unit(self) -> Unit {
        match self {
            Metric::ErrorRate => Unit::Ratio,
            Metric::LatencyP50 | Metric::LatencyP90 | Metric::LatencyP99 | Metric::LatencyMean => {
                Unit::Millis
            }
            Metric::RequestRate => Unit::PerSecond,
        }
    }

    /// The quantile of a latency percentile metric.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Metric::LatencyP50 => Some(0.5),
            Metric::LatencyP90 => Some(0.9),
            Metric::LatencyP99 => Some(0.99),
            _ => None,
        }
    }
}

/// The unit of a measured value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// 0.0–1.0, shown as a percentage.
    Ratio,
    /// Milliseconds.
    Millis,
    /// Per second.
    PerSecond,
    /// A plain number (a custom query's value).
    Number,
}

impl Unit {
    /// `value` for people: `20.0%`, `312 ms`, `41.5/s`, `0.25`.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Ratio => format!("{:.1}%", value * 100.0),
            Unit::Millis if value >= 100.0 => format!("{value:.0} ms"),
            Unit::Millis => format!("{value:.1} ms"),
            Unit::PerSecond => format!("{value:.1}/s"),
            Unit::Number => format!("{value}"),
        }
    }
}

/// What kind of judgement a measurement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementKind {
    /// One value over the window against a `min`/`max`.
    Threshold,
    /// Canary samples against baseline samples (Mann-Whitney U).
    Comparison,
    /// An HTTP request to each new instance with an expected answer.
    Probe,
    /// A command whose exit status is the verdict.
    Command,
    /// The target's view of the new fleet: how many instances are healthy.
    Health,
}

/// How one measurement came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Pass,
    /// Above its `max`, or worse than the baseline by more than allowed (a comparison).
    High,
    /// Below its `min`.
    Low,
    /// A probe or command that failed.
    Fail,
    /// No data, too few requests or samples, or a source that could not answer.
    NoData,
}

impl Classification {
    pub fn name(self) -> &'static str {
        match self {
            Classification::Pass => "pass",
            Classification::High => "high",
            Classification::Low => "low",
            Classification::Fail => "fail",
            Classification::NoData => "no data",
        }
    }

    /// Whether it counts against the check (a measurement with data that did not pass).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Classification::High | Classification::Low | Classification::Fail
        )
    }
}

/// One measurement of a check, with its numbers: recorded as an event, shown by `status`, the
/// API and `--follow`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `error_rate`, `latency_p99`, a query check's name, `probe /login`, `command bin/check`.
    pub name: String,
    pub kind: MeasurementKind,
    /// Where the numbers came from: `proxy`, `prometheus`, `http`, `command`, `target`.
    pub source: String,
    pub outcome: Classification,
    pub unit: Unit,
    /// A threshold's value over the window; a comparison's canary median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// A comparison's baseline median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The limit as written for people: `<= 1.0%`, `>= 5.0/s`, `+20% over baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Requests behind a threshold's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// A comparison's sample counts: canary, baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<(u32, u32)>,
    /// A comparison's one-sided p-value (canary worse than baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// A comparison's Hodges-Lehmann estimate of the shift, canary minus baseline, in `unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<f64>,
    /// Why, in words: `too few requests (4 < 10)`, `status 500, expected 200`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl Measurement {
    /// A measurement with only its identity and outcome set; callers fill in the numbers.
    pub fn new(
        name: impl Into<String>,
        kind: MeasurementKind,
        source: impl Into<String>,
        unit: Unit,
        outcome: Classification,
    ) -> Measurement {
        Measurement {
            name: name.into(),
            kind,
            source: source.into(),
            outcome,
            unit,
            value: None,
            baseline: None,
            limit: None,
            requests: None,
            samples: None,
            p_value: None,
            shift: None,
            note: String::new(),
        }
    }

    /// One line for people: `error_rate 20.0% (limit <= 1.0%, 412 requests): high`.
    pub fn describe(&self) -> String {
        todo!("helper A")
    }
}

/// The verdict of one check and the measurements it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// 0–100: the share of measurements with data that passed; `None` when none had data.
    pub score: Option<f64>,
    pub measurements: Vec<Measurement>,
    /// One line for people, naming what failed or lacked data first.
    pub summary: String,
}

/// The score levels of [`judge`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreLevels {
    /// At or above: pass (default 95).
    pub pass: f64,
    /// At or above but below `pass`: marginal, inconclusive (default 75); below: fail.
    pub marginal: f64,
}

impl Default for ScoreLevels {
    fn default() -> Self {
        ScoreLevels {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// Which way of the canary's values a test looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alternative {
    TwoSided,
    /// The canary's values tend to be larger than the baseline's.
    Greater,
    /// The canary's values tend to be smaller.
    Less,
}

/// A Mann-Whitney U test's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample (the canary): pairs where the canary's value is larger, ties half.
    pub u: f64,
    /// The standardised statistic, with tie and continuity corrections.
    pub z: f64,
    pub p_value: f64,
}

/// Median; `None` for no values. NaN values are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    let _ = values;
    todo!("helper A")
}

/// The Mann-Whitney U test of `canary` against `baseline` by the normal approximation, with the
/// tie correction of the variance and a continuity correction (as SciPy's
/// `mannwhitneyu(method="asymptotic", use_continuity=True)`). `None` when either side is empty.
/// When every value is equal the p-value is 1.
pub fn mann_whitney_u(
    canary: &[f64],
    baseline: &[f64],
    alternative: Alternative,
) -> Option<MannWhitney> {
    let _ = (canary, baseline, alternative);
    todo!("helper A")
}

/// The Hodges-Lehmann estimate of the shift between two samples: the median of every pairwise
/// difference `canary[i] - baseline[j]`. `None` when either side is empty.
pub fn hodges_lehmann(canary: &[f64], baseline: &[f64]) -> Option<f64> {
    let _ = (canary, baseline);
    todo!("helper A")
}

/// The rules of one comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompareRule {
    pub metric: Metric,
    /// How much worse the canary may be: for `error_rate` in absolute terms (0.01 allows one
    /// percentage point more errors than the baseline), for every other metric relative to the
    /// baseline's median (0.2 allows 20% more).
    pub allowed_increase: f64,
    /// 0.95 fails a metric only when the test is significant at the 5% level.
    pub confidence: f64,
    /// Fewer samples on either side is no data.
    pub min_samples: u32,
}

/// Compares canary samples with baseline samples. `High` when the canary is worse (a higher
/// value, for every metric but `request_rate`, where lower is worse and the outcome is `Low`)
/// with `confidence` and by more than `allowed_increase`; `NoData` below `min_samples`.
pub fn compare(source: &str, rule: &CompareRule, canary: &[f64], baseline: &[f64]) -> Measurement {
    let _ = (source, rule, canary, baseline);
    todo!("helper A")
}

/// Judges one value against `min`/`max` (already in the value's unit). `NoData` when `value` is
/// `None` or `requests` (where known) is below `min_requests`.
#[allow(clippy::too_many_arguments)]
pub fn threshold(
    name: &str,
    source: &str,
    unit: Unit,
    value: Option<f64>,
    requests: Option<u64>,
    min_requests: u64,
    min: Option<f64>,
    max: Option<f64>,
) -> Measurement {
    let _ = (name, source, unit, value, requests, min_requests, min, max);
    todo!("helper A")
}

/// The verdict of a check from its measurements (see the module documentation). No measurement
/// at all is inconclusive.
pub fn judge(measurements: Vec<Measurement>, levels: ScoreLevels) -> Judgement {
    let _ = (measurements, levels);
    todo!("helper A")
}
