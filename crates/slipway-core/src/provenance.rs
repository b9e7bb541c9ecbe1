//! Provenance: an in-toto statement that CI built an artifact, signed by CI in a DSSE envelope
//! with an ed25519 key, and its verification against the keys `slipway.toml` trusts.
//!
//! The statement is an in-toto Statement v1 whose subject is the artifact's SHA-256 and whose
//! predicate is SLSA provenance v1, so other tools read it too: the builder in
//! `runDetails.builder.id`, the build id in `runDetails.metadata.invocationId`, the commit in
//! `buildDefinition.resolvedDependencies[].digest.gitCommit`. The envelope is DSSE v1: the
//! statement's JSON in base64, signed over its pre-authentication encoding ([`pae`]).
//!
//! Keys: a private key is PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes); a
//! public key is written `ed25519:` followed by the standard base64 of its 32 bytes; a key id is
//! the lowercase hex SHA-256 of those 32 bytes. Pure: no IO, no clock, no randomness (a new
//! key is made from a seed the caller draws).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `payloadType` of a DSSE envelope carrying an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `predicateType` of SLSA provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// `buildDefinition.buildType` of the statements `slipway artifact attest` makes: a CI build
/// of one service version, described in `docs/provenance.md`.
pub const BUILD_TYPE: &str = "urn:slipway:build-type:ci-artifact:v1";
/// How a public key is written in `slipway.toml`.
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";

/// Why an attestation or a key is refused. Each says what is wrong; [`ProvenanceError::hint`]
/// says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// The text is not a JSON DSSE envelope (`payloadType`, `payload`, `signatures`).
    #[error("the attestation is not a DSSE envelope in JSON: {0}")]
    NotJson(String),
    /// The envelope carries something else than an in-toto statement.
    #[error("the envelope's payloadType is `{found}`, not `{PAYLOAD_TYPE}`")]
    WrongPayloadType { found: String },
    /// The payload or a signature is not base64 (standard or URL-safe).
    #[error("the envelope's {what} is not base64")]
    BadBase64 { what: &'static str },
    /// No signature verifies with a trusted key: unsigned, or signed by keys `slipway.toml` does
    /// not list. `key_ids` are the envelope's (unauthenticated) key ids, `trusted` the names of
    /// the configured keys.
    #[error("{}", untrusted_message(key_ids))]
    Untrusted {
        key_ids: Vec<String>,
        trusted: Vec<String>,
    },
    /// A signature names a trusted key but does not verify: the payload (or the signature) was
    /// changed after signing.
    #[error(
        "the signature by key `{key}` does not match the envelope's payload: it was altered after \
         signing"
    )]
    SignatureInvalid { key: String },
    /// The signed payload is not an in-toto v1 statement with SLSA v1 provenance carrying a
    /// commit, a build id and a builder.
    #[error("the signed payload is not slipway-readable provenance: {0}")]
    NotAStatement(String),
    /// The statement is about another artifact.
    #[error(
        "the statement is about {}, not the artifact {expected}",
        found_subjects(found)
    )]
    SubjectMismatch {
        expected: String,
        found: Vec<String>,
    },
    /// The facts given to [`statement`] cannot make a statement.
    #[error("{0}")]
    InvalidFacts(String),
    /// A private key file that is not an ed25519 key in PKCS#8 PEM.
    #[error("not an ed25519 private key in PKCS#8 PEM: {0}")]
    InvalidPrivateKey(String),
    /// A public key that is not `ed25519:` and the base64 of 32 bytes of a valid key.
    #[error("`{text}` is not an ed25519 public key: {reason}")]
    InvalidPublicKey { text: String, reason: String },
}

