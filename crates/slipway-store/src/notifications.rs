//! The notification outbox: deliveries of notices to `[[notify]]` destinations, enqueued once
//! per (effect key, destination) and sent in the background, every attempt recorded.
//!
//! A deliverer claims a due row before it sends (a conditional update on its attempt count), so
//! two deliverers never send the same attempt; a claim that is never settled (a crash mid-send)
//! lapses and the row is due again.

use serde::{Deserialize, Serialize};
use slipway_core::deploy::DeployId;
use slipway_core::time::Time;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::store::Store;

/// A delivery to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub deploy: DeployId,
    /// The Notify effect's idempotency key.
    pub effect_key: String,
    pub destination: String,
    /// `slack` or `webhook`.
    pub kind: String,
    /// The notice's name (`started`, `finished`…).
    pub notice: String,
    /// The JSON body to POST.
    pub payload: String,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up: attempts exhausted, or the receiver refused the payload for good.
    Failed,
}

impl DeliveryStatus {
    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> DeliveryStatus {
        match text {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// A delivery as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub deploy: DeployId,
    pub effect_key: String,
    pub destination: String,
    pub kind: String,
    pub notice: String,
    pub payload: String,
    pub created_at: Time,
    pub status: DeliveryStatus,
    /// Attempts started so far (claimed), including one in flight.
    pub attempts: u32,
    pub next_attempt_at: Option<Time>,
    pub delivered_at: Option<Time>,
    /// Every settled attempt, oldest first (filled by [`Store::notifications`] only).
    pub history: Vec<DeliveryAttempt>,
}

/// One settled attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// 1 for the first.
    pub attempt: u32,
    pub at: Time,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    pub error: Option<String>,
}

/// What follows a settled attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    /// Try again at this time.
    Retry(Time),
    /// Give up.
    Failed,
}

const COLUMNS: &str = "id, deploy_id, effect_key, destination, kind, notice, payload, created_at, \
                       status, attempts, next_attempt_at, delivered_at";

fn decode(row: &AnyRow) -> Result<Notification, StoreError> {
    Ok(Notification {
        id: row.try_get("id")?,
        deploy: DeployId(row.try_get("deploy_id")?),
        effect_key: row.try_get("effect_key")?,
        destination: row.try_get("destination")?,
        kind: row.try_get("kind")?,
        notice: row.try_get("notice")?,
        payload: row.try_get("payload")?,
        created_at: Time(row.try_get("created_at")?),
        status: DeliveryStatus::parse(&row.try_get::<String, _>("status")?),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: row.try_get::<Option<i64>, _>("next_attempt_at")?.map(Time),
        delivered_at: row.try_get::<Option<i64>, _>("delivered_at")?.map(Time),
        history: Vec::new(),
    })
}

/// Enqueues one delivery, due at once, in `tx`; false when its (effect key, destination) was
/// enqueued before (and is left as it is).
pub(crate) async fn insert_notification(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    n: &NewNotification,
    now: Time,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO notifications (deploy_id, effect_key, destination, kind, notice, payload, \
         created_at, status, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7) \
         ON CONFLICT (effect_key, destination) DO NOTHING",
    )
    .bind(n.deploy.0)
    .bind(&n.effect_key)
    .bind(&n.destination)
    .bind(&n.kind)
    .bind(&n.notice)
    .bind(&n.payload)
    .bind(now.as_millis())
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// Makes a delivery that was given up due again now, for one more attempt (its earlier ones
/// stay in its history). Pending and delivered ones are left as they are.
pub(crate) async fn rearm_failed(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    n: &NewNotification,
    now: Time,
) -> Result<bool, StoreError> {
    let rearmed = sqlx::query(
        "UPDATE notifications SET status = 'pending', next_attempt_at = $1 \
         WHERE effect_key = $2 AND destination = $3 AND status = 'failed'",
    )
    .bind(now.as_millis())
    .bind(&n.effect_key)
    .bind(&n.destination)
    .execute(&mut **tx)
    .await?;
    Ok(rearmed.rows_affected() > 0)
}

