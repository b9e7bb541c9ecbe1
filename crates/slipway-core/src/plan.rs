//! Plan derivation: the ordered steps a deploy runs, computed from an environment's policy.
//!
//! A plan is data. It is stored with the deploy (so a later config change cannot alter a running
//! deploy) and hashed (so an approval is bound to exactly the plan it was given for).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Analysis, Check, EnvironmentConfig, ServiceConfig};
use crate::deploy::Role;
use crate::time::Span;

/// What a release changes, which decides some steps (a `config` release skips `migrate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    Full,
    Patch,
    OffCycle,
    /// Configuration only: the running artifact with a new config version ("config recycle").
    Config,
}

/// Why a deploy exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// A release moving forward.
    Release,
    /// A fast-tracked deploy of the previous release's artifact and config version.
    Rollback,
}

/// One step of a plan. Steps of a regional wave name their region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    #[serde(flatten)]
    pub kind: StepKind,
    /// The region of a wave step; `None` for global steps and single-region environments.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub region: Option<String>,
}

/// The kinds of step, with the parameters policy gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum StepKind {
    /// Windows, freezes, provenance, config, checklist, lock, release order.
    Preflight,
    /// Wait for `required` approvals from people other than the requester.
    Approval {
        required: u32,
        expires: Span,
        /// Roles whose approvals count; empty means approvers and admins.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<Role>,
        /// Whether authors of the release's commits are refused as approvers.
        #[serde(default, skip_serializing_if = "is_false")]
        not_authors: bool,
    },
    /// Announce go/no-go and wait for an acknowledgement.
    Go {
        /// Whether the acknowledgement must come from someone other than the requester.
        #[serde(default, skip_serializing_if = "is_false")]
        by_other: bool,
    },
    /// Run the migration task once with the new artifact.
    Migrate,
    /// Start a few new instances and give them a sticky share of traffic, then analyse.
    Canary {
        share_bp: u32,
        duration: Span,
        instances: u32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        header: Option<String>,
    },
    /// Start the full new fleet next to the old one and spread traffic over both (50/50).
    Surge,
    /// Hold the 50/50 state at least `duration` while checks run.
    Bake { duration: Span },
    /// Send all traffic to the new fleet, drain and stop the old one.
    ScaleIn { confirm: bool },
    /// Check again `after` the last scale-in.
    PostVerify { after: Span },
    /// Tag, publish release notes, notify.
    Finalize,
}

impl StepKind {
    /// The short name used in the CLI, events and docs.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Preflight => "preflight",
            StepKind::Approval { .. } => "approval",
            StepKind::Go { .. } => "go",
            StepKind::Migrate => "migrate",
            StepKind::Canary { .. } => "canary",
            StepKind::Surge => "surge",
            StepKind::Bake { .. } => "bake",
            StepKind::ScaleIn { .. } => "scale-in",
            StepKind::PostVerify { .. } => "post-verify",
            StepKind::Finalize => "finalize",
        }
    }
}

/// The ordered steps of one deploy and the timings its steps obey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub timing: Timing,
    /// What the canary, bake and post-verify steps check; `None` when the policy configures
    /// no check (verification then looks at the new fleet's health alone). Part of the plan, so
    /// an approval covers what will be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSpec>,
}

/// The checks of a plan's verifying steps and how they read and compare numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationSpec {
    pub checks: Vec<Check>,
    pub analysis: Analysis,
}

/// Timings that apply across steps, copied from the policy when the plan is derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// How often checks run while a step verifies.
    pub analysis_interval: Span,
    /// Inconclusive verification longer than this counts as failed.
    pub inconclusive_limit: Span,
    /// Longest a launch may take to become healthy.
    pub launch_timeout: Span,
}

impl Plan {
    /// The sha256 of the plan's canonical JSON, hex encoded. Approvals are bound to it.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a plan always serializes");
        hex::encode(Sha256::digest(json))
    }

    /// Regions in wave order (one `None` for a single-region environment).
    pub fn regions(&self) -> Vec<Option<String>> {
        let mut regions: Vec<Option<String>> = Vec::new();
        for step in &self.steps {
            if matches!(step.kind, StepKind::Surge) && !regions.contains(&step.region) {
                regions.push(step.region.clone());
            }
        }
        regions
    }

    /// One line per step, for the CLI and snapshots: `3 canary [us-east-1] 10% for 10m`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (index, step) in self.steps.iter().enumerate() {
            out.push_str(&format!("{index} {}\n", step.describe()));
        }
        out
    }
}

