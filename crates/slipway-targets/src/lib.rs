//! Target drivers: what runs a service's instances for an environment.
//!
//! `command` runs a team's own scripts (`command.rs`). `local` (child processes behind
//! slipway's proxy) arrives with its own issue; `aws-asg` and `kubernetes` will live in crates
//! of their own. [`target_for`] picks the driver an environment names.

mod command;

use std::sync::Arc;

use slipway_core::config::{CommandOperation, EnvironmentConfig, KNOWN_TARGETS, Placeholder};
use slipway_engine::plugin::Target;

pub use command::{CommandSettings, CommandTarget, DETAIL_LIMIT, OUTPUT_LIMIT, shell_quote};

/// Why a target could not be built from an environment's configuration. `parse_config` already
/// refuses every one of these, so they only happen with a config built some other way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The environment names a driver other than the one being built.
    #[error("environment `{environment}` has target `{target}`, not `{expected}`")]
    WrongTarget {
        environment: String,
        target: String,
        expected: &'static str,
    },
    /// A `command` environment without its `[environment.NAME.command]` table.
    #[error(
        "environment `{environment}` has target = \"command\" but no [environment.{environment}.command] table"
    )]
    MissingCommands { environment: String },
    /// A command template uses a placeholder its operation has no value for.
    #[error(
        "the `{}` command of environment `{environment}` uses `{{{}}}`, which has no value there",
        operation.key(),
        placeholder.name()
    )]
    Placeholder {
        environment: String,
        operation: CommandOperation,
        placeholder: Placeholder,
    },
    /// A target name slipway does not know.
    #[error("environment `{environment}` has unknown target `{target}` (known: {})", KNOWN_TARGETS.join(", "))]
    UnknownTarget { environment: String, target: String },
}

/// The driver for `environment`: `Some` for the targets built so far (`command`), `None` for
/// known targets whose driver has not arrived yet (`local`, `aws-asg`, `kubernetes`).
pub fn target_for(
    environment: &EnvironmentConfig,
    settings: &CommandSettings,
) -> Result<Option<Arc<dyn Target>>, TargetError> {
    match environment.target.as_str() {
        "command" => {
            let target = CommandTarget::new(environment, settings.clone())?;
            Ok(Some(Arc::new(target)))
        }
        known if KNOWN_TARGETS.contains(&known) => Ok(None),
        unknown => Err(TargetError::UnknownTarget {
            environment: environment.name.clone(),
            target: unknown.to_owned(),
        }),
    }
}
