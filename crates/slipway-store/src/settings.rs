//! Config versions: the sealed settings and secrets of a service in an environment, numbered
//! 1, 2, … per service and environment, immutable once written (only the wrapping of their data
//! key changes, when the master key is rotated, and their approval is recorded once; database
//! triggers refuse any other change and any delete). Creating, approving and re-wrapping each
//! append an audit event in the same transaction; no event carries a value, nor the sealed
//! bytes. Named secret keys (the fingerprint key) are sealed the same way and written once.

use serde::{Deserialize, Serialize};
use serde_json::json;
use slipway_core::settings::Sealed;
use slipway_core::time::Time;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::catalog::event;
use crate::error::StoreError;
use crate::store::Store;

/// A config version to write.
#[derive(Clone, Debug)]
pub struct NewConfigVersion {
    pub service: String,
    pub environment: String,
    pub sealed: Sealed,
    /// `sha256:HEX` of the sealed content (`Sealed::ciphertext`), which re-wrapping keeps.
    pub digest: String,
    /// The keys that differ from the previous version (names only), for the audit trail.
    pub changed: Vec<String>,
    pub by: String,
    pub message: Option<String>,
    /// Whether it can be deployed without another engineer's approval (unprotected
    /// environments): then it is recorded as approved by `by` at creation.
    pub approved: bool,
    /// The newest version's number when the change was made from it (`Some(0)`: there was
    /// none). When another version was written since, nothing is written and the answer is
    /// `AlreadyExists` (the change would silently drop the other one's). `None` skips the check.
    pub parent: Option<u64>,
}

/// A stored config version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigVersionRecord {
    pub service: String,
    pub environment: String,
    pub number: u64,
    pub sealed: Sealed,
    pub digest: String,
    pub changed: Vec<String>,
    pub created_by: String,
    pub created_at: Time,
    pub message: Option<String>,
    /// Who approved it (the author, for an unprotected environment), and when.
    pub approved_by: Option<String>,
    pub approved_at: Option<Time>,
}

const COLUMNS: &str = "service, environment, number, key_id, wrapped_key, nonce, ciphertext, \
                       digest, changed_keys, created_by, created_at, message, approved_by, \
                       approved_at";

/// How messages name a version: `3 of idp in prod` (as in "config version 3 of idp in prod").
fn version_name(service: &str, environment: &str, number: u64) -> String {
    format!("{number} of {service} in {environment}")
}

