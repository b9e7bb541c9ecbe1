//! `slipway lock|unlock|locks`: stop new deploys of a service to an environment (rollbacks are
//! still allowed), let them start again, and list what is locked.

use std::process::ExitCode;

use anyhow::Result;
use reqwest::Method;
use serde_json::Value;

use super::artifact::encode;
use super::{print_json, table, text};
use crate::Output;
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub(crate) struct LockArgs {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// Why nobody may deploy; shown to whoever tries.
    #[arg(long)]
    reason: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UnlockArgs {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
}

pub(crate) async fn lock(args: &LockArgs, client: &Client, output: Output) -> Result<ExitCode> {
    let body = serde_json::json!({
        "service": args.service,
        "environment": args.environment,
        "reason": args.reason,
    });
    let lock: Value = client.post("/api/v1/locks", &body).await?;
    match output {
        Output::Json => print_json(&lock),
        Output::Text => println!(
            "locked {} in {}: {}\nno new deploy starts there until `slipway unlock {} --env {}`",
            text(&lock, "service"),
            text(&lock, "environment"),
            text(&lock, "reason"),
            args.service,
            args.environment
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn unlock(args: &UnlockArgs, client: &Client, output: Output) -> Result<ExitCode> {
    let path = format!(
        "/api/v1/locks/{}/{}",
        encode(&args.service),
        encode(&args.environment)
    );
    let lock: Value = client.send(client.request(Method::DELETE, &path)).await?;
    match output {
        Output::Json => print_json(&lock),
        Output::Text => println!(
            "unlocked {} in {} (locked by {} since {}: {})",
            text(&lock, "service"),
            text(&lock, "environment"),
            text(&lock, "locked_by"),
            text(&lock, "locked_at"),
            text(&lock, "reason")
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn list(client: &Client, output: Output) -> Result<ExitCode> {
    let locks: Vec<Value> = client.get("/api/v1/locks").await?;
    match output {
        Output::Json => print_json(&locks),
        Output::Text if locks.is_empty() => println!("nothing is locked"),
        Output::Text => table(
            &["SERVICE", "ENV", "BY", "SINCE", "REASON"],
            locks.iter().map(|lock| {
                ["service", "environment", "locked_by", "locked_at", "reason"]
                    .iter()
                    .map(|key| text(lock, key).to_owned())
                    .collect()
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
