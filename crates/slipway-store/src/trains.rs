//! Release trains: what a cut or a patch recorded about a release's git side (branch, range,
//! true-up, picks, changelog), the revisions of its notes, and their one publication after the
//! production deploy. Each write appends its audit event in the same transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;
use slipway_core::deploy::DeployId;
use slipway_core::time::Time;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::catalog::{NewRelease, ReleaseRecord, event, variant_name};
use crate::error::StoreError;
use crate::notifications::{DeliveryStatus, NewNotification, insert_notification, rearm_failed};
use crate::store::Store;

/// Whether a train release was cut from staging or patched onto production.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainKind {
    Full,
    Patch,
}

/// The git facts of a release to record with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTrain {
    pub kind: TrainKind,
    pub branch: String,
    /// What production ran (the production branch's head), if anything.
    pub base: Option<String>,
    /// The release's code: what staging ran, or a patch's last pick (full sha).
    pub head: String,
    /// The branch's head: the true-up merge, or `head`.
    pub branch_head: String,
    /// `BASE..HEAD` (or `HEAD` alone for a first release).
    pub range: String,
    /// The true-up merge, when one was recorded.
    pub true_up: Option<String>,
    /// A patch's picked commits, in order.
    pub picks: Vec<String>,
    /// The changelog of the range, Markdown.
    pub changelog: String,
}

/// A release made by the train, with its git facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainRecord {
    pub release: ReleaseRecord,
    pub train: NewTrain,
    pub created_at: Time,
}

/// The publication of a release's notes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The notes revision published.
    pub revision: i64,
    /// The production deploy that succeeded.
    pub deploy: i64,
    pub tag: String,
    pub signed: bool,
    pub published_at: Time,
    /// Where the delivery to the notes webhook stands; `None` without a webhook.
    pub delivery: Option<DeliveryStatus>,
    /// When the notes webhook took them; `None` until then, or without a webhook.
    pub delivered_at: Option<Time>,
}

/// What a publication records besides the notes: the tag, and where the release branch ended
/// (a true-up written at publication, because production moved since the cut, moves its head).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPublication {
    /// The production deploy that succeeded.
    pub deploy: i64,
    pub tag: String,
    pub signed: bool,
    /// The commit tagged and promoted: the release branch's head.
    pub branch_head: String,
    /// The newest true-up merge on the branch, if any.
    pub true_up: Option<String>,
}

/// The notes as published, for rendering the webhook's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedNotes {
    pub revision: i64,
    pub body: String,
    pub published_at: Time,
}

/// The delivery of published notes to the notes webhook: enqueued in the notification outbox
/// in the publication's own transaction, so it is sent (and retried) by the deliverer even if
/// the process stops right after.
pub struct NotesDelivery<'a> {
    /// The outbox destination (`release-notes/SERVICE`).
    pub destination: String,
    /// The production deploy the delivery is recorded under.
    pub deploy: DeployId,
    /// The JSON body, from the notes as published.
    pub render: &'a (dyn Fn(&PublishedNotes) -> String + Send + Sync),
}

/// The outbox key of the notes delivery of release `label`: one delivery per release.
pub fn notes_effect_key(service: &str, label: &str) -> String {
    format!("notes/{service}/{label}")
}

/// The current notes of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotesRecord {
    pub release_id: i64,
    pub service: String,
    pub label: String,
    /// 1 for the draft written by the cut; each edit adds one.
    pub revision: i64,
    pub body: String,
    pub written_by: String,
    pub written_at: Time,
    pub published: Option<Publication>,
}

const TRAIN_COLUMNS: &str = "t.kind AS train_kind, t.branch, t.base_commit, t.head_commit, \
                             t.branch_head, t.commit_range, t.true_up, t.picks, t.changelog, \
                             t.created_at AS train_created_at";

