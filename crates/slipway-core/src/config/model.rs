//! The validated configuration model: what `slipway.toml` means once parsing has succeeded.
//!
//! Every type here is plain data. Parsing and validation live in `parse.rs`; nothing here can fail
//! except [`CommandTemplate::parse`], which splits a command template into text and placeholders
//! so that the parser and the command target read templates the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::Metric;
use crate::time::Span;

/// The whole of one `slipway.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub server: ServerConfig,
    /// Services in file order.
    pub services: Vec<ServiceConfig>,
    /// Environments in promotion order (the order they appear in the file).
    pub environments: Vec<EnvironmentConfig>,
    /// Where slipway's proxy serves each service of each `local` environment (per region): the
    /// addresses of the environments' `listen` tables, the rest assigned by
    /// [`ProxyListener::assign`]. Kept here rather than in [`EnvironmentConfig`] because it is
    /// resolved over the whole file (a default port must not collide with any configured one).
    pub proxy_listeners: Vec<ProxyListener>,
    /// `[prometheus]`, when checks query one.
    pub prometheus: Option<PrometheusConfig>,
    /// `[markers]`: annotations for monitoring.
    pub markers: Markers,
    /// `[[checklist]]`: prerequisites ticked with evidence before a deploy, in file order.
    pub checklist: Vec<crate::checklist::ChecklistItem>,
    /// The calendar files the environments name (`freeze_calendars`, `staffing`), parsed, by
    /// path as written. `parse_config` leaves this empty: the caller reads the files
    /// ([`Config::calendar_files`]) and attaches them ([`Config::attach_calendars`]).
    #[serde(default)]
    pub calendars: BTreeMap<String, crate::ics::Calendar>,
    /// `[provenance]`: the CI keys whose signatures prove where an artifact came from.
    pub provenance: ProvenanceConfig,
    /// `[secrets]`: where the master key of config versions is.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// `[[notify]]`: where notices about deploys are delivered, in file order.
    #[serde(default)]
    pub notify: Vec<super::NotifyDestination>,
    /// `[chat]`: Slack slash commands and buttons.
    #[serde(default)]
    pub chat: super::ChatConfig,
}

impl Config {
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn environment(&self, name: &str) -> Option<&EnvironmentConfig> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// Production: the last environment of the promotion order (file order).
    pub fn production(&self) -> Option<&EnvironmentConfig> {
        self.environments.last()
    }

    /// Staging, where the train cuts from: the environment before production; `None` with
    /// fewer than two environments.
    pub fn staging(&self) -> Option<&EnvironmentConfig> {
        self.environments.iter().rev().nth(1)
    }
}

/// One listener of slipway's proxy: requests to `address` go to the instances of `service` in
/// `environment` (and `region`), split between releases as the running deploy says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyListener {
    pub service: String,
    pub environment: String,
    /// `None` when the environment lists no regions.
    pub region: Option<String>,
    /// `HOST:PORT`.
    pub address: String,
    /// Whether `address` was written in the file (`listen = { idp = "…" }`) rather than assigned.
    pub configured: bool,
}

impl ProxyListener {
    /// The first port assigned to a listener the file does not place.
    pub const FIRST_DEFAULT_PORT: u16 = 7800;
    /// The host of an assigned listener: the loopback interface only, like `[server] listen`.
    pub const DEFAULT_HOST: &'static str = "127.0.0.1";

    /// Every listener of the `local` environments: for each such environment in file order, each
    /// service in file order and each region in order, the configured address or else the next
    /// free port from 127.0.0.1:7800 upwards — skipping every configured port and the server's.
    /// The same file always gives the same ports; pin one with `listen` to keep it when services
    /// or environments are added.
    pub fn assign(
        server: &ServerConfig,
        services: &[ServiceConfig],
        environments: &[EnvironmentConfig],
        configured: &[ProxyListener],
    ) -> Vec<ProxyListener> {
        let port_of = |address: &str| {
            address
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
        };
        let mut taken: std::collections::BTreeSet<u16> = configured
            .iter()
            .filter_map(|l| port_of(&l.address))
            .collect();
        taken.extend(port_of(&server.listen));
        let mut next = Self::FIRST_DEFAULT_PORT;
        let mut listeners = Vec::new();
        for environment in environments.iter().filter(|e| e.target == "local") {
            let regions: Vec<Option<&str>> = if environment.regions.is_empty() {
                vec![None]
            } else {
                environment
                    .regions
                    .iter()
                    .map(|r| Some(r.as_str()))
                    .collect()
            };
            for service in services {
                for region in &regions {
                    let found = configured.iter().find(|l| {
                        l.environment == environment.name
                            && l.service == service.name
                            && l.region.as_deref() == *region
                    });
                    let listener = match found {
                        Some(listener) => listener.clone(),
                        None => {
                            while taken.contains(&next) {
                                next = next.saturating_add(1);
                            }
                            taken.insert(next);
                            ProxyListener {
                                service: service.name.clone(),
                                environment: environment.name.clone(),
                                region: region.map(str::to_owned),
                                address: format!("{}:{next}", Self::DEFAULT_HOST),
                                configured: false,
                            }
                        }
                    };
                    listeners.push(listener);
                }
            }
        }
        listeners
    }
}

