//! `slipway.toml`: the configuration model and its parser.

pub mod model;

pub use model::*;
