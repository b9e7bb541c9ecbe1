//! Checklist ticks: who said a prerequisite item is done for a service and environment (and
//! release), with what evidence — and who took it back. Rows are only ever appended (database
//! triggers refuse the rest): an untick is a row of its own, so the history stays whole, and
//! the state of an item is its newest row. Each tick and untick appends its audit event in the
//! same transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;
use slipway_core::checklist::{Evidence, Tick};
use slipway_core::deploy::Actor;
use slipway_core::time::Time;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::catalog::{event, parse_variant, variant_name};
use crate::error::StoreError;
use crate::store::Store;

/// Which item, where: the key of a tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPlace {
    pub service: String,
    pub environment: String,
    /// The release label for a per-release item; `None` for a standing one.
    pub release: Option<String>,
    pub item: String,
}

/// A tick or an untick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TickAction {
    Tick,
    Untick,
}

/// One row of an item's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickRecord {
    pub id: i64,
    pub place: ItemPlace,
    pub action: TickAction,
    pub by: String,
    pub role: slipway_core::deploy::Role,
    /// What proves the item done (a tick), or why it was taken back (an untick, optional).
    pub evidence: Option<Evidence>,
    pub at: Time,
}

impl TickRecord {
    /// The tick in force this row is, if it is a tick.
    pub fn as_tick(&self) -> Option<Tick> {
        match (self.action, &self.evidence) {
            (TickAction::Tick, Some(evidence)) => Some(Tick {
                item: self.place.item.clone(),
                release: self.place.release.clone(),
                by: self.by.clone(),
                role: self.role,
                evidence: evidence.clone(),
                at: self.at,
            }),
            _ => None,
        }
    }
}

const TICK_COLUMNS: &str = "id, service, environment, release_label, item, action, by_user, role, \
                            evidence_kind, evidence, at";

fn decode_tick(row: &AnyRow) -> Result<TickRecord, StoreError> {
    let kind: Option<String> = row.try_get("evidence_kind")?;
    let text: Option<String> = row.try_get("evidence")?;
    let evidence = match (kind.as_deref(), text) {
        (Some("link"), Some(text)) => Some(Evidence::Link(text)),
        (Some("note"), Some(text)) => Some(Evidence::Note(text)),
        (None, None) => None,
        (kind, _) => {
            return Err(StoreError::Corrupt(format!(
                "checklist tick with evidence kind {kind:?}"
            )));
        }
    };
    Ok(TickRecord {
        id: row.try_get("id")?,
        place: ItemPlace {
            service: row.try_get("service")?,
            environment: row.try_get("environment")?,
            release: row.try_get("release_label")?,
            item: row.try_get("item")?,
        },
        action: parse_variant(row.try_get("action")?)?,
        by: row.try_get("by_user")?,
        role: parse_variant(row.try_get("role")?)?,
        evidence,
        at: Time(row.try_get("at")?),
    })
}

impl Store {
    /// Records that `by` ticked the item at `place` with `evidence` (replacing an earlier tick,
    /// which stays in the history), with its audit event. The caller has checked that the item
    /// exists, that `by` may tick it and that the evidence fits.
    pub async fn tick_item(
        &self,
        place: &ItemPlace,
        by: &Actor,
        evidence: &Evidence,
        now: Time,
    ) -> Result<TickRecord, StoreError> {
        let record = TickRecord {
            id: 0,
            place: place.clone(),
            action: TickAction::Tick,
            by: by.name.clone(),
            role: by.role,
            evidence: Some(evidence.clone()),
            at: now,
        };
        self.insert_tick(record, "checklist_ticked").await
    }

    /// Records that `by` took back the tick of the item at `place`, with an optional reason.
    /// Refused with `Invalid` when the item is not ticked there.
    pub async fn untick_item(
        &self,
        place: &ItemPlace,
        by: &Actor,
        reason: Option<&str>,
        now: Time,
    ) -> Result<TickRecord, StoreError> {
        let record = TickRecord {
            id: 0,
            place: place.clone(),
            action: TickAction::Untick,
            by: by.name.clone(),
            role: by.role,
            evidence: reason.map(|r| Evidence::Note(r.to_owned())),
            at: now,
        };
        self.insert_tick(record, "checklist_unticked").await
    }