/// `[server]`: where the control plane listens and keeps its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// Socket address, default `127.0.0.1:7700`.
    pub listen: String,
    /// Directory for the SQLite database, artifact cache and logs; default `.slipway`.
    pub data_dir: String,
    /// A `postgres://` URL for a highly available control plane; SQLite in `data_dir` when absent.
    pub database: Option<String>,
    /// The address people reach slipway at (`https://slipway.example.org`), for links in
    /// notifications; `http://` and `listen` when absent.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7700".to_owned(),
            data_dir: ".slipway".to_owned(),
            database: None,
            public_url: None,
        }
    }
}

/// `[[service]]`: something deployed as a unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub name: String,
    /// Shell command that starts one instance; `$PORT` is set by the target.
    pub start: String,
    /// Migration task run once with the new artifact before any new instance starts.
    pub migrate: Option<String>,
    pub health: HealthCheck,
    /// Pools by name, sorted by name (a BTreeMap, so plans derived from it are stable).
    pub pools: BTreeMap<String, Pool>,
    /// `[service.config]`: the rules its config versions (settings and secrets) must meet.
    #[serde(default, skip_serializing_if = "ConfigRules::is_empty")]
    pub config: ConfigRules,
    /// `[service.source]`: the service's git repository, for release trains and the 50/50
    /// compatibility check. `None` when the service names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceConfig>,
}

/// `[service.source]`: `repo = "../idp"`, `branch = "main"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// Path of a local clone, as written: a relative one is relative to the config file's
    /// directory (the caller resolves it).
    pub repo: String,
    /// The main branch: what release candidates are cut from and picks must be on.
    pub branch: String,
    /// Release trains (`docs/releases.md`): the release branch's name, `{date}` standing for
    /// the cut's date (`stages/rc-{date}`), the production line, the SSH key that signs the
    /// production tag (relative to the config file) and where published notes are POSTed.
    #[serde(default)]
    pub train: TrainSettings,
    /// `[service.compat]`: suppressions of the 50/50 compatibility check of this repository.
    #[serde(default, skip_serializing_if = "CompatConfig::is_empty")]
    pub compat: CompatConfig,
}

impl SourceConfig {
    pub const DEFAULT_BRANCH: &'static str = "main";
}

/// The release-train keys of `[service.source]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub branch_pattern: String,
    pub prod_branch: String,
    pub signing_key: Option<String>,
    pub notes_webhook: Option<String>,
    /// Signs the notes webhook's payloads like a `[[notify]]` webhook's (`notes_secret_file` or
    /// `notes_secret_env`); unsigned without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes_secret: Option<super::SecretSource>,
    /// `[[service.source.schedule]]`: when the train acts by itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<TrainSchedule>,
    /// `[service.source.changelog]`: the changelog's categories; `None` keeps seed 000's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog: Option<ChangelogConfig>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            branch_pattern: "stages/rc-{date}".to_owned(),
            prod_branch: "stages/prod".to_owned(),
            signing_key: None,
            notes_webhook: None,
            notes_secret: None,
            schedules: Vec::new(),
            changelog: None,
        }
    }
}

/// One `[[service.source.schedule]]`: `cron` read in `zone`, and what to do then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainSchedule {
    /// Five fields, checked by `crate::cron::Cron::parse`.
    pub cron: String,
    /// An IANA time zone (`America/New_York`); UTC by default.
    pub zone: String,
    pub action: TrainAction,
    /// Where a deploy goes; `None` for a cut.
    pub environment: Option<String>,
}

impl TrainSchedule {
    /// Names the schedule in the store and the audit log: a change of any part is a new
    /// schedule, which starts from the time it is first seen.
    pub fn key(&self, service: &str) -> String {
        let action = match self.action {
            TrainAction::Cut => "cut",
            TrainAction::Deploy => "deploy",
            TrainAction::DeployArtifact => "deploy-artifact",
        };
        format!(
            "{service}:{action}:{}:{}@{}",
            self.environment.as_deref().unwrap_or("-"),
            self.cron,
            self.zone
        )
    }
}

/// What a train schedule does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainAction {
    /// `slipway release cut SERVICE`.
    Cut,
    /// A deploy of the newest release to `environment` (it waits for approvals where the
    /// environment wants them).
    Deploy,
    /// A deploy of the newest artifact built from the main branch to `environment`, released
    /// first (`full`) when no release has it yet.
    DeployArtifact,
}

