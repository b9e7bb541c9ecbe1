//! `slipway release create|list`: number a pushed artifact as `RC N` (patches `RC N.M`).

use std::process::ExitCode;

use anyhow::Result;
use reqwest::Method;
use slipway_server::views::{Page, ReleaseView};

use super::{print_json, table};
use crate::Output;
use crate::client::Client;

/// What a release changes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Kind {
    Full,
    Patch,
    OffCycle,
    /// Configuration only: the running artifact with new settings.
    Config,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Patch => "patch",
            Kind::OffCycle => "off-cycle",
            Kind::Config => "config",
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create the next release of SERVICE from a pushed artifact version.
    Create(CreateArgs),
    /// List releases, newest first.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    service: String,
    /// The version of a pushed artifact.
    #[arg(long = "version", id = "artifact_version", value_name = "VERSION")]
    version: String,
    #[arg(long, value_enum, default_value_t = Kind::Full)]
    kind: Kind,
    /// Why (required for off-cycle releases).
    #[arg(long)]
    reason: Option<String>,
    /// Who wrote the release's commits (repeat it); environments with `not_authors` refuse
    /// their approvals.
    #[arg(long = "author", value_name = "NAME")]
    authors: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[arg(long)]
    service: Option<String>,
    #[command(flatten)]
    page: super::PageArgs,
}

pub(crate) async fn run(command: &Command, client: &Client, output: Output) -> Result<ExitCode> {
    match command {
        Command::Create(args) => {
            let body = serde_json::json!({
                "service": args.service,
                "version": args.version,
                "kind": args.kind.name(),
                "reason": args.reason,
                "authors": args.authors,
            });
            let release: ReleaseView = client.post("/api/v1/releases", &body).await?;
            match output {
                Output::Json => print_json(&release),
                Output::Text => println!(
                    "created {} {} ({}, version {}, {})",
                    release.service, release.label, release.kind, release.version, release.artifact
                ),
            }
        }
        Command::List(args) => {
            let mut request = args
                .page
                .apply(client.request(Method::GET, "/api/v1/releases"));
            if let Some(service) = &args.service {
                request = request.query(&[("service", service)]);
            }
            let page: Page<ReleaseView> = client.send(request).await?;
            match output {
                Output::Json => print_json(&page),
                Output::Text => table(
                    &[
                        "SERVICE",
                        "RELEASE",
                        "KIND",
                        "VERSION",
                        "CREATED BY",
                        "CREATED AT",
                    ],
                    page.items.iter().map(|r| {
                        vec![
                            r.service.clone(),
                            r.label.clone(),
                            r.kind.clone(),
                            r.version.clone(),
                            r.created_by.clone(),
                            r.created_at.clone(),
                        ]
                    }),
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
