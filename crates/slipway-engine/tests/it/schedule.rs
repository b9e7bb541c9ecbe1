//! The schedule preflight check: a refusal names the rule, says when the next slot opens and
//! may be overridden; an open environment's detail says what was verified; a rollback is never
//! held.

use std::collections::BTreeMap;

use slipway_core::config::{Config, parse_config};
use slipway_core::deploy::{Deploy, DeployId, DeployRequest, DeploySpec, Progress};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_core::time::Time;
use slipway_engine::preflight::schedule::check_schedule;
use slipway_testkit::fixtures::release;

const ABSENCES: &str = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260309\n\
                        DTEND;VALUE=DATE:20260314\nATTENDEE;CN=Alice:mailto:a@example.com\n\
                        END:VEVENT\nEND:VCALENDAR\n";

fn at(text: &str) -> Time {
    Time::from_timestamp(text.parse().unwrap())
}

fn config() -> Config {
    let text = r#"
[[service]]
name = "idp"
start = "bin/server"

[environment.prod]
windows = ["mon-thu 09:00-16:00 America/New_York"]
freezes = ["2026-12-21..2027-01-04 winter break"]
staffing = { calendar = "absences.ics", max_out = 2, team = 6 }
"#;
    let mut config = parse_config("slipway.toml", text).unwrap();
    let texts = BTreeMap::from([("absences.ics".to_owned(), Ok(ABSENCES.to_owned()))]);
    config.attach_calendars("slipway.toml", &texts).unwrap();
    config
}

fn deploy(config: &Config, purpose: Purpose) -> Deploy {
    let request = DeployRequest {
        service: config.service("idp").unwrap(),
        environment: config.environment("prod").unwrap(),
        kind: ReleaseKind::Full,
        release: release(2),
        previous: Some(release(1)),
        requested_by: "alice".to_owned(),
        reason: None,
    };
    let mut spec = DeploySpec::new(DeployId(1), request, at("2026-03-09T12:00:00Z"));
    spec.purpose = purpose;
    Deploy {
        spec,
        progress: Progress::default(),
    }
}

#[test]
fn schedule_check_refuses_outside_a_slot_until_the_next_one_and_never_holds_a_rollback() {
    let config = config();
    let release = deploy(&config, Purpose::Release);

    // Monday 10:00 EDT, inside the window, Alice out.
    let detail = check_schedule(&config, &release, at("2026-03-09T14:00:00Z")).unwrap();
    assert_eq!(
        detail,
        "inside window mon-thu 09:00-16:00 America/New_York; no freeze or holiday; 1 of 6 out \
         (max 2) at Mon 2026-03-09 10:00 EDT (14:00 UTC)"
    );

    // Friday: outside the window until Monday 09:00.
    let refusal = check_schedule(&config, &release, at("2026-03-13T14:00:00Z")).unwrap_err();
    assert_eq!(
        refusal.message,
        "prod is closed to deploys: outside the deploy window mon-thu 09:00-16:00 \
         America/New_York; next slot Mon 2026-03-16 09:00 EDT (13:00 UTC)"
    );
    assert_eq!(refusal.until, Some(at("2026-03-16T13:00:00Z")));
    assert!(refusal.overridable);
    assert!(
        refusal
            .hint
            .starts_with("`slipway schedule idp --env prod` shows the next slots"),
        "{}",
        refusal.hint
    );
    assert!(
        refusal.hint.contains("--break-glass --reason"),
        "{}",
        refusal.hint
    );

    // The winter break names its reason; the next slot is after it.
    let refusal = check_schedule(&config, &release, at("2026-12-22T15:00:00Z")).unwrap_err();
    assert!(
        refusal
            .message
            .contains("frozen: winter break (`2026-12-21..2027-01-04 winter break`)"),
        "{}",
        refusal.message
    );
    assert_eq!(refusal.until, Some(at("2027-01-05T14:00:00Z")));

    // A rollback passes on a Friday and in the winter break.
    let rollback = deploy(&config, Purpose::Rollback);
    for now in ["2026-03-13T14:00:00Z", "2026-12-22T15:00:00Z"] {
        let detail = check_schedule(&config, &rollback, at(now)).unwrap();
        assert!(detail.starts_with("rollback: not held"), "{detail}");
    }
}
