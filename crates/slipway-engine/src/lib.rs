//! The deploy engine: a level-triggered reconciler that turns stored decisions into effects on
//! targets, and target reports, timers and operator intents back into decisions.
//!
//! Plugins (targets, metric sources, notifiers) are object-safe traits defined in [`plugin`].

pub mod clock;
mod engine;
pub mod plugin;
pub mod preflight;

pub use engine::*;
