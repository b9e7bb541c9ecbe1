//! Draining, and the swap from one version to the next under load (DESIGN invariant 2: a swap
//! loses no request).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use slipway_proxy::{Config, Split};

use crate::support::{Client, DEADLINE, Harness, TestBackend, eventually, weights};

#[tokio::test]
async fn drain_waits_for_in_flight_requests() {
    let harness = Harness::start(Config::default()).await;
    let a = TestBackend::start("a", "RC 1").await;
    let b = TestBackend::start("b", "RC 1").await;
    harness.set_backends(&[&a]).await;
    harness.set_split(&Split::only("RC 1")).await;

    let client = Client::new();
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{}/slow/700", harness.url));
            tokio::spawn(async move { client.get(&url).await.status })
        })
        .collect();
    eventually("three slow requests at a", || a.served() == 3).await;
    harness.set_backends(&[&a, &b]).await;

    let proxy = harness.proxy.clone();
    let route = harness.route.clone();
    let drain = tokio::spawn(async move { proxy.drain(&route, "a", DEADLINE).await.unwrap() });
    // While `a` drains, new requests go to `b` only.
    eventually("the drain to start", || {
        harness.proxy.snapshot(&harness.route)["RC 1"].in_flight == 3
    })
    .await;
    for _ in 0..10 {
        assert_eq!(client.get(&harness.url).await.body, "RC 1 b");
    }
    let report = tokio::time::timeout(DEADLINE, drain)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((report.finished, report.cut_off), (3, 0));
    for request in slow {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(a.served(), 3);

    // A request longer than the drain's timeout is reported as cut off.
    let long = {
        let (client, url) = (client.clone(), format!("{}/slow/1500", harness.url));
        tokio::spawn(async move { client.get(&url).await.status })
    };
    eventually("the long request at b", || b.served() == 11).await;
    let report = harness
        .proxy
        .drain(&harness.route, "b", Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!((report.finished, report.cut_off), (0, 1));
    assert_eq!(long.await.unwrap(), 200, "the proxy itself cuts nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swapping_versions_under_load_drops_no_request() {
    let harness = Harness::start(Config::default()).await;
    let old = [
        TestBackend::start("old-1", "RC 1").await,
        TestBackend::start("old-2", "RC 1").await,
    ];
    let new = [
        TestBackend::start("new-1", "RC 2").await,
        TestBackend::start("new-2", "RC 2").await,
    ];
    harness.set_backends(&[&old[0], &old[1]]).await;
    harness.set_split(&Split::only("RC 1")).await;

    // Four clients with keep-alive connections; two ask for slow pages so that drains have
    // requests in flight to wait for.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let url = if i % 2 == 0 {
                harness.url.clone()
            } else {
                format!("{}/slow/20", harness.url)
            };
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            tokio::spawn(async move {
                let client = Client::new();
                let mut failures = Vec::new();
                let mut versions = std::collections::BTreeSet::new();
                while !stop.load(Ordering::SeqCst) {
                    let request = http::Request::get(&url).body(Default::default()).unwrap();
                    match client.send(request).await {
                        Ok(reply) if reply.status == 200 => {
                            versions.insert(reply.version().to_owned());
                        }
                        Ok(reply) => failures.push(format!("{}: {}", reply.status, reply.body)),
                        Err(error) => failures.push(error),
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
                (failures, versions)
            })
        })
        .collect();
    // Each phase lasts a while and sees at least some requests complete.
    let phase = |millis| {
        let done = Arc::clone(&done);
        async move {
            let from = done.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(millis)).await;
            eventually("requests to complete", || {
                done.load(Ordering::SeqCst) >= from + 20
            })
            .await;
        }
    };

    phase(300).await;
    // The new fleet is up and healthy; then the 50/50 state; then the new version only.
    harness
        .set_backends(&[&old[0], &old[1], &new[0], &new[1]])
        .await;
    phase(300).await;
    harness
        .set_split(&weights(&[("RC 1", 2), ("RC 2", 2)]))
        .await;
    phase(500).await;
    harness.set_split(&Split::only("RC 2")).await;
    phase(200).await;
    // Scale-in: drain the old instances, forget them, stop them.
    let (first, second) = tokio::join!(
        harness
            .proxy
            .drain(&harness.route, "old-1", Duration::from_secs(5)),
        harness
            .proxy
            .drain(&harness.route, "old-2", Duration::from_secs(5)),
    );
    assert_eq!((first.unwrap().cut_off, second.unwrap().cut_off), (0, 0));
    harness.set_backends(&[&new[0], &new[1]]).await;
    let [old_1, old_2] = old;
    drop((old_1, old_2));
    phase(500).await;
    stop.store(true, Ordering::SeqCst);

    let mut seen = std::collections::BTreeSet::new();
    for task in load {
        let (failures, versions) = tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
        assert!(
            failures.is_empty(),
            "{} failed requests: {failures:?}",
            failures.len()
        );
        seen.extend(versions);
    }
    assert_eq!(seen, ["RC 1".to_owned(), "RC 2".to_owned()].into());
    let total = done.load(Ordering::SeqCst);
    assert!(total > 100, "only {total} requests in the whole swap");
    let snapshot = harness.proxy.snapshot(&harness.route);
    assert_eq!(snapshot["RC 2"].errors_5xx, 0);
}
