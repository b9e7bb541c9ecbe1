//! The deploy state machine: `start` creates a deploy, `decide` applies one input to it.
//!
//! Both are pure: they take the stored facts and `now`, and return the new facts, the events to
//! record and the effects to run. The shell stores all three in one transaction before running
//! any effect. Every step is written as "ensure": look at the facts, emit what is missing, report
//! whether the step is done — so running `decide` again after a crash emits nothing new.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::deploy::*;
use crate::plan::{Step, StepKind};
use crate::time::{Span, Time};

/// A failing operation that is not fatal by nature (traffic, stop, finalize) gets this many
/// attempts before the deploy fails.
pub const MAX_ATTEMPTS: u32 = 5;

/// Longest wait between retries of a failed operation.
const MAX_BACKOFF: Span = Span::from_secs(60);

/// The step label of effects issued while unwinding.
const UNWIND: &str = "unwind";

/// Preflight again as the last person-given step (go, or approval without go) completes: a
/// deploy may have waited hours for people since its first preflight, and must not start acting
/// outside its window, in a freeze or behind a lock it met meanwhile.
const RECHECK: &str = "preflight-recheck";

/// Creates a deploy from its spec and starts its first step.
pub fn start(spec: DeploySpec, now: Time) -> Decision {
    let mut out = Out::default();
    out.events.push(Event::DeployCreated {
        service: spec.service.clone(),
        environment: spec.environment.clone(),
        release: spec.release.label.clone(),
        version: spec.release.version.clone(),
        purpose: spec.purpose,
        requested_by: spec.requested_by.clone(),
        plan: spec.plan.steps.iter().map(step_title).collect(),
    });
    let mut deploy = Deploy {
        spec,
        progress: Progress::default(),
    };
    deploy.progress.step = StepProgress::begin(now);
    let Deploy { spec, progress } = &mut deploy;
    fire(
        spec.id,
        "0",
        &mut progress.step,
        "notify-started",
        notify(Notice::Started),
        &mut out,
    );
    if let Some(step) = spec.plan.steps.first() {
        out.events.push(Event::StepStarted {
            step: 0,
            name: step.kind.name().to_owned(),
            region: step.region.clone(),
        });
    }
    advance(&mut deploy, now, &mut out);
    out.into_decision(deploy)
}

/// Applies `input` to `deploy` at `now`.
///
/// Reports that do not match an outstanding effect (duplicates, results of an earlier attempt)
/// change nothing. Operator actions that do not apply are refused with a [`Rejection`] and
/// change nothing either.
pub fn decide(deploy: &Deploy, input: &Input, now: Time) -> Result<Decision, Rejection> {
    let mut next = deploy.clone();
    let mut out = Out::default();
    if let Some(ending) = &deploy.progress.ending {
        return match input {
            Input::Tick | Input::Reported { .. } => Ok(out.into_decision(next)),
            _ => Err(Rejection {
                code: RejectionCode::Conflict,
                message: format!(
                    "deploy {} already finished: {}",
                    deploy.spec.id,
                    ending.result.name()
                ),
                hint: format!(
                    "start a new deploy, or roll back with `slipway rollback {} --env {}`",
                    deploy.spec.service, deploy.spec.environment
                ),
            }),
        };
    }
    match input {
        Input::Tick => {}
        Input::Reported { key, outcome } => {
            if !record_report(&mut next, key, outcome, now, &mut out) {
                return Ok(Out::default().into_decision(deploy.clone()));
            }
        }
        Input::Approve { by, binding } => approve(&mut next, by, binding, now, &mut out)?,
        Input::Go { by } => acknowledge_go(&mut next, by, now, &mut out)?,
        Input::BreakGlass { by } => confirm_break_glass(&mut next, by, now, &mut out)?,
        Input::ConfirmScaleIn { by } => confirm_scale_in(&mut next, by, now, &mut out)?,
        Input::Abort { by, reason } => {
            require_deployer(by, "abort")?;
            refuse_while_unwinding(&next)?;
            if next.past_scale_in() {
                return Err(Rejection {
                    code: RejectionCode::Conflict,
                    message: format!(
                        "deploy {} has already stopped the old fleet; an abort cannot bring it back",
                        next.spec.id
                    ),
                    hint: format!(
                        "roll back instead: `slipway rollback {} --env {}`",
                        next.spec.service, next.spec.environment
                    ),
                });
            }
            begin_unwind(
                &mut next,
                UnwindCause::Abort,
                reason,
                Some(&by.name),
                now,
                &mut out,
            );
        }
        Input::Rollback { by, reason } => {
            require_deployer(by, "roll back")?;
            refuse_while_unwinding(&next)?;
            if !next.progress.regions.values().any(|r| r.new_launched) {
                return Err(conflict(
                    format!(
                        "deploy {} has not started any new instance yet",
                        next.spec.id
                    ),
                    format!(
                        "nothing to roll back; stop it with `slipway abort {}`",
                        next.spec.id
                    ),
                ));
            }
            if next.spec.previous.is_none() {
                return Err(conflict(
                    format!(
                        "{} has no earlier release in {} to roll back to",
                        next.spec.service, next.spec.environment
                    ),
                    format!(
                        "abort with `slipway abort {}`, or deploy a fixed release",
                        next.spec.id
                    ),
                ));
            }
            begin_unwind(
                &mut next,
                UnwindCause::Rollback,
                reason,
                Some(&by.name),
                now,
                &mut out,
            );
        }
    }
    advance(&mut next, now, &mut out);
    Ok(out.into_decision(next))
}

