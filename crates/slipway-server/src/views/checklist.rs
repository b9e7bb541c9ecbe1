//! The API's shapes for checklists: the items of a service and environment with their state,
//! and the bodies that tick and untick them.

use serde::{Deserialize, Serialize};
use slipway_core::checklist::{Evidence, ItemStatus, Tick, tick_command};
use utoipa::ToSchema;

use super::timestamp;

/// The checklist of a service in an environment, for one release.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistView {
    pub service: String,
    pub environment: String,
    /// The release per-release items are shown for: the one asked for, else the newest;
    /// absent when the service has no release yet.
    pub release: Option<String>,
    /// Whether every item is done (for the release).
    pub complete: bool,
    /// The items that apply, in file order.
    pub items: Vec<ChecklistItemView>,
}

/// One item and whether it is done.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistItemView {
    pub name: String,
    pub description: Option<String>,
    /// `release` (ticked again for each release) or `environment` (standing).
    pub per: String,
    /// Who may tick it, in words: `an approver or admin`.
    pub who_may_tick: String,
    /// The roles that may tick it.
    pub roles: Vec<String>,
    /// `link`, `note` or `any`.
    pub evidence: String,
    /// Whether the person requesting the deploy may not be the one who ticked it.
    pub different_from_requester: bool,
    pub done: bool,
    /// Why it is not done.
    pub missing: Option<String>,
    /// The tick in force, if any.
    pub tick: Option<TickView>,
    /// The command that ticks it.
    pub command: String,
}

/// Who ticked an item, when, and the evidence.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TickView {
    pub item: String,
    /// The release it was ticked for; absent for a standing item.
    pub release: Option<String>,
    pub by: String,
    /// The role they had then.
    pub role: String,
    pub at: String,
    pub link: Option<String>,
    pub note: Option<String>,
}

impl From<&Tick> for TickView {
    fn from(tick: &Tick) -> Self {
        let (link, note) = match &tick.evidence {
            Evidence::Link(link) => (Some(link.clone()), None),
            Evidence::Note(note) => (None, Some(note.clone())),
        };
        TickView {
            item: tick.item.clone(),
            release: tick.release.clone(),
            by: tick.by.clone(),
            role: tick.role.name().to_owned(),
            at: timestamp(tick.at),
            link,
            note,
        }
    }
}

impl ChecklistItemView {
    /// The view of `status` for `service` in `environment` (and `release`).
    pub fn new(
        status: &ItemStatus<'_>,
        service: &str,
        environment: &str,
        release: Option<&str>,
    ) -> Self {
        let item = status.item;
        ChecklistItemView {
            name: item.name.clone(),
            description: item.description.clone(),
            per: item.per.name().to_owned(),
            who_may_tick: item.who_may_tick(),
            roles: item.roles.iter().map(|r| r.name().to_owned()).collect(),
            evidence: item.evidence.name().to_owned(),
            different_from_requester: item.different_from_requester,
            done: status.is_done(),
            missing: status.missing.clone(),
            tick: status.tick.map(TickView::from),
            command: tick_command(item, service, environment, release),
        }
    }
}

/// Ticks an item: give exactly one of `link` and `note`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TickBody {
    pub environment: String,
    /// For a per-release item: `RC 12`, `12` or `12.1`. Ignored for a standing item.
    pub release: Option<String>,
    pub item: String,
    /// An http(s) link to the evidence.
    pub link: Option<String>,
    /// The evidence in words.
    pub note: Option<String>,
}

/// Takes a tick back; the untick is recorded, the tick stays in the history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UntickBody {
    pub environment: String,
    /// For a per-release item: `RC 12`, `12` or `12.1`.
    pub release: Option<String>,
    pub item: String,
    /// Why.
    pub reason: Option<String>,
}

/// What a tick or untick did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TickResultView {
    /// `tick` or `untick`.
    pub action: String,
    pub service: String,
    pub environment: String,
    pub release: Option<String>,
    pub item: String,
    pub by: String,
    pub at: String,
    pub link: Option<String>,
    /// The note of a tick, or the reason of an untick.
    pub note: Option<String>,
}
