//! Test harness: backends that answer by path, a proxy serving one route on port 0, a client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use slipway_proxy::{Backend, Config, Proxy, Route, Split};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// How long any single wait in a test may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A backend instance. Paths: `/` answers `VERSION ID`; `/headers` lists the request headers
/// (`name: value` lines); `/slow/MS` answers after MS milliseconds; `/status/CODE` answers CODE.
/// Dropping it closes its listener and every connection.
pub(crate) struct TestBackend {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) addr: SocketAddr,
    served: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TestBackend {
    pub(crate) async fn start(id: &str, version: &str) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let answer = format!("{version} {id}");
        let counter = Arc::clone(&served);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let answer = answer.clone();
                let counter = Arc::clone(&counter);
                let service = service_fn(move |request| {
                    respond(answer.clone(), Arc::clone(&counter), request)
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                // Reap finished connections so the set stays small under load.
                while connections.try_join_next().is_some() {}
            }
        });
        TestBackend {
            id: id.to_owned(),
            version: version.to_owned(),
            addr,
            served,
            task,
        }
    }

    /// The backend as the proxy is told of it.
    pub(crate) fn backend(&self, healthy: bool) -> Backend {
        Backend {
            id: self.id.clone(),
            addr: self.addr,
            version: self.version.clone(),
            healthy,
        }
    }

    pub(crate) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

async fn respond(
    answer: String,
    served: Arc<AtomicUsize>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    served.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_owned();
    let mut status = StatusCode::OK;
    let body = if path == "/headers" {
        let mut lines = String::new();
        for (name, value) in request.headers() {
            lines.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
        }
        lines
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        answer
    } else if let Some(code) = path.strip_prefix("/status/") {
        status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
        answer
    } else {
        let _ = request.into_body().collect().await;
        answer
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// An address nothing listens on: connecting is refused.
pub(crate) async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A listener that takes each connection, waits for the request to arrive and closes without
/// reading it: the kernel answers with a reset, as it does for a process killed mid-request.
/// The task ends when the returned handle is aborted or dropped with the test's runtime.
pub(crate) async fn resetting_addr() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut byte = [0u8; 1];
            // Unread bytes in the receive buffer make the close a reset.
            let _ = stream.peek(&mut byte).await;
            drop(stream);
        }
    });
    (addr, task)
}

/// A proxy serving route `idp` on a port of its own, with its state in a temporary directory.
pub(crate) struct Harness {
    pub(crate) proxy: Proxy,
    pub(crate) route: Route,
    pub(crate) url: String,
    pub(crate) dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Harness {
    pub(crate) async fn start(config: Config) -> Harness {
        Harness::open(tempfile::tempdir().unwrap(), config).await
    }

    /// Opens the proxy from `dir`'s state file (as a restarted slipway would) and serves it.
    pub(crate) async fn open(dir: tempfile::TempDir, config: Config) -> Harness {
        let proxy = Proxy::open(state_file(dir.path()), config).unwrap();
        let route = Route::new("idp", None);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        let serving = proxy.clone();
        let served_route = route.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(served_route, listener, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        Harness {
            proxy,
            route,
            url,
            dir,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub(crate) async fn set_backends(&self, backends: &[&TestBackend]) {
        let backends = backends.iter().map(|b| b.backend(true)).collect();
        self.proxy
            .set_backends(&self.route, backends)
            .await
            .unwrap();
    }

    pub(crate) async fn set_split(&self, split: &Split) {
        self.proxy.set_split(&self.route, split).await.unwrap();
    }

    /// Stops serving gracefully and hands back the state directory.
    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(DEADLINE, self.task.take().unwrap())
            .await
            .expect("the proxy stops within the deadline")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) fn state_file(dir: &Path) -> PathBuf {
    dir.join("proxy-state.json")
}

/// Weights by version label, not sticky, no header route.
pub(crate) fn weights(pairs: &[(&str, u32)]) -> Split {
    Split {
        weights: pairs.iter().map(|(v, w)| ((*v).to_owned(), *w)).collect(),
        sticky: false,
        header: None,
        header_version: None,
    }
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// The version that answered (`VERSION ID` bodies; labels have spaces, ids do not).
    pub(crate) fn version(&self) -> &str {
        self.body
            .rsplit_once(' ')
            .map_or("", |(version, _)| version)
    }

    pub(crate) fn error_code(&self) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        json["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// An HTTP/1.1 keep-alive client.
#[derive(Clone)]
pub(crate) struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub(crate) fn new() -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    pub(crate) fn http2() -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new())
                .http2_only(true)
                .build(HttpConnector::new()),
        }
    }

    pub(crate) async fn get(&self, url: &str) -> Reply {
        self.send(Request::get(url).body(Full::default()).unwrap())
            .await
            .unwrap()
    }

    pub(crate) async fn send(&self, request: Request<Full<Bytes>>) -> Result<Reply, String> {
        let response = tokio::time::timeout(DEADLINE, self.inner.request(request))
            .await
            .map_err(|_| "no answer before the deadline".to_owned())?
            .map_err(|error| format!("{error:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// Polls `check` every 10 ms until it holds; fails the test after the deadline.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
