//! Manual locks of a service's environment (`slipway lock`): while one is held, no new deploy
//! of the service to the environment starts. Taking and releasing a lock each append an audit
//! event in the same transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;
use slipway_core::time::Time;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::catalog::event;
use crate::error::StoreError;
use crate::store::Store;

/// A held lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub service: String,
    pub environment: String,
    pub reason: String,
    pub by: String,
    pub at: Time,
}

fn decode(row: &AnyRow) -> Result<Lock, StoreError> {
    Ok(Lock {
        service: row.try_get("service")?,
        environment: row.try_get("environment")?,
        reason: row.try_get("reason")?,
        by: row.try_get("locked_by")?,
        at: Time(row.try_get("locked_at")?),
    })
}

const COLUMNS: &str = "service, environment, reason, locked_by, locked_at";

impl Store {
    /// Takes the lock of `lock.service` in `lock.environment`. `AlreadyExists` when it is held
    /// (by anyone): the holder's lock is left as it is.
    pub async fn take_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO locks (service, environment, reason, locked_by, locked_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (service, environment) DO NOTHING",
        )
        .bind(&lock.service)
        .bind(&lock.environment)
        .bind(&lock.reason)
        .bind(&lock.by)
        .bind(lock.at.as_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::AlreadyExists {
                what: "lock",
                name: format!("{} in {}", lock.service, lock.environment),
            });
        }
        let locked = event(
            "locked",
            json!({
                "service": lock.service,
                "environment": lock.environment,
                "reason": lock.reason,
                "by": lock.by,
            }),
        );
        self.append(&mut tx, &[locked], lock.at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Releases the lock of `service` in `environment`; returns the lock that was held, or
    /// `None` (and records nothing) when there was none.
    pub async fn release_lock(
        &self,
        service: &str,
        environment: &str,
        by: &str,
        now: Time,
    ) -> Result<Option<Lock>, StoreError> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(&format!(
            "DELETE FROM locks WHERE service = $1 AND environment = $2 RETURNING {COLUMNS}"
        ))
        .bind(service)
        .bind(environment)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let held = decode(&row)?;
        let unlocked = event(
            "unlocked",
            json!({
                "service": service,
                "environment": environment,
                "reason": held.reason,
                "locked_by": held.by,
                "by": by,
            }),
        );
        self.append(&mut tx, &[unlocked], now).await?;
        tx.commit().await?;
        Ok(Some(held))
    }

    /// The lock of `service` in `environment`, if held.
    pub async fn lock_of(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<Lock>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM locks WHERE service = $1 AND environment = $2"
        ))
        .bind(service)
        .bind(environment)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Every held lock, by service and environment.
    pub async fn locks(&self) -> Result<Vec<Lock>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM locks ORDER BY service, environment"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(decode).collect()
    }
}
