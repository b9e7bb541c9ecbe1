//! HTTP probes: a GET to every healthy new instance, which must answer the expected status (and
//! body text) in time.
//!
//! All instances are probed at once, each within its own time limit, so one hung instance costs
//! the check one timeout rather than one per instance. Every instance must pass: a probe is how
//! a team says "this page must work", and one broken instance in the fleet is a broken page for
//! the users it serves.

use std::time::Duration;

use slipway_core::analysis::{Classification, Measurement, MeasurementKind, Unit};
use slipway_core::time::Span;
use tokio::task::JoinSet;

use crate::http;

/// Most of an answer's body read to look for the expected text: an instance that streams a
/// huge page (or never stops) cannot fill slipway's memory.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Probes `path` on every endpoint (base URLs such as `http://127.0.0.1:41234`) concurrently,
/// each within `timeout`. Passes when every instance answers `status` and, when `body` is given,
/// its body contains that text (within its first [`BODY_LIMIT`] bytes). The value is the number
/// of instances that passed. No endpoint at all is no data: there is nothing to judge.
pub async fn probe(
    client: &reqwest::Client,
    name: &str,
    endpoints: &[String],
    path: &str,
    status: u16,
    body: Option<&str>,
    timeout: Duration,
) -> Measurement {
    let mut measurement = Measurement::new(
        name,
        MeasurementKind::Probe,
        "http",
        Unit::Number,
        Classification::NoData,
    );
    if endpoints.is_empty() {
        measurement.note = "no healthy instance to probe".to_owned();
        return measurement;
    }

    // Tasks rather than one future per instance so the requests really run in parallel on a
    // multi-threaded runtime; dropping the set (a cancelled check) aborts them all.
    let mut probes = JoinSet::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let client = client.clone();
        let url = join_url(endpoint, path);
        let body = body.map(str::to_owned);
        probes.spawn(async move {
            let failure = probe_one(&client, &url, status, body.as_deref(), timeout).await;
            (index, url, failure)
        });
    }
    let mut failures: Vec<(usize, String)> = Vec::new();
    let mut passed = 0usize;
    while let Some(joined) = probes.join_next().await {
        match joined {
            Ok((_, _, None)) => passed += 1,
            Ok((index, url, Some(why))) => failures.push((index, format!("{url} {why}"))),
            // A probe task cannot panic on purpose; if one does, it did not pass.
            Err(error) => failures.push((usize::MAX, format!("a probe task failed: {error}"))),
        }
    }
    // The first failing instance in the order the target listed them, so the note is stable.
    failures.sort_by_key(|(index, _)| *index);

    let total = endpoints.len();
    measurement.value = Some(passed as f64);
    match failures.first() {
        None => {
            measurement.outcome = Classification::Pass;
            measurement.note = match body {
                Some(text) => format!("{passed}/{total} instances answered {status} with {text:?}"),
                None => format!("{passed}/{total} instances answered {status}"),
            };
        }
        Some((_, first)) => {
            measurement.outcome = Classification::Fail;
            measurement.note = if total > 1 {
                format!("{first}; {passed}/{total} instances passed")
            } else {
                first.clone()
            };
        }
    }
    measurement
}

/// `endpoint` followed by `path`, with exactly one `/` between them.
fn join_url(endpoint: &str, path: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    format!("{base}/{path}")
}

/// Probes one instance; `None` when it passed, otherwise why not, worded to follow its URL:
/// `answered 500, expected 200`.
async fn probe_one(
    client: &reqwest::Client,
    url: &str,
    status: u16,
    body: Option<&str>,
    timeout: Duration,
) -> Option<String> {
    // One limit over the request and the body together: an instance that sends its headers
    // and then stalls is as broken as one that never answers.
    let exchange = async {
        let mut response = client.get(url).send().await.map_err(|e| why(&e))?;
        let answered = response.status().as_u16();
        if answered != status {
            return Err(format!("answered {answered}, expected {status}"));
        }
        let Some(text) = body else {
            return Ok(());
        };
        let mut read = Vec::new();
        while read.len() < BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = BODY_LIMIT - read.len();
                    read.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(error) => return Err(format!("answered {answered} but {}", why(&error))),
            }
        }
        if String::from_utf8_lossy(&read).contains(text) {
            Ok(())
        } else {
            Err(format!("answered {answered} but its body lacks {text:?}"))
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(_) => Some(format!("timed out after {}", Span::from_duration(timeout))),
    }
}

/// A request error in words: `refused the connection`, `could not be reached: …`.
fn why(error: &reqwest::Error) -> String {
    if http::is_refused(error) {
        return "refused the connection".to_owned();
    }
    let detail = http::root_cause(error).map_or_else(|| error.to_string(), ToString::to_string);
    if error.is_connect() {
        format!("could not be reached: {detail}")
    } else if error.is_body() || error.is_decode() {
        format!("sent a broken body: {detail}")
    } else {
        format!("failed: {detail}")
    }
}
