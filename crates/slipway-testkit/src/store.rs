//! Temporary stores for tests: a fresh SQLite file and a fresh PostgreSQL database, so one test
//! body can run against every backend the store supports.
//!
//! [`each_backend`] gives one [`TestStore`] per backend: SQLite in a temporary directory, and a
//! new database in the process-wide PostgreSQL cluster of [`crate::postgres::shared`]. Where
//! PostgreSQL is not installed (and `CI` is not `true`) only SQLite is returned and a line on
//! stderr says PostgreSQL was skipped; under `CI=true` a missing PostgreSQL panics instead, so CI
//! never skips silently. [`on_each_backend`] runs an async test body against each in turn.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use slipway_store::{Backend, Store};
use tempfile::TempDir;

/// Gives every PostgreSQL database of this process a distinct name, even when two tests share
/// a name prefix or one test asks for several stores.
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// A store on a throwaway database, with the URL to open it again (or to reach it with a raw
/// connection). Call [`close`](TestStore::close) at the end of the test: it closes the pools and
/// removes the SQLite directory.
#[derive(Debug)]
pub struct TestStore {
    pub store: Store,
    /// The URL the store was opened with; a second `Store::open` on it sees the same data.
    pub url: String,
    /// Holds the SQLite file; `None` for PostgreSQL, whose cluster cleans up after itself.
    dir: Option<TempDir>,
}

impl TestStore {
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// `sqlite` or `postgres`, for messages.
    pub fn name(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The directory holding the SQLite file (`None` on PostgreSQL).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    /// Opens a second, independent `Store` on the same database.
    pub async fn reopen(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|error| panic!("reopening the {} store: {error}", self.name()))
    }

    /// Closes every connection of the store, then removes its temporary directory, if any.
    pub async fn close(self) {
        self.store.close().await;
        if let Some(dir) = self.dir {
            dir.close()
                .expect("the temporary SQLite directory can be removed");
        }
    }
}

/// A fresh SQLite store in its own temporary directory.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::Builder::new()
        .prefix("slipway-store-")
        .tempdir()
        .expect("a temporary directory for SQLite");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("slipway.db").display()
    );
    let store = Store::open(&url).await.expect("the SQLite store opens");
    TestStore {
        store,
        url,
        dir: Some(dir),
    }
}

/// A fresh PostgreSQL database named after `test` in the shared cluster, or `None` where
/// PostgreSQL is not installed and `CI` is not `true`.
///
/// Panics when the cluster cannot start, including under `CI=true` without PostgreSQL.
pub async fn postgres(test: &str) -> Option<TestStore> {
    let name = database_name(test);
    // Starting the cluster and `psql` block; keep them off the test's runtime.
    let url = tokio::task::spawn_blocking(move || {
        let postgres = crate::postgres::shared().expect("the PostgreSQL test cluster starts")?;
        Some(
            postgres
                .create_database(&name)
                .expect("a fresh PostgreSQL database"),
        )
    })
    .await
    .expect("creating the database does not panic")?;
    let store = Store::open(&url).await.expect("the PostgreSQL store opens");
    Some(TestStore {
        store,
        url,
        dir: None,
    })
}

/// One fresh store per backend: SQLite first, then PostgreSQL unless it is not installed (and
/// `CI` is not `true`). `test` names the PostgreSQL database.
pub async fn each_backend(test: &str) -> Vec<TestStore> {
    let mut stores = vec![sqlite().await];
    match postgres(test).await {
        Some(store) => stores.push(store),
        None => eprintln!(
            "{test}: PostgreSQL skipped, it is not installed (scripts/test-deps installs it)"
        ),
    }
    stores
}

/// Runs `body` against a fresh store of each backend in turn and closes each afterwards.
/// A line on stderr names the backend, so a failing assertion shows where it failed.
pub async fn on_each_backend(test: &str, body: impl AsyncFn(&TestStore)) {
    for store in each_backend(test).await {
        eprintln!("{test}: on {}", store.name());
        body(&store).await;
        store.close().await;
    }
}

/// `test` reduced to `[a-z0-9_]`, shortened, and made unique in this process.
fn database_name(test: &str) -> String {
    let serial = DATABASES.fetch_add(1, Ordering::Relaxed);
    let mut name: String = test
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "t_");
    }
    format!("{name}_{serial}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_valid_and_unique() {
        let first = super::database_name("Store::It/a-very-long-test-name-that-goes-on-and-on-x");
        let second = super::database_name("Store::It/a-very-long-test-name-that-goes-on-and-on-x");
        assert_ne!(first, second);
        for name in [first, second, super::database_name("")] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }
}
