//! One module per `slipway` command, each with an `Args` struct and a `run` function.

pub(crate) mod artifact;
pub(crate) mod audit;
pub(crate) mod changelog;
pub(crate) mod check_config;
pub(crate) mod checklist;
pub(crate) mod compat;
pub(crate) mod config;
pub(crate) mod demo;
pub(crate) mod deploy;
pub(crate) mod init;
pub(crate) mod locks;
pub(crate) mod logs;
pub(crate) mod notifications;
pub(crate) mod people;
pub(crate) mod provenance;
pub(crate) mod receipt;
pub(crate) mod release;
pub(crate) mod runbook;
pub(crate) mod schedule;
pub(crate) mod serve;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::failure::Failure;

/// Where `slipway.toml` is; shared by every command that reads it.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigPath {
    /// Path of the config file.
    #[arg(
        long = "config",
        value_name = "PATH",
        env = "SLIPWAY_CONFIG",
        default_value = "slipway.toml"
    )]
    pub(crate) path: PathBuf,
}

/// Reads the config file's text, with a hint when it is missing.
pub(crate) fn read_config_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|error| {
        let shown = path.display();
        let failure = match error.kind() {
            std::io::ErrorKind::NotFound => {
                Failure::new("config_not_found", format!("no config file at {shown}"))
                    .hint("create one with `slipway init`, or pass --config PATH")
            }
            std::io::ErrorKind::InvalidData => {
                Failure::new("config_unreadable", format!("{shown} is not UTF-8 text"))
                    .hint("save slipway.toml as UTF-8")
            }
            _ => Failure::new("config_unreadable", format!("cannot read {shown}: {error}")),
        };
        anyhow::Error::new(failure)
    })
}

/// The config file at `path`, read and parsed; a mistake names the file and says how to
/// check it.
pub(crate) fn load_config(path: &Path) -> Result<slipway_core::config::Config> {
    let shown = path.display();
    let text = read_config_text(path)?;
    slipway_core::config::parse_config(&shown.to_string(), &text).map_err(|errors| {
        Failure::new("invalid_config", format!("{shown} is not valid:\n{errors}"))
            .hint(format!(
                "fix it and check with `slipway check-config --config {shown}`"
            ))
            .into()
    })
}

/// The `[service.source]` of service `name` in the config file at `path`, and the directory a
/// relative `repo` is relative to. Without one: `no_source` says what, `hint` what to do.
pub(crate) fn service_source(
    path: &Path,
    name: &str,
    no_source: &str,
    hint: &str,
) -> Result<(PathBuf, slipway_core::config::SourceConfig)> {
    let shown = path.display();
    let config = load_config(path)?;
    let Some(service) = config.service(name) else {
        let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        let hint = match slipway_core::config::suggest::closest(name, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("name a [[service]] of {shown}: {}", known.join(", ")),
        };
        return Err(
            Failure::new("not_found", format!("no service `{name}` in {shown}"))
                .hint(hint)
                .into(),
        );
    };
    let Some(source) = service.source.clone() else {
        return Err(Failure::new("no_source", no_source.to_owned())
            .hint(hint.to_owned())
            .into());
    };
    let dir = path.parent().unwrap_or_else(|| Path::new(".")).to_owned();
    Ok((dir, source))
}

/// `--limit` and `--before` of a listing.
#[derive(Debug, clap::Args)]
pub(crate) struct PageArgs {
    /// Entries per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Only entries older than this cursor: the `next` of the previous page (`--output json`).
    #[arg(long)]
    before: Option<i64>,
}

impl PageArgs {
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request.query(&[("limit", self.limit)]);
        match self.before {
            Some(before) => request.query(&[("before", before)]),
            None => request,
        }
    }
}

/// Prints a value as indented JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("error: cannot print the answer as JSON: {error}"),
    }
}

/// Prints rows under headers in columns as wide as their widest cell, or `(none)`.
pub(crate) fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `1536` to `1.5 KiB`.
pub(crate) fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The string at `key` of a JSON answer; empty when absent or not a string.
pub(crate) fn text<'v>(value: &'v serde_json::Value, key: &str) -> &'v str {
    value
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}
