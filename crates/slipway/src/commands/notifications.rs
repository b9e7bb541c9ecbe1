//! `slipway notifications [--deploy ID]`: what was sent to the `[[notify]]` destinations and
//! whether it arrived, with the last error of what did not.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::Value;

use super::{print_json, table, text};
use crate::Output;
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only the notifications of this deploy.
    #[arg(long, value_name = "ID")]
    deploy: Option<i64>,
    /// How many of the newest to show.
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

pub(crate) async fn run(args: &Args, client: &Client, output: Output) -> Result<ExitCode> {
    let mut path = format!("/api/v1/notifications?limit={}", args.limit);
    if let Some(deploy) = args.deploy {
        path.push_str(&format!("&deploy={deploy}"));
    }
    let page: Value = client.get(&path).await?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    match output {
        Output::Json => print_json(&items),
        Output::Text if items.is_empty() => println!("no notifications"),
        Output::Text => table(
            &[
                "DEPLOY",
                "NOTICE",
                "DESTINATION",
                "STATUS",
                "ATTEMPTS",
                "LAST ERROR",
            ],
            items.iter().map(|item| {
                let last_error = item["history"]
                    .as_array()
                    .and_then(|history| history.last())
                    .and_then(|attempt| attempt["error"].as_str())
                    .unwrap_or("")
                    .to_owned();
                vec![
                    item["deploy"].to_string(),
                    text(item, "notice").to_owned(),
                    text(item, "destination").to_owned(),
                    text(item, "status").to_owned(),
                    item["attempts"].to_string(),
                    last_error,
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
