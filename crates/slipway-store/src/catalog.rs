//! The catalog: who may use slipway (users and the hashes of their API tokens), what was pushed
//! (artifacts, one immutable digest per service version) and what may be deployed (releases,
//! numbered `RC N` / `RC N.M` per service). Every change appends its audit event in the
//! transaction that makes it; a change that changes nothing appends nothing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slipway_core::deploy::{DeployId, DeployResult, Role};
use slipway_core::plan::ReleaseKind;
use slipway_core::time::Time;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::error::StoreError;
use crate::store::{NewEvent, Store, StoredDeploy};

/// A person (or robot) allowed to use slipway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created_at: Time,
}

/// An API token as listed: the token itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: i64,
    /// The user the token acts as.
    pub user: String,
    /// What the owner called it ("laptop", "ci").
    pub label: Option<String>,
    pub created_at: Time,
    /// Set once revoked; a revoked token authenticates no one.
    pub revoked_at: Option<Time>,
}

/// A pushed build of a service: the version names it, the digest is its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// Assigned by the store; pass 0 for a new artifact.
    pub id: i64,
    pub service: String,
    pub version: String,
    /// `sha256:<64 lowercase hex>`, the address of the file in the artifact cache.
    pub digest: String,
    /// Bytes.
    pub size: i64,
    /// The source commit it was built from, when the pusher said.
    pub commit: Option<String>,
    pub pushed_by: String,
    pub pushed_at: Time,
}

/// What [`Store::record_artifact`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArtifactPut {
    /// A new artifact, now stored (with its id).
    Stored(ArtifactRecord),
    /// This service version was already stored with the same digest: nothing was written.
    /// Carries the stored record, with its original pusher and time.
    AlreadyStored(ArtifactRecord),
}

/// A release to create: which pushed version, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRelease {
    pub service: String,
    /// A version of `service` already pushed.
    pub version: String,
    pub kind: ReleaseKind,
    pub created_by: String,
    pub reason: Option<String>,
    /// Who wrote the release's commits (approvals may have to come from someone else).
    pub authors: Vec<String>,
    /// For a `config` release: the label of the release whose artifact it runs with new config
    /// (the one running). It is numbered as the next minor of that release (`RC 4` → `RC 4.1`),
    /// so releases already numbered after it can still be promoted past it. A `patch` names
    /// the release it patches (what production runs) the same way.
    pub reconfigures: Option<String>,
}

/// A numbered release of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub id: i64,
    pub service: String,
    /// `RC {major}`, or `RC {major}.{minor}` for a patch; unique per service, and the name of
    /// its fleets.
    pub label: String,
    pub major: i64,
    pub minor: i64,
    pub kind: ReleaseKind,
    pub version: String,
    /// Digest of the artifact of `version`, copied when the release was created.
    pub artifact: String,
    /// Source commit of the artifact, if it was given.
    pub commit: Option<String>,
    pub created_by: String,
    pub created_at: Time,
    pub reason: Option<String>,
    /// Who wrote the release's commits.
    pub authors: Vec<String>,
}

/// One page of a listing, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Only ids smaller than this: the last id of the previous page.
    pub before: Option<i64>,
    /// At most this many, clamped to 1..=1000.
    pub limit: i64,
}

impl Page {
    fn clamped_limit(&self) -> i64 {
        self.limit.clamp(1, 1000)
    }
}

const USER_COLUMNS: &str = "name, role, created_at";
const TOKEN_COLUMNS: &str = "id, user_name, label, created_at, revoked_at";
const ARTIFACT_COLUMNS: &str =
    "id, service, version, digest, size, source_commit, pushed_by, pushed_at";
pub(crate) const RELEASE_COLUMNS: &str = "id, service, label, major, minor, kind, version, artifact, \
                               source_commit, created_by, created_at, reason, authors";

/// The serde name of a unit variant (`off-cycle`): how roles and kinds are stored, so the
/// database reads the same as the API.
pub(crate) fn variant_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        other => unreachable!("a unit variant serializes to a string, not {other:?}"),
    }
}

