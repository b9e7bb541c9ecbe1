//! Snapshots of every notice as a Slack message and as slipway's webhook JSON: environment
//! first in capitals, a status word and colour each, the failing check with its numbers, and
//! the link to the deploy.

use std::collections::BTreeMap;

use serde_json::Value;
use slipway_core::analysis::{Classification, Measurement, MeasurementKind, Unit};
use slipway_core::deploy::{Ack, Deploy, DeployResult, Event, Notice, Verdict};
use slipway_core::plan::Purpose;
use slipway_core::time::Time;
use slipway_notify::failing_check;
use slipway_notify::payload::{Context, plain_headline, slack_payload, webhook_payload};

use crate::support::{NOW, deploy};

/// Every notice, named, with the deploy it is about.
fn notices() -> Vec<(&'static str, Deploy, Notice)> {
    let release = deploy("prod", Purpose::Release);
    let mut confirmed = release.clone();
    confirmed.progress.break_glass = Some(Ack {
        by: "bob".to_owned(),
        at: NOW,
    });
    let finished = |result, reason: Option<&str>| Notice::Finished {
        result,
        reason: reason.map(str::to_owned),
    };
    vec![
        ("started", release.clone(), Notice::Started),
        (
            "rollback_started",
            deploy("prod", Purpose::Rollback),
            Notice::Started,
        ),
        ("go_no_go", release.clone(), Notice::GoNoGo),
        (
            "waiting_for_approval",
            release.clone(),
            Notice::WaitingForApproval,
        ),
        (
            "break_glass_requested",
            release.clone(),
            Notice::BreakGlassRequested,
        ),
        ("break_glass", confirmed, Notice::BreakGlass),
        (
            "waiting_for_slot",
            release.clone(),
            Notice::WaitingForSlot {
                until: Time::from_millis(NOW.as_millis() + 3_600_000),
                reason: "outside the deploy window mon-thu 09:00-16:00 America/New_York".to_owned(),
            },
        ),
        (
            "succeeded",
            release.clone(),
            finished(DeployResult::Succeeded, None),
        ),
        (
            "failed",
            release.clone(),
            finished(DeployResult::Failed, Some("preflight: prod is frozen")),
        ),
        (
            "rolled_back",
            release.clone(),
            finished(
                DeployResult::RolledBack,
                Some("bake check failed: error_rate 20.0% above 1.0%"),
            ),
        ),
        (
            "aborted",
            release,
            finished(DeployResult::Aborted, Some("aborted by bob: wrong release")),
        ),
    ]
}

/// The failing check of the plan's bake step with two bad numbers and one good one.
fn failing_bake(deploy: &Deploy) -> Context {
    let bake = deploy
        .spec
        .plan
        .steps
        .iter()
        .position(|step| step.kind.name() == "bake")
        .expect("the plan bakes");
    let key = format!("12/{bake}/1/verify-3");
    let mut error_rate = Measurement::new(
        "error_rate",
        MeasurementKind::Threshold,
        "proxy",
        Unit::Ratio,
        Classification::High,
    );
    error_rate.value = Some(0.2);
    error_rate.limit = Some("<= 1.0%".to_owned());
    error_rate.requests = Some(412);
    let mut latency = Measurement::new(
        "latency_p99",
        MeasurementKind::Threshold,
        "proxy",
        Unit::Millis,
        Classification::Pass,
    );
    latency.value = Some(120.0);
    let probe = Measurement {
        note: "status 500, expected 200".to_owned(),
        ..Measurement::new(
            "probe /login",
            MeasurementKind::Probe,
            "http",
            Unit::Number,
            Classification::Fail,
        )
    };
    let mut events: Vec<Event> = [error_rate, latency, probe]
        .into_iter()
        .map(|measurement| Event::Measured {
            key: key.clone(),
            measurement,
        })
        .collect();
    events.push(Event::Checked {
        key,
        verdict: Verdict::Fail,
        detail: "error_rate 20.0% above its limit <= 1.0%".to_owned(),
        score: None,
    });
    Context {
        deploy_url: Some("https://slipway.example.org/deploys/12".to_owned()),
        failing_check: failing_check(deploy, &events),
    }
}

fn context_for(name: &str, deploy: &Deploy) -> Context {
    match name {
        "rolled_back" => failing_bake(deploy),
        _ => Context {
            deploy_url: Some("https://slipway.example.org/deploys/12".to_owned()),
            failing_check: None,
        },
    }
}

#[test]
fn every_notice_is_a_slack_message_with_environment_first_a_colour_and_a_link() {
    let mut all = BTreeMap::new();
    for (name, deploy, notice) in notices() {
        let payload = slack_payload(&deploy, &notice, &context_for(name, &deploy));
        let text = payload["text"].as_str().unwrap();
        assert!(text.starts_with("PROD: "), "{name}: {text}");
        all.insert(name, payload);
    }
    insta::assert_json_snapshot!("slack", all);
}

#[test]
fn every_notice_is_a_webhook_json_document() {
    let mut all: BTreeMap<&str, Value> = BTreeMap::new();
    for (name, deploy, notice) in notices() {
        let payload = webhook_payload(&deploy, &notice, &context_for(name, &deploy), NOW);
        all.insert(name, payload);
    }
    insta::assert_json_snapshot!("webhook", all);
}

#[test]
fn headlines_say_the_status_in_words_so_they_read_without_colour() {
    let headlines: Vec<String> = notices()
        .iter()
        .map(|(_, deploy, notice)| plain_headline(deploy, notice))
        .collect();
    insta::assert_snapshot!("headlines", headlines.join("\n"));
    let staging = deploy("staging", Purpose::Release);
    assert_eq!(
        plain_headline(&staging, &Notice::Started),
        "STAGING: idp RC 112 deploy started by alice"
    );
}
