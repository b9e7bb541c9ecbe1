//! Plan derivation: which steps an environment's policy, a release kind and a purpose produce.

use slipway_core::config::EnvironmentConfig;
use slipway_core::plan::{Plan, Purpose, ReleaseKind, StepKind, derive_plan};

use crate::support::{minutes, plain_env, protected_env, service};

fn plan(environment: &EnvironmentConfig, kind: ReleaseKind, purpose: Purpose) -> Plan {
    derive_plan(&service(), environment, kind, purpose)
}

/// `surge [r1]`-style titles, for compact assertions.
fn titles(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match &step.region {
            Some(region) => format!("{} [{region}]", step.kind.name()),
            None => step.kind.name().to_owned(),
        })
        .collect()
}

#[test]
fn protected_env_with_canary_and_two_regions_runs_the_full_plan_in_waves() {
    let plan = plan(
        &protected_env(&["r1", "r2"]),
        ReleaseKind::Full,
        Purpose::Release,
    );
    assert_eq!(
        titles(&plan),
        [
            "preflight",
            "approval",
            "go",
            "migrate",
            "canary [r1]",
            "surge [r1]",
            "bake [r1]",
            "scale-in [r1]",
            "surge [r2]",
            "bake [r2]",
            "scale-in [r2]",
            "post-verify",
            "finalize",
        ]
    );
    assert_eq!(
        plan.regions(),
        [Some("r1".to_owned()), Some("r2".to_owned())]
    );
    insta::assert_snapshot!(plan.describe());
}

#[test]
fn unprotected_env_without_migrate_surges_and_scales_in_only() {
    let mut service = service();
    service.migrate = None;
    let plan = derive_plan(&service, &plain_env(), ReleaseKind::Full, Purpose::Release);
    assert_eq!(
        titles(&plan),
        ["preflight", "surge", "scale-in", "finalize"]
    );
    assert_eq!(plan.steps[2].kind, StepKind::ScaleIn { confirm: false });
    assert_eq!(plan.regions(), [None]);
}

#[test]
fn config_release_skips_migrate() {
    let env = protected_env(&[]);
    let full = plan(&env, ReleaseKind::Full, Purpose::Release);
    let config = plan(&env, ReleaseKind::Config, Purpose::Release);
    assert!(titles(&full).contains(&"migrate".to_owned()));
    assert!(!titles(&config).contains(&"migrate".to_owned()));
    // Only the migration differs.
    let without_migrate: Vec<String> = titles(&full)
        .into_iter()
        .filter(|t| t != "migrate")
        .collect();
    assert_eq!(titles(&config), without_migrate);
    for kind in [ReleaseKind::Patch, ReleaseKind::OffCycle] {
        assert_eq!(
            titles(&plan(&env, kind, Purpose::Release)),
            titles(&full),
            "{kind:?}"
        );
    }
}

#[test]
fn rollback_skips_approval_go_migrate_canary_bake_and_confirmation() {
    let plan = plan(
        &protected_env(&["r1", "r2"]),
        ReleaseKind::Full,
        Purpose::Rollback,
    );
    assert_eq!(
        titles(&plan),
        [
            "preflight",
            "surge [r1]",
            "scale-in [r1]",
            "surge [r2]",
            "scale-in [r2]",
            "finalize",
        ]
    );
    for step in &plan.steps {
        if let StepKind::ScaleIn { confirm } = step.kind {
            assert!(
                !confirm,
                "a rollback must not wait for a scale-in confirmation"
            );
        }
    }
}

#[test]
fn plan_hash_changes_when_the_plan_changes() {
    let env = protected_env(&["r1", "r2"]);
    let base = plan(&env, ReleaseKind::Full, Purpose::Release);
    assert_eq!(
        base.hash(),
        plan(&env, ReleaseKind::Full, Purpose::Release).hash()
    );
    assert_eq!(base.hash().len(), 64, "a hex sha256");

    let mut changes: Vec<(&str, EnvironmentConfig)> = Vec::new();
    let mut longer_bake = env.clone();
    longer_bake.policy.bake = minutes(30);
    changes.push(("bake", longer_bake));
    let mut one_region = env.clone();
    one_region.regions.pop();
    changes.push(("regions", one_region));
    let mut more_approvals = env.clone();
    more_approvals.policy.approvals.as_mut().unwrap().required = 2;
    changes.push(("approvals", more_approvals));
    let mut no_confirmation = env.clone();
    no_confirmation.policy.confirm_scale_in = false;
    changes.push(("confirm_scale_in", no_confirmation));
    let mut slower_checks = env.clone();
    slower_checks.policy.analysis_interval = minutes(10);
    changes.push(("analysis_interval", slower_checks));

    for (what, changed) in changes {
        let other = plan(&changed, ReleaseKind::Full, Purpose::Release);
        assert_ne!(
            base.hash(),
            other.hash(),
            "changing {what} must change the plan hash"
        );
    }
    let config = plan(&env, ReleaseKind::Config, Purpose::Release);
    assert_ne!(
        base.hash(),
        config.hash(),
        "dropping migrate must change the plan hash"
    );
}

#[test]
fn header_canary_is_described_by_its_header() {
    let mut env = protected_env(&[]);
    env.policy.canary.as_mut().unwrap().header = Some("X-Tenant: internal".to_owned());
    let plan = plan(&env, ReleaseKind::Full, Purpose::Release);
    let canary = plan
        .describe()
        .lines()
        .find(|l| l.contains("canary"))
        .unwrap()
        .to_owned();
    assert_eq!(
        canary,
        "4 canary 1 instance(s), header `X-Tenant: internal`, for 10m"
    );
}
