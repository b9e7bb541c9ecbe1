//! Which backend a request reaches: weights, health, sticky canary buckets, header routes.

use std::collections::BTreeMap;

use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use http_body_util::Full;
use slipway_proxy::{Config, Split};

use crate::support::{Client, Harness, TestBackend, weights};

#[tokio::test]
async fn weights_split_traffic_between_versions() {
    let harness = Harness::start(Config::default()).await;
    let (one, two) = (
        TestBackend::start("a", "RC 1").await,
        TestBackend::start("b", "RC 2").await,
    );
    harness.set_backends(&[&one, &two]).await;
    harness
        .set_split(&weights(&[("RC 1", 3), ("RC 2", 1)]))
        .await;

    let client = Client::new();
    let mut counts = BTreeMap::<String, u32>::new();
    for _ in 0..400 {
        let reply = client.get(&harness.url).await;
        assert_eq!(reply.status, 200);
        *counts.entry(reply.version().to_owned()).or_default() += 1;
    }
    // 300 expected for RC 1; the margin is seven standard deviations.
    let first = counts["RC 1"];
    assert!(
        (240..=360).contains(&first),
        "RC 1 got {first} of 400: {counts:?}"
    );
    assert_eq!(counts["RC 1"] + counts["RC 2"], 400);
}

#[tokio::test]
async fn unhealthy_backends_get_no_traffic() {
    let harness = Harness::start(Config::default()).await;
    let a = TestBackend::start("a", "RC 1").await;
    let b = TestBackend::start("b", "RC 1").await;
    let canary = TestBackend::start("c", "RC 2").await;
    let route = &harness.route;
    harness
        .set_split(&weights(&[("RC 1", 1), ("RC 2", 1)]))
        .await;
    // `b` and the whole of RC 2 fail their checks: RC 2's weight does not matter.
    let backends = vec![a.backend(true), b.backend(false), canary.backend(false)];
    harness.proxy.set_backends(route, backends).await.unwrap();

    let client = Client::new();
    for _ in 0..50 {
        assert_eq!(client.get(&harness.url).await.body, "RC 1 a");
    }
    assert_eq!((b.served(), canary.served()), (0, 0));

    // The checks change their minds: traffic follows.
    let backends = vec![a.backend(false), b.backend(true), canary.backend(false)];
    harness.proxy.set_backends(route, backends).await.unwrap();
    for _ in 0..50 {
        assert_eq!(client.get(&harness.url).await.body, "RC 1 b");
    }
    assert_eq!(a.served(), 50);
    assert_eq!(canary.served(), 0);
}

fn canary(share_bp: u32, header: Option<&str>) -> Split {
    Split {
        weights: [
            ("RC 2".to_owned(), share_bp),
            ("RC 1".to_owned(), 10_000 - share_bp),
        ]
        .into(),
        sticky: true,
        header: header.map(str::to_owned),
        header_version: header.map(|_| "RC 2".to_owned()),
    }
}

#[tokio::test]
async fn sticky_cookie_keeps_a_client_on_its_side() {
    let harness = Harness::start(Config::default()).await;
    let old = TestBackend::start("old", "RC 1").await;
    let new = TestBackend::start("new", "RC 2").await;
    harness.set_backends(&[&old, &new]).await;
    harness.set_split(&canary(2_000, None)).await;

    let client = Client::new();
    let mut sides = Vec::new();
    for _ in 0..40 {
        // A new client gets its bucket in a cookie...
        let first = client.get(&harness.url).await;
        let set_cookie = first.headers[SET_COOKIE].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("slipway_bucket="), "{cookie}");
        // ...and every later request with it lands on the same side, without a new cookie.
        for _ in 0..10 {
            let request = Request::get(&harness.url)
                .header(COOKIE, format!("theme=dark; {cookie}"))
                .body(Full::default())
                .unwrap();
            let reply = client.send(request).await.unwrap();
            assert!(!reply.headers.contains_key(SET_COOKIE));
            assert_eq!(reply.version(), first.version(), "{cookie} changed sides");
        }
        sides.push((cookie, first.version().to_owned()));
    }
    let on_canary = sides.iter().filter(|(_, side)| side == "RC 2").count();
    assert!(
        (1..40).contains(&on_canary),
        "{on_canary} of 40 clients on the 20% canary"
    );

    // Raising the canary's share keeps its users on it.
    harness.set_split(&canary(5_000, None)).await;
    for (cookie, side) in sides.iter().filter(|(_, side)| side == "RC 2") {
        let request = Request::get(&harness.url)
            .header(COOKIE, cookie.as_str())
            .body(Full::default())
            .unwrap();
        assert_eq!(client.send(request).await.unwrap().version(), side);
    }
}

#[tokio::test]
async fn header_route_reaches_the_tenant_version() {
    let harness = Harness::start(Config::default()).await;
    let old = TestBackend::start("old", "RC 1").await;
    let new = TestBackend::start("new", "RC 2").await;
    harness.set_backends(&[&old, &new]).await;
    // The canary takes no share of the public: only the internal tenant reaches it.
    harness
        .set_split(&canary(0, Some("X-Tenant: internal")))
        .await;

    let client = Client::new();
    for _ in 0..20 {
        let tenant = Request::get(&harness.url)
            .header("x-tenant", "internal")
            .body(Full::default())
            .unwrap();
        assert_eq!(client.send(tenant).await.unwrap().version(), "RC 2");
        let other = Request::get(&harness.url)
            .header("x-tenant", "acme")
            .body(Full::default())
            .unwrap();
        assert_eq!(client.send(other).await.unwrap().version(), "RC 1");
        assert_eq!(client.get(&harness.url).await.version(), "RC 1");
    }

    // With the tenant's version unhealthy, its requests share the normal split instead of failing.
    let backends = vec![old.backend(true), new.backend(false)];
    harness
        .proxy
        .set_backends(&harness.route, backends)
        .await
        .unwrap();
    let tenant = Request::get(&harness.url)
        .header("x-tenant", "internal")
        .body(Full::default())
        .unwrap();
    assert_eq!(client.send(tenant).await.unwrap().version(), "RC 1");
}
