//! Integration tests of slipway-notify, one test binary for the crate.

mod delivery;
mod payloads;
mod support;
