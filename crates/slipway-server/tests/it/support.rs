//! An API on a temporary SQLite store, an admin token, and helpers to call it.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use slipway_core::config::parse_config;
use slipway_core::deploy::Role;
use slipway_engine::clock::{Clock, ManualClock, SystemClock};
use slipway_engine::{Engine, EngineConfig, Plugins};
use slipway_server::auth::{new_token, token_hash};
use slipway_server::{AppState, Blobs, Metrics, Settings, Shared, app};
use slipway_testkit::fake_target::{FakeTarget, Faults};
use slipway_testkit::store::{TestStore, sqlite};
use tempfile::TempDir;
use tokio::sync::watch;
use tower::ServiceExt;

pub(crate) const CONFIG: &str = r#"
[[service]]
name = "idp"
start = "bin/server"

[[service]]
name = "pivcac"
start = "bin/pivcac"

[environment.staging]
target = "local"

[environment.prod]
target = "local"
protected = true
go_no_go = false
bake = "0s"
confirm_scale_in = false
post_verify = false
provenance = "off"

[[checklist]]
name = "agreement signed"
service = "idp"
environment = "prod"
roles = ["approver", "admin"]
evidence = "link"

[[checklist]]
name = "logo present"
per = "environment"
evidence = "note"

[chat]
signing_secret_env = "SLACK_SIGNING_SECRET"
[chat.users]
U0ALICE = "alice"
U0BOB = "bob"
U0VERA = "vera"
"#;

/// The Slack signing secret of the chat endpoints in tests.
pub(crate) const CHAT_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// Small limits so tests can cross them cheaply.
pub(crate) const JSON_LIMIT: usize = 4096;
pub(crate) const ARTIFACT_LIMIT: u64 = 64 * 1024;

pub(crate) struct Api {
    router: Router,
    pub(crate) state: AppState,
    pub(crate) admin: String,
    store: Option<TestStore>,
    pub(crate) dir: TempDir,
    engine: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

impl Api {
    /// An API without an engine: deploys are created but do not move.
    pub(crate) async fn start() -> Api {
        Api::start_from(CONFIG, Arc::new(SystemClock), false).await
    }

    /// An API without an engine on `clock`, with a vault (a fresh master key) if `vault`.
    pub(crate) async fn start_with(clock: Arc<dyn Clock>, vault: bool) -> Api {
        Api::start_from(CONFIG, clock, vault).await
    }

    /// [`Api::start`] with another `slipway.toml`.
    pub(crate) async fn start_with_config(text: &str) -> Api {
        Api::start_from(text, Arc::new(SystemClock), false).await
    }

    /// [`Api::start_with_config`] on `clock`.
    pub(crate) async fn start_with_config_on(text: &str, clock: Arc<dyn Clock>) -> Api {
        Api::start_from(text, clock, false).await
    }

    async fn start_from(text: &str, clock: Arc<dyn Clock>, vault: bool) -> Api {
        let test_store = sqlite().await;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = parse_config("slipway.toml", text).expect("the test config is valid");
        let now = clock.now();
        let store = test_store.store.clone();
        store
            .add_user("admin", Role::Admin, "test", now)
            .await
            .expect("admin added");
        let admin = new_token();
        store
            .create_token("admin", &token_hash(&admin), None, "test", now)
            .await
            .expect("admin token");
        let state = AppState::new(Shared {
            store: store.clone(),
            config,
            blobs: Blobs::open(&dir.path().join("artifacts")).expect("artifact cache"),
            clock,
            metrics: Metrics::default(),
            settings: Settings {
                max_json_body: JSON_LIMIT,
                max_artifact_size: ARTIFACT_LIMIT,
                drivable: BTreeSet::from(["staging".to_owned(), "prod".to_owned()]),
                logs_dir: Some(dir.path().join("logs")),
                chat_signing_secret: Some(slipway_server::ChatSecret::new(CHAT_SECRET)),
                ..Settings::default()
            },
            vault: match vault {
                true => Some(Arc::new(
                    slipway_secrets::Vault::open(
                        store.clone(),
                        slipway_secrets::Keyring::new(
                            slipway_secrets::MasterKey::generate().0,
                            Vec::new(),
                        ),
                    )
                    .await
                    .expect("the vault opens"),
                )),
                false => None,
            },
        });
        Api {
            router: app(state.clone()),
            state,
            admin,
            store: Some(test_store),
            dir,
            engine: None,
        }
    }

    /// An API with an engine driving both environments through fake targets.
    pub(crate) async fn with_engine() -> Api {
        let mut api = Api::start().await;
        let fake = |seed| {
            let target: Arc<dyn slipway_engine::plugin::Target> = Arc::new(FakeTarget::new(
                seed,
                Faults::default(),
                ManualClock::default(),
                None,
                &[None],
            ));
            target
        };
        let plugins = Plugins {
            targets: [
                ("staging".to_owned(), fake(1)),
                ("prod".to_owned(), fake(2)),
            ]
            .into(),
            ..Plugins::default()
        };
        let engine = Engine::new(
            api.state.store.clone(),
            plugins,
            Arc::new(SystemClock),
            EngineConfig {
                poll_interval: std::time::Duration::from_millis(50),
                ..EngineConfig::default()
            },
        );
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            engine
                .run(shutdown)
                .await
                .expect("the engine stops cleanly");
        });
        api.engine = Some((stop, task));
        api
    }

    /// Stops the engine (if any) and removes the store.
    pub(crate) async fn stop(mut self) {
        if let Some((stop, task)) = self.engine.take() {
            let _ = stop.send(true);
            task.await.expect("the engine task ends");
        }
        if let Some(store) = self.store.take() {
            store.close().await;
        }
    }

    /// Sends `request` and returns the status and the JSON body (`null` when empty).
    pub(crate) async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body is readable")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, body)
    }

    /// Sends `request` and returns the status, the headers and the body as text.
    pub(crate) async fn send_raw(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body is readable")
            .to_bytes();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// A JSON request with `token`.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.expect("a valid request")).await
    }

    /// Adds a user with `role` and returns a token of theirs.
    pub(crate) async fn user(&self, name: &str, role: &str) -> String {
        let admin = Some(self.admin.as_str());
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/users",
                admin,
                Some(json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/tokens",
                admin,
                Some(json!({"user": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Uploads `bytes` as `version` of `service`.
    pub(crate) async fn push(
        &self,
        token: &str,
        service: &str,
        version: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let request = Request::post(format!(
            "/api/v1/artifacts?service={service}&version={version}"
        ))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(bytes))
        .expect("a valid request");
        self.send(request).await
    }

    /// Pushes an artifact and makes a release of it; returns the release's number.
    pub(crate) async fn release(&self, token: &str, service: &str, version: &str) -> String {
        let (status, body) = self
            .push(
                token,
                service,
                version,
                format!("{service} {version}").into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/releases",
                Some(token),
                Some(json!({"service": service, "version": version})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["number"].as_str().expect("a number").to_owned()
    }
}

/// Asserts the API's error shape and returns its code.
pub(crate) fn error_code(body: &Value) -> &str {
    let error = &body["error"];
    assert!(error["message"].is_string(), "no message in {body}");
    assert!(
        error.get("hint").is_some(),
        "the error shape always has a hint field: {body}"
    );
    error["code"].as_str().expect("an error code")
}

/// Polls `check` on the deploy until it holds or 10 s pass.
pub(crate) async fn wait_for_deploy(
    api: &Api,
    token: &str,
    id: i64,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = api
            .call(
                Method::GET,
                &format!("/api/v1/deploys/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if check(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deploy {id} never reached: {what}; last seen {body:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
