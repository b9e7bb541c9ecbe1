//! The API client the commands use: bearer token, the API's error shape turned into a
//! [`Failure`] with its hint, and a clear message when the server cannot be reached.

use std::time::Duration;

use anyhow::Result;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::failure::Failure;

/// Where the server is and who we are.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The slipway server's URL.
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_SERVER",
        default_value = "http://127.0.0.1:7700"
    )]
    server: String,
    /// An API token (see `slipway token create`).
    #[arg(long, global = true, env = "SLIPWAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// A connection to one server.
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Connection {
    pub(crate) fn client(&self) -> Result<Client> {
        let base = self.server.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Failure::new(
                "invalid_server",
                format!("`{}` is not an http:// or https:// URL", self.server),
            )
            .hint("pass --server http://HOST:PORT or set SLIPWAY_SERVER")
            .into());
        }
        // An empty SLIPWAY_TOKEN means no token.
        Client::new(&base, self.token.clone().filter(|t| !t.trim().is_empty()))
    }
}

impl Client {
    /// A client of the server at `base` (`http://HOST:PORT`).
    pub(crate) fn new(base: &str, token: Option<String>) -> Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// The same server with another token.
    pub(crate) fn with_token(&self, token: &str) -> Result<Client> {
        Client::new(&self.base, Some(token.to_owned()))
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::GET, path)).await
    }

    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub(crate) async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    /// Sends a request and decodes a success, or turns the API's error into a [`Failure`].
    pub(crate) async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let (_, body) = self.send_with_status(request).await?;
        Ok(body)
    }

    /// Like [`Client::send`], with the status of the success.
    pub(crate) async fn send_with_status<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<(StatusCode, T)> {
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(&error))?;
        if status.is_success() {
            let body = if bytes.is_empty() {
                serde_json::from_slice(b"null")
            } else {
                serde_json::from_slice(&bytes)
            };
            return Ok((
                status,
                body.map_err(|e| anyhow::anyhow!("unexpected answer from the server: {e}"))?,
            ));
        }
        Err(api_failure(status, &bytes).into())
    }

    /// Sends a request whose success is text (the runbook's Markdown), not JSON.
    pub(crate) async fn send_text(&self, request: RequestBuilder) -> Result<String> {
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(&error))?;
        if status.is_success() {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        Err(api_failure(status, &bytes).into())
    }

    /// Whether `error` says the server could not be reached (nothing was answered).
    pub(crate) fn is_unreachable(error: &anyhow::Error) -> bool {
        error
            .downcast_ref::<Failure>()
            .is_some_and(|failure| failure.code == "server_unreachable")
    }

    fn unreachable(&self, error: &reqwest::Error) -> anyhow::Error {
        let mut cause = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(e) = source {
            cause = e.to_string();
            source = e.source();
        }
        Failure::new(
            "server_unreachable",
            format!("cannot reach the slipway server at {}: {cause}", self.base),
        )
        .hint("start it with `slipway serve`, or point --server / SLIPWAY_SERVER at it")
        .into()
    }
}

/// The failure an error answer describes.
fn api_failure(status: StatusCode, body: &[u8]) -> Failure {
    #[derive(serde::Deserialize)]
    struct Shape {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        code: String,
        message: String,
        hint: Option<String>,
    }
    match serde_json::from_slice::<Shape>(body) {
        Ok(Shape { error }) => Failure {
            code: error.code,
            message: error.message,
            hint: error.hint,
        },
        Err(_) => Failure::new(
            "http_error",
            format!(
                "the server answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        )
        .hint("is --server pointing at a slipway server?"),
    }
}
