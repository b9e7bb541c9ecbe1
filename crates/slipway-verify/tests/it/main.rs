//! Integration tests of slipway's verification, against real things: slipway's own proxy and a
//! real Prometheus scraping it, HTTP probes of servers on 127.0.0.1, command checks run by `/bin/sh`,
//! markers delivered to a recording receiver.

mod command;
mod markers;
mod probe;
mod prometheus;
mod proxy_source;
mod support;
