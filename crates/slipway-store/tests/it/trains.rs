//! Release trains in the store: a cut is numbered once per commit, its notes are revised with
//! an audit event per revision, and published at most once, after which they are final.

use slipway_core::deploy::DeployId;
use slipway_core::plan::ReleaseKind;
use slipway_core::time::Span;
use slipway_store::{
    AfterAttempt, ArtifactRecord, DeliveryAttempt, DeliveryStatus, NewPublication, NewRelease,
    NewTrain, NotesDelivery, PublishedNotes, Store, StoreError, StoredEvent, TrainKind,
    notes_effect_key,
};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, all_events};

async fn push(store: &Store, version: &str, commit: &str) {
    let record = ArtifactRecord {
        id: 0,
        service: "idp".to_owned(),
        version: version.to_owned(),
        digest: format!("sha256:{:064x}", version.len()),
        size: 10,
        commit: Some(commit.to_owned()),
        pushed_by: "ci".to_owned(),
        pushed_at: T0,
    };
    store.record_artifact(&record).await.unwrap();
}

fn release(version: &str, kind: ReleaseKind) -> NewRelease {
    NewRelease {
        service: "idp".to_owned(),
        version: version.to_owned(),
        kind,
        created_by: "alice".to_owned(),
        reason: None,
        authors: Vec::new(),
        reconfigures: None,
    }
}

fn train(kind: TrainKind, head: &str) -> NewTrain {
    NewTrain {
        kind,
        branch: "stages/rc-2026-12-03".to_owned(),
        base: Some("b".repeat(40)),
        head: head.to_owned(),
        branch_head: head.to_owned(),
        range: format!("{}..{head}", "b".repeat(40)),
        true_up: None,
        picks: Vec::new(),
        changelog: "## Bug Fixes\n\n- Fix it\n".to_owned(),
    }
}

