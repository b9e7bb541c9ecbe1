//! slipway's proxy as a metric source: a real `Proxy` with two releases behind tiny backends,
//! requests sent through it, and the source's readings compared with the proxy's own counts.

use std::time::Duration;

use slipway_core::analysis::Metric;
use slipway_core::deploy::Split;
use slipway_proxy::{Backend, Config, Proxy, Route, VersionSnapshot};
use slipway_targets::route_for;
use slipway_verify::proxy_source::ProxySource;
use slipway_verify::{Source, Subject};
use tokio::net::TcpListener;

use crate::support::{Task, backend};

/// The sampler's resolution in these tests.
const RESOLUTION: Duration = Duration::from_millis(50);

fn subject(release: &str) -> Subject<'_> {
    Subject {
        service: "idp",
        environment: "prod",
        region: None,
        release,
        version: "1.0.0",
    }
}

/// A proxy serving `idp` in `prod` with RC 1 (all 200) and RC 2 (every fifth request a 500),
/// and the things serving it.
struct Served {
    proxy: Proxy,
    route: Route,
    url: String,
    _tasks: Vec<Task>,
    _state: tempfile::TempDir,
}

async fn served() -> Served {
    let (one, first) = backend(None).await;
    let (two, second) = backend(Some(5)).await;
    let state = tempfile::tempdir().unwrap();
    let proxy = Proxy::open(state.path().join("proxy.json"), Config::default()).unwrap();
    let route = route_for("prod", "idp", None);
    let backends = [("one", one, "RC 1"), ("two", two, "RC 2")]
        .into_iter()
        .map(|(id, addr, version)| Backend {
            id: id.to_owned(),
            addr,
            version: version.to_owned(),
            healthy: true,
        })
        .collect();
    proxy.set_backends(&route, backends).await.unwrap();
    let split = Split {
        weights: [("RC 1".to_owned(), 1), ("RC 2".to_owned(), 1)].into(),
        ..Split::only("RC 1")
    };
    proxy.set_split(&route, &split).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = proxy.clone();
    let served_route = route.clone();
    let serving = Task::spawn(async move {
        let _ = serving
            .serve(served_route, listener, std::future::pending())
            .await;
    });
    Served {
        proxy,
        route,
        url,
        _tasks: vec![first, second, serving],
        _state: state,
    }
}

impl Served {
    async fn send(&self, requests: usize) {
        let http = reqwest::Client::new();
        for _ in 0..requests {
            let status = http.get(&self.url).send().await.unwrap().status();
            assert!(status == 200 || status == 500, "{status}");
        }
    }

    fn counts(&self, release: &str) -> VersionSnapshot {
        self.proxy.snapshot(&self.route).remove(release).unwrap()
    }
}

#[tokio::test]
async fn a_window_counts_exactly_the_requests_answered_in_it() {
    let served = served().await;
    let source = ProxySource::start(served.proxy.clone(), RESOLUTION, Duration::from_secs(60));
    served.send(200).await;

    // A window longer than the source has run holds everything the proxy counted.
    let all = source
        .read(&subject("RC 2"), Metric::ErrorRate, Duration::from_secs(60))
        .await
        .unwrap();
    let counted = served.counts("RC 2");
    assert_eq!(all.requests, Some(counted.requests));
    assert_eq!(all.value, counted.error_rate());
    assert!(counted.requests > 50, "the split sends RC 2 about half");

    // After a pause longer than a sample, a window that starts in it holds only what followed.
    tokio::time::sleep(RESOLUTION * 4).await;
    let before = served.counts("RC 2");
    let started = tokio::time::Instant::now();
    tokio::time::sleep(RESOLUTION * 2).await;
    served.send(100).await;
    let window = started.elapsed();
    let recent = source
        .read(&subject("RC 2"), Metric::ErrorRate, window)
        .await
        .unwrap();
    let since = served.counts("RC 2").since(&before);
    assert_eq!(recent.requests, Some(since.requests));
    assert_eq!(recent.value, since.error_rate());

    // RC 1 never failed; latency is read from the same window, in milliseconds.
    let rc1 = source
        .read(&subject("RC 1"), Metric::ErrorRate, window)
        .await
        .unwrap();
    assert_eq!(rc1.value, Some(0.0));
    let p99 = source
        .read(&subject("RC 1"), Metric::LatencyP99, window)
        .await
        .unwrap();
    assert!(
        p99.value.is_some_and(|ms| ms > 0.0 && ms < 1000.0),
        "{p99:?}"
    );
}

#[tokio::test]
async fn a_release_without_requests_reads_as_no_data_and_zero_per_second() {
    let served = served().await;
    let source = ProxySource::start(served.proxy.clone(), RESOLUTION, Duration::from_secs(60));
    tokio::time::sleep(RESOLUTION * 3).await;
    for release in ["RC 1", "RC 3"] {
        let reading = source
            .read(&subject(release), Metric::ErrorRate, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(reading.value, None, "{release}: no requests is no data");
        assert_eq!(reading.requests, Some(0));
    }
    let rate = source
        .read(
            &subject("RC 1"),
            Metric::RequestRate,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(rate.value, Some(0.0));
}

#[tokio::test]
async fn samples_are_one_per_step_that_had_requests_oldest_first() {
    let served = served().await;
    let step = Duration::from_millis(300);
    let source = ProxySource::start(served.proxy.clone(), RESOLUTION, Duration::from_secs(60));
    tokio::time::sleep(RESOLUTION * 2).await;
    // Three bursts a step apart, then a quiet step: three samples of RC 2's error rate.
    let mut ticks = tokio::time::interval(step);
    for _ in 0..3 {
        ticks.tick().await;
        served.send(40).await;
    }
    tokio::time::sleep(step).await;
    let samples = source
        .samples(&subject("RC 2"), Metric::ErrorRate, step * 5, step)
        .await
        .unwrap();
    assert!(
        (2..=4).contains(&samples.len()),
        "about one sample per burst (a burst may straddle a boundary): {samples:?}"
    );
    assert!(samples.iter().all(|rate| (0.0..=1.0).contains(rate)));
    let none = source
        .samples(&subject("RC 3"), Metric::ErrorRate, step * 5, step)
        .await
        .unwrap();
    assert!(none.is_empty());
}
