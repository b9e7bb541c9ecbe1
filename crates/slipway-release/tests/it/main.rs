//! Integration tests of slipway-release, one test binary for the crate.

mod changelog;
mod git;
mod support;
mod train;
