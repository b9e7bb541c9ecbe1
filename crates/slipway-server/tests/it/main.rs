//! Integration tests of the API, driven through the router in-process (no socket) on a real
//! SQLite store, with a real engine and the testkit's fake target where deploys must move.

mod actions;
mod chat;
mod checklists;
mod dashboard;
mod errors;
mod logs;
mod notifications;
mod openapi;
mod schedule;
mod support;
mod train_categories;
mod train_schedules;
