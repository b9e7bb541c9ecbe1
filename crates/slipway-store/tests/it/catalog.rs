//! The catalog: users and token hashes, immutable artifact versions, release numbering that
//! never repeats (also under concurrent creation on PostgreSQL), what runs where, and every
//! change in the audit chain.

use slipway_core::decide::decide;
use slipway_core::deploy::{DeployResult, Input, Role};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::{Span, Time};
use slipway_store::{
    ArtifactPut, ArtifactRecord, Consumed, NewRelease, Page, ReleaseRecord, Store, StoreError,
    StoredEvent, TokenRecord,
};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, actor, all_events, create, drive_to_end, stored};

fn hash(byte: u8) -> [u8; 32] {
    [byte; 32]
}

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

fn artifact(service: &str, version: &str, digest: &str) -> ArtifactRecord {
    ArtifactRecord {
        id: 0,
        service: service.to_owned(),
        version: version.to_owned(),
        digest: digest.to_owned(),
        size: 1024,
        commit: Some("4f2a9c1".to_owned()),
        pushed_by: "ci".to_owned(),
        pushed_at: T0,
    }
}

/// Records an artifact that must be new and returns it as stored.
async fn push(store: &Store, service: &str, version: &str, digest: &str) -> ArtifactRecord {
    match store
        .record_artifact(&artifact(service, version, digest))
        .await
        .expect("the artifact is recorded")
    {
        ArtifactPut::Stored(record) => record,
        other => panic!("expected a new artifact, got {other:?}"),
    }
}

fn new_release(service: &str, version: &str, kind: ReleaseKind) -> NewRelease {
    NewRelease {
        service: service.to_owned(),
        version: version.to_owned(),
        kind,
        created_by: "alice".to_owned(),
        reason: None,
        authors: Vec::new(),
        reconfigures: None,
    }
}

async fn release(store: &Store, service: &str, version: &str, kind: ReleaseKind) -> ReleaseRecord {
    store
        .create_release(&new_release(service, version, kind), T0)
        .await
        .expect("the release is created")
}

fn page(before: Option<i64>, limit: i64) -> Page {
    Page { before, limit }
}