/// `[service.config]`: a rule per key of the service's config versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRules {
    pub keys: BTreeMap<String, KeyRule>,
}

impl ConfigRules {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The rule of one key: `QUEUE = { required = true, type = "string", pattern = "…",
/// allowed = […], unique = "services", group = "queues", secret = false }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRule {
    /// Every version must set it.
    pub required: bool,
    /// What its value must parse as.
    pub kind: ValueKind,
    /// A regular expression the whole value must match.
    pub pattern: Option<String>,
    /// The only values it may take (empty: any).
    pub allowed: Vec<String>,
    /// Where no other config version may hold the same value.
    pub unique: Option<Uniqueness>,
    /// Keys of one uniqueness group are compared with each other (default: the key's name), so
    /// `JOBS_QUEUE` of one service and `QUEUE` of another can be kept apart.
    pub group: Option<String>,
    /// Whether the value is a secret; `None` lets `config set` decide (`--secret`, or a name
    /// that looks like one).
    pub secret: Option<bool>,
}

/// The type a config value must have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    #[default]
    String,
    Int,
    Bool,
    Url,
    Duration,
}

/// Where a value must be unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Uniqueness {
    /// No other service holds it in the same environment.
    Services,
    /// The same service holds it in no other environment.
    Environments,
    /// No other service or environment holds it.
    Everywhere,
}

/// `[secrets]`: the master key that wraps each config version's data key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsConfig {
    /// File holding the master key (32 random bytes, base64 or hex); relative to the config
    /// file. The `SLIPWAY_MASTER_KEY` environment variable, when set, is used instead.
    pub key_file: Option<String>,
    /// Keys used before, still accepted to read versions until `slipway config rotate-key`
    /// re-wraps them under the current key.
    pub previous_key_files: Vec<String>,
}

/// How a target decides an instance is healthy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// HTTP path probed on the instance, default `/up`.
    pub path: String,
    pub interval: Span,
    pub timeout: Span,
    /// Consecutive successes before an instance counts as healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures before an instance counts as unhealthy.
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: "/up".to_owned(),
            interval: Span::from_secs(1),
            timeout: Span::from_secs(5),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
        }
    }
}

/// A group of instances with one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Desired number of instances per region.
    pub count: u32,
    /// Whether the proxy sends traffic to this pool (`web`) or not (`worker`).
    pub traffic: bool,
}

impl Pool {
    /// The pools of a service that names none: one `web` instance that takes traffic.
    pub fn default_pools() -> BTreeMap<String, Pool> {
        BTreeMap::from([(
            "web".to_owned(),
            Pool {
                count: 1,
                traffic: true,
            },
        )])
    }
}

/// The targets an environment may name. `aws-asg` and `kubernetes` are accepted so a config can
/// be written ahead of their drivers.
pub const KNOWN_TARGETS: &[&str] = &["local", "command", "aws-asg", "kubernetes"];

/// `[environment.NAME]`: where a service runs and the policy a deploy there obeys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentConfig {
    pub name: String,
    /// Driver name: `local`, `command`, later `aws-asg`, `kubernetes`.
    pub target: String,
    /// Regions deployed one wave each, in order; empty means one unnamed region.
    pub regions: Vec<String>,
    pub policy: Policy,
    /// `[environment.NAME.command]`: the scripts of a `command` target. Present exactly when
    /// `target = "command"`.
    pub command: Option<CommandTargetConfig>,
}

/// `[environment.NAME.command]`: one shell command per target operation, for fleets driven by a
/// team's own scripts (`./bin/asg-recycle prod idp`). `docs/targets.md` is the scripts' contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandTargetConfig {
    /// Ensures the release's instances run healthy.
    pub launch: CommandTemplate,
    /// Routes traffic; without it a traffic change does nothing (the scripts route traffic
    /// themselves, e.g. behind a load balancer that sends requests to every healthy instance).
    pub traffic: Option<CommandTemplate>,
    /// Drains and stops a release's instances.
    pub stop: CommandTemplate,
    /// Runs a one-off task (`migrate`); without it a deploy with a migration fails at that step.
    pub task: Option<CommandTemplate>,
    /// Prints what runs as JSON.
    pub observe: CommandTemplate,
    /// Longest any one command may run before its process group is killed (default 10m).
    pub timeout: Span,
    /// The shell that runs each command as `SHELL -c COMMAND` (default `/bin/sh`).
    pub shell: String,
    /// Directory the commands run in, as written; the caller resolves a relative one.
    pub workdir: Option<String>,
    /// How `launch` and `task` receive the pinned config version (`config = "env"` or `"file"`).
    #[serde(default)]
    pub config: ConfigDelivery,
}

/// How a `command` target hands a config version to its scripts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigDelivery {
    /// As environment variables of `launch` and `task` (default).
    #[default]
    Env,
    /// As an env file (`KEY=value` lines, mode 0600) named by `SLIPWAY_CONFIG_FILE` and the
    /// `{config_file}` placeholder, removed when the command ends.
    File,
}

impl CommandTargetConfig {
    /// The default of `timeout`.
    pub const DEFAULT_TIMEOUT: Span = Span::from_secs(10 * 60);
    /// The default of `shell`.
    pub const DEFAULT_SHELL: &'static str = "/bin/sh";

    /// The template configured for `operation`, if any.
    pub fn template(&self, operation: CommandOperation) -> Option<&CommandTemplate> {
        match operation {
            CommandOperation::Launch => Some(&self.launch),
            CommandOperation::Traffic => self.traffic.as_ref(),
            CommandOperation::Stop => Some(&self.stop),
            CommandOperation::Task => self.task.as_ref(),
            CommandOperation::Observe => Some(&self.observe),
        }
    }
}

/// The operations a command target runs a command for; each is a key of the command table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOperation {
    Launch,
    Traffic,
    Stop,
    Task,
    Observe,
}

impl CommandOperation {
    pub const ALL: [CommandOperation; 5] = [
        Self::Launch,
        Self::Traffic,
        Self::Stop,
        Self::Task,
        Self::Observe,
    ];

    /// Its key in the command table, also `SLIPWAY_OPERATION` and the name used in messages.
    pub fn key(self) -> &'static str {
        match self {
            Self::Launch => "launch",
            Self::Traffic => "traffic",
            Self::Stop => "stop",
            Self::Task => "task",
            Self::Observe => "observe",
        }
    }

    /// Whether a command table must configure it.
    pub fn is_required(self) -> bool {
        matches!(self, Self::Launch | Self::Stop | Self::Observe)
    }

    /// The placeholders its template may use: the facts slipway has for that operation.
    pub fn placeholders(self) -> &'static [Placeholder] {
        use Placeholder::*;
        match self {
            Self::Launch => &[
                Service,
                Environment,
                Region,
                Label,
                Version,
                Digest,
                Artifact,
                Config,
                ConfigFile,
                Count,
                Pools,
                Key,
            ],
            Self::Traffic => &[Service, Environment, Region, Weights, Key],
            Self::Stop => &[
                Service,
                Environment,
                Region,
                Label,
                Version,
                Digest,
                Artifact,
                Config,
                Key,
            ],
            Self::Task => &[
                Service,
                Environment,
                Region,
                Label,
                Version,
                Digest,
                Artifact,
                Config,
                ConfigFile,
                Task,
                Key,
            ],
            Self::Observe => &[Service, Environment, Region],
        }
    }
}

/// A `{name}` in a command template, replaced by a shell-quoted value when the command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    /// The service's name.
    Service,
    /// The environment's name.
    Environment,
    /// The region, empty when the environment names none.
    Region,
    /// The release's label, `RC 112`; fleets are named by it.
    Label,
    /// The artifact's version string.
    Version,
    /// The artifact's digest, `sha256:…`.
    Digest,
    /// Path of the artifact in slipway's artifact cache.
    Artifact,
    /// Hash of the release's config version.
    Config,
    /// Path of the env file holding the pinned config version, with `config = "file"` only
    /// (`launch` and `task`).
    ConfigFile,
    /// Total number of instances wanted, over all pools.
    Count,
    /// Instances wanted per pool: `web=2,worker=1`.
    Pools,
    /// Traffic weights per release label: `RC 1=1,RC 2=1`.
    Weights,
    /// The task's name (`migrate`).
    Task,
    /// The effect's idempotency key.
    Key,
}

impl Placeholder {
    pub const ALL: [Placeholder; 14] = [
        Self::Service,
        Self::Environment,
        Self::Region,
        Self::Label,
        Self::Version,
        Self::Digest,
        Self::Artifact,
        Self::Config,
        Self::ConfigFile,
        Self::Count,
        Self::Pools,
        Self::Weights,
        Self::Task,
        Self::Key,
    ];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Environment => "environment",
            Self::Region => "region",
            Self::Label => "label",
            Self::Version => "version",
            Self::Digest => "digest",
            Self::Artifact => "artifact",
            Self::Config => "config",
            Self::ConfigFile => "config_file",
            Self::Count => "count",
            Self::Pools => "pools",
            Self::Weights => "weights",
            Self::Task => "task",
            Self::Key => "key",
        }
    }

    pub fn from_name(name: &str) -> Option<Placeholder> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// A shell command with placeholders, as written in `[environment.NAME.command]`.
///
/// `{name}` (letters, digits and `_`) is a placeholder; `{{` and `}}` are literal braces; the
/// shell's own `${NAME}` is left alone, as is any other brace. Its parts are private so that a
/// template always names known placeholders only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandTemplate {
    text: String,
    parts: Vec<TemplatePart>,
}

/// A piece of a [`CommandTemplate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    /// Shell text, passed through as it is (with `{{`/`}}` already made single braces).
    Text(String),
    Placeholder(Placeholder),
}

