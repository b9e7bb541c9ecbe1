//! The `checklist` preflight check: refuses a deploy whose items are not all ticked for its
//! release — naming each, who may tick it and the command — passes with who ticked what, and
//! lets rollbacks through.

use std::collections::BTreeMap;

use slipway_core::checklist::{ChecklistItem, Evidence, EvidenceKind, Per};
use slipway_core::config::{EnvironmentConfig, HealthCheck, Policy, Pool, ServiceConfig};
use slipway_core::deploy::{Actor, Deploy, DeployId, DeployRequest, DeploySpec, ReleaseRef, Role};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::{Span, Time};
use slipway_engine::plugin::PreflightCheck;
use slipway_engine::preflight::checklist::ChecklistCheck;
use slipway_store::{ItemPlace, Store};

const T0: Time = Time::from_millis(1_800_000_000_000);

fn release(number: u32) -> ReleaseRef {
    ReleaseRef {
        label: format!("RC {number}"),
        version: format!("1.{number}.0"),
        artifact: format!("sha256:{number:064x}"),
        config: format!("config-{number}"),
        config_version: None,
    }
}

/// alice deploys RC 12 of idp to prod.
fn deploy() -> Deploy {
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
    let environment = EnvironmentConfig {
        name: "prod".to_owned(),
        target: "local".to_owned(),
        regions: Vec::new(),
        policy: Policy::protected(),
        command: None,
    };
    let request = DeployRequest {
        service: &service,
        environment: &environment,
        kind: ReleaseKind::Full,
        release: release(12),
        previous: Some(release(11)),
        requested_by: "alice".to_owned(),
        reason: None,
    };
    Deploy {
        spec: DeploySpec::new(DeployId(1), request, T0),
        progress: Default::default(),
    }
}

/// Seed 001's items, all for prod.
fn items() -> Vec<ChecklistItem> {
    let item = |name: &str| ChecklistItem {
        name: name.to_owned(),
        description: None,
        services: Vec::new(),
        environments: vec!["prod".to_owned()],
        per: Per::Release,
        roles: ChecklistItem::DEFAULT_ROLES.to_vec(),
        evidence: EvidenceKind::Any,
        different_from_requester: false,
    };
    vec![
        ChecklistItem {
            roles: vec![Role::Approver],
            evidence: EvidenceKind::Link,
            ..item("agreement signed")
        },
        ChecklistItem {
            per: Per::Environment,
            ..item("logo present")
        },
        ChecklistItem {
            different_from_requester: true,
            ..item("reviewed by another engineer")
        },
        ChecklistItem {
            environments: vec!["staging".to_owned()],
            ..item("staging only")
        },
    ]
}

async fn tick(store: &Store, item: &str, release: Option<&str>, by: &str, role: Role) {
    let place = ItemPlace {
        service: "idp".to_owned(),
        environment: "prod".to_owned(),
        release: release.map(str::to_owned),
        item: item.to_owned(),
    };
    let actor = Actor {
        name: by.to_owned(),
        role,
    };
    let evidence = Evidence::Link(format!("https://example.com/{}", item.replace(' ', "-")));
    store
        .tick_item(&place, &actor, &evidence, T0)
        .await
        .expect("the tick is stored");
}

#[tokio::test]
async fn checklist_refuses_with_every_missing_item_then_passes_once_ticked() {
    let test = slipway_testkit::store::sqlite().await;
    let check = ChecklistCheck::new(test.store.clone(), items());
    let deploy = deploy();

    let refusal = check.check(&deploy, T0).await.unwrap_err();
    assert_eq!(
        refusal.message,
        "3 of 3 checklist item(s) of idp in prod not done for RC 12: \
         `agreement signed` (not ticked; an approver may tick it), \
         `logo present` (not ticked; a deployer, approver or admin may tick it), \
         `reviewed by another engineer` (not ticked; a deployer, approver or admin may tick it)"
    );
    assert_eq!(
        refusal.hint,
        "tick them, then deploy again: \
         slipway checklist tick idp --env prod --release \"RC 12\" \"agreement signed\" --link URL; \
         slipway checklist tick idp --env prod \"logo present\" --link URL; \
         slipway checklist tick idp --env prod --release \"RC 12\" \"reviewed by another engineer\" --link URL"
    );
    assert!(refusal.overridable, "break-glass may override a checklist");
    assert_eq!(refusal.until, None, "only a person can tick an item");

    // A tick for another release, and the requester's own review, do not count.
    tick(
        &test.store,
        "agreement signed",
        Some("RC 11"),
        "carol",
        Role::Approver,
    )
    .await;
    tick(&test.store, "logo present", None, "bob", Role::Deployer).await;
    tick(
        &test.store,
        "reviewed by another engineer",
        Some("RC 12"),
        "alice",
        Role::Deployer,
    )
    .await;
    let refusal = check.check(&deploy, T0).await.unwrap_err();
    assert_eq!(
        refusal.message,
        "2 of 3 checklist item(s) of idp in prod not done for RC 12: \
         `agreement signed` (not ticked; an approver may tick it), \
         `reviewed by another engineer` (ticked by alice, who requested the deploy; someone \
         else must tick it; a deployer, approver or admin may tick it)"
    );

    tick(
        &test.store,
        "agreement signed",
        Some("RC 12"),
        "carol",
        Role::Approver,
    )
    .await;
    tick(
        &test.store,
        "reviewed by another engineer",
        Some("RC 12"),
        "bob",
        Role::Deployer,
    )
    .await;
    let detail = check
        .check(&deploy, T0)
        .await
        .expect("every item is ticked");
    let at = T0.to_string();
    assert_eq!(
        detail,
        format!(
            "checklist of idp in prod for RC 12 complete: \
             `agreement signed` ticked by carol (approver) at {at}, link https://example.com/agreement-signed; \
             `logo present` (standing) ticked by bob (deployer) at {at}, link https://example.com/logo-present; \
             `reviewed by another engineer` ticked by bob (deployer) at {at}, link https://example.com/reviewed-by-another-engineer"
        )
    );
    test.close().await;
}

#[tokio::test]
async fn rollback_deploys_skip_checklists_and_say_so() {
    let test = slipway_testkit::store::sqlite().await;
    let check = ChecklistCheck::new(test.store.clone(), items());
    let forward = deploy();
    let rollback = Deploy {
        spec: DeploySpec::rollback(
            DeployId(2),
            &forward.spec,
            release(11),
            &[None],
            "alice".to_owned(),
            "errors".to_owned(),
            T0.after(Span::from_secs(60)),
        ),
        progress: Default::default(),
    };
    let detail = check.check(&rollback, T0).await.expect("rollbacks pass");
    assert_eq!(
        detail,
        "rollback: checklists are skipped (3 item(s) apply to idp in prod)"
    );
    test.close().await;
}

#[tokio::test]
async fn checklist_passes_where_no_item_applies() {
    let test = slipway_testkit::store::sqlite().await;
    let only_staging: Vec<ChecklistItem> = items()
        .into_iter()
        .filter(|i| i.environments == ["staging"])
        .collect();
    let check = ChecklistCheck::new(test.store.clone(), only_staging);
    assert_eq!(
        check.check(&deploy(), T0).await.unwrap(),
        "no checklist items apply to idp in prod"
    );
    test.close().await;
}
