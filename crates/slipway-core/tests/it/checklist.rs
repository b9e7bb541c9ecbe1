//! Checklists: `[[checklist]]` items read with their defaults and scope, every mistake in them
//! reported with a position and a hint, and `evaluate` deciding which items a deploy still
//! lacks.

use slipway_core::checklist::{
    ChecklistItem, Evidence, EvidenceKind, Per, Tick, evaluate, items_for, tick_command,
};
use slipway_core::config::parse_config;
use slipway_core::deploy::Role;
use slipway_core::time::Time;

/// Two services and two environments, so items can be scoped.
const BASE: &str = "[[service]]\nname = \"idp\"\nstart = \"x\"\n\n[[service]]\nname = \"pivcac\"\nstart = \"x\"\n\n[environment.staging]\n[environment.prod]\nprotected = true\nprovenance = \"off\"\n\n";

fn with_items(items: &str) -> String {
    format!("{BASE}{items}")
}

fn items(text: &str) -> Vec<ChecklistItem> {
    match parse_config("slipway.toml", text) {
        Ok(config) => config.checklist,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

fn rendered_errors(text: &str) -> String {
    match parse_config("slipway.toml", text) {
        Ok(config) => panic!("expected errors, parsed {:#?}", config.checklist),
        Err(errors) => errors.to_string(),
    }
}

/// Seed 001's prerequisites for partner configuration in production.
const SEED_001: &str = r#"
[[checklist]]
name = "agreement signed"
description = "The IAA is signed and names the application in its statement of work"
service = "idp"
environment = "prod"
roles = ["approver"]
evidence = "link"

[[checklist]]
name = "details confirmed"
environment = "prod"
evidence = "note"

[[checklist]]
name = "logo present"
service = ["idp", "pivcac"]
per = "environment"

[[checklist]]
name = "reviewed by another engineer"
environment = ["prod"]
different_from_requester = true
"#;

#[test]
fn checklist_items_are_read_with_scope_roles_evidence_and_defaults() {
    let items = items(&with_items(SEED_001));
    let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "agreement signed",
            "details confirmed",
            "logo present",
            "reviewed by another engineer"
        ]
    );
    let agreement = &items[0];
    assert_eq!(agreement.services, ["idp"]);
    assert_eq!(agreement.environments, ["prod"]);
    assert_eq!(agreement.per, Per::Release);
    assert_eq!(agreement.roles, [Role::Approver]);
    assert_eq!(agreement.evidence, EvidenceKind::Link);
    assert!(!agreement.different_from_requester);
    assert!(
        agreement
            .description
            .as_deref()
            .unwrap()
            .starts_with("The IAA")
    );

    let details = &items[1];
    assert!(details.services.is_empty(), "absent service means all");
    assert_eq!(
        details.roles,
        [Role::Deployer, Role::Approver, Role::Admin],
        "deployers, approvers and admins by default"
    );
    assert_eq!(details.evidence, EvidenceKind::Note);

    let logo = &items[2];
    assert_eq!(logo.services, ["idp", "pivcac"]);
    assert!(logo.environments.is_empty());
    assert_eq!(logo.per, Per::Environment);
    assert_eq!(logo.evidence, EvidenceKind::Any);

    assert!(items[3].different_from_requester);
}

#[test]
fn items_apply_to_the_services_and_environments_they_name() {
    let items = items(&with_items(SEED_001));
    let names = |service, environment| -> Vec<String> {
        items_for(&items, service, environment)
            .iter()
            .map(|i| i.name.clone())
            .collect()
    };
    assert_eq!(
        names("idp", "prod"),
        [
            "agreement signed",
            "details confirmed",
            "logo present",
            "reviewed by another engineer"
        ]
    );
    assert_eq!(
        names("pivcac", "prod"),
        [
            "details confirmed",
            "logo present",
            "reviewed by another engineer"
        ]
    );
    assert_eq!(names("idp", "staging"), ["logo present"]);
}

