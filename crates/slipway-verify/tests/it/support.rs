//! Helpers shared by the integration tests: tiny backends on loopback ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A backend: 200 to every request, or 500 to every `fail_every`th.
pub(crate) async fn backend(fail_every: Option<u64>) -> (SocketAddr, Task) {
    let served = Arc::new(AtomicU64::new(0));
    let app = Router::new().fallback(move || {
        let n = served.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = fail_every.is_some_and(|every| n.is_multiple_of(every));
        async move {
            if fail {
                (StatusCode::INTERNAL_SERVER_ERROR, "failed")
            } else {
                (StatusCode::OK, "ok")
            }
        }
    });
    serve(app).await
}

/// Serves `app` on a free loopback port until the returned task is dropped.
pub(crate) async fn serve(app: Router) -> (SocketAddr, Task) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (address, Task(task))
}

/// A task aborted when dropped (its connections end with the test's runtime).
pub(crate) struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Task {
    /// Runs `work` until the task is dropped.
    pub(crate) fn spawn(work: impl Future<Output = ()> + Send + 'static) -> Task {
        Task(tokio::spawn(work))
    }
}
