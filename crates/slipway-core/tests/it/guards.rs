//! The guard rails in the state machine: who may approve and say go, what preflight findings
//! do (pass, wait for the next slot, fail, be overridden by break-glass).

use slipway_core::deploy::*;
use slipway_core::plan::StepKind;
use slipway_core::time::Time;

use crate::support::*;

fn waiting_for(run: &Run) -> Option<WaitingFor> {
    match run.deploy.phase(run.now) {
        Phase::Waiting { for_what, .. } => Some(for_what),
        _ => None,
    }
}

fn approve(by: Actor, run: &Run) -> Input {
    Input::Approve {
        by,
        binding: run.deploy.spec.binding(),
    }
}

fn gate(check: &str, passed: bool) -> GateResult {
    GateResult {
        check: check.to_owned(),
        passed,
        detail: match passed {
            true => format!("{check} fine"),
            false => format!("{check} says no"),
        },
        hint: (!passed).then(|| format!("fix {check}")),
        until: None,
        overridable: false,
    }
}

/// A refusal that ends by itself at `until` and that break-glass may override.
fn closed_until(until: Time) -> GateResult {
    GateResult {
        until: Some(until),
        overridable: true,
        ..gate("schedule", false)
    }
}

fn preflight(gates: Vec<GateResult>) -> Outcome {
    Outcome::Preflight { gates }
}

/// Runs a deploy of `environment` up to its preflight, which stays outstanding.
fn at_preflight(spec: DeploySpec) -> Run {
    let mut run = Run::start(spec);
    run.settle_with(|_, effect| match effect.action {
        Action::Preflight => None,
        _ => success(effect),
    });
    assert_eq!(run.step(), "preflight", "{}", run.log());
    run
}

#[test]
fn approvals_count_only_from_the_roles_the_environment_allows() {
    let mut environment = protected_env(&[]);
    let approvals = environment.policy.approvals.as_mut().unwrap();
    approvals.roles = vec![Role::Admin];
    let mut run = Run::start(spec(&environment));
    run.settle();
    let rejection = run.input(approve(bob(), &run)).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Forbidden);
    assert!(
        rejection.message.contains("(allowed: admin)"),
        "{rejection:?}"
    );
    run.act(approve(actor("frank", Role::Admin), &run));
    assert_eq!(waiting_for(&run), Some(WaitingFor::Go));
}

#[test]
fn an_author_of_the_release_cannot_approve_it_when_policy_says_so() {
    let mut environment = protected_env(&[]);
    environment.policy.approvals.as_mut().unwrap().not_authors = true;
    let mut spec = spec(&environment);
    spec.authors = vec!["bob".to_owned()];
    let mut run = Run::start(spec);
    run.settle();
    let rejection = run.input(approve(bob(), &run)).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Forbidden);
    assert!(rejection.message.contains("wrote commits of RC 113"));
    assert!(rejection.hint.contains("wrote none"));
    run.act(approve(carol(), &run));
    assert_eq!(waiting_for(&run), Some(WaitingFor::Go));
}

#[test]
fn a_replayed_approval_names_the_deploy_it_was_given_for() {
    let mut run = Run::start(spec(&protected_env(&[])));
    run.settle();
    let mut binding = run.deploy.spec.binding();
    binding.deploy = DeployId(6);
    let rejection = run
        .input(Input::Approve { by: bob(), binding })
        .unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Invalid);
    assert!(
        rejection
            .message
            .contains("given for deploy 6, not deploy 7"),
        "{rejection:?}"
    );
}

#[test]
fn the_requester_cannot_acknowledge_their_own_go_unless_policy_allows_it() {
    let environment = protected_env(&[]);
    let mut run = Run::start(spec(&environment));
    run.settle();
    run.act(approve(bob(), &run));
    run.settle();
    assert_eq!(waiting_for(&run), Some(WaitingFor::Go));
    assert!(run.events.contains(&Event::GoAnnounced {
        message:
            "PROD: about to deploy idp RC 113 (1.113.0), run by alice — clear to go?".to_owned(),
    }));
    let rejection = run.input(Input::Go { by: alice() }).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Forbidden);
    assert!(rejection.message.contains("its own go/no-go"));
    run.act(Input::Go { by: erin() });
    run.report("preflight-recheck", done());
    assert_eq!(run.step(), "migrate");

    let mut relaxed = protected_env(&[]);
    relaxed.policy.go_by_other = false;
    let mut run = Run::start(spec(&relaxed));
    run.settle();
    run.act(approve(bob(), &run));
    run.settle();
    let go = run
        .deploy
        .spec
        .plan
        .steps
        .iter()
        .find(|s| s.kind.name() == "go");
    assert_eq!(go.map(|s| &s.kind), Some(&StepKind::Go { by_other: false }));
    run.act(Input::Go { by: alice() });
    run.report("preflight-recheck", done());
    assert_eq!(run.step(), "migrate");
}

