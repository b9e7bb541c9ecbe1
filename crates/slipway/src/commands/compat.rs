//! `slipway compat BASE HEAD [--repo PATH]`: the 50/50 compatibility check between the revision
//! live (BASE) and the candidate (HEAD) of a local git repository (`docs/compat.md`). Runs
//! without a server. With `--service`, the service's `[service.source]` repository and its
//! `[service.compat]` suppressions come from `slipway.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use slipway_compat::{Options, check};

use super::{ConfigPath, print_json, service_source};
use crate::Output;
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The revision running now (commit, branch or tag).
    base: String,
    /// The candidate revision.
    head: String,
    /// The repository (its working tree or a bare one); defaults to the service's
    /// `[service.source]` with `--service`, else the current directory.
    #[arg(long, value_name = "PATH")]
    repo: Option<PathBuf>,
    /// Read the repository and the `[service.compat]` suppressions of this service from
    /// slipway.toml.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    #[command(flatten)]
    config: ConfigPath,
}

pub(crate) fn run(args: &Args, output: Output) -> Result<ExitCode> {
    let mut repo = args.repo.clone();
    let mut options = Options::default();
    if let Some(name) = &args.service {
        let (dir, source) = service_source(
            &args.config.path,
            name,
            &format!("service `{name}` has no [service.source]"),
            "add [service.source] with repo = \"../path-of-the-clone\", or pass --repo",
        )?;
        if repo.is_none() {
            repo = Some(dir.join(&source.repo));
        }
        options.ignores = slipway_engine::preflight::compat::ignores(&source.compat);
    }
    let repo = repo.unwrap_or_else(|| PathBuf::from("."));
    let report = check(&repo, &args.base, &args.head, &options)
        .map_err(|error| Failure::new("compat_unreadable", error.to_string()).hint(error.hint()))?;
    match output {
        Output::Json => print_json(&serde_json::json!({
            "passed": report.passed(),
            "report": report,
        })),
        Output::Text => print!("{}", report.to_text()),
    }
    if report.passed() {
        return Ok(ExitCode::SUCCESS);
    }
    if output == Output::Text {
        eprintln!(
            "error: {} unsafe finding(s) between {} and {}",
            report.blocking().count(),
            args.base,
            args.head
        );
        eprintln!(
            "  hint: split the change as each recipe says, or suppress a finding with \
             `# slipway:compat-ignore RULE reason` once you know it is safe"
        );
    }
    Ok(ExitCode::FAILURE)
}