/// The placeholders a template names that do not exist, in the order written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPlaceholders {
    pub names: Vec<String>,
}

impl std::fmt::Display for UnknownPlaceholders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.names.iter().map(|n| format!("`{{{n}}}`")).collect();
        write!(f, "unknown placeholder {}", names.join(", "))
    }
}

impl std::error::Error for UnknownPlaceholders {}

impl CommandTemplate {
    /// Splits `text` into shell text and placeholders; every unknown `{name}` is an error.
    pub fn parse(text: &str) -> Result<CommandTemplate, UnknownPlaceholders> {
        let mut parts = Vec::new();
        let mut unknown = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{{") {
                literal.push('{');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("}}") {
                literal.push('}');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("${") {
                // The shell's parameter expansion, kept whole so its name is not a placeholder.
                let end = after.find('}').map_or(after.len(), |i| i + 1);
                literal.push_str("${");
                literal.push_str(&after[..end]);
                rest = &after[end..];
            } else if let Some(name) = placeholder_name(rest) {
                match Placeholder::from_name(name) {
                    Some(placeholder) => {
                        if !literal.is_empty() {
                            parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
                        }
                        parts.push(TemplatePart::Placeholder(placeholder));
                    }
                    None => unknown.push(name.to_owned()),
                }
                rest = &rest[name.len() + 2..];
            } else {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !literal.is_empty() {
            parts.push(TemplatePart::Text(literal));
        }
        if unknown.is_empty() {
            Ok(CommandTemplate {
                text: text.to_owned(),
                parts,
            })
        } else {
            Err(UnknownPlaceholders { names: unknown })
        }
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// The placeholders it uses, in the order written (repeats included).
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts.iter().filter_map(|part| match part {
            TemplatePart::Placeholder(placeholder) => Some(*placeholder),
            TemplatePart::Text(_) => None,
        })
    }
}

/// The name of the `{name}` that `text` starts with, if it starts with one.
fn placeholder_name(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('{')?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

impl TryFrom<String> for CommandTemplate {
    type Error = UnknownPlaceholders;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        CommandTemplate::parse(&text)
    }
}

impl From<CommandTemplate> for String {
    fn from(template: CommandTemplate) -> String {
        template.text
    }
}

/// The release policy of one environment. Defaults are the unprotected ones; a protected
/// environment gets the production defaults of DESIGN.md for fields it leaves out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub protected: bool,
    pub approvals: Option<ApprovalPolicy>,
    pub go_no_go: bool,
    /// Whether the go must come from someone other than the person who started the deploy.
    pub go_by_other: bool,
    pub windows: Vec<Window>,
    pub freezes: Vec<Freeze>,
    /// `time_zone`: where freezes by day and date, all-day holidays and absences are read.
    /// Default: the first window's zone, else UTC.
    pub time_zone: String,
    /// `freeze_calendars`: ICS files whose events are freezes (holidays).
    pub freeze_calendars: Vec<CalendarFile>,
    /// `staffing = { calendar, max_out }`: no deploy while more people are out.
    pub staffing: Option<Staffing>,
    pub canary: Option<CanaryPolicy>,
    /// Minimum time in the 50/50 state; zero skips the bake step.
    pub bake: Span,
    pub confirm_scale_in: bool,
    /// Delay after scale-in before the post-verify check; `None` skips the step.
    pub post_verify: Option<Span>,
    pub checks: Vec<Check>,
    /// How checks read numbers and compare a canary with its baseline.
    pub analysis: Analysis,
    /// Verification that stays inconclusive longer than this counts as failed (default 15m).
    pub inconclusive_limit: Span,
    /// How often checks run while a step is being verified (default 30s).
    pub analysis_interval: Span,
    /// Longest a launch may take to become healthy before it counts as failed (default 10m).
    pub launch_timeout: Span,
    /// Whether a deploy needs an artifact signed by a trusted CI key (`provenance = …`;
    /// required by default in a protected environment).
    pub provenance: ProvenanceRequirement,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            protected: false,
            approvals: None,
            go_no_go: false,
            go_by_other: true,
            windows: Vec::new(),
            freezes: Vec::new(),
            time_zone: "UTC".to_owned(),
            freeze_calendars: Vec::new(),
            staffing: None,
            canary: None,
            bake: Span::ZERO,
            confirm_scale_in: false,
            post_verify: None,
            checks: Vec::new(),
            analysis: Analysis::defaults_for("local"),
            inconclusive_limit: Span::from_secs(15 * 60),
            analysis_interval: Span::from_secs(30),
            launch_timeout: Span::from_secs(10 * 60),
            provenance: ProvenanceRequirement::Off,
        }
    }
}

impl Policy {
    /// The production defaults of DESIGN.md, used for a `protected = true` environment before
    /// its own fields are applied: one approval that expires after 30 minutes, a go/no-go, a
    /// 15-minute bake, confirmed scale-in and a post-verify check an hour later.
    pub fn protected() -> Self {
        Self {
            protected: true,
            approvals: Some(ApprovalPolicy::default()),
            go_no_go: true,
            bake: Span::from_secs(15 * 60),
            confirm_scale_in: true,
            post_verify: Some(Span::from_secs(60 * 60)),
            provenance: ProvenanceRequirement::Required,
            ..Self::default()
        }
    }
}

/// `provenance = "required" | "off"` of an environment: whether its deploys need an artifact
/// signed by a key of `[provenance]` (`docs/provenance.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvenanceRequirement {
    /// Preflight refuses an artifact without a valid signature of a trusted key.
    Required,
    /// Nothing is checked.
    #[default]
    Off,
}

