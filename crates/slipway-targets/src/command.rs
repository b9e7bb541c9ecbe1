//! The `command` target: runs a team's own scripts, one shell command per target operation.
//!
//! `docs/targets.md` is the contract the scripts follow. This file keeps slipway's side of it:
//! placeholders expanded with shell-quoted values, the same facts in `SLIPWAY_*` variables,
//! a release's pinned config version handed to `launch` and `task` (as variables, or as an env
//! file that exists only while the command runs), output kept bounded, and a time limit that
//! kills the command's whole process group — as does dropping the future that runs it, so a
//! cancelled operation leaves nothing running.

use std::borrow::Cow;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slipway_core::config::{
    CommandOperation, CommandTargetConfig, CommandTemplate, ConfigDelivery, EnvironmentConfig,
    Placeholder, TemplatePart,
};
use slipway_core::deploy::{EffectKey, ReleaseRef, Split};
use slipway_core::time::Span;
use slipway_engine::plugin::{
    ConfigSource, LaunchRequest, Observation, PluginError, Scope, Target,
};
use tokio::process::Command;

use crate::TargetError;
use crate::delivery;
use crate::process::{Ended, Pipe, ProcessGroup, Tail, collect};

/// Most of each output stream (stdout, stderr) kept while a command runs: the last 64 KiB.
/// Earlier output is dropped, so a chatty script cannot fill slipway's memory.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// Most of a command's output quoted in a result or an error, which end up in the event log.
pub const DETAIL_LIMIT: usize = 2 * 1024;

/// Most of the expanded command quoted in a message.
const COMMAND_QUOTE_LIMIT: usize = 200;

/// Most of a malformed `observe` output quoted in its error.
const OBSERVE_QUOTE_LIMIT: usize = 500;

/// What `observe` must print, shown when it prints something else.
const OBSERVE_SHAPE: &str =
    r#"{"fleets":[{"release":"RC 1","desired":2,"running":2,"healthy":2}]}"#;

/// Where `config = "file"` writes env files, under slipway's data directory: one private
/// directory per command, removed when the command ends.
const CONFIG_FILES_DIR: &str = "config-files";

/// The name of the env file in its private directory.
const CONFIG_FILE_NAME: &str = "config.env";

/// What a command target needs from the process that hosts it.
#[derive(Clone)]
pub struct CommandSettings {
    /// slipway's artifact cache: an artifact `sha256:HEX` is the file
    /// `<artifact_dir>/sha256/HEX`, which `{artifact}` and `SLIPWAY_ARTIFACT` name.
    pub artifact_dir: PathBuf,
    /// The directory commands run in (usually the config file's); the command table's
    /// `workdir`, when set, is taken relative to it.
    pub workdir: PathBuf,
    /// slipway's data directory: with `config = "file"`, each `launch` and `task` gets its env
    /// file in a private directory under `<data_dir>/config-files/`, removed when it ends.
    pub data_dir: PathBuf,
    /// Where `launch` and `task` of a release that pins a config version read its values
    /// (`crate::TargetContext::config`).
    pub config: Option<Arc<dyn ConfigSource>>,
}

impl std::fmt::Debug for CommandSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSettings")
            .field("artifact_dir", &self.artifact_dir)
            .field("workdir", &self.workdir)
            .field("data_dir", &self.data_dir)
            .field("config", &self.config.as_ref().map(|_| "ConfigSource"))
            .finish()
    }
}

/// The `command` target of one environment.
pub struct CommandTarget {
    environment: String,
    config: CommandTargetConfig,
    /// Absolute, so scripts get a path that works from their own working directory.
    artifact_dir: PathBuf,
    workdir: PathBuf,
    /// `<data_dir>/config-files`, absolute.
    config_files: PathBuf,
    source: Option<Arc<dyn ConfigSource>>,
}

impl std::fmt::Debug for CommandTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandTarget")
            .field("environment", &self.environment)
            .field("config", &self.config)
            .field("artifact_dir", &self.artifact_dir)
            .field("workdir", &self.workdir)
            .field("config_files", &self.config_files)
            .field("source", &self.source.as_ref().map(|_| "ConfigSource"))
            .finish()
    }
}

