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

use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, PI};
use std::fmt::Write as _;

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

    /// One line for people: `error_rate 20.0% (limit <= 1.0%, 412 requests): high`,
    /// `latency_p99 canary 312 ms vs baseline 10.2 ms (+301 ms, p=0.0001, 30/30 samples, limit
    /// +20% over baseline): high`, `probe /login: fail (status 500, expected 200)`. The note comes
    /// last, in parentheses, with its line breaks turned into spaces.
    pub fn describe(&self) -> String {
        let mut line = self.name.clone();
        let shown = |value: Option<f64>| value.map_or("none".to_owned(), |v| self.unit.format(v));
        if self.kind == MeasurementKind::Comparison {
            let _ = write!(
                line,
                " canary {} vs baseline {}",
                shown(self.value),
                shown(self.baseline)
            );
        } else if let Some(value) = self.value {
            let _ = write!(line, " {}", self.unit.format(value));
        }

        let mut details = Vec::new();
        if let Some(shift) = self.shift {
            details.push(format_shift(self.unit, shift));
        }
        if let Some(p) = self.p_value {
            details.push(format_p(p));
        }
        if let Some((canary, baseline)) = self.samples {
            details.push(format!("{canary}/{baseline} samples"));
        }
        if let Some(limit) = &self.limit {
            details.push(format!("limit {limit}"));
        }
        match self.requests {
            Some(1) => details.push("1 request".to_owned()),
            Some(requests) => details.push(format!("{requests} requests")),
            None => {}
        }
        if !details.is_empty() {
            let _ = write!(line, " ({})", details.join(", "));
        }

        let _ = write!(line, ": {}", self.outcome.name());
        let note = self.note.split_whitespace().collect::<Vec<_>>().join(" ");
        // `no data` after `: no data` would say the same thing twice.
        if !note.is_empty() && note != self.outcome.name() {
            let _ = write!(line, " ({note})");
        }
        line
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
    /// The standardised statistic, with tie and continuity corrections, as SciPy computes it for
    /// the alternative: of `u` for `Greater`, of `n1 n2 - u` for `Less`, of the larger of the two
    /// for `TwoSided`; so the p-value is the normal survival function of `z` (twice it, for
    /// `TwoSided`) and a large positive `z` always speaks for the alternative. 0 when every value
    /// is equal (SciPy divides by a zero deviation there).
    pub z: f64,
    pub p_value: f64,
}

/// Median; `None` for no values. NaN values are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    median_in_place(&mut without_nan(values))
}

/// The Mann-Whitney U test of `canary` against `baseline` by the normal approximation, with the
/// tie correction of the variance and a continuity correction (as SciPy's
/// `mannwhitneyu(method="asymptotic", use_continuity=True)`). `None` when either side is empty.
/// When every value is equal the p-value is 1.
///
/// NaN values are ignored (SciPy refuses them), so a side of only NaN counts as empty.
pub fn mann_whitney_u(
    canary: &[f64],
    baseline: &[f64],
    alternative: Alternative,
) -> Option<MannWhitney> {
    let canary = without_nan(canary);
    let baseline = without_nan(baseline);
    if canary.is_empty() || baseline.is_empty() {
        return None;
    }

    let mut pooled: Vec<(f64, bool)> = canary
        .iter()
        .map(|&value| (value, true))
        .chain(baseline.iter().map(|&value| (value, false)))
        .collect();
    pooled.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));

    // One pass over the runs of equal values: each run shares its mean rank (a midrank), and
    // contributes t³ - t to the tie correction of the variance.
    let mut canary_rank_sum = 0.0;
    let mut tie_term = 0.0;
    let mut runs = 0;
    let mut start = 0;
    while start < pooled.len() {
        let value = pooled[start].0;
        // `==` rather than the sort's total order: -0.0 and 0.0 are one value.
        let size = pooled[start..]
            .iter()
            .take_while(|(other, _)| *other == value)
            .count();
        let end = start + size;
        let midrank = (start + 1 + end) as f64 / 2.0;
        let from_canary = pooled[start..end].iter().filter(|(_, c)| *c).count();
        canary_rank_sum += midrank * from_canary as f64;
        let t = size as f64;
        tie_term += t * t * t - t;
        runs += 1;
        start = end;
    }

    let n1 = canary.len() as f64;
    let n2 = baseline.len() as f64;
    let n = n1 + n2;
    let u1 = canary_rank_sum - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    // SciPy's order: the survival function of the U that points toward the alternative.
    let (u, sides) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if runs == 1 || variance <= 0.0 {
        return Some(MannWhitney {
            u: u1,
            z: 0.0,
            p_value: 1.0,
        });
    }
    let z = (u - mean - 0.5) / variance.sqrt();
    let p_value = (sides * normal_sf(z)).clamp(0.0, 1.0);
    Some(MannWhitney { u: u1, z, p_value })
}

