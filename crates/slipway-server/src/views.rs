//! The API's JSON shapes. They are the server's own types, not the store's or the core's, so the
//! wire format is documented in the OpenAPI document and changes only on purpose.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use slipway_core::analysis::Measurement;
use slipway_core::deploy::{Deploy, Phase, ReleaseRef, WaitingFor};
use slipway_core::time::Time;
use slipway_store::{ArtifactRecord, ChainReport, ReleaseRecord, StoredEvent, TokenRecord, User};
use utoipa::ToSchema;

pub mod checklist;
pub mod notifications;
pub mod trains;

/// An instant as RFC 3339 text in UTC.
pub fn timestamp(time: Time) -> String {
    time.to_timestamp().to_string()
}

/// One page of a listing, newest first. Pass `next` as `before` (or `after`, for events) to get
/// the page that follows; it is absent when the page was not full (a full last page is followed
/// by an empty one).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// A page of `items` fetched with `limit`, whose last row has id `last`: only a full page
    /// may have a successor.
    pub fn new(items: Vec<T>, limit: i64, last: Option<i64>) -> Self {
        let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
        Page {
            next: if full { last } else { None },
            items,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub name: String,
    /// `viewer`, `deployer`, `approver` or `admin`.
    pub role: String,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            name: user.name.clone(),
            role: user.role.name().to_owned(),
            created_at: timestamp(user.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub user: String,
    pub label: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&TokenRecord> for TokenView {
    fn from(token: &TokenRecord) -> Self {
        TokenView {
            id: token.id,
            user: token.user.clone(),
            label: token.label.clone(),
            created_at: timestamp(token.created_at),
            revoked_at: token.revoked_at.map(timestamp),
        }
    }
}

/// A token just created. The `token` itself is shown only in this answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewTokenView {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ArtifactView {
    pub service: String,
    pub version: String,
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: i64,
    pub commit: Option<String>,
    pub pushed_by: String,
    pub pushed_at: String,
}

impl From<&ArtifactRecord> for ArtifactView {
    fn from(record: &ArtifactRecord) -> Self {
        ArtifactView {
            service: record.service.clone(),
            version: record.version.clone(),
            digest: record.digest.clone(),
            size: record.size,
            commit: record.commit.clone(),
            pushed_by: record.pushed_by.clone(),
            pushed_at: timestamp(record.pushed_at),
        }
    }
}

/// The answer to an artifact upload: whether it was new.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ArtifactPushView {
    /// False when the same digest was already stored under this version (nothing changed).
    pub created: bool,
    pub artifact: ArtifactView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleaseView {
    pub service: String,
    /// `RC 112`, `RC 112.1`.
    pub label: String,
    /// `112`, `112.1`: what `--release` accepts.
    pub number: String,
    /// `full`, `patch`, `off-cycle` or `config`.
    pub kind: String,
    pub version: String,
    pub artifact: String,
    pub commit: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub reason: Option<String>,
    /// Who wrote the release's commits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
}

impl From<&ReleaseRecord> for ReleaseView {
    fn from(record: &ReleaseRecord) -> Self {
        let number = if record.minor == 0 {
            record.major.to_string()
        } else {
            format!("{}.{}", record.major, record.minor)
        };
        ReleaseView {
            service: record.service.clone(),
            label: record.label.clone(),
            number,
            kind: enum_name(&record.kind),
            version: record.version.clone(),
            artifact: record.artifact.clone(),
            commit: record.commit.clone(),
            authors: record.authors.clone(),
            created_by: record.created_by.clone(),
            created_at: timestamp(record.created_at),
            reason: record.reason.clone(),
        }
    }
}

/// The name serde gives a unit enum variant (`off-cycle`, `rolled_back`…).
pub fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// A release as a deploy runs it: enough to launch it again without source control or CI.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleaseRefView {
    pub label: String,
    pub version: String,
    pub artifact: String,
    /// Hash of the configuration the release runs with.
    pub config: String,
    /// The config version it runs with (`slipway config get --version N`), if the service has
    /// config in the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u64>,
}

impl From<&ReleaseRef> for ReleaseRefView {
    fn from(release: &ReleaseRef) -> Self {
        ReleaseRefView {
            label: release.label.clone(),
            version: release.version.clone(),
            artifact: release.artifact.clone(),
            config: release.config.clone(),
            config_version: release.config_version,
        }
    }
}

/// Where a deploy is: derived from its stored facts at the time of the answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PhaseView {
    /// `running`, `waiting`, `rolling_back` or `finished`.
    pub state: String,
    /// The current step's name while running or waiting.
    pub step: Option<String>,
    /// While waiting: `approval`, `go`, `scale_in_confirmation`, `break_glass` (a second
    /// person's confirmation) or `slot` (the next allowed slot; `reason` says why).
    pub waiting_for: Option<String>,
    /// While waiting for approvals: how many are valid and how many are needed.
    pub approvals: Option<ApprovalCount>,
    /// Why the deploy is being undone.
    pub reason: Option<String>,
    /// Once finished: `succeeded`, `failed`, `rolled_back` or `aborted`.
    pub result: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalCount {
    pub have: u32,
    pub need: u32,
}

impl From<Phase> for PhaseView {
    fn from(phase: Phase) -> Self {
        let mut view = PhaseView {
            state: String::new(),
            step: None,
            waiting_for: None,
            approvals: None,
            reason: None,
            result: None,
        };
        match phase {
            Phase::Running { step } => {
                view.state = "running".into();
                view.step = Some(step);
            }
            Phase::Waiting { step, for_what } => {
                view.state = "waiting".into();
                view.step = Some(step);
                view.waiting_for = Some(
                    match for_what {
                        WaitingFor::Approval { have, need } => {
                            view.approvals = Some(ApprovalCount { have, need });
                            "approval"
                        }
                        WaitingFor::Go => "go",
                        WaitingFor::ScaleInConfirmation => "scale_in_confirmation",
                        WaitingFor::BreakGlass => "break_glass",
                        WaitingFor::Slot { reason, .. } => {
                            view.reason = Some(reason);
                            "slot"
                        }
                    }
                    .to_owned(),
                );
            }
            Phase::RollingBack { reason } => {
                view.state = "rolling_back".into();
                view.reason = Some(reason);
            }
            Phase::Finished { result } => {
                view.state = "finished".into();
                view.result = Some(result.name().to_owned());
            }
        }
        view
    }
}

/// One step of a deploy's plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub index: usize,
    pub name: String,
    pub region: Option<String>,
    /// Name, region and parameters in one line: `bake at least 15m`.
    pub summary: String,
    /// `done`, `current` or `pending`.
    pub status: String,
}