pub(crate) fn parse_variant<T: DeserializeOwned>(name: String) -> Result<T, StoreError> {
    Ok(serde_json::from_value(Value::String(name))?)
}

/// An audit event of the catalog: no deploy, the facts and who acted as JSON.
pub(crate) fn event(kind: &str, payload: Value) -> NewEvent {
    NewEvent {
        deploy: None,
        kind: kind.to_owned(),
        payload: payload.to_string(),
    }
}

fn decode_user(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        name: row.try_get("name")?,
        role: parse_variant(row.try_get("role")?)?,
        created_at: Time(row.try_get("created_at")?),
    })
}

fn decode_token(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        label: row.try_get("label")?,
        created_at: Time(row.try_get("created_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(Time),
    })
}

fn decode_artifact(row: &AnyRow) -> Result<ArtifactRecord, StoreError> {
    Ok(ArtifactRecord {
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        size: row.try_get("size")?,
        commit: row.try_get("source_commit")?,
        pushed_by: row.try_get("pushed_by")?,
        pushed_at: Time(row.try_get("pushed_at")?),
    })
}

pub(crate) fn decode_release(row: &AnyRow) -> Result<ReleaseRecord, StoreError> {
    Ok(ReleaseRecord {
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        label: row.try_get("label")?,
        major: row.try_get("major")?,
        minor: row.try_get("minor")?,
        kind: parse_variant(row.try_get("kind")?)?,
        version: row.try_get("version")?,
        artifact: row.try_get("artifact")?,
        commit: row.try_get("source_commit")?,
        created_by: row.try_get("created_by")?,
        created_at: Time(row.try_get("created_at")?),
        reason: row.try_get("reason")?,
        authors: match row.try_get::<Option<String>, _>("authors")? {
            Some(json) => serde_json::from_str(&json)?,
            None => Vec::new(),
        },
    })
}

/// Refuses what is not a content address of the artifact cache: a malformed digest would name
/// no file, or two spellings of one.
fn check_artifact(record: &ArtifactRecord) -> Result<(), StoreError> {
    let hex = record.digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(StoreError::Invalid {
            message: format!("`{}` is not a SHA-256 digest", record.digest),
            hint: "write it as sha256: followed by 64 lowercase hex digits".to_owned(),
        });
    }
    if record.size < 0 {
        return Err(StoreError::Invalid {
            message: format!("artifact size {} is negative", record.size),
            hint: "give the size of the file in bytes".to_owned(),
        });
    }
    Ok(())
}

/// `RC 3`, or `RC 3.1` for the first patch of it.
fn release_label(major: i64, minor: i64) -> String {
    if minor == 0 {
        format!("RC {major}")
    } else {
        format!("RC {major}.{minor}")
    }
}

