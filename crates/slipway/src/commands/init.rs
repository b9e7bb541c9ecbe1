//! `slipway init`: writes a starter slipway.toml to edit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::failure::Failure;

/// A small, valid configuration: one service, a dev and a protected prod environment.
const STARTER: &str = include_str!("starter.toml");

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to write it.
    #[arg(default_value = "slipway.toml")]
    path: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let path = &args.path;
    if path.exists() && !args.force {
        return Err(Failure::new(
            "file_exists",
            format!("{} already exists; it was left alone", path.display()),
        )
        .hint("pass --force to replace it, or another path")
        .into());
    }
    std::fs::write(path, STARTER).map_err(|error| {
        Failure::new(
            "cannot_write",
            format!("cannot write {}: {error}", path.display()),
        )
    })?;
    eprintln!(
        "wrote {}; check it with `slipway check-config --config {}`, then `slipway serve`",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
