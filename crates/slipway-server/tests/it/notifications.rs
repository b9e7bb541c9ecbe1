//! `GET /api/v1/notifications`: each delivery of a deploy with its payload and attempts.

use axum::http::{Method, StatusCode};
use slipway_core::deploy::DeployId;
use slipway_core::time::Time;
use slipway_store::{AfterAttempt, DeliveryAttempt, NewNotification};

use crate::support::{Api, error_code};

#[tokio::test]
async fn notifications_are_listed_per_deploy_with_their_attempts() {
    let api = Api::start().await;
    let vera = api.user("vera", "viewer").await;
    let store = &api.state.store;
    let at = Time::from_millis(1_772_460_300_000);
    let enqueued = [3, 4].map(|deploy| NewNotification {
        deploy: DeployId(deploy),
        effect_key: format!("{deploy}/0/1/notify-started"),
        destination: "team-slack".to_owned(),
        kind: "slack".to_owned(),
        notice: "started".to_owned(),
        payload: r#"{"text":"PROD: idp RC 1 deploy started by alice"}"#.to_owned(),
    });
    store.enqueue_notifications(&enqueued, at).await.unwrap();
    let due = store.due_notifications(at, 10).await.unwrap();
    assert!(store.claim_notification(due[0].id, 0, at).await.unwrap());
    let attempt = DeliveryAttempt {
        attempt: 1,
        at,
        http_status: Some(503),
        outcome: "retry".to_owned(),
        error: Some("http://127.0.0.1:9 answered 503 Service Unavailable".to_owned()),
    };
    let retry_at = Time::from_millis(at.as_millis() + 1_000);
    store
        .settle_notification(due[0].id, &attempt, AfterAttempt::Retry(retry_at))
        .await
        .unwrap();

    let (status, body) = api
        .call(
            Method::GET,
            "/api/v1/notifications?deploy=3",
            Some(&vera),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    let item = &items[0];
    assert_eq!(item["deploy"], 3);
    assert_eq!(item["status"], "pending");
    assert_eq!(item["attempts"], 1);
    assert_eq!(item["next_attempt_at"], "2026-03-02T14:05:01Z");
    assert_eq!(
        item["payload"]["text"],
        "PROD: idp RC 1 deploy started by alice"
    );
    assert_eq!(item["history"][0]["http_status"], 503);
    assert_eq!(item["history"][0]["outcome"], "retry");

    let (status, body) = api
        .call(Method::GET, "/api/v1/notifications", Some(&vera), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let (status, body) = api
        .call(
            Method::GET,
            "/api/v1/notifications?deploy=x",
            Some(&vera),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    error_code(&body);
    let (status, _) = api
        .call(Method::GET, "/api/v1/notifications", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    api.stop().await;
}
