//! Shared fixtures of the core tests: configs built in Rust, deploy specs, actors, and `Run`, a
//! bounded driver that plays a whole deploy against `start`/`decide`/`next_wake` and renders it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use slipway_core::config::{
    ApprovalPolicy, CanaryPolicy, EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig,
};
use slipway_core::decide::{decide, next_wake, start};
use slipway_core::deploy::{
    Action, Actor, Decision, Deploy, DeployId, DeployRequest, DeployResult, DeploySpec, Effect,
    Event, Input, Notice, Outcome, Phase, Rejection, ReleaseRef, Role, Verdict, WaitingFor,
};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::{Span, Time};

/// When every scripted deploy starts: a fixed instant, so snapshots are stable.
pub(crate) const T0: Time = Time::from_millis(1_800_000_000_000);

/// Most decisions a `Run` takes before it gives up: a deploy that loops is a failing test, not a
/// hanging one.
const MAX_DECISIONS: usize = 2_000;

pub(crate) fn minutes(m: u64) -> Span {
    Span::from_secs(m * 60)
}

/// `idp` with a migration, two web instances that take traffic and one worker.
pub(crate) fn service() -> ServiceConfig {
    ServiceConfig {
        name: "idp".to_owned(),
        start: "bin/server --port $PORT".to_owned(),
        migrate: Some("bin/migrate".to_owned()),
        health: HealthCheck::default(),
        pools: BTreeMap::from([
            (
                "web".to_owned(),
                Pool {
                    count: 2,
                    traffic: true,
                },
            ),
            (
                "worker".to_owned(),
                Pool {
                    count: 1,
                    traffic: false,
                },
            ),
        ]),
        config: Default::default(),
        source: None,
    }
}

/// A protected production: one approval valid 30m, go/no-go, a 10% canary for 10m, 15m bake,
/// confirmed scale-in, post-verify 1h later. Checks every 5m (instead of 30s) to keep the
/// snapshots short.
pub(crate) fn protected_env(regions: &[&str]) -> EnvironmentConfig {
    EnvironmentConfig {
        name: "prod".to_owned(),
        target: "local".to_owned(),
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        policy: Policy {
            protected: true,
            approvals: Some(ApprovalPolicy {
                required: 1,
                expires: minutes(30),
                ..ApprovalPolicy::default()
            }),
            go_no_go: true,
            canary: Some(CanaryPolicy {
                share_bp: 1000,
                duration: minutes(10),
                instances: 1,
                header: None,
            }),
            bake: minutes(15),
            confirm_scale_in: true,
            post_verify: Some(minutes(60)),
            analysis_interval: minutes(5),
            ..Policy::default()
        },
        command: None,
    }
}

/// An unprotected environment with every default: no approval, go, canary, bake or post-verify.
pub(crate) fn plain_env() -> EnvironmentConfig {
    EnvironmentConfig {
        name: "dev".to_owned(),
        target: "local".to_owned(),
        regions: Vec::new(),
        policy: Policy::default(),
        command: None,
    }
}

pub(crate) fn release(number: u32) -> ReleaseRef {
    ReleaseRef {
        label: format!("RC {number}"),
        version: format!("1.{number}.0"),
        artifact: format!("sha256:{number:064x}"),
        config: format!("config-{number}"),
        config_version: None,
    }
}

/// Deploy 7: alice deploys `RC 113` of `service()` to `environment`, where `RC 112` runs.
pub(crate) fn spec(environment: &EnvironmentConfig) -> DeploySpec {
    let service = service();
    let request = DeployRequest {
        service: &service,
        environment,
        kind: ReleaseKind::Full,
        release: release(113),
        previous: Some(release(112)),
        requested_by: "alice".to_owned(),
        reason: None,
    };
    DeploySpec::new(DeployId(7), request, T0)
}

pub(crate) fn actor(name: &str, role: Role) -> Actor {
    Actor {
        name: name.to_owned(),
        role,
    }
}