fn untrusted_message(key_ids: &[String]) -> String {
    let named: Vec<&str> = key_ids
        .iter()
        .filter(|id| !id.is_empty())
        .map(String::as_str)
        .collect();
    match (key_ids.is_empty(), named.as_slice()) {
        (true, _) => "the envelope has no signature".to_owned(),
        (false, []) => "no signature of the envelope is by a trusted key".to_owned(),
        (false, ids) => format!(
            "no signature of the envelope is by a trusted key (signed by key id {})",
            ids.iter()
                .map(|id| short_key_id(id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn found_subjects(found: &[String]) -> String {
    if found.is_empty() {
        "no sha256 subject".to_owned()
    } else {
        found.join(", ")
    }
}

/// The first 12 hex digits of a key id, as messages show it.
pub fn short_key_id(key_id: &str) -> String {
    key_id.chars().take(12).collect()
}

impl ProvenanceError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Self::NotJson(_) | Self::BadBase64 { .. } | Self::WrongPayloadType { .. } => {
                "send the envelope `slipway artifact attest` writes (docs/provenance.md)".to_owned()
            }
            Self::Untrusted { trusted, .. } if trusted.is_empty() => {
                "slipway.toml trusts no key: add the CI key's public key under [provenance] keys \
                 (`slipway artifact keygen` prints the line)"
                    .to_owned()
            }
            Self::Untrusted { trusted, .. } => format!(
                "sign with a key [provenance] trusts ({}), or add this key's public key there",
                trusted.join(", ")
            ),
            Self::SignatureInvalid { .. } => {
                "attest the artifact again from CI with `slipway artifact attest`".to_owned()
            }
            Self::NotAStatement(_) => {
                "sign the statement `slipway artifact attest` makes (docs/provenance.md)".to_owned()
            }
            Self::SubjectMismatch { .. } => {
                "attest the file that was pushed: `slipway artifact attest SERVICE VERSION --file \
                 FILE …` with the same file as `slipway artifact push`"
                    .to_owned()
            }
            Self::InvalidFacts(_) => "see `slipway artifact attest --help`".to_owned(),
            Self::InvalidPrivateKey(_) => {
                "make one with `slipway artifact keygen --out ci.key` (or `openssl genpkey \
                 -algorithm ed25519`)"
                    .to_owned()
            }
            Self::InvalidPublicKey { .. } => {
                "write public_key = \"ed25519:BASE64\", as `slipway artifact keygen` prints it"
                    .to_owned()
            }
        }
    }
}

/// An ed25519 private key: CI's, used to sign. Its `Debug` shows only the public half.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.public_key())
    }
}

impl PrivateKey {
    /// The key made from 32 random bytes (RFC 8032's secret key); the caller draws them.
    pub fn from_seed(seed: [u8; 32]) -> PrivateKey {
        PrivateKey(SigningKey::from_bytes(&seed))
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(text: &str) -> Result<PrivateKey, ProvenanceError> {
        SigningKey::from_pkcs8_pem(text.trim())
            .map(PrivateKey)
            .map_err(|error| ProvenanceError::InvalidPrivateKey(error.to_string()))
    }

    /// The key as PKCS#8 v1 PEM (the seed alone, as `openssl genpkey` writes it, which every
    /// OpenSSL reads), ending in a newline.
    pub fn to_pem(&self) -> String {
        let bytes = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        match bytes.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => pem.to_string(),
            // Encoding 32 bytes into a fixed structure cannot fail.
            Err(error) => unreachable!("an ed25519 key always encodes as PKCS#8: {error}"),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

/// An ed25519 public key, written `ed25519:BASE64` (standard base64 of its 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads `ed25519:BASE64`.
    pub fn parse(text: &str) -> Result<PublicKey, ProvenanceError> {
        let invalid = |reason: &str| ProvenanceError::InvalidPublicKey {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let encoded = text
            .trim()
            .strip_prefix(PUBLIC_KEY_PREFIX)
            .ok_or_else(|| invalid("it must start with `ed25519:`"))?;
        let bytes = decode_base64(encoded).ok_or_else(|| invalid("not base64 after `ed25519:`"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| invalid(&format!("{} bytes, not 32", bytes.len())))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| invalid("the bytes are not a point of the curve"))
    }

    /// The lowercase hex SHA-256 of the key's 32 bytes: the `keyid` of its signatures.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify_strict(message, signature).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PUBLIC_KEY_PREFIX}{}",
            STANDARD.encode(self.0.as_bytes())
        )
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl From<PublicKey> for String {
    fn from(key: PublicKey) -> String {
        key.to_string()
    }
}

impl TryFrom<String> for PublicKey {
    type Error = ProvenanceError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        PublicKey::parse(&text)
    }
}

/// A public key `slipway.toml` trusts, with the name messages and events use for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub name: String,
    pub public_key: PublicKey,
}

/// An in-toto Statement v1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// Kept as JSON so statements of other tools can be read; ours is [`Provenance`].
    pub predicate: serde_json::Value,
}

/// What a statement is about: a name and its digests by algorithm (`sha256` → hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

/// The parts of SLSA provenance v1 slipway writes and reads; other fields are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    #[serde(default)]
    pub external_parameters: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// A SLSA resource descriptor: here the source, by its commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
}

/// A DSSE envelope in its JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    /// The serialized body, base64.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// An unauthenticated hint of the key (slipway: [`PublicKey::key_id`]); may be empty.
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

impl Envelope {
    /// Reads an envelope from its JSON text.
    pub fn parse(text: &str) -> Result<Envelope, ProvenanceError> {
        serde_json::from_str(text).map_err(|error| ProvenanceError::NotJson(error.to_string()))
    }