/// `[provenance]`: `keys = [{ name = "ci", public_key = "ed25519:…" }]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceConfig {
    /// The public keys whose signatures slipway trusts, in file order; names and keys unique.
    pub keys: Vec<crate::provenance::TrustedKey>,
}

/// `approvals = { required = 1, expires = "30m", roles = ["approver"], not_authors = true }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub required: u32,
    pub expires: Span,
    /// Roles whose approvals count; empty means approvers and admins.
    pub roles: Vec<crate::deploy::Role>,
    /// Refuse approvals from authors of the release's commits.
    pub not_authors: bool,
}

impl Default for ApprovalPolicy {
    /// One approval, valid for 30 minutes: "immediately preceding release".
    fn default() -> Self {
        Self {
            required: 1,
            expires: Span::from_secs(30 * 60),
            roles: Vec::new(),
            not_authors: false,
        }
    }
}

/// `canary = { share = "10%", duration = "10m" }`, or `header = "X-Tenant: internal"` for an
/// internal-tenant canary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryPolicy {
    /// Share of live traffic in basis points (10% = 1000).
    pub share_bp: u32,
    pub duration: Span,
    /// Number of canary instances per traffic pool (default 1).
    pub instances: u32,
    /// Route requests carrying this header (`Name: value`) to the canary instead of a share.
    pub header: Option<String>,
}