/// The requester. She holds the approver role, which must not let her approve her own deploy.
pub(crate) fn alice() -> Actor {
    actor("alice", Role::Approver)
}

pub(crate) fn bob() -> Actor {
    actor("bob", Role::Approver)
}

pub(crate) fn carol() -> Actor {
    actor("carol", Role::Approver)
}

pub(crate) fn erin() -> Actor {
    actor("erin", Role::Deployer)
}

pub(crate) fn done() -> Outcome {
    Outcome::Done {
        detail: "ok".to_owned(),
    }
}

pub(crate) fn checked(verdict: Verdict) -> Outcome {
    let detail = match verdict {
        Verdict::Pass => "error_rate 0.2% <= 1%",
        Verdict::Fail => "error_rate 3.4% > 1%",
        Verdict::Inconclusive => "error_rate: 3 samples, need 50",
    };
    Outcome::Checked {
        verdict,
        detail: detail.to_owned(),
        score: None,
        measurements: Vec::new(),
    }
}

pub(crate) fn failed(error: &str) -> Outcome {
    Outcome::Failed {
        error: error.to_owned(),
    }
}

/// What a working fleet reports: done, and a passing check for a verification.
pub(crate) fn success(effect: &Effect) -> Option<Outcome> {
    Some(match effect.action {
        Action::Verify { .. } => checked(Verdict::Pass),
        _ => done(),
    })
}

/// The name of the plan step an effect belongs to (`unwind` and `end` as they are).
pub(crate) fn step_of<'a>(spec: &'a DeploySpec, effect: &'a Effect) -> &'a str {
    effect
        .key
        .step
        .parse::<usize>()
        .ok()
        .and_then(|index| spec.plan.steps.get(index))
        .map_or(effect.key.step.as_str(), |step| step.kind.name())
}

/// What a helpful team does when the deploy waits for a person: bob approves, erin says go and
/// confirms scale-in.
pub(crate) fn cooperative(run: &Run) -> Option<Input> {
    match run.deploy.phase(run.now) {
        Phase::Waiting { for_what, .. } => Some(match for_what {
            WaitingFor::Approval { .. } => Input::Approve {
                by: bob(),
                binding: run.deploy.spec.binding(),
            },
            WaitingFor::Go => Input::Go { by: erin() },
            WaitingFor::ScaleInConfirmation => Input::ConfirmScaleIn { by: erin() },
            WaitingFor::BreakGlass | WaitingFor::Slot { .. } => {
                unreachable!("these deploys never ask for break-glass nor wait for a slot")
            }
        }),
        _ => None,
    }
}

/// A deploy being played: its state, a fake clock, the effects not answered yet, and a readable
/// log of every decision.
pub(crate) struct Run {
    pub(crate) deploy: Deploy,
    pub(crate) now: Time,
    /// Effects emitted and not answered yet, in the order they were emitted.
    pub(crate) outstanding: Vec<Effect>,
    /// Every effect emitted, in order.
    pub(crate) emitted: Vec<Effect>,
    /// Every event recorded, in order.
    pub(crate) events: Vec<Event>,
    log: String,
}

impl Run {
    pub(crate) fn start(spec: DeploySpec) -> Run {
        let decision = start(spec, T0);
        let mut run = Run {
            deploy: decision.deploy.clone(),
            now: T0,
            outstanding: Vec::new(),
            emitted: Vec::new(),
            events: Vec::new(),
            log: String::new(),
        };
        run.record("start".to_owned(), decision);
        run
    }

    /// The readable log of every decision so far, for snapshots.
    pub(crate) fn log(&self) -> &str {
        &self.log
    }

    pub(crate) fn result(&self) -> Option<DeployResult> {
        self.deploy.progress.ending.as_ref().map(|e| e.result)
    }

    pub(crate) fn reason(&self) -> String {
        let ending = self.deploy.progress.ending.as_ref();
        ending.and_then(|e| e.reason.clone()).unwrap_or_default()
    }

