//! The validated configuration model: what `slipway.toml` means once parsing has succeeded.
//!
//! Every type here is plain data. Parsing and validation live in `parse.rs`; nothing here can fail.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Span;

/// The whole of one `slipway.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub server: ServerConfig,
    /// Services in file order.
    pub services: Vec<ServiceConfig>,
    /// Environments in promotion order (the order they appear in the file).
    pub environments: Vec<EnvironmentConfig>,
}

impl Config {
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn environment(&self, name: &str) -> Option<&EnvironmentConfig> {
        self.environments.iter().find(|e| e.name == name)
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7700".to_owned(),
            data_dir: ".slipway".to_owned(),
            database: None,
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
}

/// The release policy of one environment. Defaults are the unprotected ones; a protected
/// environment gets the production defaults of DESIGN.md for fields it leaves out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub protected: bool,
    pub approvals: Option<ApprovalPolicy>,
    pub go_no_go: bool,
    pub windows: Vec<Window>,
    pub freezes: Vec<Freeze>,
    pub canary: Option<CanaryPolicy>,
    /// Minimum time in the 50/50 state; zero skips the bake step.
    pub bake: Span,
    pub confirm_scale_in: bool,
    /// Delay after scale-in before the post-verify check; `None` skips the step.
    pub post_verify: Option<Span>,
    pub checks: Vec<Check>,
    /// Verification that stays inconclusive longer than this counts as failed (default 15m).
    pub inconclusive_limit: Span,
    /// How often checks run while a step is being verified (default 30s).
    pub analysis_interval: Span,
    /// Longest a launch may take to become healthy before it counts as failed (default 10m).
    pub launch_timeout: Span,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            protected: false,
            approvals: None,
            go_no_go: false,
            windows: Vec::new(),
            freezes: Vec::new(),
            canary: None,
            bake: Span::ZERO,
            confirm_scale_in: false,
            post_verify: None,
            checks: Vec::new(),
            inconclusive_limit: Span::from_secs(15 * 60),
            analysis_interval: Span::from_secs(30),
            launch_timeout: Span::from_secs(10 * 60),
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
            ..Self::default()
        }
    }
}

/// `approvals = { required = 1, expires = "30m" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub required: u32,
    pub expires: Span,
}

impl Default for ApprovalPolicy {
    /// One approval, valid for 30 minutes: "immediately preceding release".
    fn default() -> Self {
        Self {
            required: 1,
            expires: Span::from_secs(30 * 60),
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

/// One threshold check: `{ metric = "error_rate", max = "1%" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub metric: String,
    pub min: Option<Threshold>,
    pub max: Option<Threshold>,
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
