//! The API's shapes for notifications: each delivery of a notice to a `[[notify]]`
//! destination, where it stands, and every attempt with what the receiver answered.

use serde::{Deserialize, Serialize};
use slipway_store::{DeliveryAttempt, Notification};
use utoipa::ToSchema;

use super::timestamp;

/// One notice to one destination.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub deploy: i64,
    /// `started`, `go_no_go`, `waiting_for_approval`, `break_glass_requested`, `break_glass`,
    /// `waiting_for_slot` or `finished`.
    pub notice: String,
    /// The `[[notify]]` destination's name.
    pub destination: String,
    /// `slack` or `webhook`.
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// The effect that produced it; sent as `X-Slipway-Delivery`.
    pub effect_key: String,
    pub created_at: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// While pending: when it is tried next.
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    /// The JSON sent (it holds no secret: signatures are made per attempt and not kept).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Every attempt, oldest first.
    pub history: Vec<DeliveryAttemptView>,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttemptView {
    pub attempt: u32,
    pub at: String,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    /// Why it failed (the destination by its origin only).
    pub error: Option<String>,
}

impl From<&DeliveryAttempt> for DeliveryAttemptView {
    fn from(attempt: &DeliveryAttempt) -> Self {
        DeliveryAttemptView {
            attempt: attempt.attempt,
            at: timestamp(attempt.at),
            http_status: attempt.http_status,
            outcome: attempt.outcome.clone(),
            error: attempt.error.clone(),
        }
    }
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        NotificationView {
            id: n.id,
            deploy: n.deploy.0,
            notice: n.notice.clone(),
            destination: n.destination.clone(),
            kind: n.kind.clone(),
            status: n.status.name().to_owned(),
            effect_key: n.effect_key.clone(),
            created_at: timestamp(n.created_at),
            attempts: n.attempts,
            next_attempt_at: match n.status {
                slipway_store::DeliveryStatus::Pending => n.next_attempt_at.map(timestamp),
                _ => None,
            },
            delivered_at: n.delivered_at.map(timestamp),
            payload: serde_json::from_str(&n.payload).unwrap_or(serde_json::Value::Null),
            history: n.history.iter().map(Into::into).collect(),
        }
    }
}