impl CommandTarget {
    /// The command target of `environment`, which must have `target = "command"` and a command
    /// table whose templates use only placeholders their operation has values for.
    pub fn new(
        environment: &EnvironmentConfig,
        settings: CommandSettings,
    ) -> Result<Self, TargetError> {
        if environment.target != "command" {
            return Err(TargetError::WrongTarget {
                environment: environment.name.clone(),
                target: environment.target.clone(),
                expected: "command",
            });
        }
        let Some(config) = environment.command.clone() else {
            return Err(TargetError::MissingCommands {
                environment: environment.name.clone(),
            });
        };
        for operation in CommandOperation::ALL {
            let Some(template) = config.template(operation) else {
                continue;
            };
            if let Some(placeholder) = template
                .placeholders()
                .find(|p| !operation.placeholders().contains(p))
            {
                return Err(TargetError::Placeholder {
                    environment: environment.name.clone(),
                    operation,
                    placeholder,
                });
            }
            let file_named = template
                .placeholders()
                .any(|p| p == Placeholder::ConfigFile);
            if file_named && config.config != ConfigDelivery::File {
                return Err(TargetError::ConfigFileWithoutFile {
                    environment: environment.name.clone(),
                    operation,
                });
            }
        }
        let workdir = match &config.workdir {
            Some(dir) => settings.workdir.join(dir),
            None => settings.workdir,
        };
        // Env files a killed slipway left behind hold values in clear: gone before any command
        // runs (targets are built at start, before the engine acts).
        let config_files = absolute(settings.data_dir.join(CONFIG_FILES_DIR));
        match std::fs::remove_dir_all(&config_files) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(dir = %config_files.display(), %error, "cannot remove leftover config files");
            }
        }
        Ok(Self {
            environment: environment.name.clone(),
            artifact_dir: absolute(settings.artifact_dir),
            workdir: absolute(workdir),
            config_files,
            source: settings.config,
            config,
        })
    }

    /// The directory commands run in.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The facts every operation has.
    fn facts(&self, scope: &Scope) -> Facts {
        Facts {
            service: scope.service.clone(),
            environment: scope.environment.clone(),
            region: scope.region.clone().unwrap_or_default(),
            ..Facts::default()
        }
    }

    /// The facts of an operation on `release`.
    fn release_facts(&self, scope: &Scope, release: &ReleaseRef) -> Result<Facts, PluginError> {
        let artifact = self.artifact_path(&release.artifact)?;
        Ok(Facts {
            release: Some(ReleaseFacts {
                label: release.label.clone(),
                version: release.version.clone(),
                digest: release.artifact.clone(),
                artifact: artifact.to_string_lossy().into_owned(),
                config: release.config.clone(),
            }),
            ..self.facts(scope)
        })
    }

    /// Where the artifact cache keeps `digest`. Only a well-formed digest is turned into a
    /// path, so a strange one cannot point a script outside the cache.
    fn artifact_path(&self, digest: &str) -> Result<PathBuf, PluginError> {
        let hex = digest.strip_prefix("sha256:").filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        match hex {
            Some(hex) => Ok(self.artifact_dir.join("sha256").join(hex)),
            None => Err(PluginError::new(format!(
                "artifact digest `{digest}` is not `sha256:` followed by 64 lowercase hex digits"
            ))),
        }
    }

    /// Reads the config version `release` pins and prepares it for a `launch` or `task`
    /// command as the environment says: variables in the returned delivery, or an env file it
    /// owns (named in `facts`) that is removed when the delivery is dropped. A release that
    /// pins no version delivers nothing (`{config_file}` is then empty).
    async fn deliver(
        &self,
        scope: &Scope,
        release: &ReleaseRef,
        operation: CommandOperation,
        facts: &mut Facts,
    ) -> Result<Delivery, PluginError> {
        let op = operation.key();
        let values = delivery::read(
            self.source.as_deref(),
            &scope.service,
            &scope.environment,
            release,
        )
        .await
        .map_err(|why| PluginError::new(format!("{op} of {} failed: {why}", release.label)))?;
        let file_mode = self.config.config == ConfigDelivery::File;
        if file_mode {
            facts.config_file = Some(String::new());
        }
        let Some(values) = values else {
            return Ok(Delivery::default());
        };
        facts.config_version = Some(values.version().to_string());
        if !file_mode {
            return Ok(Delivery {
                variables: values.into_pairs(),
                _file: None,
            });
        }
        let file = PrivateFile::write(&self.config_files, CONFIG_FILE_NAME, &values.env_file())
            .map_err(|error| {
                PluginError::new(format!(
                    "{op} of {} failed: cannot write the env file of config version {} of `{}` \
                     in `{}` under {}: {error}",
                    release.label,
                    values.version(),
                    scope.service,
                    scope.environment,
                    self.config_files.display()
                ))
            })?;
        facts.config_file = Some(file.path().to_string_lossy().into_owned());
        Ok(Delivery {
            variables: Vec::new(),
            _file: Some(file),
        })
    }

    /// Runs `operation`'s command with `config`'s values (if any) in its environment; `Ok` only
    /// when it exits 0.
    async fn run(
        &self,
        operation: CommandOperation,
        template: &CommandTemplate,
        facts: &Facts,
        config: &[(String, String)],
        limit: Span,
    ) -> Result<Finished, PluginError> {
        let op = operation.key();
        let script = expand(template, facts, operation)?;
        let mut command = Command::new(&self.config.shell);
        command
            .arg("-c")
            .arg(&script)
            .current_dir(&self.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout can stop everything the script started.
            .process_group(0)
            .kill_on_drop(true);
        // Scripts see only the SLIPWAY_* facts of this call, never inherited ones (such as the
        // CLI's SLIPWAY_TOKEN). Only names are read here; values are never logged.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SLIPWAY_") {
                command.env_remove(name);
            }
        }
        // A config version's keys are never PORT or SLIPWAY_* (`delivery::read` checks them), so
        // the facts set after them are never overridden. Never logged.
        for (name, value) in config {
            command.env(name, value);
        }
        command.env("SLIPWAY_OPERATION", op);
        for (name, value) in facts.variables() {
            command.env(name, value);
        }

        tracing::info!(
            operation = op,
            service = %facts.service,
            env = %facts.environment,
            region = %facts.region,
            key = facts.key.as_deref().unwrap_or(""),
            "running command"
        );
        tracing::debug!(operation = op, command = %script, "command text");
        let started = tokio::time::Instant::now();
        let mut child = command.spawn().map_err(|error| {
            PluginError::new(format!(
                "{op} could not start `{}` in {}: {error}",
                self.config.shell,
                self.workdir.display()
            ))
        })?;
        let mut group = ProcessGroup::new(child.id());
        let mut stdout = Tail::new(OUTPUT_LIMIT);
        let mut stderr = Tail::new(OUTPUT_LIMIT);
        let limit_time = Duration::from_millis(limit.as_millis());
        let ended = collect(&mut child, limit_time, |pipe, chunk| match pipe {
            Pipe::Stdout => stdout.push(chunk),
            Pipe::Stderr => stderr.push(chunk),
        })
        .await;
        let status = match ended {
            Ended::Exited(status) => {
                // The script ended on its own; anything it left running in the background is
                // its business (a launch may start long-lived processes on purpose).
                group.disarm();
                status
            }
            Ended::TimedOut => {
                group.kill();
                // The shell too, in case the group could not be killed; then this returns at
                // once and reaps it.
                let _ = child.start_kill();
                let _ = child.wait().await;
                tracing::warn!(
                    operation = op,
                    env = %facts.environment,
                    timeout = %limit,
                    "command timed out; its process group was killed"
                );
                return Err(PluginError::new(format!(
                    "{op} timed out after {limit}; its process group was killed: {}{}",
                    quote_command(&script),
                    output_section(&stderr, &stdout)
                )));
            }
            Ended::Failed(error) => {
                group.kill();
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(PluginError::new(format!(
                    "{op} could not be waited for: {error}: {}",
                    quote_command(&script)
                )));
            }
        };
        let elapsed =
            Span::from_millis(started.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        tracing::info!(
            operation = op,
            env = %facts.environment,
            %status,
            %elapsed,
            "command finished"
        );
        if status.success() {
            return Ok(Finished {
                operation,
                elapsed,
                stdout,
                stderr,
            });
        }
        let what = match (status.code(), status.signal()) {
            (Some(code), _) => format!("{op} failed with exit code {code}"),
            (None, Some(signal)) => format!("{op} was killed by signal {signal}"),
            (None, None) => format!("{op} failed ({status})"),
        };
        Err(PluginError::new(format!(
            "{what}: {}{}",
            quote_command(&script),
            output_section(&stderr, &stdout)
        )))
    }

    /// Why a task cannot run when the config has no `task` command.
    fn no_task_command(&self, task: &str) -> PluginError {
        PluginError::new(format!(
            "cannot run task `{task}`: the command target of environment `{env}` has no `task` \
             command; add e.g. task = \"./bin/run-task {{task}} {{version}}\" to \
             [environment.{env}.command]",
            env = self.environment
        ))
    }
}

