//! Integration tests of slipway-core, one test binary for the crate.

mod analysis;
mod config;
mod decide;
mod plan;
mod provenance;
mod support;