fn decode_train(row: &AnyRow) -> Result<(NewTrain, Time), StoreError> {
    let picks = match row.try_get::<Option<String>, _>("picks")? {
        Some(json) => serde_json::from_str(&json)?,
        None => Vec::new(),
    };
    let train = NewTrain {
        kind: crate::catalog::parse_variant(row.try_get("train_kind")?)?,
        branch: row.try_get("branch")?,
        base: row.try_get("base_commit")?,
        head: row.try_get("head_commit")?,
        branch_head: row.try_get("branch_head")?,
        range: row.try_get("commit_range")?,
        true_up: row.try_get("true_up")?,
        picks,
        changelog: row.try_get("changelog")?,
    };
    Ok((train, Time(row.try_get("train_created_at")?)))
}

/// A value bound to a train query's placeholder.
enum Bind<'a> {
    Id(i64),
    Text(&'a str),
}

/// Locks the release counter row of `service` (made if absent) in `tx`: on PostgreSQL the train
/// writes of one service (cuts, patch reservations, notes edits and publication) take turns
/// under it, each reading what the one before wrote; SQLite has one writer anyway.
async fn lock_release_counter(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    service: &str,
) -> Result<(), StoreError> {
    let counter = format!("release:{service}");
    sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
        .bind(&counter)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE counters SET value = value WHERE name = $1")
        .bind(&counter)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Creates the release `new` numbered as usual, with its train facts and the first notes
    /// revision (`draft` of the numbered release), all with their audit events in one
    /// transaction. When a release of the service was already made from `train.head`, nothing
    /// is written and that one is returned: the bool says whether this call created it.
    pub async fn create_train_release(
        &self,
        new: &NewRelease,
        train: &NewTrain,
        draft: impl FnOnce(&ReleaseRecord) -> String,
        now: Time,
    ) -> Result<(TrainRecord, bool), StoreError> {
        self.record_train_release(new, train, draft, None, now)
            .await
    }

    /// [`Store::create_train_release`]; with `patch`, numbered as that pending patch reserved
    /// and linked to it in the same transaction.
    async fn record_train_release(
        &self,
        new: &NewRelease,
        train: &NewTrain,
        draft: impl FnOnce(&ReleaseRecord) -> String,
        patch: Option<&PendingPatch>,
        now: Time,
    ) -> Result<(TrainRecord, bool), StoreError> {
        let mut tx = self.write.begin().await?;
        // Under the counter row's lock (PostgreSQL) or the single writer (SQLite): two cuts of
        // one commit queue here and the second finds the first.
        lock_release_counter(&mut tx, &new.service).await?;
        let existing: Option<i64> = sqlx::query(
            "SELECT release_id FROM release_trains WHERE service = $1 AND head_commit = $2",
        )
        .bind(&new.service)
        .bind(&train.head)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get("release_id"))
        .transpose()?;
        if let Some(id) = existing {
            tx.rollback().await?;
            let record = self
                .train_by_id(id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: "release train",
                    name: id.to_string(),
                })?;
            return Ok((record, false));
        }

        let number = patch.map(|p| (p.major, p.minor));
        let release = self
            .insert_release_numbered(&mut tx, new, number, now)
            .await?;
        if let Some(patch) = patch {
            let linked = sqlx::query(
                "UPDATE pending_patches SET release_id = $1 WHERE id = $2 AND release_id IS NULL",
            )
            .bind(release.id)
            .bind(patch.id)
            .execute(&mut *tx)
            .await?;
            if linked.rows_affected() == 0 {
                return Err(StoreError::Invalid {
                    message: format!(
                        "the patch on {} already has its release, made from another commit",
                        patch.branch
                    ),
                    hint: "show it with slipway release list".to_owned(),
                });
            }
        }
        let picks = (!train.picks.is_empty()).then(|| json!(train.picks).to_string());
        sqlx::query(
            "INSERT INTO release_trains (release_id, service, kind, branch, base_commit, \
             head_commit, branch_head, commit_range, true_up, picks, changelog, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(release.id)
        .bind(&new.service)
        .bind(variant_name(&train.kind))
        .bind(&train.branch)
        .bind(train.base.as_deref())
        .bind(&train.head)
        .bind(&train.branch_head)
        .bind(&train.range)
        .bind(train.true_up.as_deref())
        .bind(picks.as_deref())
        .bind(&train.changelog)
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO release_notes (release_id, revision, body, written_by, written_at) \
             VALUES ($1, 1, $2, $3, $4)",
        )
        .bind(release.id)
        .bind(draft(&release))
        .bind(&new.created_by)
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await?;
        let cut = event(
            "release_train_cut",
            json!({
                "service": new.service,
                "release": release.label,
                "kind": train.kind,
                "branch": train.branch,
                "range": train.range,
                "true_up": train.true_up,
                "picks": train.picks,
                "by": new.created_by,
            }),
        );
        self.append(&mut tx, &[cut], now).await?;
        tx.commit().await?;
        let record = TrainRecord {
            release,
            train: train.clone(),
            created_at: now,
        };
        Ok((record, true))
    }

    async fn train_where(
        &self,
        condition: &str,
        binds: &[Bind<'_>],
    ) -> Result<Option<TrainRecord>, StoreError> {
        let columns = crate::catalog::RELEASE_COLUMNS
            .split(", ")
            .map(|column| format!("r.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, {TRAIN_COLUMNS} FROM releases r \
             JOIN release_trains t ON t.release_id = r.id WHERE {condition}"
        );
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Id(id) => query.bind(*id),
                Bind::Text(text) => query.bind(*text),
            };
        }
        let row = query.fetch_optional(&self.read).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let release = crate::catalog::decode_release(&row)?;
        let (train, created_at) = decode_train(&row)?;
        Ok(Some(TrainRecord {
            release,
            train,
            created_at,
        }))
    }

    async fn train_by_id(&self, id: i64) -> Result<Option<TrainRecord>, StoreError> {
        self.train_where("r.id = $1", &[Bind::Id(id)]).await
    }

    /// The train facts of release `label` of `service`; `None` for a release the train did not
    /// make (or that does not exist).
    pub async fn train(
        &self,
        service: &str,
        label: &str,
    ) -> Result<Option<TrainRecord>, StoreError> {
        self.train_where(
            "r.service = $1 AND r.label = $2",
            &[Bind::Text(service), Bind::Text(label)],
        )
        .await
    }

    /// The train release of `service` made from `commit` (a full sha, or an abbreviation of
    /// one), if any: what cutting that commit again returns.
    pub async fn train_for_commit(
        &self,
        service: &str,
        commit: &str,
    ) -> Result<Option<TrainRecord>, StoreError> {
        // Commits are hex (checked where they enter), so the pattern has no wildcard but its own.
        let prefix = format!("{}%", commit.to_ascii_lowercase());
        self.train_where(
            "r.service = $1 AND t.head_commit LIKE $2",
            &[Bind::Text(service), Bind::Text(&prefix)],
        )
        .await
    }

    /// The newest train release of `service` of that kind.
    pub async fn latest_train(
        &self,
        service: &str,
        kind: TrainKind,
    ) -> Result<Option<TrainRecord>, StoreError> {
        let kind = variant_name(&kind);
        self.train_where(
            "r.service = $1 AND t.kind = $2 AND r.id = (SELECT MAX(r2.id) FROM releases r2 \
             JOIN release_trains t2 ON t2.release_id = r2.id \
             WHERE r2.service = $1 AND t2.kind = $2)",
            &[Bind::Text(service), Bind::Text(&kind)],
        )
        .await
    }

    /// The current notes of release `label` of `service`, with their publication.
    pub async fn release_notes(
        &self,
        service: &str,
        label: &str,
    ) -> Result<Option<NotesRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT r.id AS release_id, n.revision, n.body, n.written_by, n.written_at, \
             p.revision AS published_revision, p.deploy_id, p.tag, p.signed, p.published_at, \
             CASE WHEN d.status IS NULL AND p.delivered_at IS NOT NULL THEN 'delivered' \
             ELSE d.status END AS delivery_status, \
             COALESCE(d.delivered_at, p.delivered_at) AS delivered_at \
             FROM releases r JOIN release_notes n ON n.release_id = r.id \
             LEFT JOIN release_publications p ON p.release_id = r.id \
             LEFT JOIN notifications d ON d.effect_key = $3 \
             WHERE r.service = $1 AND r.label = $2 ORDER BY n.revision DESC LIMIT 1",
        )
        .bind(service)
        .bind(label)
        .bind(notes_effect_key(service, label))
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let published = match row.try_get::<Option<i64>, _>("published_revision")? {
            Some(revision) => Some(Publication {
                revision,
                deploy: row.try_get("deploy_id")?,
                tag: row.try_get("tag")?,
                signed: row.try_get::<i64, _>("signed")? != 0,
                published_at: Time(row.try_get("published_at")?),
                delivery: row
                    .try_get::<Option<String>, _>("delivery_status")?
                    .map(|status| DeliveryStatus::parse(&status)),
                delivered_at: row.try_get::<Option<i64>, _>("delivered_at")?.map(Time),
            }),
            None => None,
        };
        Ok(Some(NotesRecord {
            release_id: row.try_get("release_id")?,
            service: service.to_owned(),
            label: label.to_owned(),
            revision: row.try_get("revision")?,
            body: row.try_get("body")?,
            written_by: row.try_get("written_by")?,
            written_at: Time(row.try_get("written_at")?),
            published,
        }))
    }

    /// Writes a new revision of the notes of release `label`. The same text as the current
    /// revision writes nothing. Published notes are final: `Invalid`. `NotFound` for a release
    /// without notes (one the train did not make).
    pub async fn edit_release_notes(
        &self,
        service: &str,
        label: &str,
        body: &str,
        by: &str,
        now: Time,
    ) -> Result<NotesRecord, StoreError> {
        let mut tx = self.write.begin().await?;
        // The service's release counter row, locked first (PostgreSQL; SQLite has one writer):
        // an edit of the notes and their publication take turns, each reading what the other
        // wrote.
        lock_release_counter(&mut tx, service).await?;
        let row = sqlx::query(
            "SELECT r.id AS release_id, n.revision, n.body, \
             (SELECT COUNT(*) FROM release_publications p WHERE p.release_id = r.id) AS published \
             FROM releases r JOIN release_notes n ON n.release_id = r.id \
             WHERE r.service = $1 AND r.label = $2 ORDER BY n.revision DESC LIMIT 1",
        )
        .bind(service)
        .bind(label)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: "release notes",
                name: format!("{service} {label}"),
            });
        };
        let release_id: i64 = row.try_get("release_id")?;
        let revision: i64 = row.try_get("revision")?;
        let current: String = row.try_get("body")?;
        if row.try_get::<i64, _>("published")? > 0 {
            return Err(StoreError::Invalid {
                message: format!("the notes of {service} {label} are already published"),
                hint: "published notes are final: write a correction in the next release's \
                       notes"
                    .to_owned(),
            });
        }
        if current != body {
            // UNIQUE (release_id, revision) refuses a concurrent edit of the same revision.
            sqlx::query(
                "INSERT INTO release_notes (release_id, revision, body, written_by, written_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(release_id)
            .bind(revision + 1)
            .bind(body)
            .bind(by)
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await?;
            let edited = event(
                "release_notes_edited",
                json!({
                    "service": service,
                    "release": label,
                    "revision": revision + 1,
                    "by": by,
                }),
            );
            self.append(&mut tx, &[edited], now).await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        self.release_notes(service, label)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "release notes",
                name: format!("{service} {label}"),
            })
    }

    /// Records the publication of the current notes of release `label` after production
    /// deploy `publication.deploy` succeeded and the tag was set, and enqueues `delivery` in the
    /// same transaction. At most once per release: a second call records nothing and keeps the
    /// first publication, but enqueues the delivery if it was not (a webhook configured since)
    /// and makes a failed one due again. The bool says whether this call published.
    pub async fn publish_release_notes(
        &self,
        service: &str,
        label: &str,
        publication: &NewPublication,
        delivery: Option<NotesDelivery<'_>>,
        now: Time,
    ) -> Result<(NotesRecord, bool), StoreError> {
        let not_found = || StoreError::NotFound {
            what: "release notes",
            name: format!("{service} {label}"),
        };
        let notes = self
            .release_notes(service, label)
            .await?
            .ok_or_else(not_found)?;
        let mut tx = self.write.begin().await?;
        // The service's release counter row, locked first (PostgreSQL; SQLite has one writer):
        // an edit of the notes and their publication take turns, each reading what the other
        // wrote.
        lock_release_counter(&mut tx, service).await?;
        let earlier = sqlx::query(
            "SELECT revision, published_at, delivered_at FROM release_publications \
             WHERE release_id = $1",
        )
        .bind(notes.release_id)
        .fetch_optional(&mut *tx)
        .await?;
        // Publications of slipway versions before the outbox noted their delivery here.
        let delivered_before = match &earlier {
            Some(row) => row.try_get::<Option<i64>, _>("delivered_at")?.is_some(),
            None => false,
        };
        let (revision, published_at, first) = match earlier {
            Some(row) => (
                row.try_get::<i64, _>("revision")?,
                Time(row.try_get("published_at")?),
                false,
            ),
            None => {
                // The newest revision as of this transaction, so an edit racing the
                // publication is either published or refused afterwards, never lost silently.
                let revision: i64 = sqlx::query(
                    "SELECT MAX(revision) AS revision FROM release_notes WHERE release_id = $1",
                )
                .bind(notes.release_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("revision")?;
                sqlx::query(
                    "INSERT INTO release_publications (release_id, revision, deploy_id, tag, \
                     signed, published_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(notes.release_id)
                .bind(revision)
                .bind(publication.deploy)
                .bind(&publication.tag)
                .bind(i64::from(publication.signed))
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE release_trains SET branch_head = $1, true_up = $2 \
                     WHERE release_id = $3",
                )
                .bind(&publication.branch_head)
                .bind(&publication.true_up)
                .bind(notes.release_id)
                .execute(&mut *tx)
                .await?;
                let done = event(
                    "release_notes_published",
                    json!({
                        "service": service,
                        "release": label,
                        "revision": revision,
                        "deploy": publication.deploy,
                        "tag": publication.tag,
                        "signed": publication.signed,
                        "commit": publication.branch_head,
                        "true_up": publication.true_up,
                    }),
                );
                self.append(&mut tx, &[done], now).await?;
                (revision, now, true)
            }
        };
        if let Some(delivery) = delivery.filter(|_| !delivered_before) {
            let body: String = sqlx::query(
                "SELECT body FROM release_notes WHERE release_id = $1 AND revision = $2",
            )
            .bind(notes.release_id)
            .bind(revision)
            .fetch_one(&mut *tx)
            .await?
            .try_get("body")?;
            let payload = (delivery.render)(&PublishedNotes {
                revision,
                body,
                published_at,
            });
            let notification = NewNotification {
                deploy: delivery.deploy,
                effect_key: notes_effect_key(service, label),
                destination: delivery.destination,
                kind: "webhook".to_owned(),
                notice: "release_notes".to_owned(),
                payload,
            };
            if !insert_notification(&mut tx, &notification, now).await? {
                rearm_failed(&mut tx, &notification, now).await?;
            }
        }
        tx.commit().await?;
        let notes = self
            .release_notes(service, label)
            .await?
            .ok_or_else(not_found)?;
        Ok((notes, first))
    }
}