#[async_trait]
impl Target for CommandTarget {
    async fn launch(
        &self,
        key: &EffectKey,
        scope: &Scope,
        request: &LaunchRequest,
    ) -> Result<String, PluginError> {
        let mut facts = self.release_facts(scope, &request.release)?;
        facts.key = Some(key.to_string());
        facts.pools = Some(pools_text(&request.pools));
        facts.count = Some(
            request
                .pools
                .values()
                .map(|&n| u64::from(n))
                .sum::<u64>()
                .to_string(),
        );
        let delivery = self
            .deliver(
                scope,
                &request.release,
                CommandOperation::Launch,
                &mut facts,
            )
            .await?;
        // The launch may not outlive the deploy's launch timeout, which the engine also guards.
        let limit = self.config.timeout.min(request.timeout);
        let done = self
            .run(
                CommandOperation::Launch,
                &self.config.launch,
                &facts,
                &delivery.variables,
                limit,
            )
            .await;
        // The env file is removed when the command ended, whether it succeeded or not.
        drop(delivery);
        Ok(done?.detail())
    }

    async fn set_traffic(
        &self,
        key: &EffectKey,
        scope: &Scope,
        split: &Split,
    ) -> Result<String, PluginError> {
        let weights = weights_text(split);
        let Some(template) = &self.config.traffic else {
            return Ok(format!(
                "no `traffic` command configured: traffic left as the launch and stop scripts \
                 route it (wanted {weights})"
            ));
        };
        let mut facts = self.facts(scope);
        facts.key = Some(key.to_string());
        facts.split = Some(SplitFacts {
            json: serde_json::to_string(split)
                .map_err(|error| PluginError::new(format!("cannot encode the split: {error}")))?,
            weights,
        });
        let done = self
            .run(
                CommandOperation::Traffic,
                template,
                &facts,
                &[],
                self.config.timeout,
            )
            .await?;
        Ok(done.detail())
    }

