//! HTTP probes against small servers on 127.0.0.1: every instance must answer the expected
//! status and body text in time, and the first one that does not is named with why.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use slipway_core::analysis::{Classification, Measurement, MeasurementKind, Unit};
use slipway_verify::probe::{BODY_LIMIT, probe};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An HTTP server on 127.0.0.1, port 0. `stop` shuts it down and waits for it; dropping it
/// without `stop` (a failing test) aborts it. The markers tests use it too.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    closing: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves the router `app` builds. `app` gets a receiver that turns `true` when the server
    /// stops, for handlers that must hang until then.
    pub(crate) async fn start(app: impl FnOnce(watch::Receiver<bool>) -> Router) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (closing, closed) = watch::channel(false);
        let router = app(closed.clone());
        let mut signal = closed;
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|closed| *closed).await;
                })
                .await
                .expect("the test server serves");
        });
        TestServer {
            url,
            closing,
            task: Some(task),
        }
    }

    /// Releases hanging handlers, shuts the server down and waits until it has.
    pub(crate) async fn stop(mut self) {
        self.closing.send_replace(true);
        let task = self.task.take().expect("the server runs");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the test server stops within 10s")
            .expect("the test server ends cleanly");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A server whose `/login` answers `status` with `body`.
async fn answering(status: u16, body: &'static str) -> TestServer {
    let status = StatusCode::from_u16(status).unwrap();
    TestServer::start(|_| Router::new().route("/login", get(move || async move { (status, body) })))
        .await
}

/// A server whose `/login` never answers until the server stops.
async fn hanging() -> TestServer {
    TestServer::start(|closed| {
        Router::new().route(
            "/login",
            get(move || {
                let mut closed = closed.clone();
                async move {
                    let _ = closed.wait_for(|closed| *closed).await;
                    "too late"
                }
            }),
        )
    })
    .await
}

/// Probes `/login` on `endpoints` for a 200 containing `body`, within `timeout`.
async fn probe_login(endpoints: &[String], body: Option<&str>, timeout: Duration) -> Measurement {
    let client = reqwest::Client::new();
    let probing = probe(
        &client,
        "probe /login",
        endpoints,
        "/login",
        200,
        body,
        timeout,
    );
    tokio::time::timeout(Duration::from_secs(10), probing)
        .await
        .expect("the probe ends within 10s")
}

#[tokio::test]
async fn every_instance_answering_the_status_and_body_passes() {
    let first = answering(200, "<h1>Sign in</h1>").await;
    let second = answering(200, "<form>Sign in</form>").await;
    // A trailing slash on an endpoint does not double the one before the path.
    let endpoints = [first.url.clone(), format!("{}/", second.url)];

    let measurement = probe_login(&endpoints, Some("Sign in"), Duration::from_secs(5)).await;

    assert_eq!(measurement.name, "probe /login");
    assert_eq!(measurement.kind, MeasurementKind::Probe);
    assert_eq!(measurement.source, "http");
    assert_eq!(measurement.unit, Unit::Number);
    assert_eq!(measurement.outcome, Classification::Pass);
    assert_eq!(measurement.value, Some(2.0));
    assert_eq!(
        measurement.note,
        r#"2/2 instances answered 200 with "Sign in""#
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn an_instance_answering_another_status_fails_and_is_named() {
    let good = answering(200, "ok").await;
    let bad = answering(500, "boom").await;
    let endpoints = [good.url.clone(), bad.url.clone()];

    let measurement = probe_login(&endpoints, None, Duration::from_secs(5)).await;

    assert_eq!(measurement.outcome, Classification::Fail);
    assert_eq!(measurement.value, Some(1.0));
    assert_eq!(
        measurement.note,
        format!(
            "{}/login answered 500, expected 200; 1/2 instances passed",
            bad.url
        )
    );
    good.stop().await;
    bad.stop().await;
}

#[tokio::test]
async fn an_instance_whose_body_lacks_the_text_fails() {
    let server = answering(200, "<h1>Welcome back</h1>").await;

    let measurement = probe_login(
        std::slice::from_ref(&server.url),
        Some("Sign in"),
        Duration::from_secs(5),
    )
    .await;

    assert_eq!(measurement.outcome, Classification::Fail);
    assert_eq!(measurement.value, Some(0.0));
    assert_eq!(
        measurement.note,
        format!(
            r#"{}/login answered 200 but its body lacks "Sign in""#,
            server.url
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn a_slow_instance_times_out_and_fails_while_the_others_are_still_judged() {
    let fast = answering(200, "ok").await;
    let slow = hanging().await;
    let endpoints = [fast.url.clone(), slow.url.clone()];

    let measurement = probe_login(&endpoints, None, Duration::from_millis(300)).await;

    assert_eq!(measurement.outcome, Classification::Fail);
    assert_eq!(measurement.value, Some(1.0));
    assert_eq!(
        measurement.note,
        format!(
            "{}/login timed out after 300ms; 1/2 instances passed",
            slow.url
        )
    );
    fast.stop().await;
    slow.stop().await;
}

#[tokio::test]
async fn an_instance_on_a_closed_port_refused_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let measurement =
        probe_login(std::slice::from_ref(&closed), None, Duration::from_secs(5)).await;

    assert_eq!(measurement.outcome, Classification::Fail);
    assert_eq!(
        measurement.note,
        format!("{closed}/login refused the connection")
    );
}

#[tokio::test]
async fn no_instance_to_probe_is_no_data() {
    let measurement = probe_login(&[], None, Duration::from_secs(5)).await;

    assert_eq!(measurement.outcome, Classification::NoData);
    assert_eq!(measurement.value, None);
    assert_eq!(measurement.note, "no healthy instance to probe");
}

#[tokio::test]
async fn only_the_first_mebibyte_of_a_body_is_searched() {
    let near = format!("{}Sign in", "x".repeat(BODY_LIMIT - 100));
    let far = format!("{}Sign in", "x".repeat(BODY_LIMIT));
    let server = TestServer::start(move |_| {
        Router::new()
            .route("/near", get(move || async move { near }))
            .route("/far", get(move || async move { far }))
    })
    .await;
    let client = reqwest::Client::new();
    let endpoints = std::slice::from_ref(&server.url);
    let timeout = Duration::from_secs(5);

    let within = probe(
        &client,
        "near",
        endpoints,
        "/near",
        200,
        Some("Sign in"),
        timeout,
    )
    .await;
    let beyond = probe(
        &client,
        "far",
        endpoints,
        "/far",
        200,
        Some("Sign in"),
        timeout,
    )
    .await;

    assert_eq!(within.outcome, Classification::Pass, "{}", within.note);
    assert_eq!(beyond.outcome, Classification::Fail);
    assert!(
        beyond.note.ends_with(r#"body lacks "Sign in""#),
        "{}",
        beyond.note
    );
    server.stop().await;
}
