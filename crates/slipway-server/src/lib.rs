//! slipway's HTTP server: the JSON API under `/api/v1` with its OpenAPI document, `/healthz` and
//! `/metrics`.
//!
//! Handlers never act on deploys themselves: they create deploys and write operator intents to
//! the store, and the engine (running beside the server, or in another server holding the lease)
//! does the rest. [`app`] builds the router from an [`AppState`] so tests can drive it without a
//! socket; [`serve`] runs it on a bound listener until a shutdown future completes.

pub mod auth;
pub mod blobs;
mod dashboard;
pub mod error;
mod extract;
mod metrics;
pub mod publish;
mod routes;
pub mod trains;
pub mod views;

use std::collections::BTreeSet;
use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use slipway_core::config::Config;
use slipway_engine::clock::Clock;
use slipway_store::Store;

pub use crate::blobs::Blobs;
pub use crate::metrics::Metrics;
pub use crate::routes::openapi;
pub use crate::routes::scheduler::{
    Fired, SCHEDULER_LEASE, SCHEDULER_USER, SchedulerLease, fire_due_schedules, next_fire,
    run_schedules,
};

/// Limits and waits of the API.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Largest JSON request body, in bytes.
    pub max_json_body: usize,
    /// Largest artifact upload, in bytes.
    pub max_artifact_size: u64,
    /// How long an operator action waits for the engine to apply it before answering 202.
    pub intent_wait: Duration,
    /// Where the first admin token was written, for the hint of a 401.
    pub admin_token_file: Option<PathBuf>,
    /// Environments a target driver is configured for; deploys elsewhere are refused up front.
    pub drivable: BTreeSet<String>,
    /// Where the local target keeps instance logs (`<dir>/<environment>/<service>/<id>.log`).
    pub logs_dir: Option<PathBuf>,
    /// More metrics for `/metrics`, in the OpenMetrics text format (the proxy's).
    pub extra_metrics: Option<ExtraMetrics>,
    /// How long a dashboard sign-in lasts.
    pub session_lifetime: Duration,
    /// The config file's directory: relative `[service.source] repo` paths start there.
    pub config_dir: Option<PathBuf>,
    /// The Slack app's signing secret (`[chat]`); the chat endpoints refuse every request
    /// without one.
    pub chat_signing_secret: Option<ChatSecret>,
    /// Origins a button click's `response_url` may point at: the result of the click is posted
    /// there (Slack ignores the answer to a click). Slack's own by default; nothing else is
    /// ever called, so a forged URL cannot make the server reach elsewhere.
    pub chat_response_origins: Vec<String>,
    /// Wakes the notification deliverer after a publication enqueued release notes; `None`
    /// when no deliverer runs.
    pub notes_wake: Option<Arc<tokio::sync::Notify>>,
}

/// A source of metrics text appended to `/metrics`.
#[derive(Clone)]
pub struct ExtraMetrics(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraMetrics(..)")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_json_body: 64 * 1024,
            max_artifact_size: 4 * 1024 * 1024 * 1024,
            intent_wait: Duration::from_secs(10),
            admin_token_file: None,
            drivable: BTreeSet::new(),
            logs_dir: None,
            extra_metrics: None,
            session_lifetime: Duration::from_secs(12 * 60 * 60),
            config_dir: None,
            chat_signing_secret: None,
            chat_response_origins: vec!["https://hooks.slack.com".to_owned()],
            notes_wake: None,
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
    /// The dashboard's sessions and live streams (in memory: see `dashboard/session.rs`).
    dashboard: Arc<dashboard::Dashboard>,
}

/// The contents of [`AppState`].
pub struct Shared {
    pub store: Store,
    /// The `slipway.toml` the server was started with.
    pub config: Config,
    pub blobs: Blobs,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub settings: Settings,
    /// Seals and opens config versions; `None` when no master key is configured (config
    /// commands then say how to configure one).
    pub vault: Option<Arc<slipway_secrets::Vault>>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
            dashboard: Arc::new(dashboard::Dashboard::default()),
        }
    }

    /// The hint of a request without a usable token.
    fn token_hint(&self) -> String {
        let mut hint = "pass --token TOKEN or set SLIPWAY_TOKEN".to_owned();
        if let Some(file) = &self.settings.admin_token_file {
            hint.push_str(&format!(
                "; the first admin token was written to {}",
                file.display()
            ));
        }
        hint
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let limit = state.settings.max_json_body;
    routes::router(state.clone())
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state,
            metrics::track_request,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves [`app`] on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let dashboard = Arc::clone(&state.dashboard);
    let shutdown = async move {
        shutdown.await;
        // Live pages' event streams would otherwise hold the graceful shutdown open.
        dashboard.close_streams();
    };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A chat signing secret. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct ChatSecret(Arc<Vec<u8>>);

impl ChatSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(Arc::new(secret.into()))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ChatSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatSecret(..)")
    }
}