#[test]
fn a_refusal_that_ends_by_itself_waits_for_the_slot_and_preflight_runs_again() {
    let mut run = at_preflight(spec(&plain_env()));
    let opens = run.now.after(minutes(90));
    run.report(
        "preflight",
        preflight(vec![gate("lock", true), closed_until(opens)]),
    );
    assert_eq!(
        waiting_for(&run),
        Some(WaitingFor::Slot {
            until: opens,
            reason: "schedule says no".to_owned()
        })
    );
    assert!(run.result().is_none());
    assert!(
        run.outstanding
            .iter()
            .any(|e| matches!(&e.action, Action::Notify { notice: Notice::WaitingForSlot { until, .. } } if *until == opens)),
        "{}",
        run.log()
    );
    assert_eq!(slipway_core::decide::next_wake(&run.deploy), Some(opens));

    // Nothing happens before the slot; at the slot preflight runs again under a new key.
    run.tick_at(Time::from_millis(opens.as_millis() - 1));
    assert!(!run.outstanding.iter().any(|e| e.key.op == "preflight"));
    run.tick_at(opens);
    let again = run
        .outstanding
        .iter()
        .find(|e| e.key.op == "preflight")
        .unwrap();
    assert_eq!(again.key.attempt, 2);
    run.report("preflight", preflight(vec![gate("schedule", true)]));
    assert_eq!(run.step(), "migrate", "{}", run.log());
    assert!(waiting_for(&run).is_none());
}

#[test]
fn a_deploy_asked_not_to_wait_fails_at_once_with_the_reason_and_hint() {
    let mut spec = spec(&plain_env());
    spec.wait_for_slot = false;
    let mut run = at_preflight(spec);
    let opens = run.now.after(minutes(90));
    run.report("preflight", preflight(vec![closed_until(opens)]));
    assert_eq!(run.result(), Some(DeployResult::Failed), "{}", run.log());
    assert!(
        run.reason()
            .contains("schedule says no (hint: fix schedule)"),
        "{}",
        run.reason()
    );
}

#[test]
fn a_refusal_only_a_person_can_fix_fails_even_beside_one_that_would_wait() {
    let mut run = at_preflight(spec(&plain_env()));
    let opens = run.now.after(minutes(5));
    run.report(
        "preflight",
        preflight(vec![closed_until(opens), gate("checklist", false)]),
    );
    assert_eq!(run.result(), Some(DeployResult::Failed));
    assert!(
        run.reason().contains("checklist says no"),
        "{}",
        run.reason()
    );
}

#[test]
fn break_glass_waits_for_a_second_person_then_overrides_policy_but_not_safety() {
    let mut spec = spec(&protected_env(&[]));
    spec.break_glass = true;
    spec.reason = Some("login outage, hotfix".to_owned());
    let mut run = Run::start(spec.clone());
    run.settle();
    assert_eq!(waiting_for(&run), Some(WaitingFor::BreakGlass));
    assert!(run.emitted.iter().any(|e| matches!(
        &e.action,
        Action::Notify {
            notice: Notice::BreakGlassRequested
        }
    )),);
    // The requester cannot confirm their own break-glass, nor can a deployer.
    for by in [alice(), erin()] {
        let rejection = run.input(Input::BreakGlass { by }).unwrap_err();
        assert_eq!(rejection.code, RejectionCode::Forbidden);
    }
    run.act(Input::BreakGlass { by: bob() });
    assert!(run.events.contains(&Event::BreakGlassConfirmed {
        by: "bob".to_owned(),
        reason: "login outage, hotfix".to_owned(),
    }));
    run.settle_with(|_, effect| match effect.action {
        Action::Preflight => None,
        _ => success(effect),
    });
    let frozen = closed_until(run.now.after(minutes(600)));
    run.report("preflight", preflight(vec![gate("lock", true), frozen]));
    assert_eq!(run.step(), "approval", "{}", run.log());
    assert!(run.events.iter().any(|e| matches!(
        e,
        Event::PreflightChecked { check, overridden: true, .. } if check == "schedule"
    )));

    // A refusal break-glass may not override (another deploy running) still fails it.
    let mut run = Run::start(spec);
    run.settle();
    run.act(Input::BreakGlass { by: bob() });
    run.settle_with(|_, effect| match effect.action {
        Action::Preflight => None,
        _ => success(effect),
    });
    run.report("preflight", preflight(vec![gate("lock", false)]));
    assert_eq!(run.result(), Some(DeployResult::Failed));
}

