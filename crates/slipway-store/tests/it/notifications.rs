//! The notification outbox: one delivery per (effect key, destination) however often it is
//! enqueued, one claim per attempt, and every attempt recorded with what followed it.

use slipway_core::deploy::DeployId;
use slipway_core::time::Time;
use slipway_store::{AfterAttempt, DeliveryAttempt, DeliveryStatus, NewNotification};
use slipway_testkit::store::on_each_backend;

use crate::support::T0;

fn delivery(key: &str, destination: &str) -> NewNotification {
    NewNotification {
        deploy: DeployId(7),
        effect_key: key.to_owned(),
        destination: destination.to_owned(),
        kind: "slack".to_owned(),
        notice: "started".to_owned(),
        payload: "{\"text\":\"PROD: idp RC 1 deploy started by alice\"}".to_owned(),
    }
}

fn at(ms: i64) -> Time {
    Time(T0.0 + ms)
}

#[tokio::test]
async fn a_notification_is_enqueued_once_claimed_once_per_attempt_and_its_attempts_recorded() {
    on_each_backend(
        "a_notification_is_enqueued_once_claimed_once_per_attempt_and_its_attempts_recorded",
        async |db| {
            let store = &db.store;
            let first = [
                delivery("7/0/1/notify", "slack-1"),
                delivery("7/0/1/notify", "audit"),
            ];
            assert_eq!(store.enqueue_notifications(&first, T0).await.unwrap(), 2);
            // The effect retried after a crash: nothing new.
            assert_eq!(store.enqueue_notifications(&first, at(5)).await.unwrap(), 0);
            assert_eq!(store.next_notification_due().await.unwrap(), Some(T0));

            let due = store.due_notifications(T0, 10).await.unwrap();
            assert_eq!(due.len(), 2);
            let slack = &due[0];
            assert_eq!((slack.destination.as_str(), slack.attempts), ("slack-1", 0));
            assert!(
                store
                    .claim_notification(slack.id, 0, at(60_000))
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .claim_notification(slack.id, 0, at(60_000))
                    .await
                    .unwrap(),
                "a second deliverer cannot claim the same attempt"
            );
            assert_eq!(
                store.due_notifications(at(1), 10).await.unwrap().len(),
                1,
                "a claimed delivery is not due until its claim lapses"
            );
            let refused = DeliveryAttempt {
                attempt: 1,
                at: at(10),
                http_status: Some(503),
                outcome: "retry".to_owned(),
                error: Some("the receiver answered 503".to_owned()),
            };
            store
                .settle_notification(slack.id, &refused, AfterAttempt::Retry(at(1_000)))
                .await
                .unwrap();
            assert!(
                store
                    .due_notifications(at(999), 10)
                    .await
                    .unwrap()
                    .iter()
                    .all(|n| n.id != slack.id)
            );
            let again = store.due_notifications(at(1_000), 10).await.unwrap();
            let again = again.iter().find(|n| n.id == slack.id).unwrap();
            assert_eq!(again.attempts, 1);
            assert!(
                store
                    .claim_notification(slack.id, 1, at(61_000))
                    .await
                    .unwrap()
            );
            let delivered = DeliveryAttempt {
                attempt: 2,
                at: at(1_010),
                http_status: Some(200),
                outcome: "delivered".to_owned(),
                error: None,
            };
            store
                .settle_notification(slack.id, &delivered, AfterAttempt::Delivered)
                .await
                .unwrap();

            let audit = &due[1];
            assert!(
                store
                    .claim_notification(audit.id, 0, at(60_000))
                    .await
                    .unwrap()
            );
            let gave_up = DeliveryAttempt {
                attempt: 1,
                at: at(20),
                http_status: Some(400),
                outcome: "failed".to_owned(),
                error: Some("the receiver refused the payload (400)".to_owned()),
            };
            store
                .settle_notification(audit.id, &gave_up, AfterAttempt::Failed)
                .await
                .unwrap();
            assert_eq!(store.next_notification_due().await.unwrap(), None);

            let listed = store.notifications(Some(DeployId(7)), 50).await.unwrap();
            assert_eq!(listed.len(), 2);
            assert_eq!(listed[0].status, DeliveryStatus::Delivered);
            assert_eq!(listed[0].delivered_at, Some(at(1_010)));
            assert_eq!(listed[0].history, vec![refused, delivered]);
            assert_eq!(listed[1].status, DeliveryStatus::Failed);
            assert_eq!(listed[1].history, vec![gave_up]);
            assert!(
                store
                    .notifications(Some(DeployId(8)), 50)
                    .await
                    .unwrap()
                    .is_empty()
            );
        },
    )
    .await;
}