/// Somebody's approval or acknowledgement.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignoffView {
    pub by: String,
    pub at: String,
    /// Approvals only: when it stops counting.
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeployView {
    pub id: i64,
    pub service: String,
    pub environment: String,
    /// `release` or `rollback`.
    pub purpose: String,
    /// `full`, `patch`, `off-cycle` or `config`.
    pub kind: String,
    pub release: ReleaseRefView,
    /// What ran before: the old fleet and the rollback target.
    pub previous: Option<ReleaseRefView>,
    pub requested_by: String,
    pub requested_at: String,
    pub reason: Option<String>,
    pub phase: PhaseView,
    /// What an approval of this deploy is bound to.
    pub binding: BindingView,
    pub steps: Vec<StepView>,
    pub approvals: Vec<SignoffView>,
    /// The go/no-go announcement, when the plan has a go step.
    #[serde(default)]
    pub go_announcement: Option<String>,
    pub go: Option<SignoffView>,
    /// The release's source commit.
    #[serde(default)]
    pub commit: Option<String>,
    /// Whether break-glass was asked for, and who confirmed it.
    #[serde(default)]
    pub break_glass: bool,
    #[serde(default)]
    pub break_glass_by: Option<SignoffView>,
    /// Waiting for a slot: when the deploy will try again (RFC 3339).
    #[serde(default)]
    pub waiting_until: Option<String>,
    pub ended_at: Option<String>,
    /// Why it ended, when it did not succeed.
    pub end_reason: Option<String>,
    /// The rollback deploy that took over when this one was undone after scale-in.
    pub rollback_deploy: Option<i64>,
    /// The latest check of the step being verified now (canary, bake, post-verify).
    pub check: Option<CheckView>,
}

