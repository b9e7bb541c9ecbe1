//! Rails migration rules: drops, renames, NOT NULL, type changes and indexes.

use crate::support::{USER_MODEL, compare, of};

const VIEW: &str = "<p><%= @user.email %></p>\n";

fn migration(body: &str) -> String {
    format!("class Change < ActiveRecord::Migration[7.1]\n  def change\n{body}\n  end\nend\n")
}

#[test]
fn dropping_a_column_base_still_reads_is_unsafe_with_both_places() {
    let m = migration("    remove_column :users, :email, :string");
    let report = compare(
        &[
            ("app/models/user.rb", Some(USER_MODEL)),
            ("app/views/users/show.html.erb", Some(VIEW)),
        ],
        &[("db/migrate/20260101000000_drop_email.rb", Some(&m))],
    );
    let found = of(&report, "rails-drop-column-in-use");
    assert_eq!(found.len(), 1, "{report:#?}");
    let finding = found[0];
    assert_eq!(
        finding.base.as_ref().unwrap().to_string(),
        "app/views/users/show.html.erb:1"
    );
    assert_eq!(
        finding.head.as_ref().unwrap().to_string(),
        "db/migrate/20260101000000_drop_email.rb:3"
    );
    assert!(finding.recipe.contains("ignored_columns"));
    assert!(!report.passed());
}

#[test]
fn dropping_a_column_base_already_ignores_is_safe() {
    let model = "class User < ApplicationRecord\n  self.ignored_columns = %w[email]\nend\n";
    let m = migration("    remove_column :users, :email");
    let report = compare(
        &[
            ("app/models/user.rb", Some(model)),
            ("app/views/users/show.html.erb", Some(VIEW)),
        ],
        &[("db/migrate/20260101000000_drop_email.rb", Some(&m))],
    );
    assert!(
        of(&report, "rails-drop-column-in-use").is_empty(),
        "{report:#?}"
    );
    assert!(report.passed());
}

#[test]
fn ignoring_a_column_only_in_the_same_change_does_not_make_its_drop_safe() {
    let model = "class User < ApplicationRecord\n  self.ignored_columns = [\"email\"]\nend\n";
    let m = migration("    remove_column :users, :email");
    let report = compare(
        &[
            ("app/models/user.rb", Some(USER_MODEL)),
            ("app/views/users/show.html.erb", Some(VIEW)),
        ],
        &[
            ("app/models/user.rb", Some(model)),
            ("app/views/users/show.html.erb", Some("<p></p>\n")),
            ("db/other_migrate/20260101000000_drop_email.rb", Some(&m)),
        ],
    );
    assert_eq!(
        of(&report, "rails-drop-column-in-use").len(),
        1,
        "{report:#?}"
    );
}

#[test]
fn dropping_a_column_change_table_style_base_reads_is_unsafe() {
    let m = migration("    change_table :users do |t|\n      t.remove :email\n    end");
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_drop_email.rb", Some(&m))],
    );
    assert_eq!(
        of(&report, "rails-drop-column-in-use").len(),
        1,
        "{report:#?}"
    );
}

#[test]
fn dropping_a_table_base_still_uses_is_unsafe() {
    let m = migration("    drop_table :widgets");
    let controller = "class WidgetsController < ApplicationController\n  def index\n    @widgets = Widget.all\n  end\nend\n";
    let report = compare(
        &[("app/controllers/widgets_controller.rb", Some(controller))],
        &[("db/migrate/20260101000000_drop_widgets.rb", Some(&m))],
    );
    let found = of(&report, "rails-drop-table-in-use");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].base.as_ref().unwrap().line, 3);
}

