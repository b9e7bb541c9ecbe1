//! Checklists: every prerequisite item of the deploy ticked, with evidence.
//!
//! The items come from the configuration the server runs with; the ticks from the store. A
//! per-release item must be ticked for the release being deployed; an item that must be ticked
//! by another engineer does not count when the requester ticked it. Rollback deploys skip
//! checklists: going back to what ran before must never wait for paperwork.

use async_trait::async_trait;
use slipway_core::checklist::{ChecklistItem, ItemStatus, Per, evaluate, items_for, tick_command};
use slipway_core::deploy::Deploy;
use slipway_core::plan::Purpose;
use slipway_core::time::Time;
use slipway_store::Store;

use crate::plugin::{PreflightCheck, Refusal};

/// The `checklist` preflight check.
pub struct ChecklistCheck {
    store: Store,
    /// `[[checklist]]` of the configuration, every item (each deploy picks those that apply).
    items: Vec<ChecklistItem>,
}

impl ChecklistCheck {
    pub fn new(store: Store, items: Vec<ChecklistItem>) -> Self {
        Self { store, items }
    }
}

#[async_trait]
impl PreflightCheck for ChecklistCheck {
    fn name(&self) -> &'static str {
        "checklist"
    }

    async fn check(&self, deploy: &Deploy, _now: Time) -> Result<String, Refusal> {
        let spec = &deploy.spec;
        let items = items_for(&self.items, &spec.service, &spec.environment);
        let place = format!("{} in {}", spec.service, spec.environment);
        if spec.purpose == Purpose::Rollback {
            return Ok(format!(
                "rollback: checklists are skipped ({} item(s) apply to {place})",
                items.len()
            ));
        }
        if items.is_empty() {
            return Ok(format!("no checklist items apply to {place}"));
        }
        let release = spec.release.label.as_str();
        let ticks = self
            .store
            .checklist_ticks(&spec.service, &spec.environment, Some(release))
            .await
            .map_err(|error| Refusal {
                message: format!("cannot read the checklist of {place}: {error}"),
                hint: "check the database, then deploy again".to_owned(),
                until: None,
                overridable: true,
            })?;
        let statuses = evaluate(&items, &ticks, Some(release), Some(&spec.requested_by));
        let missing: Vec<&ItemStatus<'_>> = statuses.iter().filter(|s| !s.is_done()).collect();
        if missing.is_empty() {
            let done: Vec<String> = statuses.iter().map(done_detail).collect();
            return Ok(format!(
                "checklist of {place} for {release} complete: {}",
                done.join("; ")
            ));
        }
        let listed: Vec<String> = missing
            .iter()
            .map(|status| {
                format!(
                    "`{}` ({}; {} may tick it)",
                    status.item.name,
                    status.missing.as_deref().unwrap_or("not done"),
                    status.item.who_may_tick()
                )
            })
            .collect();
        let commands: Vec<String> = missing
            .iter()
            .map(|status| {
                tick_command(status.item, &spec.service, &spec.environment, Some(release))
            })
            .collect();
        Err(Refusal {
            message: format!(
                "{} of {} checklist item(s) of {place} not done for {release}: {}",
                missing.len(),
                statuses.len(),
                listed.join(", ")
            ),
            hint: format!("tick them, then deploy again: {}", commands.join("; ")),
            until: None,
            overridable: true,
        })
    }
}

/// `agreement signed (RC 12): ticked by carol (approver) at …, link https://…`.
fn done_detail(status: &ItemStatus<'_>) -> String {
    let scope = match status.item.per {
        Per::Release => "",
        Per::Environment => " (standing)",
    };
    match status.tick {
        Some(tick) => format!(
            "`{}`{scope} ticked by {} ({}) at {}, {}",
            status.item.name,
            tick.by,
            tick.role.name(),
            tick.at,
            tick.evidence
        ),
        None => format!("`{}`{scope} done", status.item.name),
    }
}