impl Store {
    /// Adds a user. Refused with `AlreadyExists` when the name is taken.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        by: &str,
        now: Time,
    ) -> Result<User, StoreError> {
        let mut tx = self.write.begin().await?;
        let user = self.insert_user(&mut tx, name, role, by, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Inserts a user and its audit event inside `tx`.
    async fn insert_user(
        &self,
        tx: &mut Transaction<'static, Any>,
        name: &str,
        role: Role,
        by: &str,
        now: Time,
    ) -> Result<User, StoreError> {
        // DO NOTHING rather than a unique violation: two concurrent adds on PostgreSQL give one
        // user and one `AlreadyExists`, not a database error.
        let inserted = sqlx::query(
            "INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(variant_name(&role))
        .bind(now.as_millis())
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists {
                what: "user",
                name: name.to_owned(),
            });
        }
        let added = event(
            "user_added",
            json!({ "user": name, "role": role, "by": by }),
        );
        self.append(tx, &[added], now).await?;
        Ok(User {
            name: name.to_owned(),
            role,
            created_at: now,
        })
    }

    /// On a database without users: adds `name` as an admin with the token whose SHA-256 is
    /// `hash`, both in one transaction, so there is never an admin without a known token.
    /// False (and nothing written) when users exist or another server got there first.
    pub async fn bootstrap_admin(
        &self,
        name: &str,
        hash: &[u8; 32],
        now: Time,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let users: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if users > 0 {
            return Ok(false);
        }
        match self
            .insert_user(&mut tx, name, Role::Admin, "slipway", now)
            .await
        {
            Ok(_) => {}
            Err(StoreError::AlreadyExists { .. }) => return Ok(false),
            Err(error) => return Err(error),
        }
        self.insert_token(&mut tx, name, hash, Some("first admin"), "slipway", now)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode_user).transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(decode_user).collect()
    }

    /// How many users exist (none: the server still needs its first admin).
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS users FROM users")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("users")?)
    }

    /// Gives `name` the role `role`. Setting the role a user already has writes nothing.
    pub async fn set_role(
        &self,
        name: &str,
        role: Role,
        by: &str,
        now: Time,
    ) -> Result<User, StoreError> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE name = $1{}",
            self.lock(" FOR UPDATE")
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: "user",
                name: name.to_owned(),
            });
        };
        let user = decode_user(&row)?;
        if user.role == role {
            return Ok(user);
        }
        sqlx::query("UPDATE users SET role = $1 WHERE name = $2")
            .bind(variant_name(&role))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let changed = event(
            "role_changed",
            json!({ "user": name, "from": user.role, "to": role, "by": by }),
        );
        self.append(&mut tx, &[changed], now).await?;
        tx.commit().await?;
        Ok(User { role, ..user })
    }

    /// Stores a new API token of `user` by its SHA-256 `hash`. `NotFound` for an unknown user.
    pub async fn create_token(
        &self,
        user: &str,
        hash: &[u8; 32],
        label: Option<&str>,
        by: &str,
        now: Time,
    ) -> Result<TokenRecord, StoreError> {
        let mut tx = self.write.begin().await?;
        let token = self
            .insert_token(&mut tx, user, hash, label, by, now)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Inserts a token of an existing user and its audit event inside `tx`.
    async fn insert_token(
        &self,
        tx: &mut Transaction<'static, Any>,
        user: &str,
        hash: &[u8; 32],
        label: Option<&str>,
        by: &str,
        now: Time,
    ) -> Result<TokenRecord, StoreError> {
        // Users are never deleted, so the user found here still exists at commit.
        let exists = sqlx::query("SELECT name FROM users WHERE name = $1")
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                what: "user",
                name: user.to_owned(),
            });
        }
        let id: i64 = sqlx::query(
            "INSERT INTO tokens (user_name, hash, label, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(user)
        .bind(hash.to_vec())
        .bind(label)
        .bind(now.as_millis())
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
        let created = event(
            "token_created",
            json!({ "token": id, "user": user, "label": label, "by": by }),
        );
        self.append(tx, &[created], now).await?;
        Ok(TokenRecord {
            id,
            user: user.to_owned(),
            label: label.map(str::to_owned),
            created_at: now,
            revoked_at: None,
        })
    }

    /// The owner and id of the unrevoked token whose SHA-256 is `hash`. Runs on every API
    /// request: one lookup in the unique index on the hash, on the read pool.
    pub async fn token_user(&self, hash: &[u8; 32]) -> Result<Option<(User, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT users.name, users.role, users.created_at, tokens.id AS token_id \
             FROM tokens JOIN users ON users.name = tokens.user_name \
             WHERE tokens.hash = $1 AND tokens.revoked_at IS NULL",
        )
        .bind(hash.to_vec())
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| Ok((decode_user(&row)?, row.try_get("token_id")?)))
            .transpose()
    }

    /// Tokens of one user or of all, revoked ones included, oldest first.
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE ($1 IS NULL OR user_name = $1) ORDER BY id"
        );
        let rows = sqlx::query(&sql).bind(user).fetch_all(&self.read).await?;
        rows.iter().map(decode_token).collect()
    }

    /// Revokes token `id`. False, and nothing written, when there is no such token or it was
    /// already revoked.
    pub async fn revoke_token(&self, id: i64, by: &str, now: Time) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             RETURNING user_name",
        )
        .bind(now.as_millis())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let user: String = row.try_get("user_name")?;
        let revoked = event(
            "token_revoked",
            json!({ "token": id, "user": user, "by": by }),
        );
        self.append(&mut tx, &[revoked], now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a pushed artifact (its `id` is ignored). A service version is pushed once: the
    /// same digest again is `AlreadyStored` and writes nothing, another digest is
    /// `VersionTaken`. One digest may serve several versions. `Invalid` for a malformed digest
    /// or a negative size.
    pub async fn record_artifact(
        &self,
        record: &ArtifactRecord,
    ) -> Result<ArtifactPut, StoreError> {
        check_artifact(record)?;
        let mut tx = self.write.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO artifacts (service, version, digest, size, source_commit, pushed_by, \
             pushed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (service, version) DO NOTHING RETURNING id",
        )
        .bind(&record.service)
        .bind(&record.version)
        .bind(&record.digest)
        .bind(record.size)
        .bind(record.commit.as_deref())
        .bind(&record.pushed_by)
        .bind(record.pushed_at.as_millis())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = inserted {
            let stored = ArtifactRecord {
                id: row.try_get("id")?,
                ..record.clone()
            };
            let pushed = event(
                "artifact_pushed",
                json!({
                    "service": stored.service,
                    "version": stored.version,
                    "digest": stored.digest,
                    "size": stored.size,
                    "commit": stored.commit,
                    "by": stored.pushed_by,
                }),
            );
            self.append(&mut tx, &[pushed], stored.pushed_at).await?;
            tx.commit().await?;
            return Ok(ArtifactPut::Stored(stored));
        }
        // On PostgreSQL the conflicting row may have been committed after this transaction
        // began; each statement of a read-committed transaction sees it.
        let sql =
            format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE service = $1 AND version = $2");
        let row = sqlx::query(&sql)
            .bind(&record.service)
            .bind(&record.version)
            .fetch_one(&mut *tx)
            .await?;
        let existing = decode_artifact(&row)?;
        tx.rollback().await?;
        if existing.digest == record.digest {
            Ok(ArtifactPut::AlreadyStored(existing))
        } else {
            Err(StoreError::VersionTaken {
                service: existing.service,
                version: existing.version,
                digest: existing.digest,
            })
        }
    }

    /// A page of `table`'s rows, of one service or of all, newest first.
    async fn newest_first<T>(
        &self,
        table: &str,
        columns: &str,
        service: Option<&str>,
        page: &Page,
        decode: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let sql = format!(
            "SELECT {columns} FROM {table} \
             WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(service)
            .bind(page.before)
            .bind(page.clamped_limit())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn artifact(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<ArtifactRecord>, StoreError> {
        let sql =
            format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE service = $1 AND version = $2");
        let row = sqlx::query(&sql)
            .bind(service)
            .bind(version)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode_artifact).transpose()
    }

    /// Artifacts of one service or of all, newest first.
    pub async fn artifacts(
        &self,
        service: Option<&str>,
        page: &Page,
    ) -> Result<Vec<ArtifactRecord>, StoreError> {
        self.newest_first(
            "artifacts",
            ARTIFACT_COLUMNS,
            service,
            page,
            decode_artifact,
        )
        .await
    }

    /// Creates the next release of a service from a pushed version. Full, off-cycle and config
    /// releases take the next major (`RC 4`), a patch the next minor of the latest major
    /// (`RC 3.2`). `NotFound` when the version was never pushed; `Invalid` for a patch of a
    /// service without releases.
    pub async fn create_release(
        &self,
        new: &NewRelease,
        now: Time,
    ) -> Result<ReleaseRecord, StoreError> {
        let mut tx = self.write.begin().await?;
        let record = self.insert_release(&mut tx, new, now).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Numbers and inserts a release with its audit event inside `tx` (see [`Store::create_release`]).
    pub(crate) async fn insert_release(
        &self,
        tx: &mut Transaction<'static, Any>,
        new: &NewRelease,
        now: Time,
    ) -> Result<ReleaseRecord, StoreError> {
        self.insert_release_numbered(tx, new, None, now).await
    }

    /// [`Store::insert_release`] with the number `(major, minor)` already chosen (a patch's
    /// reserved number) instead of the next one.
    pub(crate) async fn insert_release_numbered(
        &self,
        tx: &mut Transaction<'static, Any>,
        new: &NewRelease,
        number: Option<(i64, i64)>,
        now: Time,
    ) -> Result<ReleaseRecord, StoreError> {
        let artifact = sqlx::query(
            "SELECT digest, source_commit FROM artifacts WHERE service = $1 AND version = $2",
        )
        .bind(&new.service)
        .bind(&new.version)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(artifact) = artifact else {
            return Err(StoreError::NotFound {
                what: "artifact",
                name: format!("{} {}", new.service, new.version),
            });
        };
        let digest: String = artifact.try_get("digest")?;
        let commit: Option<String> = artifact.try_get("source_commit")?;

        // Number under the service's counter row, locked until commit: on PostgreSQL concurrent
        // creations for one service queue here, and each then reads the releases committed
        // before it (SQLite has a single writer). UNIQUE (service, major, minor) backs this up.
        let counter = format!("release:{}", new.service);
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&counter)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1")
            .bind(&counter)
            .execute(&mut **tx)
            .await?;
        let latest = sqlx::query(
            "SELECT major, minor FROM releases WHERE service = $1 \
             ORDER BY major DESC, minor DESC LIMIT 1",
        )
        .bind(&new.service)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| Ok::<(i64, i64), StoreError>((row.try_get("major")?, row.try_get("minor")?)))
        .transpose()?;
        let reconfigured = match (&new.kind, &new.reconfigures) {
            (ReleaseKind::Config | ReleaseKind::Patch, Some(label)) => {
                let major = label
                    .strip_prefix("RC ")
                    .and_then(|n| n.split('.').next())
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| StoreError::Invalid {
                        message: format!("`{label}` is not a release label"),
                        hint: "name the running release, e.g. RC 4".to_owned(),
                    })?;
                // Numbers reserved by pending patches count as taken.
                let minor = crate::trains::max_minor(tx, &new.service, major).await?;
                Some((major, minor + 1))
            }
            _ => None,
        };
        let (major, minor) = match number.or(reconfigured) {
            Some(numbers) => numbers,
            None => match (new.kind, latest) {
                (ReleaseKind::Patch, Some((major, _))) => (
                    major,
                    crate::trains::max_minor(tx, &new.service, major).await? + 1,
                ),
                (ReleaseKind::Patch, None) => {
                    return Err(StoreError::Invalid {
                        message: format!("`{}` has no release to patch", new.service),
                        hint: "create a full release first: --kind full".to_owned(),
                    });
                }
                (_, latest) => (latest.map_or(0, |(major, _)| major) + 1, 0),
            },
        };
        let label = release_label(major, minor);
        let kind = variant_name(&new.kind);
        let authors = (!new.authors.is_empty()).then(|| json!(new.authors).to_string());
        let id: i64 = sqlx::query(
            "INSERT INTO releases (service, major, minor, label, kind, version, artifact, \
             source_commit, created_by, created_at, reason, authors) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(&new.service)
        .bind(major)
        .bind(minor)
        .bind(&label)
        .bind(&kind)
        .bind(&new.version)
        .bind(&digest)
        .bind(commit.as_deref())
        .bind(&new.created_by)
        .bind(now.as_millis())
        .bind(new.reason.as_deref())
        .bind(authors.as_deref())
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
        let created = event(
            "release_created",
            json!({
                "service": new.service,
                "release": label,
                "kind": new.kind,
                "version": new.version,
                "artifact": digest,
                "commit": commit,
                "reason": new.reason,
                "authors": new.authors,
                "by": new.created_by,
            }),
        );
        self.append(tx, &[created], now).await?;
        Ok(ReleaseRecord {
            id,
            service: new.service.clone(),
            label,
            major,
            minor,
            kind: new.kind,
            version: new.version.clone(),
            artifact: digest,
            commit,
            created_by: new.created_by.clone(),
            created_at: now,
            reason: new.reason.clone(),
            authors: new.authors.clone(),
        })
    }

    /// The release of `service` labelled `label` (`RC 3`, `RC 3.1`).
    pub async fn release(
        &self,
        service: &str,
        label: &str,
    ) -> Result<Option<ReleaseRecord>, StoreError> {
        let sql =
            format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE service = $1 AND label = $2");
        let row = sqlx::query(&sql)
            .bind(service)
            .bind(label)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode_release).transpose()
    }

    /// Releases of one service or of all, newest first.
    pub async fn releases(
        &self,
        service: Option<&str>,
        page: &Page,
    ) -> Result<Vec<ReleaseRecord>, StoreError> {
        self.newest_first("releases", RELEASE_COLUMNS, service, page, decode_release)
            .await
    }

    /// The highest-numbered release of `service`.
    pub async fn latest_release(&self, service: &str) -> Result<Option<ReleaseRecord>, StoreError> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE service = $1 \
             ORDER BY major DESC, minor DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(service)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode_release).transpose()
    }

    /// What runs in `environment` now: the newest deploy of `service` there that succeeded,
    /// whatever its purpose (a successful rollback put the previous release back).
    pub async fn current_release(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<StoredDeploy>, StoreError> {
        let row = sqlx::query(
            "SELECT state, revision FROM deploys \
             WHERE service = $1 AND environment = $2 AND result = $3 ORDER BY id DESC LIMIT 1",
        )
        .bind(service)
        .bind(environment)
        .bind(DeployResult::Succeeded.name())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(Store::decode_deploy).transpose()
    }

    /// The unfinished deploy of that service and environment, oldest first if (against the
    /// lock) there are several.
    pub async fn active_deploy(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<DeployId>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM deploys WHERE service = $1 AND environment = $2 \
             AND finished_at IS NULL ORDER BY id LIMIT 1",
        )
        .bind(service)
        .bind(environment)
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| Ok(DeployId(row.try_get("id")?))).transpose()
    }

    /// The newest deploy of the service to the environment, older than `before`, that
    /// succeeded with release `label`, or with any other release than `not_label`: what a
    /// rollback goes back to. One lookup in the `deploys_by_label` index.
    pub async fn previous_success(
        &self,
        service: &str,
        environment: &str,
        before: DeployId,
        wanted: ReleaseChoice<'_>,
    ) -> Result<Option<StoredDeploy>, StoreError> {
        let (sql, label) = match wanted {
            ReleaseChoice::Named(label) => ("release_label = $5", label),
            ReleaseChoice::Other(label) => ("release_label <> $5", label),
        };
        let sql = format!(
            "SELECT state, revision FROM deploys WHERE service = $1 AND environment = $2 \
             AND result = $3 AND id < $4 AND {sql} ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(service)
            .bind(environment)
            .bind(DeployResult::Succeeded.name())
            .bind(before.0)
            .bind(label)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Store::decode_deploy).transpose()
    }

    /// The deploy created with `origin` (`rollback-of/ID` names the rollback deploy of ID).
    pub async fn deploy_by_origin(&self, origin: &str) -> Result<Option<DeployId>, StoreError> {
        let row = sqlx::query("SELECT id FROM deploys WHERE origin = $1")
            .bind(origin)
            .fetch_optional(&self.read)
            .await?;
        row.map(|row| Ok(DeployId(row.try_get("id")?))).transpose()
    }
}

/// Which release [`Store::previous_success`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseChoice<'a> {
    /// This label.
    Named(&'a str),
    /// Any label but this one.
    Other(&'a str),
}
