//! The proxy of `bench/proxy.sh`: opens a `Proxy` with its state in DIR, configures ROUTES
//! routes (each with its own listener, all pointing at BACKEND), and serves the first one on
//! LISTEN. Prints `ready` once every route is set and served.
//!
//! `cargo run --release --example bench-proxy -- LISTEN BACKEND DIR [ROUTES]`
//! `SLIPWAY_BENCH_PROXY_THREADS` sets the runtime's worker threads (default: one per core).

use std::net::SocketAddr;

use slipway_proxy::{Backend, Config, Proxy, Route, Split};
use tokio::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Ok(threads) = std::env::var("SLIPWAY_BENCH_PROXY_THREADS") {
        runtime.worker_threads(threads.parse()?);
    }
    runtime.enable_all().build()?.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-proxy LISTEN BACKEND DIR [ROUTES]";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let backend: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let dir = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let routes: usize = args.next().map_or(Ok(100), |n| n.parse())?;

    let proxy = Proxy::open(dir.join("proxy-state.json"), Config::default())?;
    for i in 0..routes {
        let route = Route::new(format!("service-{i}"), Some("local"));
        let backends = vec![Backend {
            id: format!("service-{i}-web-1"),
            addr: backend,
            version: "RC 1".into(),
            healthy: true,
        }];
        proxy.set_backends(&route, backends).await?;
        proxy.set_split(&route, &Split::only("RC 1")).await?;
        let listener = if i == 0 {
            TcpListener::bind(listen).await?
        } else {
            TcpListener::bind("127.0.0.1:0").await?
        };
        let serving = proxy.clone();
        tokio::spawn(async move { serving.serve(route, listener, std::future::pending()).await });
    }
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}
