//! `slipway runbook SERVICE [--env ENV]`: the service's runbook as Markdown, rendered from the
//! local `slipway.toml` (no server needed), or with `--from-server` from the configuration the
//! server runs with.

use std::process::ExitCode;

use anyhow::Result;
use slipway_core::runbook::render;

use super::{ConfigPath, load_config, print_json};
use crate::Output;
use crate::client::Client;
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    service: String,
    /// Only this environment; every environment, in promotion order, when absent.
    #[arg(long = "env", value_name = "ENV")]
    environment: Option<String>,
    #[command(flatten)]
    config: ConfigPath,
    /// Render the configuration the server runs with (`--server`); `--config` is not read.
    #[arg(long)]
    from_server: bool,
}

pub(crate) async fn run(
    args: &Args,
    client: impl FnOnce() -> Result<Client>,
    output: Output,
) -> Result<ExitCode> {
    let markdown = if args.from_server {
        let client = client()?;
        let mut request = client.request(
            reqwest::Method::GET,
            &format!("/api/v1/services/{}/runbook", segment(&args.service)),
        );
        if let Some(environment) = &args.environment {
            request = request.query(&[("environment", environment)]);
        }
        client.send_text(request).await?
    } else {
        let config = load_config(&args.config.path)?;
        render(&config, &args.service, args.environment.as_deref())
            .map_err(|error| Failure::new("not_found", error.message).hint(error.hint))?
    };
    match output {
        Output::Text => print!("{markdown}"),
        Output::Json => print_json(&serde_json::json!({
            "service": args.service,
            "environment": args.environment,
            "markdown": markdown,
        })),
    }
    Ok(ExitCode::SUCCESS)
}

/// A service name as one path segment, escaped so a typo cannot change the path.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