/// One verification check: its verdict, score and the measurements it was judged on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckView {
    pub at: String,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    /// 0–100: the share of measurements with data that passed.
    pub score: Option<f64>,
    /// One line naming what failed or lacked data first.
    pub detail: String,
    pub measurements: Vec<MeasurementView>,
}

/// One measurement of a check, with its numbers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeasurementView {
    /// `error_rate`, `latency_p99`, `probe /login`, a query check's name…
    pub name: String,
    /// `threshold`, `comparison`, `probe`, `command` or `health`.
    pub kind: String,
    /// `proxy`, `prometheus`, `http`, `command` or `target`.
    pub source: String,
    /// `pass`, `high`, `low`, `fail` or `no_data`.
    pub outcome: String,
    /// `ratio`, `millis`, `per_second` or `number`.
    pub unit: String,
    /// A threshold's value over the window; a comparison's canary median.
    pub value: Option<f64>,
    /// A comparison's baseline median.
    pub baseline: Option<f64>,
    pub limit: Option<String>,
    pub requests: Option<u64>,
    /// A comparison's samples: canary, baseline.
    pub samples: Option<[u32; 2]>,
    pub p_value: Option<f64>,
    /// Hodges-Lehmann estimate of canary minus baseline.
    pub shift: Option<f64>,
    pub note: String,
    /// The whole measurement in one line for people.
    pub text: String,
}

impl From<&Measurement> for MeasurementView {
    fn from(m: &Measurement) -> Self {
        MeasurementView {
            name: m.name.clone(),
            kind: enum_name(&m.kind),
            source: m.source.clone(),
            outcome: enum_name(&m.outcome),
            unit: enum_name(&m.unit),
            value: m.value,
            baseline: m.baseline,
            limit: m.limit.clone(),
            requests: m.requests,
            samples: m.samples.map(|(canary, baseline)| [canary, baseline]),
            p_value: m.p_value,
            shift: m.shift,
            note: m.note.clone(),
            text: m.describe(),
        }
    }
}

/// The artifact digest, config hash and plan hash an approval is given for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BindingView {
    pub artifact: String,
    pub config: String,
    pub plan: String,
}

impl DeployView {
    pub fn new(deploy: &Deploy, now: Time) -> Self {
        let spec = &deploy.spec;
        let progress = &deploy.progress;
        let finished = deploy.is_finished();
        let steps = spec
            .plan
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| StepView {
                index,
                name: step.kind.name().to_owned(),
                region: step.region.clone(),
                summary: step.describe(),
                status: if index < progress.cursor {
                    "done"
                } else if index == progress.cursor && !finished {
                    "current"
                } else {
                    "pending"
                }
                .to_owned(),
            })
            .collect();
        DeployView {
            id: spec.id.0,
            service: spec.service.clone(),
            environment: spec.environment.clone(),
            purpose: enum_name(&spec.purpose),
            kind: enum_name(&spec.kind),
            release: (&spec.release).into(),
            previous: spec.previous.as_ref().map(Into::into),
            requested_by: spec.requested_by.clone(),
            requested_at: timestamp(spec.requested_at),
            reason: spec.reason.clone(),
            phase: deploy.phase(now).into(),
            binding: {
                let binding = spec.binding();
                BindingView {
                    artifact: binding.artifact,
                    config: binding.config,
                    plan: binding.plan,
                }
            },
            steps,
            approvals: progress
                .approvals
                .iter()
                .map(|a| SignoffView {
                    by: a.by.clone(),
                    at: timestamp(a.at),
                    expires_at: Some(timestamp(a.expires_at)),
                })
                .collect(),
            go_announcement: spec
                .plan
                .steps
                .iter()
                .any(|s| s.kind.name() == "go")
                .then(|| spec.go_announcement()),
            go: progress.go.as_ref().map(|ack| SignoffView {
                by: ack.by.clone(),
                at: timestamp(ack.at),
                expires_at: None,
            }),
            commit: spec.commit.clone(),
            break_glass: spec.break_glass,
            break_glass_by: progress.break_glass.as_ref().map(|ack| SignoffView {
                by: ack.by.clone(),
                at: timestamp(ack.at),
                expires_at: None,
            }),
            waiting_until: progress
                .step
                .waiting
                .as_ref()
                .filter(|_| !finished)
                .map(|w| timestamp(w.until)),
            ended_at: progress.ending.as_ref().map(|e| timestamp(e.at)),
            end_reason: progress.ending.as_ref().and_then(|e| e.reason.clone()),
            rollback_deploy: None,
            check: progress
                .step
                .verification
                .latest
                .as_ref()
                .filter(|_| !finished)
                .map(|latest| CheckView {
                    at: timestamp(latest.at),
                    verdict: enum_name(&latest.verdict),
                    score: latest.score,
                    detail: latest.detail.clone(),
                    measurements: latest.measurements.iter().map(Into::into).collect(),
                }),
        }
    }
}

