//! Integration tests of the target drivers, with real child processes and real files.

mod command;
mod docs_example;
mod support;
mod target_for;
