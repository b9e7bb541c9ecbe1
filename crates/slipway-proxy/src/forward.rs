//! The request path: pick a backend from the route's current table, rewrite the headers a proxy
//! owns, forward with a timeout, retry once where that is safe, and answer 502/503/504 with a
//! body that says what happened and what to do.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{Either, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::proxy::{Inner, RouteState};
use crate::table::{BUCKETS, InFlight, NoBackend};

/// What the proxy sends a backend: the client's body, or nothing for a request that may be
/// retried (only requests without a body are, so there is nothing to replay).
pub(crate) type RequestBody = Either<Incoming, Empty<Bytes>>;

/// The sticky-canary cookie: a random token whose hash is the client's bucket.
const COOKIE: &str = "slipway_bucket";

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Handles one client request on `route`; never fails (errors become responses).
pub(crate) async fn handle(
    proxy: Arc<Inner>,
    route: Arc<RouteState>,
    client: HeaderValue,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;

    // A new client of a sticky route gets a bucket now and keeps it in a cookie.
    let mut new_cookie = None;
    let sticky = route.table.load().sticky;
    let bucket = sticky.then(|| {
        let token = cookie(&headers, COOKIE)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let token = format!("{:016x}", rand::random::<u64>());
                new_cookie = Some(token.clone());
                token
            });
        bucket_of(&token)
    });

    remove_hop_by_hop(&mut headers);
    add_forwarded(&mut headers, client);
    if !headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        // HTTP/2 clients send the host as `:authority`; an HTTP/1.1 backend wants `Host`.
        headers.insert(header::HOST, host);
    }
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));

    // Retrying is safe only for idempotent methods (RFC 9110 §9.2.2), and possible only when
    // there is no body to replay.
    let retryable = is_idempotent(&parts.method) && body.is_end_stream();
    let mut body = Some(body);
    let mut exclude: Option<Arc<str>> = None;
    for attempt in 0..2 {
        let Some(Claimed {
            label,
            metrics,
            authority,
            in_flight,
            slot_id,
            alternatives,
        }) = claim(&route, &headers, bucket, exclude.as_deref())
        else {
            route.unrouted.inc();
            let table = route.table.load();
            let status = match table.pick(&headers, bucket, 0, exclude.as_deref()) {
                Err(NoBackend::NoSplit) => Failure::NoSplit,
                _ => Failure::NoHealthy,
            };
            return Ok(failure(&proxy, &route, status));
        };
        // A retry needs another backend; without one, nothing is kept for it.
        let last = !retryable || attempt == 1 || !alternatives;
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path.clone())
            .build()
            .expect("scheme, authority and path make a valid URI");
        let mut forward = Request::new(if retryable {
            Either::Right(Empty::new())
        } else {
            Either::Left(
                body.take()
                    .expect("a request that is not retried is sent once"),
            )
        });
        *forward.method_mut() = parts.method.clone();
        *forward.uri_mut() = uri;
        *forward.version_mut() = Version::HTTP_11;
        *forward.headers_mut() = if last {
            std::mem::take(&mut headers)
        } else {
            headers.clone()
        };

        let outcome =
            tokio::time::timeout(proxy.config.request_timeout, proxy.client.request(forward)).await;
        match outcome {
            Ok(Ok(response)) => {
                metrics.record(response.status(), started.elapsed());
                let (mut parts, body) = response.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                if let Some(token) = &new_cookie {
                    parts.headers.append(header::SET_COOKIE, set_cookie(token));
                }
                let body = ProxyBody::Backend {
                    body,
                    in_flight: Some(in_flight),
                };
                return Ok(Response::from_parts(parts, body));
            }
            Ok(Err(error)) if !last && failed_before_response(&error) => {
                tracing::debug!(%label, backend = %slot_id, %error, "retrying on another backend");
                exclude = Some(slot_id);
            }
            Ok(Err(error)) => {
                tracing::debug!(route = %route.route, %label, backend = %slot_id, %error, "backend failed");
                metrics.record(StatusCode::BAD_GATEWAY, started.elapsed());
                return Ok(failure(&proxy, &route, Failure::Backend));
            }
            Err(_elapsed) => {
                metrics.record(StatusCode::GATEWAY_TIMEOUT, started.elapsed());
                return Ok(failure(&proxy, &route, Failure::Timeout));
            }
        }
    }
    unreachable!("the second attempt always returns")
}

/// A backend picked for a request, with the request counted against it.
struct Claimed {
    label: Arc<str>,
    metrics: crate::metrics::VersionMetrics,
    authority: http::uri::Authority,
    in_flight: InFlight,
    slot_id: Arc<str>,
    /// Whether the table has another backend a retry could go to.
    alternatives: bool,
}