    /// The envelope as compact JSON.
    pub fn to_json(&self) -> String {
        match serde_json::to_string(self) {
            Ok(text) => text,
            Err(error) => unreachable!("an envelope of strings always serializes: {error}"),
        }
    }

    /// The lowercase hex SHA-256 of [`Envelope::to_json`]: the same envelope, however it was
    /// spaced when sent, has the same id.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.to_json().as_bytes()))
    }
}

/// What CI says about a build: the facts a statement carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildFacts {
    pub service: String,
    pub version: String,
    /// The artifact's `sha256:<64 hex>`.
    pub digest: String,
    /// The source commit (hex).
    pub commit: String,
    /// CI's id of the build run (`4812`, a URL).
    pub build_id: String,
    /// A URI naming the builder (`https://ci.example.com/pipelines/idp`).
    pub builder: String,
}

/// What a verified attestation says, and which trusted key signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The trusted key's name.
    pub key: String,
    pub key_id: String,
    /// `sha256:<64 hex>`: the subject that matched the artifact.
    pub digest: String,
    pub commit: String,
    pub build_id: String,
    pub builder: String,
}

/// The SHA-256 hex of a `sha256:<64 lowercase hex>` digest, if it is one.
fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then_some(hex)
}

/// The in-toto statement of a CI build: subject `SERVICE@VERSION` with the artifact's SHA-256,
/// SLSA provenance v1 with the builder, the build id and the commit.
pub fn statement(facts: &BuildFacts) -> Result<Statement, ProvenanceError> {
    let Some(hex) = sha256_hex(&facts.digest) else {
        return Err(ProvenanceError::InvalidFacts(format!(
            "`{}` is not a digest: write sha256: and 64 lowercase hex digits",
            facts.digest
        )));
    };
    for (what, value) in [
        ("service", &facts.service),
        ("version", &facts.version),
        ("commit", &facts.commit),
        ("build id", &facts.build_id),
        ("builder", &facts.builder),
    ] {
        if value.trim().is_empty() {
            return Err(ProvenanceError::InvalidFacts(format!(
                "the {what} must not be empty"
            )));
        }
    }
    let commit = facts.commit.trim().to_ascii_lowercase();
    if !(7..=64).contains(&commit.len()) || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ProvenanceError::InvalidFacts(format!(
            "commit `{}` is not a hexadecimal commit id",
            facts.commit
        )));
    }
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.to_owned(),
            external_parameters: serde_json::json!({
                "service": facts.service,
                "version": facts.version,
            }),
            resolved_dependencies: vec![ResourceDescriptor {
                name: Some("source".to_owned()),
                uri: None,
                digest: BTreeMap::from([("gitCommit".to_owned(), commit)]),
            }],
        },
        run_details: RunDetails {
            builder: Builder {
                id: facts.builder.trim().to_owned(),
            },
            metadata: Metadata {
                invocation_id: Some(facts.build_id.trim().to_owned()),
            },
        },
    };
    Ok(Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject: vec![Subject {
            name: format!("{}@{}", facts.service, facts.version),
            digest: BTreeMap::from([("sha256".to_owned(), hex.to_owned())]),
        }],
        predicate_type: PREDICATE_TYPE.to_owned(),
        predicate: serde_json::to_value(provenance)
            .map_err(|error| ProvenanceError::InvalidFacts(error.to_string()))?,
    })
}

/// DSSE's pre-authentication encoding, what is signed:
/// `DSSEv1 LEN(type) type LEN(body) body`, lengths in bytes as decimal ASCII.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut encoded = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    encoded.extend_from_slice(body);
    encoded
}

/// Signs any payload into a DSSE envelope with one signature whose keyid is the key's id.
pub fn sign_payload(payload_type: &str, body: &[u8], key: &PrivateKey) -> Envelope {
    let signature = key.0.sign(&pae(payload_type, body));
    Envelope {
        payload_type: payload_type.to_owned(),
        payload: STANDARD.encode(body),
        signatures: vec![EnvelopeSignature {
            keyid: key.public_key().key_id(),
            sig: STANDARD.encode(signature.to_bytes()),
        }],
    }
}

/// Signs a statement: its JSON in an in-toto DSSE envelope.
pub fn sign(statement: &Statement, key: &PrivateKey) -> Envelope {
    let body = match serde_json::to_vec(statement) {
        Ok(body) => body,
        Err(error) => unreachable!("a statement always serializes: {error}"),
    };
    sign_payload(PAYLOAD_TYPE, &body, key)
}

/// Standard or URL-safe base64, padded or not: DSSE verifiers must accept either alphabet.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

