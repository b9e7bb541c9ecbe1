//! Prometheus as a metric source, against a real Prometheus started by `slipway-testkit` from
//! the machine's binary. The numbers come from a real slipway proxy: two releases behind tiny
//! axum backends, requests driven through it, `Proxy::metrics_text` served at `/metrics` and
//! scraped every 250 ms, so the queries run over the metric names slipway really exports.
//!
//! Tests that need no scrape start a Prometheus without targets and query `vector()` and
//! `time()`: it is ready in well under a second, where the first scrape takes about five.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use slipway_core::analysis::Metric;
use slipway_core::config::PrometheusConfig;
use slipway_core::deploy::Split;
use slipway_core::time::{Span, Time};
use slipway_proxy::{Backend, Config, Proxy, Route};
use slipway_targets::route_for;
use slipway_testkit::prometheus::Prometheus as PrometheusServer;
use slipway_verify::prometheus::Prometheus;
use slipway_verify::{Reading, Source, Subject};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{Task, backend, serve};
use tokio::time::Instant;

/// How long any single wait in these tests may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

const SCRAPE_INTERVAL: Duration = Duration::from_millis(250);

/// Every `read` looks back this far: longer than any of these tests runs, so the window holds
/// every sample Prometheus took (see `read_measures_each_release_from_the_scraped_proxy`).
const WINDOW: Duration = Duration::from_secs(120);

/// RC 2's backend answers 500 to every fifth request: an error rate of exactly 20% of what
/// reached it (up to the last incomplete group of five).
const FAIL_EVERY: u64 = 5;

/// Requests sent through the proxy, split 1:1 between RC 1 and RC 2 ...
const REQUESTS: usize = 400;
/// ... in this many bursts, one per `BURST_PERIOD`: three seconds of traffic, so one-second
/// steps of `samples` see requests in at least two of them.
const BURSTS: usize = 40;
const BURST_PERIOD: Duration = Duration::from_millis(75);

fn subject(release: &str) -> Subject<'_> {
    Subject {
        service: "idp",
        environment: "prod",
        region: Some("us-east"),
        release,
        version: "2.0.0",
    }
}

fn config(url: &str, timeout: Span) -> PrometheusConfig {
    PrometheusConfig {
        url: url.to_owned(),
        timeout,
        queries: Default::default(),
    }
}

