//! A Prometheus server as a metric source: the PromQL templates of `[prometheus]` rendered for
//! one release and run through Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`).
//!
//! A check needs one number, so a query must come down to one series: a scalar or a vector with
//! exactly one sample. No series at all, NaN (`0/0`: no requests in the window) and ±Inf are
//! *no data*, never zero. Several series are the template's mistake and an error that says to
//! aggregate them.
//!
//! Whatever goes wrong (Prometheus unreachable or too slow, PromQL it rejects, an answer that is
//! not Prometheus') becomes a [`SourceError`] naming the query, with a hint where one helps: a
//! check counts it as no data, and the message is what the operator sees.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use slipway_core::analysis::Metric;
use slipway_core::config::PrometheusConfig;
use slipway_core::time::Time;
use slipway_engine::clock::{Clock as _, SystemClock};

use crate::http;
use crate::source::{Reading, Source, SourceError, Subject};

/// The shortest `{window}` rendered: Prometheus rejects a zero range, and anything below two
/// scrape intervals has too few samples to answer anyway (that is the configuration's problem,
/// not something to guess around here).
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// How many series an error about too many series lists.
const SERIES_SHOWN: usize = 3;

/// A Prometheus server's query API. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Prometheus {
    /// The base URL without a trailing slash: `http://127.0.0.1:9090`.
    url: String,
    /// Also sent to Prometheus as the query's own `timeout`, so it stops working on a query
    /// nobody waits for any more.
    timeout: Duration,
    /// The metric templates (`[prometheus.queries]` over the built-in ones).
    config: PrometheusConfig,
    http: reqwest::Client,
}

impl Prometheus {
    /// A client of the server `config` names. Sends nothing yet: an unreachable Prometheus shows
    /// up as the error of the first query.
    pub fn new(config: &PrometheusConfig) -> Prometheus {
        Prometheus {
            url: config.url.trim_end_matches('/').to_owned(),
            timeout: Duration::from_millis(config.timeout.as_millis()),
            config: config.clone(),
            // The timeout is set on each request, so the default client is all it takes.
            http: reqwest::Client::new(),
        }
    }

    /// The base URL queries go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A custom check's `query`: `template` rendered for `subject` and `window`, run as an
    /// instant query.
    pub async fn query_value(
        &self,
        template: &str,
        subject: &Subject<'_>,
        window: Duration,
    ) -> Result<Option<f64>, SourceError> {
        self.instant(&render(template, subject, window)).await
    }

    /// The value of `query` now: a scalar, or the one sample of a vector. `None` for an empty
    /// vector and for NaN or ±Inf; an error for several series.
    pub async fn instant(&self, query: &str) -> Result<Option<f64>, SourceError> {
        let data = self
            .get("/api/v1/query", query, &[("query", query.to_owned())])
            .await?;
        match data {
            Data::Scalar(point) => Ok(finite(parse_value(&point.1, query)?)),
            Data::Vector(samples) => match samples.as_slice() {
                [] => Ok(None),
                [sample] => {
                    let Some((_, value)) = &sample.value else {
                        return Err(native_histogram(query));
                    };
                    Ok(finite(parse_value(value, query)?))
                }
                several => Err(too_many_series(
                    query,
                    several.iter().map(|sample| &sample.metric),
                )),
            },
            Data::Matrix(_) | Data::String(_) => Err(wrong_type(query, data.kind())),
        }
    }

    /// One value of `query` per `step` from `start` to `end`, oldest first; steps whose value is
    /// NaN or ±Inf (`0/0`: nothing happened in that step) are left out. An empty result is an
    /// empty list; several series are an error.
    pub async fn range(
        &self,
        query: &str,
        start: Time,
        end: Time,
        step: Duration,
    ) -> Result<Vec<f64>, SourceError> {
        let params = [
            ("query", query.to_owned()),
            ("start", seconds(start)),
            ("end", seconds(end)),
            ("step", format!("{}ms", step.as_millis().max(1))),
        ];
        let data = self.get("/api/v1/query_range", query, &params).await?;
        let Data::Matrix(series) = data else {
            return Err(wrong_type(query, data.kind()));
        };
        match series.as_slice() {
            [] => Ok(Vec::new()),
            [one] => {
                let mut values = Vec::with_capacity(one.values.len());
                for (_, value) in &one.values {
                    values.extend(finite(parse_value(value, query)?));
                }
                Ok(values)
            }
            several => Err(too_many_series(
                query,
                several.iter().map(|series| &series.metric),
            )),
        }
    }