/// The Hodges-Lehmann estimate of the shift between two samples: the median of every pairwise
/// difference `canary[i] - baseline[j]`. `None` when either side is empty.
///
/// NaN values are ignored, and so is the difference of two equal infinities. Holds all n1·n2
/// differences in memory: fine for the few thousand samples per side an analysis takes.
pub fn hodges_lehmann(canary: &[f64], baseline: &[f64]) -> Option<f64> {
    let baseline = without_nan(baseline);
    let mut differences: Vec<f64> = without_nan(canary)
        .into_iter()
        .flat_map(|c| baseline.iter().map(move |b| c - b))
        .filter(|difference| !difference.is_nan())
        .collect();
    median_in_place(&mut differences)
}

/// A latency comparison fails only for a shift of at least this many milliseconds, whatever its
/// allowed increase: on a service answering in 2 ms, +20% is 0.4 ms, which two identical builds
/// differ by on a busy machine.
pub const MIN_LATENCY_SHIFT_MS: f64 = 5.0;

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
///
/// Only finite values count as samples (a side that reported NaN or an infinity for a step has
/// no sample for it); `samples`, `value` and `baseline` are of those. The test is one-sided in the
/// direction that is worse; `p_value` is its p-value and `shift` the Hodges-Lehmann estimate.
pub fn compare(source: &str, rule: &CompareRule, canary: &[f64], baseline: &[f64]) -> Measurement {
    let metric = rule.metric;
    let unit = metric.unit();
    let lower_is_worse = metric == Metric::RequestRate;
    let canary: Vec<f64> = canary.iter().copied().filter(|v| v.is_finite()).collect();
    let baseline: Vec<f64> = baseline.iter().copied().filter(|v| v.is_finite()).collect();

    let mut measurement = Measurement::new(
        metric.name(),
        MeasurementKind::Comparison,
        source,
        unit,
        Classification::NoData,
    );
    measurement.value = median(&canary);
    measurement.baseline = median(&baseline);
    measurement.samples = Some((sample_count(&canary), sample_count(&baseline)));
    let allowed = rule.allowed_increase;
    measurement.limit = Some(match metric {
        Metric::ErrorRate => format!("+{:.1} pts over baseline", allowed * 100.0),
        Metric::RequestRate => format!("-{}% under baseline", trimmed(allowed * 100.0, 1)),
        m if m.unit() == Unit::Millis => format!(
            "+{}% over baseline, at least +{MIN_LATENCY_SHIFT_MS} ms",
            trimmed(allowed * 100.0, 1)
        ),
        _ => format!("+{}% over baseline", trimmed(allowed * 100.0, 1)),
    });

    // Fewer than one sample is never enough, whatever the rule says: there is nothing to test.
    let need = rule.min_samples.max(1);
    let too_few = format!(
        "too few samples (canary {}, baseline {}; need {need})",
        canary.len(),
        baseline.len()
    );
    if sample_count(&canary) < need || sample_count(&baseline) < need {
        measurement.note = too_few;
        return measurement;
    }
    let worse = if lower_is_worse {
        Alternative::Less
    } else {
        Alternative::Greater
    };
    let (Some(baseline_median), Some(test), Some(shift)) = (
        measurement.baseline,
        mann_whitney_u(&canary, &baseline, worse),
        hodges_lehmann(&canary, &baseline),
    ) else {
        // Both sides hold finite values here, so each is `Some`; no data rather than a panic.
        measurement.note = too_few;
        return measurement;
    };
    measurement.p_value = Some(test.p_value);
    measurement.shift = Some(shift);

    let tolerance = match metric {
        Metric::ErrorRate => allowed,
        // A few milliseconds on a fast service is noise, however many percent it is.
        _ if unit == Unit::Millis => (allowed * baseline_median.abs()).max(MIN_LATENCY_SHIFT_MS),
        _ => allowed * baseline_median.abs(),
    };
    let worse_by = if lower_is_worse { -shift } else { shift };
    let significant = test.p_value < 1.0 - rule.confidence;
    let beyond_allowance = worse_by > tolerance;
    let confidence = trimmed(rule.confidence * 100.0, 1);
    let allowance = format_change(unit, tolerance);
    (measurement.outcome, measurement.note) = match (significant, beyond_allowance) {
        (true, true) => (
            if lower_is_worse {
                Classification::Low
            } else {
                Classification::High
            },
            format!(
                "worse than baseline at {confidence}% confidence and by more than the allowed {allowance}"
            ),
        ),
        (true, false) => (
            Classification::Pass,
            format!(
                "worse than baseline at {confidence}% confidence but within the allowed {allowance}"
            ),
        ),
        (false, _) => (
            Classification::Pass,
            format!("not worse than baseline at {confidence}% confidence"),
        ),
    };
    measurement
}