    /// The current step's name (`done` past the end).
    pub(crate) fn step(&self) -> &str {
        let steps = &self.deploy.spec.plan.steps;
        steps
            .get(self.deploy.progress.cursor)
            .map_or("done", |s| s.kind.name())
    }

    /// Applies `input` at the current time. A refusal is logged and returned; state is kept.
    pub(crate) fn input(&mut self, input: Input) -> Result<Decision, Rejection> {
        let line = describe_input(&self.deploy, &input);
        match decide(&self.deploy, &input, self.now) {
            Ok(decision) => {
                self.record(line, decision.clone());
                Ok(decision)
            }
            Err(rejection) => {
                let _ = writeln!(
                    self.log,
                    "{} {line}\n{:8}refused ({:?}): {}\n{:8}hint: {}",
                    self.offset(self.now),
                    "",
                    rejection.code,
                    rejection.message,
                    "",
                    rejection.hint
                );
                Err(rejection)
            }
        }
    }

    /// Applies an input that must be accepted.
    pub(crate) fn act(&mut self, input: Input) -> Decision {
        let line = describe_input(&self.deploy, &input);
        self.input(input)
            .unwrap_or_else(|rejection| panic!("{line} was refused: {rejection:?}"))
    }

    /// Reports `outcome` for the outstanding effect whose operation is `op`.
    pub(crate) fn report(&mut self, op: &str, outcome: Outcome) -> Decision {
        let position = self
            .outstanding
            .iter()
            .position(|e| e.key.op == op)
            .unwrap_or_else(|| panic!("no outstanding effect `{op}` in {:?}", self.outstanding));
        let effect = self.outstanding.remove(position);
        self.act(Input::Reported {
            key: effect.key,
            outcome,
        })
    }

    /// Moves the clock to `at` (never backwards) and ticks.
    pub(crate) fn tick_at(&mut self, at: Time) -> Decision {
        self.now = self.now.max(at);
        self.act(Input::Tick)
    }

    /// Answers effects with `answer` (`None` leaves one outstanding) and lets time pass to each
    /// wake-up, until the deploy finishes, waits for a person, or nothing is left to do.
    pub(crate) fn settle_with(
        &mut self,
        answer: impl FnMut(&DeploySpec, &Effect) -> Option<Outcome>,
    ) {
        self.drive(answer, |_| None);
    }

    /// `settle_with` answering every effect with success.
    pub(crate) fn settle(&mut self) {
        self.settle_with(|_, effect| success(effect));
    }

    /// Like `settle_with`, and asks `operator` for an input whenever a person is awaited.
    pub(crate) fn drive(
        &mut self,
        mut answer: impl FnMut(&DeploySpec, &Effect) -> Option<Outcome>,
        mut operator: impl FnMut(&Run) -> Option<Input>,
    ) {
        for _ in 0..MAX_DECISIONS {
            if self.deploy.is_finished() {
                return;
            }
            let next = self
                .outstanding
                .iter()
                .enumerate()
                .find_map(|(i, e)| answer(&self.deploy.spec, e).map(|outcome| (i, outcome)));
            if let Some((position, outcome)) = next {
                let effect = self.outstanding.remove(position);
                self.act(Input::Reported {
                    key: effect.key,
                    outcome,
                });
                continue;
            }
            if self.deploy.is_waiting_for_person(self.now) {
                match operator(self) {
                    Some(input) => {
                        self.act(input);
                        continue;
                    }
                    None => return,
                }
            }
            match next_wake(&self.deploy) {
                Some(at) => {
                    let before = self.deploy.clone();
                    let decision = self.tick_at(at);
                    assert!(
                        !decision.is_noop(&before),
                        "next_wake pointed at {at:?}, where a tick does nothing\n{}",
                        self.log
                    );
                }
                None => return,
            }
        }
        panic!(
            "the deploy did not settle in {MAX_DECISIONS} decisions\n{}",
            self.log
        );
    }

