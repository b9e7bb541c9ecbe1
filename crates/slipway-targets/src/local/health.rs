//! The HTTP health check of an instance: `GET <path>` on its loopback port, answered with a
//! 2xx or 3xx within the timeout. Anything else is a failure with a reason fit for a message.

use std::time::Duration;

use http::{Request, header};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One probe of `path` on `127.0.0.1:port`.
pub(crate) async fn probe(port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, request(port, path)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{path} did not answer within {}ms",
            timeout.as_millis()
        )),
    }
}

async fn request(port: u16, path: &str) -> Result<(), String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|error| format!("cannot connect to port {port}: {error}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake on port {port} failed: {error}"))?;
    // Ends when the sender is dropped, at the end of this probe.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get(path)
        .header(header::HOST, format!("127.0.0.1:{port}"))
        .header(header::USER_AGENT, "slipway-health-check")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("invalid health check path {path}: {error}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("{path} failed: {error}"))?;
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(format!("{path} answered {status}"))
    }
}