    /// Runs one API request and returns its `data`, or the error a person can act on.
    async fn get(
        &self,
        path: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<Data, SourceError> {
        let endpoint = format!("{}{path}", self.url);
        let response = self
            .http
            .get(&endpoint)
            .query(params)
            .query(&[("timeout", format!("{}ms", self.timeout.as_millis()))])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|error| self.request_failed(&error, query))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.request_failed(&error, query))?;
        let answer: Answer = match serde_json::from_slice(&body) {
            Ok(answer) => answer,
            Err(error) if status.is_success() => {
                return Err(SourceError::new(format!(
                    "Prometheus at {} gave an answer slipway cannot read for query `{query}`: \
                     {error} (hint: check that [prometheus] url points at Prometheus or a \
                     server with its API)",
                    self.url
                )));
            }
            Err(_) => return Err(self.not_prometheus(status, path, &body, query)),
        };
        for warning in answer.warnings.iter().flatten() {
            tracing::warn!(query, warning, "Prometheus warned about a query");
        }
        if answer.status != "success" || !status.is_success() {
            return Err(rejected(&answer, status, query));
        }
        answer.data.ok_or_else(|| {
            SourceError::new(format!(
                "Prometheus at {} answered query `{query}` without data",
                self.url
            ))
        })
    }

    /// A request that got no HTTP answer: refused, timed out, cut off.
    fn request_failed(&self, error: &reqwest::Error, query: &str) -> SourceError {
        let url = &self.url;
        if error.is_timeout() {
            return SourceError::new(format!(
                "Prometheus at {url} did not answer query `{query}` within {timeout:?} (hint: \
                 make the query cheaper or raise [prometheus] timeout)",
                timeout = self.timeout
            ));
        }
        let hint = if !url.starts_with("http://") {
            // reqwest is built without TLS: an https:// URL fails before anything is sent.
            "slipway speaks plain http:// to Prometheus; write [prometheus] url as \
             http://HOST:PORT, through a TLS-terminating proxy next to slipway if need be"
        } else if error.is_connect() {
            "check that Prometheus runs there and that [prometheus] url is right"
        } else {
            "check the network between slipway and Prometheus"
        };
        SourceError::new(format!(
            "cannot reach Prometheus at {url} for query `{query}`: {} (hint: {hint})",
            innermost(error)
        ))
    }

    /// An HTTP error whose body is not Prometheus' JSON: most likely the wrong URL.
    fn not_prometheus(
        &self,
        status: StatusCode,
        path: &str,
        body: &[u8],
        query: &str,
    ) -> SourceError {
        let body = String::from_utf8_lossy(body);
        let mut excerpt: String = body.trim().chars().take(200).collect();
        if excerpt.len() < body.trim().len() {
            excerpt.push('…');
        }
        SourceError::new(format!(
            "Prometheus at {} answered HTTP {status} to {path} for query `{query}`: {excerpt} \
             (hint: [prometheus] url must be Prometheus' base URL, the part before /api/v1)",
            self.url
        ))
    }
}

#[async_trait]
impl Source for Prometheus {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    /// The metric's query and the request count over `window`, asked at the same time.
    async fn read(
        &self,
        subject: &Subject<'_>,
        metric: Metric,
        window: Duration,
    ) -> Result<Reading, SourceError> {
        let value_query = render(&self.config.query(metric), subject, window);
        let requests_query = render(&self.config.requests_query(), subject, window);
        let (value, requests) =
            tokio::join!(self.instant(&value_query), self.instant(&requests_query));
        let value = value?;
        // `increase()` extrapolates to the window's edges, so a count is rarely a whole number.
        let requests = requests?.map(|count| count.max(0.0).round() as u64);
        Ok(Reading { value, requests })
    }

