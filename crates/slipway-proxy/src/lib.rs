//! slipway's own reverse proxy: one listener per service and region, traffic split between
//! release versions by weight, by a sticky cookie bucket (canary) or by a header (internal
//! tenants), only ever to healthy backends, with draining, timeouts, clear 502/503/504 answers
//! and per-version metrics. Routing changes are saved to a state file before they take effect
//! and swap one immutable table, so a request sees the old routing or the new, never a mix.
//!
//! The caller (the local target) decides health and tells the proxy with `set_backends`; the
//! engine's `Split` says how traffic is shared. The proxy knows nothing of deploys or the store.

mod error;
mod forward;
mod metrics;
mod proxy;
mod route;
mod state;
mod table;

pub use error::ProxyError;
pub use metrics::{ClassCounts, LatencySnapshot, VersionSnapshot};
pub use proxy::Proxy;
pub use route::{Backend, Config, DrainReport, Route};
pub use slipway_core::deploy::Split;
