//! slipway's functional core: domain types, configuration, plan derivation, the deploy state
//! machine and the audit chain. No IO, no async, no clock — time is a parameter.

pub mod analysis;
pub mod audit;
pub mod checklist;
pub mod config;
pub mod cron;
pub mod decide;
pub mod deploy;
pub mod ics;
pub mod plan;
pub mod provenance;
pub mod runbook;
pub mod schedule;
pub mod settings;
pub mod time;
