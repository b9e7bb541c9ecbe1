//! Integration tests of slipway's verification, against real things: a real Prometheus scraping
//! slipway's proxy, HTTP probes of servers on 127.0.0.1, command checks run by `/bin/sh`,
//! markers delivered to a recording receiver.

mod command;
mod markers;
mod probe;
mod prometheus;
