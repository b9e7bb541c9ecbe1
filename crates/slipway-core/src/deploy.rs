//! A deploy as data: its immutable spec, the progress facts stored with it, the phase derived
//! from them, and the inputs and effects that `decide` consumes and produces.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::analysis::Measurement;
use crate::config::{EnvironmentConfig, ServiceConfig};
use crate::plan::{Plan, Purpose, ReleaseKind, StepKind, derive_plan};
use crate::time::{Span, Time};

/// A deploy's number, assigned by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeployId(pub i64);

impl fmt::Display for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The release a fleet runs: enough to launch it again without source control or CI.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReleaseRef {
    /// `RC 112`, `RC 112.1`.
    pub label: String,
    /// The artifact's version string; fleets are named by it.
    pub version: String,
    /// `sha256:…` digest of the artifact in the cache.
    pub artifact: String,
    /// Hash of the pinned config: the service's settings in `slipway.toml` and, when there is
    /// one, the config version's sealed content.
    pub config: String,
    /// The config version (settings and secrets) the release runs with, when the service has
    /// one in the environment. A rollback brings it back with the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u64>,
}

/// The `(major, minor)` of a release label: `RC 112` is `(112, 0)`, `RC 112.1` is `(112, 1)`.
/// Releases of a service are ordered by it.
fn release_number(label: &str) -> Option<(u64, u64)> {
    let number = label.strip_prefix("RC ")?;
    let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// How release `label` orders against release `other` of the same service (`RC 5.1` comes
/// after `RC 5` and before `RC 6`); `None` when either is not an `RC` label.
pub fn compare_releases(label: &str, other: &str) -> Option<std::cmp::Ordering> {
    Some(release_number(label)?.cmp(&release_number(other)?))
}

/// Roles of a person using slipway, from least to most powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Deployer,
    Approver,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may start, acknowledge, confirm, abort and roll back deploys.
    pub fn can_deploy(self) -> bool {
        self >= Role::Deployer
    }

    /// Whether this role may approve a deploy.
    pub fn can_approve(self) -> bool {
        self >= Role::Approver
    }
}

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

/// What an approval is given for. It is void for any deploy whose binding differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub deploy: DeployId,
    pub artifact: String,
    pub config: String,
    pub plan: String,
}

/// Everything fixed when a deploy is created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploySpec {
    pub id: DeployId,
    pub service: String,
    pub environment: String,
    pub purpose: Purpose,
    pub kind: ReleaseKind,
    pub release: ReleaseRef,
    /// What runs in the environment now: the old fleet, and the rollback target.
    pub previous: Option<ReleaseRef>,
    /// Instances per region by pool name, and whether each pool takes traffic.
    pub pools: BTreeMap<String, PoolSize>,
    pub requested_by: String,
    pub requested_at: Time,
    /// Why: required for rollbacks and break-glass, optional otherwise.
    pub reason: Option<String>,
    pub plan: Plan,
    /// Whether a preflight refusal that ends by itself (outside a window, in a freeze, too few
    /// people at work) makes the deploy wait for the next slot; otherwise it fails at once.
    #[serde(default = "yes")]
    pub wait_for_slot: bool,
    /// Break-glass was asked for (with `reason`): once a second person confirms it, preflight
    /// refusals that may be overridden (windows, freezes, staffing, provenance, checklists) are
    /// recorded as overridden instead of stopping the deploy.
    #[serde(default)]
    pub break_glass: bool,
    /// The release's source commit, for the go/no-go announcement and the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Authors of the release's commits (approvals may have to come from someone else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
}

fn yes() -> bool {
    true
}

impl DeploySpec {
    /// The binding approvals of this deploy must carry.
    pub fn binding(&self) -> Binding {
        Binding {
            deploy: self.id,
            artifact: self.release.artifact.clone(),
            config: self.release.config.clone(),
            plan: self.plan.hash(),
        }
    }
}

/// What a new release deploy is asked to do, in terms of the configuration.
#[derive(Clone, Debug)]
pub struct DeployRequest<'a> {
    pub service: &'a ServiceConfig,
    pub environment: &'a EnvironmentConfig,
    pub kind: ReleaseKind,
    pub release: ReleaseRef,
    /// What runs in the environment now, if anything.
    pub previous: Option<ReleaseRef>,
    pub requested_by: String,
    pub reason: Option<String>,
}