    async fn stop(
        &self,
        key: &EffectKey,
        scope: &Scope,
        release: &ReleaseRef,
    ) -> Result<String, PluginError> {
        let mut facts = self.release_facts(scope, release)?;
        facts.key = Some(key.to_string());
        let done = self
            .run(
                CommandOperation::Stop,
                &self.config.stop,
                &facts,
                &[],
                self.config.timeout,
            )
            .await?;
        Ok(done.detail())
    }

    async fn run_task(
        &self,
        key: &EffectKey,
        scope: &Scope,
        task: &str,
        release: &ReleaseRef,
    ) -> Result<String, PluginError> {
        let Some(template) = &self.config.task else {
            return Err(self.no_task_command(task));
        };
        let mut facts = self.release_facts(scope, release)?;
        facts.key = Some(key.to_string());
        facts.task = Some(task.to_owned());
        let delivery = self
            .deliver(scope, release, CommandOperation::Task, &mut facts)
            .await?;
        let done = self
            .run(
                CommandOperation::Task,
                template,
                &facts,
                &delivery.variables,
                self.config.timeout,
            )
            .await;
        drop(delivery);
        Ok(done?.detail())
    }

    async fn observe(&self, scope: &Scope) -> Result<Observation, PluginError> {
        let facts = self.facts(scope);
        let done = self
            .run(
                CommandOperation::Observe,
                &self.config.observe,
                &facts,
                &[],
                self.config.timeout,
            )
            .await?;
        parse_observation(&done.stdout)
    }
}

/// What slipway knows when it runs one operation's command; each fact is a placeholder and an
/// environment variable.
#[derive(Debug, Default)]
struct Facts {
    service: String,
    environment: String,
    /// Empty when the environment names no regions.
    region: String,
    release: Option<ReleaseFacts>,
    /// `web=2,worker=1`.
    pools: Option<String>,
    count: Option<String>,
    split: Option<SplitFacts>,
    task: Option<String>,
    key: Option<String>,
    /// The pinned config version's number, when a `launch` or `task` delivers one.
    config_version: Option<String>,
    /// With `config = "file"`, in `launch` and `task`: the env file's path, empty when the
    /// release pins no config version.
    config_file: Option<String>,
}

