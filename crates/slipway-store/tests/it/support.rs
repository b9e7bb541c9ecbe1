//! Fixtures of the store tests: a protected environment, deploy specs built with `derive_plan`,
//! a raw database connection beside the store, and a bounded driver that plays a whole deploy
//! through the store as the engine would.

use std::collections::BTreeMap;

use slipway_core::config::{
    ApprovalPolicy, CanaryPolicy, EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig,
};
use slipway_core::decide::{decide, next_wake, start};
use slipway_core::deploy::{
    Action, Actor, Decision, DeployId, DeployRequest, DeploySpec, Effect, Input, Outcome, Phase,
    ReleaseRef, Role, Verdict, WaitingFor,
};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::{Span, Time};
use slipway_store::{Consumed, Fence, Store, StoredDeploy, StoredEvent};
use slipway_testkit::store::TestStore;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// When every test starts: a fixed instant.
pub(crate) const T0: Time = Time::from_millis(1_800_000_000_000);

/// Most store writes `drive_to_end` makes before it gives up: a deploy that loops is a failing
/// test, not a hanging one.
const MAX_STEPS: usize = 1_000;

pub(crate) fn minutes(m: u64) -> Span {
    Span::from_secs(m * 60)
}

pub(crate) fn service(name: &str) -> ServiceConfig {
    ServiceConfig {
        name: name.to_owned(),
        start: "bin/server --port $PORT".to_owned(),
        migrate: Some("bin/migrate".to_owned()),
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
    }
}

/// A protected environment: one approval, go/no-go, a canary, a bake, confirmed scale-in and a
/// post-verify check.
pub(crate) fn environment(name: &str) -> EnvironmentConfig {
    EnvironmentConfig {
        name: name.to_owned(),
        target: "local".to_owned(),
        regions: Vec::new(),
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

pub(crate) fn release(number: u32) -> ReleaseRef {
    ReleaseRef {
        label: format!("RC {number}"),
        version: format!("1.{number}.0"),
        artifact: format!("sha256:{number:064x}"),
        config: format!("config-{number}"),
        config_version: None,
    }
}

/// Deploy `id`: alice deploys `RC 113` of `service` to the protected `environment`, where
/// `RC 112` runs.
pub(crate) fn spec(id: DeployId, service_name: &str, environment_name: &str) -> DeploySpec {
    let service = service(service_name);
    let environment = environment(environment_name);
    let request = DeployRequest {
        service: &service,
        environment: &environment,
        kind: ReleaseKind::Full,
        release: release(113),
        previous: Some(release(112)),
        requested_by: "alice".to_owned(),
        reason: None,
    };
    DeploySpec::new(id, request, T0)
}

/// Creates a deploy of `service` to `environment` at `now` and returns its id and the decision
/// that started it.
pub(crate) async fn create(
    store: &Store,
    fence: Option<&Fence>,
    service: &str,
    environment: &str,
    now: Time,
) -> (DeployId, Decision) {
    let mut started = None;
    let (id, created) = store
        .create_deploy(fence, None, now, |id| {
            let decision = start(spec(id, service, environment), now);
            started = Some(decision.clone());
            decision
        })
        .await
        .expect("the deploy is created");
    assert!(created);
    (id, started.expect("make was called"))
}

pub(crate) async fn stored(store: &Store, id: DeployId) -> StoredDeploy {
    store
        .deploy(id)
        .await
        .expect("the deploy can be read")
        .expect("the deploy exists")
}

/// The whole event log, oldest first.
pub(crate) async fn all_events(store: &Store) -> Vec<StoredEvent> {
    store
        .events(None, 0, 100_000)
        .await
        .expect("the event log can be read")
}

pub(crate) async fn pending(store: &Store) -> Vec<Effect> {
    store
        .pending_effects(1_000)
        .await
        .expect("pending effects can be read")
}

/// The effect of `effects` whose operation is `op`.
pub(crate) fn effect<'a>(effects: &'a [Effect], op: &str) -> &'a Effect {
    effects
        .iter()
        .find(|e| e.key.op == op)
        .unwrap_or_else(|| panic!("no effect `{op}` in {effects:?}"))
}

