//! A verification check in the engine: the target's health first, then the plan's checks through
//! the `Verifier`, judged together. Driven pass by pass on a manual clock against the scripted
//! fake target and a real SQLite store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use slipway_core::analysis::{Classification, Measurement, MeasurementKind, Metric, Unit};
use slipway_core::config::{
    Check, CheckKind, EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig, Threshold,
};
use slipway_core::decide::start;
use slipway_core::deploy::{Deploy, DeployId, DeployResult, Event};
use slipway_core::time::{Span, Time};
use slipway_engine::clock::{Clock, ManualClock};
use slipway_engine::plugin::{CheckRequest, Verifier};
use slipway_engine::{Engine, EngineConfig, Plugins};
use slipway_store::Store;
use slipway_testkit::fake_target::{FakeTarget, Faults};
use slipway_testkit::fixtures::release;

use crate::scenario::Scenario;

/// What the verifier was asked, check after check: (window, baseline's label).
type Asked = Arc<Mutex<Vec<(Duration, Option<String>)>>>;

/// A verifier that answers every check with one `error_rate` measurement of `outcome`.
struct Scripted {
    outcome: Classification,
    asked: Asked,
}

#[async_trait]
impl Verifier for Scripted {
    async fn measure(&self, request: &CheckRequest<'_>) -> Vec<Measurement> {
        let baseline = request.baseline.map(|b| b.label.clone());
        self.asked.lock().unwrap().push((request.window, baseline));
        let mut m = Measurement::new(
            "error_rate",
            MeasurementKind::Threshold,
            "scripted",
            Unit::Ratio,
            self.outcome,
        );
        m.value = Some(if self.outcome == Classification::Pass {
            0.0
        } else {
            0.2
        });
        vec![m]
    }
}

/// v2 replacing v1 in an unprotected environment with a 10-minute bake and one check.
fn scenario() -> Scenario {
    let service = ServiceConfig {
        name: "idp".to_owned(),
        start: "bin/server".to_owned(),
        migrate: None,
        health: HealthCheck::default(),
        pools: BTreeMap::from([(
            "web".to_owned(),
            Pool {
                count: 1,
                traffic: true,
            },
        )]),
        config: Default::default(),
        source: None,
    };
    let policy = Policy {
        bake: Span::from_secs(10 * 60),
        checks: vec![Check {
            name: "error_rate".to_owned(),
            kind: CheckKind::Metric {
                metric: Metric::ErrorRate,
                min: None,
                max: Some(Threshold::Ratio(0.01)),
            },
        }],
        ..Policy::default()
    };
    Scenario {
        service,
        environment: EnvironmentConfig {
            name: "prod".to_owned(),
            target: "local".to_owned(),
            regions: Vec::new(),
            policy,
            command: None,
        },
        previous: Some(release(1)),
        release: release(2),
        faults: Faults::default(),
        disruptions: BTreeMap::new(),
        answer_delays: Vec::new(),
        start: Time(1_790_000_000_000),
    }
}

struct Run {
    engine: Engine,
    store: Store,
    clock: ManualClock,
    id: DeployId,
}

