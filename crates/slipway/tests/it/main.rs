//! Integration tests of the `slipway` binary: each runs the real built executable.

mod changelog;
mod chat;
mod check_config;
mod checklist;
mod cli;
mod compat;
mod config;
mod dashboard;
mod demo;
mod e2e;
mod guards;
mod local;
mod provenance;
mod schedule;
mod support;
mod trains;
mod verify;
