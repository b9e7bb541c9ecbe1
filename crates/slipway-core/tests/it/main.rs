//! Integration tests of slipway-core, one test binary for the crate.

mod analysis;
mod changelog_config;
mod checklist;
mod config;
mod cron;
mod decide;
mod guards;
mod notify_config;
mod plan;
mod provenance;
mod runbook;
mod schedule;
mod settings;
mod support;