impl DeploySpec {
    /// The spec of release deploy `id`: its plan derived from the environment's policy and its
    /// pools copied from the service, so later config changes cannot alter it.
    pub fn new(id: DeployId, request: DeployRequest<'_>, now: Time) -> DeploySpec {
        DeploySpec {
            id,
            service: request.service.name.clone(),
            environment: request.environment.name.clone(),
            purpose: Purpose::Release,
            kind: request.kind,
            release: request.release,
            previous: request.previous,
            pools: request
                .service
                .pools
                .iter()
                .map(|(name, pool)| {
                    let size = PoolSize {
                        count: pool.count,
                        traffic: pool.traffic,
                    };
                    (name.clone(), size)
                })
                .collect(),
            requested_by: request.requested_by,
            requested_at: now,
            reason: request.reason,
            plan: derive_plan(
                request.service,
                request.environment,
                request.kind,
                Purpose::Release,
            ),
            wait_for_slot: true,
            break_glass: false,
            commit: None,
            authors: Vec::new(),
        }
    }
}

impl DeploySpec {
    /// The spec of rollback deploy `id`, which undoes `of` in `regions` by bringing `to` back:
    /// built from stored facts only (no configuration, source control or CI), with the
    /// fast-tracked plan of [`Plan::for_rollback`].
    pub fn rollback(
        id: DeployId,
        of: &DeploySpec,
        to: ReleaseRef,
        regions: &[Option<String>],
        requested_by: String,
        reason: String,
        now: Time,
    ) -> DeploySpec {
        DeploySpec {
            id,
            service: of.service.clone(),
            environment: of.environment.clone(),
            purpose: Purpose::Rollback,
            kind: of.kind,
            release: to,
            previous: Some(of.release.clone()),
            pools: of.pools.clone(),
            requested_by,
            requested_at: now,
            reason: Some(reason),
            plan: of.plan.for_rollback(regions),
            wait_for_slot: false,
            break_glass: false,
            commit: None,
            authors: Vec::new(),
        }
    }

    /// Seed 003's go/no-go message: environment first in capitals, then service, release,
    /// version and commit, and who runs it.
    /// `PROD: about to deploy idp RC 112 (1.112.0, commit 3f2a9c1), run by alice — clear to go?`
    pub fn go_announcement(&self) -> String {
        let commit = match &self.commit {
            Some(commit) => format!(", commit {}", &commit[..commit.len().min(12)]),
            None => String::new(),
        };
        format!(
            "{}: about to deploy {} {} ({}{commit}), run by {} — clear to go?",
            self.environment.to_uppercase(),
            self.service,
            self.release.label,
            self.release.version,
            self.requested_by
        )
    }

    /// Whether a release deploy would bring back a release older than the one running: only a
    /// rollback may go back.
    pub fn goes_back(&self) -> bool {
        self.purpose == Purpose::Release
            && self.previous.as_ref().is_some_and(|previous| {
                compare_releases(&self.release.label, &previous.label) == Some(Ordering::Less)
            })
    }

    /// Whether the deploy would bring up the release that already runs: its scale-in would then
    /// stop the only fleet (fleets are named by release label).
    pub fn redeploys_running_release(&self) -> bool {
        self.previous
            .as_ref()
            .is_some_and(|previous| previous.label == self.release.label)
    }
}

/// A pool's size per region, copied from the service config at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSize {
    pub count: u32,
    pub traffic: bool,
}

/// A deploy: the spec plus the facts recorded while it runs. This is what the store keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub spec: DeploySpec,
    pub progress: Progress,
}

/// The stored cursor and facts. Everything else (phase, next wake-up) is derived from these.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Index of the current step; equal to the plan's length once every step is done.
    pub cursor: usize,
    /// Facts of the current step.
    pub step: StepProgress,
    pub approvals: Vec<Approval>,
    pub go: Option<Ack>,
    /// The second person who confirmed a break-glass deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<Ack>,
    /// What was done to each region's fleets, by region key (`""` for a single region).
    pub regions: BTreeMap<String, RegionFacts>,
    /// Set when the deploy is being undone (failure, abort or rollback).
    pub unwind: Option<Unwind>,
    pub ending: Option<Ending>,
}

/// Facts of the step (or unwind) in progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepProgress {
    pub started_at: Time,
    /// Starts at 1; a retry of a failed effect raises it, which gives the retry a fresh key.
    pub attempt: u32,
    /// Operations whose effects were emitted in this step (outstanding or done).
    pub issued: BTreeSet<String>,
    /// Operations whose effects reported success.
    pub done: BTreeSet<String>,
    /// A failed operation is retried no earlier than this.
    pub retry_at: Option<Time>,
    /// When the step's timed part began (canary traffic shifted; bake and post-verify start).
    pub since: Option<Time>,
    pub verification: Verification,
    pub confirmed_by: Option<Ack>,
    /// Preflight found the deploy outside its slot and it waits until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<SlotWait>,
}

