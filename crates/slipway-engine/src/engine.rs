//! The reconciler. One pass (`run_once`) consumes operator intents, runs pending effects and
//! recording their reports, and ticks every unfinished deploy; `run` repeats passes until shutdown.
//!
//! Nothing here holds deploy state in memory between passes: every pass starts from the store,
//! so a restarted engine simply continues. Effects are run only after the decision that produced
//! them was committed (they are read back from the outbox), and every write checks the lease.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use slipway_core::analysis::{
    Classification, Judgement, Measurement, MeasurementKind, ScoreLevels, Unit, judge,
};
use slipway_core::decide::{decide, next_wake, start};
use slipway_core::deploy::{
    Action, Deploy, DeploySpec, Effect, EffectKey, GateResult, Input, Outcome, Rejection,
    RejectionCode, ReleaseRef, Verdict,
};
use slipway_core::plan::{Purpose, VerificationSpec};
use slipway_core::time::{Span, Time};
use slipway_store::{Consumed, Fence, Store, StoreError};

use crate::clock::Clock;
use crate::plugin::{
    CheckRequest, LaunchRequest, Notifier, PluginError, PreflightCheck, Refusal, Scope, Target,
    Verifier,
};

/// Longest a verification check may take before it counts as inconclusive.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// The plugins an engine drives.
#[derive(Clone, Default)]
pub struct Plugins {
    /// The target of each environment, by environment name.
    pub targets: BTreeMap<String, Arc<dyn Target>>,
    /// Runs the checks a plan configures; without one, a plan with checks stays inconclusive.
    pub verifier: Option<Arc<dyn Verifier>>,
    pub notifiers: Vec<Arc<dyn Notifier>>,
    pub preflight: Vec<Arc<dyn PreflightCheck>>,
}

/// How an engine behaves.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Who this engine is in the lease table (host and process, say).
    pub holder: String,
    pub lease_ttl: Span,
    /// Longest sleep between passes when nothing wakes the engine earlier.
    pub poll_interval: Duration,
    /// Most intents or effects handled per pass.
    pub batch: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            holder: format!("engine-{}", std::process::id()),
            lease_ttl: Span::from_secs(15),
            poll_interval: Duration::from_secs(1),
            batch: 64,
        }
    }
}

