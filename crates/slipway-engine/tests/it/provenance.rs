//! The provenance preflight check on a real store: an artifact attested by a trusted key
//! passes with the facts in its detail; no attestation, a key no longer trusted and an altered
//! envelope each refuse with their reason and a hint; a rollback is not kept out by a key
//! rotation; an environment with `provenance = "off"` is not checked.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use slipway_core::config::{Config, parse_config};
use slipway_core::deploy::{Deploy, DeployId, DeployRequest, DeploySpec, ReleaseRef};
use slipway_core::plan::ReleaseKind;
use slipway_core::provenance::{BuildFacts, Envelope, PrivateKey, sign, statement};
use slipway_core::time::Time;
use slipway_engine::plugin::{PreflightCheck, Refusal};
use slipway_engine::preflight::provenance::ProvenanceCheck;
use slipway_store::{ArtifactRecord, NewAttestation, Store};

const T0: Time = Time::from_millis(1_800_000_000_000);
const DIGEST: &str = "sha256:3f2a9c1d0e4b00000000000000000000000000000000000000000000000000aa";

fn ci() -> PrivateKey {
    PrivateKey::from_seed([1; 32])
}

fn config(keys: &[(&str, &PrivateKey)]) -> Config {
    let keys: Vec<String> = keys
        .iter()
        .map(|(name, key)| {
            format!(
                "{{ name = \"{name}\", public_key = \"{}\" }}",
                key.public_key()
            )
        })
        .collect();
    let text = format!(
        "[[service]]\nname = \"idp\"\nstart = \"bin/server\"\n\
         [provenance]\nkeys = [{}]\n\
         [environment.dev]\n[environment.prod]\nprotected = true\n",
        keys.join(", ")
    );
    parse_config("slipway.toml", &text).unwrap()
}

fn deploy(config: &Config, environment: &str) -> Deploy {
    let request = DeployRequest {
        service: config.service("idp").unwrap(),
        environment: config.environment(environment).unwrap(),
        kind: ReleaseKind::Full,
        release: ReleaseRef {
            label: "RC 7".to_owned(),
            version: "1.4.0".to_owned(),
            artifact: DIGEST.to_owned(),
            config: "config-7".to_owned(),
            config_version: None,
        },
        previous: None,
        requested_by: "alice".to_owned(),
        reason: None,
    };
    Deploy {
        spec: DeploySpec::new(DeployId(1), request, T0),
        progress: Default::default(),
    }
}

/// The same deploy as a rollback.
fn rollback(config: &Config) -> Deploy {
    let mut deploy = deploy(config, "prod");
    let to = deploy.spec.release.clone();
    deploy.spec = DeploySpec::rollback(
        DeployId(2),
        &deploy.spec,
        to,
        &[None],
        "alice".to_owned(),
        "bad numbers".to_owned(),
        T0,
    );
    deploy
}

async fn push(store: &Store) {
    let artifact = ArtifactRecord {
        id: 0,
        service: "idp".to_owned(),
        version: "1.4.0".to_owned(),
        digest: DIGEST.to_owned(),
        size: 1,
        commit: None,
        pushed_by: "ci".to_owned(),
        pushed_at: T0,
    };
    store.record_artifact(&artifact).await.unwrap();
}

fn signed(key: &PrivateKey) -> Envelope {
    let facts = BuildFacts {
        service: "idp".to_owned(),
        version: "1.4.0".to_owned(),
        digest: DIGEST.to_owned(),
        commit: "3f2a9c1".to_owned(),
        build_id: "4812".to_owned(),
        builder: "https://ci.example.com/idp".to_owned(),
    };
    sign(&statement(&facts).unwrap(), key)
}

/// Records `envelope` as the server does after verifying it with `key` named `name`.
async fn record(store: &Store, name: &str, key: &PrivateKey, envelope: Envelope) {
    let new = NewAttestation {
        service: "idp".to_owned(),
        version: "1.4.0".to_owned(),
        digest: DIGEST.to_owned(),
        envelope,
        key_name: name.to_owned(),
        key_id: key.public_key().key_id(),
        public_key: key.public_key().to_string(),
        commit: "3f2a9c1".to_owned(),
        build_id: "4812".to_owned(),
        builder: "https://ci.example.com/idp".to_owned(),
        recorded_by: "ci-bot".to_owned(),
    };
    store.record_attestation(&new, T0).await.unwrap();
}

async fn refusal(check: &ProvenanceCheck, deploy: &Deploy) -> Refusal {
    match check.check(deploy, T0).await {
        Ok(detail) => panic!("expected a refusal, passed: {detail}"),
        Err(refusal) => refusal,
    }
}

