//! The `Store`: one type over SQLite and PostgreSQL, using sqlx's `Any` driver and SQL that both
//! accept (`$N` parameters, `RETURNING`, partial indexes). The few differences (row locks,
//! connection settings) are chosen by `Backend`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slipway_core::audit::{ChainBreak, ChainVerifier, EventFields, Hash, chain_hash};
use slipway_core::decide::next_wake;
use slipway_core::deploy::{
    Decision, Deploy, DeployId, Effect, EffectKey, Event, Input, Outcome, Rejection,
};
use slipway_core::time::{Span, Time};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Row, Transaction};
use tokio::sync::Notify;

use crate::error::{StoreError, redact_url};

/// Longest wait for a connection: an unreachable database is reported, not waited on forever.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// For SQLite a single connection, so writers never contend for the file lock.
    pub(crate) write: AnyPool,
    /// Readers; on SQLite (WAL) they run beside the writer.
    pub(crate) read: AnyPool,
    backend: Backend,
    /// The SQLite file, read directly (without sqlx) where speed matters: audit verification.
    sqlite_path: Option<PathBuf>,
    /// Wakes the engine after an operator intent is written.
    wake: Arc<Notify>,
}

/// A deploy as stored, with the revision its next write must match.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDeploy {
    pub deploy: Deploy,
    pub revision: i64,
}

/// Proof that the writer holds the engine lease. Writes check it in their transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub name: String,
    pub holder: String,
    /// Raised each time the lease changes hands; a write carrying an older token is refused.
    pub token: i64,
}

/// What a write of a decision also settles.
#[derive(Clone, Copy, Debug)]
pub enum Consumed<'a> {
    Nothing,
    /// The effect whose report the decision applied.
    Effect {
        key: &'a EffectKey,
        outcome: &'a Outcome,
    },
    /// The operator intent the decision applied.
    Intent(i64),
}

/// An operator action waiting for the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    pub id: i64,
    pub deploy: DeployId,
    pub input: Input,
    pub created_at: Time,
}

/// What became of an intent.
#[derive(Clone, Debug, PartialEq)]
pub struct IntentStatus {
    pub consumed_at: Option<Time>,
    pub rejection: Option<Rejection>,
}

/// An event to append that belongs to no deploy decision (user added, artifact pushed…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub deploy: Option<DeployId>,
    pub kind: String,
    /// JSON.
    pub payload: String,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: Time,
    pub deploy: Option<DeployId>,
    pub kind: String,
    pub payload: String,
    /// Hex.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
}

/// The result of checking the whole event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// Events verified before the first break (all of them when intact).
    pub verified: u64,
    /// Hex hash of the last verified event.
    pub head: String,
    pub broken: Option<ChainBreak>,
}

/// Filters and page of a deploy listing, newest first.
#[derive(Clone, Debug, Default)]
pub struct DeployQuery {
    pub service: Option<String>,
    pub environment: Option<String>,
    /// Only deploys with a smaller id (the cursor of the next page).
    pub before: Option<DeployId>,
    pub limit: i64,
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain types always serialize")
}

