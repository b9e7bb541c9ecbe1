//! Integration tests of the engine: the deterministic simulation and end-to-end passes on a real
//! SQLite store with the scripted fake target.

mod checklist;
mod compat;
mod lease;
mod provenance;
mod run;
mod scenario;
mod schedule;
mod sim;
mod verify;
