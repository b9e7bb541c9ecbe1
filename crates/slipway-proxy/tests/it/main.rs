//! Integration tests of the proxy: real sockets on 127.0.0.1, real backends (small hyper servers
//! in `support.rs`), real clients. Waits are bounded by deadlines.

mod failures;
mod routing;
mod state;
mod support;
mod swap;
mod wire;