impl Store {
    /// Opens (creating if needed) the database at `url` — `sqlite://PATH` or `postgres://…` —
    /// and applies the embedded migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let connect_error = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(connect_error)?
            .disable_statement_logging();
        // One direct connection first: a pool that cannot connect only says it timed out,
        // while this reports the cause (refused, unknown host, authentication failed).
        sqlx::AnyConnection::connect_with(&options)
            .await
            .map_err(connect_error)?
            .close()
            .await
            .map_err(connect_error)?;
        let (write, read) = match backend {
            Backend::Sqlite => {
                let pool = |max, readonly: bool| {
                    AnyPoolOptions::new()
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .max_connections(max)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                use sqlx::Executor;
                                // WAL: readers never block the writer; NORMAL sync is durable
                                // across process crashes (power loss may drop the last commits).
                                conn.execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                                )
                                .await?;
                                if readonly {
                                    conn.execute("PRAGMA query_only = ON;").await?;
                                }
                                Ok(())
                            })
                        })
                };
                let write = pool(1, false)
                    .connect_with(options.clone())
                    .await
                    .map_err(connect_error)?;
                sqlx::migrate!("./migrations/sqlite").run(&write).await?;
                let read = pool(4, true)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                (write, read)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .max_connections(8)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            write,
            read,
            backend,
            sqlite_path: (backend == Backend::Sqlite).then(|| sqlite_path(url)),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Opens the SQLite database file at `path`, creating it if needed.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        Store::open(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Notified whenever an intent is submitted through this handle.
    pub fn wake_handle(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes every connection; pending writes finish first.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// `FOR UPDATE`/`FOR SHARE` where the backend has row locks (SQLite has one writer).
    pub(crate) fn lock(&self, clause: &'static str) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => clause,
        }
    }

    async fn check_fence(
        &self,
        tx: &mut Transaction<'static, Any>,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let Some(fence) = fence else {
            return Ok(());
        };
        let sql = format!(
            "SELECT holder, token FROM leases WHERE name = $1{}",
            self.lock(" FOR SHARE")
        );
        let row = sqlx::query(&sql)
            .bind(&fence.name)
            .fetch_optional(&mut **tx)
            .await?;
        match row {
            Some(row)
                if row.try_get::<String, _>("holder")? == fence.holder
                    && row.try_get::<i64, _>("token")? == fence.token =>
            {
                Ok(())
            }
            _ => Err(StoreError::Fenced),
        }
    }

    /// Appends events to the chain inside `tx`.
    pub(crate) async fn append(
        &self,
        tx: &mut Transaction<'static, Any>,
        events: &[NewEvent],
        now: Time,
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT seq, hash FROM chain_head WHERE id = 1{}",
            self.lock(" FOR UPDATE")
        );
        let head = sqlx::query(&sql).fetch_one(&mut **tx).await?;
        let mut seq: i64 = head.try_get("seq")?;
        let mut prev: Hash = head
            .try_get::<Vec<u8>, _>("hash")?
            .try_into()
            .map_err(|_| StoreError::Corrupt("chain head hash is not 32 bytes".to_owned()))?;
        // Hash the whole batch first, then insert it with multi-row INSERTs: each statement is
        // a round trip to the database (on SQLite, to sqlx's worker thread), which costs far
        // more than hashing, so a batch of 1000 events takes 17 statements instead of 1000.
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let fields = EventFields {
                seq,
                at: now,
                deploy: event.deploy.map(|d| d.0),
                kind: &event.kind,
                payload: &event.payload,
            };
            let hash = chain_hash(&prev, &fields);
            rows.push((fields, prev, hash));
            prev = hash;
        }
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            // Full chunks, then the remainder in falling powers of two: at most
            // `INSERT_CHUNK.ilog2() + 1` distinct statements for the statement cache.
            let size = if rest.len() >= INSERT_CHUNK {
                INSERT_CHUNK
            } else {
                1 << rest.len().ilog2()
            };
            let (chunk, tail) = rest.split_at(size);
            let sql = insert_events_sql(size);
            let mut insert = sqlx::query(&sql);
            for (fields, prev, hash) in chunk {
                insert = insert
                    .bind(fields.seq)
                    .bind(fields.at.as_millis())
                    .bind(fields.deploy)
                    .bind(fields.kind)
                    .bind(fields.payload)
                    .bind(prev.to_vec())
                    .bind(hash.to_vec());
            }
            insert.execute(&mut **tx).await?;
            rest = tail;
        }
        sqlx::query("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(prev.to_vec())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn enqueue(
        &self,
        tx: &mut Transaction<'static, Any>,
        effects: &[Effect],
        now: Time,
    ) -> Result<(), StoreError> {
        for effect in effects {
            sqlx::query(
                "INSERT INTO outbox (key, deploy_id, effect, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(effect.key.to_string())
            .bind(effect.key.deploy.0)
            .bind(json(effect))
            .bind(now.as_millis())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    fn deploy_events(deploy: DeployId, events: &[Event]) -> Vec<NewEvent> {
        events
            .iter()
            .map(|event| NewEvent {
                deploy: Some(deploy),
                kind: event.kind().to_owned(),
                payload: json(event),
            })
            .collect()
    }

    /// Creates a deploy in one transaction: allocates its id, calls `make(id)` for the
    /// decision that starts it, and stores state, events and effects. With an `origin` (the key
    /// of the effect asking for it), creating twice returns the first deploy: `(id, false)`.
    pub async fn create_deploy(
        &self,
        fence: Option<&Fence>,
        origin: Option<&str>,
        now: Time,
        make: impl FnOnce(DeployId) -> Decision,
    ) -> Result<(DeployId, bool), StoreError> {
        let mut tx = self.write.begin().await?;
        self.check_fence(&mut tx, fence).await?;
        // The counter's row lock first: two requests with the same origin then run one after
        // the other, and the second finds the first's deploy instead of violating the UNIQUE
        // origin (PostgreSQL). A rolled-back transaction gives its number back.
        let id: i64 = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'deploy' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get("value")?;
        if let Some(origin) = origin {
            let existing = sqlx::query("SELECT id FROM deploys WHERE origin = $1")
                .bind(origin)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                return Ok((DeployId(row.try_get("id")?), false));
            }
        }
        let id = DeployId(id);
        let decision = make(id);
        let deploy = &decision.deploy;
        sqlx::query(
            "INSERT INTO deploys (id, service, environment, origin, state, revision, finished_at, \
             result, wake_at, created_at, updated_at, release_label) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $9, $10)",
        )
        .bind(id.0)
        .bind(&deploy.spec.service)
        .bind(&deploy.spec.environment)
        .bind(origin)
        .bind(json(deploy))
        .bind(deploy.progress.ending.as_ref().map(|e| e.at.as_millis()))
        .bind(deploy.progress.ending.as_ref().map(|e| e.result.name()))
        .bind(next_wake(deploy).map(Time::as_millis))
        .bind(now.as_millis())
        .bind(&deploy.spec.release.label)
        .execute(&mut *tx)
        .await?;
        self.append(&mut tx, &Self::deploy_events(id, &decision.events), now)
            .await?;
        self.enqueue(&mut tx, &decision.effects, now).await?;
        tx.commit().await?;
        Ok((id, true))
    }

    /// Stores a decision about `stored`: the new state (only if nobody wrote it since it was
    /// read), its events and effects, and settles what it consumed — all in one transaction.
    pub async fn apply(
        &self,
        fence: Option<&Fence>,
        stored: &StoredDeploy,
        decision: &Decision,
        consumed: Consumed<'_>,
        now: Time,
    ) -> Result<StoredDeploy, StoreError> {
        let id = stored.deploy.spec.id;
        let mut tx = self.write.begin().await?;
        self.check_fence(&mut tx, fence).await?;
        let deploy = &decision.deploy;
        let changed = deploy != &stored.deploy;
        let revision = if changed {
            stored.revision + 1
        } else {
            stored.revision
        };
        if changed {
            let result = sqlx::query(
                "UPDATE deploys SET state = $1, revision = $2, finished_at = $3, result = $4, \
                 wake_at = $5, updated_at = $6 WHERE id = $7 AND revision = $8",
            )
            .bind(json(deploy))
            .bind(revision)
            .bind(deploy.progress.ending.as_ref().map(|e| e.at.as_millis()))
            .bind(deploy.progress.ending.as_ref().map(|e| e.result.name()))
            .bind(next_wake(deploy).map(Time::as_millis))
            .bind(now.as_millis())
            .bind(id.0)
            .bind(stored.revision)
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() != 1 {
                return Err(StoreError::Conflict(id));
            }
        }
        self.append(&mut tx, &Self::deploy_events(id, &decision.events), now)
            .await?;
        self.enqueue(&mut tx, &decision.effects, now).await?;
        match consumed {
            Consumed::Nothing => {}
            Consumed::Effect { key, outcome } => {
                sqlx::query(
                    "UPDATE outbox SET done_at = $1, outcome = $2 WHERE key = $3 AND done_at IS NULL",
                )
                .bind(now.as_millis())
                .bind(json(outcome))
                .bind(key.to_string())
                .execute(&mut *tx)
                .await?;
            }
            Consumed::Intent(intent) => {
                sqlx::query("UPDATE intents SET consumed_at = $1 WHERE id = $2")
                    .bind(now.as_millis())
                    .bind(intent)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(StoredDeploy {
            deploy: decision.deploy.clone(),
            revision,
        })
    }

    pub(crate) fn decode_deploy(row: &sqlx::any::AnyRow) -> Result<StoredDeploy, StoreError> {
        let state: String = row.try_get("state")?;
        Ok(StoredDeploy {
            deploy: serde_json::from_str(&state)?,
            revision: row.try_get("revision")?,
        })
    }

    pub async fn deploy(&self, id: DeployId) -> Result<Option<StoredDeploy>, StoreError> {
        let row = sqlx::query("SELECT state, revision FROM deploys WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::decode_deploy).transpose()
    }

    /// Every deploy that has not finished, oldest first.
    pub async fn unfinished_deploys(&self) -> Result<Vec<StoredDeploy>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, revision FROM deploys WHERE finished_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(Self::decode_deploy).collect()
    }

    /// Deploys newest first, filtered and paged by `query`.
    pub async fn list_deploys(&self, query: &DeployQuery) -> Result<Vec<StoredDeploy>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, revision FROM deploys \
             WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR environment = $2) \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(query.service.as_deref())
        .bind(query.environment.as_deref())
        .bind(query.before.map(|d| d.0))
        .bind(query.limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(Self::decode_deploy).collect()
    }

    /// Effects stored but not yet reported, in the order they were stored.
    pub async fn pending_effects(&self, limit: i64) -> Result<Vec<Effect>, StoreError> {
        let rows =
            sqlx::query("SELECT effect FROM outbox WHERE done_at IS NULL ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(&self.write)
                .await?;
        rows.iter()
            .map(|row| Ok(serde_json::from_str(&row.try_get::<String, _>("effect")?)?))
            .collect()
    }

    /// Marks an effect done without a decision (its deploy no longer exists or has finished).
    pub async fn settle_effect(
        &self,
        key: &EffectKey,
        outcome: &Outcome,
        now: Time,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET done_at = $1, outcome = $2 WHERE key = $3 AND done_at IS NULL",
        )
        .bind(now.as_millis())
        .bind(json(outcome))
        .bind(key.to_string())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records an operator action for the engine and wakes it.
    pub async fn submit_intent(
        &self,
        deploy: DeployId,
        input: &Input,
        now: Time,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query(
            "INSERT INTO intents (deploy_id, input, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(deploy.0)
        .bind(json(input))
        .bind(now.as_millis())
        .fetch_one(&self.write)
        .await?
        .try_get("id")?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Intents not yet consumed, oldest first.
    pub async fn pending_intents(&self, limit: i64) -> Result<Vec<Intent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, deploy_id, input, created_at FROM intents WHERE consumed_at IS NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Intent {
                    id: row.try_get("id")?,
                    deploy: DeployId(row.try_get("deploy_id")?),
                    input: serde_json::from_str(&row.try_get::<String, _>("input")?)?,
                    created_at: Time(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Marks an intent consumed with the reason it was refused.
    pub async fn reject_intent(
        &self,
        fence: Option<&Fence>,
        intent: i64,
        rejection: &Rejection,
        now: Time,
    ) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        self.check_fence(&mut tx, fence).await?;
        sqlx::query("UPDATE intents SET consumed_at = $1, rejection = $2 WHERE id = $3")
            .bind(now.as_millis())
            .bind(json(rejection))
            .bind(intent)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn intent_status(&self, intent: i64) -> Result<Option<IntentStatus>, StoreError> {
        // The read pool: callers poll this while the engine writes.
        let row = sqlx::query("SELECT consumed_at, rejection FROM intents WHERE id = $1")
            .bind(intent)
            .fetch_optional(&self.read)
            .await?;
        row.map(|row| {
            let rejection: Option<String> = row.try_get("rejection")?;
            Ok(IntentStatus {
                consumed_at: row.try_get::<Option<i64>, _>("consumed_at")?.map(Time),
                rejection: rejection.map(|r| serde_json::from_str(&r)).transpose()?,
            })
        })
        .transpose()
    }

    /// Appends events that no deploy decision produced, in one transaction.
    pub async fn append_events(&self, events: &[NewEvent], now: Time) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        self.append(&mut tx, events, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events after `after_seq`, of one deploy or of all, oldest first.
    /// Every event of `deploy`, oldest first, read `page` at a time (a deploy's charts and its
    /// failing check need all of them, not the first page).
    pub async fn all_deploy_events(
        &self,
        deploy: DeployId,
        page: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events: Vec<StoredEvent> = Vec::new();
        loop {
            let after = events.last().map_or(0, |e| e.seq);
            let next = self.events(Some(deploy), after, page).await?;
            let full = next.len() as i64 == page;
            events.extend(next);
            if !full {
                return Ok(events);
            }
        }
    }

    pub async fn events(
        &self,
        deploy: Option<DeployId>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, deploy_id, kind, payload, prev_hash, hash FROM events \
             WHERE ($1 IS NULL OR deploy_id = $1) AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(deploy.map(|d| d.0))
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEvent {
                    seq: row.try_get("seq")?,
                    at: Time(row.try_get("at")?),
                    deploy: row.try_get::<Option<i64>, _>("deploy_id")?.map(DeployId),
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    prev_hash: hex(&row.try_get::<Vec<u8>, _>("prev_hash")?),
                    hash: hex(&row.try_get::<Vec<u8>, _>("hash")?),
                })
            })
            .collect()
    }

    /// The sequence number of the newest event, 0 for an empty log (the chain head's): where a
    /// reader of the latest events starts from.
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT seq FROM chain_head WHERE id = 1")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Checks the whole event log against its hash chain and its recorded head, streaming it in
    /// pages. Names the first bad event.
    ///
    /// Every page and the head are read in one read-only transaction, so they come from one
    /// snapshot: events appended while the log is being verified are neither half seen nor
    /// mistaken for a truncated log.
    pub async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        if let Some(path) = self.sqlite_path.clone() {
            // sqlx hands every row from its SQLite thread to the async side and copies each value
            // twice; reading the file on a blocking thread with borrowed values is ~8x faster.
            return tokio::task::spawn_blocking(move || verify_sqlite_file(&path))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
        }
        const PAGE: i64 = 20_000;
        let mut tx = self.read.begin().await?;
        if self.backend == Backend::Postgres {
            // Read committed (the default) takes a new snapshot per statement.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        // On SQLite (WAL) the snapshot starts with the transaction's first read.
        let head = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let head_seq: i64 = head.try_get(0)?;
        let head_hash: Vec<u8> = head.try_get(1)?;
        let mut verifier = ChainVerifier::default();
        let mut after = 0i64;
        let mut verified = 0u64;
        let report = |verifier: &ChainVerifier, verified, broken| ChainReport {
            verified,
            head: hex(&verifier.last_hash()),
            broken,
        };
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, deploy_id, kind, payload, prev_hash, hash FROM events \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                // By position, in the order of the SELECT: no lookup by name per column and row.
                let seq: i64 = row.try_get(0)?;
                let fields = EventFields {
                    seq,
                    at: Time(row.try_get(1)?),
                    deploy: row.try_get(2)?,
                    kind: row.try_get(3)?,
                    payload: row.try_get(4)?,
                };
                let prev: &[u8] = row.try_get(5)?;
                let hash: &[u8] = row.try_get(6)?;
                if let Err(broken) = verifier.check(&fields, prev, hash) {
                    return Ok(report(&verifier, verified, Some(broken)));
                }
                verified += 1;
                after = seq;
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        tx.rollback().await?;
        let broken = verifier.check_head(head_seq, &head_hash).err();
        Ok(report(&verifier, verified, broken))
    }

    /// Takes the lease `name` for `holder` if it is free, expired or already theirs. Taking it
    /// from someone else raises the fencing token. `None` when another holder has it.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Span,
        now: Time,
    ) -> Result<Option<Fence>, StoreError> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "SELECT holder, token, expires_at FROM leases WHERE name = $1{}",
            self.lock(" FOR UPDATE")
        );
        let current = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let expires = now.after(ttl).as_millis();
        let token = match current {
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(holder)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Ok(None);
                }
                1
            }
            Some(row) => {
                let current_holder: String = row.try_get("holder")?;
                let token: i64 = row.try_get("token")?;
                let expires_at: i64 = row.try_get("expires_at")?;
                let token = if current_holder == holder {
                    token
                } else if expires_at <= now.as_millis() {
                    token + 1
                } else {
                    return Ok(None);
                };
                sqlx::query(
                    "UPDATE leases SET holder = $1, token = $2, expires_at = $3 WHERE name = $4",
                )
                .bind(holder)
                .bind(token)
                .bind(expires)
                .bind(name)
                .execute(&mut *tx)
                .await?;
                token
            }
        };
        tx.commit().await?;
        Ok(Some(Fence {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token,
        }))
    }

    /// Extends a held lease. False when it was lost (taken over after expiring).
    pub async fn renew_lease(
        &self,
        fence: &Fence,
        ttl: Span,
        now: Time,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND token = $4",
        )
        .bind(now.after(ttl).as_millis())
        .bind(&fence.name)
        .bind(&fence.holder)
        .bind(fence.token)
        .execute(&self.write)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Gives a lease up so another engine can take it at once.
    pub async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(&fence.name)
        .bind(&fence.holder)
        .bind(fence.token)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

/// Most events one INSERT statement carries: 7 parameters each, far below SQLite's (32,766) and
/// PostgreSQL's (65,535) limits on parameters per statement.
const INSERT_CHUNK: usize = 64;

/// `INSERT INTO events … VALUES (…), (…), …` for `rows` events, numbered `$1…$7·rows`.
fn insert_events_sql(rows: usize) -> String {
    use std::fmt::Write;
    let mut sql = String::from(
        "INSERT INTO events (seq, at, deploy_id, kind, payload, prev_hash, hash) VALUES ",
    );
    for row in 0..rows {
        let p = row * 7;
        let separator = if row == 0 { "" } else { ", " };
        let _ = write!(
            sql,
            "{separator}(${}, ${}, ${}, ${}, ${}, ${}, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7
        );
    }
    sql
}

/// The file a `sqlite:` URL names.
fn sqlite_path(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// Verifies the chain of a SQLite file in one read-only transaction (one snapshot: events
/// appended meanwhile are neither seen nor counted against the head).
fn verify_sqlite_file(path: &Path) -> Result<ChainReport, StoreError> {
    use rusqlite::OpenFlags;
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let snapshot = connection.unchecked_transaction()?;
    let (head_seq, head_hash): (i64, Vec<u8>) =
        snapshot.query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let mut statement = snapshot.prepare(
        "SELECT seq, at, deploy_id, kind, payload, prev_hash, hash FROM events ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    let mut verifier = ChainVerifier::default();
    let mut verified = 0u64;
    let mut broken = None;
    while let Some(row) = rows.next()? {
        let text = |i| row.get_ref(i)?.as_str().map_err(rusqlite::Error::from);
        let blob = |i| row.get_ref(i)?.as_blob().map_err(rusqlite::Error::from);
        let fields = EventFields {
            seq: row.get(0)?,
            at: Time(row.get(1)?),
            deploy: row.get(2)?,
            kind: text(3)?,
            payload: text(4)?,
        };
        if let Err(failure) = verifier.check(&fields, blob(5)?, blob(6)?) {
            broken = Some(failure);
            break;
        }
        verified += 1;
    }
    if broken.is_none() {
        broken = verifier.check_head(head_seq, &head_hash).err();
    }
    Ok(ChainReport {
        verified,
        head: hex(&verifier.last_hash()),
        broken,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
