//! Test harnesses for slipway: a throwaway PostgreSQL, temporary stores, a scripted fake target.
//! Never offered as a real target: nothing outside tests depends on this crate.

pub mod fake_target;
pub mod fixtures;
pub mod postgres;
pub mod prometheus;
pub mod server;
pub mod store;
