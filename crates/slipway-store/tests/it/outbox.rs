//! The outbox of effects and the operator intents waiting for the engine.

use std::time::Duration;

use slipway_core::deploy::{Decision, Input, Rejection, RejectionCode, Role};
use slipway_core::time::Span;
use slipway_store::Consumed;
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, actor, create, done, effect, pending, stored};

#[tokio::test]
async fn the_same_effect_key_enqueued_twice_stays_one_outbox_row() {
    on_each_backend("effect_key_enqueued_twice", async |db| {
        let store = &db.store;
        let (id, started) = create(store, None, "idp", "prod", T0).await;
        let current = stored(store, id).await;
        let before = pending(store).await;
        assert_eq!(before, started.effects);

        // A decision (as after a crash and a replay) that emits the same effects again, and
        // one retry under a new key.
        let mut retry = effect(&started.effects, "preflight").clone();
        retry.key.attempt += 1;
        let mut effects = started.effects.clone();
        effects.push(retry.clone());
        let again = Decision {
            deploy: current.deploy.clone(),
            events: Vec::new(),
            effects,
        };
        store
            .apply(
                None,
                &current,
                &again,
                Consumed::Nothing,
                T0.after(Span::from_secs(1)),
            )
            .await
            .unwrap();

        let mut expected = before.clone();
        expected.push(retry);
        assert_eq!(pending(store).await, expected);
    })
    .await;
}

#[tokio::test]
async fn a_settled_effect_leaves_the_pending_effects() {
    on_each_backend("settled_effect_not_pending", async |db| {
        let store = &db.store;
        let (_, started) = create(store, None, "idp", "prod", T0).await;
        let notify = effect(&started.effects, "notify-started");

        store.settle_effect(&notify.key, &done(), T0).await.unwrap();

        let left = pending(store).await;
        assert!(left.iter().all(|e| e.key != notify.key), "{left:?}");
        assert_eq!(left.len(), started.effects.len() - 1);
        // Settling twice is harmless: the first outcome stays.
        store.settle_effect(&notify.key, &done(), T0).await.unwrap();
        assert_eq!(pending(store).await, left);
        assert_eq!(store.pending_effects(1).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn an_intent_is_pending_until_rejected_and_its_status_shows_why() {
    on_each_backend("intent_rejected_status", async |db| {
        let store = &db.store;
        let (id, _) = create(store, None, "idp", "prod", T0).await;
        let wake = store.wake_handle();
        let go = Input::Go {
            by: actor("erin", Role::Deployer),
        };

        let intent = store.submit_intent(id, &go, T0).await.unwrap();

        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("submitting an intent wakes the engine");
        let intents = store.pending_intents(10).await.unwrap();
        assert_eq!(intents.len(), 1);
        assert_eq!(
            (
                intents[0].id,
                intents[0].deploy,
                &intents[0].input,
                intents[0].created_at
            ),
            (intent, id, &go, T0)
        );
        let status = store.intent_status(intent).await.unwrap().unwrap();
        assert_eq!((status.consumed_at, status.rejection), (None, None));

        let rejection = Rejection {
            code: RejectionCode::Conflict,
            message: format!("deploy {id} is not waiting for go"),
            hint: format!("see where it is with `slipway status {id}`"),
        };
        let later = T0.after(Span::from_secs(2));
        store
            .reject_intent(None, intent, &rejection, later)
            .await
            .unwrap();

        assert!(store.pending_intents(10).await.unwrap().is_empty());
        let status = store.intent_status(intent).await.unwrap().unwrap();
        assert_eq!(status.consumed_at, Some(later));
        assert_eq!(status.rejection, Some(rejection));
        assert_eq!(store.intent_status(intent + 1000).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn an_intent_consumed_by_a_decision_is_no_longer_pending() {
    on_each_backend("intent_consumed_by_decision", async |db| {
        let store = &db.store;
        let (id, _) = create(store, None, "idp", "prod", T0).await;
        let first = store.submit_intent(id, &Input::Tick, T0).await.unwrap();
        let second = store.submit_intent(id, &Input::Tick, T0).await.unwrap();
        assert!(second > first);
        let current = stored(store, id).await;
        let decision = slipway_core::decide::decide(&current.deploy, &Input::Tick, T0).unwrap();

        store
            .apply(None, &current, &decision, Consumed::Intent(first), T0)
            .await
            .unwrap();

        let left = store.pending_intents(10).await.unwrap();
        assert_eq!(left.iter().map(|i| i.id).collect::<Vec<_>>(), vec![second]);
        let status = store.intent_status(first).await.unwrap().unwrap();
        assert_eq!((status.consumed_at, status.rejection), (Some(T0), None));
    })
    .await;
}
