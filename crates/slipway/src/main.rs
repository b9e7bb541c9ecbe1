//! The `slipway` binary: parses the command line and runs one command.
//!
//! Each command lives in its own module under `commands/` with an `Args` struct and a `run`
//! function. Data goes to stdout, errors to stderr followed by a `hint:` line, no colour.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod commands;
mod failure;

/// slipway: a self-hosted release control plane.
#[derive(Debug, Parser)]
#[command(name = "slipway", version, propagate_version = true)]
struct Cli {
    /// How to print results: text for people, json for programs.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,

    #[command(subcommand)]
    command: Command,
}

/// The format of what a command prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a slipway.toml and report every mistake in it.
    CheckConfig(commands::check_config::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::CheckConfig(args) => commands::check_config::run(args, cli.output),
    };
    result.unwrap_or_else(|error| {
        failure::report(&error, cli.output);
        ExitCode::FAILURE
    })
}