#[tokio::test]
async fn read_measures_each_release_from_the_scraped_proxy() {
    let stack = ScrapedProxy::start().await;
    let snapshot = stack.proxy.snapshot(&stack.route);
    let (one, two) = (&snapshot["RC 1"], &snapshot["RC 2"]);
    assert_eq!(one.requests + two.requests, REQUESTS as u64);
    assert_eq!(one.errors_5xx, 0);
    assert_eq!(two.errors_5xx, two.requests / FAIL_EVERY);

    // How many samples of each series the window holds. `increase()` extrapolates: it
    // multiplies the difference between the first and last sample in the window by
    // (sampled span + extension) / sampled span. The series were scraped at zero before the
    // first request, so nothing is added at the window's start (Prometheus never extrapolates a
    // counter below zero); at its end it adds the time since the last scrape when that is under
    // 1.1 average scrape intervals, else half an interval. So a count reads high by at most a
    // factor 1 + 1.1 / (samples - 1), and never low. Samples only accumulate, so counting them
    // before the reads gives a bound that still holds for them.
    let scrapes = stack
        .client
        .instant(&format!(
            r#"count_over_time(slipway_proxy_responses_total{{service="idp",version="RC 2",class="2xx"}}[{}s])"#,
            WINDOW.as_secs()
        ))
        .await
        .unwrap()
        .expect("Prometheus holds samples of RC 2");
    let overshoot = 1.0 + 1.1 / (scrapes - 1.0);

    let rc2 = stack
        .client
        .read(&subject("RC 2"), Metric::ErrorRate, WINDOW)
        .await
        .unwrap();
    let rate = rc2.value.expect("RC 2 has an error rate");
    // Both sides of the ratio are extrapolated by the same factor (same scrapes, same zero
    // start), so it cancels: the rate is the proxy's own to rounding.
    let exact = two.errors_5xx as f64 / two.requests as f64;
    assert!(
        (rate - exact).abs() < 1e-9,
        "Prometheus says {rate}, the proxy counted {exact}"
    );
    // Every fifth request failed: 20% up to one incomplete group of five.
    assert!(
        (rate - 0.2).abs() <= 1.0 / two.requests as f64,
        "RC 2's error rate is {rate}"
    );
    assert_requests(rc2, two.requests, overshoot);

    let rc1 = stack
        .client
        .read(&subject("RC 1"), Metric::ErrorRate, WINDOW)
        .await
        .unwrap();
    assert_eq!(rc1.value, Some(0.0));
    assert_requests(rc1, one.requests, overshoot);

    // Every bucket of the histogram is extrapolated by the same factor too, and
    // `histogram_quantile` interpolates as the proxy's snapshot does: the same p99, but for the
    // snapshot's rounding to whole nanoseconds (a `Duration`), hence 10 ns = 1e-5 ms.
    let p99 = stack
        .client
        .read(&subject("RC 2"), Metric::LatencyP99, WINDOW)
        .await
        .unwrap()
        .value
        .expect("RC 2 has a p99");
    let proxy_p99 = two.p99.expect("the proxy measured a p99").as_secs_f64() * 1000.0;
    assert!(p99 > 0.0, "p99 is {p99} ms");
    assert!(
        (p99 - proxy_p99).abs() <= 1e-5,
        "Prometheus' p99 is {p99} ms, the proxy's {proxy_p99} ms"
    );

    // The mean divides two counters' increases, the histogram's `_sum` by its `_count`: the
    // same cancellation.
    let mean = stack
        .client
        .read(&subject("RC 1"), Metric::LatencyMean, WINDOW)
        .await
        .unwrap()
        .value
        .expect("RC 1 has a mean latency");
    let proxy_mean = one.latency.sum.as_secs_f64() * 1000.0 / one.latency.count as f64;
    assert!(mean > 0.0, "mean is {mean} ms");
    assert!(
        (mean - proxy_mean).abs() <= proxy_mean * 1e-6,
        "Prometheus' mean is {mean} ms, the proxy's {proxy_mean} ms"
    );

    stack.stop().await;
}

/// `requests` is the extrapolated count, rounded: never below the true count, and above it by
/// no more than the extrapolation allows.
#[track_caller]
fn assert_requests(reading: Reading, counted: u64, overshoot: f64) {
    let requests = reading.requests.expect("a request count");
    let most = (counted as f64 * overshoot).round() as u64;
    assert!(
        (counted..=most).contains(&requests),
        "Prometheus counted {requests} requests, the proxy {counted} (at most {most} allowed)"
    );
}

#[tokio::test]
async fn samples_give_one_value_per_step_that_had_requests() {
    let stack = ScrapedProxy::start().await;
    let step = Duration::from_secs(1);

    let errors = stack
        .client
        .samples(&subject("RC 2"), Metric::ErrorRate, WINDOW, step)
        .await
        .unwrap();
    // Three seconds of traffic cover at least two one-second steps; steps without requests
    // (0/0) are left out rather than read as 0%.
    assert!(errors.len() >= 2, "RC 2's error rate per step: {errors:?}");
    assert!(
        errors.iter().all(|rate| (0.0..=1.0).contains(rate)),
        "{errors:?}"
    );
    assert!(errors.iter().any(|&rate| rate > 0.0), "{errors:?}");
    assert!(
        errors.len() <= WINDOW.as_secs() as usize,
        "at most one value per step: {errors:?}"
    );

    let clean = stack
        .client
        .samples(&subject("RC 1"), Metric::ErrorRate, WINDOW, step)
        .await
        .unwrap();
    assert!(clean.len() >= 2, "RC 1's error rate per step: {clean:?}");
    assert!(clean.iter().all(|&rate| rate == 0.0), "{clean:?}");

    // The request rate is a number in quiet steps too (zero), so it has a value wherever the
    // error rate has one.
    let rates = stack
        .client
        .samples(&subject("RC 2"), Metric::RequestRate, WINDOW, step)
        .await
        .unwrap();
    assert!(rates.len() >= errors.len(), "{rates:?} against {errors:?}");
    assert!(rates.iter().any(|&rate| rate > 0.0), "{rates:?}");

    stack.stop().await;
}

