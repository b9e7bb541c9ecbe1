//! What goes over the wire: HTTP/2 cleartext, forwarded headers, metrics.

use http::{Request, Version};
use http_body_util::Full;
use slipway_proxy::{Config, Split};

use crate::support::{Client, Harness, TestBackend, weights};

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let harness = Harness::start(Config::default()).await;
    let backend = TestBackend::start("a", "RC 1").await;
    harness.set_backends(&[&backend]).await;
    harness.set_split(&Split::only("RC 1")).await;

    let client = Client::http2();
    for _ in 0..5 {
        let request = Request::get(&harness.url).body(Full::default()).unwrap();
        let reply = client.send(request).await.unwrap();
        assert_eq!(
            (reply.status.as_u16(), reply.body.as_str()),
            (200, "RC 1 a")
        );
    }
    // The backend, spoken to in HTTP/1.1, got the client's authority as `Host`.
    let request = Request::get(format!("{}/headers", harness.url))
        .version(Version::HTTP_2)
        .body(Full::default())
        .unwrap();
    let reply = client.send(request).await.unwrap();
    let host = harness.url.trim_start_matches("http://");
    assert!(
        reply.body.contains(&format!("host: {host}\n")),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn forwarded_headers_are_set() {
    let harness = Harness::start(Config::default()).await;
    let backend = TestBackend::start("a", "RC 1").await;
    harness.set_backends(&[&backend]).await;
    harness.set_split(&Split::only("RC 1")).await;

    let request = Request::get(format!("{}/headers", harness.url))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-kept", "yes")
        .body(Full::default())
        .unwrap();
    let reply = Client::new().send(request).await.unwrap();
    let seen = reply.body;
    assert!(
        seen.contains("x-forwarded-for: 203.0.113.7, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(seen.contains("x-kept: yes\n"), "{seen}");
    assert!(!seen.contains("x-hop"), "{seen}");
    assert!(!seen.contains("proxy-authorization"), "{seen}");

    // Without an incoming chain, the client's address starts one.
    let request = Request::get(format!("{}/headers", harness.url))
        .body(Full::default())
        .unwrap();
    let seen = Client::new().send(request).await.unwrap().body;
    assert!(seen.contains("x-forwarded-for: 127.0.0.1\n"), "{seen}");
}

#[tokio::test]
async fn metrics_count_by_version_and_status_class() {
    let harness = Harness::start(Config::default()).await;
    let old = TestBackend::start("old", "RC 1").await;
    let new = TestBackend::start("new", "RC 2").await;
    harness.set_backends(&[&old, &new]).await;
    let client = Client::new();

    harness.set_split(&Split::only("RC 1")).await;
    for _ in 0..6 {
        client.get(&harness.url).await;
    }
    client.get(&format!("{}/status/404", harness.url)).await;
    harness.set_split(&weights(&[("RC 2", 1)])).await;
    for _ in 0..3 {
        client.get(&harness.url).await;
    }
    for _ in 0..2 {
        client.get(&format!("{}/status/500", harness.url)).await;
    }

    let snapshot = harness.proxy.snapshot(&harness.route);
    let (one, two) = (&snapshot["RC 1"], &snapshot["RC 2"]);
    assert_eq!(
        (
            one.requests,
            one.by_class.success,
            one.by_class.client_error
        ),
        (7, 6, 1)
    );
    assert_eq!((one.errors_5xx, one.in_flight), (0, 0));
    assert_eq!((two.requests, two.errors_5xx), (5, 2));
    assert_eq!(two.error_rate(), Some(0.4));
    assert_eq!(two.latency.count, 5);
    assert!(two.p50.is_some() && two.p99 >= two.p50);

    // A window: what happened after the first snapshot.
    client.get(&harness.url).await;
    let later = &harness.proxy.snapshot(&harness.route)["RC 2"];
    let window = later.since(two);
    assert_eq!(
        (window.requests, window.errors_5xx, window.latency.count),
        (1, 0, 1)
    );

    let text = harness.proxy.metrics_text();
    let line = |labels: &str, value: u64| {
        format!("slipway_proxy_responses_total{{service=\"idp\",region=\"\",{labels}}} {value}\n")
    };
    assert!(
        text.contains(&line("version=\"RC 1\",class=\"2xx\"", 6)),
        "{text}"
    );
    assert!(
        text.contains(&line("version=\"RC 1\",class=\"4xx\"", 1)),
        "{text}"
    );
    assert!(
        text.contains(&line("version=\"RC 2\",class=\"5xx\"", 2)),
        "{text}"
    );
    assert!(
        text.contains("# TYPE slipway_proxy_response_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(
            "slipway_proxy_response_duration_seconds_count{service=\"idp\",region=\"\",version=\"RC 2\"} 6"
        ),
        "{text}"
    );
}