/// When `decide(Tick)` next has something to do, if nothing else happens first.
pub fn next_wake(deploy: &Deploy) -> Option<Time> {
    let progress = &deploy.progress;
    if progress.ending.is_some() {
        return None;
    }
    if let Some(unwind) = &progress.unwind {
        return unwind.progress.retry_at;
    }
    let step = deploy.spec.plan.steps.get(progress.cursor)?;
    let current = &progress.step;
    if let Some(retry_at) = current.retry_at {
        return Some(retry_at);
    }
    let timing = deploy.spec.plan.timing;
    let verifying = |from: Option<Time>, until: Option<Time>| {
        let v = &current.verification;
        // The step's minimum time matters only while the latest check passed and none is
        // outstanding; otherwise a report, not the clock, moves the step on, and waking at a
        // passed minimum would have the engine tick in a loop for nothing.
        let passed = v.last == Some(Verdict::Pass) && !verify_outstanding(current);
        let mut wakes = vec![until.filter(|_| passed)];
        if let Some(since) = v.inconclusive_since {
            wakes.push(Some(since.after(timing.inconclusive_limit)));
        }
        if !verify_outstanding(current) && from.is_some() {
            wakes.push(Some(match v.last_at {
                Some(last) => last.after(timing.analysis_interval),
                None => from.unwrap_or(current.started_at),
            }));
        }
        wakes.into_iter().flatten().min()
    };
    match &step.kind {
        StepKind::Go { .. } => {
            // Valid approvals (one per person) drop below `required` when the required-th
            // latest expires; earlier expiries change nothing and must not wake the engine.
            let (_, required) = approval_step(deploy)?;
            let mut expiries: Vec<Time> = progress.approvals.iter().map(|a| a.expires_at).collect();
            expiries.sort_unstable_by(|a, b| b.cmp(a));
            let index = usize::try_from(required).ok()?.checked_sub(1)?;
            Some(expiries.get(index).copied().unwrap_or(current.started_at))
        }
        StepKind::Canary { duration, .. } => {
            let since = current.since;
            verifying(since, since.map(|s| s.after(*duration)))
        }
        StepKind::Bake { duration } => verifying(
            Some(current.started_at),
            Some(current.started_at.after(*duration)),
        ),
        StepKind::PostVerify { after } => {
            let due = current.started_at.after(*after);
            verifying(Some(due), Some(due))
        }
        _ => None,
    }
}

#[derive(Default)]
struct Out {
    events: Vec<Event>,
    effects: Vec<Effect>,
}

impl Out {
    fn into_decision(self, deploy: Deploy) -> Decision {
        Decision {
            deploy,
            events: self.events,
            effects: self.effects,
        }
    }
}

impl StepProgress {
    fn begin(now: Time) -> Self {
        StepProgress {
            started_at: now,
            attempt: 1,
            ..StepProgress::default()
        }
    }

    fn is_done(&self, op: &str) -> bool {
        self.done.contains(op)
    }

    /// Raises the attempt and forgets operations not yet done, so they are issued again under
    /// new keys once `retry_at` has passed.
    fn retry(&mut self, now: Time) -> Time {
        self.attempt += 1;
        self.issued.retain(|op| self.done.contains(op));
        let exponent = self.attempt.saturating_sub(2).min(16);
        let backoff = Span::from_secs(1u64 << exponent).min(MAX_BACKOFF);
        let at = now.after(backoff);
        self.retry_at = Some(at);
        at
    }
}

enum Status {
    Done,
    Pending,
    Failed(String),
    /// Go back to this step (approvals expired while waiting for go).
    BackTo(usize),
}

fn step_title(step: &Step) -> String {
    match &step.region {
        Some(region) => format!("{} [{region}]", step.kind.name()),
        None => step.kind.name().to_owned(),
    }
}

fn region_key(region: &Option<String>) -> String {
    region.clone().unwrap_or_default()
}

fn notify(notice: Notice) -> Action {
    Action::Notify { notice }
}

fn action_name(action: &Action) -> String {
    let name = match action {
        Action::Preflight => "preflight",
        Action::Notify { .. } => "notify",
        Action::RunTask { .. } => "run-task",
        Action::Launch { .. } => "launch",
        Action::SetTraffic { .. } => "set-traffic",
        Action::Stop { .. } => "stop",
        Action::Verify { .. } => "verify",
        Action::RollbackDeploy { .. } => "rollback-deploy",
        Action::Finalize { .. } => "finalize",
    };
    name.to_owned()
}

/// Emits the effect for `op` under the current attempt and records it as issued.
fn fire(
    deploy: DeployId,
    step: &str,
    progress: &mut StepProgress,
    op: &str,
    action: Action,
    out: &mut Out,
) {
    progress.issued.insert(op.to_owned());
    let key = EffectKey {
        deploy,
        step: step.to_owned(),
        attempt: progress.attempt,
        op: op.to_owned(),
    };
    out.events.push(Event::EffectRequested {
        key: key.to_string(),
        action: action_name(&action),
    });
    out.effects.push(Effect { key, action });
}

/// Ensure-style operation: done → true; otherwise emit it once (unless a retry is pending) and
/// report false.
fn ensure_op(
    deploy: DeployId,
    step: &str,
    progress: &mut StepProgress,
    op: &str,
    action: impl FnOnce() -> Action,
    out: &mut Out,
) -> bool {
    if progress.is_done(op) {
        return true;
    }
    if !progress.issued.contains(op) && progress.retry_at.is_none() {
        fire(deploy, step, progress, op, action(), out);
    }
    false
}

fn verify_outstanding(progress: &StepProgress) -> bool {
    let runs = progress.verification.runs;
    runs > 0 && !progress.is_done(&format!("verify-{}", runs - 1))
}