#[tokio::test]
async fn a_release_prometheus_has_no_series_for_reads_as_no_data() {
    let (_server, client) = unscraped().await;
    for metric in [Metric::ErrorRate, Metric::LatencyP99, Metric::RequestRate] {
        let reading = client.read(&subject("RC 9"), metric, WINDOW).await.unwrap();
        assert_eq!(
            reading,
            Reading {
                value: None,
                requests: None
            },
            "{metric:?}"
        );
    }
    let samples = client
        .samples(
            &subject("RC 9"),
            Metric::ErrorRate,
            WINDOW,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(samples, Vec::<f64>::new());
}

#[tokio::test]
async fn instant_takes_a_scalar_or_the_one_sample_of_a_vector() {
    let (_server, client) = unscraped().await;
    assert_eq!(client.instant("1 + 1").await.unwrap(), Some(2.0));
    assert_eq!(client.instant("vector(0.25)").await.unwrap(), Some(0.25));
    assert_eq!(client.instant("sum(vector(3))").await.unwrap(), Some(3.0));
    // A filter that drops the only sample: an empty vector.
    assert_eq!(client.instant("vector(1) > 2").await.unwrap(), None);
}

#[tokio::test]
async fn nan_and_infinity_are_no_data() {
    let (_server, client) = unscraped().await;
    for query in ["0 / 0", "vector(1) / 0", "-1 / 0", "vector(0) / vector(0)"] {
        assert_eq!(client.instant(query).await.unwrap(), None, "{query}");
    }
}

#[tokio::test]
async fn several_series_are_an_error_that_says_to_aggregate() {
    let (_server, client) = unscraped().await;
    let query = r#"label_replace(vector(1), "side", "a", "", "") or label_replace(vector(2), "side", "b", "", "")"#;
    let error = client.instant(query).await.unwrap_err().message;
    assert!(error.contains("returned 2 series"), "{error}");
    assert!(error.contains(r#"{side="a"}, {side="b"}"#), "{error}");
    assert!(
        error.contains("hint: aggregate them, e.g. sum(...)"),
        "{error}"
    );
    assert!(error.contains(query), "{error}");

    let now = now();
    let range = client
        .range(query, now, now, Duration::from_secs(1))
        .await
        .unwrap_err()
        .message;
    assert!(range.contains("returned 2 series"), "{range}");
}

#[tokio::test]
async fn bad_promql_is_an_error_naming_the_query_and_the_fix() {
    let (_server, client) = unscraped().await;
    let query = "sum(rate(slipway_proxy_responses_total[5m]";
    let error = client.instant(query).await.unwrap_err().message;
    assert!(
        error.starts_with(&format!(
            "Prometheus rejected query `{query}` (HTTP 400 Bad Request, bad_data): "
        )),
        "{error}"
    );
    assert!(error.contains("parse error"), "{error}");
    assert!(
        error.contains("hint: fix the PromQL in slipway.toml"),
        "{error}"
    );

    // Through the source too: a `[prometheus.queries]` template with a typo.
    let mut broken = config(client.url(), Span::from_secs(5));
    broken
        .queries
        .insert(Metric::ErrorRate, "rate(x[{window}]".to_owned());
    let source = Prometheus::new(&broken);
    let error = source
        .read(&subject("RC 1"), Metric::ErrorRate, WINDOW)
        .await
        .unwrap_err()
        .message;
    assert!(error.contains("`rate(x[120s]`"), "{error}");
}

#[tokio::test]
async fn range_values_come_oldest_first_without_the_steps_that_are_not_numbers() {
    let (_server, client) = unscraped().await;
    // Whole seconds, so `time() % 2` alternates between 0 and 1 from step to step.
    let end = Time::from_millis(now().as_millis() / 1000 * 1000);
    let start = Time::from_millis(end.as_millis() - 10_000);
    let step = Duration::from_secs(1);

    let times = client.range("time()", start, end, step).await.unwrap();
    let expected: Vec<f64> = (0..=10)
        .map(|i| (start.as_millis() / 1000 + i) as f64)
        .collect();
    assert_eq!(times, expected);

    // 0/0 on even seconds: those steps are left out.
    let odd = client
        .range("(time() % 2) / (time() % 2)", start, end, step)
        .await
        .unwrap();
    let odd_seconds = expected.iter().filter(|&&t| t % 2.0 == 1.0).count();
    assert_eq!(odd, vec![1.0; odd_seconds]);
}

#[tokio::test]
async fn query_value_renders_the_template_for_the_subject() {
    let (_server, client) = unscraped().await;
    // The query only parses if the service's quote and backslash were escaped (`absent()` of a
    // series nobody has is 1); the subquery counts the whole seconds in `{window}`: five, or six
    // when the query time falls on a whole second and both ends count.
    let template = r#"count_over_time(vector(1)[{window}:1s]) * on() absent(nothing{service="{service}",route="{route}"})"#;
    let odd = Subject {
        service: r#"we"ird\name"#,
        ..subject("RC 1")
    };
    let value = client
        .query_value(template, &odd, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(value == Some(5.0) || value == Some(6.0), "{value:?}");
}

#[tokio::test]
async fn unreachable_prometheus_is_an_error_with_a_hint() {
    let address = refused_address().await;
    let client = Prometheus::new(&config(&format!("http://{address}"), Span::from_secs(5)));
    let error = client
        .read(&subject("RC 2"), Metric::ErrorRate, WINDOW)
        .await
        .unwrap_err()
        .message;
    assert!(
        error.starts_with(&format!(
            "cannot reach Prometheus at http://{address} for query `sum(increase("
        )),
        "{error}"
    );
    assert!(error.contains("Connection refused"), "{error}");
    assert!(
        error.contains("hint: check that Prometheus runs there and that [prometheus] url is right"),
        "{error}"
    );
}

#[tokio::test]
async fn an_https_url_is_an_error_that_says_to_use_http() {
    let client = Prometheus::new(&config("https://prometheus.internal", Span::from_secs(5)));
    let error = client.instant("vector(1)").await.unwrap_err().message;
    assert!(
        error.starts_with(
            "cannot reach Prometheus at https://prometheus.internal for query `vector(1)`: "
        ),
        "{error}"
    );
    assert!(
        error.contains("(hint: slipway speaks plain http:// to Prometheus"),
        "{error}"
    );
}

#[tokio::test]
async fn a_prometheus_slower_than_the_timeout_is_an_error() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = Task::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = Prometheus::new(&config(
        &format!("http://{address}"),
        Span::from_millis(300),
    ));

    let started = Instant::now();
    let error = client.instant("vector(1)").await.unwrap_err().message;
    assert!(started.elapsed() < DEADLINE, "{:?}", started.elapsed());
    assert_eq!(
        error,
        format!(
            "Prometheus at http://{address} did not answer query `vector(1)` within 300ms \
             (hint: make the query cheaper or raise [prometheus] timeout)"
        )
    );
    drop(silent);
}

#[tokio::test]
async fn a_url_that_is_not_prometheus_gets_a_hint_about_the_url() {
    // What a reverse proxy in front of Prometheus answers for a path it does not know.
    let app = Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") });
    let (address, server) = serve(app).await;
    let client = Prometheus::new(&config(
        &format!("http://{address}/prometheus/"),
        Span::from_secs(5),
    ));
    let error = client.instant("vector(1)").await.unwrap_err().message;
    assert_eq!(
        error,
        format!(
            "Prometheus at http://{address}/prometheus answered HTTP 404 Not Found to \
             /api/v1/query for query `vector(1)`: 404 page not found (hint: [prometheus] url \
             must be Prometheus' base URL, the part before /api/v1)"
        )
    );
    drop(server);
}

/// A Prometheus without targets and a client of it.
async fn unscraped() -> (PrometheusServer, Prometheus) {
    let server = PrometheusServer::start(&[], SCRAPE_INTERVAL)
        .await
        .expect("Prometheus starts");
    let client = Prometheus::new(&config(server.url(), Span::from_secs(5)));
    (server, client)
}

/// A slipway proxy with RC 1 and RC 2 behind it, [`REQUESTS`] requests already sent through it,
/// and a Prometheus that has scraped all of them.
struct ScrapedProxy {
    proxy: Proxy,
    route: Route,
    client: Prometheus,
    prometheus: PrometheusServer,
    tasks: Vec<Task>,
    proxy_shutdown: tokio::sync::oneshot::Sender<()>,
    proxy_task: JoinHandle<()>,
    _state: tempfile::TempDir,
}

impl ScrapedProxy {
    async fn start() -> ScrapedProxy {
        let mut tasks = Vec::new();
        let (one, task) = backend(None).await;
        tasks.push(task);
        let (two, task) = backend(Some(FAIL_EVERY)).await;
        tasks.push(task);

        // The route the local target gives `idp` in region `us-east` of `prod`: its metrics'
        // `region` label is `prod/us-east`, which `{route}` renders.
        let state = tempfile::tempdir().unwrap();
        let proxy = Proxy::open(state.path().join("proxy-state.json"), Config::default()).unwrap();
        let route = route_for("prod", "idp", Some("us-east"));
        let backends = vec![
            Backend {
                id: "one".to_owned(),
                addr: one,
                version: "RC 1".to_owned(),
                healthy: true,
            },
            Backend {
                id: "two".to_owned(),
                addr: two,
                version: "RC 2".to_owned(),
                healthy: true,
            },
        ];
        proxy.set_backends(&route, backends).await.unwrap();
        let split = Split {
            weights: [("RC 1".to_owned(), 1), ("RC 2".to_owned(), 1)].into(),
            ..Split::only("RC 1")
        };
        proxy.set_split(&route, &split).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!("http://{}", listener.local_addr().unwrap());
        let (proxy_shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let serving = proxy.clone();
        let served_route = route.clone();
        let proxy_task = tokio::spawn(async move {
            serving
                .serve(served_route, listener, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });

        // slipway's `/metrics`, as the server serves it.
        let exported = proxy.clone();
        let metrics = Router::new().route(
            "/metrics",
            get(move || {
                let text = exported.metrics_text();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        );
        let (metrics_address, task) = serve(metrics).await;
        tasks.push(task);

        let prometheus = PrometheusServer::start(&[metrics_address], SCRAPE_INTERVAL)
            .await
            .expect("Prometheus starts");
        prometheus
            .wait_for_scrape(DEADLINE)
            .await
            .unwrap_or_else(|error| panic!("{error}\nPrometheus' log:\n{}", prometheus.log()));
        let client = Prometheus::new(&config(prometheus.url(), Span::from_secs(5)));

        // Both versions' counters scraped at zero before the first request: the reads rely on
        // it (see `read_measures_each_release_from_the_scraped_proxy`).
        let series = r#"slipway_proxy_responses_total{service="idp",region="prod/us-east"}"#;
        wait_for(&client, &format!("count({series})"), 10.0).await;

        let http = reqwest::Client::new();
        let mut bursts = tokio::time::interval(BURST_PERIOD);
        for _ in 0..BURSTS {
            bursts.tick().await;
            for _ in 0..REQUESTS / BURSTS {
                let response = tokio::time::timeout(DEADLINE, http.get(&proxy_url).send())
                    .await
                    .expect("the proxy answers within the deadline")
                    .unwrap();
                let status = response.status().as_u16();
                assert!(status == 200 || status == 500, "{status}");
            }
        }

        // Prometheus has scraped the last request, of the counters and of the histogram.
        let total = REQUESTS as f64;
        wait_for(&client, &format!("sum({series})"), total).await;
        let count =
            r#"slipway_proxy_response_duration_seconds_count{service="idp",region="prod/us-east"}"#;
        wait_for(&client, &format!("sum({count})"), total).await;

        ScrapedProxy {
            proxy,
            route,
            client,
            prometheus,
            tasks,
            proxy_shutdown,
            proxy_task,
            _state: state,
        }
    }

    /// Stops Prometheus, the proxy, the backends and the metrics endpoint.
    async fn stop(self) {
        drop(self.prometheus);
        let _ = self.proxy_shutdown.send(());
        tokio::time::timeout(DEADLINE, self.proxy_task)
            .await
            .expect("the proxy stops within the deadline")
            .unwrap();
        drop(self.tasks);
    }
}

/// Polls `query` until it is `expected`; fails the test after the deadline.
async fn wait_for(client: &Prometheus, query: &str, expected: f64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let value = client.instant(query).await;
        if value == Ok(Some(expected)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{query}` is {value:?}, not {expected}, after {DEADLINE:?}"
        );
        tokio::time::sleep(SCRAPE_INTERVAL / 5).await;
    }
}

/// An address nothing listens on: connecting is refused.
async fn refused_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn now() -> Time {
    use slipway_engine::clock::{Clock as _, SystemClock};
    SystemClock.now()
}
