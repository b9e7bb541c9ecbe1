//! Notifications delivered to a real HTTP receiver on 127.0.0.1: enqueued once however often
//! the effect runs, sent in the background, retried with backoff after failures, signed so the
//! receiver can verify them, and every attempt recorded — also when the receiver is down.

use std::sync::Arc;
use std::time::Duration;

use slipway_core::config::{NotifyDestination, NotifyKind, SecretSource};
use slipway_core::deploy::{Deploy, DeployResult, Notice};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_engine::clock::SystemClock;
use slipway_engine::plugin::Notifier;
use slipway_notify::signature::{
    ATTEMPT_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook,
};
use slipway_notify::{Deliverer, DeliveryConfig, Notifications};
use slipway_store::{DeliveryStatus, Notification, Store};
use slipway_testkit::store::on_each_backend;
use tokio::sync::watch;

use crate::support::{Receiver, deploy, key};

const SECRET: &str = "whsec-test-0123456789";

/// Fast pacing, so retries happen within the test.
fn fast(max_attempts: u32) -> DeliveryConfig {
    DeliveryConfig {
        timeout: Duration::from_secs(2),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_attempts,
        claim: Duration::from_secs(30),
        idle_poll: Duration::from_millis(50),
        batch: 50,
    }
}

fn slack(url: &str, environments: &[&str]) -> NotifyDestination {
    NotifyDestination {
        name: "team-slack".to_owned(),
        kind: NotifyKind::Slack,
        url: url.to_owned(),
        environments: environments.iter().map(|e| (*e).to_owned()).collect(),
        kinds: Vec::new(),
        secret: None,
    }
}

fn webhook(url: &str) -> NotifyDestination {
    NotifyDestination {
        name: "audit".to_owned(),
        kind: NotifyKind::Webhook,
        url: url.to_owned(),
        environments: Vec::new(),
        kinds: Vec::new(),
        secret: Some(SecretSource::File("webhook.secret".to_owned())),
    }
}

/// The notifier and the deliverer of `destinations`, the secret file in a temporary directory.
fn rig(
    store: &Store,
    destinations: Vec<NotifyDestination>,
    config: DeliveryConfig,
) -> (Notifications, Deliverer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webhook.secret"), format!("{SECRET}\n")).unwrap();
    let clock = Arc::new(SystemClock);
    let deliverer = Deliverer::new(
        store.clone(),
        destinations.clone(),
        dir.path().to_owned(),
        clock.clone(),
        config,
    );
    let notifications = Notifications::new(
        store.clone(),
        destinations,
        Some("https://slipway.example.org/".to_owned()),
        clock,
        deliverer.wake_handle(),
    );
    (notifications, deliverer, dir)
}

