//! Deploy decisions: state, events and effects stored in one transaction, optimistic
//! concurrency on the deploy's revision, and idempotent creation by origin.

use slipway_core::decide::{decide, start};
use slipway_core::deploy::{DeployResult, Input};
use slipway_core::time::Span;
use slipway_store::{Consumed, StoreError};
use slipway_testkit::store::on_each_backend;

use crate::support::{
    T0, all_events, create, done, drive_to_end, effect, pending, report, spec, stored,
};

#[tokio::test]
async fn a_decisions_state_events_and_effects_are_stored_together() {
    on_each_backend("decision_stored_together", async |db| {
        let store = &db.store;
        let (id, started) = create(store, None, "idp", "prod", T0).await;

        let current = stored(store, id).await;
        assert_eq!(current.deploy, started.deploy);
        assert_eq!(current.revision, 1);
        let events = all_events(store).await;
        assert_eq!(events.len(), started.events.len());
        assert!(events.iter().all(|e| e.deploy == Some(id)));
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        let expected: Vec<&str> = started.events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, expected);
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=events.len() as i64).collect::<Vec<_>>()
        );
        assert_eq!(pending(store).await, started.effects);
        let unfinished = store.unfinished_deploys().await.unwrap();
        assert_eq!(unfinished, vec![current.clone()]);

        // The preflight's report: its outbox row is settled, the approval notice is enqueued,
        // the revision rises, and the new events follow the old ones.
        let preflight = effect(&started.effects, "preflight").clone();
        let later = T0.after(Span::from_secs(1));
        let next = report(store, None, &current, &preflight, &done(), later)
            .await
            .unwrap();
        assert_eq!(next.revision, 2);
        assert_eq!(stored(store, id).await, next);
        let after = all_events(store).await;
        let decision = decide(
            &current.deploy,
            &Input::Reported {
                key: preflight.key.clone(),
                outcome: done(),
            },
            later,
        )
        .unwrap();
        assert_eq!(after.len(), events.len() + decision.events.len());
        assert_eq!(after[..events.len()], events[..]);
        let pending_ops: Vec<String> = pending(store).await.into_iter().map(|e| e.key.op).collect();
        assert!(
            !pending_ops.contains(&"preflight".to_owned()),
            "{pending_ops:?}"
        );
        assert!(
            pending_ops.contains(&"notify-approval".to_owned()),
            "{pending_ops:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_deploy_driven_through_the_store_finishes_and_leaves_nothing_pending() {
    on_each_backend("deploy_driven_to_end", async |db| {
        let store = &db.store;
        let (id, _) = create(store, None, "idp", "prod", T0).await;

        let (finished, _) = drive_to_end(store, id, T0).await;

        let ending = finished.deploy.progress.ending.as_ref().unwrap();
        assert_eq!(ending.result, DeployResult::Succeeded);
        assert_eq!(stored(store, id).await, finished);
        assert!(pending(store).await.is_empty());
        assert!(store.pending_intents(10).await.unwrap().is_empty());
        assert!(store.unfinished_deploys().await.unwrap().is_empty());
        let report = store.verify_chain().await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.verified, all_events(store).await.len() as u64);
        let kinds: Vec<String> = all_events(store)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds.iter().filter(|k| *k == "deploy_finished").count(), 1);
    })
    .await;
}

#[tokio::test]
async fn apply_with_a_stale_revision_is_a_conflict_and_writes_nothing() {
    on_each_backend("stale_revision_conflict", async |db| {
        let store = &db.store;
        let (id, started) = create(store, None, "idp", "prod", T0).await;
        let stale = stored(store, id).await;
        let later = T0.after(Span::from_secs(1));
        let preflight = effect(&started.effects, "preflight");
        report(store, None, &stale, preflight, &done(), later)
            .await
            .unwrap();
        let events_before = all_events(store).await;
        let pending_before = pending(store).await;
        let fresh = stored(store, id).await;

        // Built on the stale read: reports the start notice, which is still pending.
        let notify = effect(&started.effects, "notify-started");
        let result = report(store, None, &stale, notify, &done(), later).await;

        assert!(
            matches!(result, Err(StoreError::Conflict(conflicted)) if conflicted == id),
            "{result:?}"
        );
        assert_eq!(all_events(store).await, events_before);
        assert_eq!(pending(store).await, pending_before);
        assert!(pending_before.iter().any(|e| e.key == notify.key));
        assert_eq!(stored(store, id).await, fresh);
        assert_eq!(store.verify_chain().await.unwrap().broken, None);
    })
    .await;
}

#[tokio::test]
async fn creating_a_deploy_twice_with_the_same_origin_returns_the_first() {
    on_each_backend("create_same_origin_twice", async |db| {
        let store = &db.store;
        let origin = "7/unwind/1/rollback-deploy";
        let make = |id| start(spec(id, "idp", "prod"), T0);
        let (first, created) = store
            .create_deploy(None, Some(origin), T0, make)
            .await
            .unwrap();
        assert!(created);
        let events = all_events(store).await;
        let effects = pending(store).await;

        let mut called = false;
        let (second, created) = store
            .create_deploy(None, Some(origin), T0.after(Span::from_secs(1)), |id| {
                called = true;
                make(id)
            })
            .await
            .unwrap();

        assert_eq!((second, created), (first, false));
        assert!(!called, "the second creation must not build a deploy");
        assert_eq!(store.unfinished_deploys().await.unwrap().len(), 1);
        assert_eq!(all_events(store).await, events);
        assert_eq!(pending(store).await, effects);
        // Without an origin every creation is a new deploy.
        let (third, created) = store.create_deploy(None, None, T0, make).await.unwrap();
        assert!(created);
        assert_ne!(third, first);
    })
    .await;
}

#[tokio::test]
async fn a_decision_that_changes_nothing_keeps_the_revision() {
    on_each_backend("noop_decision_keeps_revision", async |db| {
        let store = &db.store;
        let (id, _) = create(store, None, "idp", "prod", T0).await;
        let current = stored(store, id).await;
        let tick = decide(&current.deploy, &Input::Tick, T0).unwrap();
        assert!(tick.is_noop(&current.deploy));

        let after = store
            .apply(None, &current, &tick, Consumed::Nothing, T0)
            .await
            .unwrap();

        assert_eq!(after, current);
        assert_eq!(stored(store, id).await, current);
    })
    .await;
}