fn kinds(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test]
async fn a_cut_is_numbered_once_per_commit_and_its_notes_are_revised_then_published_once() {
    on_each_backend("train_cut_notes_publish", async |db| {
        let store = &db.store;
        let head = "c".repeat(40);
        push(store, "1.0", &head).await;
        store
            .create_release(&release("1.0", ReleaseKind::Full), T0)
            .await
            .unwrap();

        let (cut, created) = store
            .create_train_release(
                &release("1.0", ReleaseKind::Full),
                &train(TrainKind::Full, &head),
                |_| "draft".to_owned(),
                T0,
            )
            .await
            .unwrap();
        assert!(created);
        assert_eq!(cut.release.label, "RC 2");
        assert_eq!(cut.train.changelog, "## Bug Fixes\n\n- Fix it\n");
        let events = all_events(store).await;
        assert_eq!(
            kinds(&events[events.len() - 2..]),
            ["release_created", "release_train_cut"]
        );

        // The same commit again: the same candidate, nothing written.
        let (again, created) = store
            .create_train_release(
                &release("1.0", ReleaseKind::Full),
                &train(TrainKind::Full, &head),
                |_| "another draft".to_owned(),
                T0.after(Span::from_secs(60)),
            )
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again, cut);
        assert_eq!(all_events(store).await, events);
        assert_eq!(
            store.latest_train("idp", TrainKind::Full).await.unwrap(),
            Some(cut.clone())
        );
        assert_eq!(store.train("idp", "RC 2").await.unwrap(), Some(cut));
        assert_eq!(store.train("idp", "RC 1").await.unwrap(), None);

        let draft = store.release_notes("idp", "RC 2").await.unwrap().unwrap();
        assert_eq!((draft.revision, draft.body.as_str()), (1, "draft"));
        let later = T0.after(Span::from_secs(120));
        let edited = store
            .edit_release_notes("idp", "RC 2", "final words", "bob", later)
            .await
            .unwrap();
        assert_eq!(edited.revision, 2);
        assert_eq!(edited.written_by, "bob");
        // The same text again writes nothing.
        let same = store
            .edit_release_notes("idp", "RC 2", "final words", "carol", later)
            .await
            .unwrap();
        assert_eq!(same, edited);
        assert!(matches!(
            store
                .edit_release_notes("idp", "RC 1", "x", "bob", later)
                .await,
            Err(StoreError::NotFound { .. })
        ));

        // The publication enqueues the delivery of the notes as published, in one transaction.
        let publication = NewPublication {
            deploy: 7,
            tag: "RC-2".to_owned(),
            signed: false,
            branch_head: "f".repeat(40),
            true_up: Some("f".repeat(40)),
        };
        let render = |notes: &PublishedNotes| format!("{} r{}", notes.body, notes.revision);
        let delivery = || NotesDelivery {
            destination: "release-notes/idp".to_owned(),
            deploy: DeployId(7),
            render: &render,
        };
        let (published, first) = store
            .publish_release_notes("idp", "RC 2", &publication, Some(delivery()), later)
            .await
            .unwrap();
        assert!(first);
        let done = published.published.clone().unwrap();
        assert_eq!((done.revision, done.deploy), (2, 7));
        assert_eq!(done.delivery, Some(DeliveryStatus::Pending));
        assert_eq!(done.delivered_at, None);
        let trued_up = store.train("idp", "RC 2").await.unwrap().unwrap();
        assert_eq!(trued_up.train.branch_head, "f".repeat(40));
        assert_eq!(trued_up.train.true_up, Some("f".repeat(40)));
        let outbox = store.notifications(Some(DeployId(7)), 10).await.unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].payload, "final words r2");
        assert_eq!(outbox[0].effect_key, notes_effect_key("idp", "RC 2"));

        // Again: the first publication stands and nothing more is enqueued.
        let again = NewPublication {
            deploy: 8,
            signed: true,
            ..publication.clone()
        };
        let (repeat, second) = store
            .publish_release_notes("idp", "RC 2", &again, Some(delivery()), later)
            .await
            .unwrap();
        assert!(!second);
        assert_eq!(repeat, published);
        assert_eq!(store.notifications(None, 10).await.unwrap().len(), 1);

        // Given up after failed attempts, it is made due again by the next publication call,
        // and once delivered the notes say when.
        let id = outbox[0].id;
        assert!(store.claim_notification(id, 0, later).await.unwrap());
        let failed = DeliveryAttempt {
            attempt: 1,
            at: later,
            http_status: Some(404),
            outcome: "failed".to_owned(),
            error: Some("gone".to_owned()),
        };
        store
            .settle_notification(id, &failed, AfterAttempt::Failed)
            .await
            .unwrap();
        let notes = store.release_notes("idp", "RC 2").await.unwrap().unwrap();
        assert_eq!(
            notes.published.unwrap().delivery,
            Some(DeliveryStatus::Failed)
        );
        let (rearmed, _) = store
            .publish_release_notes("idp", "RC 2", &publication, Some(delivery()), later)
            .await
            .unwrap();
        assert_eq!(
            rearmed.published.unwrap().delivery,
            Some(DeliveryStatus::Pending)
        );
        assert!(store.claim_notification(id, 1, later).await.unwrap());
        let delivered = DeliveryAttempt {
            attempt: 2,
            http_status: Some(200),
            outcome: "delivered".to_owned(),
            error: None,
            ..failed
        };
        store
            .settle_notification(id, &delivered, AfterAttempt::Delivered)
            .await
            .unwrap();
        let notes = store.release_notes("idp", "RC 2").await.unwrap().unwrap();
        let publication = notes.published.unwrap();
        assert_eq!(publication.delivery, Some(DeliveryStatus::Delivered));
        assert!(publication.delivered_at.is_some());

        let refused = store
            .edit_release_notes("idp", "RC 2", "too late", "bob", later)
            .await;
        match refused {
            Err(StoreError::Invalid { message, hint }) => {
                assert!(message.contains("already published"), "{message}");
                assert!(hint.contains("final"), "{hint}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let events = all_events(store).await;
        assert_eq!(
            kinds(&events[events.len() - 2..]),
            ["release_notes_edited", "release_notes_published"]
        );
        store.verify_chain().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_patch_train_release_takes_the_next_minor() {
    on_each_backend("train_patch_minor", async |db| {
        let store = &db.store;
        let (head, picked) = ("c".repeat(40), "d".repeat(40));
        push(store, "1.0", &head).await;
        push(store, "1.0.1", &picked).await;
        store
            .create_train_release(
                &release("1.0", ReleaseKind::Full),
                &train(TrainKind::Full, &head),
                |_| "draft".to_owned(),
                T0,
            )
            .await
            .unwrap();
        let mut patch = train(TrainKind::Patch, &picked);
        patch.picks = vec!["e".repeat(40)];
        let (record, created) = store
            .create_train_release(
                &release("1.0.1", ReleaseKind::Patch),
                &patch,
                |r| r.label.clone(),
                T0,
            )
            .await
            .unwrap();
        assert!(created);
        assert_eq!(record.release.label, "RC 1.1");
        assert_eq!(record.train.picks, patch.picks);

        // RC 2 is cut but production still runs RC 1: its patch is RC 1.2, not RC 2.1.
        let next = "e".repeat(40);
        push(store, "2.0", &next).await;
        store
            .create_train_release(
                &release("2.0", ReleaseKind::Full),
                &train(TrainKind::Full, &next),
                |_| "draft".to_owned(),
                T0,
            )
            .await
            .unwrap();
        let second = "f".repeat(40);
        push(store, "1.0.2", &second).await;
        let mut of_production = release("1.0.2", ReleaseKind::Patch);
        of_production.reconfigures = Some("RC 1".to_owned());
        let (record, _) = store
            .create_train_release(
                &of_production,
                &train(TrainKind::Patch, &second),
                |r| r.label.clone(),
                T0,
            )
            .await
            .unwrap();
        assert_eq!(record.release.label, "RC 1.2");
        assert_eq!(
            store
                .latest_train("idp", TrainKind::Full)
                .await
                .unwrap()
                .unwrap()
                .release
                .label,
            "RC 2"
        );
    })
    .await;
}

#[tokio::test]
async fn a_schedule_fire_is_recorded_once_and_a_new_schedule_owes_nothing_before_it() {
    on_each_backend("train_schedule_cursor", async |db| {
        let store = &db.store;
        let key = "idp:cut:-:0 9 * * 2@UTC";
        assert_eq!(store.schedule_cursor(key, T0).await.unwrap(), T0);
        // Seen again later: the cursor stays where it started.
        let later = T0.after(Span::from_secs(3600));
        assert_eq!(store.schedule_cursor(key, later).await.unwrap(), T0);
        let events = all_events(store).await;

        let due = T0.after(Span::from_secs(60));
        let outcome = serde_json::json!({ "result": "cut RC 2" });
        assert!(
            store
                .record_schedule_fire(key, due, outcome.clone(), later)
                .await
                .unwrap()
        );
        assert_eq!(store.schedule_cursor(key, later).await.unwrap(), due);
        // The same fire again (a second server, a restart): nothing.
        assert!(
            !store
                .record_schedule_fire(key, due, outcome.clone(), later)
                .await
                .unwrap()
        );
        let after = all_events(store).await;
        assert_eq!(after.len(), events.len() + 1);
        assert_eq!(after.last().unwrap().kind, "schedule_fired");
        assert!(after.last().unwrap().payload.contains("cut RC 2"));
    })
    .await;
}

#[tokio::test]
async fn pending_patches_take_distinct_numbers_and_the_same_picks_reuse_theirs() {
    on_each_backend("train_pending_patches", async |db| {
        let store = &db.store;
        let head = "c".repeat(40);
        push(store, "1.0", &head).await;
        store
            .create_train_release(
                &release("1.0", ReleaseKind::Full),
                &train(TrainKind::Full, &head),
                |_| "draft".to_owned(),
                T0,
            )
            .await
            .unwrap();
        let branch = |minor: i64| format!("stages/rc-2026-12-03.{minor}");
        let (a, b) = (vec!["a".repeat(40)], vec!["b".repeat(40)]);

        let (first, created) = store
            .reserve_patch("idp", 1, &a, branch, "alice", T0)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(
            (first.minor, first.branch.as_str()),
            (1, "stages/rc-2026-12-03.1")
        );
        // The same call again: the same number and branch.
        let (again, created) = store
            .reserve_patch("idp", 1, &a, branch, "alice", T0)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again, first);
        // Another patch while the first awaits its artifact: the next number.
        let (other, _) = store
            .reserve_patch("idp", 1, &b, branch, "bob", T0)
            .await
            .unwrap();
        assert_eq!(other.minor, 2);
        // The same commits in another order are another patch.
        let reordered = vec!["b".repeat(40), "a".repeat(40)];
        let (failed, _) = store
            .reserve_patch("idp", 1, &reordered, branch, "bob", T0)
            .await
            .unwrap();
        assert_eq!(failed.minor, 3);
        // Its git work failed: the number is given back.
        assert!(store.drop_pending_patch(failed.id, T0).await.unwrap());
        // A branch made keeps its number.
        store
            .record_patch_branch(other.id, &"0".repeat(40), &"d".repeat(40))
            .await
            .unwrap();
        assert!(!store.drop_pending_patch(other.id, T0).await.unwrap());

        // A config release of RC 1 does not take a reserved number.
        push(store, "1.0-config", &head).await;
        let mut config = release("1.0-config", ReleaseKind::Config);
        config.reconfigures = Some("RC 1".to_owned());
        let reconfigured = store.create_release(&config, T0).await.unwrap();
        assert_eq!(reconfigured.label, "RC 1.3");

        // The second patch's release comes first, then the first's: each keeps its number.
        let (b_head, a_head) = ("d".repeat(40), "e".repeat(40));
        push(store, "1.0.2", &b_head).await;
        push(store, "1.0.1", &a_head).await;
        let mut of_production = release("1.0.2", ReleaseKind::Patch);
        of_production.reconfigures = Some("RC 1".to_owned());
        let mut facts = train(TrainKind::Patch, &b_head);
        facts.picks = b.clone();
        let (made, created) = store
            .create_patch_release(&other, &of_production, &facts, |r| r.label.clone(), T0)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(made.release.label, "RC 1.2");
        of_production.version = "1.0.1".to_owned();
        let mut facts = train(TrainKind::Patch, &a_head);
        facts.picks = a.clone();
        let (made, _) = store
            .create_patch_release(&first, &of_production, &facts, |r| r.label.clone(), T0)
            .await
            .unwrap();
        assert_eq!(made.release.label, "RC 1.1");
        // Asked again with the same head: the release made before.
        let (again, created) = store
            .create_patch_release(&first, &of_production, &facts, |r| r.label.clone(), T0)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again.release.id, made.release.id);

        let pending = store.pending_patches("idp").await.unwrap();
        let numbers: Vec<(i64, Option<i64>)> =
            pending.iter().map(|p| (p.minor, p.release_id)).collect();
        assert_eq!(numbers.len(), 2);
        assert_eq!(numbers[0], (1, Some(made.release.id)));
        assert_eq!(numbers[1].0, 2);
        assert!(numbers[1].1.is_some());
        let events = all_events(store).await;
        let audited: Vec<&str> = kinds(&events)
            .into_iter()
            .filter(|k| k.starts_with("patch_"))
            .collect();
        assert_eq!(
            audited,
            [
                "patch_reserved",
                "patch_reserved",
                "patch_reserved",
                "patch_reservation_dropped"
            ]
        );
        // With every reservation done, the next patch takes the number after the config one.
        let (next, _) = store
            .reserve_patch("idp", 1, &reordered, branch, "bob", T0)
            .await
            .unwrap();
        assert_eq!(next.minor, 4);
    })
    .await;
}

#[tokio::test]
async fn concurrent_patch_reservations_take_distinct_numbers_and_identical_ones_share_one() {
    on_each_backend("train_pending_concurrent", async |db| {
        let store = &db.store;
        let branch = |minor: i64| format!("stages/rc-2026-12-03.{minor}");
        let picks: Vec<Vec<String>> = (0..6u8)
            .map(|i| vec![format!("{:040x}", u128::from(i) + 1)])
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for p in picks {
            let store = store.clone();
            tasks
                .spawn(async move { store.reserve_patch("idp", 7, &p, branch, "alice", T0).await });
        }
        let mut numbers: Vec<i64> = tasks
            .join_all()
            .await
            .into_iter()
            .map(|r| r.unwrap().0.minor)
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6]);

        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let store = store.clone();
            let same = vec!["9".repeat(40)];
            tasks.spawn(async move {
                store
                    .reserve_patch("idp", 7, &same, branch, "bob", T0)
                    .await
            });
        }
        let both: Vec<_> = tasks
            .join_all()
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(both.iter().filter(|(_, created)| *created).count(), 1);
        assert!(
            both.iter()
                .all(|(p, _)| p.minor == 7 && p.branch.ends_with(".7"))
        );
    })
    .await;
}
