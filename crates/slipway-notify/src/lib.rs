//! slipway's notifications (`docs/notifications.md`): Slack incoming-webhook messages and signed
//! JSON webhooks about deploys, routed per environment by `[[notify]]`.
//!
//! The engine calls [`Notifications`] (a `Notifier`) with each notice; it only renders the
//! payloads and enqueues them in the store, once per (effect key, destination). The
//! [`Deliverer`] sends them in the background with retries and records every attempt, so a slow
//! or absent receiver never holds up a deploy and a retried effect never sends twice.

mod deliver;
mod notifier;
pub mod payload;
pub mod signature;

pub use deliver::{Deliverer, DeliveryConfig, SecretProblem, read_secret};
pub use notifier::{Notifications, failing_check};

/// The outbox destination of the release notes of `service` (`docs/releases.md`): the
/// deliverer sends them to that service's `notes_webhook`.
pub fn notes_destination(service: &str) -> String {
    format!("{NOTES_PREFIX}{service}")
}

/// The service whose release notes go to `destination`, if it is a notes destination.
pub fn notes_service(destination: &str) -> Option<&str> {
    destination.strip_prefix(NOTES_PREFIX)
}

const NOTES_PREFIX: &str = "release-notes/";
