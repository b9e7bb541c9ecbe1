//! The service `slipway demo` deploys (as `slipway demo-service`, or the `slipway-demo` binary). It answers `/up` for health checks, `/` with
//! a page naming its version, and `/api/hello` with JSON; a share of its answers can fail and each
//! can be slowed down, so a deploy of a bad version has numbers to catch.
//!
//! Settings, each from the environment or from `demo.toml` in the working directory (the
//! environment wins):
//! - `PORT` — where to listen on 127.0.0.1 (required; the target sets it);
//! - `DEMO_VERSION` / `version` — the version shown (default: `SLIPWAY_VERSION`, else `dev`);
//! - `DEMO_ERROR_RATE` / `error_rate` — share of `/` and `/api/hello` answered 500 (0.0–1.0);
//! - `DEMO_LATENCY_MS` / `latency_ms` — added to every answer but `/up`;
//! - `DEMO_GREETING` / `greeting` — who `/api/hello` greets (default `world`); the demo sets it
//!   through a config version and recycles it;
//! - `DEMO_LOG_REQUESTS=1` — print a line on stdout as each request starts.
//!
//! SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// What the demo app is told to be.
#[derive(Clone, Debug, PartialEq)]
struct Settings {
    port: u16,
    version: String,
    greeting: String,
    error_rate: f64,
    latency: Duration,
    log_requests: bool,
}

fn settings() -> Result<Settings> {
    let file = match std::fs::read_to_string("demo.toml") {
        Ok(text) => text
            .parse::<toml_edit::DocumentMut>()
            .context("demo.toml is not valid TOML")?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(error) => return Err(error).context("cannot read demo.toml"),
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let port: u16 = env("PORT")
        .context("PORT is not set: the target sets it to the port to listen on")?
        .parse()
        .context("PORT is not a port number")?;
    let version = env("DEMO_VERSION")
        .or_else(|| {
            file.get("version")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .or_else(|| env("SLIPWAY_VERSION"))
        .unwrap_or_else(|| "dev".to_owned());
    let number = |variable: &str, key: &str| -> Result<f64> {
        match env(variable) {
            Some(text) => text
                .parse::<f64>()
                .with_context(|| format!("{variable}={text} is not a number")),
            None => Ok(file
                .get(key)
                .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
                .unwrap_or(0.0)),
        }
    };
    let error_rate = number("DEMO_ERROR_RATE", "error_rate")?;
    if !(0.0..=1.0).contains(&error_rate) {
        bail!("the error rate must be between 0.0 and 1.0, not {error_rate}");
    }
    let latency_ms = number("DEMO_LATENCY_MS", "latency_ms")?;
    if !(0.0..=60_000.0).contains(&latency_ms) {
        bail!("the added latency must be 0 to 60000 ms, not {latency_ms}");
    }
    let greeting = env("DEMO_GREETING")
        .or_else(|| {
            file.get("greeting")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "world".to_owned());
    Ok(Settings {
        port,
        version,
        greeting,
        error_rate,
        latency: Duration::from_millis(latency_ms as u64),
        log_requests: env("DEMO_LOG_REQUESTS").is_some_and(|v| v == "1"),
    })
}

async fn up() -> &'static str {
    "ok\n"
}

/// Waits the added latency, then fails with the configured probability.
async fn answer(settings: &Settings, path: &str, body: impl FnOnce() -> Response) -> Response {
    if settings.log_requests {
        println!("handling GET {path}");
    }
    if !settings.latency.is_zero() {
        tokio::time::sleep(settings.latency).await;
    }
    if settings.error_rate > 0.0 && rand::random::<f64>() < settings.error_rate {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "version {} failed this request on purpose\n",
                settings.version
            ),
        )
            .into_response();
    }
    body()
}

async fn page(State(settings): State<Arc<Settings>>) -> Response {
    answer(&settings, "/", || {
        let version = &settings.version;
        Html(format!(
            "<!doctype html><title>slipway demo {version}</title>\
             <h1>slipway demo</h1><p>This instance runs version <strong id=\"version\">{version}</strong> \
             and greets <strong id=\"greeting\">{}</strong>.</p>\n",
            escape(&settings.greeting)
        ))
        .into_response()
    })
    .await
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn hello(State(settings): State<Arc<Settings>>) -> Response {
    answer(&settings, "/api/hello", || {
        let body = serde_json::json!({ "hello": settings.greeting, "version": settings.version });
        let body = format!("{body}\n");
        ([("content-type", "application/json")], body).into_response()
    })
    .await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let term = async {
        match terminate.as_mut() {
            Some(stream) => {
                stream.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Runs the demo app with the settings of its environment and `demo.toml` until SIGTERM or
/// SIGINT.
pub async fn run() -> Result<()> {
    let settings = Arc::new(settings()?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", settings.port))?;
    eprintln!(
        "slipway-demo {} listening on 127.0.0.1:{} (error rate {}, added latency {:?})",
        settings.version, settings.port, settings.error_rate, settings.latency
    );
    let app = Router::new()
        .route("/up", get(up))
        .route("/", get(page))
        .route("/api/hello", get(hello))
        .with_state(settings);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    eprintln!("slipway-demo stopped");
    Ok(())
}