pub(crate) fn done() -> Outcome {
    Outcome::Done {
        detail: "ok".to_owned(),
    }
}

/// What a working fleet reports: done, and a passing check for a verification.
pub(crate) fn success(effect: &Effect) -> Outcome {
    match effect.action {
        Action::Verify { .. } => Outcome::Checked {
            verdict: Verdict::Pass,
            detail: "pass".to_owned(),
            score: None,
            measurements: Vec::new(),
        },
        _ => done(),
    }
}

pub(crate) fn actor(name: &str, role: Role) -> Actor {
    Actor {
        name: name.to_owned(),
        role,
    }
}

/// Applies the report of `effect` to the stored deploy and stores the decision.
pub(crate) async fn report(
    store: &Store,
    fence: Option<&Fence>,
    current: &StoredDeploy,
    effect: &Effect,
    outcome: &Outcome,
    now: Time,
) -> Result<StoredDeploy, slipway_store::StoreError> {
    let input = Input::Reported {
        key: effect.key.clone(),
        outcome: outcome.clone(),
    };
    let decision = decide(&current.deploy, &input, now).expect("reports are never refused");
    let consumed = Consumed::Effect {
        key: &effect.key,
        outcome,
    };
    store.apply(fence, current, &decision, consumed, now).await
}

/// Plays deploy `id` to its end through the store, as the engine would: answers every pending
/// effect with success, lets bob approve and erin say go and confirm scale-in through intents,
/// and ticks at each wake-up. Returns the finished deploy and when it finished.
pub(crate) async fn drive_to_end(
    store: &Store,
    id: DeployId,
    mut now: Time,
) -> (StoredDeploy, Time) {
    let mut current = stored(store, id).await;
    for _ in 0..MAX_STEPS {
        if let Some(effect) = pending(store).await.first() {
            current = report(store, None, &current, effect, &success(effect), now)
                .await
                .expect("the report is stored");
            continue;
        }
        if current.deploy.is_finished() {
            return (current, now);
        }
        if let Phase::Waiting { for_what, .. } = current.deploy.phase(now) {
            let input = match for_what {
                WaitingFor::Approval { .. } => Input::Approve {
                    by: actor("bob", Role::Approver),
                    binding: current.deploy.spec.binding(),
                },
                WaitingFor::Go => Input::Go {
                    by: actor("erin", Role::Deployer),
                },
                WaitingFor::ScaleInConfirmation => Input::ConfirmScaleIn {
                    by: actor("erin", Role::Deployer),
                },
                WaitingFor::BreakGlass | WaitingFor::Slot { .. } => {
                    unreachable!("these deploys never ask for break-glass nor wait for a slot")
                }
            };
            store
                .submit_intent(id, &input, now)
                .await
                .expect("the intent is stored");
            let intents = store
                .pending_intents(10)
                .await
                .expect("intents can be read");
            let [intent] = intents.as_slice() else {
                panic!("one pending intent expected, found {intents:?}");
            };
            let decision = decide(&current.deploy, &intent.input, now).expect("the intent applies");
            current = store
                .apply(None, &current, &decision, Consumed::Intent(intent.id), now)
                .await
                .expect("the intent's decision is stored");
            continue;
        }
        let wake = next_wake(&current.deploy)
            .expect("a running deploy with nothing pending has a wake-up");
        now = now.max(wake);
        let decision = decide(&current.deploy, &Input::Tick, now).expect("ticks are never refused");
        current = store
            .apply(None, &current, &decision, Consumed::Nothing, now)
            .await
            .expect("the tick's decision is stored");
    }
    panic!("deploy {id} did not finish within {MAX_STEPS} store writes");
}

/// A connection pool to the test's database that bypasses the store, for what the store's API
/// cannot do: editing the log behind its back. Close it with `AnyPool::close`.
pub(crate) async fn raw(db: &TestStore) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap_or_else(|error| panic!("a raw connection to the {} database: {error}", db.name()))
}

/// Runs `sql` on the raw connection.
pub(crate) async fn execute(pool: &AnyPool, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(pool)
        .await
        .map(|result| result.rows_affected())
}
