//! What the proxy is told: routes (a service in a region), their backends and their settings.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One listener's traffic: a service in one region (`None` for a service with a single region).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    pub service: String,
    pub region: Option<String>,
}

impl Route {
    pub fn new(service: impl Into<String>, region: Option<&str>) -> Route {
        Route {
            service: service.into(),
            region: region.map(str::to_owned),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.region {
            Some(region) => write!(f, "service {} in region {region}", self.service),
            None => write!(f, "service {}", self.service),
        }
    }
}

/// An instance that can answer a route's requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// Unique within the route; `drain` names a backend by it.
    pub id: String,
    pub addr: SocketAddr,
    /// The release label of the fleet it belongs to (`RC 112`), as in `Split::weights`.
    pub version: String,
    /// Whether it passed its health check. The caller runs the checks; the proxy sends traffic
    /// only to healthy backends.
    pub healthy: bool,
}

/// How the proxy talks to clients and backends.
#[derive(Clone, Debug)]
pub struct Config {
    /// From the moment a request is sent to a backend until its response headers arrive;
    /// past it the client gets a 504. The response body is not bounded by it.
    pub request_timeout: Duration,
    /// To open a TCP connection to a backend; past it the backend counts as failed (502, or a
    /// retry on another backend).
    pub connect_timeout: Duration,
    /// How long an idle keep-alive connection to a backend is kept. Shorter than the idle
    /// timeout of common app servers (Node's is 5 s), so the proxy closes first and rarely reuses
    /// a connection the backend is closing.
    pub pool_idle_timeout: Duration,
    /// Idle keep-alive connections kept per backend.
    pub pool_max_idle_per_backend: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            pool_idle_timeout: Duration::from_secs(4),
            pool_max_idle_per_backend: 256,
        }
    }
}

/// What `Proxy::drain` found when it stopped waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainReport {
    /// Requests of the backend that finished while the drain waited.
    pub finished: usize,
    /// Requests still in flight when the timeout passed; they end when the instance stops.
    pub cut_off: usize,
}
