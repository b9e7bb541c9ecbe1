//! The `slipway` binary: parses the command line and runs one command.
//!
//! Each command lives in a module under `commands/` with its clap arguments and a `run`
//! function. Commands other than `serve`, `init`, `check-config` and `completions` talk to a
//! server through the API client in `client.rs`. Data goes to stdout, errors to stderr followed
//! by a `hint:` line, no colour.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

mod client;
mod commands;
mod failure;

use commands::{artifact, audit, deploy, locks, people, release};

/// slipway: a self-hosted release control plane.
#[derive(Debug, Parser)]
#[command(name = "slipway", version)]
struct Cli {
    /// How to print results: text for people, json for programs.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,

    #[command(flatten)]
    connection: client::Connection,

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
    /// A real deploy on local processes: canary, 50/50, bake, scale-in, and a rollback.
    Demo(commands::demo::Args),
    /// Run the demo service (what `slipway demo` deploys); settings from demo.toml and PORT.
    #[command(hide = true)]
    DemoService,
    /// Run the API server and the deploy engine until SIGINT or SIGTERM.
    Serve(commands::serve::Args),
    /// Write a starter slipway.toml.
    Init(commands::init::Args),
    /// Check a slipway.toml and report every mistake in it.
    CheckConfig(commands::check_config::Args),
    /// Push, list and show artifacts; CI's signing key and signed provenance.
    #[command(subcommand)]
    Artifact(artifact::Command),
    /// Create and list releases.
    #[command(subcommand)]
    Release(release::Command),
    /// Deploy a release of a service to an environment.
    Deploy(deploy::DeployArgs),
    /// What runs where; with a deploy id, that deploy in detail.
    Status(deploy::StatusArgs),
    /// List deploys, newest first.
    Deploys(deploy::ListArgs),
    /// Approve a deploy (approvers other than the requester).
    Approve(deploy::ApproveArgs),
    /// Acknowledge a deploy's go/no-go announcement (someone other than its runner).
    Go(deploy::ActionArgs),
    /// Confirm a break-glass deploy as the second person (approvers other than the requester).
    BreakGlass(deploy::ActionArgs),
    /// Confirm scale-in: the old fleet may stop.
    Confirm(deploy::ActionArgs),
    /// Abort a deploy in progress; what it started is undone.
    Abort(deploy::AbortArgs),
    /// Roll a service back in an environment, at any time.
    Rollback(deploy::RollbackArgs),
    /// Stop new deploys of a service to an environment until it is unlocked.
    Lock(locks::LockArgs),
    /// Let deploys of a service to an environment start again.
    Unlock(locks::UnlockArgs),
    /// List the locks held.
    Locks,
    /// A deploy's chain of evidence: commit, artifact, provenance, approvals, go, checks,
    /// outcome, each with the hash of the event that recorded it.
    Receipt(commands::receipt::Args),
    /// When a service may next be deployed to an environment: windows, freezes, holidays, who is out.
    Schedule(commands::schedule::Args),
    /// Print (and follow) what a service's instances write, for the local target.
    Logs(commands::logs::Args),
    /// A service's prerequisite checklist in an environment; `tick` and `untick` items.
    Checklist(commands::checklist::Args),
    /// Print a service's runbook, rendered as Markdown from slipway.toml.
    Runbook(commands::runbook::Args),
    /// The changelog of a range of a local git repository, grouped by category (no server).
    Changelog(commands::changelog::Args),
    /// A service's settings and secrets per environment, as reviewed, immutable versions.
    #[command(subcommand)]
    Config(commands::config::Command),
    /// Verify or export the audit trail.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Manage users (admins).
    #[command(subcommand)]
    User(people::UserCommand),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(people::TokenCommand),
    /// Who the token belongs to.
    Whoami,
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// What was sent to the [[notify]] destinations, and whether it arrived.
    Notifications(commands::notifications::Args),
    /// Is HEAD safe to run beside BASE (the 50/50 state)? Checks a local git repository.
    Compat(commands::compat::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let result = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(&cli)),
        Err(error) => Err(error.into()),
    };
    result.unwrap_or_else(|error| {
        failure::report(&error, cli.output);
        ExitCode::FAILURE
    })
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let output = cli.output;
    // Only commands that talk to a server need a client (and a valid --server).
    let client = || cli.connection.client();
    match &cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Demo(args) => commands::demo::run(args).await,
        Command::DemoService => {
            slipway_demo::run().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init(args) => commands::init::run(args),
        Command::CheckConfig(args) => commands::check_config::run(args, output),
        Command::Changelog(args) => commands::changelog::run(args, output),
        Command::Compat(args) => commands::compat::run(args, output),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "slipway", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Artifact(command) => artifact::run(command, &client()?, output).await,
        Command::Release(command) => release::run(command, &client()?, output).await,
        Command::Deploy(args) => deploy::deploy(args, &client()?, output).await,
        Command::Status(args) => deploy::status(args, &client()?, output).await,
        Command::Deploys(args) => deploy::list(args, &client()?, output).await,
        Command::Approve(args) => deploy::approve(&client()?, args, output).await,
        Command::Go(args) => deploy::act(&client()?, args.id, "go", None, output).await,
        Command::BreakGlass(args) => {
            deploy::act(&client()?, args.id, "break-glass", None, output).await
        }
        Command::Lock(args) => locks::lock(args, &client()?, output).await,
        Command::Unlock(args) => locks::unlock(args, &client()?, output).await,
        Command::Locks => locks::list(&client()?, output).await,
        Command::Receipt(args) => commands::receipt::run(args, &client()?, output).await,
        Command::Confirm(args) => deploy::act(&client()?, args.id, "confirm", None, output).await,
        Command::Abort(args) => {
            deploy::act(&client()?, args.id, "abort", Some(&args.reason), output).await
        }
        Command::Rollback(args) => deploy::rollback(args, &client()?, output).await,
        Command::Checklist(args) => commands::checklist::run(args, &client()?, output).await,
        Command::Runbook(args) => commands::runbook::run(args, client, output).await,
        Command::Config(command) => commands::config::run(command, client, output).await,
        Command::Audit(command) => audit::run(command, &client()?, output).await,
        Command::Schedule(args) => commands::schedule::run(args, &client()?, output).await,
        Command::Logs(args) => commands::logs::run(args, &client()?, output).await,
        Command::User(command) => people::user(command, &client()?, output).await,
        Command::Token(command) => people::token(command, &client()?, output).await,
        Command::Whoami => people::whoami(&client()?, output).await,
        Command::Notifications(args) => {
            commands::notifications::run(args, &client()?, output).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
