//! `slipway checklist`: a service's prerequisite items in an environment with who ticked them
//! (`slipway checklist SERVICE --env ENV`), and `tick` / `untick` with evidence.

use std::process::ExitCode;

use anyhow::Result;
use slipway_server::views::checklist::{ChecklistView, TickResultView};

use super::print_json;
use crate::Output;
use crate::client::Client;

/// `slipway checklist SERVICE --env ENV [--release RC]`, or one of the subcommands.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The service whose checklist to show.
    #[arg(required = true)]
    service: Option<String>,
    #[arg(long = "env", value_name = "ENV", required = true)]
    environment: Option<String>,
    /// `RC 12`, `12` or `12.1`; the newest release when absent.
    #[arg(long)]
    release: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Show the items of SERVICE in an environment and who ticked them (the default).
    Show(ShowArgs),
    /// Tick an item, with a link or a note as evidence.
    Tick(TickArgs),
    /// Take back the tick of an item (it stays in the history).
    Untick(UntickArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// `RC 12`, `12` or `12.1`; the newest release when absent.
    #[arg(long)]
    release: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TickArgs {
    service: String,
    /// The item's name, as `slipway checklist SERVICE --env ENV` lists it.
    item: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// The release a per-release item is ticked for: `RC 12`, `12` or `12.1`.
    #[arg(long)]
    release: Option<String>,
    /// An http(s) link to the evidence (the signed agreement, the review, the ticket).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "note",
        conflicts_with = "note"
    )]
    link: Option<String>,
    /// The evidence in words.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UntickArgs {
    service: String,
    item: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// The release a per-release item was ticked for.
    #[arg(long)]
    release: Option<String>,
    /// Why the tick no longer holds.
    #[arg(long)]
    reason: Option<String>,
}

pub(crate) async fn run(args: &Args, client: &Client, output: Output) -> Result<ExitCode> {
    match &args.command {
        Some(Command::Show(show)) => {
            show_checklist(
                client,
                &show.service,
                &show.environment,
                show.release.as_deref(),
                output,
            )
            .await
        }
        Some(Command::Tick(tick)) => {
            let body = serde_json::json!({
                "environment": tick.environment,
                "release": tick.release,
                "item": tick.item,
                "link": tick.link,
                "note": tick.note,
            });
            let path = format!("/api/v1/services/{}/checklist/tick", segment(&tick.service));
            let result: TickResultView = client.post(&path, &body).await?;
            print_result(&result, output);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Untick(untick)) => {
            let body = serde_json::json!({
                "environment": untick.environment,
                "release": untick.release,
                "item": untick.item,
                "reason": untick.reason,
            });
            let path = format!(
                "/api/v1/services/{}/checklist/untick",
                segment(&untick.service)
            );
            let result: TickResultView = client.post(&path, &body).await?;
            print_result(&result, output);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            // clap requires both when no subcommand is given.
            let service = args.service.as_deref().unwrap_or_default();
            let environment = args.environment.as_deref().unwrap_or_default();
            show_checklist(
                client,
                service,
                environment,
                args.release.as_deref(),
                output,
            )
            .await
        }
    }
}

async fn show_checklist(
    client: &Client,
    service: &str,
    environment: &str,
    release: Option<&str>,
    output: Output,
) -> Result<ExitCode> {
    let mut request = client
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/services/{}/checklist", segment(service)),
        )
        .query(&[("environment", environment)]);
    if let Some(release) = release {
        request = request.query(&[("release", release)]);
    }
    let checklist: ChecklistView = client.send(request).await?;
    match output {
        Output::Json => print_json(&checklist),
        Output::Text => print_checklist(&checklist),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_checklist(checklist: &ChecklistView) {
    let done = checklist.items.iter().filter(|i| i.done).count();
    let release = checklist
        .release
        .as_deref()
        .map(|r| format!(" for {r}"))
        .unwrap_or_default();
    if checklist.items.is_empty() {
        println!(
            "no checklist items apply to {} in {}",
            checklist.service, checklist.environment
        );
        return;
    }
    println!(
        "checklist of {} in {}{release}: {done} of {} done",
        checklist.service,
        checklist.environment,
        checklist.items.len()
    );
    for item in &checklist.items {
        let mark = if item.done { "[x]" } else { "[ ]" };
        let per = if item.per == "environment" {
            " (standing)"
        } else {
            ""
        };
        println!("  {mark} {}{per}", item.name);
        if let Some(tick) = &item.tick {
            let evidence = match (&tick.link, &tick.note) {
                (Some(link), _) => link.clone(),
                (None, Some(note)) => format!("\"{note}\""),
                (None, None) => String::new(),
            };
            println!(
                "        ticked by {} ({}) at {}: {evidence}",
                tick.by, tick.role, tick.at
            );
        }
        if let Some(missing) = &item.missing {
            println!("        {missing}; {} may tick it:", item.who_may_tick);
            println!("        {}", item.command);
        }
    }
}

fn print_result(result: &TickResultView, output: Output) {
    match output {
        Output::Json => print_json(result),
        Output::Text => {
            let release = result
                .release
                .as_deref()
                .map(|r| format!(" for {r}"))
                .unwrap_or_default();
            let verb = if result.action == "tick" {
                "ticked"
            } else {
                "unticked"
            };
            let evidence = match (&result.link, &result.note) {
                (Some(link), _) => format!(" ({link})"),
                (None, Some(note)) => format!(" (\"{note}\")"),
                (None, None) => String::new(),
            };
            println!(
                "{verb} `{}` of {} in {}{release}{evidence}",
                result.item, result.service, result.environment
            );
        }
    }
}

/// A name as one path segment: service names are plain, but a typo must not change the path.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
