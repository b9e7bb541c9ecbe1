//! The store's error type.

use slipway_core::deploy::DeployId;

/// Everything that can go wrong talking to the database, and the requests it refuses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached. The URL has its password removed.
    #[error("cannot open the database at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// Applying the embedded schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed (connection lost, constraint, disk full…).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the SQLite file directly (audit verification) failed.
    #[error("cannot read the SQLite database: {0}")]
    SqliteRead(#[from] rusqlite::Error),
    /// A blocking task of the store could not finish (the runtime is shutting down).
    #[error("a background task of the store failed: {0}")]
    Task(String),
    /// Another engine took the lease: this one must stop acting. Nothing was written.
    #[error("this engine no longer holds the lease; another server took over")]
    Fenced,
    /// The deploy changed since it was read. Nothing was written; read it again.
    #[error("deploy {0} changed concurrently")]
    Conflict(DeployId),
    /// Stored data could not be decoded: a bug, manual edits, or a newer schema.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// Creating something whose name is taken (a second user called `alice`). Nothing was
    /// written.
    #[error("{what} `{name}` already exists")]
    AlreadyExists { what: &'static str, name: String },
    /// Something the request names does not exist (an unknown user, an artifact never pushed).
    /// `name` says which, as a person would write it (`idp 1.4.0` for an artifact).
    #[error("{what} `{name}` does not exist")]
    NotFound { what: &'static str, name: String },
    /// The version of the service was already pushed with other content. Versions are
    /// immutable: what was deployed as `1.4.0` stays `1.4.0`. `digest` is the stored one.
    #[error(
        "version `{version}` of `{service}` is already stored with another artifact ({digest})"
    )]
    VersionTaken {
        service: String,
        version: String,
        digest: String,
    },
    /// The request cannot be carried out as asked (a patch release with nothing to patch).
    /// `hint` tells the person what to do instead; it is not part of the message.
    #[error("{message}")]
    Invalid { message: String, hint: String },
}

impl StoreError {
    /// Whether the database could not be reached (rather than refusing or failing a query):
    /// worth a 503 and a retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Database(error) => matches!(
                error,
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            ),
            _ => false,
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}

/// The URL with any password replaced by `***`, safe for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        assert_eq!(
            super::redact_url("postgres://slip:s3cret@db:5432/slipway"),
            "postgres://slip:***@db:5432/slipway"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
