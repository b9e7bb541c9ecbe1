//! Provenance: the artifact carries a valid signature of a trusted CI key.
//!
//! For an environment that requires provenance, every attestation recorded for the deploy's
//! artifact digest is verified again against the keys `slipway.toml` trusts now (a key removed
//! from the file no longer counts); the first that verifies passes the check, and the detail
//! names the key, builder, build and commit. Otherwise the deploy is refused with the reason —
//! no attestation, a key no longer trusted, an altered envelope, another subject — and a hint;
//! a confirmed break-glass may override it.
//!
//! A rollback goes back to an artifact that already ran in the environment, so a later change
//! of policy or keys must not keep it out in an incident: a rollback whose artifact has no
//! attestation, or only ones by a key no longer trusted (whose signature still verifies with
//! the key recorded with it), passes with a warning in its detail. Evidence of tampering (a
//! signature that no longer verifies, another subject) refuses a rollback too.

use std::collections::BTreeSet;

use async_trait::async_trait;
use slipway_core::config::{Config, ProvenanceRequirement};
use slipway_core::deploy::Deploy;
use slipway_core::plan::Purpose;
use slipway_core::provenance::{ProvenanceError, PublicKey, TrustedKey, Verified, verify};
use slipway_core::time::Time;
use slipway_store::{AttestationRecord, Store};

use crate::plugin::{PreflightCheck, Refusal};

/// The provenance preflight check, built from the configuration the server runs with.
pub struct ProvenanceCheck {
    store: Store,
    keys: Vec<TrustedKey>,
    /// Environments of the configuration, and those among them that require provenance. An
    /// environment the configuration no longer has is treated as requiring it.
    environments: BTreeSet<String>,
    required: BTreeSet<String>,
}

impl ProvenanceCheck {
    pub fn new(store: Store, config: &Config) -> ProvenanceCheck {
        ProvenanceCheck {
            store,
            keys: config.provenance.keys.clone(),
            environments: config.environments.iter().map(|e| e.name.clone()).collect(),
            required: config
                .environments
                .iter()
                .filter(|e| e.policy.provenance == ProvenanceRequirement::Required)
                .map(|e| e.name.clone())
                .collect(),
        }
    }

    fn requires(&self, environment: &str) -> bool {
        self.required.contains(environment) || !self.environments.contains(environment)
    }
}

/// `sha256:3f2a9c1d0e4b…`: enough of a digest to recognise it.
fn short_digest(digest: &str) -> String {
    let shown: String = digest.chars().take("sha256:".len() + 12).collect();
    if shown.len() < digest.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

fn passed(verified: &Verified) -> String {
    format!(
        "artifact {} signed by key {} (builder {}, build {}, commit {})",
        short_digest(&verified.digest),
        verified.key,
        verified.builder,
        verified.build_id,
        verified.commit
    )
}

/// Why one recorded attestation does not pass now.
enum Problem {
    /// Its signature verifies with the key recorded with it, which is no longer trusted.
    KeyNoLongerTrusted { key: String, key_id: String },
    /// Anything else: an altered envelope, another subject, an unreadable statement.
    Invalid(ProvenanceError),
}

impl Problem {
    fn of(record: &AttestationRecord, error: ProvenanceError, digest: &str) -> Problem {
        if !matches!(error, ProvenanceError::Untrusted { .. }) {
            return Problem::Invalid(error);
        }
        // Recorded only after it verified with a trusted key: check it still does with that key.
        let recorded = PublicKey::parse(&record.public_key).map(|public_key| TrustedKey {
            name: record.key_name.clone(),
            public_key,
        });
        match recorded.map(|key| verify(&record.envelope, &[key], digest)) {
            Ok(Ok(_)) => Problem::KeyNoLongerTrusted {
                key: record.key_name.clone(),
                key_id: record.key_id.clone(),
            },
            Ok(Err(error)) | Err(error) => Problem::Invalid(error),
        }
    }

    fn describe(&self) -> String {
        match self {
            Problem::KeyNoLongerTrusted { key, key_id } => format!(
                "it is signed by key `{key}` (id {}), which slipway.toml no longer trusts",
                slipway_core::provenance::short_key_id(key_id)
            ),
            Problem::Invalid(error) => error.to_string(),
        }
    }
}

#[async_trait]
impl PreflightCheck for ProvenanceCheck {
    fn name(&self) -> &'static str {
        "provenance"
    }

    async fn check(&self, deploy: &Deploy, _now: Time) -> Result<String, Refusal> {
        let spec = &deploy.spec;
        if !self.requires(&spec.environment) {
            return Ok(format!(
                "{} does not require provenance (provenance = \"off\")",
                spec.environment
            ));
        }
        let digest = &spec.release.artifact;
        let records = self
            .store
            .attestations_of(digest)
            .await
            .map_err(|error| Refusal {
                message: format!("cannot read the artifact's attestations: {error}"),
                hint: "check the database, then deploy again".to_owned(),
                until: None,
                overridable: false,
            })?;
        let mut problems = Vec::new();
        for record in &records {
            match verify(&record.envelope, &self.keys, digest) {
                Ok(verified) => return Ok(passed(&verified)),
                Err(error) => problems.push(Problem::of(record, error, digest)),
            }
        }
        let release = format!(
            "artifact {} of {} {} ({})",
            short_digest(digest),
            spec.service,
            spec.release.version,
            spec.release.label
        );
        let attest = format!(
            "have CI sign it: slipway artifact attest {} {} --key ci.key --commit SHA \
             --build-id ID --builder URI --file ARTIFACT (docs/provenance.md)",
            spec.service, spec.release.version
        );
        let trusted: Vec<&str> = self.keys.iter().map(|k| k.name.as_str()).collect();
        let Some(newest) = problems.first() else {
            if spec.purpose == Purpose::Rollback {
                return Ok(format!(
                    "warning: {release} has no provenance attestation; not refused, as a \
                     rollback returns to an artifact that ran in {} before",
                    spec.environment
                ));
            }
            return Err(Refusal {
                message: format!(
                    "{release} has no provenance attestation; {} requires one signed by a \
                     trusted CI key",
                    spec.environment
                ),
                hint: attest,
                until: None,
                overridable: true,
            });
        };
        let lapsed_only = problems
            .iter()
            .all(|problem| matches!(problem, Problem::KeyNoLongerTrusted { .. }));
        if spec.purpose == Purpose::Rollback && lapsed_only {
            return Ok(format!(
                "warning: {release}: {}; not refused, as a rollback returns to an artifact that \
                 ran in {} before",
                newest.describe(),
                spec.environment
            ));
        }
        let count = match problems.len() {
            1 => "its attestation is not valid".to_owned(),
            n => format!("none of its {n} attestations is valid; the newest"),
        };
        let hint = match newest {
            Problem::KeyNoLongerTrusted { key, .. } => format!(
                "sign it again with a key slipway.toml trusts ({}), or trust key `{key}` again \
                 under [provenance]; {attest}",
                trusted.join(", ")
            ),
            Problem::Invalid(ProvenanceError::SignatureInvalid { .. }) => {
                format!("the recorded envelope was altered; {attest}")
            }
            Problem::Invalid(error) => error.hint(),
        };
        Err(Refusal {
            message: format!("{release}: {count}: {}", newest.describe()),
            hint,
            until: None,
            overridable: true,
        })
    }
}