/// Judges one value against `min`/`max` (already in the value's unit). `NoData` when `value` is
/// `None` or `requests` (where known) is below `min_requests`.
///
/// A NaN value is no value. A value equal to `max` or `min` passes.
#[expect(
    clippy::too_many_arguments,
    reason = "the signature is shared with the metric sources being written against it"
)]
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
    let mut measurement = Measurement::new(
        name,
        MeasurementKind::Threshold,
        source,
        unit,
        Classification::NoData,
    );
    measurement.value = value.filter(|v| !v.is_nan());
    measurement.requests = requests;
    measurement.limit = match (min, max) {
        (Some(min), Some(max)) => Some(format!(
            "between {} and {}",
            unit.format(min),
            unit.format(max)
        )),
        (Some(min), None) => Some(format!(">= {}", unit.format(min))),
        (None, Some(max)) => Some(format!("<= {}", unit.format(max))),
        (None, None) => None,
    };

    let Some(value) = measurement.value else {
        measurement.note = "no data".to_owned();
        return measurement;
    };
    if let Some(requests) = requests
        && requests < min_requests
    {
        measurement.note = format!("too few requests ({requests} < {min_requests})");
        return measurement;
    }
    measurement.outcome = if max.is_some_and(|max| value > max) {
        Classification::High
    } else if min.is_some_and(|min| value < min) {
        Classification::Low
    } else {
        Classification::Pass
    };
    measurement
}

/// The verdict of a check from its measurements (see the module documentation). No measurement
/// at all is inconclusive.
///
/// The summary lists failures, then measurements without data, then passes, each by
/// [`Measurement::describe`], after the score when comparisons are among them:
/// `score 50 (pass >= 95): latency_p99 …: high; error_rate …: pass`.
pub fn judge(measurements: Vec<Measurement>, levels: ScoreLevels) -> Judgement {
    let with_data = measurements
        .iter()
        .filter(|m| m.outcome != Classification::NoData)
        .count();
    let passed = measurements
        .iter()
        .filter(|m| m.outcome == Classification::Pass)
        .count();
    let score = (with_data > 0).then(|| 100.0 * passed as f64 / with_data as f64);

    let fails_at_once = measurements
        .iter()
        .any(|m| fails_check_at_once(m.kind) && m.outcome.is_failure());
    let lacks_data = measurements
        .iter()
        .any(|m| m.outcome == Classification::NoData);
    let verdict = if fails_at_once {
        Verdict::Fail
    } else if lacks_data {
        Verdict::Inconclusive
    } else {
        match score {
            // No measurements at all.
            None => Verdict::Inconclusive,
            Some(score) if score >= levels.pass => Verdict::Pass,
            Some(score) if score >= levels.marginal => Verdict::Inconclusive,
            Some(_) => Verdict::Fail,
        }
    };

    // The score is the reason only when no measurement decided the verdict by itself.
    let scored = score.filter(|_| !fails_at_once && !lacks_data);
    let summary = summarise(&measurements, scored, levels);
    Judgement {
        verdict,
        score,
        measurements,
        summary,
    }
}

/// Whether a failure of this kind fails the whole check regardless of the score. Comparisons are
/// statistical and only lower the score; the rest are hard limits. No wildcard: a new kind has to
/// choose.
fn fails_check_at_once(kind: MeasurementKind) -> bool {
    match kind {
        MeasurementKind::Threshold
        | MeasurementKind::Probe
        | MeasurementKind::Command
        | MeasurementKind::Health => true,
        MeasurementKind::Comparison => false,
    }
}

/// The one line of [`judge`]: what failed, then what lacked data — or, when nothing did, what
/// passed. Every measurement keeps its own event; the line says why.
fn summarise(measurements: &[Measurement], score: Option<f64>, levels: ScoreLevels) -> String {
    if measurements.is_empty() {
        return "no measurements".to_owned();
    }
    let failed = measurements.iter().filter(|m| m.outcome.is_failure());
    let no_data = measurements
        .iter()
        .filter(|m| m.outcome == Classification::NoData);
    let mut lines: Vec<String> = failed.chain(no_data).map(Measurement::describe).collect();
    if lines.is_empty() {
        lines = measurements.iter().map(Measurement::describe).collect();
    }
    let lines = lines.join("; ");

    let has_comparisons = measurements
        .iter()
        .any(|m| m.kind == MeasurementKind::Comparison);
    match score {
        Some(score) if has_comparisons => {
            let marginal = if score < levels.pass && score >= levels.marginal {
                ", marginal"
            } else {
                ""
            };
            format!(
                "score {}{marginal} (pass >= {}): {lines}",
                trimmed(score, 1),
                trimmed(levels.pass, 1)
            )
        }
        _ => lines,
    }
}