/// One event of the hash-chained log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub seq: i64,
    pub at: String,
    pub deploy: Option<i64>,
    pub kind: String,
    /// The event's facts, as recorded.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Hex SHA-256 of the event and its predecessor's hash.
    pub hash: String,
    pub prev_hash: String,
}

impl From<&StoredEvent> for EventView {
    fn from(event: &StoredEvent) -> Self {
        EventView {
            seq: event.seq,
            at: timestamp(event.at),
            deploy: event.deploy.map(|d| d.0),
            kind: event.kind.clone(),
            data: serde_json::from_str(&event.payload)
                .unwrap_or_else(|_| serde_json::Value::String(event.payload.clone())),
            hash: event.hash.clone(),
            prev_hash: event.prev_hash.clone(),
        }
    }
}

/// The result of checking the whole event log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditReportView {
    pub intact: bool,
    /// Events verified before the first break (all of them when intact).
    pub verified: u64,
    /// Hex hash of the last verified event.
    pub head: String,
    pub broken: Option<ChainBreakView>,
}

/// The first bad event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainBreakView {
    pub seq: i64,
    /// `gap`, `previous_hash_mismatch`, `hash_mismatch` or `truncated`.
    pub problem: String,
    pub message: String,
}

impl From<&ChainReport> for AuditReportView {
    fn from(report: &ChainReport) -> Self {
        AuditReportView {
            intact: report.broken.is_none(),
            verified: report.verified,
            head: report.head.clone(),
            broken: report.broken.as_ref().map(|b| ChainBreakView {
                seq: b.seq,
                problem: serde_json::to_value(&b.kind)
                    .ok()
                    .and_then(|v| v.get("problem").and_then(|p| p.as_str().map(str::to_owned)))
                    .unwrap_or_default(),
                message: b.kind.to_string(),
            }),
        }
    }
}

/// A pool of a service.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PoolView {
    pub count: u32,
    pub traffic: bool,
}

/// What runs in one environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlacementView {
    pub environment: String,
    /// The release of the last deploy that succeeded there.
    pub running: Option<ReleaseRefView>,
    /// The deploy in progress there, if any.
    pub active_deploy: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceView {
    pub name: String,
    pub pools: BTreeMap<String, PoolView>,
    pub environments: Vec<PlacementView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentView {
    pub name: String,
    pub target: String,
    pub protected: bool,
    pub regions: Vec<String>,
    /// Approvals a release deploy needs (0 for none).
    pub approvals_required: u32,
    pub go_no_go: bool,
    pub confirm_scale_in: bool,
    pub bake: String,
}

/// The control plane's health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    /// `ok`, or `degraded` when the database does not answer.
    pub status: String,
    pub database: String,
    pub version: String,
}

