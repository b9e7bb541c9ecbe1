//! The PostgreSQL harness against the machine's real PostgreSQL binaries.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;

use slipway_testkit::postgres::{self, Postgres, PostgresError};

/// Runs `sql` through `psql` from the cluster's own binaries, connecting with `url` exactly as a
/// test's client would, and returns what it printed.
fn query(postgres: &Postgres, url: &str, sql: &str) -> String {
    let mut psql = Command::new(postgres.bin_dir().join("psql"));
    psql.args([
        "-X",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            psql.env_remove(name);
        }
    }
    let output = psql.output().expect("psql runs");
    assert!(
        output.status.success(),
        "psql {url} -c {sql:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("psql prints UTF-8")
        .trim()
        .to_owned()
}

#[test]
fn postgres_harness_starts_a_cluster_and_creates_databases() {
    let Some(postgres) = Postgres::start().expect("the cluster starts") else {
        eprintln!("skipped: PostgreSQL is not installed (scripts/test-deps installs it)");
        return;
    };
    let port = postgres.port();
    let data_dir = postgres.data_dir();
    assert!(data_dir.join("PG_VERSION").is_file());

    let first = postgres.create_database("first").expect("creates first");
    let second = postgres.create_database("second").expect("creates second");
    assert_eq!(first, format!("postgres://postgres@127.0.0.1:{port}/first"));
    assert_eq!(second, postgres.url("second"));

    assert_eq!(
        query(&postgres, &first, "select current_database()"),
        "first"
    );
    assert_eq!(
        query(&postgres, &second, "select current_database()"),
        "second"
    );
    // Separate databases: a table made in one is not in the other.
    query(&postgres, &first, "create table only_in_first (id int)");
    assert_eq!(
        query(
            &postgres,
            &second,
            "select count(*) from pg_tables where tablename = 'only_in_first'"
        ),
        "0"
    );
    // A name already taken is an error, never a database two tests share by accident.
    let duplicate = postgres.create_database("first");
    assert!(matches!(
        duplicate,
        Err(PostgresError::CommandFailed { .. })
    ));

    drop(postgres);
    assert!(
        !data_dir.exists(),
        "{} is removed on drop",
        data_dir.display()
    );
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free after drop");
}

#[test]
fn shared_cluster_serves_several_threads() {
    let threads: Vec<_> = ["shared_a", "shared_b"]
        .into_iter()
        .map(|name| {
            std::thread::spawn(move || {
                let postgres = postgres::shared().expect("the shared cluster starts")?;
                let url = postgres
                    .create_database(name)
                    .expect("creates the database");
                assert_eq!(query(postgres, &url, "select 1"), "1");
                Some(postgres)
            })
        })
        .collect();
    let clusters: Vec<_> = threads
        .into_iter()
        .map(|thread| thread.join().expect("thread succeeds"))
        .collect();
    let [Some(a), Some(b)] = clusters[..] else {
        eprintln!("skipped: PostgreSQL is not installed (scripts/test-deps installs it)");
        return;
    };
    assert!(std::ptr::eq(a, b), "both threads get the same cluster");
}

#[test]
fn create_database_rejects_names_that_would_need_quoting() {
    let Some(postgres) = postgres::shared().expect("the shared cluster starts") else {
        eprintln!("skipped: PostgreSQL is not installed (scripts/test-deps installs it)");
        return;
    };
    for name in [
        "",
        "Upper",
        "with-dash",
        "semi;colon",
        "quote\"",
        &"x".repeat(64),
    ] {
        assert!(
            matches!(
                postgres.create_database(name),
                Err(PostgresError::InvalidDatabaseName { .. })
            ),
            "{name:?} is rejected"
        );
    }
}