/// A weekly deploy window: `mon-thu 09:00-16:00 America/New_York`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The text as written, kept for messages.
    pub text: String,
    /// Days of the week, Monday = 0 .. Sunday = 6.
    pub days: Vec<u8>,
    /// Minutes since midnight, start inclusive, end exclusive.
    pub start_minute: u16,
    pub end_minute: u16,
    /// IANA time zone name.
    pub time_zone: String,
}

/// A period when no deploy may start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub text: String,
    pub kind: FreezeKind,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FreezeKind {
    /// Every week on these days (Monday = 0).
    Weekdays(Vec<u8>),
    /// A range of calendar dates, both ends inclusive, as `YYYY-MM-DD`.
    Dates { first: String, last: String },
}

/// A calendar file named in the config: its path as written (relative to the config file's
/// directory) and where it is written, for messages about the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarFile {
    pub path: String,
    /// 1-based line and column of the path in the config file.
    pub line: usize,
    pub column: usize,
}

/// `staffing = { calendar = "absences.ics", max_out = 2, team = 6 }`: each event of the
/// calendar is one person's absence; no deploy while more than `max_out` people are out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staffing {
    pub calendar: CalendarFile,
    pub max_out: u32,
    /// The team's size, for messages (`1 of 6 out`).
    pub team: Option<u32>,
}

/// One check a verification runs: `{ metric = "error_rate", max = "1%" }`, a Prometheus query
/// with limits, an HTTP probe of the new instances or a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// How events and messages name it: the metric's name, `name = …` as written, `probe PATH`
    /// or `command`.
    pub name: String,
    pub kind: CheckKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckKind {
    /// A metric slipway knows, read from the environment's metric source over the window.
    Metric {
        metric: Metric,
        min: Option<Threshold>,
        max: Option<Threshold>,
    },
    /// `{ name = "queue depth", query = "…", max = 100 }`: a PromQL template (the placeholders
    /// of [`PrometheusConfig::query`]) whose value is judged against the limits. Needs
    /// `[prometheus]`.
    Query {
        query: String,
        min: Option<Threshold>,
        max: Option<Threshold>,
    },
    /// `{ probe = "/login", status = 200, body = "Sign in" }`: a GET to every healthy new
    /// instance, which must answer `status` (and contain `body`) within `timeout`.
    Probe {
        path: String,
        status: u16,
        body: Option<String>,
        timeout: Span,
    },
    /// `{ command = "bin/check-orders", timeout = "30s" }`: a shell command run with the check's
    /// facts in `SLIPWAY_*` variables; exit 0 passes, 75 (EX_TEMPFAIL) is no data, anything
    /// else fails. Named `command TEXT` unless `name` is given.
    Command { command: String, timeout: Span },
}

