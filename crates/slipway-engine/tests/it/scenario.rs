//! Random scenarios: a service, an environment policy, faults and an operator script, all drawn
//! from one seed.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use slipway_core::config::{
    ApprovalPolicy, CanaryPolicy, EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig,
};
use slipway_core::deploy::{DeployId, DeployRequest, DeploySpec, ReleaseRef};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::{Span, Time};
use slipway_testkit::fake_target::Faults;
use slipway_testkit::fixtures::release;

/// Something a person does at a quiet moment, whatever the deploy is doing.
#[derive(Clone, Debug)]
pub(crate) enum Disruption {
    Abort,
    Rollback,
    /// The requester tries to approve their own deploy (refused).
    SelfApprove,
    /// A viewer tries to acknowledge go (refused).
    ViewerGo,
}

#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub(crate) service: ServiceConfig,
    pub(crate) environment: EnvironmentConfig,
    pub(crate) previous: Option<ReleaseRef>,
    pub(crate) release: ReleaseRef,
    pub(crate) faults: Faults,
    /// Disruptions by the index of the quiet moment they happen at.
    pub(crate) disruptions: BTreeMap<usize, Disruption>,
    /// How long each person waits before answering a wait, in order of the waits.
    pub(crate) answer_delays: Vec<Span>,
    pub(crate) start: Time,
}

impl Scenario {
    pub(crate) fn random(seed: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pools = BTreeMap::from([(
            "web".to_owned(),
            Pool {
                count: rng.random_range(1..=3),
                traffic: true,
            },
        )]);
        if rng.random_bool(0.4) {
            pools.insert(
                "worker".to_owned(),
                Pool {
                    count: 1,
                    traffic: false,
                },
            );
        }
        let service = ServiceConfig {
            name: "idp".to_owned(),
            start: "bin/server".to_owned(),
            migrate: rng.random_bool(0.5).then(|| "bin/migrate".to_owned()),
            health: HealthCheck::default(),
            pools,
            config: Default::default(),
            source: None,
        };
        let protected = rng.random_bool(0.5);
        let minutes = |rng: &mut StdRng, max: u64| Span::from_secs(60 * rng.random_range(1..=max));
        let policy = Policy {
            protected,
            approvals: protected.then(|| ApprovalPolicy {
                required: rng.random_range(1..=2),
                expires: Span::from_secs(30 * 60),

                ..ApprovalPolicy::default()
            }),
            go_no_go: protected && rng.random_bool(0.7),
            canary: rng.random_bool(0.4).then(|| CanaryPolicy {
                share_bp: 1000,
                duration: minutes(&mut rng, 10),
                instances: 1,
                header: None,
            }),
            bake: if rng.random_bool(0.6) {
                minutes(&mut rng, 15)
            } else {
                Span::ZERO
            },
            confirm_scale_in: protected && rng.random_bool(0.6),
            post_verify: rng.random_bool(0.4).then(|| minutes(&mut rng, 60)),
            ..Policy::default()
        };
        let regions = match rng.random_range(0..4) {
            0 => Vec::new(),
            n => ["us-east-1", "us-west-2", "eu-west-1"][..n]
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
        };
        let environment = EnvironmentConfig {
            name: "prod".to_owned(),
            target: "local".to_owned(),
            regions,
            policy,
            command: None,
        };
        let per_mille =
            |rng: &mut StdRng, choices: &[u32]| choices[rng.random_range(0..choices.len())];
        let faults = Faults {
            launch_fails: per_mille(&mut rng, &[0, 0, 50, 150]),
            never_healthy: per_mille(&mut rng, &[0, 0, 50, 150]),
            slow_health: per_mille(&mut rng, &[0, 200, 500]),
            instance_crash: per_mille(&mut rng, &[0, 0, 100, 300]),
            traffic_fails: per_mille(&mut rng, &[0, 0, 100, 300]),
        };
        let mut disruptions = BTreeMap::new();
        for _ in 0..rng.random_range(0..=3) {
            let at = rng.random_range(0..30);
            let disruption = match rng.random_range(0..6) {
                0 => Disruption::Abort,
                1 | 2 => Disruption::Rollback,
                3 => Disruption::SelfApprove,
                _ => Disruption::ViewerGo,
            };
            disruptions.insert(at, disruption);
        }
        let answer_delays = (0..12)
            .map(|_| match rng.random_range(0..10) {
                0 => Span::from_secs(45 * 60),
                1..=3 => minutes(&mut rng, 20),
                _ => Span::ZERO,
            })
            .collect();
        let number = rng.random_range(100..200);
        Scenario {
            service,
            environment,
            previous: rng.random_bool(0.8).then(|| release(number - 1)),
            release: release(number),
            faults,
            disruptions,
            answer_delays,
            start: Time(1_790_000_000_000 + i64::from(number) * 1000),
        }
    }

    pub(crate) fn regions(&self) -> Vec<Option<String>> {
        if self.environment.regions.is_empty() {
            vec![None]
        } else {
            self.environment.regions.iter().cloned().map(Some).collect()
        }
    }

    pub(crate) fn spec(&self, id: DeployId) -> DeploySpec {
        let request = DeployRequest {
            service: &self.service,
            environment: &self.environment,
            kind: ReleaseKind::Full,
            release: self.release.clone(),
            previous: self.previous.clone(),
            requested_by: "alice".to_owned(),
            reason: None,
        };
        DeploySpec::new(id, request, self.start)
    }
}