/// Places where a test can make the engine stop dead, as a process crash would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint<'a> {
    /// An effect was read from the outbox and is about to run.
    BeforeEffect(&'a EffectKey),
    /// An effect ran; its report is not stored yet.
    AfterEffect(&'a EffectKey),
    /// An effect's report was stored.
    AfterRecord(&'a EffectKey),
}

/// Decides whether to crash at a point. Only tests set one.
pub type CrashHook = Arc<dyn Fn(CrashPoint<'_>) -> bool + Send + Sync>;

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed; the pass stopped and the next one starts over from stored state.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A crash hook fired (tests only).
    #[error("crash injected at {0}")]
    Crashed(String),
}

/// The reconciler.
pub struct Engine {
    store: Store,
    plugins: Plugins,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    fence: Option<Fence>,
    renewed_at: Time,
    crash_hook: Option<CrashHook>,
    /// The earliest wake-up of the deploys the last pass ticked, so `run` knows how long it may
    /// sleep without reading every deploy again.
    next_wake: Option<Time>,
}

impl Engine {
    pub fn new(
        store: Store,
        plugins: Plugins,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            plugins,
            clock,
            config,
            fence: None,
            renewed_at: Time::default(),
            crash_hook: None,
            next_wake: None,
        }
    }

    /// Makes the engine fail with [`EngineError::Crashed`] wherever `hook` says.
    pub fn with_crash_hook(mut self, hook: CrashHook) -> Self {
        self.crash_hook = Some(hook);
        self
    }

    /// Whether this engine held the lease at its last pass.
    pub fn holds_lease(&self) -> bool {
        self.fence.is_some()
    }

    fn crash_at(&self, point: CrashPoint<'_>) -> Result<(), EngineError> {
        match &self.crash_hook {
            Some(hook) if hook(point) => Err(EngineError::Crashed(format!("{point:?}"))),
            _ => Ok(()),
        }
    }

    /// Takes or renews the lease. Renewal happens once a third of the TTL has passed.
    async fn hold_lease(&mut self, now: Time) -> Result<bool, EngineError> {
        let ttl = self.config.lease_ttl;
        if let Some(fence) = &self.fence {
            let renew_after = Span::from_millis(ttl.as_millis() / 3);
            if now < self.renewed_at.after(renew_after) {
                return Ok(true);
            }
            if self.store.renew_lease(fence, ttl, now).await? {
                self.renewed_at = now;
                return Ok(true);
            }
            tracing::warn!(holder = %fence.holder, "engine lease lost");
            self.fence = None;
        }
        self.fence = self
            .store
            .acquire_lease("engine", &self.config.holder, ttl, now)
            .await?;
        if let Some(fence) = &self.fence {
            tracing::info!(holder = %fence.holder, token = fence.token, "engine lease held");
            self.renewed_at = now;
        }
        Ok(self.fence.is_some())
    }

    /// One reconcile pass. Returns whether anything was done.
    pub async fn run_once(&mut self) -> Result<bool, EngineError> {
        // Only a pass that ticks every deploy knows the next wake-up; a standby polls.
        self.next_wake = None;
        let now = self.clock.now();
        if !self.hold_lease(now).await? {
            return Ok(false);
        }
        let result = self.reconcile().await;
        if let Err(EngineError::Store(StoreError::Fenced)) = &result {
            tracing::warn!("write refused: another engine holds the lease now");
            self.fence = None;
            return Ok(false);
        }
        result
    }

    async fn reconcile(&mut self) -> Result<bool, EngineError> {
        let mut worked = false;
        for intent in self.store.pending_intents(self.config.batch).await? {
            worked = true;
            let now = self.clock.now();
            let fence = self.fence.as_ref();
            let Some(stored) = self.store.deploy(intent.deploy).await? else {
                let rejection = Rejection {
                    code: RejectionCode::Invalid,
                    message: format!("deploy {} does not exist", intent.deploy),
                    hint: "list deploys with `slipway deploys`".to_owned(),
                };
                self.store
                    .reject_intent(fence, intent.id, &rejection, now)
                    .await?;
                continue;
            };
            match decide(&stored.deploy, &intent.input, now) {
                Ok(decision) => {
                    self.store
                        .apply(fence, &stored, &decision, Consumed::Intent(intent.id), now)
                        .await?;
                }
                Err(rejection) => {
                    self.store
                        .reject_intent(fence, intent.id, &rejection, now)
                        .await?;
                }
            }
        }
        for effect in self.store.pending_effects(self.config.batch).await? {
            worked = true;
            self.crash_at(CrashPoint::BeforeEffect(&effect.key))?;
            let outcome = match self.store.deploy(effect.key.deploy).await? {
                Some(stored) => self.execute(&stored.deploy, &effect).await,
                None => Outcome::Failed {
                    error: format!("deploy {} does not exist", effect.key.deploy),
                },
            };
            self.crash_at(CrashPoint::AfterEffect(&effect.key))?;
            self.record(&effect.key, outcome).await?;
            self.crash_at(CrashPoint::AfterRecord(&effect.key))?;
        }
        let mut earliest: Option<Time> = None;
        for stored in self.store.unfinished_deploys().await? {
            let now = self.clock.now();
            let decision =
                decide(&stored.deploy, &Input::Tick, now).expect("a tick is never refused");
            earliest = earliest
                .into_iter()
                .chain(next_wake(&decision.deploy))
                .min();
            if !decision.is_noop(&stored.deploy) {
                worked = true;
                self.store
                    .apply(
                        self.fence.as_ref(),
                        &stored,
                        &decision,
                        Consumed::Nothing,
                        now,
                    )
                    .await?;
            }
        }
        self.next_wake = earliest;
        Ok(worked)
    }

    /// Stores an effect's report as a decision, re-reading the deploy if it changed meanwhile.
    async fn record(&self, key: &EffectKey, outcome: Outcome) -> Result<(), EngineError> {
        let input = Input::Reported {
            key: key.clone(),
            outcome: outcome.clone(),
        };
        for _ in 0..3 {
            let now = self.clock.now();
            let Some(stored) = self.store.deploy(key.deploy).await? else {
                self.store.settle_effect(key, &outcome, now).await?;
                return Ok(());
            };
            let decision = decide(&stored.deploy, &input, now).expect("a report is never refused");
            let consumed = Consumed::Effect {
                key,
                outcome: &outcome,
            };
            match self
                .store
                .apply(self.fence.as_ref(), &stored, &decision, consumed, now)
                .await
            {
                Err(StoreError::Conflict(_)) => continue,
                other => {
                    other?;
                    return Ok(());
                }
            }
        }
        Err(StoreError::Conflict(key.deploy).into())
    }

    /// Runs one effect against the plugins and turns the result into an outcome.
    async fn execute(&self, deploy: &Deploy, effect: &Effect) -> Outcome {
        let spec = &deploy.spec;
        let key = &effect.key;
        let scope = |region: &Option<String>| Scope {
            service: spec.service.clone(),
            environment: spec.environment.clone(),
            region: region.clone(),
        };
        let target = self.plugins.targets.get(&spec.environment);
        let no_target = || Outcome::Failed {
            error: format!(
                "no target is configured for environment `{}`; set `target` in its [environment.{}] table",
                spec.environment, spec.environment
            ),
        };
        let done = |result: Result<String, PluginError>| match result {
            Ok(detail) => Outcome::Done { detail },
            Err(error) => Outcome::Failed {
                error: error.message,
            },
        };
        match &effect.action {
            Action::Preflight => self.preflight(deploy).await,
            Action::Notify { notice } => {
                let mut errors = Vec::new();
                for notifier in &self.plugins.notifiers {
                    if let Err(error) = notifier.notify(key, deploy, notice).await {
                        errors.push(error.message);
                    }
                }
                match errors.is_empty() {
                    true => Outcome::Done {
                        detail: format!("sent to {} notifier(s)", self.plugins.notifiers.len()),
                    },
                    false => Outcome::Failed {
                        error: errors.join("; "),
                    },
                }
            }
            Action::RunTask { task, release } => match target {
                Some(target) => done(target.run_task(key, &scope(&None), task, release).await),
                None => no_target(),
            },
            Action::Launch {
                region,
                release,
                pools,
                timeout,
            } => {
                let Some(target) = target else {
                    return no_target();
                };
                let request = LaunchRequest {
                    release: release.clone(),
                    pools: pools.clone(),
                    timeout: *timeout,
                };
                // The target enforces the timeout; this guard only catches a driver that hangs.
                let guard = Duration::from_millis(timeout.as_millis()) + Duration::from_secs(30);
                match tokio::time::timeout(guard, target.launch(key, &scope(region), &request))
                    .await
                {
                    Ok(result) => done(result),
                    Err(_) => Outcome::Failed {
                        error: format!(
                            "launch did not finish within {}",
                            Span::from_millis(guard.as_millis() as u64)
                        ),
                    },
                }
            }
            Action::SetTraffic { region, split } => match target {
                Some(target) => done(target.set_traffic(key, &scope(region), split).await),
                None => no_target(),
            },
            Action::Stop { region, release } => match target {
                Some(target) => done(target.stop(key, &scope(region), release).await),
                None => no_target(),
            },
            Action::Verify {
                region,
                release,
                baseline,
                step,
                since,
            } => match target {
                Some(target) => {
                    // A check that never answers would hold its step forever: past the limit it
                    // counts as inconclusive, which the state machine bounds in turn.
                    let scope = scope(region);
                    let check = self.verify(
                        deploy,
                        key,
                        target.as_ref(),
                        &scope,
                        (release, baseline.as_ref()),
                        step,
                        *since,
                    );
                    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                        Ok(judgement) => Outcome::Checked {
                            verdict: judgement.verdict,
                            detail: judgement.summary,
                            score: judgement.score,
                            measurements: judgement.measurements,
                        },
                        Err(_) => Outcome::Checked {
                            verdict: Verdict::Inconclusive,
                            detail: format!(
                                "check did not answer within {}s",
                                CHECK_TIMEOUT.as_secs()
                            ),
                            score: None,
                            measurements: Vec::new(),
                        },
                    }
                }
                None => no_target(),
            },
            Action::RollbackDeploy {
                to,
                regions,
                reason,
            } => done(self.create_rollback(deploy, to, regions, reason).await),
            Action::Finalize { release } => Outcome::Done {
                detail: format!("{} released", release.label),
            },
        }
    }

    /// The built-in preflight (one deploy per service and environment at a time; not the
    /// release that already runs), then every preflight plugin. Each check's finding is
    /// reported; `decide` turns them into a pass, a wait for the next slot, or a failure.
    async fn preflight(&self, deploy: &Deploy) -> Outcome {
        let now = self.clock.now();
        let mut gates = vec![self.lock_gate(deploy).await];
        let spec = &deploy.spec;
        gates.push(order_gate(spec));
        for check in &self.plugins.preflight {
            gates.push(match check.check(deploy, now).await {
                Ok(detail) => passed(check.name(), detail),
                Err(refusal) => refused(check.name(), refusal),
            });
        }
        Outcome::Preflight { gates }
    }

    /// One deploy per service and environment at a time: an earlier unfinished deploy holds the
    /// lock (one being undone does not: its rollback deploy replaces it).
    async fn lock_gate(&self, deploy: &Deploy) -> GateResult {
        let spec = &deploy.spec;
        let running = match self.store.unfinished_deploys().await {
            Ok(running) => running,
            Err(error) => {
                return refused(
                    "lock",
                    Refusal {
                        message: format!("cannot read running deploys: {error}"),
                        hint: "check the database, then deploy again".to_owned(),
                        until: None,
                        overridable: false,
                    },
                );
            }
        };
        if spec.purpose == Purpose::Release {
            match self.store.lock_of(&spec.service, &spec.environment).await {
                Ok(Some(lock)) => {
                    return refused(
                        "lock",
                        Refusal {
                            message: format!(
                                "{} is locked in {} by {}: {}",
                                spec.service, spec.environment, lock.by, lock.reason
                            ),
                            hint: format!(
                                "ask {} to unlock it when it is safe: `slipway unlock {} --env {}`",
                                lock.by, spec.service, spec.environment
                            ),
                            until: None,
                            overridable: false,
                        },
                    );
                }
                Ok(None) => {}
                Err(error) => {
                    return refused(
                        "lock",
                        Refusal {
                            message: format!("cannot read the locks: {error}"),
                            hint: "check the database, then deploy again".to_owned(),
                            until: None,
                            overridable: false,
                        },
                    );
                }
            }
        }
        match running.iter().find(|other| {
            let o = &other.deploy;
            o.spec.id < spec.id
                && o.spec.service == spec.service
                && o.spec.environment == spec.environment
                && o.progress.unwind.is_none()
        }) {
            Some(other) => refused(
                "lock",
                Refusal {
                    message: format!(
                        "deploy {} of {} to {} is still running; one deploy per service and environment at a time",
                        other.deploy.spec.id, spec.service, spec.environment
                    ),
                    hint: format!("wait for it, or `slipway abort {}`", other.deploy.spec.id),
                    until: None,
                    overridable: false,
                },
            ),
            None => passed(
                "lock",
                format!(
                    "no other deploy of {} to {}",
                    spec.service, spec.environment
                ),
            ),
        }
    }

    /// Health from the target first (an unhealthy new fleet fails at once, without waiting for
    /// metrics), then the plan's checks through the verifier, judged together. A check that
    /// cannot run is no data, never a pass.
    #[expect(
        clippy::too_many_arguments,
        reason = "one check of one step: the deploy, its effect and where it runs"
    )]
    async fn verify(
        &self,
        deploy: &Deploy,
        key: &EffectKey,
        target: &dyn Target,
        scope: &Scope,
        (release, baseline): (&ReleaseRef, Option<&ReleaseRef>),
        step: &str,
        since: Option<Time>,
    ) -> Judgement {
        let levels = |spec: Option<&VerificationSpec>| {
            spec.map_or_else(ScoreLevels::default, |spec| ScoreLevels {
                pass: spec.analysis.pass_score,
                marginal: spec.analysis.marginal_score,
            })
        };
        let spec = deploy.spec.plan.verification.as_ref();
        let health = |outcome, note: String| {
            let mut m = Measurement::new(
                "health",
                MeasurementKind::Health,
                "target",
                Unit::Number,
                outcome,
            );
            m.note = note;
            m
        };
        let observation = match target.observe(scope).await {
            Ok(observation) => observation,
            Err(error) => {
                let m = health(
                    Classification::NoData,
                    format!("cannot observe the fleet: {error}"),
                );
                return judge(vec![m], levels(spec));
            }
        };
        let fleet = observation
            .fleets
            .iter()
            .find(|f| f.release == release.label);
        let Some(fleet) = fleet.filter(|f| f.healthy >= f.desired && f.desired > 0) else {
            let note = match fleet {
                Some(f) => format!(
                    "{} of {} instances of {} are healthy",
                    f.healthy, f.desired, release.label
                ),
                None => format!("no instance of {} is running", release.label),
            };
            return judge(vec![health(Classification::Fail, note)], levels(spec));
        };
        let mut measurements = vec![health(
            Classification::Pass,
            format!("{}/{} instances healthy", fleet.healthy, fleet.desired),
        )];
        if let Some(spec) = spec {
            // Compared only while the baseline still serves beside the new fleet.
            let baseline = baseline.filter(|b| {
                observation
                    .fleets
                    .iter()
                    .any(|f| f.release == b.label && f.healthy > 0)
            });
            let now = self.clock.now();
            let window = since.map_or(spec.analysis.window, |since| {
                now.since(since).min(spec.analysis.window)
            });
            let request = CheckRequest {
                key,
                scope,
                release,
                baseline,
                step,
                spec,
                window: Duration::from_millis(window.as_millis()),
                endpoints: &fleet.endpoints,
                now,
            };
            match &self.plugins.verifier {
                Some(verifier) => measurements.extend(verifier.measure(&request).await),
                None => {
                    let mut m = Measurement::new(
                        "checks",
                        MeasurementKind::Threshold,
                        "engine",
                        Unit::Number,
                        Classification::NoData,
                    );
                    m.note = "no verifier is configured to run this plan's checks".to_owned();
                    measurements.push(m);
                }
            }
        }
        judge(measurements, levels(spec))
    }

    /// Creates the fast-tracked rollback deploy; creating it again (a crash, a retry) finds the
    /// first.
    async fn create_rollback(
        &self,
        failed: &Deploy,
        to: &slipway_core::deploy::ReleaseRef,
        regions: &[Option<String>],
        reason: &str,
    ) -> Result<String, PluginError> {
        let now = self.clock.now();
        let spec = &failed.spec;
        // A deploy is undone at most once, so it has at most one rollback deploy. The origin is
        // that fact, not the effect key: a retry of the unwind re-issues this effect under a new
        // key, and must find the rollback deploy the first attempt created.
        let origin = format!("rollback-of/{}", spec.id);
        let make = |id| {
            let spec = DeploySpec::rollback(
                id,
                spec,
                to.clone(),
                regions,
                spec.requested_by.clone(),
                format!("rollback of deploy {}: {reason}", spec.id),
                now,
            );
            start(spec, now)
        };
        let (id, _) = self
            .store
            .create_deploy(self.fence.as_ref(), Some(&origin), now, make)
            .await
            .map_err(|e| PluginError::new(format!("cannot create the rollback deploy: {e}")))?;
        Ok(format!("rollback deploy {id}"))
    }

    /// Runs passes until `shutdown` completes. A pass in progress finishes first (every effect
    /// it started is recorded), so stopping never leaves anything half-written.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        let wake = self.store.wake_handle();
        loop {
            let worked = match self.run_once().await {
                Ok(worked) => worked,
                Err(error) => {
                    tracing::error!(%error, "engine pass failed; retrying from stored state");
                    false
                }
            };
            let mut pause = if worked {
                Duration::ZERO
            } else {
                self.config.poll_interval
            };
            if let Some(at) = self.next_wake {
                let until = Duration::from_millis(at.since(self.clock.now()).as_millis());
                pause = pause.min(until);
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        if let Some(fence) = &self.fence {
            self.store.release_lease(fence).await?;
        }
        Ok(())
    }
}

