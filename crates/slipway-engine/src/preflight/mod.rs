//! The preflight checks slipway ships: each a [`PreflightCheck`](crate::plugin::PreflightCheck)
//! the binary registers for the environments whose policy asks for it.

pub mod checklist;
pub mod compat;
pub mod provenance;
pub mod schedule;