/// A deploy waiting for its next allowed slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotWait {
    pub until: Time,
    pub reason: String,
}

/// The running verification of a canary, bake or post-verify step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Number of checks issued so far; the next check's operation is `verify-<runs>`.
    pub runs: u32,
    pub last: Option<Verdict>,
    pub last_at: Option<Time>,
    pub inconclusive_since: Option<Time>,
    /// The latest check's result with its numbers, for `status` and the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<LatestCheck>,
}

/// The result of the latest check of a step, as it was reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatestCheck {
    pub at: Time,
    pub verdict: Verdict,
    pub score: Option<f64>,
    /// One line naming what failed or lacked data first.
    pub detail: String,
    pub measurements: Vec<Measurement>,
}

/// The result of one check of the new fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// No data, too few samples, or a check that could not run: never a pass.
    Inconclusive,
}

/// What has been done to one region's fleets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionFacts {
    /// A launch of the new release was issued: new instances may exist.
    pub new_launched: bool,
    /// The stop of the old fleet was issued: from here on rollback needs a rollback deploy.
    pub old_retired: bool,
}

/// An approval as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at: Time,
    pub expires_at: Time,
}

/// An acknowledgement by a person (go, scale-in confirmation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub at: Time,
}

/// Undoing a deploy: traffic back to the old fleet and the new one stopped, or a rollback deploy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unwind {
    pub cause: UnwindCause,
    pub reason: String,
    pub by: Option<String>,
    pub progress: StepProgress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnwindCause {
    /// A step failed (effect, check, timeout).
    Failure,
    /// A person aborted.
    Abort,
    /// A person asked for a rollback.
    Rollback,
}

/// How a deploy ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    pub result: DeployResult,
    pub at: Time,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployResult {
    Succeeded,
    /// Failed before any new instance started: nothing to undo.
    Failed,
    RolledBack,
    Aborted,
}

impl DeployResult {
    pub fn name(self) -> &'static str {
        match self {
            DeployResult::Succeeded => "succeeded",
            DeployResult::Failed => "failed",
            DeployResult::RolledBack => "rolled_back",
            DeployResult::Aborted => "aborted",
        }
    }
}

/// The phase, derived from progress on demand and never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Working on a step: effects outstanding or a timer running.
    Running {
        step: String,
    },
    /// Waiting for a person.
    Waiting {
        step: String,
        for_what: WaitingFor,
    },
    /// Undoing the deploy.
    RollingBack {
        reason: String,
    },
    Finished {
        result: DeployResult,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitingFor {
    Approval {
        have: u32,
        need: u32,
    },
    Go,
    ScaleInConfirmation,
    /// A second person's confirmation of break-glass.
    BreakGlass,
    /// The next allowed slot (a window opening, a freeze ending).
    Slot {
        until: Time,
        reason: String,
    },
}

impl Deploy {
    /// The current phase, computed from the stored facts at `now`.
    pub fn phase(&self, now: Time) -> Phase {
        let progress = &self.progress;
        if let Some(ending) = &progress.ending {
            return Phase::Finished {
                result: ending.result,
            };
        }
        if let Some(unwind) = &progress.unwind {
            return Phase::RollingBack {
                reason: unwind.reason.clone(),
            };
        }
        let Some(step) = self.spec.plan.steps.get(progress.cursor) else {
            return Phase::Running {
                step: "done".to_owned(),
            };
        };
        let name = step.kind.name().to_owned();
        let slot = progress.step.waiting.as_ref().map(|w| WaitingFor::Slot {
            until: w.until,
            reason: w.reason.clone(),
        });
        let waiting = match &step.kind {
            StepKind::Preflight if self.spec.break_glass && progress.break_glass.is_none() => {
                Some(WaitingFor::BreakGlass)
            }
            _ if slot.is_some() => slot,
            StepKind::Approval { required, .. } => {
                let have = self.valid_approvals(now);
                (have < *required).then_some(WaitingFor::Approval {
                    have,
                    need: *required,
                })
            }
            StepKind::Go { .. } => progress.go.is_none().then_some(WaitingFor::Go),
            StepKind::ScaleIn { confirm: true } => progress
                .step
                .confirmed_by
                .is_none()
                .then_some(WaitingFor::ScaleInConfirmation),
            _ => None,
        };
        match waiting {
            Some(for_what) => Phase::Waiting {
                step: name,
                for_what,
            },
            None => Phase::Running { step: name },
        }
    }

    /// Whether the deploy has ended.
    pub fn is_finished(&self) -> bool {
        self.progress.ending.is_some()
    }

    /// Whether nothing will happen until a person acts (approval, go, break-glass,
    /// confirmation); a deploy waiting for its slot moves on by itself.
    pub fn is_waiting_for_person(&self, now: Time) -> bool {
        matches!(
            self.phase(now),
            Phase::Waiting { for_what, .. } if !matches!(for_what, WaitingFor::Slot { .. })
        )
    }

    /// Approvals still valid at `now`, one per person.
    pub fn valid_approvals(&self, now: Time) -> u32 {
        let people: BTreeSet<&str> = self
            .progress
            .approvals
            .iter()
            .filter(|a| a.expires_at > now)
            .map(|a| a.by.as_str())
            .collect();
        u32::try_from(people.len()).unwrap_or(u32::MAX)
    }

    /// Whether any region's old fleet has been (or is being) stopped.
    pub fn past_scale_in(&self) -> bool {
        self.progress.regions.values().any(|r| r.old_retired)
    }
}

/// Something that happened to a deploy, fed to `decide`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// Time passed: timers may fire.
    Tick,
    /// An effect finished.
    Reported {
        key: EffectKey,
        outcome: Outcome,
    },
    Approve {
        by: Actor,
        binding: Binding,
    },
    Go {
        by: Actor,
    },
    /// A second person confirms a break-glass deploy.
    BreakGlass {
        by: Actor,
    },
    ConfirmScaleIn {
        by: Actor,
    },
    Abort {
        by: Actor,
        reason: String,
    },
    Rollback {
        by: Actor,
        reason: String,
    },
}