    fn record(&mut self, line: String, decision: Decision) {
        let _ = writeln!(self.log, "{} {line}", self.offset(self.now));
        for event in &decision.events {
            let text = describe_event(event, &decision.effects, |t| self.offset(t));
            let _ = writeln!(self.log, "{:8}{text}", "");
        }
        self.outstanding.extend(decision.effects.iter().cloned());
        self.emitted.extend(decision.effects.iter().cloned());
        self.events.extend(decision.events);
        self.deploy = decision.deploy;
    }

    /// `+1h5m`: time since the deploy started, right-aligned.
    fn offset(&self, at: Time) -> String {
        format!("{:>7}", format!("+{}", at.since(T0)))
    }
}

fn region(region: &Option<String>) -> String {
    region
        .as_deref()
        .map(|r| format!(" [{r}]"))
        .unwrap_or_default()
}

fn describe_input(deploy: &Deploy, input: &Input) -> String {
    let who = |actor: &Actor| format!("{} ({})", actor.name, actor.role.name());
    match input {
        Input::Tick => "tick".to_owned(),
        Input::Reported { key, outcome } => format!("report {key}: {}", describe_outcome(outcome)),
        Input::Approve { by, binding } => {
            let wrong = if *binding == deploy.spec.binding() {
                ""
            } else {
                " for another binding"
            };
            format!("approve by {}{wrong}", who(by))
        }
        Input::Go { by } => format!("go by {}", who(by)),
        Input::BreakGlass { by } => format!("break-glass confirmed by {}", who(by)),
        Input::ConfirmScaleIn { by } => format!("confirm scale-in by {}", who(by)),
        Input::Abort { by, reason } => format!("abort by {}: {reason}", who(by)),
        Input::Rollback { by, reason } => format!("rollback by {}: {reason}", who(by)),
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done { detail } => format!("done ({detail})"),
        Outcome::Checked {
            verdict, detail, ..
        } => format!("checked {verdict:?} ({detail})"),
        Outcome::Failed { error } => format!("failed ({error})"),
        Outcome::Preflight { gates } => {
            let gates: Vec<String> = gates
                .iter()
                .map(|g| match g.passed {
                    true => format!("{} passed", g.check),
                    false => format!("{} refused: {}", g.check, g.detail),
                })
                .collect();
            format!("preflight ({})", gates.join("; "))
        }
    }
}

fn describe_event(event: &Event, effects: &[Effect], offset: impl Fn(Time) -> String) -> String {
    match event {
        Event::DeployCreated {
            service,
            environment,
            release,
            version,
            purpose,
            requested_by,
            plan,
        } => format!(
            "deploy created: {service} {release} ({version}) to {environment}, {purpose:?}, by \
             {requested_by}; plan: {}",
            plan.join(", ")
        ),
        Event::StepStarted {
            step,
            name,
            region: r,
        } => {
            format!("step {step} {name}{} started", region(r))
        }
        Event::StepCompleted { step, name } => format!("step {step} {name} completed"),
        Event::EffectRequested { key, action } => {
            let effect = effects.iter().find(|e| e.key.to_string() == *key);
            let detail = effect.map_or_else(|| action.clone(), |e| describe_action(&e.action));
            format!("request {key}: {detail}")
        }
        Event::EffectSucceeded { key, detail } => format!("succeeded {key}: {detail}"),
        Event::EffectFailed {
            key,
            error,
            retry_at,
        } => match retry_at {
            Some(at) => format!("failed {key}: {error}; retry at {}", offset(*at).trim()),
            None => format!("failed {key}: {error}; no retry"),
        },
        Event::Measured { key, measurement } => {
            format!("measured {key}: {}", measurement.describe())
        }
        Event::Checked {
            key,
            verdict,
            detail,
            ..
        } => format!("checked {key}: {verdict:?} ({detail})"),
        Event::Approved { by, expires_at } => {
            format!(
                "approved by {by}, valid until {}",
                offset(*expires_at).trim()
            )
        }
        Event::ApprovalsExpired => "approvals expired".to_owned(),
        Event::PreflightChecked {
            check,
            passed,
            overridden,
            detail,
            ..
        } => match (passed, overridden) {
            (true, _) => format!("preflight {check} passed: {detail}"),
            (false, true) => format!("preflight {check} overridden: {detail}"),
            (false, false) => format!("preflight {check} refused: {detail}"),
        },
        Event::SlotAwaited { until, reason } => {
            format!("waiting until {} for: {reason}", offset(*until).trim())
        }
        Event::BreakGlassConfirmed { by, reason } => {
            format!("break-glass confirmed by {by}: {reason}")
        }
        Event::GoAnnounced { message } => format!("announced: {message}"),
        Event::GoAcknowledged { by } => format!("go acknowledged by {by}"),
        Event::ScaleInConfirmed { by, region: r } => {
            format!("scale-in{} confirmed by {by}", region(r))
        }
        Event::UnwindStarted { cause, reason, by } => {
            let by = by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            format!("unwind started ({cause:?}{by}): {reason}")
        }
        Event::DeployFinished { result, reason } => match reason {
            Some(reason) => format!("deploy finished: {} ({reason})", result.name()),
            None => format!("deploy finished: {}", result.name()),
        },
    }
}