/// Verifies the envelope's signatures (DSSE, threshold one) and returns the trusted key that
/// signed and the payload. The key id of a signature only chooses which key to try first: a
/// signature whose key id names a trusted key must verify with it (else the payload was
/// altered); any other is tried with every trusted key.
pub fn verify_envelope<'k>(
    envelope: &Envelope,
    keys: &'k [TrustedKey],
) -> Result<(&'k TrustedKey, Vec<u8>), ProvenanceError> {
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(ProvenanceError::WrongPayloadType {
            found: envelope.payload_type.clone(),
        });
    }
    let body =
        decode_base64(&envelope.payload).ok_or(ProvenanceError::BadBase64 { what: "payload" })?;
    let message = pae(&envelope.payload_type, &body);
    let mut altered = None;
    for signature in &envelope.signatures {
        let bytes = decode_base64(&signature.sig)
            .ok_or(ProvenanceError::BadBase64 { what: "signature" })?;
        // A signature of the wrong length verifies with no key.
        let parsed = Signature::from_slice(&bytes).ok();
        let named = keys
            .iter()
            .find(|key| key.public_key.key_id() == signature.keyid);
        match (named, parsed) {
            (Some(key), Some(parsed)) if key.public_key.verifies(&message, &parsed) => {
                return Ok((key, body));
            }
            (Some(key), _) => altered = Some(key.name.clone()),
            (None, Some(parsed)) => {
                if let Some(key) = keys
                    .iter()
                    .find(|key| key.public_key.verifies(&message, &parsed))
                {
                    return Ok((key, body));
                }
            }
            (None, None) => {}
        }
    }
    Err(match altered {
        Some(key) => ProvenanceError::SignatureInvalid { key },
        None => ProvenanceError::Untrusted {
            key_ids: envelope
                .signatures
                .iter()
                .map(|s| s.keyid.clone())
                .collect(),
            trusted: keys.iter().map(|key| key.name.clone()).collect(),
        },
    })
}

/// Verifies an envelope's JSON text as provenance of the artifact `digest` (`sha256:…`): a
/// DSSE envelope of an in-toto statement, signed by one of `keys`, whose subjects include the
/// digest and whose SLSA v1 predicate names a builder, a build id and a commit.
pub fn verify(
    envelope: &str,
    keys: &[TrustedKey],
    digest: &str,
) -> Result<Verified, ProvenanceError> {
    let envelope = Envelope::parse(envelope)?;
    let (key, body) = verify_envelope(&envelope, keys)?;
    let statement: Statement = serde_json::from_slice(&body)
        .map_err(|error| ProvenanceError::NotAStatement(error.to_string()))?;
    if statement.statement_type != STATEMENT_TYPE {
        return Err(ProvenanceError::NotAStatement(format!(
            "_type is `{}`, not `{STATEMENT_TYPE}`",
            statement.statement_type
        )));
    }
    let expected = digest.strip_prefix("sha256:").unwrap_or(digest);
    let found: Vec<String> = statement
        .subject
        .iter()
        .filter_map(|subject| subject.digest.get("sha256"))
        .map(|hex| format!("sha256:{hex}"))
        .collect();
    if !found
        .iter()
        .any(|subject| subject.strip_prefix("sha256:") == Some(expected))
    {
        return Err(ProvenanceError::SubjectMismatch {
            expected: digest.to_owned(),
            found,
        });
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(ProvenanceError::NotAStatement(format!(
            "predicateType is `{}`, not `{PREDICATE_TYPE}`",
            statement.predicate_type
        )));
    }
    let provenance: Provenance = serde_json::from_value(statement.predicate)
        .map_err(|error| ProvenanceError::NotAStatement(error.to_string()))?;
    let commit = provenance
        .build_definition
        .resolved_dependencies
        .iter()
        .find_map(|dependency| dependency.digest.get("gitCommit"))
        .filter(|commit| !commit.is_empty())
        .ok_or_else(|| {
            ProvenanceError::NotAStatement(
                "no buildDefinition.resolvedDependencies[].digest.gitCommit".to_owned(),
            )
        })?;
    let build_id = provenance
        .run_details
        .metadata
        .invocation_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ProvenanceError::NotAStatement("no runDetails.metadata.invocationId".to_owned())
        })?;
    let builder = provenance.run_details.builder.id;
    if builder.is_empty() {
        return Err(ProvenanceError::NotAStatement(
            "runDetails.builder.id is empty".to_owned(),
        ));
    }
    Ok(Verified {
        key: key.name.clone(),
        key_id: key.public_key.key_id(),
        digest: format!("sha256:{expected}"),
        commit: commit.clone(),
        build_id,
        builder,
    })
}