impl Store {
    /// The newest fire time handled of schedule `key`. A schedule seen for the first time
    /// starts at `now` (what was due before it existed is not owed).
    pub async fn schedule_cursor(&self, key: &str, now: Time) -> Result<Time, StoreError> {
        sqlx::query(
            "INSERT INTO schedule_fires (schedule, last_fire, updated_at) VALUES ($1, $2, $2) \
             ON CONFLICT (schedule) DO NOTHING",
        )
        .bind(key)
        .bind(now.as_millis())
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT last_fire FROM schedule_fires WHERE schedule = $1")
            .bind(key)
            .fetch_one(&self.write)
            .await?;
        Ok(Time(row.try_get("last_fire")?))
    }

    /// Records that schedule `key` fired for `due`, with what it did (`outcome`), and its
    /// `schedule_fired` audit event. False, and nothing written, when that fire (or a later
    /// one) was already recorded: by another server, or before a restart.
    pub async fn record_schedule_fire(
        &self,
        key: &str,
        due: Time,
        outcome: serde_json::Value,
        now: Time,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let moved = sqlx::query(
            "UPDATE schedule_fires SET last_fire = $1, updated_at = $2 \
             WHERE schedule = $3 AND last_fire < $1",
        )
        .bind(due.as_millis())
        .bind(now.as_millis())
        .bind(key)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let fired = event(
            "schedule_fired",
            json!({ "schedule": key, "due": due.as_millis(), "outcome": outcome }),
        );
        self.append(&mut tx, &[fired], now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// A patch number reserved by the first call of a two-call patch: its branch, and once git made
/// it, the branch's head and base; `release_id` once the second call created the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPatch {
    pub id: i64,
    pub service: String,
    /// The release patched: `RC major`.
    pub major: i64,
    /// The reserved number: `RC major.minor`.
    pub minor: i64,
    pub branch: String,
    /// The picked commits (full shas), in order.
    pub picks: Vec<String>,
    /// The branch's head (the last pick); `None` until git made the branch.
    pub head: Option<String>,
    /// What the branch was made from (the production line's head then).
    pub base: Option<String>,
    pub created_by: String,
    pub created_at: Time,
    pub release_id: Option<i64>,
}

const PENDING_COLUMNS: &str = "id, service, major, minor, branch, picks, head_commit, \
                               base_commit, created_by, created_at, release_id";

fn decode_pending(row: &AnyRow) -> Result<PendingPatch, StoreError> {
    Ok(PendingPatch {
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        major: row.try_get("major")?,
        minor: row.try_get("minor")?,
        branch: row.try_get("branch")?,
        picks: serde_json::from_str(&row.try_get::<String, _>("picks")?)?,
        head: row.try_get("head_commit")?,
        base: row.try_get("base_commit")?,
        created_by: row.try_get("created_by")?,
        created_at: Time(row.try_get("created_at")?),
        release_id: row.try_get("release_id")?,
    })
}

/// The highest minor number of `RC major` of `service` taken by a release or reserved by a
/// pending patch; 0 when none is.
pub(crate) async fn max_minor(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    service: &str,
    major: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT MAX(minor) AS minor FROM (\
         SELECT minor FROM releases WHERE service = $1 AND major = $2 \
         UNION ALL SELECT minor FROM pending_patches WHERE service = $1 AND major = $2) taken",
    )
    .bind(service)
    .bind(major)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get::<Option<i64>, _>("minor")?.unwrap_or(0))
}