#[test]
fn checklist_mistakes_are_reported_with_their_position_and_a_fix() {
    let text = with_items(
        r#"[[checklist]]
name = "agreement signed"
service = "ipd"
environment = ["prod", "prdo"]
per = "relase"
roles = ["aprover", "viewer"]
evidence = "url"
diferent_from_requester = true

[[checklist]]
description = "no name"

[[checklist]]
name = "agreement signed"
environment = "prod"

[[checklist]]
name = "logo present"
roles = []
service = 3
"#,
    );
    insta::assert_snapshot!(rendered_errors(&text));
}

#[test]
fn items_of_one_name_may_exist_for_different_services() {
    let items = items(&with_items(
        "[[checklist]]\nname = \"logo present\"\nservice = \"idp\"\n\n\
         [[checklist]]\nname = \"logo present\"\nservice = \"pivcac\"\nroles = [\"admin\"]\n",
    ));
    assert_eq!(items.len(), 2);
    assert_eq!(items_for(&items, "pivcac", "prod")[0].roles, [Role::Admin]);
}

fn item(name: &str, per: Per) -> ChecklistItem {
    ChecklistItem {
        name: name.to_owned(),
        description: None,
        services: Vec::new(),
        environments: Vec::new(),
        per,
        roles: ChecklistItem::DEFAULT_ROLES.to_vec(),
        evidence: EvidenceKind::Any,
        different_from_requester: false,
    }
}

fn tick(item: &str, release: Option<&str>, by: &str, role: Role, evidence: Evidence) -> Tick {
    Tick {
        item: item.to_owned(),
        release: release.map(str::to_owned),
        by: by.to_owned(),
        role,
        evidence,
        at: Time::from_millis(1_000),
    }
}

fn link() -> Evidence {
    Evidence::Link("https://tickets.example.com/42".to_owned())
}

#[test]
fn release_items_need_a_tick_for_the_release_being_deployed() {
    let agreement = item("agreement signed", Per::Release);
    let items = [&agreement];
    let ticks = [tick(
        "agreement signed",
        Some("RC 11"),
        "bob",
        Role::Deployer,
        link(),
    )];
    let status = evaluate(&items, &ticks, Some("RC 12"), Some("alice"));
    assert_eq!(status[0].missing.as_deref(), Some("not ticked"));
    let status = evaluate(&items, &ticks, Some("RC 11"), Some("alice"));
    assert!(status[0].is_done());
    let status = evaluate(&items, &ticks, None, None);
    assert_eq!(
        status[0].missing.as_deref(),
        Some("ticked per release; no release given")
    );
}

#[test]
fn standing_items_count_for_every_release() {
    let logo = item("logo present", Per::Environment);
    let ticks = [tick("logo present", None, "bob", Role::Deployer, link())];
    for release in [Some("RC 1"), Some("RC 99"), None] {
        let status = evaluate(&[&logo], &ticks, release, Some("alice"));
        assert!(status[0].is_done(), "{release:?}: {:?}", status[0].missing);
    }
}

#[test]
fn an_item_for_another_engineer_is_not_done_by_the_requesters_own_tick() {
    let review = ChecklistItem {
        different_from_requester: true,
        ..item("reviewed by another engineer", Per::Release)
    };
    let ticks = [tick(
        "reviewed by another engineer",
        Some("RC 12"),
        "alice",
        Role::Deployer,
        link(),
    )];
    let status = evaluate(&[&review], &ticks, Some("RC 12"), Some("alice"));
    assert_eq!(
        status[0].missing.as_deref(),
        Some("ticked by alice, who requested the deploy; someone else must tick it")
    );
    let status = evaluate(&[&review], &ticks, Some("RC 12"), Some("bob"));
    assert!(status[0].is_done());
}