fn kinds(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test]
async fn adding_a_user_twice_is_refused() {
    on_each_backend("adding_a_user_twice_is_refused", async |db| {
        let store = &db.store;
        assert_eq!(store.user_count().await.unwrap(), 0);
        let bob = store
            .add_user("bob", Role::Approver, "alice", T0)
            .await
            .unwrap();
        let alice = store
            .add_user("alice", Role::Admin, "bootstrap", T0)
            .await
            .unwrap();
        let events = all_events(store).await;

        let again = store
            .add_user("alice", Role::Viewer, "bob", T0.after(Span::from_secs(1)))
            .await;

        match again {
            Err(error @ StoreError::AlreadyExists { what: "user", .. }) => {
                assert_eq!(error.to_string(), "user `alice` already exists");
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        assert_eq!(store.user("alice").await.unwrap(), Some(alice.clone()));
        assert_eq!(alice.role, Role::Admin);
        assert_eq!(store.user("carol").await.unwrap(), None);
        assert_eq!(store.users().await.unwrap(), vec![alice, bob]);
        assert_eq!(store.user_count().await.unwrap(), 2);
        assert_eq!(all_events(store).await, events);
    })
    .await;
}

#[tokio::test]
async fn a_users_role_changes_and_an_unknown_user_is_not_found() {
    on_each_backend("users_role_changes", async |db| {
        let store = &db.store;
        store
            .add_user("erin", Role::Viewer, "alice", T0)
            .await
            .unwrap();
        let later = T0.after(Span::from_secs(5));

        let erin = store
            .set_role("erin", Role::Deployer, "alice", later)
            .await
            .unwrap();

        assert_eq!(erin.role, Role::Deployer);
        assert_eq!(erin.created_at, T0);
        assert_eq!(store.user("erin").await.unwrap(), Some(erin.clone()));
        // The role she has already: nothing changes, nothing is logged.
        let events = all_events(store).await;
        let same = store
            .set_role("erin", Role::Deployer, "alice", later)
            .await
            .unwrap();
        assert_eq!(same, erin);
        assert_eq!(all_events(store).await, events);
        let unknown = store.set_role("zed", Role::Admin, "alice", later).await;
        match unknown {
            Err(error @ StoreError::NotFound { what: "user", .. }) => {
                assert_eq!(error.to_string(), "user `zed` does not exist");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn token_is_found_by_its_hash_until_revoked() {
    on_each_backend("token_found_until_revoked", async |db| {
        let store = &db.store;
        let alice = store
            .add_user("alice", Role::Admin, "bootstrap", T0)
            .await
            .unwrap();
        store
            .add_user("bob", Role::Approver, "alice", T0)
            .await
            .unwrap();
        let unknown = store.create_token("zed", &hash(9), None, "alice", T0).await;
        assert!(
            matches!(&unknown, Err(StoreError::NotFound { what: "user", name }) if name == "zed"),
            "{unknown:?}"
        );

        let laptop = store
            .create_token("alice", &hash(1), Some("laptop"), "alice", T0)
            .await
            .unwrap();
        let ci = store
            .create_token("bob", &hash(2), None, "alice", T0)
            .await
            .unwrap();

        assert_eq!(laptop.user, "alice");
        assert_eq!(laptop.label.as_deref(), Some("laptop"));
        assert_eq!(laptop.revoked_at, None);
        assert_eq!(
            store.token_user(&hash(1)).await.unwrap(),
            Some((alice.clone(), laptop.id))
        );
        assert_eq!(store.token_user(&hash(3)).await.unwrap(), None);
        assert_eq!(
            store.tokens(None).await.unwrap(),
            vec![laptop.clone(), ci.clone()]
        );
        assert_eq!(store.tokens(Some("bob")).await.unwrap(), vec![ci.clone()]);

        let later = T0.after(Span::from_secs(60));
        assert!(store.revoke_token(laptop.id, "alice", later).await.unwrap());

        assert_eq!(store.token_user(&hash(1)).await.unwrap(), None);
        assert_eq!(
            store.tokens(Some("alice")).await.unwrap(),
            vec![TokenRecord {
                revoked_at: Some(later),
                ..laptop.clone()
            }]
        );
        assert_eq!(store.token_user(&hash(2)).await.unwrap().unwrap().1, ci.id);
        // Revoking again, or a token that never existed, is a no-op.
        let events = all_events(store).await;
        assert!(!store.revoke_token(laptop.id, "alice", later).await.unwrap());
        assert!(!store.revoke_token(999, "alice", later).await.unwrap());
        assert_eq!(all_events(store).await, events);
    })
    .await;
}

#[tokio::test]
async fn repushing_same_digest_is_a_noop() {
    on_each_backend("repushing_same_digest_is_a_noop", async |db| {
        let store = &db.store;
        let first = push(store, "idp", "1.4.0", &digest(1)).await;
        assert!(first.id > 0);
        assert_eq!(
            first,
            ArtifactRecord {
                id: first.id,
                ..artifact("idp", "1.4.0", &digest(1))
            }
        );
        let events = all_events(store).await;

        let again = ArtifactRecord {
            pushed_by: "bob".to_owned(),
            pushed_at: T0.after(Span::from_secs(60)),
            ..artifact("idp", "1.4.0", &digest(1))
        };
        let put = store.record_artifact(&again).await.unwrap();

        assert_eq!(put, ArtifactPut::AlreadyStored(first.clone()));
        assert_eq!(all_events(store).await, events);
        assert_eq!(store.artifact("idp", "1.4.0").await.unwrap(), Some(first));
        // The same content under another version, or another service, is a new artifact.
        let renamed = push(store, "idp", "1.4.1", &digest(1)).await;
        let shared = push(store, "api", "1.4.0", &digest(1)).await;
        assert_eq!(renamed.digest, shared.digest);
        assert_eq!(store.artifact("idp", "9.9.9").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn same_version_with_another_digest_is_refused() {
    on_each_backend("same_version_another_digest", async |db| {
        let store = &db.store;
        let first = push(store, "idp", "1.4.0", &digest(1)).await;
        let events = all_events(store).await;

        let result = store
            .record_artifact(&artifact("idp", "1.4.0", &digest(2)))
            .await;

        match result {
            Err(
                ref error @ StoreError::VersionTaken {
                    ref service,
                    ref version,
                    digest: ref stored,
                },
            ) => {
                assert_eq!((service.as_str(), version.as_str()), ("idp", "1.4.0"));
                assert_eq!(stored, &digest(1));
                assert_eq!(
                    error.to_string(),
                    format!(
                        "version `1.4.0` of `idp` is already stored with another artifact ({})",
                        digest(1)
                    )
                );
            }
            other => panic!("expected VersionTaken, got {other:?}"),
        }
        assert_eq!(store.artifact("idp", "1.4.0").await.unwrap(), Some(first));
        assert_eq!(all_events(store).await, events);
    })
    .await;
}

#[tokio::test]
async fn an_artifact_needs_a_sha256_digest_and_a_size() {
    on_each_backend("artifact_needs_sha256_digest", async |db| {
        let store = &db.store;
        let malformed = [
            "sha256:abc".to_owned(),
            digest(1).replace("sha256:", "md5:"),
            format!("sha256:{}", "AB".repeat(32)),
            format!("{}0", digest(1)),
        ];
        for wrong in &malformed {
            let result = store
                .record_artifact(&artifact("idp", "1.0.0", wrong))
                .await;
            assert!(
                matches!(&result, Err(StoreError::Invalid { .. })),
                "{wrong}: {result:?}"
            );
        }
        let negative = ArtifactRecord {
            size: -1,
            ..artifact("idp", "1.0.0", &digest(1))
        };
        let result = store.record_artifact(&negative).await;
        assert!(
            matches!(&result, Err(StoreError::Invalid { .. })),
            "{result:?}"
        );
        assert_eq!(store.artifact("idp", "1.0.0").await.unwrap(), None);
        assert!(all_events(store).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn releases_are_numbered_rc_n_and_patches_rc_n_m() {
    on_each_backend("releases_numbered_rc_n_m", async |db| {
        let store = &db.store;
        for (n, version) in ["1.0.0", "1.0.1", "1.0.2", "1.1.0", "1.1.1", "1.2.0"]
            .into_iter()
            .enumerate()
        {
            push(store, "idp", version, &digest(n as u32)).await;
        }
        push(store, "api", "7.0.0", &digest(70)).await;
        let steps = [
            ("1.0.0", ReleaseKind::Full, "RC 1", 1, 0),
            ("1.0.1", ReleaseKind::Patch, "RC 1.1", 1, 1),
            ("1.0.2", ReleaseKind::Patch, "RC 1.2", 1, 2),
            ("1.1.0", ReleaseKind::OffCycle, "RC 2", 2, 0),
            ("1.1.1", ReleaseKind::Patch, "RC 2.1", 2, 1),
            ("1.1.1", ReleaseKind::Config, "RC 3", 3, 0),
            ("1.2.0", ReleaseKind::Full, "RC 4", 4, 0),
        ];

        let mut created = Vec::new();
        for (version, kind, label, major, minor) in steps {
            let record = release(store, "idp", version, kind).await;
            assert_eq!(
                (
                    record.label.as_str(),
                    record.major,
                    record.minor,
                    record.kind
                ),
                (label, major, minor, kind),
                "{version} {kind:?}"
            );
            created.push(record);
        }
        // Each service counts on its own.
        let api = release(store, "api", "7.0.0", ReleaseKind::Full).await;
        assert_eq!(api.label, "RC 1");

        let patch = &created[1];
        assert_eq!(patch.service, "idp");
        assert_eq!(patch.version, "1.0.1");
        assert_eq!(patch.artifact, digest(1));
        assert_eq!(patch.commit.as_deref(), Some("4f2a9c1"));
        assert_eq!(patch.created_by, "alice");
        assert_eq!(patch.created_at, T0);
        assert_eq!(
            store.release("idp", "RC 1.1").await.unwrap().as_ref(),
            Some(patch)
        );
        assert_eq!(store.release("idp", "RC 9").await.unwrap(), None);
        assert_eq!(
            store.latest_release("idp").await.unwrap().as_ref(),
            created.last()
        );
        assert_eq!(store.latest_release("api").await.unwrap(), Some(api));
        assert_eq!(store.latest_release("web").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn patch_without_a_release_is_refused() {
    on_each_backend("patch_without_a_release", async |db| {
        let store = &db.store;
        push(store, "idp", "1.0.0", &digest(1)).await;
        let events = all_events(store).await;

        let result = store
            .create_release(&new_release("idp", "1.0.0", ReleaseKind::Patch), T0)
            .await;

        match result {
            Err(StoreError::Invalid { message, hint }) => {
                assert_eq!(message, "`idp` has no release to patch");
                assert_eq!(hint, "create a full release first: --kind full");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(all_events(store).await, events);
        assert_eq!(store.latest_release("idp").await.unwrap(), None);
        // The refusal used no number.
        let full = release(store, "idp", "1.0.0", ReleaseKind::Full).await;
        assert_eq!(full.label, "RC 1");
    })
    .await;
}

#[tokio::test]
async fn release_needs_a_pushed_artifact() {
    on_each_backend("release_needs_a_pushed_artifact", async |db| {
        let store = &db.store;
        push(store, "api", "1.0.0", &digest(1)).await;

        // Pushed for another service only.
        let result = store
            .create_release(&new_release("idp", "1.0.0", ReleaseKind::Full), T0)
            .await;

        match result {
            Err(
                error @ StoreError::NotFound {
                    what: "artifact", ..
                },
            ) => {
                assert_eq!(error.to_string(), "artifact `idp 1.0.0` does not exist");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert_eq!(store.latest_release("idp").await.unwrap(), None);
        assert_eq!(kinds(&all_events(store).await), vec!["artifact_pushed"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_release_creation_never_repeats_a_number() {
    on_each_backend("concurrent_release_creation", async |db| {
        let store = &db.store;
        push(store, "idp", "1.0.0", &digest(1)).await;

        let concurrently = async |kind, count| {
            let tasks: Vec<_> = (0..count)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store
                            .create_release(&new_release("idp", "1.0.0", kind), T0)
                            .await
                            .expect("the release is created")
                    })
                })
                .collect();
            let mut numbers = Vec::new();
            for task in tasks {
                let record = task.await.expect("the task does not panic");
                numbers.push((record.major, record.minor));
            }
            numbers.sort();
            numbers
        };

        let fulls = concurrently(ReleaseKind::Full, 8).await;
        assert_eq!(fulls, (1..=8).map(|major| (major, 0)).collect::<Vec<_>>());
        let patches = concurrently(ReleaseKind::Patch, 4).await;
        assert_eq!(patches, (1..=4).map(|minor| (8, minor)).collect::<Vec<_>>());

        let all = store.releases(Some("idp"), &page(None, 100)).await.unwrap();
        assert_eq!(all.len(), 12);
        let report = store.verify_chain().await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.verified, 13);
    })
    .await;
}

#[tokio::test]
async fn current_release_is_the_last_succeeded_deploy() {
    on_each_backend("current_release_last_succeeded", async |db| {
        let store = &db.store;
        assert_eq!(store.current_release("idp", "prod").await.unwrap(), None);

        let (first, _) = create(store, None, "idp", "prod", T0).await;
        assert_eq!(store.current_release("idp", "prod").await.unwrap(), None);
        let (finished, now) = drive_to_end(store, first, T0).await;
        assert_eq!(
            store.current_release("idp", "prod").await.unwrap(),
            Some(finished.clone())
        );

        // Another environment and another service run their own releases.
        let (staging, _) = create(store, None, "idp", "staging", now).await;
        let (staging_done, now) = drive_to_end(store, staging, now).await;
        let (api, _) = create(store, None, "api", "prod", now).await;
        let (_, now) = drive_to_end(store, api, now).await;
        assert_eq!(
            store.current_release("idp", "staging").await.unwrap(),
            Some(staging_done)
        );

        // A deploy in progress, then aborted: what ran before still runs.
        let (second, _) = create(store, None, "idp", "prod", now).await;
        assert_eq!(
            store.current_release("idp", "prod").await.unwrap(),
            Some(finished.clone())
        );
        let current = stored(store, second).await;
        let abort = Input::Abort {
            by: actor("erin", Role::Deployer),
            reason: "wrong build".to_owned(),
        };
        let decision = decide(&current.deploy, &abort, now).expect("an abort applies");
        store
            .apply(None, &current, &decision, Consumed::Nothing, now)
            .await
            .unwrap();
        let (aborted, now) = drive_to_end(store, second, now).await;
        let ending = aborted.deploy.progress.ending.as_ref().unwrap();
        assert_ne!(ending.result, DeployResult::Succeeded);
        assert_eq!(
            store.current_release("idp", "prod").await.unwrap(),
            Some(finished)
        );

        // The next successful deploy takes over.
        let (third, _) = create(store, None, "idp", "prod", now).await;
        let (third_done, _) = drive_to_end(store, third, now).await;
        assert_eq!(
            store.current_release("idp", "prod").await.unwrap(),
            Some(third_done)
        );
    })
    .await;
}

#[tokio::test]
async fn catalog_changes_are_in_the_audit_chain() {
    on_each_backend("catalog_changes_in_audit_chain", async |db| {
        let store = &db.store;
        let at = |s| T0.after(Span::from_secs(s));
        store
            .add_user("alice", Role::Admin, "bootstrap", at(1))
            .await
            .unwrap();
        store
            .set_role("alice", Role::Approver, "root", at(2))
            .await
            .unwrap();
        let token = store
            .create_token("alice", &hash(0xab), Some("laptop"), "alice", at(3))
            .await
            .unwrap();
        store.revoke_token(token.id, "root", at(4)).await.unwrap();
        store
            .record_artifact(&ArtifactRecord {
                pushed_at: at(5),
                ..artifact("idp", "1.0.0", &digest(1))
            })
            .await
            .unwrap();
        store
            .create_release(
                &NewRelease {
                    reason: Some("quarterly".to_owned()),
                    ..new_release("idp", "1.0.0", ReleaseKind::Full)
                },
                at(6),
            )
            .await
            .unwrap();

        let events = all_events(store).await;

        assert_eq!(
            kinds(&events),
            vec![
                "user_added",
                "role_changed",
                "token_created",
                "token_revoked",
                "artifact_pushed",
                "release_created",
            ]
        );
        assert_eq!(
            events.iter().map(|e| e.at).collect::<Vec<Time>>(),
            (1..=6).map(at).collect::<Vec<_>>()
        );
        assert!(events.iter().all(|e| e.deploy.is_none()));
        let payloads: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::from_str(&e.payload).unwrap())
            .collect();
        let by: Vec<&str> = payloads.iter().map(|p| p["by"].as_str().unwrap()).collect();
        assert_eq!(by, ["bootstrap", "root", "alice", "root", "ci", "alice"]);
        assert_eq!(payloads[0]["role"], "admin");
        assert_eq!(
            (&payloads[1]["from"], &payloads[1]["to"]),
            (&"admin".into(), &"approver".into())
        );
        assert_eq!(payloads[2]["token"], token.id);
        assert_eq!(payloads[3]["user"], "alice");
        assert_eq!(payloads[4]["digest"], digest(1));
        assert_eq!(payloads[5]["release"], "RC 1");
        assert_eq!(payloads[5]["kind"], "full");
        assert_eq!(payloads[5]["reason"], "quarterly");
        // The token's hash never reaches the log, in any spelling.
        let hash_hex = "ab".repeat(32);
        assert!(
            events
                .iter()
                .all(|e| !e.payload.contains(&hash_hex) && !e.payload.contains("171,171,171")),
            "{events:?}"
        );
        let report = store.verify_chain().await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.verified, 6);
        assert_eq!(report.head, events[5].hash);
    })
    .await;
}

#[tokio::test]
async fn pages_of_artifacts_and_releases_are_newest_first() {
    on_each_backend("pages_newest_first", async |db| {
        let store = &db.store;
        let pushes = [
            ("idp", "1.0.0"),
            ("api", "1.0.0"),
            ("idp", "1.1.0"),
            ("idp", "1.2.0"),
            ("api", "1.1.0"),
        ];
        let mut ids = Vec::new();
        for (n, (service, version)) in pushes.into_iter().enumerate() {
            ids.push(push(store, service, version, &digest(n as u32)).await.id);
            release(store, service, version, ReleaseKind::Full).await;
        }
        let artifact_ids = async |service, page: Page| {
            store
                .artifacts(service, &page)
                .await
                .unwrap()
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        };
        let release_labels = async |service, page: Page| {
            store
                .releases(service, &page)
                .await
                .unwrap()
                .into_iter()
                .map(|r| format!("{} {}", r.service, r.label))
                .collect::<Vec<_>>()
        };

        // Page through every artifact two at a time, the last id as the cursor.
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let ids = artifact_ids(None, page(before, 2)).await;
            let Some(&last) = ids.last() else { break };
            before = Some(last);
            pages.push(ids);
        }
        let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
        assert_eq!(pages.concat(), newest_first);
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(
            artifact_ids(Some("idp"), page(None, 100)).await,
            vec![ids[3], ids[2], ids[0]]
        );
        assert_eq!(
            artifact_ids(Some("idp"), page(Some(ids[3]), 1)).await,
            vec![ids[2]]
        );
        // A limit out of range is clamped, not an error.
        assert_eq!(artifact_ids(None, page(None, 0)).await, vec![ids[4]]);
        assert_eq!(artifact_ids(None, page(None, -5)).await, vec![ids[4]]);
        assert_eq!(artifact_ids(None, page(None, 1_000_000)).await.len(), 5);

        assert_eq!(
            release_labels(None, page(None, 100)).await,
            ["api RC 2", "idp RC 3", "idp RC 2", "api RC 1", "idp RC 1"]
        );
        let first = store.releases(None, &page(None, 2)).await.unwrap();
        let cursor = first.last().unwrap().id;
        assert_eq!(
            release_labels(None, page(Some(cursor), 2)).await,
            ["idp RC 2", "api RC 1"]
        );
        assert_eq!(
            release_labels(Some("api"), page(None, 100)).await,
            ["api RC 2", "api RC 1"]
        );
        assert!(
            release_labels(Some("web"), page(None, 100))
                .await
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn a_config_release_is_the_next_minor_of_the_release_it_reconfigures() {
    on_each_backend("config_release_minor", async |db| {
        let store = &db.store;
        push(store, "idp", "4.0.0", &digest(4)).await;
        push(store, "idp", "5.0.0", &digest(5)).await;
        release(store, "idp", "4.0.0", ReleaseKind::Full).await;
        release(store, "idp", "5.0.0", ReleaseKind::Full).await;
        // Production still runs RC 1 (4.0.0) while RC 2 waits in staging: its config recycle
        // is RC 1.1, so RC 2 can still be promoted past it.
        let recycle = |reconfigures: &str| NewRelease {
            reconfigures: Some(reconfigures.to_owned()),
            ..new_release("idp", "4.0.0", ReleaseKind::Config)
        };
        let first = store.create_release(&recycle("RC 1"), T0).await.unwrap();
        assert_eq!(first.label, "RC 1.1");
        let second = store.create_release(&recycle("RC 1.1"), T0).await.unwrap();
        assert_eq!(second.label, "RC 1.2");
        let error = store.create_release(&recycle("one"), T0).await.unwrap_err();
        assert!(matches!(error, StoreError::Invalid { .. }), "{error:?}");
        let latest = store.latest_release("idp").await.unwrap().unwrap();
        assert_eq!(latest.label, "RC 2");
    })
    .await;
}