/// Release order: not the release that runs (its scale-in would stop the only fleet), and not
/// an older one unless it is a rollback.
fn order_gate(spec: &DeploySpec) -> GateResult {
    let refusal = |message: String, hint: String| Refusal {
        message,
        hint,
        until: None,
        overridable: false,
    };
    let previous = spec
        .previous
        .as_ref()
        .map_or("nothing", |p| p.label.as_str());
    if spec.redeploys_running_release() {
        return refused(
            "order",
            refusal(
                format!(
                    "{} already runs in {}; deploying it again would stop the only fleet",
                    spec.release.label, spec.environment
                ),
                "deploy another release, or `slipway rollback`".to_owned(),
            ),
        );
    }
    if spec.goes_back() {
        return refused(
            "order",
            refusal(
                format!(
                    "{} is older than {previous}, which runs in {}",
                    spec.release.label, spec.environment
                ),
                format!(
                    "to go back, roll back: `slipway rollback {} --env {} --to {}`",
                    spec.service, spec.environment, spec.release.label
                ),
            ),
        );
    }
    passed(
        "order",
        format!("{} replaces {previous}", spec.release.label),
    )
}

fn passed(check: &str, detail: String) -> GateResult {
    GateResult {
        check: check.to_owned(),
        passed: true,
        detail,
        hint: None,
        until: None,
        overridable: false,
    }
}

fn refused(check: &str, refusal: Refusal) -> GateResult {
    GateResult {
        check: check.to_owned(),
        passed: false,
        detail: refusal.message,
        hint: Some(refusal.hint),
        until: refusal.until,
        overridable: refusal.overridable,
    }
}
