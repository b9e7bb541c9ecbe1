//! Integration tests of slipway-verify: its metric sources against real servers.

mod prometheus;
