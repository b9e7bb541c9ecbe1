//! Integration tests of the `slipway` binary: each runs the real built executable.

mod check_config;
mod cli;
mod demo;
mod e2e;
mod local;
mod provenance;
mod support;
mod verify;