/// Keeps checks running every analysis interval from the start of `period` until its end has
/// passed with a passing latest check; checks look back no further than `traffic_since`, when
/// the step's traffic began. Fails when verification has been inconclusive longer than
/// the limit. Returns whether the step is verified: the end is reached, the latest check passed
/// and none is outstanding.
#[expect(
    clippy::too_many_arguments,
    reason = "the facts of one verifying step, each a different thing"
)]
fn ensure_verification(
    spec: &DeploySpec,
    label: &str,
    step: &Step,
    progress: &mut StepProgress,
    period: Range<Time>,
    traffic_since: Time,
    now: Time,
    out: &mut Out,
) -> Result<bool, String> {
    let timing = spec.plan.timing;
    if let Some(inconclusive_since) = progress.verification.inconclusive_since
        && now.since(inconclusive_since) >= timing.inconclusive_limit
    {
        return Err(format!(
            "{} verification stayed inconclusive for more than {}",
            step.kind.name(),
            timing.inconclusive_limit
        ));
    }
    if verify_outstanding(progress) {
        return Ok(false);
    }
    if progress.verification.last == Some(Verdict::Pass) && now >= period.end {
        // Verified: a further check now would only be left unread.
        return Ok(true);
    }
    let due = match progress.verification.last_at {
        Some(last) => last.after(timing.analysis_interval),
        None => period.start,
    };
    if now >= due && progress.retry_at.is_none() {
        let op = format!("verify-{}", progress.verification.runs);
        progress.verification.runs += 1;
        progress.verification.last_at = Some(now);
        let action = Action::Verify {
            region: step.region.clone(),
            release: spec.release.clone(),
            baseline: spec.previous.clone(),
            step: step.kind.name().to_owned(),
            since: Some(traffic_since),
        };
        fire(spec.id, label, progress, &op, action, out);
    }
    Ok(false)
}

fn traffic_pools(spec: &DeploySpec) -> u32 {
    spec.pools
        .values()
        .filter(|p| p.traffic)
        .map(|p| p.count)
        .sum()
}

fn approval_step(deploy: &Deploy) -> Option<(usize, u32)> {
    deploy
        .spec
        .plan
        .steps
        .iter()
        .enumerate()
        .find_map(|(index, step)| match step.kind {
            StepKind::Approval { required, .. } => Some((index, required)),
            _ => None,
        })
}

/// Runs steps forward until one has to wait.
fn advance(deploy: &mut Deploy, now: Time, out: &mut Out) {
    // Each pass completes a step, starts an unwind, or returns: bounded by the plan's length.
    for _ in 0..=deploy.spec.plan.steps.len() * 2 + 2 {
        if deploy.progress.ending.is_some() {
            return;
        }
        if deploy.progress.unwind.is_some() {
            ensure_unwind(deploy, now, out);
            return;
        }
        if deploy.progress.cursor >= deploy.spec.plan.steps.len() {
            finish(deploy, DeployResult::Succeeded, None, now, out);
            return;
        }
        match ensure_step(deploy, now, out) {
            Status::Pending => return,
            Status::Done => {
                let cursor = deploy.progress.cursor;
                out.events.push(Event::StepCompleted {
                    step: cursor,
                    name: deploy.spec.plan.steps[cursor].kind.name().to_owned(),
                });
                // The step after approval (go) runs under the approval's attempt: each round
                // of approval and go after approvals expired gets fresh effect keys.
                let attempt = match deploy.spec.plan.steps[cursor].kind {
                    StepKind::Approval { .. } => deploy.progress.step.attempt,
                    _ => 1,
                };
                enter_step(deploy, cursor + 1, attempt, now, out);
            }
            Status::Failed(reason) => {
                begin_unwind(deploy, UnwindCause::Failure, &reason, None, now, out);
            }
            Status::BackTo(step) => {
                out.events.push(Event::ApprovalsExpired);
                // A new round: its notifications need keys of their own (the first round's are
                // done and would be taken as duplicates), and a go given while the approvals
                // were void does not count.
                let attempt = deploy.progress.step.attempt + 1;
                deploy.progress.go = None;
                enter_step(deploy, step, attempt, now, out);
            }
        }
    }
}

fn enter_step(deploy: &mut Deploy, index: usize, attempt: u32, now: Time, out: &mut Out) {
    deploy.progress.cursor = index;
    deploy.progress.step = StepProgress {
        attempt,
        ..StepProgress::begin(now)
    };
    if let Some(step) = deploy.spec.plan.steps.get(index) {
        out.events.push(Event::StepStarted {
            step: index,
            name: step.kind.name().to_owned(),
            region: step.region.clone(),
        });
    }
}