/// What an effect reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Done {
        detail: String,
    },
    /// A verification check's verdict, its one-line summary and the numbers behind it.
    Checked {
        verdict: Verdict,
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<f64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        measurements: Vec<Measurement>,
    },
    Failed {
        error: String,
    },
    /// What each preflight check found.
    Preflight {
        gates: Vec<GateResult>,
    },
}

/// One preflight check's finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    /// `lock`, `order`, `schedule`, `provenance`, `checklist`…
    pub check: String,
    pub passed: bool,
    /// What was verified, or why it refuses.
    pub detail: String,
    /// How to fix a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// When a refusal ends by itself (a window opens): the deploy may wait until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    /// Whether a confirmed break-glass lets the deploy through this refusal.
    #[serde(default)]
    pub overridable: bool,
}

/// Identifies one effect: `(deploy, step, attempt, operation)`. Running an effect twice with the
/// same key must do nothing new.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EffectKey {
    pub deploy: DeployId,
    /// The step index, or `unwind`.
    pub step: String,
    pub attempt: u32,
    pub op: String,
}

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.deploy, self.step, self.attempt, self.op
        )
    }
}

/// Work for the shell, to run only after the decision that produced it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    pub key: EffectKey,
    pub action: Action,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Windows, freezes, provenance, config, checklist, lock and order checks.
    Preflight,
    /// Send a notification; nothing waits for it.
    Notify { notice: Notice },
    /// Run the migration task with the new release.
    RunTask { task: String, release: ReleaseRef },
    /// Ensure `pools` instances of `release` run healthy in `region` (tops up, never duplicates).
    Launch {
        region: Option<String>,
        release: ReleaseRef,
        pools: BTreeMap<String, u32>,
        timeout: Span,
    },
    /// Route the region's traffic as `split` says.
    SetTraffic {
        region: Option<String>,
        split: Split,
    },
    /// Drain and stop every instance of `release` in `region`.
    Stop {
        region: Option<String>,
        release: ReleaseRef,
    },
    /// Check the new fleet (health and configured checks) against the baseline.
    Verify {
        region: Option<String>,
        release: ReleaseRef,
        baseline: Option<ReleaseRef>,
        step: String,
        /// When the step's traffic began: checks look back no further.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Time>,
    },
    /// Create the fast-tracked rollback deploy of `to` for `regions`.
    RollbackDeploy {
        to: ReleaseRef,
        regions: Vec<Option<String>>,
        reason: String,
    },
    /// Tag, publish release notes.
    Finalize { release: ReleaseRef },
}

