//! `slipway.toml`: the configuration model and its parser.
//!
//! [`parse_config`] takes the text (the caller reads the file) and returns a [`Config`] or every
//! mistake in it as [`ConfigErrors`].

mod calendars;
mod error;
pub mod model;
mod notify;
mod parse;
pub mod suggest;
mod values;

pub use error::{ConfigError, ConfigErrorKind, ConfigErrors};
pub use model::*;
pub use notify::{ChatConfig, NotifyDestination, NotifyKind, SecretSource};
pub use parse::parse_config;