impl CheckKind {
    /// The default `timeout` of probes and commands.
    pub const DEFAULT_PROBE_TIMEOUT: Span = Span::from_secs(5);
    pub const DEFAULT_COMMAND_TIMEOUT: Span = Span::from_secs(30);
    /// The longest `timeout` a probe, a command or a Prometheus query may have: every check of
    /// a verification runs at once and the whole must answer within a minute (a check that
    /// holds the engine holds every deploy's rollback).
    pub const MAX_TIMEOUT: Span = Span::from_secs(45);
}

/// Where the named metrics of an environment's checks come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSourceKind {
    /// slipway's own proxy (`local` environments): per version, counted as requests pass.
    Proxy,
    /// The `[prometheus]` server, with the queries of [`PrometheusConfig::query`].
    Prometheus,
}

/// `analysis = { … }`: how checks read their numbers and how a canary is compared with the
/// baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Default: `proxy` for a `local` environment, `prometheus` otherwise.
    pub source: MetricSourceKind,
    /// Each check looks back this far (but not before the step's traffic began); default 5m.
    pub window: Span,
    /// One comparison sample per step of the window; default 10s.
    pub step: Span,
    /// A threshold over fewer requests than this is no data; default 10.
    pub min_requests: u64,
    /// A comparison with fewer samples on either side is no data; default 10.
    pub min_samples: u32,
    /// A comparison fails a metric only at this confidence; default 0.95.
    pub confidence: f64,
    /// Score levels: pass at or above `pass_score`, marginal (inconclusive) at or above
    /// `marginal_score`, fail below; defaults 95 and 75.
    pub pass_score: f64,
    pub marginal_score: f64,
    /// Metrics compared between canary and baseline while both take traffic.
    pub compare: Vec<Comparison>,
}

impl Analysis {
    /// The defaults for an environment whose target is `target`.
    pub fn defaults_for(target: &str) -> Analysis {
        Analysis {
            source: if target == "local" {
                MetricSourceKind::Proxy
            } else {
                MetricSourceKind::Prometheus
            },
            window: Span::from_secs(5 * 60),
            step: Span::from_secs(10),
            min_requests: 10,
            min_samples: 10,
            confidence: 0.95,
            pass_score: 95.0,
            marginal_score: 75.0,
            compare: Vec::new(),
        }
    }
}

/// `{ metric = "latency_p99", allowed_increase = "20%" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub metric: Metric,
    /// For `error_rate` in percentage points (0.01 = one point more than the baseline); for
    /// every other metric relative to the baseline (0.2 = 20% worse).
    pub allowed_increase: f64,
}

/// `[prometheus]`: the server checks query when an environment's source is `prometheus` or a
/// check has a `query`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrometheusConfig {
    /// Base URL, `http://127.0.0.1:9090`.
    pub url: String,
    /// Longest a query may take; default 10s.
    pub timeout: Span,
    /// `[prometheus.queries]`: PromQL templates that replace the built-in query of a metric.
    pub queries: BTreeMap<Metric, String>,
}

impl PrometheusConfig {
    /// The default of `timeout`.
    pub const DEFAULT_TIMEOUT: Span = Span::from_secs(10);

