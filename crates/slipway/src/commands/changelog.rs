//! `slipway changelog RANGE [--repo PATH] [--service NAME]`: the changelog of a range of a local
//! git repository, grouped by category (`docs/releases.md`), with the commits that need a human
//! listed apart. Runs without a server: it reads the repository with `git`. With `--service`,
//! the categories (and, without `--repo`, the repository) are that service's in slipway.toml.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use slipway_release::{Categories, build, commits};
use slipway_server::trains::categories;

use super::{ConfigPath, print_json, service_source};
use crate::Output;
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The commits to describe, as git writes a range: `stages/prod..main`, `v1.2..HEAD`.
    range: String,
    /// The repository (its working tree or a bare one); defaults to the service's
    /// `[service.source]` with `--service`, else the current directory.
    #[arg(long, value_name = "PATH")]
    repo: Option<PathBuf>,
    /// Exit 1 when a commit needs a category (for CI: every commit must say what it changes).
    #[arg(long)]
    strict: bool,
    /// Group in this service's `[service.source.changelog]` categories, read from slipway.toml
    /// (without it: the default categories).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    #[command(flatten)]
    config: ConfigPath,
}

pub(crate) fn run(args: &Args, output: Output) -> Result<ExitCode> {
    let (repo, categories) = match &args.service {
        Some(name) => {
            let (dir, source) = service_source(
                &args.config.path,
                name,
                &format!("service `{name}` has no [service.source] with its changelog categories"),
                "add [service.source] with repo = \"../path-of-the-clone\" and a \
                 [service.source.changelog] table, or leave out --service for the default \
                 categories",
            )?;
            let categories = categories(source.train.changelog.as_ref()).map_err(|error| {
                Failure::new("invalid_config", error.to_string()).hint(error.hint())
            })?;
            let repo = args.repo.clone().unwrap_or_else(|| dir.join(&source.repo));
            (repo, categories)
        }
        None => (
            args.repo.clone().unwrap_or_else(|| PathBuf::from(".")),
            Categories::default(),
        ),
    };
    let found = commits(&repo, &args.range).map_err(|error| {
        Failure::new("changelog_unreadable", error.to_string()).hint(error.hint())
    })?;
    let changelog = build(&found, &categories);
    match output {
        Output::Json => print_json(&changelog),
        Output::Text => print!("{}", changelog.to_markdown()),
    }
    if args.strict && !changelog.unassigned.is_empty() {
        return Err(Failure::new(
            "changelog_incomplete",
            format!(
                "{} of {} commits in {} need a category",
                changelog.unassigned.len(),
                found.len(),
                args.range
            ),
        )
        .hint(format!(
            "add a line `changelog: Category, Subcategory, Change` to each (categories: {}), or \
             `[skip changelog]`",
            categories.names().join(", ")
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}
