//! Deploy markers for monitoring: a deploy's start and end posted as Grafana annotations and to
//! generic JSON webhooks, so graphs show when each release went out, came back or was rolled
//! back.
//!
//! Markers are a [`Notifier`]: the engine calls it with every notice, and it answers only
//! [`Notice::Started`] and [`Notice::Finished`]. Every destination gets its marker at once and
//! independently; a failure of one never keeps the others from theirs. A failure is retried
//! when it may be passing (no connection, a timeout, a 5xx) and not when the destination refused
//! the marker itself (a 4xx). What could not be delivered is returned as one error naming every
//! such destination, which the engine records; nothing waits on markers.
//!
//! A webhook can tell a retry (or a repeat after a crash) by its `Idempotency-Key` header, the
//! effect's key. Grafana has no such thing, so a repeat there is a second annotation: the price
//! of never losing one.
//!
//! Destinations are named in errors by their origin only (`webhook 2 (https://hooks.example)`):
//! webhook URLs often carry a secret in their path, and errors end up in the event log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use slipway_core::config::{self, GrafanaMarkers};
use slipway_core::deploy::{Deploy, DeployResult, EffectKey, Notice};
use slipway_core::plan::Purpose;
use slipway_core::time::Time;
use slipway_engine::clock::{Clock, SystemClock};
use slipway_engine::plugin::{Notifier, PluginError};
use tokio::task::JoinSet;

use crate::http;

/// How long one attempt to deliver a marker may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pauses before the second and third attempts: three attempts in all, within about 17 s
/// even when every attempt times out.
pub const RETRY_BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

/// Most of a refusing destination's answer quoted in an error, in characters.
const ANSWER_QUOTE_LIMIT: usize = 200;

/// Sends deploy markers to the destinations of `[markers]`.
#[derive(Debug)]
pub struct Markers {
    client: reqwest::Client,
    grafana: Option<GrafanaMarkers>,
    webhooks: Vec<String>,
    /// slipway's own URL, for the link to the deploy in webhook markers.
    base_url: Option<String>,
    /// Where "now" comes from: the marker's time.
    clock: Arc<dyn Clock>,
}

