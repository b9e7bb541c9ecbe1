//! Attestations: the DSSE envelopes CI signed for a pushed artifact, each recorded once with the
//! trusted key that signed it and the facts it states, and its audit event in the same
//! transaction. The caller verifies an envelope before recording it; preflight reads them back
//! by digest and verifies them again against the keys trusted then.

use serde::{Deserialize, Serialize};
use serde_json::json;
use slipway_core::provenance::Envelope;
use slipway_core::time::Time;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::catalog::event;
use crate::error::StoreError;
use crate::store::Store;

/// A verified attestation to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAttestation {
    pub service: String,
    pub version: String,
    /// The artifact's `sha256:…`, which the statement's subject matched.
    pub digest: String,
    pub envelope: Envelope,
    /// The trusted key that signed it: its name in `[provenance]`, id and `ed25519:…` text.
    pub key_name: String,
    pub key_id: String,
    pub public_key: String,
    pub commit: String,
    pub build_id: String,
    pub builder: String,
    /// Who uploaded it.
    pub recorded_by: String,
}

/// A recorded attestation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationRecord {
    pub id: i64,
    pub service: String,
    pub version: String,
    pub digest: String,
    /// The envelope as compact JSON.
    pub envelope: String,
    pub key_name: String,
    pub key_id: String,
    pub public_key: String,
    pub commit: String,
    pub build_id: String,
    pub builder: String,
    pub recorded_by: String,
    pub recorded_at: Time,
}

/// What [`Store::record_attestation`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttestationPut {
    /// Recorded now, with its audit event.
    Recorded(AttestationRecord),
    /// The same envelope was already recorded for this artifact: nothing was written.
    AlreadyRecorded(AttestationRecord),
}

const ATTESTATION_COLUMNS: &str = "id, service, version, digest, envelope, key_name, key_id, \
                                   public_key, source_commit, build_id, builder, recorded_by, \
                                   recorded_at";

fn decode_attestation(row: &AnyRow) -> Result<AttestationRecord, StoreError> {
    Ok(AttestationRecord {
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        envelope: row.try_get("envelope")?,
        key_name: row.try_get("key_name")?,
        key_id: row.try_get("key_id")?,
        public_key: row.try_get("public_key")?,
        commit: row.try_get("source_commit")?,
        build_id: row.try_get("build_id")?,
        builder: row.try_get("builder")?,
        recorded_by: row.try_get("recorded_by")?,
        recorded_at: Time(row.try_get("recorded_at")?),
    })
}

impl Store {
    /// Records a verified attestation of a pushed artifact and its `artifact_attested` event.
    /// `NotFound` when the version was never pushed; `Invalid` when the artifact's digest is not
    /// the attestation's; `AlreadyRecorded` (nothing written) for the same envelope again.
    pub async fn record_attestation(
        &self,
        new: &NewAttestation,
        now: Time,
    ) -> Result<AttestationPut, StoreError> {
        let mut tx = self.write.begin().await?;
        // Artifacts are never deleted or changed, so the digest read here holds at commit.
        let artifact =
            sqlx::query("SELECT digest FROM artifacts WHERE service = $1 AND version = $2")
                .bind(&new.service)
                .bind(&new.version)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(artifact) = artifact else {
            return Err(StoreError::NotFound {
                what: "artifact",
                name: format!("{} {}", new.service, new.version),
            });
        };
        let digest: String = artifact.try_get("digest")?;
        if digest != new.digest {
            return Err(StoreError::Invalid {
                message: format!(
                    "the attestation is about {}, but {} {} is {digest}",
                    new.digest, new.service, new.version
                ),
                hint: "attest the file that was pushed as this version".to_owned(),
            });
        }
        let envelope = new.envelope.to_json();
        let inserted = sqlx::query(
            "INSERT INTO attestations (service, version, digest, envelope, envelope_hash, \
             key_name, key_id, public_key, source_commit, build_id, builder, recorded_by, \
             recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (service, version, envelope_hash) DO NOTHING RETURNING id",
        )
        .bind(&new.service)
        .bind(&new.version)
        .bind(&new.digest)
        .bind(&envelope)
        .bind(new.envelope.id())
        .bind(&new.key_name)
        .bind(&new.key_id)
        .bind(&new.public_key)
        .bind(&new.commit)
        .bind(&new.build_id)
        .bind(&new.builder)
        .bind(&new.recorded_by)
        .bind(now.as_millis())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            let sql = format!(
                "SELECT {ATTESTATION_COLUMNS} FROM attestations \
                 WHERE service = $1 AND version = $2 AND envelope_hash = $3"
            );
            let row = sqlx::query(&sql)
                .bind(&new.service)
                .bind(&new.version)
                .bind(new.envelope.id())
                .fetch_one(&mut *tx)
                .await?;
            let existing = decode_attestation(&row)?;
            tx.rollback().await?;
            return Ok(AttestationPut::AlreadyRecorded(existing));
        };
        let record = AttestationRecord {
            id: row.try_get("id")?,
            service: new.service.clone(),
            version: new.version.clone(),
            digest: new.digest.clone(),
            envelope,
            key_name: new.key_name.clone(),
            key_id: new.key_id.clone(),
            public_key: new.public_key.clone(),
            commit: new.commit.clone(),
            build_id: new.build_id.clone(),
            builder: new.builder.clone(),
            recorded_by: new.recorded_by.clone(),
            recorded_at: now,
        };
        let attested = event(
            "artifact_attested",
            json!({
                "service": record.service,
                "version": record.version,
                "digest": record.digest,
                "key": record.key_name,
                "key_id": record.key_id,
                "commit": record.commit,
                "build_id": record.build_id,
                "builder": record.builder,
                "by": record.recorded_by,
            }),
        );
        self.append(&mut tx, &[attested], now).await?;
        tx.commit().await?;
        Ok(AttestationPut::Recorded(record))
    }

    /// The attestations of one artifact version, oldest first.
    pub async fn attestations(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Vec<AttestationRecord>, StoreError> {
        let sql = format!(
            "SELECT {ATTESTATION_COLUMNS} FROM attestations \
             WHERE service = $1 AND version = $2 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(service)
            .bind(version)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(decode_attestation).collect()
    }

    /// Every attestation of the artifact `digest` (under any service or version), newest
    /// first: what preflight verifies.
    pub async fn attestations_of(
        &self,
        digest: &str,
    ) -> Result<Vec<AttestationRecord>, StoreError> {
        let sql = format!(
            "SELECT {ATTESTATION_COLUMNS} FROM attestations WHERE digest = $1 ORDER BY id DESC"
        );
        let rows = sqlx::query(&sql).bind(digest).fetch_all(&self.read).await?;
        rows.iter().map(decode_attestation).collect()
    }
}
