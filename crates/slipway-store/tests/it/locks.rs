//! Manual locks: one per service and environment, refused twice, released once, each change an
//! audit event in the chain; and release authors kept with the release.

use slipway_core::plan::ReleaseKind;
use slipway_core::time::Time;
use slipway_store::{ArtifactRecord, Lock, NewRelease, StoreError};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, all_events};

fn lock(by: &str, reason: &str) -> Lock {
    Lock {
        service: "idp".to_owned(),
        environment: "prod".to_owned(),
        reason: reason.to_owned(),
        by: by.to_owned(),
        at: T0,
    }
}

#[tokio::test]
async fn a_lock_is_held_once_released_once_and_audited() {
    on_each_backend(
        "a_lock_is_held_once_released_once_and_audited",
        async |db| {
            let store = &db.store;
            store.take_lock(&lock("erin", "incident 42")).await.unwrap();
            let taken = store.take_lock(&lock("alice", "mine")).await;
            assert!(
                matches!(taken, Err(StoreError::AlreadyExists { what: "lock", .. })),
                "{taken:?}"
            );
            assert_eq!(
                store.lock_of("idp", "prod").await.unwrap(),
                Some(lock("erin", "incident 42")),
                "the holder's lock is left as it was"
            );
            assert_eq!(store.lock_of("idp", "staging").await.unwrap(), None);
            assert_eq!(store.locks().await.unwrap().len(), 1);

            let later = Time(T0.0 + 1_000);
            let released = store
                .release_lock("idp", "prod", "alice", later)
                .await
                .unwrap();
            assert_eq!(released, Some(lock("erin", "incident 42")));
            assert_eq!(
                store
                    .release_lock("idp", "prod", "alice", later)
                    .await
                    .unwrap(),
                None
            );
            assert!(store.locks().await.unwrap().is_empty());

            let kinds: Vec<String> = all_events(store)
                .await
                .into_iter()
                .map(|e| e.kind)
                .collect();
            assert_eq!(kinds, ["locked", "unlocked"]);
            assert!(store.verify_chain().await.unwrap().broken.is_none());
        },
    )
    .await;
}

#[tokio::test]
async fn release_authors_are_kept_with_the_release() {
    on_each_backend("release_authors_are_kept_with_the_release", async |db| {
        let store = &db.store;
        store
            .record_artifact(&ArtifactRecord {
                id: 0,
                service: "idp".to_owned(),
                version: "1.0.0".to_owned(),
                digest: format!("sha256:{:064x}", 1),
                size: 1,
                commit: None,
                pushed_by: "ci".to_owned(),
                pushed_at: T0,
            })
            .await
            .unwrap();
        let new = NewRelease {
            service: "idp".to_owned(),
            version: "1.0.0".to_owned(),
            kind: ReleaseKind::Full,
            created_by: "alice".to_owned(),
            reason: None,
            authors: vec!["carol".to_owned(), "dave".to_owned()],
            reconfigures: None,
        };
        let created = store.create_release(&new, T0).await.unwrap();
        assert_eq!(created.authors, new.authors);
        let read = store.release("idp", "RC 1").await.unwrap().unwrap();
        assert_eq!(read.authors, new.authors);
    })
    .await;
}