impl Store {
    /// Reserves the patch of `RC major` of `service` that picks `picks` (full shas, in order),
    /// with its `patch_reserved` audit event:
    /// the pending patch with exactly these picks when there is one (the bool is false), else
    /// a new one numbered one above every release and pending patch of that major, on the
    /// branch `branch(minor)` (the bool is true). Written under the service's release counter
    /// row, so concurrent reservations and releases take distinct numbers; nothing in git is
    /// touched here.
    pub async fn reserve_patch(
        &self,
        service: &str,
        major: i64,
        picks: &[String],
        branch: impl FnOnce(i64) -> String,
        by: &str,
        now: Time,
    ) -> Result<(PendingPatch, bool), StoreError> {
        let picks_json = json!(picks).to_string();
        let mut tx = self.write.begin().await?;
        lock_release_counter(&mut tx, service).await?;
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM pending_patches \
             WHERE service = $1 AND major = $2 AND picks = $3 ORDER BY minor LIMIT 1"
        );
        let found = sqlx::query(&sql)
            .bind(service)
            .bind(major)
            .bind(&picks_json)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = found {
            tx.rollback().await?;
            return Ok((decode_pending(&row)?, false));
        }
        let minor = max_minor(&mut tx, service, major).await? + 1;
        let branch = branch(minor);
        let id: i64 = sqlx::query(
            "INSERT INTO pending_patches (service, major, minor, branch, picks, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(service)
        .bind(major)
        .bind(minor)
        .bind(&branch)
        .bind(&picks_json)
        .bind(by)
        .bind(now.as_millis())
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let reserved = event(
            "patch_reserved",
            json!({
                "service": service,
                "release": format!("RC {major}.{minor}"),
                "branch": branch,
                "picks": picks,
                "by": by,
            }),
        );
        self.append(&mut tx, &[reserved], now).await?;
        tx.commit().await?;
        let pending = PendingPatch {
            id,
            service: service.to_owned(),
            major,
            minor,
            branch,
            picks: picks.to_vec(),
            head: None,
            base: None,
            created_by: by.to_owned(),
            created_at: now,
            release_id: None,
        };
        Ok((pending, true))
    }

