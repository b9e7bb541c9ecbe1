//! `slipway logs SERVICE --env ENV [--instance ID] [--lines N] [--follow]`: the output of the
//! instances the local target runs, read through the API.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use slipway_server::views::{LogChunkView, LogFileView};

use super::artifact::encode;
use crate::Output;
use crate::client::Client;
use crate::failure::Failure;

/// How long `--follow` waits between reads.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// Only this instance (see the ids `slipway logs` prints).
    #[arg(long)]
    instance: Option<String>,
    /// Lines of each instance's log to show first.
    #[arg(long, default_value_t = 50)]
    lines: usize,
    /// Keep printing what the instances write, until interrupted.
    #[arg(long)]
    follow: bool,
}

/// What has been read of one instance's log.
#[derive(Default)]
struct Cursor {
    next: u64,
    /// The start of a line whose end has not arrived yet.
    partial: String,
}

pub(crate) async fn run(args: &Args, client: &Client, output: Output) -> Result<ExitCode> {
    let base = format!(
        "/api/v1/logs/{}/{}",
        encode(&args.service),
        encode(&args.environment)
    );
    let mut cursors: BTreeMap<String, Cursor> = BTreeMap::new();
    let mut first = true;
    loop {
        let files: Vec<LogFileView> = client.get(&base).await?;
        let files: Vec<&LogFileView> = files
            .iter()
            .filter(|f| args.instance.as_ref().is_none_or(|i| *i == f.instance))
            .collect();
        if first && files.is_empty() {
            let message = match &args.instance {
                Some(instance) => format!("no log of instance `{instance}`"),
                None => format!(
                    "no instance of {} has run in {} yet",
                    args.service, args.environment
                ),
            };
            return Err(Failure::new("no_logs", message)
                .hint(format!(
                    "deploy it first: slipway deploy {} --env {}",
                    args.service, args.environment
                ))
                .into());
        }
        let prefix = args.instance.is_none();
        for file in files {
            let cursor = cursors.entry(file.instance.clone()).or_default();
            let query = if first {
                // Enough bytes for the requested lines of ordinary logs.
                format!("tail={}", (args.lines.max(1) * 512).min(256 * 1024))
            } else if file.size > cursor.next {
                format!("offset={}", cursor.next)
            } else {
                continue;
            };
            let chunk: LogChunkView = client
                .get(&format!("{base}/{}?{query}", encode(&file.instance)))
                .await?;
            cursor.next = chunk.next;
            let mut text = std::mem::take(&mut cursor.partial);
            text.push_str(&chunk.text);
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.last().is_some_and(|l| !l.ends_with('\n')) {
                cursor.partial = lines.pop().unwrap_or_default().to_owned();
            }
            if first {
                // A tail may start mid-line, and only the last `lines` lines are wanted.
                if chunk.offset > 0 && !lines.is_empty() {
                    lines.remove(0);
                }
                let skip = lines.len().saturating_sub(args.lines);
                lines.drain(..skip);
            }
            for line in lines {
                let line = line.trim_end_matches('\n');
                match output {
                    Output::Json => println!(
                        "{}",
                        serde_json::json!({ "instance": file.instance, "line": line })
                    ),
                    Output::Text if prefix => println!("[{}] {line}", file.instance),
                    Output::Text => println!("{line}"),
                }
            }
        }
        first = false;
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(POLL).await;
    }
}
