//! Integration tests of slipway-core, one test binary for the crate.

mod config;
mod decide;
mod plan;
mod support;
