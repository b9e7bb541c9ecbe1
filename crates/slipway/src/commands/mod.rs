//! One module per `slipway` command, each with an `Args` struct and a `run` function.

pub(crate) mod check_config;

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
            std::io::ErrorKind::NotFound => Failure {
                code: "config_not_found",
                message: format!("no config file at {shown}"),
                hint: Some("create one with `slipway init`, or pass --config PATH".to_owned()),
            },
            std::io::ErrorKind::InvalidData => Failure {
                code: "config_unreadable",
                message: format!("{shown} is not UTF-8 text"),
                hint: Some("save slipway.toml as UTF-8".to_owned()),
            },
            _ => Failure {
                code: "config_unreadable",
                message: format!("cannot read {shown}: {error}"),
                hint: None,
            },
        };
        anyhow::Error::new(failure)
    })
}
