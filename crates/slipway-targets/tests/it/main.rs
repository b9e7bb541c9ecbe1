//! Integration tests of the target drivers, with real child processes and real files.

mod command;
mod config_delivery;
mod docs_example;
mod local;
mod local_support;
mod support;
mod target_for;
