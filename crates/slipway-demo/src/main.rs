//! `slipway-demo`: the demo app as its own binary (`slipway demo-service` is the same app).

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    slipway_demo::run().await
}
