//! The runbook rendered from a configuration: the plan slipway derives, the checks with their
//! limits, prerequisites, monitoring and rollback — snapshotted on a realistic config — and
//! unknown names answered with the closest one.

use slipway_core::config::parse_config;
use slipway_core::plan::{Purpose, ReleaseKind, derive_plan};
use slipway_core::runbook::render;

const EXAMPLE: &str = include_str!("../../../../examples/slipway.toml");

/// The example file with seed 001's checklist.
fn config() -> slipway_core::config::Config {
    let text = format!(
        "{EXAMPLE}\n{}",
        r#"
[[checklist]]
name = "agreement signed"
description = "The IAA is signed and names the application"
service = "idp"
environment = "prod"
roles = ["approver"]
evidence = "link"

[[checklist]]
name = "logo present"
environment = "prod"
per = "environment"

[[checklist]]
name = "reviewed by another engineer"
environment = ["staging", "prod"]
different_from_requester = true
"#
    );
    parse_config("slipway.toml", &text).expect("the example with a checklist is valid")
}

#[test]
fn runbook_of_one_environment_renders_its_plan_checks_and_prerequisites() {
    let config = config();
    let runbook = render(&config, "idp", Some("prod")).unwrap();
    insta::assert_snapshot!(runbook);
}

#[test]
fn runbook_of_every_environment_follows_promotion_order() {
    let config = config();
    let runbook = render(&config, "idp", None).unwrap();
    let sections: Vec<&str> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    assert_eq!(sections, ["The service", "dev", "int", "staging", "prod"]);
    insta::assert_snapshot!(runbook);
}

#[test]
fn runbook_contains_the_plan_slipway_derives_for_each_environment() {
    let config = config();
    let service = config.service("pivcac").unwrap();
    for environment in &config.environments {
        let runbook = render(&config, "pivcac", Some(&environment.name)).unwrap();
        let plan = derive_plan(service, environment, ReleaseKind::Full, Purpose::Release);
        assert!(
            runbook.contains(&plan.describe()),
            "{}: the plan\n{}\nis not in\n{runbook}",
            environment.name,
            plan.describe()
        );
    }
}

#[test]
fn unknown_service_or_environment_names_the_closest() {
    let config = config();
    let error = render(&config, "ipd", None).unwrap_err();
    assert_eq!(error.message, "unknown service `ipd`");
    assert_eq!(error.hint, "did you mean `idp`?");
    let error = render(&config, "idp", Some("production")).unwrap_err();
    assert_eq!(error.message, "unknown environment `production`");
    assert_eq!(error.hint, "did you mean `prod`?");
    let error = render(&config, "idp", Some("qa")).unwrap_err();
    assert_eq!(
        error.hint,
        "environments in slipway.toml: dev, int, staging, prod"
    );
}

#[test]
fn runbook_names_holiday_calendars_the_staffing_rule_and_the_schedule_command() {
    let text = r#"
[[service]]
name = "idp"
start = "bin/server"

[environment.prod]
protected = true
provenance = "off"
time_zone = "Europe/Berlin"
freeze_calendars = ["calendars/holidays.ics"]
staffing = { calendar = "calendars/absences.ics", max_out = 2, team = 6 }
"#;
    let config = parse_config("slipway.toml", text).unwrap();
    let runbook = render(&config, "idp", None).unwrap();
    for expected in [
        "- **When.** Deploys may start at any time outside freezes.",
        "- **Freeze.** No deploy starts during an event of the calendar `calendars/holidays.ics` \
         (holidays).",
        "- **Staffing.** No deploy starts while more than 2 of 6 people are out, as the absences \
         calendar `calendars/absences.ics` says.",
        "`slipway schedule idp --env prod` shows the next slot.",
    ] {
        assert!(runbook.contains(expected), "{expected}\nnot in\n{runbook}");
    }
}