    async fn insert_tick(
        &self,
        mut record: TickRecord,
        kind: &str,
    ) -> Result<TickRecord, StoreError> {
        let place = &record.place;
        let mut tx = self.write.begin().await?;
        if record.action == TickAction::Untick {
            // Ticks of one item are serialised by the writer (SQLite's single connection); on
            // PostgreSQL two concurrent unticks may both pass this check and both be recorded,
            // which changes nothing but the history.
            let sql = format!(
                "SELECT {TICK_COLUMNS} FROM checklist_ticks \
                 WHERE service = $1 AND environment = $2 AND item = $3 \
                 AND COALESCE(release_label, '') = $4 ORDER BY id DESC LIMIT 1"
            );
            let newest = sqlx::query(&sql)
                .bind(&place.service)
                .bind(&place.environment)
                .bind(&place.item)
                .bind(place.release.as_deref().unwrap_or(""))
                .fetch_optional(&mut *tx)
                .await?;
            let ticked = match newest {
                Some(row) => decode_tick(&row)?.action == TickAction::Tick,
                None => false,
            };
            if !ticked {
                let whose = match &place.release {
                    Some(release) => format!(" for {release}"),
                    None => String::new(),
                };
                return Err(StoreError::Invalid {
                    message: format!(
                        "`{}` is not ticked{whose} for {} in {}",
                        place.item, place.service, place.environment
                    ),
                    hint: format!(
                        "see the checklist with `slipway checklist {} --env {}`",
                        place.service, place.environment
                    ),
                });
            }
        }
        let (evidence_kind, evidence) = match &record.evidence {
            Some(Evidence::Link(text)) => (Some("link"), Some(text.as_str())),
            Some(Evidence::Note(text)) => (Some("note"), Some(text.as_str())),
            None => (None, None),
        };
        let row = sqlx::query(
            "INSERT INTO checklist_ticks (service, environment, release_label, item, action, \
             by_user, role, evidence_kind, evidence, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(&place.service)
        .bind(&place.environment)
        .bind(place.release.as_deref())
        .bind(&place.item)
        .bind(variant_name(&record.action))
        .bind(&record.by)
        .bind(variant_name(&record.role))
        .bind(evidence_kind)
        .bind(evidence)
        .bind(record.at.as_millis())
        .fetch_one(&mut *tx)
        .await?;
        record.id = row.try_get("id")?;
        let mut payload = json!({
            "service": place.service,
            "environment": place.environment,
            "release": place.release,
            "item": place.item,
            "by": record.by,
            "role": record.role,
        });
        match (&record.action, &record.evidence) {
            (TickAction::Tick, Some(evidence)) => payload["evidence"] = json!(evidence),
            (TickAction::Untick, Some(reason)) => payload["reason"] = json!(reason.text()),
            _ => {}
        }
        self.append(&mut tx, &[event(kind, payload)], record.at)
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The ticks in force for `service` in `environment`: standing ones, and those of `release`
    /// when given. An item unticked since its last tick has none.
    pub async fn checklist_ticks(
        &self,
        service: &str,
        environment: &str,
        release: Option<&str>,
    ) -> Result<Vec<Tick>, StoreError> {
        let sql = format!(
            "SELECT {TICK_COLUMNS} FROM checklist_ticks \
             WHERE service = $1 AND environment = $2 \
             AND (release_label IS NULL OR release_label = $3) ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(service)
            .bind(environment)
            .bind(release.unwrap_or(""))
            .fetch_all(&self.read)
            .await?;
        // The newest row of each (item, release) decides; rows come oldest first.
        let mut newest: Vec<TickRecord> = Vec::new();
        for row in &rows {
            let record = decode_tick(row)?;
            newest.retain(|r| {
                r.place.item != record.place.item || r.place.release != record.place.release
            });
            newest.push(record);
        }
        Ok(newest.iter().filter_map(TickRecord::as_tick).collect())
    }

    /// Every tick and untick of `service` in `environment`, oldest first.
    pub async fn checklist_history(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Vec<TickRecord>, StoreError> {
        let sql = format!(
            "SELECT {TICK_COLUMNS} FROM checklist_ticks \
             WHERE service = $1 AND environment = $2 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(service)
            .bind(environment)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(decode_tick).collect()
    }
}
