//! Integration tests of the `slipway` binary: each runs the real built executable.

mod changelog;
mod check_config;
mod checklist;
mod cli;
mod compat;
mod config;
mod demo;
mod e2e;
mod guards;
mod local;
mod provenance;
mod schedule;
mod support;
mod verify;
