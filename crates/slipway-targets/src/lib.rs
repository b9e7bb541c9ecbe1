//! Target drivers: what runs a service's instances for an environment.
//!
//! `local` runs instances as child processes behind slipway's proxy (`local.rs`); `command`
//! runs a team's own scripts (`command.rs`); `aws-asg` and `kubernetes` will live in crates of
//! their own. [`target_for`] picks the driver an environment names.

mod command;
mod delivery;
pub mod local;
pub mod process;

use std::path::PathBuf;
use std::sync::Arc;

use slipway_core::config::{
    CommandOperation, EnvironmentConfig, KNOWN_TARGETS, Placeholder, ServiceConfig,
};
use slipway_engine::plugin::Target;
use slipway_proxy::Proxy;

pub use command::{CommandSettings, CommandTarget, DETAIL_LIMIT, OUTPUT_LIMIT, shell_quote};
/// slipway's proxy, which the local target drives; re-exported for the host that serves it.
pub use slipway_proxy as proxy;

pub use local::{InstanceInfo, LocalSettings, LocalTarget, LocalTiming, route_for};

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
    /// A `local` environment, but the host gave no proxy to route its traffic.
    #[error("environment `{environment}` has target = \"local\", which needs slipway's proxy")]
    NoProxy { environment: String },
    /// The local target could not start: its state file or lock.
    #[error("the local target of environment `{environment}` cannot start: {message}")]
    Local {
        environment: String,
        message: String,
    },
    /// A `launch` or `task` command uses `{config_file}`, but the config version is delivered
    /// as environment variables (`config = "env"`, the default), so there is no file.
    #[error(
        "the `{}` command of environment `{environment}` uses `{{config_file}}`, which has a value \
         only with config = \"file\" in [environment.{environment}.command]",
        operation.key()
    )]
    ConfigFileWithoutFile {
        environment: String,
        operation: CommandOperation,
    },
    /// A target name slipway does not know.
    #[error("environment `{environment}` has unknown target `{target}` (known: {})", KNOWN_TARGETS.join(", "))]
    UnknownTarget { environment: String, target: String },
}

/// What the process hosting the targets gives them.
#[derive(Clone)]
pub struct TargetContext {
    /// slipway's data directory (unpacked releases, instance logs, the local target's state).
    pub data_dir: PathBuf,
    /// The artifact cache: `sha256:HEX` is `<artifact_dir>/sha256/HEX`.
    pub artifact_dir: PathBuf,
    /// Where `command` targets run their commands (the config file's directory).
    pub workdir: PathBuf,
    /// The services of the config file.
    pub services: Vec<ServiceConfig>,
    /// slipway's proxy, needed by `local` environments.
    pub proxy: Option<Proxy>,
    /// Timings of `local` targets.
    pub local: LocalTiming,
    /// Where launches and tasks read the values of a pinned config version; without one, a
    /// release that pins a version fails to launch (its settings would be missing).
    pub config: Option<Arc<dyn slipway_engine::plugin::ConfigSource>>,
}

/// A built driver, keeping its concrete type for the host (which stops or closes a local
/// target on shutdown).
#[derive(Clone)]
pub enum Driver {
    Local(Arc<LocalTarget>),
    Command(Arc<CommandTarget>),
}

impl Driver {
    /// The driver as the engine uses it.
    pub fn target(&self) -> Arc<dyn Target> {
        match self {
            Driver::Local(target) => Arc::clone(target) as Arc<dyn Target>,
            Driver::Command(target) => Arc::clone(target) as Arc<dyn Target>,
        }
    }
}

/// The driver for `environment`: `Some` for the targets built so far (`local`, `command`),
/// `None` for known targets whose driver has not arrived yet (`aws-asg`, `kubernetes`). Opening
/// a `local` target adopts the instances a previous run left (see [`LocalTarget::open`]).
pub async fn target_for(
    environment: &EnvironmentConfig,
    context: &TargetContext,
) -> Result<Option<Driver>, TargetError> {
    match environment.target.as_str() {
        "command" => {
            let settings = CommandSettings {
                artifact_dir: context.artifact_dir.clone(),
                workdir: context.workdir.clone(),
                data_dir: context.data_dir.clone(),
                config: context.config.clone(),
            };
            let target = CommandTarget::new(environment, settings)?;
            Ok(Some(Driver::Command(Arc::new(target))))
        }
        "local" => {
            let proxy = context.proxy.clone().ok_or_else(|| TargetError::NoProxy {
                environment: environment.name.clone(),
            })?;
            let settings = LocalSettings {
                data_dir: context.data_dir.clone(),
                artifact_dir: context.artifact_dir.clone(),
                services: context.services.clone(),
                proxy,
                timing: context.local.clone(),
                config: context.config.clone(),
            };
            let target = LocalTarget::open(environment, settings).await?;
            Ok(Some(Driver::Local(Arc::new(target))))
        }
        known if KNOWN_TARGETS.contains(&known) => Ok(None),
        unknown => Err(TargetError::UnknownTarget {
            environment: environment.name.clone(),
            target: unknown.to_owned(),
        }),
    }
}
