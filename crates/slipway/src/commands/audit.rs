//! `slipway audit verify|export`: check the hash-chained event log, or write it out.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use slipway_server::views::{AuditReportView, Page};

use super::print_json;
use crate::Output;
use crate::client::Client;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Check every event against the chain; names the first bad one (exit 1).
    Verify,
    /// Write the event log to stdout, one JSON object per line, with every field needed to
    /// recompute the chain.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Only this deploy's events.
    #[arg(long)]
    deploy: Option<i64>,
    /// Only events after this sequence number.
    #[arg(long, default_value_t = 0)]
    after: i64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    Jsonl,
}

pub(crate) async fn run(command: &Command, client: &Client, output: Output) -> Result<ExitCode> {
    match command {
        Command::Verify => {
            let report: AuditReportView = client.get("/api/v1/audit/verify").await?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => match &report.broken {
                    None => println!(
                        "audit log intact: {} events verified, head {}",
                        report.verified, report.head
                    ),
                    Some(broken) => {
                        println!(
                            "audit log BROKEN at event {}: {} ({} events verified before it)",
                            broken.seq, broken.message, report.verified
                        );
                        eprintln!(
                            "  hint: the log was altered outside slipway; restore the database \
                             from a backup and compare with `slipway audit export`"
                        );
                    }
                },
            }
            Ok(if report.intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Export(args) => {
            let Format::Jsonl = args.format;
            let mut after = args.after;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            loop {
                let mut path = format!("/api/v1/audit/events?after={after}&limit=5000");
                if let Some(deploy) = args.deploy {
                    path.push_str(&format!("&deploy={deploy}"));
                }
                let page: Page<serde_json::Value> = client.get(&path).await?;
                for record in &page.items {
                    writeln!(out, "{}", serde_json::to_string(record)?)?;
                }
                let next = page.next.unwrap_or(after);
                if page.items.len() < 5000 || next == after {
                    break;
                }
                after = next;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
