//! Attestations of artifacts: CI uploads the DSSE envelope it signed; the server verifies it
//! against the keys `slipway.toml` trusts and the artifact's recorded digest before recording
//! it, and lists them with whether each still verifies.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use slipway_core::deploy::Role;
use slipway_core::provenance::{Envelope, ProvenanceError, verify};
use slipway_store::{ArtifactRecord, AttestationPut, AttestationRecord, NewAttestation};

use super::catalog::service;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::views::{AttestationPushView, AttestationView, timestamp};

/// The error answered for an envelope that does not verify: what is wrong and what to do.
fn refused(error: &ProvenanceError) -> ApiError {
    let (status, code) = match error {
        ProvenanceError::NotJson(_) => (StatusCode::BAD_REQUEST, "not_an_envelope"),
        ProvenanceError::WrongPayloadType { .. } => (StatusCode::BAD_REQUEST, "wrong_payload_type"),
        ProvenanceError::BadBase64 { .. } => (StatusCode::BAD_REQUEST, "bad_base64"),
        ProvenanceError::Untrusted { .. } => (StatusCode::FORBIDDEN, "untrusted_key"),
        ProvenanceError::SignatureInvalid { .. } => (StatusCode::BAD_REQUEST, "signature_invalid"),
        ProvenanceError::SubjectMismatch { .. } => (StatusCode::BAD_REQUEST, "subject_mismatch"),
        ProvenanceError::NotAStatement(_)
        | ProvenanceError::InvalidFacts(_)
        | ProvenanceError::InvalidPrivateKey(_)
        | ProvenanceError::InvalidPublicKey { .. } => (StatusCode::BAD_REQUEST, "not_provenance"),
    };
    ApiError::new(status, code, error.to_string()).with_hint(error.hint())
}

async fn artifact(state: &AppState, name: &str, version: &str) -> ApiResult<ArtifactRecord> {
    service(state, name)?;
    state.store.artifact(name, version).await?.ok_or_else(|| {
        ApiError::not_found(format!("no artifact of {name} with version `{version}`")).with_hint(
            format!(
                "push it before attesting it: `slipway artifact push FILE --service {name} \
                 --version {version}`"
            ),
        )
    })
}

fn view(state: &AppState, record: &AttestationRecord) -> AttestationView {
    let trusted = verify(
        &record.envelope,
        &state.config.provenance.keys,
        &record.digest,
    )
    .is_ok();
    AttestationView {
        id: record.id,
        service: record.service.clone(),
        version: record.version.clone(),
        digest: record.digest.clone(),
        key: record.key_name.clone(),
        key_id: record.key_id.clone(),
        trusted,
        commit: record.commit.clone(),
        build_id: record.build_id.clone(),
        builder: record.builder.clone(),
        recorded_by: record.recorded_by.clone(),
        recorded_at: timestamp(record.recorded_at),
        envelope: serde_json::from_str(&record.envelope).unwrap_or(serde_json::Value::Null),
    }
}

/// Records CI's signed provenance of an artifact: the body is the DSSE envelope
/// (`slipway artifact attest` makes it). It must carry an in-toto statement whose subject is
/// the artifact's digest, signed by a key of `[provenance]`. The same envelope again changes
/// nothing (200).
#[utoipa::path(post, path = "/api/v1/artifacts/{service}/{version}/attestations", tag = "provenance",
    params(("service" = String, Path), ("version" = String, Path)),
    request_body(content = Object, description = "A DSSE envelope", content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = AttestationPushView),
        (status = 200, description = "Already recorded", body = AttestationPushView),
        (status = 400, description = "Not a valid envelope of this artifact", body = crate::error::ErrorBody),
        (status = 403, description = "Signed by no trusted key", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown service or artifact", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn attest(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<AttestationPushView>)> {
    caller.require(Role::Deployer, "attesting an artifact")?;
    let artifact = artifact(&state, &name, &version).await?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        refused(&ProvenanceError::NotJson(
            "the body is not UTF-8".to_owned(),
        ))
    })?;
    let keys = &state.config.provenance.keys;
    let verified = verify(text, keys, &artifact.digest).map_err(|error| refused(&error))?;
    let envelope = Envelope::parse(text).map_err(|error| refused(&error))?;
    let Some(key) = keys.iter().find(|key| key.name == verified.key) else {
        return Err(ApiError::internal(
            &"a verified key is not among the trusted keys",
        ));
    };
    let new = NewAttestation {
        service: name,
        version,
        digest: artifact.digest,
        envelope,
        key_name: verified.key.clone(),
        key_id: verified.key_id,
        public_key: key.public_key.to_string(),
        commit: verified.commit,
        build_id: verified.build_id,
        builder: verified.builder,
        recorded_by: caller.user.name.clone(),
    };
    let (status, created, record) = match state
        .store
        .record_attestation(&new, state.clock.now())
        .await?
    {
        AttestationPut::Recorded(record) => (StatusCode::CREATED, true, record),
        AttestationPut::AlreadyRecorded(record) => (StatusCode::OK, false, record),
    };
    let attestation = view(&state, &record);
    Ok((
        status,
        Json(AttestationPushView {
            created,
            attestation,
        }),
    ))
}

/// The attestations of an artifact, oldest first, each with whether it verifies with a key
/// trusted now.
#[utoipa::path(get, path = "/api/v1/artifacts/{service}/{version}/attestations", tag = "provenance",
    params(("service" = String, Path), ("version" = String, Path)),
    responses(
        (status = 200, body = Vec<AttestationView>),
        (status = 404, description = "Unknown service or artifact", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn list_attestations(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Vec<AttestationView>>> {
    artifact(&state, &name, &version).await?;
    let records = state.store.attestations(&name, &version).await?;
    Ok(Json(records.iter().map(|r| view(&state, r)).collect()))
}
