//! The report as people read it: every finding with its state, rule, both places, why and
//! recipe, suppressed ones included with their reason.

use crate::support::compare;

#[test]
fn the_text_report_lists_each_finding_with_both_places_why_and_recipe() {
    let migration = "class Change < ActiveRecord::Migration[7.1]\n  def change\n    remove_column :users, :email\n    # slipway:compat-ignore rails-index-not-concurrent the table has 40 rows\n    add_index :users, :name\n  end\nend\n";
    let report = compare(
        &[(
            "app/views/users/show.html.erb",
            Some("<p><%= @user.email %></p>\n"),
        )],
        &[("db/migrate/20260101000000_change.rb", Some(migration))],
    );
    insta::assert_snapshot!(report.to_text());
}