async fn run(store: &Store, verifier: Option<Arc<dyn Verifier>>) -> Run {
    let scenario = scenario();
    let clock = ManualClock::starting_at(scenario.start);
    let previous = scenario.previous.clone().unwrap();
    let target = FakeTarget::new(
        7,
        Faults::default(),
        clock.clone(),
        Some((&previous, 1)),
        &scenario.regions(),
    );
    let mut plugins = Plugins {
        verifier,
        ..Plugins::default()
    };
    plugins
        .targets
        .insert("prod".to_owned(), Arc::new(target) as _);
    let config = EngineConfig {
        holder: "verify-test".to_owned(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(store.clone(), plugins, Arc::new(clock.clone()), config);
    let now = clock.now();
    let (id, _) = store
        .create_deploy(None, None, now, |id| start(scenario.spec(id), now))
        .await
        .expect("deploy created");
    Run {
        engine,
        store: store.clone(),
        clock,
        id,
    }
}

impl Run {
    async fn deploy(&self) -> Deploy {
        self.store.deploy(self.id).await.unwrap().unwrap().deploy
    }

    /// Passes of the engine, the clock moving `step` between them, until the deploy ends
    /// (bounded: a stuck deploy fails the test).
    async fn run_to_the_end(&mut self, step: Span) -> Deploy {
        for _ in 0..400 {
            while self.engine.run_once().await.unwrap() {}
            let deploy = self.deploy().await;
            if deploy.is_finished() {
                return deploy;
            }
            self.clock.advance(step);
        }
        panic!("the deploy did not end: {:?}", self.deploy().await.progress);
    }

    async fn checked_events(&self) -> Vec<Event> {
        let stored = self.store.events(Some(self.id), 0, 10_000).await.unwrap();
        stored
            .iter()
            .map(|e| serde_json::from_str::<Event>(&e.payload).unwrap())
            .filter(|e| matches!(e, Event::Checked { .. } | Event::Measured { .. }))
            .collect()
    }
}

#[tokio::test]
async fn checks_look_back_from_the_bakes_start_to_the_window_and_compare_with_the_old_fleet() {
    let test = slipway_testkit::store::sqlite().await;
    let asked: Asked = Arc::default();
    let verifier = Scripted {
        outcome: Classification::Pass,
        asked: asked.clone(),
    };
    let mut run = run(&test.store, Some(Arc::new(verifier))).await;
    let ended = run.run_to_the_end(Span::from_secs(30)).await;
    assert_eq!(
        ended.progress.ending.unwrap().result,
        DeployResult::Succeeded
    );

    let asked = asked.lock().unwrap().clone();
    // One check every 30 s through a 10-minute bake, the first at its start.
    assert!(asked.len() >= 20, "{asked:?}");
    let windows: Vec<u64> = asked.iter().map(|(w, _)| w.as_secs()).collect();
    assert_eq!(
        windows[0], 0,
        "the first check looks back to the bake's start: {windows:?}"
    );
    assert!(
        windows.windows(2).all(|pair| pair[1] >= pair[0]),
        "windows grow: {windows:?}"
    );
    assert_eq!(
        windows.iter().max(),
        Some(&300),
        "and stop at the analysis window (5m): {windows:?}"
    );
    assert!(
        asked
            .iter()
            .all(|(_, baseline)| baseline.as_deref() == Some("RC 1")),
        "the old fleet serves beside the new one all through the bake: {asked:?}"
    );
    test.close().await;
}

#[tokio::test]
async fn a_failed_measurement_rolls_back_with_the_judgement_in_the_events() {
    let test = slipway_testkit::store::sqlite().await;
    let verifier = Scripted {
        outcome: Classification::High,
        asked: Arc::default(),
    };
    let mut run = run(&test.store, Some(Arc::new(verifier))).await;
    let ended = run.run_to_the_end(Span::from_secs(30)).await;
    let ending = ended.progress.ending.unwrap();
    assert_eq!(ending.result, DeployResult::RolledBack);
    let reason = ending.reason.unwrap();
    assert_eq!(reason, "bake check failed: error_rate 20.0%: high");
    let events = run.checked_events().await;
    let measured: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Measured { measurement, .. } => Some(measurement.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(measured, ["health", "error_rate"], "{events:?}");
    test.close().await;
}

#[tokio::test]
async fn without_a_verifier_a_plan_with_checks_stays_inconclusive_and_rolls_back_at_the_limit() {
    let test = slipway_testkit::store::sqlite().await;
    let mut run = run(&test.store, None).await;
    let ended = run.run_to_the_end(Span::from_secs(60)).await;
    let ending = ended.progress.ending.unwrap();
    assert_eq!(ending.result, DeployResult::RolledBack);
    assert!(
        ending
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("inconclusive for more than 15m")),
        "{ending:?}"
    );
    let events = run.checked_events().await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Measured { measurement, .. }
                if measurement.note.contains("no verifier is configured")
        )),
        "{events:?}"
    );
    test.close().await;
}
