//! `slipway release create|list`: number a pushed artifact as `RC N` (patches `RC N.M`);
//! `slipway release cut|notes|publish`: the release train (`docs/releases.md`) — cut a
//! candidate from what staging runs or a patch onto production, show or edit its notes, and
//! publish them by hand.

use std::process::ExitCode;

use anyhow::Result;
use reqwest::Method;
use slipway_server::views::trains::{NotesView, TrainView};
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
    /// Cut the next release candidate from the commit staging runs: the release branch, the
    /// range since production, its changelog and draft notes. `--patch --pick SHA…` picks
    /// commits of the main branch onto production instead.
    Cut(CutArgs),
    /// Show a train release's notes, or replace them with `--edit FILE` (`-` for stdin).
    Notes(NotesArgs),
    /// Show what the train recorded for a release: branch, range, true-up, picks, changelog.
    Train(TrainArgs),
    /// Publish a release production runs, as its deploy's success does (tag, production
    /// branch, notes to the webhook); for a published one, send the notes again.
    Publish(TrainArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    service: String,
    /// The release: `12`, `12.1` or `RC 12`.
    release: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CutArgs {
    service: String,
    /// A patch release (RC N.M) of the picked commits onto the production line.
    #[arg(long)]
    patch: bool,
    /// A commit of the main branch to pick (repeat it, oldest first); needs --patch.
    #[arg(long = "pick", value_name = "SHA", requires = "patch")]
    picks: Vec<String>,
    /// The patch's artifact: a pushed version built from the patch branch's head.
    #[arg(
        long = "version",
        id = "artifact_version",
        value_name = "VERSION",
        requires = "patch"
    )]
    version: Option<String>,
    /// Cut outside the schedule; needs --reason, and the notes say so.
    #[arg(long, conflicts_with = "patch", requires = "reason")]
    off_cycle: bool,
    /// Why (required with --off-cycle).
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct NotesArgs {
    service: String,
    /// The release: `12`, `12.1` or `RC 12`.
    release: String,
    /// Replace the notes with this file's text (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    edit: Option<std::path::PathBuf>,
}

/// `12`, `12.1` from `RC 12`, `rc12`, `12.1`: the path segment the API takes.
fn release_number(text: &str) -> String {
    let trimmed = text.trim();
    trimmed
        .strip_prefix("RC")
        .or_else(|| trimmed.strip_prefix("rc"))
        .unwrap_or(trimmed)
        .trim()
        .to_owned()
}

/// The facts of a train release; `verb` says what this command did (`cut`, `already cut`).
fn print_train(train: &TrainView, verb: &str) {
    let release = match (&train.release, &train.number) {
        (Some(r), _) => format!("{} {}", r.service, r.label),
        (None, Some(number)) => format!("no release yet, {number} reserved"),
        (None, None) => "no release yet".to_owned(),
    };
    println!(
        "{verb}: {release} ({}) on branch {}",
        train.kind, train.branch
    );
    println!("range: {}", train.range);
    if let Some(merge) = &train.true_up {
        println!("true-up: {merge} merges the production line");
    }
    for pick in &train.picks {
        println!("picked: {pick}");
    }
    println!("head: {}", train.branch_head);
    if let Some(next) = &train.next {
        println!("next: {next}");
    }
    println!();
    print!("{}", train.changelog);
}

/// Where a publication stands: the tag, and the delivery of the notes.
fn print_publication(notes: &NotesView) {
    let Some(published) = &notes.published else {
        println!("{} {}: not published", notes.service, notes.release);
        return;
    };
    let signed = if published.signed { "signed " } else { "" };
    println!(
        "{} {}: notes revision {} published {} ({signed}tag {})",
        notes.service, notes.release, published.revision, published.published_at, published.tag
    );
    match (&published.delivery, &published.delivered_at) {
        (_, Some(at)) => println!("delivered to the notes webhook at {at}"),
        (Some(state), None) => println!(
            "delivery to the notes webhook: {state} (see `slipway notifications` for each attempt)"
        ),
        (None, None) => println!(
            "no delivery of the notes recorded (no notes_webhook was configured when they were \
             published; `slipway release publish` sends them to one configured since)"
        ),
    }
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
        Command::Cut(args) => {
            let body = serde_json::json!({
                "patch": args.patch,
                "picks": args.picks,
                "version": args.version,
                "off_cycle": args.off_cycle,
                "reason": args.reason,
            });
            let path = format!(
                "/api/v1/releases/{}/cut",
                super::artifact::encode(&args.service)
            );
            let train: TrainView = client.post(&path, &body).await?;
            let verb = if train.created { "cut" } else { "already cut" };
            match output {
                Output::Json => print_json(&train),
                Output::Text => print_train(&train, verb),
            }
        }
        Command::Train(args) => {
            let path = format!(
                "/api/v1/releases/{}/{}/train",
                super::artifact::encode(&args.service),
                super::artifact::encode(&release_number(&args.release))
            );
            let train: TrainView = client.get(&path).await?;
            match output {
                Output::Json => print_json(&train),
                Output::Text => print_train(&train, "release"),
            }
        }
        Command::Publish(args) => {
            let path = format!(
                "/api/v1/releases/{}/{}/publish",
                super::artifact::encode(&args.service),
                super::artifact::encode(&release_number(&args.release))
            );
            let notes: NotesView = client.post(&path, &serde_json::json!({})).await?;
            match output {
                Output::Json => print_json(&notes),
                Output::Text => print_publication(&notes),
            }
        }
        Command::Notes(args) => {
            let path = format!(
                "/api/v1/releases/{}/{}/notes",
                super::artifact::encode(&args.service),
                super::artifact::encode(&release_number(&args.release))
            );
            let notes: NotesView = match &args.edit {
                Some(file) => {
                    let text = if file.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(file).map_err(|error| {
                            crate::failure::Failure::new(
                                "unreadable_file",
                                format!("cannot read {}: {error}", file.display()),
                            )
                            .hint("name a readable text file, or - to read the notes from stdin")
                        })?
                    };
                    client
                        .put(&path, &serde_json::json!({ "body": text }))
                        .await?
                }
                None => client.get(&path).await?,
            };
            match output {
                Output::Json => print_json(&notes),
                Output::Text if args.edit.is_some() => println!(
                    "{} {}: notes revision {} saved ({})",
                    notes.service, notes.release, notes.revision, notes.state
                ),
                Output::Text => {
                    eprintln!(
                        "{} {}: revision {} by {}, {}",
                        notes.service, notes.release, notes.revision, notes.written_by, notes.state
                    );
                    print!("{}", notes.body);
                }
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
