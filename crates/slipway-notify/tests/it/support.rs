//! Fixtures: a deploy of `idp` to prod by alice, and a real HTTP receiver on 127.0.0.1 that
//! records every request and answers as told.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use slipway_core::config::{EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig};
use slipway_core::deploy::{Deploy, DeployId, DeployRequest, DeploySpec, EffectKey, Progress};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_core::time::{Span, Time};
use slipway_testkit::fixtures::release;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// 2026-03-02T14:05:00Z.
pub(crate) const NOW: Time = Time::from_millis(1_772_460_300_000);

/// Deploy 12 of `idp` RC 112 to `env` by alice, replacing RC 111 (for a rollback, RC 111
/// coming back in place of RC 112).
pub(crate) fn deploy(env: &str, purpose: Purpose) -> Deploy {
    let service = ServiceConfig {
        name: "idp".to_owned(),
        start: "bin/server".to_owned(),
        migrate: None,
        health: HealthCheck::default(),
        pools: Pool::default_pools(),
        config: Default::default(),
        source: None,
    };
    let environment = EnvironmentConfig {
        name: env.to_owned(),
        target: "local".to_owned(),
        regions: Vec::new(),
        // A bake, so a failing check has a step to name.
        policy: Policy {
            bake: Span::from_secs(15 * 60),
            ..Policy::default()
        },
        command: None,
    };
    let (new, old) = match purpose {
        Purpose::Release => (release(112), release(111)),
        Purpose::Rollback => (release(111), release(112)),
    };
    let request = DeployRequest {
        service: &service,
        environment: &environment,
        kind: ReleaseKind::Full,
        release: new,
        previous: Some(old),
        requested_by: "alice".to_owned(),
        reason: (purpose == Purpose::Rollback).then(|| "error rate up".to_owned()),
    };
    let mut spec = DeploySpec::new(DeployId(12), request, NOW);
    spec.purpose = purpose;
    spec.commit = Some("3f2a9c1d2e4b5a6978".to_owned());
    Deploy {
        spec,
        progress: Progress::default(),
    }
}

pub(crate) fn key(step: &str, op: &str) -> EffectKey {
    EffectKey {
        deploy: DeployId(12),
        step: step.to_owned(),
        attempt: 1,
        op: op.to_owned(),
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Recorded {
    requests: Vec<Received>,
    /// Answers to give per path, in order; 200 once they run out.
    answers: HashMap<String, VecDeque<u16>>,
}

/// A real HTTP server on 127.0.0.1:0 that records requests; stopped when dropped.
pub(crate) struct Receiver {
    pub(crate) url: String,
    recorded: Arc<Mutex<Recorded>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// `answers`: for each path, the statuses of its first requests.
    pub(crate) async fn start(answers: &[(&str, &[u16])]) -> Receiver {
        let recorded = Arc::new(Mutex::new(Recorded {
            requests: Vec::new(),
            answers: answers
                .iter()
                .map(|(path, statuses)| ((*path).to_owned(), statuses.iter().copied().collect()))
                .collect(),
        }));
        let app = Router::new()
            .fallback(
                |State(recorded): State<Arc<Mutex<Recorded>>>,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let mut recorded = recorded.lock().unwrap();
                    let path = uri.path().to_owned();
                    let status = recorded
                        .answers
                        .get_mut(&path)
                        .and_then(VecDeque::pop_front)
                        .unwrap_or(200);
                    // A refusal echoes the path, as many web frameworks do.
                    let answer = format!("Cannot POST {path}");
                    recorded.requests.push(Received {
                        path,
                        headers,
                        body,
                    });
                    let status = StatusCode::from_u16(status).unwrap();
                    (
                        status,
                        if status.is_success() {
                            String::new()
                        } else {
                            answer
                        },
                    )
                },
            )
            .with_state(Arc::clone(&recorded));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            url,
            recorded,
            stop: Some(stop),
        }
    }

    pub(crate) fn requests(&self) -> Vec<Received> {
        self.recorded.lock().unwrap().requests.clone()
    }

    /// Waits (bounded) until `done` holds for the requests received.
    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !done(&self.requests()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; received {:?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