    /// The PromQL template of `metric`: the configured one, or the built-in query over the
    /// metrics slipway's proxy exports (`slipway_proxy_*`, scraped from slipway's `/metrics`).
    /// Placeholders: `{service}`, `{env}`, `{region}` (empty without regions), `{route}` (the
    /// region label of slipway's proxy: `ENV` or `ENV/REGION`), `{release}` (`RC 12`),
    /// `{version}` (the artifact's version) and `{window}` (a PromQL duration, `300s`).
    pub fn query(&self, metric: Metric) -> String {
        if let Some(query) = self.queries.get(&metric) {
            return query.clone();
        }
        let selector = r#"service="{service}",region="{route}",version="{release}""#;
        match metric {
            Metric::ErrorRate => format!(
                r#"sum(increase(slipway_proxy_responses_total{{{selector},class="5xx"}}[{{window}}])) / sum(increase(slipway_proxy_responses_total{{{selector}}}[{{window}}]))"#
            ),
            Metric::RequestRate => {
                format!(r#"sum(rate(slipway_proxy_responses_total{{{selector}}}[{{window}}]))"#)
            }
            Metric::LatencyMean => format!(
                r#"1000 * sum(increase(slipway_proxy_response_duration_seconds_sum{{{selector}}}[{{window}}])) / sum(increase(slipway_proxy_response_duration_seconds_count{{{selector}}}[{{window}}]))"#
            ),
            Metric::LatencyP50 | Metric::LatencyP90 | Metric::LatencyP99 => {
                let q = metric.quantile().unwrap_or(0.99);
                format!(
                    r#"1000 * histogram_quantile({q}, sum by (le) (increase(slipway_proxy_response_duration_seconds_bucket{{{selector}}}[{{window}}])))"#
                )
            }
        }
    }

    /// The built-in request count behind a metric's value over `{window}`, used for
    /// `min_requests`.
    pub fn requests_query(&self) -> String {
        r#"sum(increase(slipway_proxy_responses_total{service="{service}",region="{route}",version="{release}"}[{window}]))"#.to_owned()
    }
}

/// `[markers]`: deploy start, end and rollback posted to monitoring as annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Markers {
    /// Grafana's annotation API (`POST {url}/api/annotations`).
    pub grafana: Option<GrafanaMarkers>,
    /// Generic JSON webhooks, each sent every marker.
    pub webhooks: Vec<String>,
}

/// `[markers.grafana]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrafanaMarkers {
    /// Base URL of Grafana, `http://grafana.internal:3000`.
    pub url: String,
    /// The environment variable holding a service-account token (sent as a bearer token).
    pub token_env: Option<String>,
    /// Tags added to every annotation, after slipway's own (`slipway`, service, environment).
    pub tags: Vec<String>,
}

/// A threshold value with its unit resolved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    /// A ratio: `"1%"` is 0.01.
    Ratio(f64),
    /// A duration in milliseconds: `"500ms"`.
    Millis(f64),
    /// A plain number.
    Number(f64),
}

impl Threshold {
    /// The number, in the unit of its kind (a ratio, milliseconds, a plain number).
    pub fn value(self) -> f64 {
        match self {
            Threshold::Ratio(v) | Threshold::Millis(v) | Threshold::Number(v) => v,
        }
    }

    /// The unit a value compared with it is in.
    pub fn unit(self) -> crate::analysis::Unit {
        use crate::analysis::Unit;
        match self {
            Threshold::Ratio(_) => Unit::Ratio,
            Threshold::Millis(_) => Unit::Millis,
            Threshold::Number(_) => Unit::Number,
        }
    }
}

/// `[service.compat]`: settings of the 50/50 compatibility check (kept with the service's
/// `[service.source]`, whose repository it reads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatConfig {
    /// Findings known to be safe, each with the reason (recorded when a deploy relies on it).
    pub ignore: Vec<CompatIgnore>,
}

impl CompatConfig {
    pub fn is_empty(&self) -> bool {
        self.ignore.is_empty()
    }
}

/// `{ rule = "…", path = "…", reason = "…" }` of `[service.compat] ignore`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatIgnore {
    /// A rule id of `docs/compat.md`, or `*`.
    pub rule: String,
    /// A path of the repository: a file, a folder ending in `/`, or a prefix ending in `*`.
    pub path: String,
    pub reason: String,
}

/// `[service.source.changelog]`: the categories a train's changelog is grouped in. Plain names:
/// slipway-release turns them into its `Categories` (`docs/releases.md`). The parser has checked
/// what `Categories` would refuse: a non-empty list of distinct names (ignoring case, spaces and
/// hyphens) without commas, `features`, `fixes` and `other` each one of them, and the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangelogConfig {
    /// In the order the changelog shows them.
    pub categories: Vec<String>,
    /// Where Conventional Commits of type `feat` go (a listed name, as listed).
    pub features: String,
    /// Where `fix` commits go.
    pub fixes: String,
    /// Where every other type goes (`perf`, `refactor`, `docs`, `chore`…).
    pub other: String,
    /// How similar (0 to 1) a written category must be to a listed one to be taken as its
    /// misspelling; `None` keeps slipway-release's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// The parser accepts only a finite `threshold` (between 0 and 1), so equality is reflexive and
/// `SourceConfig` keeps its `Eq`.
impl Eq for ChangelogConfig {}

/// How a changelog category is compared: lower case, hyphens and underscores as spaces, runs
/// of spaces as one — "User-Facing  improvements" and "user facing improvements" are the same
/// category. The config's checks and slipway-release's changelog both use it, so what the
/// parser accepts is what the changelog accepts.
pub fn normalise_category(name: &str) -> String {
    name.replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}
