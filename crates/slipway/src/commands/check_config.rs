//! `slipway check-config`: reads a slipway.toml and reports every mistake in it, or a summary
//! of what it describes.

use std::process::ExitCode;

use anyhow::Result;
use slipway_core::config::{Config, ConfigErrors, parse_config};

use super::{ConfigPath, read_config_text};
use crate::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    config: ConfigPath,
}

/// Exits 0 and prints a summary on stdout when the file is valid; exits 1 and prints every
/// error (stderr, or stdout as JSON with `--output json`) when it is not.
pub(crate) fn run(args: &Args, output: Output) -> Result<ExitCode> {
    let path = &args.config.path;
    let text = read_config_text(path)?;
    let file = path.display().to_string();
    let parsed = parse_config(&file, &text).and_then(|mut config| {
        super::schedule::attach_calendars(&mut config, path).map(|()| config)
    });
    match parsed {
        Ok(config) => {
            match output {
                Output::Text => println!("{}", summary(&file, &config)),
                Output::Json => println!("{:#}", summary_json(&file, &config)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            match output {
                Output::Text => {
                    eprintln!("{errors}");
                    eprintln!("{} in {file}", count(errors.len(), "error", "errors"));
                }
                Output::Json => println!("{:#}", errors_json(&file, &errors)),
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `slipway.toml: ok — 2 services, 4 environments (dev → int → staging → prod)`.
fn summary(file: &str, config: &Config) -> String {
    let order: Vec<&str> = config
        .environments
        .iter()
        .map(|env| env.name.as_str())
        .collect();
    format!(
        "{file}: ok — {}, {} ({})",
        count(config.services.len(), "service", "services"),
        count(config.environments.len(), "environment", "environments"),
        order.join(" → ")
    )
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary_json(file: &str, config: &Config) -> serde_json::Value {
    let services: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    let environments: Vec<serde_json::Value> = config
        .environments
        .iter()
        .map(|env| {
            serde_json::json!({
                "name": env.name,
                "target": env.target,
                "protected": env.policy.protected,
            })
        })
        .collect();
    serde_json::json!({
        "file": file,
        "ok": true,
        "services": services,
        "environments": environments,
    })
}

fn errors_json(file: &str, errors: &ConfigErrors) -> serde_json::Value {
    let errors: Vec<serde_json::Value> = errors
        .iter()
        .map(|error| {
            serde_json::json!({
                "code": error.kind.code(),
                "file": error.file,
                "line": error.line,
                "column": error.column,
                "message": error.message,
                "hint": error.hint,
            })
        })
        .collect();
    serde_json::json!({
        "file": file,
        "ok": false,
        "errors": errors,
    })
}
