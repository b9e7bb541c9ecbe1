//! The [`Notifier`] the engine calls: it renders the notice for every destination routed to the
//! deploy's environment and enqueues the payloads in the store, nothing more. The insert is
//! unique on (effect key, destination), so a retried effect sends nothing twice, and the engine
//! never waits on a receiver: the [`crate::Deliverer`] sends in the background.

use std::sync::Arc;

use async_trait::async_trait;
use slipway_core::analysis::Classification;
use slipway_core::config::{NotifyDestination, NotifyKind};
use slipway_core::deploy::{Deploy, DeployResult, EffectKey, Event, Notice, Verdict};
use slipway_engine::clock::Clock;
use slipway_engine::plugin::{Notifier, PluginError};
use slipway_store::{NewNotification, Store};
use tokio::sync::Notify;

use crate::payload::{self, Context, FailingCheck};

/// How many events are read at a time to find a failed deploy's failing check (all are read:
/// the check that failed last may come after the first page).
const EVENTS_PAGE: i64 = 5_000;

/// Enqueues notices for the `[[notify]]` destinations.
pub struct Notifications {
    store: Store,
    destinations: Vec<NotifyDestination>,
    /// slipway's address for people, without a trailing `/`, for links to deploys.
    public_url: Option<String>,
    clock: Arc<dyn Clock>,
    /// Wakes the deliverer when something was enqueued.
    wake: Arc<Notify>,
}

impl Notifications {
    /// `wake` is the deliverer's ([`crate::Deliverer::wake_handle`]).
    pub fn new(
        store: Store,
        destinations: Vec<NotifyDestination>,
        public_url: Option<String>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Notifications {
        Notifications {
            store,
            destinations,
            public_url: public_url.map(|url| url.trim_end_matches('/').to_owned()),
            clock,
            wake,
        }
    }

    /// The link, and the failing check of a deploy that failed or rolled back.
    async fn context(&self, deploy: &Deploy, notice: &Notice) -> Result<Context, PluginError> {
        let deploy_url = self
            .public_url
            .as_ref()
            .map(|base| format!("{base}/deploys/{}", deploy.spec.id));
        let failed = matches!(
            notice,
            Notice::Finished {
                result: DeployResult::Failed | DeployResult::RolledBack,
                ..
            }
        );
        let failing_check = if failed {
            let events = self
                .store
                .all_deploy_events(deploy.spec.id, EVENTS_PAGE)
                .await
                .map_err(|error| {
                    PluginError::new(format!("cannot read the deploy's events: {error}"))
                })?;
            let events: Vec<Event> = events
                .iter()
                .filter(|e| e.kind == "checked" || e.kind == "measured")
                .filter_map(|e| serde_json::from_str(&e.payload).ok())
                .collect();
            failing_check(deploy, &events)
        } else {
            None
        };
        Ok(Context {
            deploy_url,
            failing_check,
        })
    }
}

/// The last check that did not pass, with the measurements of it that did not pass.
pub fn failing_check(deploy: &Deploy, events: &[Event]) -> Option<FailingCheck> {
    let (key, detail) = events.iter().rev().find_map(|event| match event {
        Event::Checked {
            key,
            verdict: Verdict::Fail | Verdict::Inconclusive,
            detail,
            ..
        } => Some((key, detail)),
        _ => None,
    })?;
    let measurements = events
        .iter()
        .filter_map(|event| match event {
            Event::Measured {
                key: measured,
                measurement,
            } if measured == key && measurement.outcome != Classification::Pass => {
                Some(measurement.describe())
            }
            _ => None,
        })
        .collect();
    // `deploy/step/attempt/op`: the step index names the plan step.
    let step = key
        .split('/')
        .nth(1)
        .and_then(|index| index.parse::<usize>().ok())
        .and_then(|index| deploy.spec.plan.steps.get(index))
        .map_or("verification", |step| step.kind.name())
        .to_owned();
    Some(FailingCheck {
        step,
        detail: detail.clone(),
        measurements,
    })
}

#[async_trait]
impl Notifier for Notifications {
    async fn notify(
        &self,
        key: &EffectKey,
        deploy: &Deploy,
        notice: &Notice,
    ) -> Result<(), PluginError> {
        let routed: Vec<&NotifyDestination> = self
            .destinations
            .iter()
            .filter(|d| d.routes(&deploy.spec.environment, deploy.spec.kind))
            .collect();
        if routed.is_empty() {
            return Ok(());
        }
        let context = self.context(deploy, notice).await?;
        let now = self.clock.now();
        let deliveries: Vec<NewNotification> = routed
            .iter()
            .map(|destination| {
                let body = match destination.kind {
                    NotifyKind::Slack => payload::slack_payload(deploy, notice, &context),
                    NotifyKind::Webhook => payload::webhook_payload(deploy, notice, &context, now),
                };
                NewNotification {
                    deploy: deploy.spec.id,
                    effect_key: key.to_string(),
                    destination: destination.name.clone(),
                    kind: destination.kind.name().to_owned(),
                    notice: payload::notice_name(notice).to_owned(),
                    payload: body.to_string(),
                }
            })
            .collect();
        self.store
            .enqueue_notifications(&deliveries, now)
            .await
            .map_err(|error| PluginError::new(format!("cannot enqueue notifications: {error}")))?;
        self.wake.notify_one();
        Ok(())
    }
}