    /// The metric's query with `{window}` = `step`, evaluated every `step` over the last
    /// `window`: the first evaluation ends one step into the window, so each looks only inside
    /// it, as the proxy's samples do.
    async fn samples(
        &self,
        subject: &Subject<'_>,
        metric: Metric,
        window: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, SourceError> {
        let query = render(&self.config.query(metric), subject, step);
        let end = SystemClock.now();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
        let start = Time::from_millis(
            end.as_millis()
                .saturating_sub(window_ms)
                .saturating_add(step_ms)
                .min(end.as_millis()),
        );
        self.range(&query, start, end, step).await
    }
}

/// `template` with its placeholders replaced for `subject`: `{service}`, `{env}`, `{region}`
/// (empty without a region), `{route}` (`ENV` or `ENV/REGION`, the region label of slipway's
/// proxy), `{release}` (`RC 12`), `{version}` and `{window}` (a PromQL duration: `300s`, or
/// `1500ms` when not whole seconds; at least `1s`).
///
/// Templates put the values inside double-quoted label matchers, so `\`, `"` and line breaks in
/// them are escaped; one pass over the template means a value is never itself searched for
/// placeholders. Regular-expression characters are left alone: a value used in a `=~` matcher
/// matches as a pattern.
pub fn render(template: &str, subject: &Subject<'_>, window: Duration) -> String {
    let route = subject.route_label();
    let placeholders: [(&str, &str); 6] = [
        ("{service}", subject.service),
        ("{env}", subject.environment),
        ("{region}", subject.region.unwrap_or_default()),
        ("{route}", &route),
        ("{release}", subject.release),
        ("{version}", subject.version),
    ];
    let mut rendered = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rendered.push_str(&rest[..open]);
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("{window}") {
            rendered.push_str(&promql_duration(window));
            rest = after;
        } else if let Some((name, value)) =
            placeholders.iter().find(|(name, _)| rest.starts_with(name))
        {
            push_escaped(&mut rendered, value);
            rest = &rest[name.len()..];
        } else {
            // A label matcher's own brace.
            rendered.push('{');
            rest = &rest[1..];
        }
    }
    rendered.push_str(rest);
    rendered
}

/// `window` as a PromQL duration: whole seconds as `300s`, otherwise milliseconds (`1500ms`);
/// never below [`MIN_WINDOW`].
fn promql_duration(window: Duration) -> String {
    let millis = window.max(MIN_WINDOW).as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// Escapes a value for a double-quoted PromQL string.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str(r#"\""#),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c => out.push(c),
        }
    }
}

/// A time as Prometheus' API takes it: Unix seconds with milliseconds.
fn seconds(time: Time) -> String {
    let millis = time.as_millis();
    format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000))
}

/// Prometheus writes sample values as strings: `"0.25"`, `"NaN"`, `"+Inf"`, `"-Inf"`.
fn parse_value(text: &str, query: &str) -> Result<f64, SourceError> {
    text.parse().map_err(|_| {
        SourceError::new(format!(
            "Prometheus answered query `{query}` with {text:?}, which is not a number"
        ))
    })
}

/// A check cannot judge NaN (`0/0`: nothing to measure) or an infinity: both are no data.
fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// The innermost cause of an error: `Connection refused (os error 111)` rather than reqwest's
/// `error sending request for url (…)`, which repeats the whole encoded query.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    http::root_cause(error).unwrap_or(error).to_string()
}

/// Prometheus' own error answer: bad PromQL (`bad_data`), a failed evaluation (`execution`),
/// its query timeout (`timeout`).
fn rejected(answer: &Answer, status: StatusCode, query: &str) -> SourceError {
    let kind = answer.error_type.as_deref().unwrap_or("error");
    let error = answer.error.as_deref().unwrap_or("no reason given");
    let hint = match kind {
        "bad_data" => {
            " (hint: fix the PromQL in slipway.toml: [prometheus.queries] or the check's query)"
        }
        "timeout" => " (hint: make the query cheaper or raise [prometheus] timeout)",
        _ => "",
    };
    SourceError::new(format!(
        "Prometheus rejected query `{query}` (HTTP {status}, {kind}): {error}{hint}"
    ))
}

fn too_many_series<'a>(
    query: &str,
    series: impl ExactSizeIterator<Item = &'a BTreeMap<String, String>>,
) -> SourceError {
    let count = series.len();
    let mut shown = String::new();
    for (i, labels) in series.take(SERIES_SHOWN).enumerate() {
        shown.push_str(if i == 0 { "" } else { ", " });
        shown.push('{');
        for (j, (name, value)) in labels.iter().enumerate() {
            let _ = write!(shown, "{}{name}={value:?}", if j == 0 { "" } else { "," });
        }
        shown.push('}');
    }
    if count > SERIES_SHOWN {
        shown.push_str(", …");
    }
    SourceError::new(format!(
        "query `{query}` returned {count} series ({shown}) where a check needs one number \
         (hint: aggregate them, e.g. sum(...) or max(...))"
    ))
}

fn wrong_type(query: &str, kind: &str) -> SourceError {
    SourceError::new(format!(
        "query `{query}` gave a {kind} where a check needs a number (hint: a check's query must \
         be an instant vector or scalar expression, without a [range] at the end)"
    ))
}

