//! Verification: the numbers a check of a new fleet is judged on, and the markers monitoring
//! gets for each deploy.
//!
//! - [`source`]: what a metric source answers (a value over a window, samples per step);
//!   [`proxy_source`] reads slipway's own proxy, [`prometheus`] a Prometheus server;
//! - [`probe`]: HTTP probes of the new instances; [`command`]: command checks;
//! - [`verifier`]: runs a plan's checks with these and hands the measurements to the engine,
//!   which judges them with `slipway_core::analysis`;
//! - [`markers`]: deploy start, end and rollback as Grafana annotations and JSON webhooks.

pub mod command;
mod http;
pub mod markers;
pub mod probe;
pub mod prometheus;
pub mod proxy_source;
pub mod source;
pub mod verifier;

pub use source::{Reading, Source, SourceError, Subject};
pub use verifier::Verifier;
