//! What a client gets when no backend can answer: 502, 503 and 504 with a body that says why.

use std::time::Duration;

use http::Request;
use http::header::CONTENT_TYPE;
use http_body_util::Full;
use slipway_proxy::{Backend, Config, Split};

use crate::support::{Client, Harness, TestBackend, refused_addr, resetting_addr, weights};

#[tokio::test]
async fn no_healthy_backend_is_503_with_a_clear_body() {
    let harness = Harness::start(Config::default()).await;
    let client = Client::new();

    // Before the engine sets any traffic.
    let reply = client.get(&harness.url).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.error_code(), "no_traffic_split");

    let a = TestBackend::start("a", "RC 1").await;
    harness.set_split(&Split::only("RC 1")).await;
    let backends = vec![a.backend(false)];
    harness
        .proxy
        .set_backends(&harness.route, backends)
        .await
        .unwrap();
    let reply = client.get(&harness.url).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    assert_eq!(reply.error_code(), "no_healthy_instance");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("service idp"), "{message}");
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("health check")
    );
    assert_eq!(a.served(), 0);

    // A healthy backend of a version without traffic does not help either.
    let b = TestBackend::start("b", "RC 2").await;
    let backends = vec![a.backend(false), b.backend(true)];
    harness
        .proxy
        .set_backends(&harness.route, backends)
        .await
        .unwrap();
    assert_eq!(client.get(&harness.url).await.status, 503);
    assert_eq!(b.served(), 0);
}

#[tokio::test]
async fn refused_backend_is_retried_once_and_then_502() {
    let harness = Harness::start(Config::default()).await;
    let live = TestBackend::start("live", "RC 1").await;
    let dead = Backend {
        id: "dead".into(),
        addr: refused_addr().await,
        version: "RC 1".into(),
        healthy: true, // not yet noticed by the health checks
    };
    harness.set_split(&Split::only("RC 1")).await;
    let backends = vec![dead.clone(), live.backend(true)];
    harness
        .proxy
        .set_backends(&harness.route, backends)
        .await
        .unwrap();

    // Idempotent requests that meet the dead backend are retried on the live one.
    let client = Client::new();
    for _ in 0..20 {
        let reply = client.get(&harness.url).await;
        assert_eq!(
            (reply.status.as_u16(), reply.body.as_str()),
            (200, "RC 1 live")
        );
    }
    // A POST is not retried: about half meet the dead backend and get a 502.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let post = Request::post(&harness.url)
            .body(Full::from("order"))
            .unwrap();
        statuses.push(client.send(post).await.unwrap().status.as_u16());
    }
    assert!(
        statuses.contains(&200) && statuses.contains(&502),
        "{statuses:?}"
    );

    // Retried once only: with every backend refusing, the client gets a 502 that says so.
    let other = Backend {
        id: "also-dead".into(),
        addr: refused_addr().await,
        ..dead.clone()
    };
    let backends = vec![dead, other];
    harness
        .proxy
        .set_backends(&harness.route, backends)
        .await
        .unwrap();
    let reply = client.get(&harness.url).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.error_code(), "instance_failed");
    assert!(reply.body.contains("service idp"), "{}", reply.body);
}

#[tokio::test]
async fn backend_resetting_an_unread_request_is_retried_on_another() {
    let harness = Harness::start(Config::default()).await;
    let live = TestBackend::start("live", "RC 1").await;
    let (addr, resetter) = resetting_addr().await;
    let killed = Backend {
        id: "killed".into(),
        addr,
        version: "RC 1".into(),
        healthy: true, // killed a moment ago; the health checks have not noticed
    };
    harness.set_split(&Split::only("RC 1")).await;
    let backends = vec![killed, live.backend(true)];
    harness
        .proxy
        .set_backends(&harness.route, backends)
        .await
        .unwrap();

    // A fresh client per request, so each one opens new connections and about half meet the
    // resetting backend first.
    for _ in 0..20 {
        let reply = Client::new().get(&harness.url).await;
        assert_eq!(
            (reply.status.as_u16(), reply.body.as_str()),
            (200, "RC 1 live")
        );
    }
    resetter.abort();
}

#[tokio::test]
async fn slow_backend_is_504_after_the_timeout() {
    let config = Config {
        request_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let harness = Harness::start(config).await;
    let slow = TestBackend::start("slow", "RC 1").await;
    harness.set_backends(&[&slow]).await;
    harness.set_split(&weights(&[("RC 1", 1)])).await;

    let started = std::time::Instant::now();
    let reply = Client::new()
        .get(&format!("{}/slow/5000", harness.url))
        .await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.error_code(), "instance_timeout");
    assert!(reply.body.contains("within 300ms"), "{}", reply.body);
    assert!(started.elapsed() < Duration::from_secs(4));

    // Faster requests are unaffected.
    let reply = Client::new().get(&format!("{}/slow/10", harness.url)).await;
    assert_eq!(reply.status, 200);
}