#[test]
fn a_tick_stops_counting_when_the_config_asks_for_more() {
    let stricter = ChecklistItem {
        roles: vec![Role::Approver],
        evidence: EvidenceKind::Note,
        ..item("agreement signed", Per::Release)
    };
    let by_deployer = [tick(
        "agreement signed",
        Some("RC 12"),
        "bob",
        Role::Deployer,
        Evidence::Note("signed".to_owned()),
    )];
    let status = evaluate(&[&stricter], &by_deployer, Some("RC 12"), None);
    assert_eq!(
        status[0].missing.as_deref(),
        Some("ticked by bob as deployer, but it needs an approver now")
    );
    let with_link = [tick(
        "agreement signed",
        Some("RC 12"),
        "carol",
        Role::Approver,
        link(),
    )];
    let status = evaluate(&[&stricter], &with_link, Some("RC 12"), None);
    assert_eq!(
        status[0].missing.as_deref(),
        Some("ticked by carol with a link, but it needs a note now")
    );
}

#[test]
fn evidence_must_be_what_the_item_takes() {
    let link_only = ChecklistItem {
        evidence: EvidenceKind::Link,
        ..item("agreement signed", Per::Release)
    };
    let refused = |evidence: Evidence| {
        link_only
            .check_evidence(&evidence)
            .map(|()| "accepted".to_owned())
            .unwrap_or_else(|refused| format!("{} / hint: {}", refused.message, refused.hint))
    };
    assert_eq!(refused(link()), "accepted");
    assert_eq!(
        refused(Evidence::Link("tickets/42".to_owned())),
        "`tickets/42` is not an http:// or https:// link / hint: give the full address, e.g. \
         --link https://tickets.example.com/1234"
    );
    assert_eq!(
        refused(Evidence::Link("https:// spaced".to_owned())),
        "`https:// spaced` is not an http:// or https:// link / hint: give the full address, \
         e.g. --link https://tickets.example.com/1234"
    );
    assert!(refused(Evidence::Note("signed".to_owned())).starts_with(
        "`agreement signed` takes a link as evidence, not a note / hint: pass --link URL"
    ));
    let any = item("details confirmed", Per::Release);
    assert!(any.check_evidence(&Evidence::Note("ok".to_owned())).is_ok());
    let empty = any
        .check_evidence(&Evidence::Note("  ".to_owned()))
        .unwrap_err();
    assert_eq!(empty.message, "the note for `details confirmed` is empty");
}

#[test]
fn only_the_roles_named_may_tick_like_the_roles_of_approvals() {
    let approvers = ChecklistItem {
        roles: vec![Role::Approver],
        ..item("agreement signed", Per::Release)
    };
    assert!(!approvers.may_tick(Role::Deployer));
    assert!(approvers.may_tick(Role::Approver));
    assert!(!approvers.may_tick(Role::Admin), "admins only when named");
    assert_eq!(approvers.who_may_tick(), "an approver");
    assert_eq!(
        item("x", Per::Release).who_may_tick(),
        "a deployer, approver or admin"
    );
    let text = with_items(
        "[[checklist]]\nname = \"agreement signed\"\nroles = [\"admin\", \"approver\", \"admin\"]\n",
    );
    assert_eq!(items(&text)[0].roles, [Role::Approver, Role::Admin]);
}

#[test]
fn the_tick_command_quotes_what_the_shell_would_split() {
    let agreement = ChecklistItem {
        evidence: EvidenceKind::Link,
        ..item("agreement signed", Per::Release)
    };
    assert_eq!(
        tick_command(&agreement, "idp", "prod", Some("RC 12")),
        "slipway checklist tick idp --env prod --release \"RC 12\" \"agreement signed\" --link URL"
    );
    let logo = ChecklistItem {
        evidence: EvidenceKind::Note,
        ..item("logo", Per::Environment)
    };
    assert_eq!(
        tick_command(&logo, "idp", "prod", Some("RC 12")),
        "slipway checklist tick idp --env prod logo --note TEXT"
    );
}
