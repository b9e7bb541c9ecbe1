//! Benchmarks of the pure core: `decide` steps per second through a whole protected plan, and
//! `ChainVerifier::check` over a million in-memory events. Run with
//! `cargo bench -p slipway-core --bench core` (or `bench/store.sh`); figures go to
//! `docs/benchmarks.md`.
//!
//! A plain binary (`harness = false`): each figure is measured several times and the median is
//! printed. `SLIPWAY_BENCH_EVENTS` overrides the number of chain events (default 1,000,000).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use slipway_core::audit::{ChainVerifier, EventFields, GENESIS, Hash, chain_hash};
use slipway_core::config::{
    ApprovalPolicy, CanaryPolicy, EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig,
};
use slipway_core::decide::{decide, next_wake, start};
use slipway_core::deploy::{
    Action, Actor, DeployId, DeployRequest, DeploySpec, Effect, Event, Input, Outcome, Phase,
    ReleaseRef, Role, Verdict, WaitingFor,
};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::{Span, Time};

const T0: Time = Time::from_millis(1_800_000_000_000);
const REPETITIONS: usize = 7;
/// Deploys played per repetition of the `decide` benchmark.
const DEPLOYS: usize = 200;
/// Most `decide` calls one deploy may take: a looping deploy stops the benchmark.
const MAX_DECISIONS: usize = 10_000;

fn main() {
    let events = std::env::var("SLIPWAY_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    println!("slipway-core benchmarks: median of {REPETITIONS} repetitions");
    bench_decide();
    bench_chain(events);
}

/// One `idp` deploy to a protected, two-region production: preflight, approval, go, migrate,
/// canary, then surge, bake and confirmed scale-in per region, post-verify and finalize.
fn spec(id: i64) -> DeploySpec {
    let minutes = |m: u64| Span::from_secs(m * 60);
    let service = ServiceConfig {
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
    };
    let environment = EnvironmentConfig {
        name: "prod".to_owned(),
        target: "local".to_owned(),
        regions: vec!["us-east".to_owned(), "eu-west".to_owned()],
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
            ..Policy::default()
        },
        command: None,
    };
    let release = |n: u32| ReleaseRef {
        label: format!("RC {n}"),
        version: format!("1.{n}.0"),
        artifact: format!("sha256:{n:064x}"),
        config: format!("config-{n}"),
        config_version: None,
    };
    let request = DeployRequest {
        service: &service,
        environment: &environment,
        kind: ReleaseKind::Full,
        release: release(113),
        previous: Some(release(112)),
        requested_by: "alice".to_owned(),
        reason: None,
    };
    DeploySpec::new(DeployId(id), request, T0)
}

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        name: name.to_owned(),
        role,
    }
}

fn success(effect: &Effect) -> Outcome {
    match effect.action {
        Action::Verify { .. } => Outcome::Checked {
            verdict: Verdict::Pass,
            detail: "pass".to_owned(),
            score: None,
            measurements: Vec::new(),
        },
        _ => Outcome::Done {
            detail: "ok".to_owned(),
        },
    }
}

/// Plays one deploy to its end: every effect succeeds at once, people answer at once, the clock
/// jumps to each wake-up. Returns the number of `decide` calls and every event recorded.
fn play(id: i64) -> (usize, Vec<Event>) {
    let decision = start(spec(id), T0);
    let mut deploy = decision.deploy;
    let mut outstanding = decision.effects;
    let mut events = decision.events;
    let mut now = T0;
    for calls in 0..MAX_DECISIONS {
        let input = if let Some(effect) = outstanding.pop() {
            Input::Reported {
                outcome: success(&effect),
                key: effect.key,
            }
        } else if deploy.is_finished() {
            return (calls, events);
        } else if let Phase::Waiting { for_what, .. } = deploy.phase(now) {
            match for_what {
                WaitingFor::Approval { .. } => Input::Approve {
                    by: actor("bob", Role::Approver),
                    binding: deploy.spec.binding(),
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
            }
        } else {
            now = now.max(next_wake(&deploy).expect("a waiting deploy has a wake-up"));
            Input::Tick
        };
        let decision = decide(&deploy, &input, now).expect("the driver's inputs apply");
        deploy = decision.deploy;
        outstanding.extend(decision.effects);
        events.extend(decision.events);
    }
    panic!("deploy {id} did not finish in {MAX_DECISIONS} decisions");
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn seconds(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64()
}

fn bench_decide() {
    let (calls_per_deploy, _) = play(1);
    let mut rates = Vec::new();
    for _ in 0..REPETITIONS {
        let started = Instant::now();
        let mut calls = 0;
        for id in 0..DEPLOYS {
            calls += black_box(play(black_box(id as i64))).0;
        }
        rates.push(calls as f64 / seconds(started.elapsed()));
    }
    let rate = median(rates);
    println!(
        "decide: {calls_per_deploy} calls per protected two-region deploy, {DEPLOYS} deploys per \
         repetition: {rate:.0} decide calls/s (median), {:.2} µs per call",
        1e6 / rate
    );
}

/// A stored event, as the verifier sees it.
struct Row {
    seq: i64,
    at: Time,
    deploy: Option<i64>,
    kind: &'static str,
    payload: String,
    prev: Hash,
    hash: Hash,
}

fn bench_chain(count: usize) {
    // Real payloads: the events of a played deploy, repeated.
    let (_, events) = play(7);
    let templates: Vec<(&'static str, String)> = events
        .iter()
        .map(|e| {
            (
                e.kind(),
                serde_json::to_string(e).expect("events serialize"),
            )
        })
        .collect();
    let mean_payload =
        templates.iter().map(|(_, p)| p.len()).sum::<usize>() as f64 / templates.len() as f64;
    let build = Instant::now();
    let mut prev = GENESIS;
    let rows: Vec<Row> = (0..count)
        .map(|i| {
            let (kind, payload) = &templates[i % templates.len()];
            let seq = i as i64 + 1;
            let at = T0.after(Span::from_millis(i as u64));
            let deploy = Some(i as i64 / templates.len() as i64 + 1);
            let fields = EventFields {
                seq,
                at,
                deploy,
                kind,
                payload,
            };
            let hash = chain_hash(&prev, &fields);
            let row = Row {
                seq,
                at,
                deploy,
                kind,
                payload: payload.clone(),
                prev,
                hash,
            };
            prev = hash;
            row
        })
        .collect();
    let built = build.elapsed();
    let mut times = Vec::new();
    for _ in 0..REPETITIONS {
        let started = Instant::now();
        let mut verifier = ChainVerifier::default();
        for row in &rows {
            let fields = EventFields {
                seq: row.seq,
                at: row.at,
                deploy: row.deploy,
                kind: row.kind,
                payload: &row.payload,
            };
            verifier
                .check(black_box(&fields), &row.prev, &row.hash)
                .expect("the chain is intact");
        }
        verifier
            .check_head(count as i64, &prev)
            .expect("the head matches");
        times.push(seconds(started.elapsed()));
    }
    let time = median(times);
    println!(
        "chain (in memory): ChainVerifier::check over {count} events (mean payload \
         {mean_payload:.0} bytes; hashing them once took {:.3} s): {time:.3} s (median), \
         {:.0} events/s; goal 1,000,000 events < 1 s: {}",
        seconds(built),
        count as f64 / time,
        goal_met(count, time)
    );
}

/// Whether `count` events verified in `time` meet "1,000,000 events in under 1 s".
fn goal_met(count: usize, time: f64) -> &'static str {
    if time * 1_000_000.0 / count as f64 <= 1.0 {
        "met"
    } else {
        "MISSED"
    }
}