/// One line per action: `traffic [us-east] RC 112=2 RC 113=2`.
pub(crate) fn describe_action(action: &Action) -> String {
    match action {
        Action::Preflight => "preflight".to_owned(),
        Action::Notify { notice } => match notice {
            Notice::Started => "notify started".to_owned(),
            Notice::GoNoGo => "notify go/no-go".to_owned(),
            Notice::WaitingForApproval => "notify waiting for approval".to_owned(),
            Notice::BreakGlassRequested => "notify break-glass requested".to_owned(),
            Notice::BreakGlass => "notify BREAK-GLASS".to_owned(),
            Notice::WaitingForSlot { reason, .. } => format!("notify waiting for slot: {reason}"),
            Notice::Finished { result, .. } => format!("notify finished: {}", result.name()),
        },
        Action::RunTask { task, release } => format!("run {task} with {}", release.label),
        Action::Launch {
            region: r,
            release,
            pools,
            timeout,
        } => {
            let pools: Vec<String> = pools.iter().map(|(p, n)| format!("{p}={n}")).collect();
            format!(
                "launch {}{} {} within {timeout}",
                release.label,
                region(r),
                pools.join(" ")
            )
        }
        Action::SetTraffic { region: r, split } => {
            let weights: Vec<String> = split
                .weights
                .iter()
                .map(|(v, w)| format!("{v}={w}"))
                .collect();
            let sticky = if split.sticky { " sticky" } else { "" };
            let header = split
                .header
                .as_deref()
                .map(|h| format!(" header `{h}`"))
                .unwrap_or_default();
            format!("traffic{} {}{sticky}{header}", region(r), weights.join(" "))
        }
        Action::Stop { region: r, release } => format!("stop {}{}", release.label, region(r)),
        Action::Verify {
            region: r,
            release,
            baseline,
            step,
            ..
        } => {
            let baseline = baseline.as_ref().map_or("nothing", |b| b.label.as_str());
            format!(
                "verify {}{} against {baseline} in {step}",
                release.label,
                region(r)
            )
        }
        Action::RollbackDeploy {
            to,
            regions,
            reason,
        } => {
            let regions: Vec<String> = regions
                .iter()
                .map(|r| r.clone().unwrap_or_else(|| "-".to_owned()))
                .collect();
            format!(
                "rollback deploy of {} to [{}]: {reason}",
                to.label,
                regions.join(", ")
            )
        }
        Action::Finalize { release } => format!("finalize {}", release.label),
    }
}