/// A notification about a deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    Started,
    /// "PROD: about to deploy idp RC 112 (3f2a9c1), run by alice — clear to go?"
    GoNoGo,
    WaitingForApproval,
    /// Break-glass asked for: a second person must confirm.
    BreakGlassRequested,
    /// Break-glass confirmed: policy refusals will be overridden.
    BreakGlass,
    /// Waiting for the next allowed slot.
    WaitingForSlot {
        until: Time,
        reason: String,
    },
    Finished {
        result: DeployResult,
        reason: Option<String>,
    },
}

/// How a region's traffic is shared between versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Weight per version; weights are relative.
    pub weights: BTreeMap<String, u32>,
    /// Sticky assignment by cookie hash (canary).
    pub sticky: bool,
    /// Requests with this header (`Name: value`) go to `header_version`.
    pub header: Option<String>,
    pub header_version: Option<String>,
}

impl Split {
    /// All traffic to one version.
    pub fn only(version: &str) -> Split {
        Split {
            weights: BTreeMap::from([(version.to_owned(), 1)]),
            sticky: false,
            header: None,
            header_version: None,
        }
    }
}

/// Recorded facts: the deploy's part of the event log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    DeployCreated {
        service: String,
        environment: String,
        release: String,
        version: String,
        purpose: Purpose,
        requested_by: String,
        plan: Vec<String>,
    },
    StepStarted {
        step: usize,
        name: String,
        region: Option<String>,
    },
    StepCompleted {
        step: usize,
        name: String,
    },
    EffectRequested {
        key: String,
        action: String,
    },
    EffectSucceeded {
        key: String,
        detail: String,
    },
    EffectFailed {
        key: String,
        error: String,
        retry_at: Option<Time>,
    },
    /// One measurement of a check, with its numbers; the check's `Checked` event follows.
    Measured {
        key: String,
        measurement: Measurement,
    },
    Checked {
        key: String,
        verdict: Verdict,
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<f64>,
    },
    Approved {
        by: String,
        expires_at: Time,
    },
    /// One preflight check's finding; `overridden` when break-glass let a refusal through.
    PreflightChecked {
        key: String,
        check: String,
        passed: bool,
        overridden: bool,
        detail: String,
    },
    /// Preflight found the deploy outside its slot: it waits.
    SlotAwaited {
        until: Time,
        reason: String,
    },
    BreakGlassConfirmed {
        by: String,
        reason: String,
    },
    ApprovalsExpired,
    /// The go/no-go announcement, as posted.
    GoAnnounced {
        message: String,
    },
    GoAcknowledged {
        by: String,
    },
    ScaleInConfirmed {
        by: String,
        region: Option<String>,
    },
    UnwindStarted {
        cause: UnwindCause,
        reason: String,
        by: Option<String>,
    },
    DeployFinished {
        result: DeployResult,
        reason: Option<String>,
    },
}

impl Event {
    /// The event's type name as stored in the log's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::DeployCreated { .. } => "deploy_created",
            Event::StepStarted { .. } => "step_started",
            Event::StepCompleted { .. } => "step_completed",
            Event::EffectRequested { .. } => "effect_requested",
            Event::EffectSucceeded { .. } => "effect_succeeded",
            Event::EffectFailed { .. } => "effect_failed",
            Event::Measured { .. } => "measured",
            Event::Checked { .. } => "checked",
            Event::Approved { .. } => "approved",
            Event::PreflightChecked { .. } => "preflight_checked",
            Event::SlotAwaited { .. } => "slot_awaited",
            Event::BreakGlassConfirmed { .. } => "break_glass_confirmed",
            Event::ApprovalsExpired => "approvals_expired",
            Event::GoAnnounced { .. } => "go_announced",
            Event::GoAcknowledged { .. } => "go_acknowledged",
            Event::ScaleInConfirmed { .. } => "scale_in_confirmed",
            Event::UnwindStarted { .. } => "unwind_started",
            Event::DeployFinished { .. } => "deploy_finished",
        }
    }
}

/// The outcome of `decide`: the new state, what happened, and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub deploy: Deploy,
    pub events: Vec<Event>,
    pub effects: Vec<Effect>,
}

impl Decision {
    /// Whether the decision changed nothing (a duplicate report or a tick with nothing due).
    pub fn is_noop(&self, before: &Deploy) -> bool {
        self.events.is_empty() && self.effects.is_empty() && &self.deploy == before
    }
}

/// Why an operator action was refused. The state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub code: RejectionCode,
    pub message: String,
    pub hint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The actor's role does not allow the action.
    Forbidden,
    /// The deploy is not in a state where the action applies.
    Conflict,
    /// The action carried data that does not match the deploy.
    Invalid,
}
