//! Integration tests of slipway-testkit, one test binary for the crate.

mod postgres;
