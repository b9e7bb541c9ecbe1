//! Generic SQL migration rules, for services that are not Rails.

use crate::support::{compare, of};

const CODE: &str = "package store\n\nconst query = `SELECT id, email FROM users`\n";

#[test]
fn dropping_a_column_the_old_code_queries_is_unsafe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_drop.sql",
            Some("-- tidy\nALTER TABLE users DROP COLUMN email;\n"),
        )],
    );
    let found = of(&report, "sql-drop-column");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].base.as_ref().unwrap().to_string(),
        "internal/store/users.go:3"
    );
    assert_eq!(
        found[0].head.as_ref().unwrap().to_string(),
        "migrations/0002_drop.sql:2"
    );
}

#[test]
fn dropping_a_column_no_code_names_is_safe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_drop.sql",
            Some("ALTER TABLE users DROP COLUMN legacy_flag;\n"),
        )],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn dropping_a_table_the_old_code_queries_is_unsafe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[("migrations/0002_drop.sql", Some("DROP TABLE users;\n"))],
    );
    assert_eq!(of(&report, "sql-drop-table").len(), 1, "{report:#?}");
}

#[test]
fn dropping_a_table_no_code_names_is_safe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[("migrations/0002_drop.sql", Some("DROP TABLE old_audit;\n"))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn renaming_a_column_or_table_is_unsafe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_rename.sql",
            Some(
                "ALTER TABLE users RENAME COLUMN email TO mail;\nALTER TABLE users RENAME TO people;\n",
            ),
        )],
    );
    assert_eq!(of(&report, "sql-rename-column").len(), 1, "{report:#?}");
    let tables = of(&report, "sql-rename-table");
    assert_eq!(tables.len(), 1, "{report:#?}");
    assert_eq!(tables[0].head.as_ref().unwrap().line, 2);
}

#[test]
fn adding_a_nullable_column_is_safe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_add.sql",
            Some("ALTER TABLE users ADD COLUMN age integer;\n"),
        )],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn adding_a_not_null_column_without_default_is_unsafe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_add.sql",
            Some("ALTER TABLE users ADD COLUMN age integer NOT NULL;\n"),
        )],
    );
    assert_eq!(
        of(&report, "sql-not-null-without-default").len(),
        1,
        "{report:#?}"
    );
}

#[test]
fn adding_a_not_null_column_with_a_default_is_safe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_add.sql",
            Some("ALTER TABLE users ADD COLUMN age integer NOT NULL DEFAULT 0;\n"),
        )],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn changing_a_column_type_is_unsafe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_type.sql",
            Some("ALTER TABLE users ALTER COLUMN email TYPE text;\n"),
        )],
    );
    assert_eq!(
        of(&report, "sql-change-column-type").len(),
        1,
        "{report:#?}"
    );
}

#[test]
fn a_plain_index_on_an_existing_table_is_a_warning_and_a_concurrent_one_is_safe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_index.sql",
            Some("CREATE INDEX users_email ON users (email);\n"),
        )],
    );
    assert_eq!(
        of(&report, "sql-index-not-concurrent").len(),
        1,
        "{report:#?}"
    );
    assert!(report.passed());
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_index.sql",
            Some("CREATE INDEX CONCURRENTLY users_email ON users (email);\n"),
        )],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn sql_that_does_not_parse_is_reported_not_guessed() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_bad.sql",
            Some("ALTER TABLE users FROBNICATE;\n"),
        )],
    );
    assert_eq!(of(&report, "sql-unparsed").len(), 1, "{report:#?}");
}

#[test]
fn indexes_and_not_null_columns_of_a_table_created_in_the_range_are_safe() {
    let report = compare(
        &[("internal/store/users.go", Some(CODE))],
        &[(
            "migrations/0002_audit.sql",
            Some(
                "CREATE TABLE audit (id bigint PRIMARY KEY);\n\
                 ALTER TABLE audit ADD COLUMN actor text NOT NULL;\n\
                 CREATE INDEX audit_actor ON audit (actor);\n",
            ),
        )],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}