impl Step {
    /// The step's name, region and parameters: `canary [us-east-1] 1 instance(s), 10% for 10m`.
    pub fn describe(&self) -> String {
        let detail = match &self.kind {
            StepKind::Approval {
                required,
                expires,
                roles,
                not_authors,
            } => {
                let roles = match roles.is_empty() {
                    true => String::new(),
                    false => {
                        let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
                        format!(" from {}", names.join(" or "))
                    }
                };
                let authors = match not_authors {
                    true => ", not by the release's authors",
                    false => "",
                };
                format!(" {required} approval(s){roles}, valid {expires}{authors}")
            }
            StepKind::Go { by_other: true } => " acknowledged by someone else".to_owned(),
            StepKind::Canary {
                share_bp,
                duration,
                instances,
                header,
            } => match header {
                Some(header) => {
                    format!(" {instances} instance(s), header `{header}`, for {duration}")
                }
                None => format!(
                    " {instances} instance(s), {}% for {duration}",
                    f64::from(*share_bp) / 100.0
                ),
            },
            StepKind::Bake { duration } => format!(" at least {duration}"),
            StepKind::ScaleIn { confirm: true } => " after confirmation".to_owned(),
            StepKind::PostVerify { after } => format!(" {after} after scale-in"),
            _ => String::new(),
        };
        let region = self
            .region
            .as_deref()
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        format!("{}{region}{detail}", self.kind.name())
    }
}

impl Plan {
    /// The fast-tracked plan of a rollback deploy for `regions`, derived from the plan of the
    /// deploy being undone: preflight, then surge and scale-in per region, then finalize. It needs
    /// no configuration, so a rollback works from stored facts alone.
    pub fn for_rollback(&self, regions: &[Option<String>]) -> Plan {
        let mut steps = vec![global(StepKind::Preflight)];
        for region in regions {
            for kind in [StepKind::Surge, StepKind::ScaleIn { confirm: false }] {
                steps.push(Step {
                    kind,
                    region: region.clone(),
                });
            }
        }
        steps.push(global(StepKind::Finalize));
        Plan {
            steps,
            timing: self.timing,
            verification: None,
        }
    }
}

/// Derives the plan of a deploy of `service` to `environment`.
///
/// The default plan of DESIGN.md, with steps the policy turns off left out; one wave
/// (canary only in the first, surge, bake, scale-in) per region. A rollback is fast-tracked: no
/// approval, go, migration, canary or bake, and no scale-in confirmation.
pub fn derive_plan(
    service: &ServiceConfig,
    environment: &EnvironmentConfig,
    kind: ReleaseKind,
    purpose: Purpose,
) -> Plan {
    let policy = &environment.policy;
    let rollback = purpose == Purpose::Rollback;
    let mut steps = vec![global(StepKind::Preflight)];
    if let Some(approvals) = policy.approvals.as_ref().filter(|_| !rollback) {
        steps.push(global(StepKind::Approval {
            required: approvals.required,
            expires: approvals.expires,
            roles: approvals.roles.clone(),
            not_authors: approvals.not_authors,
        }));
    }
    if policy.go_no_go && !rollback {
        steps.push(global(StepKind::Go {
            by_other: policy.go_by_other,
        }));
    }
    if service.migrate.is_some() && kind != ReleaseKind::Config && !rollback {
        steps.push(global(StepKind::Migrate));
    }
    let regions: Vec<Option<String>> = if environment.regions.is_empty() {
        vec![None]
    } else {
        environment.regions.iter().cloned().map(Some).collect()
    };
    for (wave, region) in regions.into_iter().enumerate() {
        let in_region = |kind| Step {
            kind,
            region: region.clone(),
        };
        if let Some(canary) = policy.canary.as_ref().filter(|_| wave == 0 && !rollback) {
            steps.push(in_region(StepKind::Canary {
                share_bp: canary.share_bp,
                duration: canary.duration,
                instances: canary.instances,
                header: canary.header.clone(),
            }));
        }
        steps.push(in_region(StepKind::Surge));
        if !policy.bake.is_zero() && !rollback {
            steps.push(in_region(StepKind::Bake {
                duration: policy.bake,
            }));
        }
        steps.push(in_region(StepKind::ScaleIn {
            confirm: policy.confirm_scale_in && !rollback,
        }));
    }
    if let Some(after) = policy.post_verify.filter(|_| !rollback) {
        steps.push(global(StepKind::PostVerify { after }));
    }
    steps.push(global(StepKind::Finalize));
    let verifies = steps.iter().any(|step| {
        matches!(
            step.kind,
            StepKind::Canary { .. } | StepKind::Bake { .. } | StepKind::PostVerify { .. }
        )
    });
    let configured = !policy.checks.is_empty() || !policy.analysis.compare.is_empty();
    let verification = (verifies && configured).then(|| VerificationSpec {
        checks: policy.checks.clone(),
        analysis: policy.analysis.clone(),
    });
    Plan {
        steps,
        verification,
        timing: Timing {
            analysis_interval: policy.analysis_interval,
            inconclusive_limit: policy.inconclusive_limit,
            launch_timeout: policy.launch_timeout,
        },
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

fn global(kind: StepKind) -> Step {
    Step { kind, region: None }
}
