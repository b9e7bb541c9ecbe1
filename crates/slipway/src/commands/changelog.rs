//! `slipway changelog RANGE [--repo PATH]`: the changelog of a range of a local git repository,
//! grouped by category (`docs/releases.md`), with the commits that need a human listed apart.
//! Runs without a server: it reads the repository with `git`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use slipway_release::{Categories, build, commits};

use super::print_json;
use crate::Output;
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The commits to describe, as git writes a range: `stages/prod..main`, `v1.2..HEAD`.
    range: String,
    /// The repository (its working tree or a bare one).
    #[arg(long, value_name = "PATH", default_value = ".")]
    repo: PathBuf,
    /// Exit 1 when a commit needs a category (for CI: every commit must say what it changes).
    #[arg(long)]
    strict: bool,
}

pub(crate) fn run(args: &Args, output: Output) -> Result<ExitCode> {
    let found = commits(&args.repo, &args.range).map_err(|error| {
        Failure::new("changelog_unreadable", error.to_string()).hint(error.hint())
    })?;
    let changelog = build(&found, &Categories::default());
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
        .hint(
            "add a line `changelog: Category, Subcategory, Change` to each, or `[skip changelog]`",
        )
        .into());
    }
    Ok(ExitCode::SUCCESS)
}