#[derive(Debug)]
struct ReleaseFacts {
    label: String,
    version: String,
    digest: String,
    artifact: String,
    config: String,
}

#[derive(Debug)]
struct SplitFacts {
    json: String,
    /// `RC 1=1,RC 2=1`.
    weights: String,
}

impl Facts {
    fn value(&self, placeholder: Placeholder) -> Option<&str> {
        let release = self.release.as_ref();
        match placeholder {
            Placeholder::Service => Some(&self.service),
            Placeholder::Environment => Some(&self.environment),
            Placeholder::Region => Some(&self.region),
            Placeholder::Label => release.map(|r| r.label.as_str()),
            Placeholder::Version => release.map(|r| r.version.as_str()),
            Placeholder::Digest => release.map(|r| r.digest.as_str()),
            Placeholder::Artifact => release.map(|r| r.artifact.as_str()),
            Placeholder::Config => release.map(|r| r.config.as_str()),
            Placeholder::Count => self.count.as_deref(),
            Placeholder::Pools => self.pools.as_deref(),
            Placeholder::Weights => self.split.as_ref().map(|s| s.weights.as_str()),
            Placeholder::Task => self.task.as_deref(),
            Placeholder::Key => self.key.as_deref(),
            Placeholder::ConfigFile => self.config_file.as_deref(),
        }
    }

    /// The `SLIPWAY_*` variables of these facts; absent facts set no variable.
    fn variables(&self) -> Vec<(&'static str, &str)> {
        let mut variables = vec![
            ("SLIPWAY_SERVICE", self.service.as_str()),
            ("SLIPWAY_ENVIRONMENT", self.environment.as_str()),
            ("SLIPWAY_REGION", self.region.as_str()),
        ];
        if let Some(release) = &self.release {
            variables.extend([
                ("SLIPWAY_RELEASE", release.label.as_str()),
                ("SLIPWAY_VERSION", release.version.as_str()),
                ("SLIPWAY_DIGEST", release.digest.as_str()),
                ("SLIPWAY_ARTIFACT", release.artifact.as_str()),
                ("SLIPWAY_CONFIG", release.config.as_str()),
            ]);
        }
        let optional = [
            ("SLIPWAY_POOLS", self.pools.as_deref()),
            ("SLIPWAY_COUNT", self.count.as_deref()),
            (
                "SLIPWAY_SPLIT",
                self.split.as_ref().map(|s| s.json.as_str()),
            ),
            (
                "SLIPWAY_WEIGHTS",
                self.split.as_ref().map(|s| s.weights.as_str()),
            ),
            ("SLIPWAY_TASK", self.task.as_deref()),
            ("SLIPWAY_EFFECT_KEY", self.key.as_deref()),
            (delivery::VERSION_VARIABLE, self.config_version.as_deref()),
            (
                delivery::FILE_VARIABLE,
                self.config_file.as_deref().filter(|path| !path.is_empty()),
            ),
        ];
        variables.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        variables
    }
}

/// `web=2,worker=1`, sorted by pool name.
fn pools_text(pools: &std::collections::BTreeMap<String, u32>) -> String {
    let pairs: Vec<String> = pools
        .iter()
        .map(|(pool, n)| format!("{pool}={n}"))
        .collect();
    pairs.join(",")
}

/// `RC 1=1,RC 2=1`: the split's weights by release label, sorted by label.
fn weights_text(split: &Split) -> String {
    let pairs: Vec<String> = split
        .weights
        .iter()
        .map(|(label, weight)| format!("{label}={weight}"))
        .collect();
    pairs.join(",")
}

/// The template with every placeholder replaced by its shell-quoted value.
fn expand(
    template: &CommandTemplate,
    facts: &Facts,
    operation: CommandOperation,
) -> Result<String, PluginError> {
    let mut script = String::with_capacity(template.text().len() + 64);
    for part in template.parts() {
        match part {
            TemplatePart::Text(text) => script.push_str(text),
            TemplatePart::Placeholder(placeholder) => match facts.value(*placeholder) {
                Some(value) => script.push_str(&shell_quote(value)),
                // `CommandTarget::new` refuses such templates; kept as an error, not a panic.
                None => {
                    return Err(PluginError::new(format!(
                        "`{{{}}}` has no value in `{}`",
                        placeholder.name(),
                        operation.key()
                    )));
                }
            },
        }
    }
    Ok(script)
}

