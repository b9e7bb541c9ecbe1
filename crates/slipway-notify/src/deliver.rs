//! The deliverer: sends enqueued notifications in the background, each attempt claimed in the
//! store first and recorded after, with exponential backoff and a bounded number of attempts.
//!
//! A 2xx answer delivers; a 4xx other than 408 and 429 means the receiver refuses this payload
//! for good (a revoked Slack webhook answers 404 or 410) and fails it at once; anything else (no
//! connection, a timeout, a 5xx) is tried again later. Webhook payloads are signed at each
//! attempt with the destination's secret, read then (so a rotated secret needs no restart) and
//! never stored or logged. Errors name a destination by its name and origin only: a Slack
//! webhook URL is a credential.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use slipway_core::config::{NotifyDestination, NotifyKind, SecretSource};
use slipway_core::time::Span;
use slipway_engine::clock::Clock;
use slipway_store::{AfterAttempt, DeliveryAttempt, Notification, Store, StoreError};
use tokio::sync::Notify;

use crate::signature;

/// How deliveries are paced.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// How long one attempt may take.
    pub timeout: Duration,
    /// The pause after the first failed attempt; it doubles after each further one.
    pub first_backoff: Duration,
    /// The longest pause between attempts.
    pub max_backoff: Duration,
    /// Attempts before a delivery is given up (recorded as failed).
    pub max_attempts: u32,
    /// How long a claimed attempt may stay unsettled before another deliverer may take it
    /// (a crash mid-send).
    pub claim: Duration,
    /// The longest sleep between looks at the store when nothing wakes the deliverer.
    pub idle_poll: Duration,
    /// Deliveries sent per pass.
    pub batch: i64,
}

impl Default for DeliveryConfig {
    /// Ten attempts over about 17 minutes: 1 s, 2 s, 4 s … capped at 5 minutes apart.
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(5),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_attempts: 10,
            claim: Duration::from_secs(60),
            idle_poll: Duration::from_secs(5),
            batch: 50,
        }
    }
}

impl DeliveryConfig {
    /// The pause after failed attempt `attempt` (1 for the first).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Sends the notification outbox.
pub struct Deliverer {
    store: Store,
    destinations: Vec<NotifyDestination>,
    /// Where relative `secret_file` paths start: the config file's directory.
    config_dir: PathBuf,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    config: DeliveryConfig,
    wake: Arc<Notify>,
}

/// How one attempt went.
struct Sent {
    http_status: Option<u16>,
    /// `None` when delivered; else why not, and whether trying again may help.
    failure: Option<(String, bool)>,
}

impl Deliverer {
    pub fn new(
        store: Store,
        destinations: Vec<NotifyDestination>,
        config_dir: PathBuf,
        clock: Arc<dyn Clock>,
        config: DeliveryConfig,
    ) -> Deliverer {
        Deliverer {
            store,
            destinations,
            config_dir,
            client: reqwest::Client::new(),
            clock,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notified by [`crate::Notifications`] when it enqueues something.
    pub fn wake_handle(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Delivers until `shutdown` completes: whatever is due, then sleeps until the next
    /// delivery is due, something is enqueued, or `idle_poll` has passed. Shutdown does not
    /// wait for a pass: an attempt in flight is abandoned, its claim lapses and it is made
    /// again after the restart (receivers de-duplicate on the delivery id).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                delivered = self.deliver_due() => if let Err(error) = delivered {
                    tracing::warn!(%error, "delivering notifications failed; trying again shortly");
                },
            }
            let wait = match self.store.next_notification_due().await {
                Ok(Some(due)) => Duration::from_millis(
                    u64::try_from(due.as_millis() - self.clock.now().as_millis()).unwrap_or(0),
                )
                .min(self.config.idle_poll),
                _ => self.config.idle_poll,
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass: claims and sends every delivery due now. Returns how many attempts it made.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self.store.due_notifications(now, self.config.batch).await?;
        let mut made = 0;
        for notification in due {
            // The clock is read again for each claim: sends before it may have taken long.
            let claim_until = self
                .clock
                .now()
                .after(Span::from_duration(self.config.claim));
            if !self
                .store
                .claim_notification(notification.id, notification.attempts, claim_until)
                .await?
            {
                continue;
            }
            let attempt = notification.attempts + 1;
            let sent = self.send(&notification, attempt).await;
            let at = self.clock.now();
            let (outcome, after, error) = match sent.failure {
                None => ("delivered", AfterAttempt::Delivered, None),
                Some((error, true)) if attempt < self.config.max_attempts => {
                    let retry_at = at.after(Span::from_duration(self.config.backoff(attempt)));
                    ("retry", AfterAttempt::Retry(retry_at), Some(error))
                }
                Some((error, _)) => ("failed", AfterAttempt::Failed, Some(error)),
            };
            if let Some(error) = &error {
                tracing::warn!(
                    notification = notification.id,
                    destination = %notification.destination,
                    attempt,
                    outcome,
                    %error,
                    "a notification was not delivered"
                );
            }
            let record = DeliveryAttempt {
                attempt,
                at,
                http_status: sent.http_status,
                outcome: outcome.to_owned(),
                error,
            };
            self.store
                .settle_notification(notification.id, &record, after)
                .await?;
            made += 1;
        }
        Ok(made)
    }

    async fn send(&self, notification: &Notification, attempt: u32) -> Sent {
        let Some(destination) = self
            .destinations
            .iter()
            .find(|d| d.name == notification.destination)
        else {
            let gone = match crate::notes_service(&notification.destination) {
                Some(service) => format!(
                    "{service} has no notes_webhook in slipway.toml any more; set it again, then \
                     `slipway release publish {service} RC` sends these notes"
                ),
                None => format!(
                    "destination `{}` is no longer in slipway.toml's [[notify]]",
                    notification.destination
                ),
            };
            return Sent {
                http_status: None,
                failure: Some((gone, false)),
            };
        };
        let body = notification.payload.clone().into_bytes();
        let mut request = self
            .client
            .post(&destination.url)
            .timeout(self.config.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signature::DELIVERY_HEADER, &notification.effect_key)
            .header("Idempotency-Key", &notification.effect_key)
            .header(signature::ATTEMPT_HEADER, attempt.to_string());
        // A `[[notify]]` webhook always has a secret (the config requires one); a release-notes
        // webhook is signed when it names one.
        if destination.kind == NotifyKind::Webhook
            && let Some(source) = &destination.secret
        {
            let secret = match self.read_secret(source) {
                Ok(secret) => secret,
                Err(error) => {
                    return Sent {
                        http_status: None,
                        failure: Some((error, true)),
                    };
                }
            };
            let timestamp = self.clock.now().as_millis() / 1000;
            request = request
                .header(signature::TIMESTAMP_HEADER, timestamp.to_string())
                .header(
                    signature::SIGNATURE_HEADER,
                    signature::sign_webhook(&secret, timestamp, &body),
                );
        }
        match request.body(body).send().await {
            Ok(answer) => {
                let status = answer.status();
                let http_status = Some(status.as_u16());
                if status.is_success() {
                    return Sent {
                        http_status,
                        failure: None,
                    };
                }
                let passing = status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                let quoted = quoted_answer(answer, &destination.url).await;
                let mut error = format!("{} answered {status}", destination.origin());
                if !quoted.is_empty() {
                    error.push_str(&format!(": {quoted}"));
                }
                Sent {
                    http_status,
                    failure: Some((error, passing)),
                }
            }
            Err(error) if error.is_builder() => Sent {
                http_status: None,
                // A URL reqwest cannot make a request of: retrying will not change it.
                failure: Some((
                    format!(
                        "{}: the request could not be made (check the destination's url)",
                        destination.origin()
                    ),
                    false,
                )),
            },
            Err(error) => {
                let what = if error.is_timeout() {
                    format!("no answer within {}s", self.config.timeout.as_secs_f64())
                } else if error.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                };
                Sent {
                    http_status: None,
                    failure: Some((format!("{}: {what}", destination.origin()), true)),
                }
            }
        }
    }