#[tokio::test]
async fn attested_artifact_passes_naming_key_builder_build_and_commit() {
    let test = slipway_testkit::store::sqlite().await;
    let store = &test.store;
    push(store).await;
    record(store, "ci", &ci(), signed(&ci())).await;
    let config = config(&[("ci", &ci())]);
    let check = ProvenanceCheck::new(store.clone(), &config);

    let detail = check.check(&deploy(&config, "prod"), T0).await.unwrap();

    assert_eq!(check.name(), "provenance");
    assert_eq!(
        detail,
        "artifact sha256:3f2a9c1d0e4b… signed by key ci (builder https://ci.example.com/idp, \
         build 4812, commit 3f2a9c1)"
    );
}

#[tokio::test]
async fn artifact_without_attestation_is_refused_with_the_attest_command() {
    let test = slipway_testkit::store::sqlite().await;
    push(&test.store).await;
    let config = config(&[("ci", &ci())]);
    let check = ProvenanceCheck::new(test.store.clone(), &config);

    let refusal = refusal(&check, &deploy(&config, "prod")).await;

    assert_eq!(
        refusal,
        Refusal {
            message: "artifact sha256:3f2a9c1d0e4b… of idp 1.4.0 (RC 7) has no provenance \
                      attestation; prod requires one signed by a trusted CI key"
                .to_owned(),
            hint: "have CI sign it: slipway artifact attest idp 1.4.0 --key ci.key --commit SHA \
                   --build-id ID --builder URI --file ARTIFACT (docs/provenance.md)"
                .to_owned(),
            until: None,
            overridable: true,
        }
    );
    // Where provenance is off, nothing is checked.
    assert_eq!(
        check.check(&deploy(&config, "dev"), T0).await.unwrap(),
        "dev does not require provenance (provenance = \"off\")"
    );
}

#[tokio::test]
async fn key_removed_from_the_config_no_longer_counts() {
    let test = slipway_testkit::store::sqlite().await;
    let store = &test.store;
    push(store).await;
    record(store, "ci-2025", &ci(), signed(&ci())).await;
    let rotated = PrivateKey::from_seed([2; 32]);
    let config = config(&[("ci-2026", &rotated)]);
    let check = ProvenanceCheck::new(store.clone(), &config);

    let refusal = refusal(&check, &deploy(&config, "prod")).await;

    let id: String = ci().public_key().key_id().chars().take(12).collect();
    assert_eq!(
        refusal.message,
        format!(
            "artifact sha256:3f2a9c1d0e4b… of idp 1.4.0 (RC 7): its attestation is not valid: it \
             is signed by key `ci-2025` (id {id}), which slipway.toml no longer trusts"
        )
    );
    assert!(
        refusal.hint.starts_with(
            "sign it again with a key slipway.toml trusts (ci-2026), or trust key `ci-2025` \
             again under [provenance]; have CI sign it: slipway artifact attest idp 1.4.0"
        ),
        "{}",
        refusal.hint
    );
    assert!(refusal.overridable);

    // A rollback to it is not kept out by the rotation: it passes with a warning.
    let detail = check.check(&rollback(&config), T0).await.unwrap();
    assert!(
        detail.starts_with("warning: artifact sha256:3f2a9c1d0e4b… of idp 1.4.0 (RC 7): it is signed by key `ci-2025`"),
        "{detail}"
    );
    assert!(
        detail
            .ends_with("not refused, as a rollback returns to an artifact that ran in prod before"),
        "{detail}"
    );
}

#[tokio::test]
async fn altered_envelope_is_refused_even_for_a_rollback() {
    let test = slipway_testkit::store::sqlite().await;
    let store = &test.store;
    push(store).await;
    let mut altered = signed(&ci());
    let body = String::from_utf8(STANDARD.decode(&altered.payload).unwrap()).unwrap();
    altered.payload = STANDARD.encode(body.replace("4812", "666"));
    record(store, "ci", &ci(), altered).await;
    let config = config(&[("ci", &ci())]);
    let check = ProvenanceCheck::new(store.clone(), &config);

    let refusal = refusal(&check, &deploy(&config, "prod")).await;
    let rollback_refusal = self::refusal(&check, &rollback(&config)).await;

    assert_eq!(
        refusal.message,
        "artifact sha256:3f2a9c1d0e4b… of idp 1.4.0 (RC 7): its attestation is not valid: the \
         signature by key `ci` does not match the envelope's payload: it was altered after signing"
    );
    assert!(
        refusal
            .hint
            .starts_with("the recorded envelope was altered; have CI sign it:"),
        "{}",
        refusal.hint
    );
    assert_eq!(rollback_refusal.message, refusal.message);
}

#[tokio::test]
async fn one_valid_attestation_among_others_passes() {
    let test = slipway_testkit::store::sqlite().await;
    let store = &test.store;
    push(store).await;
    let old = PrivateKey::from_seed([3; 32]);
    record(store, "ci", &ci(), signed(&ci())).await;
    record(store, "old", &old, signed(&old)).await;
    let config = config(&[("ci", &ci())]);
    let check = ProvenanceCheck::new(store.clone(), &config);

    let detail = check.check(&deploy(&config, "prod"), T0).await.unwrap();

    assert!(detail.contains("signed by key ci "), "{detail}");
}
