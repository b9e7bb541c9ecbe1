//! Integration tests of slipway-store, one test binary for the crate. Every test runs the same
//! body against a fresh SQLite store and a fresh PostgreSQL database (see
//! `slipway_testkit::store`); under `CI=true` a missing PostgreSQL fails instead of skipping.

mod catalog;
mod chain;
mod checklist;
mod config;
mod decisions;
mod history;
mod leases;
mod listing;
mod locks;
mod notifications;
mod open;
mod outbox;
mod provenance;
mod support;
mod trains;
