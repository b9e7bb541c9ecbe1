//! Engine leases and fencing: only the holder of the current token may write.

use slipway_core::deploy::{Rejection, RejectionCode};
use slipway_core::time::Span;
use slipway_store::{DeployQuery, StoreError};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, all_events, create, done, effect, pending, report, stored};

const TTL: Span = Span::from_secs(10);

#[tokio::test]
async fn a_fenced_writer_is_refused_and_writes_nothing() {
    on_each_backend("fenced_writer_refused", async |db| {
        let store = &db.store;
        let old = store
            .acquire_lease("engine", "server-a", TTL, T0)
            .await
            .unwrap()
            .expect("a free lease is taken");
        assert_eq!(old.token, 1);
        let (id, started) = create(store, Some(&old), "idp", "prod", T0).await;
        let intent = store
            .submit_intent(id, &slipway_core::deploy::Input::Tick, T0)
            .await
            .unwrap();

        // server-a stalls past its lease; server-b takes over with a higher token.
        let expired = T0.after(TTL);
        let new = store
            .acquire_lease("engine", "server-b", TTL, expired)
            .await
            .unwrap()
            .expect("an expired lease is taken over");
        assert_eq!(new.token, old.token + 1);
        let events = all_events(store).await;
        let effects = pending(store).await;
        let current = stored(store, id).await;

        let preflight = effect(&started.effects, "preflight");
        let applied = report(store, Some(&old), &current, preflight, &done(), expired).await;
        assert!(matches!(applied, Err(StoreError::Fenced)), "{applied:?}");
        let created = store
            .create_deploy(Some(&old), None, expired, |id| {
                slipway_core::decide::start(crate::support::spec(id, "idp", "prod"), expired)
            })
            .await;
        assert!(matches!(created, Err(StoreError::Fenced)), "{created:?}");
        let rejection = Rejection {
            code: RejectionCode::Conflict,
            message: "no".to_owned(),
            hint: "none".to_owned(),
        };
        let rejected = store
            .reject_intent(Some(&old), intent, &rejection, expired)
            .await;
        assert!(matches!(rejected, Err(StoreError::Fenced)), "{rejected:?}");

        assert_eq!(all_events(store).await, events);
        assert_eq!(pending(store).await, effects);
        assert_eq!(stored(store, id).await, current);
        let all = DeployQuery {
            limit: 100,
            ..DeployQuery::default()
        };
        assert_eq!(store.list_deploys(&all).await.unwrap().len(), 1);
        let status = store.intent_status(intent).await.unwrap().unwrap();
        assert_eq!((status.consumed_at, status.rejection), (None, None));

        // The new holder writes.
        report(store, Some(&new), &current, preflight, &done(), expired)
            .await
            .expect("the current holder may write");
    })
    .await;
}

#[tokio::test]
async fn a_lost_lease_cannot_be_renewed() {
    on_each_backend("lost_lease_not_renewed", async |db| {
        let store = &db.store;
        let old = store
            .acquire_lease("engine", "server-a", TTL, T0)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .renew_lease(&old, TTL, T0.after(Span::from_secs(5)))
                .await
                .unwrap()
        );

        // Renewed at +5s, so it expires at +15s, not +10s.
        let before_expiry = T0.after(Span::from_secs(14));
        let taken = store
            .acquire_lease("engine", "server-b", TTL, before_expiry)
            .await
            .unwrap();
        assert_eq!(taken, None);
        let new = store
            .acquire_lease("engine", "server-b", TTL, T0.after(Span::from_secs(15)))
            .await
            .unwrap()
            .expect("taken over once expired");

        let later = T0.after(Span::from_secs(16));
        assert!(!store.renew_lease(&old, TTL, later).await.unwrap());
        assert!(store.renew_lease(&new, TTL, later).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn a_live_lease_cannot_be_taken_by_another_holder() {
    on_each_backend("live_lease_not_taken", async |db| {
        let store = &db.store;
        let held = store
            .acquire_lease("engine", "server-a", TTL, T0)
            .await
            .unwrap()
            .unwrap();
        let almost = T0.after(Span::from_millis(TTL.as_millis() - 1));

        let other = store
            .acquire_lease("engine", "server-b", TTL, almost)
            .await
            .unwrap();
        assert_eq!(other, None);

        // The holder acquiring again keeps its token (a restart of the same server).
        let again = store
            .acquire_lease("engine", "server-a", TTL, almost)
            .await
            .unwrap();
        assert_eq!(again, Some(held.clone()));
        // Leases are independent by name.
        let scheduler = store
            .acquire_lease("scheduler", "server-b", TTL, almost)
            .await
            .unwrap()
            .expect("another lease is free");
        assert_eq!(scheduler.token, 1);
    })
    .await;
}

#[tokio::test]
async fn a_released_lease_is_taken_by_another_holder_at_once() {
    on_each_backend("released_lease_taken", async |db| {
        let store = &db.store;
        let held = store
            .acquire_lease("engine", "server-a", TTL, T0)
            .await
            .unwrap()
            .unwrap();

        store.release_lease(&held).await.unwrap();

        let next = store
            .acquire_lease("engine", "server-b", TTL, T0)
            .await
            .unwrap()
            .expect("a released lease is free at once");
        assert_eq!(next.token, held.token + 1);
        // Releasing a lease one no longer holds changes nothing.
        store.release_lease(&held).await.unwrap();
        let third = store
            .acquire_lease("engine", "server-c", TTL, T0)
            .await
            .unwrap();
        assert_eq!(third, None);
    })
    .await;
}
