//! Deploy markers delivered to a real receiver on 127.0.0.1 that records every request: the
//! exact Grafana annotation and webhook JSON, their headers, retries of passing failures and
//! none of refusals, and errors that name each destination that did not get its marker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use slipway_core::config::{
    self, EnvironmentConfig, GrafanaMarkers, HealthCheck, Policy, Pool, ServiceConfig,
};
use slipway_core::deploy::{
    Deploy, DeployId, DeployRequest, DeployResult, DeploySpec, EffectKey, Notice, Progress,
};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_core::time::Time;
use slipway_engine::clock::ManualClock;
use slipway_engine::plugin::Notifier;
use slipway_testkit::fixtures::release;
use slipway_verify::markers::Markers;
use tokio::net::TcpListener;

use crate::probe::TestServer;

/// 2026-03-02T14:05:00.250Z: the markers' clock.
const NOW: Time = Time::from_millis(1_772_460_300_250);

/// An environment variable every test run has (cargo sets it for the test binary), standing in
/// for a Grafana token: tests cannot set variables, as that needs `unsafe`.
const TOKEN_ENV: &str = "CARGO_PKG_NAME";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: serde_json::Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

#[derive(Default)]
struct Recorded {
    requests: Vec<Received>,
    /// The answers to give, in order; `200 OK` once they run out.
    answers: VecDeque<(StatusCode, &'static str)>,
}

/// A receiver that records every request to any path and answers as told.
struct Receiver {
    server: TestServer,
    recorded: Arc<Mutex<Recorded>>,
}

impl Receiver {
    async fn start(answers: &[(u16, &'static str)]) -> Receiver {
        let recorded = Arc::new(Mutex::new(Recorded {
            requests: Vec::new(),
            answers: answers
                .iter()
                .map(|&(status, body)| (StatusCode::from_u16(status).unwrap(), body))
                .collect(),
        }));
        let state = Arc::clone(&recorded);
        let server = TestServer::start(move |_| {
            Router::new()
                .fallback(
                    |State(recorded): State<Arc<Mutex<Recorded>>>,
                     uri: Uri,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let mut recorded = recorded.lock().unwrap();
                        recorded.requests.push(Received {
                            path: uri.path().to_owned(),
                            headers,
                            body: serde_json::from_slice(&body).unwrap_or_default(),
                        });
                        recorded.answers.pop_front().unwrap_or((StatusCode::OK, ""))
                    },
                )
                .with_state(state)
        })
        .await;
        Receiver { server, recorded }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    fn requests(&self) -> Vec<Received> {
        self.recorded.lock().unwrap().requests.clone()
    }
}

/// Deploy 7 of `demo` to `prod` by alice: RC 3 replacing RC 2, or for a rollback the other way
/// round.
fn deploy(purpose: Purpose, reason: Option<&str>) -> Deploy {
    let service = ServiceConfig {
        name: "demo".to_owned(),
        start: "bin/server".to_owned(),
        migrate: None,
        health: HealthCheck::default(),
        pools: Pool::default_pools(),
        config: Default::default(),
        source: None,
    };
    let environment = EnvironmentConfig {
        name: "prod".to_owned(),
        target: "local".to_owned(),
        regions: Vec::new(),
        policy: Policy::default(),
        command: None,
    };
    let (new, old) = match purpose {
        Purpose::Release => (release(3), release(2)),
        Purpose::Rollback => (release(2), release(3)),
    };
    let request = DeployRequest {
        service: &service,
        environment: &environment,
        kind: ReleaseKind::Full,
        release: new,
        previous: Some(old),
        requested_by: "alice".to_owned(),
        reason: reason.map(str::to_owned),
    };
    let mut spec = DeploySpec::new(DeployId(7), request, Time::from_millis(0));
    spec.purpose = purpose;
    Deploy {
        spec,
        progress: Progress::default(),
    }
}

fn started_key() -> EffectKey {
    EffectKey {
        deploy: DeployId(7),
        step: "0".to_owned(),
        attempt: 1,
        op: "notify-started".to_owned(),
    }
}

fn finished_key() -> EffectKey {
    EffectKey {
        deploy: DeployId(7),
        step: "end".to_owned(),
        attempt: 1,
        op: "notify-finished".to_owned(),
    }
}

fn rolled_back() -> Notice {
    Notice::Finished {
        result: DeployResult::RolledBack,
        reason: Some("error_rate 20.0% over 1.0%".to_owned()),
    }
}

/// Markers to `grafana` and `webhooks`, timed by a clock stopped at [`NOW`].
fn markers(
    grafana: Option<GrafanaMarkers>,
    webhooks: Vec<String>,
    base_url: Option<&str>,
) -> Markers {
    let config = config::Markers { grafana, webhooks };
    Markers::new(&config, base_url.map(str::to_owned))
        .expect("a destination is configured")
        .with_clock(Arc::new(ManualClock::starting_at(NOW)))
}

fn grafana(url: String, token_env: Option<&str>) -> GrafanaMarkers {
    GrafanaMarkers {
        url,
        token_env: token_env.map(str::to_owned),
        tags: vec!["team-identity".to_owned()],
    }
}

#[tokio::test]
async fn grafana_annotation_of_a_rolled_back_deploy_carries_tags_text_and_token() {
    let receiver = Receiver::start(&[]).await;
    let markers = markers(
        Some(grafana(receiver.url("/"), Some(TOKEN_ENV))),
        Vec::new(),
        None,
    );

    markers
        .notify(
            &finished_key(),
            &deploy(Purpose::Release, None),
            &rolled_back(),
        )
        .await
        .unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let annotation = &requests[0];
    assert_eq!(annotation.path, "/api/annotations");
    assert_eq!(
        annotation.header("authorization"),
        Some(format!("Bearer {}", env!("CARGO_PKG_NAME")).as_str())
    );
    assert_eq!(annotation.header("content-type"), Some("application/json"));
    insta::assert_json_snapshot!(annotation.body, @r#"
    {
      "tags": [
        "slipway",
        "deploy",
        "demo",
        "prod",
        "RC 3",
        "rolled_back",
        "rollback",
        "team-identity"
      ],
      "text": "PROD: demo RC 3 (1.3.0) rolled back: error_rate 20.0% over 1.0%",
      "time": 1772460300250
    }
    "#);
    receiver.server.stop().await;
}

#[tokio::test]
async fn grafana_annotation_of_a_rollback_deploy_start_is_tagged_rollback() {
    let receiver = Receiver::start(&[]).await;
    let markers = markers(Some(grafana(receiver.url(""), None)), Vec::new(), None);
    let rollback = deploy(Purpose::Rollback, Some("RC 3 doubles the error rate"));

    markers
        .notify(&started_key(), &rollback, &Notice::Started)
        .await
        .unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("authorization"), None);
    insta::assert_json_snapshot!(requests[0].body, @r#"
    {
      "tags": [
        "slipway",
        "deploy",
        "demo",
        "prod",
        "RC 2",
        "started",
        "rollback",
        "team-identity"
      ],
      "text": "PROD: demo RC 2 (1.2.0) rollback started by alice: RC 3 doubles the error rate",
      "time": 1772460300250
    }
    "#);
    receiver.server.stop().await;
}

#[tokio::test]
async fn webhook_marker_of_a_finished_deploy_goes_to_every_url_with_an_idempotency_key() {
    let receiver = Receiver::start(&[]).await;
    let markers = markers(
        None,
        vec![receiver.url("/hooks/a"), receiver.url("/hooks/b")],
        Some("https://slipway.example/"),
    );

    markers
        .notify(
            &finished_key(),
            &deploy(Purpose::Release, None),
            &rolled_back(),
        )
        .await
        .unwrap();

    let mut requests = receiver.requests();
    requests.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/hooks/a", "/hooks/b"]);
    for request in &requests {
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.header("idempotency-key"),
            Some("7/end/1/notify-finished")
        );
        assert_eq!(request.header("authorization"), None);
        assert_eq!(request.body, requests[0].body);
    }
    insta::assert_json_snapshot!(requests[0].body, @r#"
    {
      "at": "2026-03-02T14:05:00.25Z",
      "deploy": 7,
      "environment": "prod",
      "event": "deploy_finished",
      "link": "https://slipway.example/api/v1/deploys/7",
      "purpose": "release",
      "reason": "error_rate 20.0% over 1.0%",
      "release": "RC 3",
      "requested_by": "alice",
      "result": "rolled_back",
      "service": "demo",
      "version": "1.3.0"
    }
    "#);
    receiver.server.stop().await;
}

#[tokio::test]
async fn webhook_marker_of_a_started_deploy_has_no_result_and_no_link_without_a_server_url() {
    let receiver = Receiver::start(&[]).await;
    let markers = markers(None, vec![receiver.url("/hook")], None);

    markers
        .notify(
            &started_key(),
            &deploy(Purpose::Release, None),
            &Notice::Started,
        )
        .await
        .unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("idempotency-key"),
        Some("7/0/1/notify-started")
    );
    insta::assert_json_snapshot!(requests[0].body, @r#"
    {
      "at": "2026-03-02T14:05:00.25Z",
      "deploy": 7,
      "environment": "prod",
      "event": "deploy_started",
      "link": null,
      "purpose": "release",
      "reason": null,
      "release": "RC 3",
      "requested_by": "alice",
      "result": null,
      "service": "demo",
      "version": "1.3.0"
    }
    "#);
    receiver.server.stop().await;
}

#[tokio::test]
async fn notices_other_than_start_and_end_send_no_marker() {
    let receiver = Receiver::start(&[]).await;
    let markers = markers(
        Some(grafana(receiver.url(""), None)),
        vec![receiver.url("/hook")],
        None,
    );
    let deploy = deploy(Purpose::Release, None);

    for notice in [Notice::GoNoGo, Notice::WaitingForApproval] {
        markers
            .notify(&started_key(), &deploy, &notice)
            .await
            .unwrap();
    }

    assert!(receiver.requests().is_empty());
    receiver.server.stop().await;
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_key_and_the_marker_then_delivered() {
    let receiver = Receiver::start(&[(503, "warming up")]).await;
    let markers = markers(None, vec![receiver.url("/hook")], None);

    markers
        .notify(
            &finished_key(),
            &deploy(Purpose::Release, None),
            &rolled_back(),
        )
        .await
        .unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one refusal, one retry");
    assert_eq!(requests[0].body, requests[1].body);
    for request in &requests {
        assert_eq!(
            request.header("idempotency-key"),
            Some("7/end/1/notify-finished")
        );
    }
    receiver.server.stop().await;
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_is_reported_with_the_answer() {
    let receiver = Receiver::start(&[(400, r#"{"message":"bad tags"}"#)]).await;
    let markers = markers(Some(grafana(receiver.url(""), None)), Vec::new(), None);

    let error = markers
        .notify(
            &finished_key(),
            &deploy(Purpose::Release, None),
            &rolled_back(),
        )
        .await
        .unwrap_err();

    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(
        error.message,
        format!(
            r#"deploy marker not delivered to grafana ({}): answered 400 Bad Request: {{"message":"bad tags"}}"#,
            receiver.server.url
        )
    );
    receiver.server.stop().await;
}

#[tokio::test]
async fn a_destination_that_keeps_failing_gets_three_attempts_and_is_named_alone() {
    let failing = Receiver::start(&[(503, ""), (502, ""), (503, "")]).await;
    let working = Receiver::start(&[]).await;
    let markers = markers(None, vec![failing.url("/hook"), working.url("/hook")], None);

    let error = markers
        .notify(
            &finished_key(),
            &deploy(Purpose::Release, None),
            &rolled_back(),
        )
        .await
        .unwrap_err();

    assert_eq!(failing.requests().len(), 3);
    assert_eq!(working.requests().len(), 1);
    assert_eq!(
        error.message,
        format!(
            "deploy marker not delivered to webhook 1 ({}): answered 503 Service Unavailable \
             (3 attempts)",
            failing.server.url
        )
    );
    failing.server.stop().await;
    working.server.stop().await;
}

#[tokio::test]
async fn an_unset_token_env_is_a_clear_error_and_other_destinations_still_get_the_marker() {
    let receiver = Receiver::start(&[]).await;
    let markers = markers(
        Some(grafana(
            receiver.url(""),
            Some("SLIPWAY_TEST_GRAFANA_TOKEN_NEVER_SET"),
        )),
        vec![receiver.url("/hook")],
        None,
    );

    let error = markers
        .notify(
            &finished_key(),
            &deploy(Purpose::Release, None),
            &rolled_back(),
        )
        .await
        .unwrap_err();

    let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/hook"],
        "the webhook only, never an anonymous annotation"
    );
    assert_eq!(
        error.message,
        format!(
            "deploy marker not delivered to grafana ({}): token_env \
             `SLIPWAY_TEST_GRAFANA_TOKEN_NEVER_SET` is not set in slipway's environment; set it \
             to a Grafana service-account token or remove token_env from [markers.grafana]",
            receiver.server.url
        )
    );
    receiver.server.stop().await;
}

#[tokio::test]
async fn an_unreachable_webhook_is_named_without_the_secret_in_its_path() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let markers = markers(None, vec![format!("{closed}/hooks/T0001/s3cr3t")], None);

    let error = markers
        .notify(
            &finished_key(),
            &deploy(Purpose::Release, None),
            &rolled_back(),
        )
        .await
        .unwrap_err();

    assert_eq!(
        error.message,
        format!(
            "deploy marker not delivered to webhook 1 ({closed}): refused the connection \
             (3 attempts)"
        )
    );
}

#[test]
fn no_destination_configured_is_no_notifier() {
    assert!(
        Markers::new(
            &config::Markers::default(),
            Some("https://slipway.example".into())
        )
        .is_none()
    );
}