fn decode_sealed(row: &AnyRow) -> Result<Sealed, StoreError> {
    Ok(Sealed {
        key_id: row.try_get("key_id")?,
        wrapped_key: row.try_get("wrapped_key")?,
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}

fn decode_number(row: &AnyRow) -> Result<u64, StoreError> {
    let number: i64 = row.try_get("number")?;
    u64::try_from(number)
        .map_err(|_| StoreError::Corrupt(format!("config version number {number} is negative")))
}

fn decode(row: &AnyRow) -> Result<ConfigVersionRecord, StoreError> {
    Ok(ConfigVersionRecord {
        service: row.try_get("service")?,
        environment: row.try_get("environment")?,
        number: decode_number(row)?,
        sealed: decode_sealed(row)?,
        digest: row.try_get("digest")?,
        changed: serde_json::from_str(&row.try_get::<String, _>("changed_keys")?)?,
        created_by: row.try_get("created_by")?,
        created_at: Time(row.try_get("created_at")?),
        message: row.try_get("message")?,
        approved_by: row.try_get("approved_by")?,
        approved_at: row.try_get::<Option<i64>, _>("approved_at")?.map(Time),
    })
}

/// A version number as the database stores it; `None` for one too large to have been stored.
fn stored_number(number: u64) -> Option<i64> {
    i64::try_from(number).ok()
}

/// What `rewrap` makes of the sealed data of `name`: `None` when it is under the current key
/// already. Refuses (naming the row, never its content) a closure error and a result that would
/// change more than the wrapping of the data key.
fn rewrapped(
    name: &str,
    key_id: &str,
    sealed: &Sealed,
    rewrap: &(dyn Fn(&Sealed) -> Result<Option<Sealed>, String> + Send + Sync),
) -> Result<Option<Sealed>, StoreError> {
    let refused = |message: String| StoreError::Invalid {
        message,
        hint: "nothing was re-wrapped; keep the master key that wrapped it among the previous \
               keys, then rotate again"
            .to_owned(),
    };
    let Some(new) = rewrap(sealed).map_err(|reason| {
        refused(format!(
            "cannot re-wrap the data key of {name} (under master key {}): {reason}",
            sealed.key_id
        ))
    })?
    else {
        return Ok(None);
    };
    if new.nonce != sealed.nonce || new.ciphertext != sealed.ciphertext {
        return Err(refused(format!(
            "re-wrapping {name} would change its encrypted values; only the wrapping of its \
             data key may change"
        )));
    }
    if new.key_id != key_id {
        return Err(refused(format!(
            "{name} was re-wrapped under master key {}, not the new key {key_id}",
            new.key_id
        )));
    }
    Ok(Some(new))
}

impl ConfigVersionRecord {
    /// Whether someone other than its author approved it (the review a protected environment
    /// needs).
    pub fn reviewed(&self) -> bool {
        self.approved_by
            .as_ref()
            .is_some_and(|by| *by != self.created_by)
    }
}

impl Store {
    /// Writes the next version of `new.service` in `new.environment` (numbered under a counter
    /// row lock, like releases) with its `config_version_created` event.
    pub async fn create_config_version(
        &self,
        new: &NewConfigVersion,
        now: Time,
    ) -> Result<ConfigVersionRecord, StoreError> {
        let mut tx = self.write.begin().await?;
        // Number under the counter row of the service and environment, locked until commit: on
        // PostgreSQL concurrent creations queue here, and each then reads the versions committed
        // before it (SQLite has a single writer). The primary key backs this up.
        let counter = format!("config:{}:{}", new.service, new.environment);
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&counter)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1")
            .bind(&counter)
            .execute(&mut *tx)
            .await?;
        let last = sqlx::query(
            "SELECT number FROM config_versions WHERE service = $1 AND environment = $2 \
             ORDER BY number DESC LIMIT 1",
        )
        .bind(&new.service)
        .bind(&new.environment)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(decode_number)
        .transpose()?;
        if let Some(parent) = new.parent
            && parent != last.unwrap_or(0)
        {
            return Err(StoreError::AlreadyExists {
                what: "newer config version",
                name: format!(
                    "{} of {} in {} (the change was made from version {parent})",
                    last.unwrap_or(0),
                    new.service,
                    new.environment
                ),
            });
        }
        let number = last.unwrap_or(0) + 1;
        let (approved_by, approved_at) = if new.approved {
            (Some(new.by.clone()), Some(now))
        } else {
            (None, None)
        };
        sqlx::query(
            "INSERT INTO config_versions (service, environment, number, key_id, wrapped_key, \
             nonce, ciphertext, digest, changed_keys, created_by, created_at, message, \
             approved_by, approved_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&new.service)
        .bind(&new.environment)
        .bind(stored_number(number).ok_or_else(|| {
            StoreError::Corrupt(format!("config version number {number} is too large"))
        })?)
        .bind(&new.sealed.key_id)
        .bind(new.sealed.wrapped_key.clone())
        .bind(new.sealed.nonce.clone())
        .bind(new.sealed.ciphertext.clone())
        .bind(&new.digest)
        .bind(json!(new.changed).to_string())
        .bind(&new.by)
        .bind(now.as_millis())
        .bind(new.message.as_deref())
        .bind(approved_by.as_deref())
        .bind(approved_at.map(Time::as_millis))
        .execute(&mut *tx)
        .await?;
        // Names of keys only: the values stay sealed, and so out of the audit log.
        let created = event(
            "config_version_created",
            json!({
                "service": new.service,
                "environment": new.environment,
                "version": number,
                "digest": new.digest,
                "changed": new.changed,
                "by": new.by,
                "message": new.message,
                "approved": new.approved,
            }),
        );
        self.append(&mut tx, &[created], now).await?;
        tx.commit().await?;
        Ok(ConfigVersionRecord {
            service: new.service.clone(),
            environment: new.environment.clone(),
            number,
            sealed: new.sealed.clone(),
            digest: new.digest.clone(),
            changed: new.changed.clone(),
            created_by: new.by.clone(),
            created_at: now,
            message: new.message.clone(),
            approved_by,
            approved_at,
        })
    }

    /// Version `number`, if it exists.
    pub async fn config_version(
        &self,
        service: &str,
        environment: &str,
        number: u64,
    ) -> Result<Option<ConfigVersionRecord>, StoreError> {
        let Some(number) = stored_number(number) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM config_versions \
             WHERE service = $1 AND environment = $2 AND number = $3"
        );
        let row = sqlx::query(&sql)
            .bind(service)
            .bind(environment)
            .bind(number)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// The newest version, if any.
    pub async fn latest_config_version(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<ConfigVersionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM config_versions WHERE service = $1 AND environment = $2 \
             ORDER BY number DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(service)
            .bind(environment)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Every version of a service in an environment, newest first.
    pub async fn config_versions(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Vec<ConfigVersionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM config_versions WHERE service = $1 AND environment = $2 \
             ORDER BY number DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(service)
            .bind(environment)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// The newest version of every service in every environment (for uniqueness checks), by
    /// service and environment.
    pub async fn latest_config_versions(&self) -> Result<Vec<ConfigVersionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM config_versions AS version WHERE number = \
             (SELECT MAX(number) FROM config_versions AS newer \
              WHERE newer.service = version.service AND newer.environment = version.environment) \
             ORDER BY service, environment"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(decode).collect()
    }

    /// Records `by`'s approval of version `number` with its `config_version_approved` event.
    /// `NotFound` when there is no such version; `AlreadyExists` when it is approved already.
    /// (Who may approve is the caller's rule.)
    pub async fn approve_config_version(
        &self,
        service: &str,
        environment: &str,
        number: u64,
        by: &str,
        now: Time,
    ) -> Result<ConfigVersionRecord, StoreError> {
        let not_found = || StoreError::NotFound {
            what: "config version",
            name: version_name(service, environment, number),
        };
        let stored = stored_number(number).ok_or_else(not_found)?;
        let mut tx = self.write.begin().await?;
        // One conditional UPDATE: of two concurrent approvals, one finds the row unapproved.
        let sql = format!(
            "UPDATE config_versions SET approved_by = $1, approved_at = $2 \
             WHERE service = $3 AND environment = $4 AND number = $5 AND approved_by IS NULL \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(by)
            .bind(now.as_millis())
            .bind(service)
            .bind(environment)
            .bind(stored)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            let exists = sqlx::query(
                "SELECT number FROM config_versions \
                 WHERE service = $1 AND environment = $2 AND number = $3",
            )
            .bind(service)
            .bind(environment)
            .bind(stored)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Err(match exists {
                Some(_) => StoreError::AlreadyExists {
                    what: "approval of config version",
                    name: version_name(service, environment, number),
                },
                None => not_found(),
            });
        };
        let record = decode(&row)?;
        let approved = event(
            "config_version_approved",
            json!({
                "service": service,
                "environment": environment,
                "version": number,
                "digest": record.digest,
                "by": by,
            }),
        );
        self.append(&mut tx, &[approved], now).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Re-wraps every version's data key (and every named key of [`Store::secret_key`]) with
    /// `rewrap`, which returns `None` for one already under the current key, in one
    /// transaction with a `master_key_rotated` event naming the new key id and the count.
    /// The ciphertext and digest of the values are untouched. Returns how many were re-wrapped.
    ///
    /// An error of `rewrap` (or a result that changes more than the wrapping, or wraps under
    /// another key than `key_id`) re-wraps nothing and is reported as `Invalid`, naming the
    /// version or key it failed on.
    pub async fn rewrap_sealed(
        &self,
        key_id: &str,
        by: &str,
        now: Time,
        rewrap: &(dyn Fn(&Sealed) -> Result<Option<Sealed>, String> + Send + Sync),
    ) -> Result<u64, StoreError> {
        let mut tx = self.write.begin().await?;
        let mut count = self.rewrap_versions(&mut tx, key_id, rewrap).await?;
        count += self.rewrap_secret_keys(&mut tx, key_id, rewrap).await?;
        let rotated = event(
            "master_key_rotated",
            json!({ "key_id": key_id, "rewrapped": count, "by": by }),
        );
        self.append(&mut tx, &[rotated], now).await?;
        tx.commit().await?;
        Ok(count)
    }

    /// Re-wraps the data key of every config version inside `tx`; returns how many changed.
    async fn rewrap_versions(
        &self,
        tx: &mut Transaction<'static, Any>,
        key_id: &str,
        rewrap: &(dyn Fn(&Sealed) -> Result<Option<Sealed>, String> + Send + Sync),
    ) -> Result<u64, StoreError> {
        // Locked: a second rotation running at once waits, then reads the rows this one wrote
        // and finds them under the new key already.
        let sql = format!(
            "SELECT service, environment, number, key_id, wrapped_key, nonce, ciphertext \
             FROM config_versions ORDER BY service, environment, number{}",
            self.lock(" FOR UPDATE")
        );
        let rows = sqlx::query(&sql).fetch_all(&mut **tx).await?;
        let mut count = 0;
        for row in &rows {
            let service: String = row.try_get("service")?;
            let environment: String = row.try_get("environment")?;
            let number = decode_number(row)?;
            let name = format!(
                "config version {}",
                version_name(&service, &environment, number)
            );
            let Some(new) = rewrapped(&name, key_id, &decode_sealed(row)?, rewrap)? else {
                continue;
            };
            sqlx::query(
                "UPDATE config_versions SET key_id = $1, wrapped_key = $2 \
                 WHERE service = $3 AND environment = $4 AND number = $5",
            )
            .bind(&new.key_id)
            .bind(new.wrapped_key)
            .bind(&service)
            .bind(&environment)
            .bind(row.try_get::<i64, _>("number")?)
            .execute(&mut **tx)
            .await?;
            count += 1;
        }
        Ok(count)
    }

    /// Re-wraps every named secret key inside `tx`; returns how many changed.
    async fn rewrap_secret_keys(
        &self,
        tx: &mut Transaction<'static, Any>,
        key_id: &str,
        rewrap: &(dyn Fn(&Sealed) -> Result<Option<Sealed>, String> + Send + Sync),
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT name, key_id, wrapped_key, nonce, ciphertext FROM secret_keys ORDER BY name{}",
            self.lock(" FOR UPDATE")
        );
        let rows = sqlx::query(&sql).fetch_all(&mut **tx).await?;
        let mut count = 0;
        for row in &rows {
            let name: String = row.try_get("name")?;
            let described = format!("the secret key `{name}`");
            let Some(new) = rewrapped(&described, key_id, &decode_sealed(row)?, rewrap)? else {
                continue;
            };
            sqlx::query("UPDATE secret_keys SET key_id = $1, wrapped_key = $2 WHERE name = $3")
                .bind(&new.key_id)
                .bind(new.wrapped_key)
                .bind(&name)
                .execute(&mut **tx)
                .await?;
            count += 1;
        }
        Ok(count)
    }

    /// A named key slipway keeps sealed in the database (the fingerprint key).
    pub async fn secret_key(&self, name: &str) -> Result<Option<Sealed>, StoreError> {
        let row = sqlx::query(
            "SELECT key_id, wrapped_key, nonce, ciphertext FROM secret_keys WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(decode_sealed).transpose()
    }

    /// Stores `sealed` as the named key unless one exists; returns the one stored (the first
    /// writer's, when two servers start at once).
    pub async fn put_secret_key(&self, name: &str, sealed: &Sealed) -> Result<Sealed, StoreError> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO secret_keys (name, key_id, wrapped_key, nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&sealed.key_id)
        .bind(sealed.wrapped_key.clone())
        .bind(sealed.nonce.clone())
        .bind(sealed.ciphertext.clone())
        .execute(&mut *tx)
        .await?;
        // On PostgreSQL a conflicting row committed after this transaction began is seen by
        // this next statement (read committed).
        let row = sqlx::query(
            "SELECT key_id, wrapped_key, nonce, ciphertext FROM secret_keys WHERE name = $1",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let stored = decode_sealed(&row)?;
        tx.commit().await?;
        Ok(stored)
    }
}
