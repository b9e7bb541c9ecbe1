//! A scripted fake target for engine tests and the deterministic simulation.
//!
//! It keeps fleets and traffic in memory, injects faults chosen by hashing a seed with each
//! effect key (so a run and its crashed twin see the same faults), and records every breach of
//! DESIGN.md's invariants 2 and 3 it witnesses. It is idempotent by key, as real targets must be:
//! a key seen before returns its first result without doing anything again. Never offered as a
//! real target.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use async_trait::async_trait;
use slipway_core::deploy::{EffectKey, ReleaseRef, Split};
use slipway_core::time::Span;
use slipway_engine::clock::{Clock, ManualClock};
use slipway_engine::plugin::{FleetState, LaunchRequest, Observation, PluginError, Scope, Target};

/// How often each fault happens, in thousandths of the effects it can hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// A launch fails outright (no capacity).
    pub launch_fails: u32,
    /// A launch starts instances that never pass their health check.
    pub never_healthy: u32,
    /// A launch becomes healthy only after a long wait (the clock moves forward).
    pub slow_health: u32,
    /// One instance of a freshly launched fleet crashes a little later.
    pub instance_crash: u32,
    /// A traffic change fails transiently.
    pub traffic_fails: u32,
}

/// One release's instances in one region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fleet {
    pub desired: u32,
    pub running: u32,
    /// The launch finished with every instance healthy.
    pub launched_healthy: bool,
    /// When one instance crashes (ms since epoch), if it will.
    pub crash_at: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    /// (region, release label) → fleet.
    fleets: BTreeMap<(String, String), Fleet>,
    traffic: BTreeMap<String, Split>,
    /// Every fleet that ever ran per region, to tell a first deploy from a breach.
    ever_ran: BTreeMap<String, Vec<String>>,
    results: BTreeMap<String, Result<String, PluginError>>,
    calls: BTreeMap<String, u32>,
    side_effects: BTreeMap<String, u32>,
    violations: Vec<String>,
}

/// What the fake target saw, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeReport {
    pub fleets: BTreeMap<(String, String), Fleet>,
    pub traffic: BTreeMap<String, Split>,
    /// Calls per effect key (more than one only after a crash).
    pub calls: BTreeMap<String, u32>,
    /// Side effects actually performed per effect key (never more than one).
    pub side_effects: BTreeMap<String, u32>,
    pub violations: Vec<String>,
}

/// The fake target.
#[derive(Debug)]
pub struct FakeTarget {
    seed: u64,
    faults: Faults,
    clock: ManualClock,
    state: Mutex<State>,
}

fn region_of(scope: &Scope) -> String {
    scope.region.clone().unwrap_or_default()
}

impl FakeTarget {
    /// A target where `running` (release label) already serves every region in `regions`.
    pub fn new(
        seed: u64,
        faults: Faults,
        clock: ManualClock,
        running: Option<(&ReleaseRef, u32)>,
        regions: &[Option<String>],
    ) -> Self {
        let mut state = State::default();
        if let Some((release, count)) = running {
            for region in regions {
                let region = region.clone().unwrap_or_default();
                state.fleets.insert(
                    (region.clone(), release.label.clone()),
                    Fleet {
                        desired: count,
                        running: count,
                        launched_healthy: true,
                        crash_at: None,
                    },
                );
                state
                    .traffic
                    .insert(region.clone(), Split::only(&release.label));
                state.ever_ran.insert(region, vec![release.label.clone()]);
            }
        }
        Self {
            seed,
            faults,
            clock,
            state: Mutex::new(state),
        }
    }

    pub fn report(&self) -> FakeReport {
        let state = self.state.lock().expect("fake target lock");
        FakeReport {
            fleets: state.fleets.clone(),
            traffic: state.traffic.clone(),
            calls: state.calls.clone(),
            side_effects: state.side_effects.clone(),
            violations: state.violations.clone(),
        }
    }

    /// A number in 0..1000 fixed by the seed, the key and what is being decided.
    fn roll(&self, key: &EffectKey, what: &str) -> u32 {
        let mut hasher = DefaultHasher::new();
        (self.seed, key.to_string(), what).hash(&mut hasher);
        (hasher.finish() % 1000) as u32
    }

    /// Runs `act` once per key; later calls with the key return the first result.
    fn once(
        &self,
        key: &EffectKey,
        act: impl FnOnce(&mut State) -> Result<String, PluginError>,
    ) -> Result<String, PluginError> {
        let mut state = self.state.lock().expect("fake target lock");
        let text = key.to_string();
        *state.calls.entry(text.clone()).or_default() += 1;
        if let Some(result) = state.results.get(&text) {
            return result.clone();
        }
        *state.side_effects.entry(text.clone()).or_default() += 1;
        let result = act(&mut state);
        state.results.insert(text, result.clone());
        result
    }
}

impl State {
    fn healthy(&self, fleet: &Fleet, now: i64) -> u32 {
        let crashed = fleet.crash_at.is_some_and(|at| now >= at);
        match (fleet.launched_healthy, crashed) {
            (false, _) => 0,
            (true, true) => fleet.running.saturating_sub(1),
            (true, false) => fleet.running,
        }
    }
}