fn ensure_step(deploy: &mut Deploy, now: Time, out: &mut Out) -> Status {
    let index = deploy.progress.cursor;
    let step = deploy.spec.plan.steps[index].clone();
    let label = index.to_string();
    if let Some(at) = deploy.progress.step.retry_at {
        if now < at {
            return Status::Pending;
        }
        deploy.progress.step.retry_at = None;
    }
    // Checked before the borrow below: approvals that expire while go is awaited send the
    // deploy back to the approval step, so approval always immediately precedes release.
    if matches!(step.kind, StepKind::Go { .. })
        && let Some((approval_index, required)) = approval_step(deploy)
        && deploy.valid_approvals(now) < required
    {
        return Status::BackTo(approval_index);
    }
    let valid_approvals = deploy.valid_approvals(now);
    let Deploy { spec, progress } = deploy;
    let id = spec.id;
    let facts = progress
        .regions
        .entry(region_key(&step.region))
        .or_default();
    let current = &mut progress.step;
    match &step.kind {
        StepKind::Preflight => {
            if spec.break_glass && progress.break_glass.is_none() {
                if !current.issued.contains("notify-break-glass-requested") {
                    let action = notify(Notice::BreakGlassRequested);
                    fire(
                        id,
                        &label,
                        current,
                        "notify-break-glass-requested",
                        action,
                        out,
                    );
                }
                return Status::Pending;
            }
            if !ensure_op(id, &label, current, "preflight", || Action::Preflight, out) {
                return Status::Pending;
            }
        }
        StepKind::Approval { required, .. } => {
            if valid_approvals < *required {
                // A recheck made for approvals that have since lapsed says nothing about the
                // moment the next ones arrive: forget it, and run it again then under a new key.
                if current.issued.remove(RECHECK) {
                    current.done.remove(RECHECK);
                    current.attempt += 1;
                }
                if !current.issued.contains("notify-approval") {
                    let action = notify(Notice::WaitingForApproval);
                    fire(id, &label, current, "notify-approval", action, out);
                }
                return Status::Pending;
            }
            let last_gate = !spec
                .plan
                .steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Go { .. }));
            if last_gate && !ensure_op(id, &label, current, RECHECK, || Action::Preflight, out) {
                return Status::Pending;
            }
        }
        StepKind::Go { .. } => {
            if !current.issued.contains("notify-go") {
                out.events.push(Event::GoAnnounced {
                    message: spec.go_announcement(),
                });
                fire(
                    id,
                    &label,
                    current,
                    "notify-go",
                    notify(Notice::GoNoGo),
                    out,
                );
            }
            if progress.go.is_none() {
                return Status::Pending;
            }
            if !ensure_op(id, &label, current, RECHECK, || Action::Preflight, out) {
                return Status::Pending;
            }
        }
        StepKind::Migrate => {
            let action = || Action::RunTask {
                task: "migrate".to_owned(),
                release: spec.release.clone(),
            };
            if !ensure_op(id, &label, current, "migrate", action, out) {
                return Status::Pending;
            }
        }
        StepKind::Canary {
            share_bp,
            duration,
            instances,
            header,
        } => {
            if !current.issued.contains("launch") && !current.is_done("launch") {
                facts.new_launched = true;
            }
            let launch = || Action::Launch {
                region: step.region.clone(),
                release: spec.release.clone(),
                pools: spec
                    .pools
                    .iter()
                    .filter(|(_, pool)| pool.traffic)
                    .map(|(name, pool)| (name.clone(), (*instances).min(pool.count)))
                    .collect(),
                timeout: spec.plan.timing.launch_timeout,
            };
            if !ensure_op(id, &label, current, "launch", launch, out) {
                return Status::Pending;
            }
            let split = || {
                let mut weights = BTreeMap::from([(spec.release.label.clone(), *share_bp)]);
                if let Some(previous) = &spec.previous {
                    weights.insert(previous.label.clone(), 10_000 - share_bp.min(&10_000));
                }
                Action::SetTraffic {
                    region: step.region.clone(),
                    split: Split {
                        weights,
                        sticky: true,
                        header: header.clone(),
                        header_version: header.as_ref().map(|_| spec.release.label.clone()),
                    },
                }
            };
            if !ensure_op(id, &label, current, "traffic", split, out) {
                return Status::Pending;
            }
            let since = *current.since.get_or_insert(now);
            let period = since..since.after(*duration);
            match ensure_verification(spec, &label, &step, current, period, since, now, out) {
                Err(reason) => return Status::Failed(reason),
                Ok(true) => {}
                Ok(false) => return Status::Pending,
            }
        }
        StepKind::Surge => {
            if !current.issued.contains("launch") && !current.is_done("launch") {
                facts.new_launched = true;
            }
            let launch = || Action::Launch {
                region: step.region.clone(),
                release: spec.release.clone(),
                pools: spec
                    .pools
                    .iter()
                    .map(|(name, pool)| (name.clone(), pool.count))
                    .collect(),
                timeout: spec.plan.timing.launch_timeout,
            };
            if !ensure_op(id, &label, current, "launch", launch, out) {
                return Status::Pending;
            }
            let old_serving = !facts.old_retired;
            let split = || {
                // By instance count: both fleets have the desired size, which is the 50/50 state.
                let weight = traffic_pools(spec).max(1);
                let mut weights = BTreeMap::from([(spec.release.label.clone(), weight)]);
                if let Some(previous) = spec.previous.as_ref().filter(|_| old_serving) {
                    weights.insert(previous.label.clone(), weight);
                }
                Action::SetTraffic {
                    region: step.region.clone(),
                    split: Split {
                        weights,
                        sticky: false,
                        header: None,
                        header_version: None,
                    },
                }
            };
            if !ensure_op(id, &label, current, "traffic", split, out) {
                return Status::Pending;
            }
        }
        StepKind::Bake { duration } => {
            let since = current.started_at;
            let period = since..since.after(*duration);
            match ensure_verification(spec, &label, &step, current, period, since, now, out) {
                Err(reason) => return Status::Failed(reason),
                Ok(true) => {}
                Ok(false) => return Status::Pending,
            }
        }
        StepKind::ScaleIn { confirm } => {
            if *confirm && current.confirmed_by.is_none() {
                return Status::Pending;
            }
            let only_new = || Action::SetTraffic {
                region: step.region.clone(),
                split: Split::only(&spec.release.label),
            };
            if !ensure_op(id, &label, current, "traffic", only_new, out) {
                return Status::Pending;
            }
            if let Some(previous) = &spec.previous {
                if !current.issued.contains("stop-old") && !current.is_done("stop-old") {
                    facts.old_retired = true;
                }
                let stop = || Action::Stop {
                    region: step.region.clone(),
                    release: previous.clone(),
                };
                if !ensure_op(id, &label, current, "stop-old", stop, out) {
                    return Status::Pending;
                }
            }
        }
        StepKind::PostVerify { after } => {
            let due = current.started_at.after(*after);
            if now < due {
                return Status::Pending;
            }
            let since = current.started_at;
            match ensure_verification(spec, &label, &step, current, due..due, since, now, out) {
                Err(reason) => return Status::Failed(reason),
                Ok(true) => {}
                Ok(false) => return Status::Pending,
            }
        }
        StepKind::Finalize => {
            let finalize = || Action::Finalize {
                release: spec.release.clone(),
            };
            if !ensure_op(id, &label, current, "finalize", finalize, out) {
                return Status::Pending;
            }
        }
    }
    Status::Done
}

