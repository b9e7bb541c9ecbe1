//! Attestations: recorded once per envelope with their audit event, only for a pushed artifact
//! whose digest they name, and found again by artifact and by digest.

use slipway_core::provenance::{BuildFacts, PrivateKey, sign, statement};
use slipway_core::time::Span;
use slipway_store::{
    ArtifactPut, ArtifactRecord, AttestationPut, NewAttestation, Store, StoreError,
};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, all_events};

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

async fn push(store: &Store, service: &str, version: &str, digest: &str) {
    let record = ArtifactRecord {
        id: 0,
        service: service.to_owned(),
        version: version.to_owned(),
        digest: digest.to_owned(),
        size: 10,
        commit: None,
        pushed_by: "ci".to_owned(),
        pushed_at: T0,
    };
    let put = store.record_artifact(&record).await.unwrap();
    assert!(matches!(put, ArtifactPut::Stored(_)), "{put:?}");
}

/// What the server records after verifying an envelope CI signed with key seed `seed`.
fn attestation(service: &str, version: &str, digest: &str, build: &str) -> NewAttestation {
    let key = PrivateKey::from_seed([1; 32]);
    let facts = BuildFacts {
        service: service.to_owned(),
        version: version.to_owned(),
        digest: digest.to_owned(),
        commit: "3f2a9c1".to_owned(),
        build_id: build.to_owned(),
        builder: "https://ci.example.com/idp".to_owned(),
    };
    NewAttestation {
        service: service.to_owned(),
        version: version.to_owned(),
        digest: digest.to_owned(),
        envelope: sign(&statement(&facts).unwrap(), &key),
        key_name: "ci".to_owned(),
        key_id: key.public_key().key_id(),
        public_key: key.public_key().to_string(),
        commit: "3f2a9c1".to_owned(),
        build_id: build.to_owned(),
        builder: "https://ci.example.com/idp".to_owned(),
        recorded_by: "ci-bot".to_owned(),
    }
}

#[tokio::test]
async fn attestation_is_recorded_once_with_its_audit_event() {
    on_each_backend("attestation_recorded_once", async |db| {
        let store = &db.store;
        push(store, "idp", "1.4.0", &digest(1)).await;
        let new = attestation("idp", "1.4.0", &digest(1), "4812");

        let put = store.record_attestation(&new, T0).await.unwrap();

        let AttestationPut::Recorded(record) = put else {
            panic!("expected a new attestation, got {put:?}");
        };
        assert!(record.id > 0);
        assert_eq!(record.envelope, new.envelope.to_json());
        assert_eq!(record.key_name, "ci");
        assert_eq!(record.recorded_at, T0);
        let events = all_events(store).await;
        let last = events.last().unwrap();
        assert_eq!(last.kind, "artifact_attested");
        let payload: serde_json::Value = serde_json::from_str(&last.payload).unwrap();
        assert_eq!(payload["key"], "ci");
        assert_eq!(payload["build_id"], "4812");
        assert_eq!(payload["digest"], digest(1));
        assert_eq!(payload["by"], "ci-bot");

        // The same envelope again writes nothing and answers with the first record.
        let again = store
            .record_attestation(&new, T0.after(Span::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(again, AttestationPut::AlreadyRecorded(record.clone()));
        assert_eq!(all_events(store).await, events);

        // Another build's envelope is a second attestation.
        let second = attestation("idp", "1.4.0", &digest(1), "4813");
        let AttestationPut::Recorded(second) = store.record_attestation(&second, T0).await.unwrap()
        else {
            panic!("expected a second attestation");
        };
        assert_eq!(
            store.attestations("idp", "1.4.0").await.unwrap(),
            [record.clone(), second.clone()]
        );
        assert_eq!(
            store.attestations_of(&digest(1)).await.unwrap(),
            [second, record]
        );
        assert!(store.attestations("idp", "9.9.9").await.unwrap().is_empty());
        assert!(store.attestations_of(&digest(2)).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn attestation_needs_a_pushed_artifact_with_its_digest() {
    on_each_backend("attestation_needs_pushed_artifact", async |db| {
        let store = &db.store;
        push(store, "idp", "1.4.0", &digest(1)).await;
        let events = all_events(store).await;

        let unknown = store
            .record_attestation(&attestation("idp", "2.0.0", &digest(1), "1"), T0)
            .await;
        let other = store
            .record_attestation(&attestation("idp", "1.4.0", &digest(2), "1"), T0)
            .await;

        match unknown {
            Err(
                error @ StoreError::NotFound {
                    what: "artifact", ..
                },
            ) => {
                assert_eq!(error.to_string(), "artifact `idp 2.0.0` does not exist");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        match other {
            Err(StoreError::Invalid { message, .. }) => assert_eq!(
                message,
                format!(
                    "the attestation is about {}, but idp 1.4.0 is {}",
                    digest(2),
                    digest(1)
                )
            ),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(all_events(store).await, events);
        assert!(store.attestations_of(&digest(1)).await.unwrap().is_empty());
    })
    .await;
}