/// Picks a backend and counts the request against it. A backend that started draining after
/// the table was read refuses the claim; the next read sees the table without it.
fn claim(
    route: &RouteState,
    headers: &HeaderMap,
    bucket: Option<u64>,
    exclude: Option<&str>,
) -> Option<Claimed> {
    for _ in 0..8 {
        let table = route.table.load();
        let (version, slot) = table.pick(headers, bucket, rand::random(), exclude).ok()?;
        if let Some(in_flight) = slot.live.claim(&version.metrics.in_flight) {
            return Some(Claimed {
                label: Arc::clone(&version.label),
                metrics: version.metrics.clone(),
                authority: slot.authority.clone(),
                in_flight,
                slot_id: Arc::clone(&slot.id),
                alternatives: table.backends > 1,
            });
        }
    }
    None
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether the backend failed before any response head reached the proxy: the connection was
/// never made, or it closed or was reset (a process killed with the request unread) before
/// answering. An idempotent request may be sent again then (RFC 9110 §9.2.2), whether or not the
/// backend had started on it.
fn failed_before_response(error: &hyper_util::client::legacy::Error) -> bool {
    if error.is_connect() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message() || hyper.is_canceled() || hyper_io_broke(hyper);
        }
        source = cause.source();
    }
    false
}

/// Whether hyper's error is the connection breaking under it (a reset, a broken pipe).
fn hyper_io_broke(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        source = cause.source();
    }
    false
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and those the
/// `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Every `Connection` header counts: a request may carry several.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
}

/// A client's address as `X-Forwarded-For` names it; made once per connection.
pub(crate) fn client_address(peer: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.ip().to_canonical().to_string())
        .expect("an IP address is a valid header value")
}

/// Appends the client to `X-Forwarded-For` and sets `X-Forwarded-Proto` (the listener speaks
/// plain HTTP).
fn add_forwarded(headers: &mut HeaderMap, client: HeaderValue) {
    let mut chain: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let value = if chain.is_empty() {
        client
    } else {
        chain.push(client.to_str().expect("an address is ASCII"));
        HeaderValue::from_str(&chain.join(", ")).expect("visible ASCII makes a valid header value")
    };
    headers.insert(X_FORWARDED_FOR.clone(), value);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
}

/// The value of cookie `name`, if the request carries it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name && !value.is_empty()).then_some(value)
        })
}

/// A token's bucket: stable across restarts and versions of slipway (no seeded hasher).
fn bucket_of(token: &str) -> u64 {
    let digest = Sha256::digest(token.as_bytes());
    let head: [u8; 8] = digest[..8].try_into().expect("SHA-256 has 32 bytes");
    u64::from_be_bytes(head) % BUCKETS
}

fn set_cookie(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"
    ))
    .expect("a hex token makes a valid cookie")
}

enum Failure {
    NoSplit,
    NoHealthy,
    Backend,
    Timeout,
}

/// A short JSON answer in slipway's one error shape.
fn failure(proxy: &Inner, route: &RouteState, failure: Failure) -> Response<ProxyBody> {
    let route = &route.route;
    let service = &route.service;
    let (status, code, message, hint) = match failure {
        Failure::NoSplit => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no_traffic_split",
            format!("{route} has no release taking traffic yet"),
            format!("deploy a release of {service}: `slipway deploy {service} --env ENV`"),
        ),
        Failure::NoHealthy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no_healthy_instance",
            format!("no healthy instance of {route} can take this request"),
            format!(
                "slipway sends traffic only to instances that pass their health check; see \
                 `slipway status` and `slipway logs {service}`"
            ),
        ),
        Failure::Backend => (
            StatusCode::BAD_GATEWAY,
            "instance_failed",
            format!("the instance of {route} that took this request failed before answering"),
            format!(
                "retry the request; if this repeats, see `slipway logs {service}` for why the \
                 instance drops connections"
            ),
        ),
        Failure::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "instance_timeout",
            format!(
                "the instance of {route} did not answer within {}",
                human(proxy.config.request_timeout)
            ),
            format!(
                "see `slipway logs {service}` for what it was doing; the proxy's request timeout \
                 bounds the time to the response headers"
            ),
        ),
    };
    let body = serde_json::json!({ "error": { "code": code, "message": message, "hint": hint } });
    let mut bytes = serde_json::to_vec(&body).expect("JSON values always serialize");
    bytes.push(b'\n');
    let mut response = Response::new(ProxyBody::Message(Full::new(Bytes::from(bytes))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// A response body: the backend's, counted in flight until it ends, or the proxy's own.
pub(crate) enum ProxyBody {
    Backend {
        body: Incoming,
        /// Dropped when the body ends, which lets a drain finish.
        in_flight: Option<InFlight>,
    },
    Message(Full<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Backend { body, in_flight } => {
                let frame = Pin::new(body).poll_frame(cx);
                if matches!(frame, Poll::Ready(None)) {
                    in_flight.take();
                }
                frame
            }
            ProxyBody::Message(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never: Infallible| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Backend { body, .. } => body.is_end_stream(),
            ProxyBody::Message(full) => full.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Backend { body, .. } => body.size_hint(),
            ProxyBody::Message(full) => full.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed_with_those_connection_names() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        // A second Connection header names more.
        headers.append(header::CONNECTION, HeaderValue::from_static("x-other"));
        headers.insert("x-other", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn the_bucket_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; slipway_bucket=ab12; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("ab12"));
        assert!(bucket_of("ab12") < BUCKETS);
        assert_eq!(bucket_of("ab12"), bucket_of("ab12"));
    }
}