fn native_histogram(query: &str) -> SourceError {
    SourceError::new(format!(
        "query `{query}` returned a native histogram where a check needs one number (hint: \
         wrap it in histogram_quantile(), histogram_sum() or histogram_count())"
    ))
}

/// The envelope of every answer of Prometheus' HTTP API.
#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    warnings: Option<Vec<String>>,
}

/// `data` of a query answer.
#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    /// `[unix seconds, "value"]`.
    Scalar((f64, String)),
    /// A string literal as a whole query: never a number.
    String(serde::de::IgnoredAny),
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
}

impl Data {
    fn kind(&self) -> &'static str {
        match self {
            Data::Scalar(_) => "scalar",
            Data::String(_) => "string",
            Data::Vector(_) => "instant vector",
            Data::Matrix(_) => "range vector",
        }
    }
}

#[derive(Debug, Deserialize)]
struct InstantSample {
    metric: BTreeMap<String, String>,
    /// Absent for a native histogram sample (which has `histogram` instead).
    value: Option<(f64, String)>,
}

#[derive(Debug, Deserialize)]
struct RangeSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(region: Option<&'static str>) -> Subject<'static> {
        Subject {
            service: "idp",
            environment: "prod",
            region,
            release: "RC 12",
            version: "1.4.0",
        }
    }

    #[test]
    fn render_fills_every_placeholder() {
        let template = "{service}|{env}|{region}|{route}|{release}|{version}|{window}";
        assert_eq!(
            render(
                template,
                &subject(Some("us-east")),
                Duration::from_secs(300)
            ),
            "idp|prod|us-east|prod/us-east|RC 12|1.4.0|300s"
        );
    }

    #[test]
    fn render_leaves_region_empty_and_route_as_the_environment_without_a_region() {
        assert_eq!(
            render(
                r#"x{region="{region}",route="{route}"}"#,
                &subject(None),
                Duration::from_secs(60)
            ),
            r#"x{region="",route="prod"}"#
        );
    }

    #[test]
    fn render_keeps_promql_braces_and_unknown_placeholders() {
        let template = r#"sum(rate(x{job="a",service="{service}"}[{window}])) + {other}"#;
        assert_eq!(
            render(template, &subject(None), Duration::from_secs(5)),
            r#"sum(rate(x{job="a",service="idp"}[5s])) + {other}"#
        );
    }

    #[test]
    fn render_escapes_quotes_and_backslashes_in_values() {
        let subject = Subject {
            service: r#"a"b\c"#,
            environment: "line\nbreak",
            region: None,
            release: r#"RC "1""#,
            version: r"\",
        };
        assert_eq!(
            render(
                r#"{service="{service}",env="{env}",release="{release}",v="{version}"}"#,
                &subject,
                Duration::from_secs(1)
            ),
            r#"{service="a\"b\\c",env="line\nbreak",release="RC \"1\"",v="\\"}"#
        );
    }

    #[test]
    fn render_never_expands_placeholders_inside_values() {
        let subject = Subject {
            service: "{env}",
            environment: "prod",
            region: Some("{window}"),
            release: "RC 1",
            version: "1",
        };
        assert_eq!(
            render("{service} {region} {env}", &subject, Duration::from_secs(2)),
            "{env} {window} prod"
        );
    }

    #[test]
    fn window_is_whole_seconds_or_milliseconds_and_at_least_one_second() {
        assert_eq!(promql_duration(Duration::from_secs(300)), "300s");
        assert_eq!(promql_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(promql_duration(Duration::from_millis(250)), "1s");
        assert_eq!(promql_duration(Duration::ZERO), "1s");
        // Below a millisecond is below what PromQL writes.
        assert_eq!(promql_duration(Duration::from_micros(2_000_900)), "2s");
    }

    #[test]
    fn prometheus_special_values_parse_and_count_as_no_data() {
        for text in ["NaN", "+Inf", "-Inf"] {
            let value = parse_value(text, "q").unwrap();
            assert_eq!(finite(value), None, "{text}");
        }
        assert_eq!(finite(parse_value("0.25", "q").unwrap()), Some(0.25));
        assert_eq!(finite(parse_value("1e-3", "q").unwrap()), Some(0.001));
        assert!(parse_value("lots", "q").is_err());
    }

    #[test]
    fn times_are_sent_as_unix_seconds_with_milliseconds() {
        assert_eq!(
            seconds(Time::from_millis(1_700_000_000_123)),
            "1700000000.123"
        );
        assert_eq!(seconds(Time::from_millis(5)), "0.005");
    }
}