#[async_trait]
impl Target for FakeTarget {
    async fn launch(
        &self,
        key: &EffectKey,
        scope: &Scope,
        request: &LaunchRequest,
    ) -> Result<String, PluginError> {
        let region = region_of(scope);
        let fails = self.roll(key, "launch") < self.faults.launch_fails;
        let never_healthy = self.roll(key, "healthy") < self.faults.never_healthy;
        let slow = self.roll(key, "slow") < self.faults.slow_health;
        let crash = self.roll(key, "crash") < self.faults.instance_crash;
        let crash_delay = 1_000 + i64::from(self.roll(key, "crash-delay")) * 600;
        let clock = self.clock.clone();
        self.once(key, |state| {
            if fails {
                return Err(PluginError::new("launch failed: no capacity"));
            }
            let desired: u32 = request.pools.values().sum();
            let fleet = state
                .fleets
                .entry((region.clone(), request.release.label.clone()))
                .or_insert(Fleet {
                    desired: 0,
                    running: 0,
                    launched_healthy: false,
                    crash_at: None,
                });
            // Ensure semantics: top up to the desired count, never beyond it.
            fleet.desired = fleet.desired.max(desired);
            fleet.running = fleet.desired;
            let runs = state.ever_ran.entry(region.clone()).or_default();
            if !runs.contains(&request.release.label) {
                runs.push(request.release.label.clone());
            }
            if never_healthy {
                clock.advance(request.timeout);
                let fleet = state
                    .fleets
                    .get_mut(&(region, request.release.label.clone()))
                    .expect("fleet just inserted");
                fleet.launched_healthy = false;
                return Err(PluginError::new(format!(
                    "instances never became healthy within {}",
                    request.timeout
                )));
            }
            if slow {
                clock.advance(Span::from_secs(90));
            }
            let now = clock.now().as_millis();
            let fleet = state
                .fleets
                .get_mut(&(region, request.release.label.clone()))
                .expect("fleet just inserted");
            fleet.launched_healthy = true;
            if crash && fleet.crash_at.is_none() {
                fleet.crash_at = Some(now + crash_delay);
            }
            Ok(format!(
                "{} instance(s) of {} healthy",
                fleet.running, request.release.label
            ))
        })
    }

    async fn set_traffic(
        &self,
        key: &EffectKey,
        scope: &Scope,
        split: &Split,
    ) -> Result<String, PluginError> {
        let region = region_of(scope);
        let fails = self.roll(key, "traffic") < self.faults.traffic_fails;
        self.once(key, |state| {
            if fails {
                return Err(PluginError::new("proxy did not answer"));
            }
            for (version, weight) in &split.weights {
                let fleet = state.fleets.get(&(region.clone(), version.clone()));
                let ready = fleet.is_some_and(|f| f.running > 0 && f.launched_healthy);
                if *weight > 0 && !ready {
                    state.violations.push(format!(
                        "{key}: traffic sent to {version} in region `{region}`, which has not passed its health check"
                    ));
                }
            }
            state.traffic.insert(region.clone(), split.clone());
            Ok(format!("traffic in `{region}` set"))
        })
    }

    async fn stop(
        &self,
        key: &EffectKey,
        scope: &Scope,
        release: &ReleaseRef,
    ) -> Result<String, PluginError> {
        let region = region_of(scope);
        self.once(key, |state| {
            let others_running = state
                .fleets
                .iter()
                .any(|((r, v), f)| *r == region && *v != release.label && f.running > 0);
            let first_ever = state
                .ever_ran
                .get(&region)
                .is_none_or(|runs| runs.iter().all(|v| *v == release.label));
            if !others_running && !first_ever {
                state.violations.push(format!(
                    "{key}: stopping {} in region `{region}` leaves no fleet running",
                    release.label
                ));
            }
            let routed = state
                .traffic
                .get(&region)
                .and_then(|split| split.weights.get(&release.label))
                .is_some_and(|weight| *weight > 0);
            if routed && others_running {
                state.violations.push(format!(
                    "{key}: stopping {} in region `{region}` while it still receives traffic",
                    release.label
                ));
            }
            if let Some(fleet) = state
                .fleets
                .get_mut(&(region.clone(), release.label.clone()))
            {
                fleet.running = 0;
                fleet.desired = 0;
                fleet.crash_at = None;
            }
            Ok(format!("{} stopped in `{region}`", release.label))
        })
    }

    async fn run_task(
        &self,
        key: &EffectKey,
        _scope: &Scope,
        task: &str,
        release: &ReleaseRef,
    ) -> Result<String, PluginError> {
        let fails = self.roll(key, "task") < self.faults.launch_fails;
        self.once(key, |_| match fails {
            true => Err(PluginError::new(format!("{task} failed with exit code 1"))),
            false => Ok(format!("{task} of {} done", release.label)),
        })
    }

    async fn observe(&self, scope: &Scope) -> Result<Observation, PluginError> {
        let region = region_of(scope);
        let now = self.clock.now().as_millis();
        let state = self.state.lock().expect("fake target lock");
        let fleets = state
            .fleets
            .iter()
            .filter(|((r, _), f)| *r == region && f.desired > 0)
            .map(|((_, release), fleet)| FleetState {
                release: release.clone(),
                desired: fleet.desired,
                running: fleet.running,
                healthy: state.healthy(fleet, now),
                endpoints: Vec::new(),
            })
            .collect();
        Ok(Observation { fleets })
    }
}
