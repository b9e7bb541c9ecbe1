//! ActiveJob rules: `perform` signatures of BASE and HEAD, and BASE's callers.

use crate::support::{compare, of};

fn job(params: &str) -> String {
    format!(
        "class WelcomeJob < ApplicationJob\n  queue_as :default\n\n  def perform({params})\n    true\n  end\nend\n"
    )
}

const CALLER: &str = "class UsersController < ApplicationController\n  def create\n    WelcomeJob.perform_later(user.id, \"en\")\n  end\nend\n";

const PATH: &str = "app/jobs/welcome_job.rb";
const CALLER_PATH: &str = "app/controllers/users_controller.rb";

#[test]
fn a_new_required_perform_argument_is_unsafe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale"))),
            (CALLER_PATH, Some(CALLER)),
        ],
        &[(PATH, Some(&job("user_id, locale, campaign")))],
    );
    let found = of(&report, "job-new-required-argument");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].base.as_ref().unwrap().to_string(),
        "app/jobs/welcome_job.rb:4"
    );
    assert_eq!(
        found[0].head.as_ref().unwrap().to_string(),
        "app/jobs/welcome_job.rb:4"
    );
}

#[test]
fn a_new_perform_argument_with_a_default_is_safe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale"))),
            (CALLER_PATH, Some(CALLER)),
        ],
        &[(PATH, Some(&job("user_id, locale, campaign = nil")))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn a_new_required_keyword_argument_is_unsafe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale"))),
            (CALLER_PATH, Some(CALLER)),
        ],
        &[(PATH, Some(&job("user_id, locale, campaign:")))],
    );
    assert_eq!(
        of(&report, "job-new-required-argument").len(),
        1,
        "{report:#?}"
    );
}

#[test]
fn removing_an_argument_base_callers_still_pass_is_unsafe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale = \"en\""))),
            (CALLER_PATH, Some(CALLER)),
        ],
        &[(PATH, Some(&job("user_id")))],
    );
    let found = of(&report, "job-argument-removed");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].base.as_ref().unwrap().to_string(),
        "app/controllers/users_controller.rb:3"
    );
}

#[test]
fn removing_an_argument_no_base_caller_passes_is_safe() {
    let caller = "class UsersController < ApplicationController\n  def create\n    WelcomeJob.set(wait: 5).perform_later(user.id)\n  end\nend\n";
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale = \"en\""))),
            (CALLER_PATH, Some(caller)),
        ],
        &[(PATH, Some(&job("user_id")))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn a_changed_argument_default_is_unsafe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale = \"en\""))),
            (CALLER_PATH, Some(CALLER)),
        ],
        &[(PATH, Some(&job("user_id, locale = \"fr\"")))],
    );
    assert_eq!(of(&report, "job-default-changed").len(), 1, "{report:#?}");
}

#[test]
fn an_unchanged_argument_default_is_safe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale = \"en\""))),
            (CALLER_PATH, Some(CALLER)),
        ],
        &[(
            PATH,
            Some(&job("user_id, locale = \"en\""))
                .map(|j| j.replace("true", "false"))
                .as_deref(),
        )],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn enqueueing_a_job_in_the_change_that_adds_it_is_unsafe() {
    let report = compare(
        &[(
            "app/controllers/users_controller.rb",
            Some("class UsersController\nend\n"),
        )],
        &[
            (PATH, Some(&job("user_id, locale"))),
            (CALLER_PATH, Some(CALLER)),
        ],
    );
    let found = of(&report, "job-enqueued-on-introduction");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].head.as_ref().unwrap().to_string(),
        "app/controllers/users_controller.rb:3"
    );
    assert!(found[0].base.is_none());
}

#[test]
fn adding_a_job_without_enqueueing_it_is_safe() {
    let report = compare(
        &[(
            "app/controllers/users_controller.rb",
            Some("class UsersController\nend\n"),
        )],
        &[(PATH, Some(&job("user_id, locale")))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn removing_a_job_base_still_enqueues_is_unsafe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale"))),
            (CALLER_PATH, Some(CALLER)),
        ],
        &[(PATH, None)],
    );
    let found = of(&report, "job-removed-while-enqueued");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].base.as_ref().unwrap().to_string(),
        "app/controllers/users_controller.rb:3"
    );
}

#[test]
fn removing_a_job_nothing_enqueues_any_more_is_safe() {
    let report = compare(
        &[
            (PATH, Some(&job("user_id, locale"))),
            (CALLER_PATH, Some("class UsersController\nend\n")),
        ],
        &[(PATH, None)],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}
