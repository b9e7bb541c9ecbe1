//! Durable state for slipway: deploys, the hash-chained event log, the outbox of effects,
//! operator intents and engine leases — on SQLite (default) or PostgreSQL, behind one type.
//!
//! Every write that changes a deploy stores its new state, its events and its effects in one
//! transaction, and checks the writer's lease fencing token in that same transaction.

mod error;
mod store;

pub use error::{StoreError, redact_url};
pub use store::*;