impl Store {
    /// Enqueues deliveries, due at once. A (effect key, destination) already enqueued is left
    /// as it is: a retried effect sends nothing twice. Returns how many were new.
    pub async fn enqueue_notifications(
        &self,
        notifications: &[NewNotification],
        now: Time,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write.begin().await?;
        let mut inserted = 0;
        for n in notifications {
            inserted += u64::from(insert_notification(&mut tx, n, now).await?);
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Pending deliveries due at `now`, oldest first.
    pub async fn due_notifications(
        &self,
        now: Time,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE status = 'pending' \
             AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
        ))
        .bind(now.as_millis())
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// When the next pending delivery is due, if any is pending.
    pub async fn next_notification_due(&self) -> Result<Option<Time>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS due FROM notifications WHERE status = 'pending'",
        )
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?.map(Time))
    }

    /// Claims the next attempt of delivery `id`, seen with `attempts` attempts, until
    /// `claim_until`. `false` when another deliverer claimed or settled it first.
    pub async fn claim_notification(
        &self,
        id: i64,
        attempts: u32,
        claim_until: Time,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $1 \
             WHERE id = $2 AND attempts = $3 AND status = 'pending'",
        )
        .bind(claim_until.as_millis())
        .bind(id)
        .bind(i64::from(attempts))
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Records how attempt `attempt.attempt` of delivery `id` went and what follows it.
    pub async fn settle_notification(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
        after: AfterAttempt,
    ) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO notification_attempts (notification_id, attempt, at, http_status, \
             outcome, error) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (notification_id, attempt) DO NOTHING",
        )
        .bind(id)
        .bind(i64::from(attempt.attempt))
        .bind(attempt.at.as_millis())
        .bind(attempt.http_status.map(i64::from))
        .bind(&attempt.outcome)
        .bind(attempt.error.as_deref())
        .execute(&mut *tx)
        .await?;
        let (status, next, delivered) = match after {
            AfterAttempt::Delivered => ("delivered", None, Some(attempt.at.as_millis())),
            AfterAttempt::Retry(at) => ("pending", Some(at.as_millis()), None),
            AfterAttempt::Failed => ("failed", None, None),
        };
        sqlx::query(
            "UPDATE notifications SET status = $1, next_attempt_at = $2, delivered_at = $3 \
             WHERE id = $4 AND attempts = $5",
        )
        .bind(status)
        .bind(next)
        .bind(delivered)
        .bind(id)
        .bind(i64::from(attempt.attempt))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deliveries, of one deploy or of all, newest last, each with its attempts.
    pub async fn notifications(
        &self,
        deploy: Option<DeployId>,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE ($1 IS NULL OR deploy_id = $1) \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(deploy.map(|d| d.0))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await?;
        let mut notifications = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        notifications.reverse();
        let (Some(first), Some(last)) = (notifications.first(), notifications.last()) else {
            return Ok(notifications);
        };
        // One query for every attempt of the listed range, of the same deploy filter.
        let rows = sqlx::query(
            "SELECT a.notification_id, a.attempt, a.at, a.http_status, a.outcome, a.error \
             FROM notification_attempts a JOIN notifications n ON n.id = a.notification_id \
             WHERE a.notification_id BETWEEN $1 AND $2 AND ($3 IS NULL OR n.deploy_id = $3) \
             ORDER BY a.notification_id, a.attempt",
        )
        .bind(first.id)
        .bind(last.id)
        .bind(deploy.map(|d| d.0))
        .fetch_all(&self.read)
        .await?;
        let mut by_id: std::collections::HashMap<i64, &mut Notification> =
            notifications.iter_mut().map(|n| (n.id, n)).collect();
        for row in rows {
            let Some(notification) = by_id.get_mut(&row.try_get::<i64, _>("notification_id")?)
            else {
                continue;
            };
            notification.history.push(DeliveryAttempt {
                attempt: u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(0),
                at: Time(row.try_get("at")?),
                http_status: row
                    .try_get::<Option<i64>, _>("http_status")?
                    .and_then(|s| u16::try_from(s).ok()),
                outcome: row.try_get("outcome")?,
                error: row.try_get("error")?,
            });
        }
        Ok(notifications)
    }
}