/// Applies an effect's report to the facts. Returns false when the report is stale.
fn record_report(
    deploy: &mut Deploy,
    key: &EffectKey,
    outcome: &Outcome,
    now: Time,
    out: &mut Out,
) -> bool {
    if key.deploy != deploy.spec.id {
        return false;
    }
    let unwinding = deploy.progress.unwind.is_some();
    let overriding = deploy.progress.break_glass.is_some();
    let wait_for_slot = deploy.spec.wait_for_slot;
    let deploy_id = deploy.spec.id;
    let step_name = deploy
        .spec
        .plan
        .steps
        .get(deploy.progress.cursor)
        .map(|s| s.kind.name())
        .unwrap_or("done");
    let progress = match &mut deploy.progress.unwind {
        Some(unwind) if key.step == UNWIND => &mut unwind.progress,
        None if key.step == deploy.progress.cursor.to_string() => &mut deploy.progress.step,
        _ => return false,
    };
    if key.attempt != progress.attempt
        || !progress.issued.contains(&key.op)
        || progress.is_done(&key.op)
    {
        return false;
    }
    let op = key.op.as_str();
    let key_text = key.to_string();
    let mut failure = None;
    match outcome {
        Outcome::Done { detail } if op.starts_with("verify-") => {
            progress.done.insert(key.op.clone());
            let detail = format!("check gave no verdict: {detail}");
            record_unjudged(progress, &detail, now);
            out.events.push(Event::Checked {
                key: key_text,
                verdict: Verdict::Inconclusive,
                detail,
                score: None,
            });
        }
        Outcome::Done { detail } => {
            progress.done.insert(key.op.clone());
            out.events.push(Event::EffectSucceeded {
                key: key_text,
                detail: detail.clone(),
            });
        }
        Outcome::Checked {
            verdict,
            detail,
            score,
            measurements,
        } => {
            progress.done.insert(key.op.clone());
            record_verdict(progress, *verdict, now);
            progress.verification.latest = Some(LatestCheck {
                at: now,
                verdict: *verdict,
                score: *score,
                detail: detail.clone(),
                measurements: measurements.clone(),
            });
            for measurement in measurements {
                out.events.push(Event::Measured {
                    key: key_text.clone(),
                    measurement: measurement.clone(),
                });
            }
            out.events.push(Event::Checked {
                key: key_text,
                verdict: *verdict,
                detail: detail.clone(),
                score: *score,
            });
            if *verdict == Verdict::Fail {
                failure = Some(format!("{step_name} check failed: {detail}"));
            }
        }
        Outcome::Preflight { gates } => {
            failure = record_preflight(
                deploy_id,
                key,
                progress,
                gates,
                (overriding, wait_for_slot),
                now,
                out,
            );
            if failure.is_none() && progress.waiting.is_none() {
                progress.done.insert(key.op.clone());
            }
        }
        Outcome::Failed { error } => {
            if op.starts_with("verify-") {
                // A check that could not run tells nothing: inconclusive, never a pass.
                progress.done.insert(key.op.clone());
                let detail = format!("check could not run: {error}");
                record_unjudged(progress, &detail, now);
                out.events.push(Event::Checked {
                    key: key_text,
                    verdict: Verdict::Inconclusive,
                    detail,
                    score: None,
                });
            } else if op.starts_with("notify-") {
                // Nothing waits for notifications; the failure is recorded, delivery is the
                // notifier's business.
                progress.done.insert(key.op.clone());
                out.events.push(Event::EffectFailed {
                    key: key_text,
                    error: error.clone(),
                    retry_at: None,
                });
            } else if unwinding || retryable(op) && progress.attempt < MAX_ATTEMPTS {
                let retry_at = progress.retry(now);
                out.events.push(Event::EffectFailed {
                    key: key_text,
                    error: error.clone(),
                    retry_at: Some(retry_at),
                });
            } else {
                out.events.push(Event::EffectFailed {
                    key: key_text,
                    error: error.clone(),
                    retry_at: None,
                });
                if op == "finalize" {
                    // Tagging and notes failing must not undo a good release.
                    progress.done.insert(key.op.clone());
                } else if retryable(op) {
                    failure = Some(format!("{op} failed {MAX_ATTEMPTS} times: {error}"));
                } else {
                    failure = Some(format!("{op} failed: {error}"));
                }
            }
        }
    }
    if let Some(reason) = failure
        && !unwinding
    {
        begin_unwind(deploy, UnwindCause::Failure, &reason, None, now, out);
    }
    true
}