    /// Records the branch git made for pending patch `id`: its `head` and `base`. A patch whose
    /// release exists is left as it is.
    pub async fn record_patch_branch(
        &self,
        id: i64,
        base: &str,
        head: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        let exists = sqlx::query("SELECT id FROM pending_patches WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            tx.rollback().await?;
            return Err(StoreError::Invalid {
                message: "the patch's number was given back while its branch was being made"
                    .to_owned(),
                hint: "run the same command again: it reserves a number for these picks and \
                       finds their branch"
                    .to_owned(),
            });
        }
        // A reservation whose release exists keeps what it recorded.
        sqlx::query(
            "UPDATE pending_patches SET head_commit = $1, base_commit = $2 \
             WHERE id = $3 AND release_id IS NULL",
        )
        .bind(head)
        .bind(base)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives back the number of pending patch `id` when git could not make its branch: the
    /// row goes, with a `patch_reservation_dropped` audit event, if no branch was recorded for
    /// it (and so no release). True when it went.
    pub async fn drop_pending_patch(&self, id: i64, now: Time) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM pending_patches \
             WHERE id = $1 AND head_commit IS NULL AND release_id IS NULL"
        );
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let patch = decode_pending(&row)?;
        let deleted = sqlx::query(
            "DELETE FROM pending_patches \
             WHERE id = $1 AND head_commit IS NULL AND release_id IS NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let dropped = event(
            "patch_reservation_dropped",
            json!({
                "service": patch.service,
                "release": format!("RC {}.{}", patch.major, patch.minor),
                "branch": patch.branch,
                "picks": patch.picks,
            }),
        );
        self.append(&mut tx, &[dropped], now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The pending patches of `service`, lowest number first: reserved, awaiting their
    /// artifact, or done (`release_id`).
    pub async fn pending_patches(&self, service: &str) -> Result<Vec<PendingPatch>, StoreError> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM pending_patches WHERE service = $1 \
             ORDER BY major, minor"
        );
        let rows = sqlx::query(&sql)
            .bind(service)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(decode_pending).collect()
    }

    /// Creates the release of pending patch `patch` (the second call): numbered as reserved,
    /// linked to the row, with its train facts and draft notes, as
    /// [`Store::create_train_release`] does (the same head again returns the release made
    /// before).
    pub async fn create_patch_release(
        &self,
        patch: &PendingPatch,
        new: &NewRelease,
        train: &NewTrain,
        draft: impl FnOnce(&ReleaseRecord) -> String,
        now: Time,
    ) -> Result<(TrainRecord, bool), StoreError> {
        self.record_train_release(new, train, draft, Some(patch), now)
            .await
    }
}
