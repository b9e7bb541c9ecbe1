//! Session, cookie and stored-field rules.

use crate::support::{compare, of};

const PATH: &str = "app/controllers/steps_controller.rb";

fn controller(body: &str) -> String {
    format!("class StepsController < ApplicationController\n  def show\n{body}\n  end\nend\n")
}

#[test]
fn reading_a_session_key_under_a_new_name_without_fallback_is_unsafe() {
    let report = compare(
        &[(
            PATH,
            Some(&controller(
                "    session[:step] = 1\n    @step = session[:step]",
            )),
        )],
        &[(
            PATH,
            Some(&controller(
                "    session[:current_step] = 1\n    @step = session[:current_step]",
            )),
        )],
    );
    let found = of(&report, "session-read-without-fallback");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].head.as_ref().unwrap().to_string(),
        "app/controllers/steps_controller.rb:4"
    );
}

#[test]
fn reading_a_renamed_session_key_with_an_old_name_fallback_is_safe() {
    let report = compare(
        &[(
            PATH,
            Some(&controller(
                "    session[:step] = 1\n    @step = session[:step]",
            )),
        )],
        &[(
            PATH,
            Some(&controller(
                "    session[:current_step] = 1\n    session[:step] = 1\n    @step = session[:current_step] || session[:step]",
            )),
        )],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn no_longer_writing_a_cookie_base_still_reads_is_unsafe() {
    let report = compare(
        &[(
            PATH,
            Some(&controller(
                "    cookies.signed[:theme] = \"dark\"\n    @theme = cookies.signed[:theme]",
            )),
        )],
        &[(PATH, Some(&controller("    @theme = \"dark\"")))],
    );
    let found = of(&report, "session-field-removed");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].base.as_ref().unwrap().line, 4);
}

#[test]
fn still_writing_a_session_key_base_reads_is_safe() {
    let report = compare(
        &[(
            PATH,
            Some(&controller(
                "    session[:step] = 1\n    @step = session[:step]",
            )),
        )],
        &[(PATH, Some(&controller("    session[:step] = 2")))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn removing_a_store_accessor_base_still_reads_is_unsafe() {
    let model =
        "class User < ApplicationRecord\n  store_accessor :preferences, :theme, :locale\nend\n";
    let without = "class User < ApplicationRecord\n  store_accessor :preferences, :locale\nend\n";
    let view = "<p><%= current_user.theme %></p>\n";
    let report = compare(
        &[
            ("app/models/user.rb", Some(model)),
            ("app/views/home/index.html.erb", Some(view)),
        ],
        &[("app/models/user.rb", Some(without))],
    );
    assert_eq!(of(&report, "session-field-removed").len(), 1, "{report:#?}");
}

#[test]
fn removing_a_store_accessor_nothing_reads_is_safe() {
    let model =
        "class User < ApplicationRecord\n  store_accessor :preferences, :theme, :locale\nend\n";
    let without = "class User < ApplicationRecord\n  store_accessor :preferences, :locale\nend\n";
    let report = compare(
        &[("app/models/user.rb", Some(model))],
        &[("app/models/user.rb", Some(without))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}