    /// The secret's bytes, or why it cannot be read (naming the file or variable, never a value).
    fn read_secret(&self, source: &SecretSource) -> Result<Vec<u8>, String> {
        read_secret(source, &self.config_dir)
            .map(String::into_bytes)
            .map_err(|problem| match problem {
                SecretProblem::Unreadable(path, error) => format!(
                    "cannot read the webhook secret file {}: {error}",
                    path.display()
                ),
                SecretProblem::Unset(name) => format!(
                    "the webhook secret variable {name} is not set in slipway's environment"
                ),
                SecretProblem::Empty => "the webhook secret is empty".to_owned(),
            })
    }
}

/// Why a secret named by a [`SecretSource`] cannot be read.
#[derive(Debug)]
pub enum SecretProblem {
    /// The file (resolved against the config's directory) cannot be read.
    Unreadable(std::path::PathBuf, std::io::Error),
    /// The environment variable is not set.
    Unset(String),
    /// Only whitespace.
    Empty,
}

/// The secret a [`SecretSource`] names, trimmed: a file relative to `config_dir` or an
/// environment variable of slipway's own.
pub fn read_secret(source: &SecretSource, config_dir: &Path) -> Result<String, SecretProblem> {
    let text = match source {
        SecretSource::File(path) => {
            let path = config_dir.join(path);
            std::fs::read_to_string(&path)
                .map_err(|error| SecretProblem::Unreadable(path, error))?
        }
        SecretSource::Env(name) => {
            std::env::var(name).map_err(|_| SecretProblem::Unset(name.clone()))?
        }
    };
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretProblem::Empty);
    }
    Ok(secret.to_owned())
}

/// What a refusing receiver answered, for the delivery's record: read no further than 1 KiB,
/// at most 200 characters, with the destination URL's path and query cut out (frameworks echo
/// the path in their 404 pages, and a webhook's path is often its token).
async fn quoted_answer(mut answer: reqwest::Response, url: &str) -> String {
    const LIMIT: usize = 1024;
    let mut bytes = Vec::new();
    while bytes.len() < LIMIT {
        match answer.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(LIMIT);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some(start) = rest.find(['/', '?']) {
        let path_and_query = &rest[start..];
        let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
        for secret in [path_and_query, path] {
            if secret.len() > 1 {
                text = text.replace(secret, "/…");
            }
        }
    }
    text.trim().chars().take(200).collect()
}