#[test]
fn break_glass_cannot_be_confirmed_for_a_deploy_that_did_not_ask_for_it() {
    let mut run = Run::start(spec(&protected_env(&[])));
    run.settle();
    let rejection = run.input(Input::BreakGlass { by: bob() }).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Conflict);
}

#[test]
fn preflight_runs_again_after_the_go_and_a_window_closed_meanwhile_holds_the_deploy() {
    let mut run = Run::start(spec(&protected_env(&[])));
    run.settle();
    run.act(approve(bob(), &run));
    run.settle();
    assert_eq!(waiting_for(&run), Some(WaitingFor::Go));
    run.act(Input::Go { by: erin() });
    // The go is given; before anything acts, preflight runs again.
    assert_eq!(run.step(), "go");
    let recheck = run
        .outstanding
        .iter()
        .find(|e| e.key.op == "preflight-recheck")
        .expect("a second preflight after the go");
    assert_eq!(recheck.action, Action::Preflight);
    let opens = run.now.after(minutes(20));
    run.report("preflight-recheck", preflight(vec![closed_until(opens)]));
    assert_eq!(
        waiting_for(&run),
        Some(WaitingFor::Slot {
            until: opens,
            reason: "schedule says no".to_owned()
        }),
        "{}",
        run.log()
    );
    assert!(!run.deploy.is_waiting_for_person(run.now));
    assert!(
        !run.emitted
            .iter()
            .any(|e| matches!(e.action, Action::RunTask { .. } | Action::Launch { .. })),
        "nothing acts outside the slot"
    );
    // At the slot (approvals still valid) the check runs again and the deploy goes on.
    run.tick_at(opens);
    run.report("preflight-recheck", preflight(vec![gate("schedule", true)]));
    assert_eq!(run.step(), "migrate", "{}", run.log());
}

#[test]
fn a_recheck_refused_by_a_lock_fails_the_deploy_before_it_acts() {
    let mut environment = protected_env(&[]);
    environment.policy.go_no_go = false;
    let mut run = Run::start(spec(&environment));
    run.settle();
    run.act(approve(bob(), &run));
    // Without a go step, the approval is the last person-given step: the recheck follows it.
    run.report("preflight-recheck", preflight(vec![gate("lock", false)]));
    assert_eq!(run.result(), Some(DeployResult::Failed), "{}", run.log());
    assert!(
        run.reason().contains("lock says no (hint: fix lock)"),
        "{}",
        run.reason()
    );
}

#[test]
fn a_recheck_made_for_approvals_that_lapsed_runs_again_for_the_next_ones() {
    let mut environment = protected_env(&[]);
    environment.policy.go_no_go = false;
    let mut run = Run::start(spec(&environment));
    run.settle();
    run.act(approve(bob(), &run));
    let first = run
        .outstanding
        .iter()
        .find(|e| e.key.op == "preflight-recheck")
        .unwrap()
        .key
        .clone();
    // The approval expires before the recheck reports; its pass comes too late to count.
    run.tick_at(run.now.after(minutes(31)));
    run.act(Input::Reported {
        key: first.clone(),
        outcome: preflight(vec![gate("schedule", true)]),
    });
    run.outstanding.retain(|e| e.key != first);
    assert_eq!(run.step(), "approval");
    run.act(approve(carol(), &run));
    let again = run
        .outstanding
        .iter()
        .find(|e| e.key.op == "preflight-recheck")
        .expect("a fresh recheck for the new approval");
    assert!(
        again.key.attempt > first.attempt,
        "{again:?} after {first:?}"
    );
    assert_eq!(run.step(), "approval");
}
