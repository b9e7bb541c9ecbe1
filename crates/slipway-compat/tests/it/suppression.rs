//! Suppressions with a reason, in code or in configuration: reported, not dropped.

use slipway_compat::{Ignore, Options};

use crate::support::{compare, compare_with, of};

const VIEW: &str = "<p><%= @user.email %></p>\n";

#[test]
fn a_comment_with_a_reason_suppresses_a_finding_and_keeps_it_in_the_report() {
    let m = "class Drop < ActiveRecord::Migration[7.1]\n  def change\n    # slipway:compat-ignore rails-drop-column-in-use the view reads a decorator, not the column\n    remove_column :users, :email\n  end\nend\n";
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_drop.rb", Some(m))],
    );
    let found = of(&report, "rails-drop-column-in-use");
    assert_eq!(found.len(), 1, "{report:#?}");
    let suppression = found[0].suppressed.as_ref().expect("suppressed");
    assert_eq!(suppression.source, "code");
    assert_eq!(
        suppression.reason,
        "the view reads a decorator, not the column"
    );
    assert!(report.passed());
    assert!(
        report
            .to_text()
            .contains("suppressed (code: the view reads")
    );
}

#[test]
fn a_comment_without_a_reason_does_not_suppress() {
    let m = "class Drop < ActiveRecord::Migration[7.1]\n  def change\n    remove_column :users, :email # slipway:compat-ignore rails-drop-column-in-use\n  end\nend\n";
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_drop.rb", Some(m))],
    );
    assert!(!report.passed(), "{report:#?}");
}

#[test]
fn a_config_ignore_suppresses_matching_rule_and_path_only() {
    let m = "class Drop < ActiveRecord::Migration[7.1]\n  def change\n    remove_column :users, :email\n    add_column :users, :age, :integer, null: false\n  end\nend\n";
    let options = Options {
        ignores: vec![Ignore {
            rule: "rails-drop-column-in-use".to_owned(),
            path: "db/migrate/".to_owned(),
            reason: "email is read from the cache only".to_owned(),
        }],
    };
    let report = compare_with(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_drop.rb", Some(m))],
        &options,
    );
    let dropped = of(&report, "rails-drop-column-in-use");
    assert_eq!(dropped[0].suppressed.as_ref().unwrap().source, "config");
    let not_null = of(&report, "rails-not-null-without-default");
    assert!(not_null[0].suppressed.is_none());
    assert!(!report.passed());
}