/// `value` as one shell word: left as it is when it holds only characters the shell never
/// treats specially, otherwise in single quotes (a `'` inside becomes `'\''`). A hostile
/// version string such as `1.0; rm -rf /` stays one harmless argument.
pub fn shell_quote(value: &str) -> Cow<'_, str> {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+,".contains(&b));
    if plain {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("'{}'", value.replace('\'', r"'\''")))
    }
}

/// A config version handed to one command: its values as variables (`config = "env"`), or an
/// env file that lives exactly as long as this. No `Debug`, so neither can be printed.
#[derive(Default)]
struct Delivery {
    variables: Vec<(String, String)>,
    /// Held, never read: dropping the delivery removes the file.
    _file: Option<PrivateFile>,
}

/// A file alone in a fresh directory only slipway's user can enter (0700), itself readable only
/// by that user (0600). Dropping it removes the directory and the file.
struct PrivateFile {
    dir: PathBuf,
    path: PathBuf,
}

impl PrivateFile {
    /// Writes `text` to `<a new directory under parent>/name`.
    fn write(parent: &Path, name: &str, text: &str) -> std::io::Result<PrivateFile> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        // A new directory, never one that already exists (whoever made it could read the file).
        let dir = loop {
            let dir = parent.join(format!("{:016x}", rand::random::<u64>()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        };
        // From here on, dropping `file` removes the directory, whatever fails.
        let file = PrivateFile {
            path: dir.join(name),
            dir,
        };
        let mut handle = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)?;
        // Not synced: it is read within the command's life and removed after; forcing the
        // values onto the disk would only make them outlive it.
        handle.write_all(text.as_bytes())?;
        Ok(file)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot remove a config version's env file");
        }
    }
}

/// The path made absolute against the current directory, or left as it is if that fails.
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// A command that exited 0.
struct Finished {
    operation: CommandOperation,
    elapsed: Span,
    stdout: Tail,
    stderr: Tail,
}

impl Finished {
    /// `launch finished in 1s200ms` and the last lines it printed (stdout, or stderr when
    /// stdout is empty), at most [`DETAIL_LIMIT`] bytes of them.
    fn detail(&self) -> String {
        format!(
            "{} finished in {}{}",
            self.operation.key(),
            self.elapsed,
            output_section(&self.stdout, &self.stderr)
        )
    }
}

/// `first`'s last lines, or `second`'s when `first` printed nothing, on lines of their own
/// after a colon; empty when neither printed anything.
fn output_section(first: &Tail, second: &Tail) -> String {
    let tail = if first.is_blank() { second } else { first };
    if tail.is_blank() {
        return String::new();
    }
    format!("\n{}", last_lines(&tail.text(), DETAIL_LIMIT))
}

/// The end of `text`, at most `limit` bytes, starting at a line boundary when one is near.
fn last_lines(text: &str, limit: usize) -> String {
    let text = text.trim_end();
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    // Start at a whole line when that keeps most of the budget.
    let tail = match tail.find('\n') {
        Some(newline) if newline < limit / 2 => &tail[newline + 1..],
        _ => tail,
    };
    format!("…{tail}")
}

/// The expanded command, shortened, for messages.
fn quote_command(script: &str) -> String {
    format!("`{}`", shorten(script, COMMAND_QUOTE_LIMIT))
}

/// The start of `text`, at most `limit` bytes, with `…` when cut.
fn shorten(text: &str, limit: usize) -> Cow<'_, str> {
    if text.len() <= limit {
        return Cow::Borrowed(text);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// Reads `observe`'s stdout: the JSON of an [`Observation`].
fn parse_observation(stdout: &Tail) -> Result<Observation, PluginError> {
    let expected = format!("expected JSON like {OBSERVE_SHAPE}");
    if stdout.is_truncated() {
        return Err(PluginError::new(format!(
            "observe printed more than {} KiB on stdout, more than slipway reads; {expected}",
            OUTPUT_LIMIT / 1024
        )));
    }
    let text = stdout.text();
    let text = text.trim();
    if text.is_empty() {
        return Err(PluginError::new(format!(
            "observe printed nothing on stdout; {expected}"
        )));
    }
    serde_json::from_str(text).map_err(|error| {
        PluginError::new(format!(
            "observe printed output that is not the expected JSON ({error}): `{}`; {expected}",
            shorten(text, OBSERVE_QUOTE_LIMIT)
        ))
    })
}
