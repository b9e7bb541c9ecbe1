//! `slipway receipt DEPLOY`: the chain of evidence of one deploy — commit, artifact digest,
//! provenance, approvals, go, the preflight findings, checks with their numbers, outcome — each
//! with the sequence number and hash of the event that recorded it, and whether the audit chain
//! holding them is intact.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use slipway_core::analysis::Measurement;
use slipway_server::views::{AuditReportView, DeployView, EventView, Page};

use super::print_json;
use crate::Output;
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The deploy's id.
    id: i64,
}

/// One line of evidence.
#[derive(Debug, Serialize)]
struct Entry {
    /// `requested`, `preflight`, `break-glass`, `approval`, `go`, `check`, `outcome`…
    what: &'static str,
    text: String,
    /// Where it is recorded: event sequence number and hash.
    seq: i64,
    hash: String,
    at: String,
}

#[derive(Debug, Serialize)]
struct Receipt {
    deploy: i64,
    service: String,
    environment: String,
    release: String,
    version: String,
    commit: Option<String>,
    artifact: String,
    config: String,
    plan: String,
    entries: Vec<Entry>,
    /// Whether the whole audit chain verified, and its head.
    chain_intact: bool,
    chain_head: String,
}

pub(crate) async fn run(args: &Args, client: &Client, output: Output) -> Result<ExitCode> {
    let id = args.id;
    let deploy: DeployView = client.get(&format!("/api/v1/deploys/{id}")).await?;
    let mut events = Vec::new();
    let mut after = 0i64;
    // Bounded: a deploy has at most a few thousand events, 1000 per page.
    for _ in 0..1000 {
        let page: Page<EventView> = client
            .get(&format!(
                "/api/v1/deploys/{id}/events?after={after}&limit=1000"
            ))
            .await?;
        let full = page.items.len() == 1000;
        after = page.next.unwrap_or(after);
        events.extend(page.items);
        if !full {
            break;
        }
    }
    let chain: AuditReportView = client.get("/api/v1/audit/verify").await?;
    let receipt = Receipt {
        deploy: deploy.id,
        service: deploy.service.clone(),
        environment: deploy.environment.clone(),
        release: deploy.release.label.clone(),
        version: deploy.release.version.clone(),
        commit: deploy.commit.clone(),
        artifact: deploy.binding.artifact.clone(),
        config: deploy.binding.config.clone(),
        plan: deploy.binding.plan.clone(),
        entries: events.iter().filter_map(entry).collect(),
        chain_intact: chain.intact,
        chain_head: chain.head.clone(),
    };
    match output {
        Output::Json => print_json(&receipt),
        Output::Text => print_text(&receipt),
    }
    Ok(ExitCode::SUCCESS)
}

/// The evidence an event gives, if it is part of the receipt.
fn entry(event: &EventView) -> Option<Entry> {
    let data = &event.data;
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let flag = |key: &str| data.get(key).and_then(Value::as_bool).unwrap_or(false);
    let (what, line) = match event.kind.as_str() {
        "deploy_created" => (
            "requested",
            format!("by {} ({} deploy)", text("requested_by"), text("purpose")),
        ),
        "preflight_checked" => {
            let verdict = match (flag("passed"), flag("overridden")) {
                (true, _) => "passed",
                (false, true) => "OVERRIDDEN by break-glass",
                (false, false) => "refused",
            };
            (
                "preflight",
                format!("{} {verdict}: {}", text("check"), text("detail")),
            )
        }
        "slot_awaited" => (
            "preflight",
            format!("waited for the next slot: {}", text("reason")),
        ),
        "break_glass_confirmed" => (
            "break-glass",
            format!("confirmed by {}: {}", text("by"), text("reason")),
        ),
        "approved" => ("approval", format!("by {}", text("by"))),
        "approvals_expired" => ("approval", "approvals expired".to_owned()),
        "go_announced" => ("go", format!("announced: {}", text("message"))),
        "go_acknowledged" => ("go", format!("acknowledged by {}", text("by"))),
        "measured" => {
            let measurement: Measurement =
                serde_json::from_value(data.get("measurement")?.clone()).ok()?;
            ("measured", measurement.describe())
        }
        "checked" => {
            let score = data
                .get("score")
                .and_then(Value::as_f64)
                .map(|s| format!(", score {s:.0}"))
                .unwrap_or_default();
            (
                "check",
                format!(
                    "{}: {}{score} ({})",
                    text("key"),
                    text("verdict"),
                    text("detail")
                ),
            )
        }
        "scale_in_confirmed" => ("scale-in", format!("confirmed by {}", text("by"))),
        "unwind_started" => ("unwind", format!("{}: {}", text("cause"), text("reason"))),
        "deploy_finished" => {
            let reason = data
                .get("reason")
                .and_then(Value::as_str)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            ("outcome", format!("{}{reason}", text("result")))
        }
        _ => return None,
    };
    Some(Entry {
        what,
        text: line,
        seq: event.seq,
        hash: event.hash.clone(),
        at: event.at.clone(),
    })
}

fn print_text(receipt: &Receipt) {
    println!(
        "receipt of deploy {}: {} {} ({}) to {}",
        receipt.deploy, receipt.service, receipt.release, receipt.version, receipt.environment
    );
    let commit = receipt.commit.as_deref().unwrap_or("(not recorded)");
    for (what, value) in [
        ("commit", commit),
        ("artifact", &receipt.artifact),
        ("config", &receipt.config),
        ("plan", &receipt.plan),
    ] {
        println!("  {what:<12}{value}");
    }
    for entry in &receipt.entries {
        println!(
            "  {:<12}{}  [#{} {} at {}]",
            entry.what,
            entry.text,
            entry.seq,
            &entry.hash[..entry.hash.len().min(12)],
            entry.at
        );
    }
    match receipt.chain_intact {
        true => println!(
            "audit chain intact; head {}",
            &receipt.chain_head[..receipt.chain_head.len().min(12)]
        ),
        false => println!(
            "AUDIT CHAIN BROKEN: run `slipway audit verify` to see where; this receipt cannot be trusted"
        ),
    }
}