/// Runs passes of the deliverer until `done` holds for the deploy's notifications (bounded).
async fn deliver_until(
    store: &Store,
    deliverer: &Deliverer,
    deploy: &Deploy,
    done: impl Fn(&[Notification]) -> bool,
) -> Vec<Notification> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        deliverer.deliver_due().await.unwrap();
        let listed = store
            .notifications(Some(deploy.spec.id), 100)
            .await
            .unwrap();
        if done(&listed) {
            return listed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; notifications: {listed:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_signed_webhook_is_retried_until_the_receiver_takes_it_and_a_retried_effect_sends_nothing_twice()
 {
    on_each_backend(
        "a_signed_webhook_is_retried_until_the_receiver_takes_it_and_a_retried_effect_sends_nothing_twice",
        async |db| {
            let receiver = Receiver::start(&[("/hook", &[503, 500])]).await;
            let destinations = vec![
                slack(&format!("{}/slack", receiver.url), &["prod"]),
                webhook(&format!("{}/hook", receiver.url)),
            ];
            let (notifications, deliverer, _dir) = rig(&db.store, destinations, fast(5));
            let (stop, mut stopped) = watch::channel(false);
            let running = tokio::spawn(deliverer.run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }));

            let prod = deploy("prod", Purpose::Release);
            let started = key("0", "notify-started");
            // The engine ran the effect, crashed before recording it, and ran it again.
            for _ in 0..2 {
                notifications
                    .notify(&started, &prod, &Notice::Started)
                    .await
                    .unwrap();
            }
            receiver
                .wait_for("the webhook's third attempt and the Slack message", |got| {
                    got.iter().filter(|r| r.path == "/hook").count() == 3
                        && got.iter().any(|r| r.path == "/slack")
                })
                .await;
            // Settled after the answer: wait for the record, then stop the deliverer.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let listed = loop {
                let listed = db.store.notifications(Some(prod.spec.id), 10).await.unwrap();
                if listed.iter().all(|n| n.status == DeliveryStatus::Delivered) {
                    break listed;
                }
                assert!(tokio::time::Instant::now() < deadline, "{listed:#?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            stop.send(true).unwrap();
            tokio::time::timeout(Duration::from_secs(10), running)
                .await
                .expect("the deliverer stops on shutdown")
                .unwrap();

            let requests = receiver.requests();
            let slack_messages: Vec<_> = requests.iter().filter(|r| r.path == "/slack").collect();
            assert_eq!(slack_messages.len(), 1, "one Slack message per state change");
            let message: serde_json::Value = serde_json::from_slice(&slack_messages[0].body).unwrap();
            assert_eq!(message["text"], "PROD: idp RC 112 deploy started by alice");
            assert_eq!(slack_messages[0].header(SIGNATURE_HEADER), "", "Slack is not signed");

            let hooks: Vec<_> = requests.iter().filter(|r| r.path == "/hook").collect();
            assert_eq!(hooks.len(), 3);
            for (index, hook) in hooks.iter().enumerate() {
                assert!(
                    verify_webhook(
                        SECRET.as_bytes(),
                        hook.header(TIMESTAMP_HEADER),
                        &hook.body,
                        hook.header(SIGNATURE_HEADER),
                    ),
                    "attempt {index} carries a valid signature"
                );
                assert!(!verify_webhook(
                    b"another secret",
                    hook.header(TIMESTAMP_HEADER),
                    &hook.body,
                    hook.header(SIGNATURE_HEADER),
                ));
                assert_eq!(hook.header(DELIVERY_HEADER), "12/0/1/notify-started");
                assert_eq!(hook.header(ATTEMPT_HEADER), (index + 1).to_string());
                assert_eq!(hook.body, hooks[0].body, "every attempt sends the same payload");
                let text = String::from_utf8_lossy(&hook.body);
                assert!(!text.contains(SECRET), "the secret is never in the payload");
            }
            let payload: serde_json::Value = serde_json::from_slice(&hooks[0].body).unwrap();
            assert_eq!(payload["type"], "deploy.started");
            assert_eq!(payload["deploy"]["url"], "https://slipway.example.org/deploys/12");

            assert_eq!(listed.len(), 2, "{listed:#?}");
            let hook = listed.iter().find(|n| n.destination == "audit").unwrap();
            let statuses: Vec<_> = hook
                .history
                .iter()
                .map(|a| (a.attempt, a.http_status, a.outcome.as_str()))
                .collect();
            assert_eq!(
                statuses,
                [
                    (1, Some(503), "retry"),
                    (2, Some(500), "retry"),
                    (3, Some(200), "delivered")
                ]
            );
            assert!(hook.history[0].error.as_deref().unwrap().contains("503"));
            assert!(
                !hook.history[0].error.as_deref().unwrap().contains("/hook"),
                "errors show the origin, never the URL's path"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_its_failures_recorded_and_nothing_is_lost() {
    on_each_backend(
        "a_receiver_that_is_down_gets_its_failures_recorded_and_nothing_is_lost",
        async |db| {
            // A port that was free a moment ago: nothing listens there.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let down = format!("http://{}/hook", listener.local_addr().unwrap());
            drop(listener);
            let (notifications, deliverer, _dir) = rig(&db.store, vec![webhook(&down)], fast(3));
            let prod = deploy("prod", Purpose::Release);
            let finished = Notice::Finished {
                result: DeployResult::Failed,
                reason: Some("preflight: prod is frozen".to_owned()),
            };
            notifications
                .notify(&key("end", "notify-finished"), &prod, &finished)
                .await
                .unwrap();
            let listed = deliver_until(&db.store, &deliverer, &prod, |listed| {
                listed.iter().all(|n| n.status == DeliveryStatus::Failed)
            })
            .await;
            let [failed] = &listed[..] else {
                panic!("{listed:#?}");
            };
            assert_eq!(failed.attempts, 3);
            let outcomes: Vec<_> = failed
                .history
                .iter()
                .map(|a| (a.http_status, a.outcome.as_str()))
                .collect();
            assert_eq!(
                outcomes,
                [(None, "retry"), (None, "retry"), (None, "failed")]
            );
            for attempt in &failed.history {
                assert!(
                    attempt
                        .error
                        .as_deref()
                        .unwrap()
                        .ends_with("could not connect"),
                    "{attempt:?}"
                );
            }
            let kept: serde_json::Value = serde_json::from_str(&failed.payload).unwrap();
            assert_eq!(
                kept["text"], "PROD: idp RC 112 deploy by alice failed: preflight: prod is frozen",
                "the payload is kept with its record"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn a_receiver_refusing_the_payload_fails_it_at_once_and_routing_skips_other_environments() {
    on_each_backend(
        "a_receiver_refusing_the_payload_fails_it_at_once_and_routing_skips_other_environments",
        async |db| {
            let receiver = Receiver::start(&[("/slack", &[404])]).await;
            let destinations = vec![slack(&format!("{}/slack", receiver.url), &["prod"])];
            let (notifications, deliverer, _dir) = rig(&db.store, destinations, fast(5));
            let staging = deploy("staging", Purpose::Release);
            notifications
                .notify(&key("0", "notify-started"), &staging, &Notice::Started)
                .await
                .unwrap();
            assert!(
                db.store.notifications(None, 10).await.unwrap().is_empty(),
                "a prod-only destination hears nothing of staging"
            );
            let prod = deploy("prod", Purpose::Release);
            notifications
                .notify(&key("0", "notify-started"), &prod, &Notice::Started)
                .await
                .unwrap();
            let listed = deliver_until(&db.store, &deliverer, &prod, |listed| {
                listed.iter().all(|n| n.status != DeliveryStatus::Pending)
            })
            .await;
            assert_eq!(listed[0].status, DeliveryStatus::Failed);
            assert_eq!(listed[0].history.len(), 1, "a 404 is not retried");
            assert_eq!(listed[0].history[0].http_status, Some(404));
            let error = listed[0].history[0].error.clone().unwrap_or_default();
            assert!(
                error.contains("Cannot POST /…") && !error.contains("/slack"),
                "the answer is quoted without the URL's path, which may hold a token: {error}"
            );
            assert_eq!(receiver.requests().len(), 1);
        },
    )
    .await;
}

#[tokio::test]
async fn a_destination_for_off_cycle_releases_hears_only_of_them() {
    on_each_backend(
        "a_destination_for_off_cycle_releases_hears_only_of_them",
        async |db| {
            let mut wide = slack("http://127.0.0.1:9/company", &[]);
            wide.name = "company".to_owned();
            wide.kinds = vec![ReleaseKind::OffCycle];
            let team = slack("http://127.0.0.1:9/team", &["prod"]);
            let (notifications, _deliverer, _dir) = rig(&db.store, vec![team, wide], fast(5));
            let full = deploy("prod", Purpose::Release);
            notifications
                .notify(&key("0", "notify-started"), &full, &Notice::Started)
                .await
                .unwrap();
            let mut off_cycle = deploy("prod", Purpose::Release);
            off_cycle.spec.id = slipway_core::deploy::DeployId(full.spec.id.0 + 1);
            off_cycle.spec.kind = ReleaseKind::OffCycle;
            off_cycle.spec.reason = Some("lost emails".to_owned());
            notifications
                .notify(&key("1", "notify-started"), &off_cycle, &Notice::Started)
                .await
                .unwrap();
            let mut heard: Vec<(String, i64)> = db
                .store
                .notifications(None, 10)
                .await
                .unwrap()
                .iter()
                .map(|n| (n.destination.clone(), n.deploy.0))
                .collect();
            heard.sort();
            let (first, second) = (full.spec.id.0, off_cycle.spec.id.0);
            assert_eq!(
                heard,
                [
                    ("company".to_owned(), second),
                    ("team-slack".to_owned(), first),
                    ("team-slack".to_owned(), second)
                ]
            );
            let company = db
                .store
                .notifications(Some(off_cycle.spec.id), 10)
                .await
                .unwrap();
            let message = company
                .iter()
                .find(|n| n.destination == "company")
                .map(|n| n.payload.clone())
                .unwrap();
            assert!(message.contains("off-cycle deploy"), "{message}");
            assert!(message.contains("lost emails"), "{message}");
        },
    )
    .await;
}