/// `values` without NaN.
fn without_nan(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| !v.is_nan()).collect()
}

/// The median of values that hold no NaN, reordering them: a selection, not a sort.
fn median_in_place(values: &mut [f64]) -> Option<f64> {
    let len = values.len();
    if len == 0 {
        return None;
    }
    let (lower, upper, _) = values.select_nth_unstable_by(len / 2, f64::total_cmp);
    let upper = *upper;
    if len % 2 == 1 {
        return Some(upper);
    }
    // Everything below the selected element is at most it; the largest is the other middle.
    let lower = lower.iter().copied().max_by(f64::total_cmp)?;
    Some(lower.midpoint(upper))
}

fn sample_count(values: &[f64]) -> u32 {
    u32::try_from(values.len()).unwrap_or(u32::MAX)
}

/// `value` with at most `decimals` decimals and no trailing zeros: `20`, `12.5`, `0.0001`.
fn trimmed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// `p=0.0123`; below what four decimals show, `p<0.0001`.
fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "p<0.0001".to_owned()
    } else {
        format!("p={}", trimmed(p, 4))
    }
}

/// An amount of change in `unit`, unsigned: a change of a ratio is in percentage points.
fn format_change(unit: Unit, amount: f64) -> String {
    match unit {
        Unit::Ratio => format!("{:.1} pts", amount * 100.0),
        _ => unit.format(amount),
    }
}

/// A signed shift: `+301 ms`, `-2.5/s`, `+0.4 pts`.
fn format_shift(unit: Unit, shift: f64) -> String {
    let sign = if shift < 0.0 { '-' } else { '+' };
    format!("{sign}{}", format_change(unit, shift.abs()))
}

/// The standard normal survival function, P(Z > z).
fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

/// The complementary error function, to a relative error of a few 1e-15 wherever the result is
/// a normal f64 (checked against mpmath in the tests below). Below 1, 1 - erf by the series of
/// erf whose terms are all positive (the subtraction costs little: erfc stays above 0.15); from
/// 1, Laplace's continued fraction of erfc, which takes at most ~230 terms near 1 and fewer
/// further out.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.0 {
        // erf(x) = 2/√π e^(-x²) Σ (2x²)^n x / (1·3·…·(2n+1))
        let two_x_squared = 2.0 * x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= two_x_squared / (2.0 * n + 1.0);
            sum += term;
        }
        return 1.0 - FRAC_2_SQRT_PI * exp_minus_square(x) * sum;
    }
    // erfc(x) = e^(-x²)/√π / (x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), by the modified Lentz
    // method. For x ≥ 1 no partial denominator comes near zero.
    let mut fraction = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..=1000 {
        let a = f64::from(k) / 2.0;
        d = 1.0 / (x + a * d);
        c = x + a / c;
        let delta = c * d;
        fraction *= delta;
        // Converged when the correction rounds to exactly 1.
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    exp_minus_square(x) / (PI.sqrt() * fraction)
}

/// e^(-x²) without the rounding error of x² (which e^ would magnify by x² in the far tail):
/// splits x into a head with few bits, whose square is exact, and the rest (W. J. Cody's trick).
fn exp_minus_square(x: f64) -> f64 {
    let head = (x * 16.0).trunc() / 16.0;
    let rest = (x - head) * (x + head);
    (-head * head).exp() * (-rest).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_agrees_with_mpmath_to_a_few_ulps() {
        // mpmath 1.4.1, `float(mpmath.erfc(mpmath.mpf(x)))` at 50 digits.
        for (x, expected) in [
            (-3.0, 1.9999779095030015),
            (-0.5, 1.5204998778130465),
            (0.0, 1.0),
            (0.3, 0.6713732405408726),
            (0.99, 0.1614919304446302),
            (1.0, 0.15729920705028513),
            (1.01, 0.1531895037717233),
            (1.5, 0.033894853524689274),
            (2.0, 0.004677734981047266),
            (3.0, 2.209049699858544e-05),
            (5.0, 1.537459794428035e-12),
            (7.5, 2.776649386030569e-26),
            (10.0, 2.088487583762545e-45),
            (20.0, 5.395865611607901e-176),
            (26.0, 5.663192408856143e-296),
        ] {
            let actual = erfc(x);
            let relative = ((actual - expected) / expected).abs();
            assert!(
                relative < 1e-14,
                "erfc({x}) = {actual}, expected {expected}"
            );
        }
    }
}