/// Records what each preflight check found. Returns the failure when a refusal stands (one
/// that break-glass may not override, or that will not end by itself, or any when the deploy
/// was asked not to wait); when every standing refusal ends by itself, the step waits for the
/// latest of those ends under a new attempt, and preflight runs again then.
fn record_preflight(
    deploy: DeployId,
    reported: &EffectKey,
    progress: &mut StepProgress,
    gates: &[GateResult],
    (overriding, wait_for_slot): (bool, bool),
    now: Time,
    out: &mut Out,
) -> Option<String> {
    let key = reported.to_string();
    let label = reported.step.as_str();
    let mut standing = Vec::new();
    for gate in gates {
        let overridden = !gate.passed && gate.overridable && overriding;
        out.events.push(Event::PreflightChecked {
            key: key.clone(),
            check: gate.check.clone(),
            passed: gate.passed,
            overridden,
            detail: gate.detail.clone(),
        });
        if !gate.passed && !overridden {
            standing.push(gate);
        }
    }
    progress.waiting = None;
    if standing.is_empty() {
        out.events.push(Event::EffectSucceeded {
            key,
            detail: match overriding {
                true => "preflight passed under break-glass".to_owned(),
                false => "preflight passed".to_owned(),
            },
        });
        return None;
    }
    let reason = standing
        .iter()
        .map(|gate| gate.detail.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let until = standing
        .iter()
        .map(|gate| gate.until)
        .collect::<Option<Vec<_>>>();
    match until.and_then(|ends| ends.into_iter().max()) {
        Some(until) if wait_for_slot && until > now => {
            // Only the check runs again, under a new key; what else the step issued (its
            // notices) stays issued.
            progress.attempt += 1;
            progress.issued.remove(&reported.op);
            progress.retry_at = Some(until);
            progress.waiting = Some(SlotWait {
                until,
                reason: reason.clone(),
            });
            out.events.push(Event::SlotAwaited {
                until,
                reason: reason.clone(),
            });
            let notice = Notice::WaitingForSlot { until, reason };
            fire(deploy, label, progress, "notify-slot", notify(notice), out);
            None
        }
        _ => Some(
            standing
                .iter()
                .map(|gate| match &gate.hint {
                    Some(hint) => format!("{} (hint: {hint})", gate.detail),
                    None => gate.detail.clone(),
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// Operations whose failure is worth retrying: they change routing or stop processes, which
/// target drivers make idempotent, and a transient error should not fail a deploy.
fn retryable(op: &str) -> bool {
    matches!(op, "traffic" | "stop-old" | "finalize")
}

/// A check that ran without a verdict (or not at all) tells nothing: inconclusive, never a pass
/// (the previous verdict must not stand in for it).
fn record_unjudged(progress: &mut StepProgress, detail: &str, now: Time) {
    record_verdict(progress, Verdict::Inconclusive, now);
    progress.verification.latest = Some(LatestCheck {
        at: now,
        verdict: Verdict::Inconclusive,
        score: None,
        detail: detail.to_owned(),
        measurements: Vec::new(),
    });
}

fn record_verdict(progress: &mut StepProgress, verdict: Verdict, now: Time) {
    let v = &mut progress.verification;
    v.last = Some(verdict);
    match verdict {
        Verdict::Pass => v.inconclusive_since = None,
        Verdict::Inconclusive => {
            v.inconclusive_since.get_or_insert(now);
        }
        Verdict::Fail => {}
    }
}

fn begin_unwind(
    deploy: &mut Deploy,
    cause: UnwindCause,
    reason: &str,
    by: Option<&str>,
    now: Time,
    out: &mut Out,
) {
    if deploy.progress.unwind.is_some() {
        return;
    }
    out.events.push(Event::UnwindStarted {
        cause,
        reason: reason.to_owned(),
        by: by.map(str::to_owned),
    });
    deploy.progress.unwind = Some(Unwind {
        cause,
        reason: reason.to_owned(),
        by: by.map(str::to_owned),
        progress: StepProgress::begin(now),
    });
}

/// Undoes the deploy region by region: where the old fleet still runs, traffic goes back to it
/// and the new fleet stops (in that order, so one complete fleet always serves); where it was
/// already stopped, a rollback deploy of the previous release takes over.
fn ensure_unwind(deploy: &mut Deploy, now: Time, out: &mut Out) {
    let Deploy { spec, progress } = deploy;
    let Some(unwind) = progress.unwind.as_mut() else {
        return;
    };
    let current = &mut unwind.progress;
    if let Some(at) = current.retry_at {
        if now < at {
            return;
        }
        current.retry_at = None;
    }
    let mut complete = true;
    let mut retired = Vec::new();
    for region in spec.plan.regions() {
        let facts = progress
            .regions
            .get(&region_key(&region))
            .cloned()
            .unwrap_or_default();
        if !facts.new_launched {
            continue;
        }
        if facts.old_retired {
            retired.push(region);
            continue;
        }
        let key = region_key(&region);
        if let Some(previous) = &spec.previous {
            let back = || Action::SetTraffic {
                region: region.clone(),
                split: Split::only(&previous.label),
            };
            if !ensure_op(
                spec.id,
                UNWIND,
                current,
                &format!("traffic-back:{key}"),
                back,
                out,
            ) {
                complete = false;
                continue;
            }
        }
        let stop = || Action::Stop {
            region: region.clone(),
            release: spec.release.clone(),
        };
        complete &= ensure_op(
            spec.id,
            UNWIND,
            current,
            &format!("stop-new:{key}"),
            stop,
            out,
        );
    }
    if let (Some(previous), false) = (&spec.previous, retired.is_empty()) {
        let rollback = || Action::RollbackDeploy {
            to: previous.clone(),
            regions: retired,
            reason: unwind.reason.clone(),
        };
        complete &= ensure_op(spec.id, UNWIND, current, "rollback-deploy", rollback, out);
    }
    if !complete {
        return;
    }
    let launched = progress.regions.values().any(|r| r.new_launched);
    let result = match unwind.cause {
        UnwindCause::Abort => DeployResult::Aborted,
        UnwindCause::Rollback => DeployResult::RolledBack,
        UnwindCause::Failure if launched && spec.previous.is_some() => DeployResult::RolledBack,
        UnwindCause::Failure => DeployResult::Failed,
    };
    let reason = Some(unwind.reason.clone());
    finish(deploy, result, reason, now, out);
}

fn finish(
    deploy: &mut Deploy,
    result: DeployResult,
    reason: Option<String>,
    now: Time,
    out: &mut Out,
) {
    out.events.push(Event::DeployFinished {
        result,
        reason: reason.clone(),
    });
    let mut progress = StepProgress::begin(now);
    let action = notify(Notice::Finished {
        result,
        reason: reason.clone(),
    });
    fire(
        deploy.spec.id,
        "end",
        &mut progress,
        "notify-finished",
        action,
        out,
    );
    deploy.progress.ending = Some(Ending {
        result,
        at: now,
        reason,
    });
}

fn conflict(message: String, hint: String) -> Rejection {
    Rejection {
        code: RejectionCode::Conflict,
        message,
        hint,
    }
}

fn require_deployer(by: &Actor, what: &str) -> Result<(), Rejection> {
    if by.role.can_deploy() {
        return Ok(());
    }
    Err(Rejection {
        code: RejectionCode::Forbidden,
        message: format!(
            "{} is a {} and may not {what} deploys",
            by.name,
            by.role.name()
        ),
        hint: "ask someone with the deployer role, or an admin to grant it".to_owned(),
    })
}

fn refuse_while_unwinding(deploy: &Deploy) -> Result<(), Rejection> {
    match &deploy.progress.unwind {
        Some(unwind) => Err(conflict(
            format!(
                "deploy {} is already being undone: {}",
                deploy.spec.id, unwind.reason
            ),
            format!("follow it with `slipway status {}`", deploy.spec.id),
        )),
        None => Ok(()),
    }
}

fn current_step(deploy: &Deploy) -> Option<&Step> {
    deploy.spec.plan.steps.get(deploy.progress.cursor)
}

/// Whether `by` may approve `deploy` at all: a role the approval step allows (an approver or
/// admin by default), not its requester, and not an author of its commits when the step says
/// so. The dashboard asks this to list only what a person can act on.
pub fn may_approve(deploy: &Deploy, by: &Actor) -> Result<(), Rejection> {
    let id = deploy.spec.id;
    let forbidden = |message: String, hint: &str| Rejection {
        code: RejectionCode::Forbidden,
        message,
        hint: hint.to_owned(),
    };
    let (roles, not_authors) =
        match approval_step(deploy).map(|(i, _)| &deploy.spec.plan.steps[i].kind) {
            Some(StepKind::Approval {
                roles, not_authors, ..
            }) => (roles.clone(), *not_authors),
            _ => (Vec::new(), false),
        };
    let allowed = match roles.is_empty() {
        true => by.role.can_approve(),
        false => roles.contains(&by.role),
    };
    if !allowed {
        let names: Vec<&str> = match roles.is_empty() {
            true => vec!["approver", "admin"],
            false => roles.iter().map(|r| r.name()).collect(),
        };
        return Err(forbidden(
            format!(
                "{} is a {} and may not approve deploys to {} (allowed: {})",
                by.name,
                by.role.name(),
                deploy.spec.environment,
                names.join(", ")
            ),
            "ask someone with an allowed role; an admin can grant one with `slipway user set-role NAME --role ROLE`",
        ));
    }
    if by.name == deploy.spec.requested_by {
        return Err(forbidden(
            format!("{} requested deploy {id} and cannot approve it", by.name),
            "another engineer must approve it",
        ));
    }
    if not_authors && deploy.spec.authors.iter().any(|a| a == &by.name) {
        return Err(forbidden(
            format!(
                "{} wrote commits of {} and cannot approve its deploy to {}",
                by.name, deploy.spec.release.label, deploy.spec.environment
            ),
            "an engineer who wrote none of the release's commits must approve it",
        ));
    }
    Ok(())
}

fn approve(
    deploy: &mut Deploy,
    by: &Actor,
    binding: &Binding,
    now: Time,
    out: &mut Out,
) -> Result<(), Rejection> {
    let id = deploy.spec.id;
    may_approve(deploy, by)?;
    let expected = deploy.spec.binding();
    if *binding != expected {
        let differs = if binding.deploy != expected.deploy {
            format!(
                "it was given for deploy {}, not deploy {id}: an approval cannot be replayed onto another deploy",
                binding.deploy
            )
        } else if binding.artifact != expected.artifact {
            format!(
                "it was given for artifact {}, but deploy {id} ships {}",
                binding.artifact, expected.artifact
            )
        } else if binding.config != expected.config {
            format!(
                "it was given for config {}, but deploy {id} pins {}",
                binding.config, expected.config
            )
        } else {
            format!(
                "it was given for plan {}, but deploy {id} runs plan {}",
                binding.plan, expected.plan
            )
        };
        return Err(Rejection {
            code: RejectionCode::Invalid,
            message: format!("approval refused: {differs}"),
            hint: format!(
                "review deploy {id} again with `slipway status {id}` and approve what it runs now"
            ),
        });
    }
    refuse_while_unwinding(deploy)?;
    let Some((approval_index, _)) = approval_step(deploy) else {
        return Err(conflict(
            format!("deploy {} needs no approval", deploy.spec.id),
            "nothing to do".to_owned(),
        ));
    };
    let waiting_for_go = matches!(
        current_step(deploy).map(|s| &s.kind),
        Some(StepKind::Go { .. })
    );
    if deploy.progress.cursor > approval_index && !waiting_for_go {
        return Err(conflict(
            format!("deploy {} is past its approval step", deploy.spec.id),
            "approvals are only taken before the deploy acts".to_owned(),
        ));
    }
    let StepKind::Approval { expires, .. } = deploy.spec.plan.steps[approval_index].kind else {
        unreachable!("approval_step returns an approval step")
    };
    let expires_at = now.after(expires);
    deploy.progress.approvals.retain(|a| a.by != by.name);
    deploy.progress.approvals.push(Approval {
        by: by.name.clone(),
        at: now,
        expires_at,
    });
    out.events.push(Event::Approved {
        by: by.name.clone(),
        expires_at,
    });
    Ok(())
}

/// Whether `by` may acknowledge `deploy`'s go/no-go now: it waits for one, and, when the step
/// wants someone other than the requester, `by` is not the requester.
pub fn may_go(deploy: &Deploy, by: &Actor) -> Result<(), Rejection> {
    require_deployer(by, "acknowledge")?;
    let id = deploy.spec.id;
    let by_other = match current_step(deploy).map(|s| &s.kind) {
        Some(StepKind::Go { by_other }) if deploy.progress.go.is_none() => *by_other,
        _ => {
            return Err(conflict(
                format!("deploy {id} is not waiting for go"),
                format!("see where it is with `slipway status {id}`"),
            ));
        }
    };
    if by_other && by.name == deploy.spec.requested_by {
        return Err(Rejection {
            code: RejectionCode::Forbidden,
            message: format!(
                "{} runs deploy {id} and cannot acknowledge its own go/no-go",
                by.name
            ),
            hint: "someone else in the channel must say go: `slipway go ID`".to_owned(),
        });
    }
    Ok(())
}

fn acknowledge_go(
    deploy: &mut Deploy,
    by: &Actor,
    now: Time,
    out: &mut Out,
) -> Result<(), Rejection> {
    require_deployer(by, "acknowledge")?;
    refuse_while_unwinding(deploy)?;
    may_go(deploy, by)?;
    deploy.progress.go = Some(Ack {
        by: by.name.clone(),
        at: now,
    });
    out.events.push(Event::GoAcknowledged {
        by: by.name.clone(),
    });
    Ok(())
}

/// Whether `by` may confirm `deploy`'s break-glass: an approver or admin other than the
/// person who asked for it.
pub fn may_confirm_break_glass(deploy: &Deploy, by: &Actor) -> Result<(), Rejection> {
    let id = deploy.spec.id;
    if !by.role.can_approve() {
        return Err(Rejection {
            code: RejectionCode::Forbidden,
            message: format!(
                "{} is a {} and may not confirm break-glass",
                by.name,
                by.role.name()
            ),
            hint: "ask an approver or an admin to confirm it".to_owned(),
        });
    }
    if by.name == deploy.spec.requested_by {
        return Err(Rejection {
            code: RejectionCode::Forbidden,
            message: format!(
                "{} asked for break-glass on deploy {id} and cannot confirm it",
                by.name
            ),
            hint: "break-glass needs a second person: another approver must confirm it".to_owned(),
        });
    }
    Ok(())
}

fn confirm_break_glass(
    deploy: &mut Deploy,
    by: &Actor,
    now: Time,
    out: &mut Out,
) -> Result<(), Rejection> {
    let id = deploy.spec.id;
    may_confirm_break_glass(deploy, by)?;
    refuse_while_unwinding(deploy)?;
    let at_preflight = matches!(
        current_step(deploy).map(|s| &s.kind),
        Some(StepKind::Preflight)
    );
    if !deploy.spec.break_glass || !at_preflight || deploy.progress.break_glass.is_some() {
        return Err(conflict(
            format!("deploy {id} is not waiting for a break-glass confirmation"),
            format!("see where it is with `slipway status {id}`"),
        ));
    }
    deploy.progress.break_glass = Some(Ack {
        by: by.name.clone(),
        at: now,
    });
    let reason = deploy.spec.reason.clone().unwrap_or_default();
    out.events.push(Event::BreakGlassConfirmed {
        by: by.name.clone(),
        reason,
    });
    let label = deploy.progress.cursor.to_string();
    let action = notify(Notice::BreakGlass);
    fire(
        id,
        &label,
        &mut deploy.progress.step,
        "notify-break-glass",
        action,
        out,
    );
    Ok(())
}

fn confirm_scale_in(
    deploy: &mut Deploy,
    by: &Actor,
    now: Time,
    out: &mut Out,
) -> Result<(), Rejection> {
    require_deployer(by, "confirm")?;
    refuse_while_unwinding(deploy)?;
    let region = match current_step(deploy) {
        Some(Step {
            kind: StepKind::ScaleIn { confirm: true },
            region,
        }) if deploy.progress.step.confirmed_by.is_none() => region.clone(),
        _ => {
            return Err(conflict(
                format!(
                    "deploy {} is not waiting for a scale-in confirmation",
                    deploy.spec.id
                ),
                format!("see where it is with `slipway status {}`", deploy.spec.id),
            ));
        }
    };
    deploy.progress.step.confirmed_by = Some(Ack {
        by: by.name.clone(),
        at: now,
    });
    out.events.push(Event::ScaleInConfirmed {
        by: by.name.clone(),
        region,
    });
    Ok(())
}