#[test]
fn dropping_a_table_nothing_in_base_uses_is_safe() {
    let m = migration("    drop_table :widgets");
    let report = compare(
        &[("app/models/user.rb", Some(USER_MODEL))],
        &[("db/migrate/20260101000000_drop_widgets.rb", Some(&m))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn renaming_a_column_is_unsafe() {
    let m = migration("    rename_column :users, :email, :email_address");
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_rename.rb", Some(&m))],
    );
    let found = of(&report, "rails-rename-column");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert!(found[0].base.is_some());
}

#[test]
fn adding_a_column_under_a_new_name_instead_of_renaming_is_safe() {
    let m = migration("    add_column :users, :email_address, :string");
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_add.rb", Some(&m))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn renaming_a_table_is_unsafe() {
    let m = migration("    rename_table :users, :accounts");
    let report = compare(
        &[("app/models/user.rb", Some(USER_MODEL))],
        &[("db/migrate/20260101000000_rename.rb", Some(&m))],
    );
    assert_eq!(of(&report, "rails-rename-table").len(), 1, "{report:#?}");
}

#[test]
fn creating_a_new_table_is_safe() {
    let m = migration(
        "    create_table :accounts do |t|\n      t.string :name, null: false\n    end\n    add_index :accounts, :name",
    );
    let report = compare(
        &[("app/models/user.rb", Some(USER_MODEL))],
        &[("db/migrate/20260101000000_create.rb", Some(&m))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn adding_a_not_null_column_without_default_is_unsafe() {
    let m = migration("    add_column :users, :age, :integer, null: false");
    let report = compare(
        &[("app/models/user.rb", Some(USER_MODEL))],
        &[("db/migrate/20260101000000_age.rb", Some(&m))],
    );
    let found = of(&report, "rails-not-null-without-default");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].head.as_ref().unwrap().line, 3);
}

#[test]
fn adding_a_not_null_column_with_a_default_is_safe() {
    let m = migration("    add_column :users, :age, :integer, null: false, default: 0");
    let report = compare(
        &[("app/models/user.rb", Some(USER_MODEL))],
        &[("db/migrate/20260101000000_age.rb", Some(&m))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn changing_a_column_type_is_unsafe() {
    let m = migration("    change_column :users, :email, :text");
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_type.rb", Some(&m))],
    );
    assert_eq!(
        of(&report, "rails-change-column-type").len(),
        1,
        "{report:#?}"
    );
}

#[test]
fn changing_only_a_column_default_is_safe() {
    let m = migration("    change_column_default :users, :email, from: nil, to: \"\"");
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_default.rb", Some(&m))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn an_index_built_without_concurrently_is_a_warning() {
    let m = migration("    add_index :users, :email");
    let report = compare(
        &[("app/models/user.rb", Some(USER_MODEL))],
        &[("db/migrate/20260101000000_index.rb", Some(&m))],
    );
    assert_eq!(
        of(&report, "rails-index-not-concurrent").len(),
        1,
        "{report:#?}"
    );
    assert!(report.passed(), "a warning does not fail the check");
}

#[test]
fn an_index_built_concurrently_is_safe() {
    let m = "class Index < ActiveRecord::Migration[7.1]\n  disable_ddl_transaction!\n  def change\n    add_index :users, :email, algorithm: :concurrently\n  end\nend\n";
    let report = compare(
        &[("app/models/user.rb", Some(USER_MODEL))],
        &[("db/migrate/20260101000000_index.rb", Some(m))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn execute_in_a_rails_migration_is_read_as_sql() {
    let m = migration("    execute \"ALTER TABLE users DROP COLUMN email\"");
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_sql.rb", Some(&m))],
    );
    let found = of(&report, "sql-drop-column");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].head.as_ref().unwrap().line, 3);
}

#[test]
fn a_migration_already_in_base_is_not_checked_again() {
    let m = migration("    remove_column :users, :email");
    let report = compare(
        &[
            ("app/views/users/show.html.erb", Some(VIEW)),
            ("db/migrate/20260101000000_drop_email.rb", Some(&m)),
        ],
        &[("app/models/user.rb", Some(USER_MODEL))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn execute_with_a_heredoc_is_read_as_sql_with_its_lines() {
    let m = migration(
        "    execute <<~SQL\n      CREATE INDEX CONCURRENTLY users_name ON users (name);\n      ALTER TABLE users DROP COLUMN email;\n    SQL",
    );
    let report = compare(
        &[("app/views/users/show.html.erb", Some(VIEW))],
        &[("db/migrate/20260101000000_sql.rb", Some(&m))],
    );
    let found = of(&report, "sql-drop-column");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].head.as_ref().unwrap().line, 5);
    assert!(
        of(&report, "sql-index-not-concurrent").is_empty(),
        "{report:#?}"
    );
}
