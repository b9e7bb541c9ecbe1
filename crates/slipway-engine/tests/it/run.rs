//! `Engine::run`: an operator action written to the store wakes the engine at once, and a
//! shutdown ends the loop at a safe point and gives the lease up.

use std::sync::Arc;
use std::time::Duration;

use slipway_core::decide::start;
use slipway_core::deploy::{Actor, Input, Role};
use slipway_core::time::{Span, Time};
use slipway_engine::clock::{Clock, ManualClock};
use slipway_engine::{Engine, EngineConfig, Plugins};
use slipway_testkit::fake_target::{FakeTarget, Faults};

use crate::scenario::Scenario;

/// Polls `condition` every 20 ms until it holds or `limit` passes.
async fn wait_until<F: AsyncFn() -> bool>(limit: Duration, condition: F) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn an_intent_wakes_the_engine_and_shutdown_releases_the_lease() {
    let test = slipway_testkit::store::sqlite().await;
    // A protected scenario: the deploy stops at its approval step.
    let scenario = (1..)
        .map(Scenario::random)
        .find(|s| s.environment.policy.approvals.is_some())
        .expect("some seed gives a protected environment");
    let clock = ManualClock::starting_at(Time(1_790_000_000_000));
    let target = Arc::new(FakeTarget::new(
        1,
        Faults::default(),
        clock.clone(),
        None,
        &scenario.regions(),
    ));
    let mut plugins = Plugins::default();
    plugins.targets.insert("prod".to_owned(), target as _);
    // Polling once an hour: only the wake-up can make the engine see the intent in time.
    let config = EngineConfig {
        holder: "runner".to_owned(),
        poll_interval: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let engine = Engine::new(test.store.clone(), plugins, Arc::new(clock.clone()), config);
    let now = clock.now();
    let (id, _) = test
        .store
        .create_deploy(None, None, now, |id| start(scenario.spec(id), now))
        .await
        .expect("deploy created");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(engine.run(async {
        let _ = stopped.await;
    }));
    let store = &test.store;
    let waiting = wait_until(Duration::from_secs(10), async || {
        let deploy = store
            .deploy(id)
            .await
            .expect("read")
            .expect("exists")
            .deploy;
        deploy.is_waiting_for_person(clock.now())
    })
    .await;
    assert!(waiting, "the deploy reaches its approval step");

    let deploy = store
        .deploy(id)
        .await
        .expect("read")
        .expect("exists")
        .deploy;
    let approve = Input::Approve {
        by: Actor {
            name: "bob".to_owned(),
            role: Role::Approver,
        },
        binding: deploy.spec.binding(),
    };
    let intent = store
        .submit_intent(id, &approve, clock.now())
        .await
        .expect("intent");
    let consumed = wait_until(Duration::from_secs(10), async || {
        let status = store
            .intent_status(intent)
            .await
            .expect("status")
            .expect("exists");
        status.consumed_at.is_some()
    })
    .await;
    assert!(
        consumed,
        "the engine took the approval without waiting for its hourly poll"
    );
    let deploy = store
        .deploy(id)
        .await
        .expect("read")
        .expect("exists")
        .deploy;
    assert_eq!(deploy.progress.approvals.len(), 1);

    stop.send(()).expect("engine still running");
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the engine stops promptly")
        .expect("the engine task does not panic")
        .expect("the engine stops cleanly");
    let other = store
        .acquire_lease("engine", "successor", Span::from_secs(15), clock.now())
        .await
        .expect("lease query");
    assert!(other.is_some(), "the stopped engine gave its lease up");
    test.close().await;
}
