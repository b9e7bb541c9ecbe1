//! Integration tests of the compatibility check on fixture repositories.

mod errors;
mod jobs;
mod migrations;
mod report;
mod routes;
mod sessions;
mod settings;
mod sql;
mod support;
mod suppression;