/// An event exactly as stored: with these fields anyone can recompute the chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub deploy: Option<i64>,
    pub kind: String,
    /// The payload's exact JSON text, as hashed.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The answer to an operator action.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActionView {
    /// `applied` when the engine took the action, `pending` when it has not yet (202),
    /// `already_rolling_back` when a rollback was asked for one already under way.
    pub status: String,
    /// The operator intent written, if one was.
    pub intent: Option<i64>,
    pub deploy: DeployView,
}

/// One instance's log file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogFileView {
    pub instance: String,
    /// Bytes in the file now.
    pub size: u64,
    pub modified: Option<String>,
}

/// A range of an instance's log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogChunkView {
    pub instance: String,
    /// Where this chunk starts.
    pub offset: u64,
    /// Where the next read starts: pass it as `offset` to follow the log.
    pub next: u64,
    /// Bytes in the file now.
    pub size: u64,
    /// The bytes read, as UTF-8 (invalid sequences replaced).
    pub text: String,
}

/// `GET /api/v1/schedule`: whether an environment is open to deploys now, why not, and when.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub service: String,
    pub environment: String,
    /// The environment's IANA time zone: where freezes by day and date and all-day events are
    /// read, and the zone of every `*_local` text.
    pub time_zone: String,
    pub now: String,
    pub open: bool,
    /// Every rule that closes it now (empty when open).
    pub reasons: Vec<ScheduleReasonView>,
    /// The windows as written (empty: any time of the week).
    pub windows: Vec<String>,
    /// The window open now.
    pub window: Option<String>,
    /// The next stretch when every rule allows a deploy (starts now when open); absent when
    /// none starts within a year.
    pub next_slot: Option<SlotView>,
    /// The slots of the coming days.
    pub slots: Vec<SlotView>,
    /// Freezes, holidays and staffing shortfalls coming up (and under way).
    pub closures: Vec<ClosureView>,
    /// Who is out now, with the staffing rule's limit; absent without a staffing rule.
    pub staffing: Option<StaffingView>,
}

/// One rule that closes an environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleReasonView {
    /// `window`, `freeze`, `holiday` or `staffing`.
    pub rule: String,
    pub message: String,
}

/// An open stretch: RFC 3339 in UTC, and as text in the environment's zone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SlotView {
    pub start: String,
    /// Absent when it lasts beyond the horizon the schedule looks at.
    pub end: Option<String>,
    pub start_local: String,
    pub end_local: Option<String>,
}

/// A stretch closed by one rule.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClosureView {
    pub rule: String,
    pub message: String,
    pub start: String,
    pub end: String,
    pub start_local: String,
    pub end_local: String,
}

/// The staffing rule now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StaffingView {
    /// Distinct people out now.
    pub out: Vec<String>,
    pub max_out: u32,
    pub team: Option<u32>,
}

/// An attestation of an artifact: a DSSE envelope CI signed, and what it says.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttestationView {
    pub id: i64,
    pub service: String,
    pub version: String,
    /// The artifact's `sha256:<hex>`, the statement's subject.
    pub digest: String,
    /// The `[provenance]` key that signed it, by name, when it was recorded.
    pub key: String,
    /// Hex SHA-256 of that key's 32 bytes.
    pub key_id: String,
    /// Whether it verifies with a key `slipway.toml` trusts now (a key removed since does not
    /// count): what preflight requires.
    pub trusted: bool,
    pub commit: String,
    pub build_id: String,
    pub builder: String,
    pub recorded_by: String,
    pub recorded_at: String,
    /// The DSSE envelope itself, for other tools to verify.
    #[schema(value_type = Object)]
    pub envelope: serde_json::Value,
}

/// The answer to an attestation upload: whether it was new.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttestationPushView {
    /// False when the same envelope was already recorded for this artifact (nothing changed).
    pub created: bool,
    pub attestation: AttestationView,
}
