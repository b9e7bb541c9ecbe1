//! Several engines on one database: only the lease holder acts; when it dies, another takes
//! over after the lease expires and finishes the deploy exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;

use slipway_core::config::{EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig};
use slipway_core::decide::start;
use slipway_core::deploy::{DeployId, DeployRequest, DeployResult, DeploySpec};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::{Span, Time};
use slipway_engine::clock::{Clock, ManualClock};
use slipway_engine::{Engine, EngineConfig, Plugins};
use slipway_store::Store;
use slipway_testkit::fake_target::{FakeTarget, Faults};
use slipway_testkit::fixtures::release;
use slipway_testkit::store::on_each_backend;

fn spec(id: DeployId, now: Time) -> DeploySpec {
    let service = ServiceConfig {
        name: "idp".to_owned(),
        start: "bin/server".to_owned(),
        migrate: None,
        health: HealthCheck::default(),
        pools: BTreeMap::from([(
            "web".to_owned(),
            Pool {
                count: 2,
                traffic: true,
            },
        )]),
        config: Default::default(),
        source: None,
    };
    let environment = EnvironmentConfig {
        name: "prod".to_owned(),
        target: "local".to_owned(),
        regions: Vec::new(),
        policy: Policy {
            bake: Span::from_secs(300),
            ..Policy::default()
        },
        command: None,
    };
    let request = DeployRequest {
        service: &service,
        environment: &environment,
        kind: ReleaseKind::Full,
        release: release(2),
        previous: Some(release(1)),
        requested_by: "alice".to_owned(),
        reason: None,
    };
    DeploySpec::new(id, request, now)
}

fn engine(holder: &str, store: Store, target: &Arc<FakeTarget>, clock: &ManualClock) -> Engine {
    let mut plugins = Plugins::default();
    plugins
        .targets
        .insert("prod".to_owned(), Arc::clone(target) as _);
    let config = EngineConfig {
        holder: holder.to_owned(),
        lease_ttl: Span::from_secs(15),
        ..EngineConfig::default()
    };
    Engine::new(store, plugins, Arc::new(clock.clone()), config)
}

async fn event_count(store: &Store) -> usize {
    store.events(None, 0, 100_000).await.expect("events").len()
}

#[tokio::test]
async fn only_the_lease_holder_acts_and_a_standby_takes_over_after_it_dies() {
    on_each_backend("lease_takeover", async |test| {
        let clock = ManualClock::starting_at(Time(1_790_000_000_000));
        let running = release(1);
        let target = Arc::new(FakeTarget::new(
            7,
            Faults::default(),
            clock.clone(),
            Some((&running, 2)),
            &[None],
        ));
        let now = clock.now();
        let (id, _) = test
            .store
            .create_deploy(None, None, now, |id| start(spec(id, now), now))
            .await
            .expect("deploy created");

        let mut first = engine("first", test.reopen().await, &target, &clock);
        let mut standby = engine("standby", test.reopen().await, &target, &clock);
        assert!(
            first.run_once().await.expect("first pass"),
            "the first engine works"
        );
        assert!(first.holds_lease());

        let before = event_count(&test.store).await;
        assert!(!standby.run_once().await.expect("standby pass"));
        assert!(!standby.holds_lease());
        assert_eq!(
            event_count(&test.store).await,
            before,
            "the standby wrote nothing"
        );

        // The first engine dies mid-bake without giving up its lease.
        while first.run_once().await.expect("first pass") {}
        drop(first);
        clock.advance(Span::from_secs(10));
        assert!(!standby.run_once().await.expect("lease still live"));

        clock.advance(Span::from_secs(300));
        for _ in 0..20 {
            while standby.run_once().await.expect("standby pass") {}
            let deploy = test.store.deploy(id).await.expect("read").expect("exists");
            if deploy.deploy.is_finished() {
                break;
            }
            clock.advance(Span::from_secs(30));
        }
        let deploy = test
            .store
            .deploy(id)
            .await
            .expect("read")
            .expect("exists")
            .deploy;
        assert_eq!(
            deploy.progress.ending.map(|e| e.result),
            Some(DeployResult::Succeeded)
        );
        assert!(standby.holds_lease());

        let report = target.report();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert!(
            report.calls.values().all(|n| *n == 1),
            "every effect ran once: {:?}",
            report.calls
        );
        let chain = test.store.verify_chain().await.expect("verify");
        assert_eq!(chain.broken, None);
    })
    .await;
}