impl Markers {
    /// The markers of `config`; `None` when it names no destination. `base_url` is slipway's
    /// server URL (`https://slipway.internal`), used to link each webhook marker to its deploy.
    pub fn new(config: &config::Markers, base_url: Option<String>) -> Option<Markers> {
        if config.grafana.is_none() && config.webhooks.is_empty() {
            return None;
        }
        Some(Markers {
            client: reqwest::Client::new(),
            grafana: config.grafana.clone(),
            webhooks: config.webhooks.clone(),
            base_url: base_url.map(|url| url.trim_end_matches('/').to_owned()),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same markers, timed by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Markers {
        self.clock = clock;
        self
    }

    /// The Grafana annotation request, or why it cannot be sent.
    fn grafana_request(
        &self,
        grafana: &GrafanaMarkers,
        key: &EffectKey,
        marker: &Marker<'_>,
    ) -> Result<reqwest::RequestBuilder, String> {
        let url = format!("{}/api/annotations", grafana.url.trim_end_matches('/'));
        let mut request = self
            .client
            .post(url)
            .timeout(DELIVERY_TIMEOUT)
            .header("Idempotency-Key", key.to_string())
            .json(&grafana_annotation(grafana, marker));
        if let Some(variable) = &grafana.token_env {
            // Read now rather than at start-up, so a rotated token is picked up without a
            // restart. `bearer_auth` marks the header sensitive: it is never printed.
            match std::env::var(variable) {
                Ok(token) if !token.trim().is_empty() => {
                    request = request.bearer_auth(token.trim())
                }
                Ok(_) => {
                    return Err(format!(
                        "token_env `{variable}` is empty; set it to a Grafana service-account \
                         token or remove token_env from [markers.grafana]"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "token_env `{variable}` is not set in slipway's environment; set it to a \
                         Grafana service-account token or remove token_env from [markers.grafana]"
                    ));
                }
            }
        }
        Ok(request)
    }
}

#[async_trait]
impl Notifier for Markers {
    async fn notify(
        &self,
        key: &EffectKey,
        deploy: &Deploy,
        notice: &Notice,
    ) -> Result<(), PluginError> {
        let Some(marker) = Marker::of(deploy, notice, self.clock.now()) else {
            return Ok(());
        };
        let spec = &deploy.spec;

        // Every destination with its request, or with why it has none.
        let mut requests: Vec<(String, Result<reqwest::RequestBuilder, String>)> = Vec::new();
        if let Some(grafana) = &self.grafana {
            let name = format!("grafana ({})", origin(&grafana.url));
            requests.push((name, self.grafana_request(grafana, key, &marker)));
        }
        let payload = webhook_payload(&marker, self.base_url.as_deref());
        for (index, url) in self.webhooks.iter().enumerate() {
            let name = format!("webhook {} ({})", index + 1, origin(url));
            let request = self
                .client
                .post(url)
                .timeout(DELIVERY_TIMEOUT)
                .header("Idempotency-Key", key.to_string())
                .json(&payload);
            requests.push((name, Ok(request)));
        }

        let mut failures: Vec<(usize, String)> = Vec::new();
        let mut deliveries = JoinSet::new();
        for (index, (name, request)) in requests.into_iter().enumerate() {
            match request {
                Ok(request) => {
                    deliveries.spawn(async move { (index, name, deliver(request).await) });
                }
                Err(why) => failures.push((index, format!("{name}: {why}"))),
            }
        }
        while let Some(joined) = deliveries.join_next().await {
            match joined {
                Ok((_, name, Ok(attempts))) => tracing::info!(
                    deploy_id = %spec.id,
                    service = %spec.service,
                    env = %spec.environment,
                    destination = %name,
                    event = marker.tag(),
                    attempts,
                    "deploy marker sent"
                ),
                Ok((index, name, Err(why))) => failures.push((index, format!("{name}: {why}"))),
                Err(error) => failures.push((usize::MAX, format!("a delivery failed: {error}"))),
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        failures.sort_by_key(|(index, _)| *index);
        let failures: Vec<String> = failures.into_iter().map(|(_, failure)| failure).collect();
        let message = format!("deploy marker not delivered to {}", failures.join("; "));
        tracing::warn!(
            deploy_id = %spec.id,
            service = %spec.service,
            env = %spec.environment,
            error = %message,
            "deploy marker not delivered"
        );
        Err(PluginError::new(message))
    }
}

/// What a marker is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Started,
    Finished(DeployResult),
}

/// One marker: a deploy, what happened to it and when.
struct Marker<'a> {
    deploy: &'a Deploy,
    event: Event,
    /// Why: the deploy's own reason when it starts, the reason it ended when it finishes.
    reason: Option<&'a str>,
    at: Time,
}

impl<'a> Marker<'a> {
    /// The marker of `notice`; `None` for notices that are not worth one.
    fn of(deploy: &'a Deploy, notice: &'a Notice, at: Time) -> Option<Marker<'a>> {
        let (event, reason) = match notice {
            Notice::Started => (Event::Started, deploy.spec.reason.as_deref()),
            Notice::Finished { result, reason } => (Event::Finished(*result), reason.as_deref()),
            Notice::GoNoGo
            | Notice::WaitingForApproval
            | Notice::BreakGlassRequested
            | Notice::BreakGlass
            | Notice::WaitingForSlot { .. } => return None,
        };
        Some(Marker {
            deploy,
            event,
            reason: reason.filter(|reason| !reason.trim().is_empty()),
            at,
        })
    }

    /// `started`, `succeeded`, `failed`, `rolled_back`, `aborted`.
    fn tag(&self) -> &'static str {
        match self.event {
            Event::Started => "started",
            Event::Finished(result) => result.name(),
        }
    }

    /// Whether the marker is about a rollback: a deploy that is one, or one that ended rolled
    /// back. Both carry the `rollback` tag, so one tag finds every rollback on a graph.
    fn is_rollback(&self) -> bool {
        self.deploy.spec.purpose == Purpose::Rollback
            || self.event == Event::Finished(DeployResult::RolledBack)
    }

    /// `PROD: demo RC 3 (1.3.0) rolled back: error_rate 20.0% over 1.0%`.
    fn text(&self) -> String {
        let spec = &self.deploy.spec;
        let rollback = spec.purpose == Purpose::Rollback;
        let what = match (self.event, rollback) {
            (Event::Started, false) => format!("deploy started by {}", spec.requested_by),
            (Event::Started, true) => format!("rollback started by {}", spec.requested_by),
            (Event::Finished(result), rollback) => {
                let result = match result {
                    DeployResult::Succeeded => "succeeded",
                    DeployResult::Failed => "failed",
                    DeployResult::RolledBack => "rolled back",
                    DeployResult::Aborted => "aborted",
                };
                if rollback {
                    format!("rollback {result}")
                } else {
                    result.to_owned()
                }
            }
        };
        let mut text = format!(
            "{}: {} {} ({}) {what}",
            spec.environment.to_uppercase(),
            spec.service,
            spec.release.label,
            spec.release.version
        );
        if let Some(reason) = self.reason {
            text.push_str(": ");
            text.push_str(reason);
        }
        text
    }
}

/// The body of `POST /api/annotations`: an organisation-wide annotation at the marker's time,
/// tagged so a dashboard can select it by service, environment, release or event.
fn grafana_annotation(grafana: &GrafanaMarkers, marker: &Marker<'_>) -> Value {
    let spec = &marker.deploy.spec;
    let mut tags: Vec<&str> = vec![
        "slipway",
        "deploy",
        &spec.service,
        &spec.environment,
        &spec.release.label,
        marker.tag(),
    ];
    if marker.is_rollback() {
        tags.push("rollback");
    }
    for tag in &grafana.tags {
        if !tags.contains(&tag.as_str()) {
            tags.push(tag);
        }
    }
    json!({
        "time": marker.at.as_millis(),
        "tags": tags,
        "text": marker.text(),
    })
}

/// The body of a webhook marker: the deploy's facts as plain fields, for any receiver.
fn webhook_payload(marker: &Marker<'_>, base_url: Option<&str>) -> Value {
    let spec = &marker.deploy.spec;
    let (event, result) = match marker.event {
        Event::Started => ("deploy_started", None),
        Event::Finished(result) => ("deploy_finished", Some(result.name())),
    };
    let purpose = match spec.purpose {
        Purpose::Release => "release",
        Purpose::Rollback => "rollback",
    };
    json!({
        "event": event,
        "result": result,
        "deploy": spec.id.0,
        "service": spec.service,
        "environment": spec.environment,
        "release": spec.release.label,
        "version": spec.release.version,
        "purpose": purpose,
        "requested_by": spec.requested_by,
        "reason": marker.reason,
        "at": marker.at.to_string(),
        "link": base_url.map(|base| format!("{base}/api/v1/deploys/{}", spec.id)),
    })
}

/// Sends `request` until it is accepted, a destination refuses it, or the attempts run out.
/// `Ok` holds the number of attempts it took.
async fn deliver(request: reqwest::RequestBuilder) -> Result<usize, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A JSON body is bytes in memory, so the request can always be copied.
        let Some(this) = request.try_clone() else {
            return Err("the request cannot be repeated".to_owned());
        };
        let failure = match this.send().await {
            Ok(response) if response.status().is_success() => return Ok(attempt),
            Ok(response) if response.status().is_server_error() => answered(response).await,
            // The destination refused this marker; sending it again would be refused again.
            Ok(response) => return Err(answered(response).await),
            Err(error) => transport_error(&error),
        };
        match RETRY_BACKOFF.get(attempt - 1) {
            Some(pause) => tokio::time::sleep(*pause).await,
            None => return Err(format!("{failure} ({attempt} attempts)")),
        }
    }
}

/// `answered 400 Bad Request: {"message":"bad tags"}`.
async fn answered(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body = body.trim();
    if body.is_empty() {
        return format!("answered {status}");
    }
    let mut quote: String = body.chars().take(ANSWER_QUOTE_LIMIT).collect();
    if quote.len() < body.len() {
        quote.push('…');
    }
    format!("answered {status}: {quote}")
}

/// A request that got no answer, in words and without its URL.
fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {}s", DELIVERY_TIMEOUT.as_secs());
    }
    if http::is_refused(error) {
        return "refused the connection".to_owned();
    }
    match http::root_cause(error) {
        Some(cause) => format!("could not be reached: {cause}"),
        // reqwest's own message names the URL; without one, say only what kind of failure.
        None if error.is_connect() => "could not be reached".to_owned(),
        None => "the request failed".to_owned(),
    }
}

/// `https://hooks.example.com`: a URL without its path, query or credentials.
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => "an invalid URL".to_owned(),
    }
}
