//! Checklists: the prerequisite items of a service in an environment with who ticked them, and
//! ticking and unticking them with evidence. Items come from `slipway.toml`; ticks from the
//! store.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use slipway_core::checklist::{ChecklistItem, Evidence, Per, evaluate, items_for};
use slipway_core::config::suggest::closest;
use slipway_core::config::{EnvironmentConfig, ServiceConfig};
use slipway_core::deploy::Role;
use slipway_store::{ItemPlace, TickAction, TickRecord};
use utoipa::IntoParams;

use super::catalog::{self, environment, find_release};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};
use crate::views::checklist::{
    ChecklistItemView, ChecklistView, TickBody, TickResultView, UntickBody,
};
use crate::views::timestamp;

/// `?environment=&release=` of a checklist.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChecklistParams {
    environment: String,
    /// `RC 12`, `12` or `12.1`; the newest release when absent.
    release: Option<String>,
}

/// The item of that name that applies to `service` in `environment`, or a 404 with the
/// closest name.
fn known_item<'a>(
    state: &'a AppState,
    service: &str,
    environment: &str,
    name: &str,
) -> ApiResult<&'a ChecklistItem> {
    let items = items_for(&state.config.checklist, service, environment);
    if let Some(item) = items.iter().find(|item| item.name == name) {
        return Ok(item);
    }
    let names: Vec<&str> = items.iter().map(|item| item.name.as_str()).collect();
    let hint = match closest(name, names.iter().copied()) {
        Some(near) => format!("did you mean `{near}`?"),
        None if names.is_empty() => format!(
            "no checklist item applies to {service} in {environment}; items are [[checklist]] \
             tables in slipway.toml"
        ),
        None => format!(
            "the items of {service} in {environment}: {}",
            names.join(", ")
        ),
    };
    Err(ApiError::not_found(format!(
        "{service} has no checklist item `{name}` in {environment}"
    ))
    .with_hint(hint))
}

/// 403 unless the caller's role may tick `item`.
/// The service, environment and item a tick or untick names, once the caller may change it.
fn item_to_change<'a>(
    state: &'a AppState,
    caller: &Caller,
    service: &str,
    environment_name: &str,
    item: &str,
    doing: &str,
) -> ApiResult<(&'a ServiceConfig, &'a EnvironmentConfig, &'a ChecklistItem)> {
    caller.require(Role::Deployer, &format!("{doing} a checklist item"))?;
    let service = catalog::service(state, service)?;
    let environment = environment(state, environment_name)?;
    let item = known_item(state, &service.name, &environment.name, item)?;
    require_tick_role(caller, item, doing)?;
    Ok((service, environment, item))
}

fn require_tick_role(caller: &Caller, item: &ChecklistItem, doing: &str) -> ApiResult<()> {
    if item.may_tick(caller.user.role) {
        return Ok(());
    }
    let suggested = item.roles.first().copied().unwrap_or(Role::Deployer);
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{} is a {}; {doing} `{}` needs the {} role",
            caller.user.name,
            caller.user.role.name(),
            item.name,
            item.roles_text()
        ),
    )
    .with_hint(format!(
        "ask {} to do it, or an admin to run `slipway user set-role {} {}`",
        item.who_may_tick(),
        caller.user.name,
        suggested.name()
    )))
}

/// The release label a tick of `item` is for: the release given for a per-release item (it
/// must exist), `None` for a standing one.
async fn tick_release(
    state: &AppState,
    service: &str,
    item: &ChecklistItem,
    given: Option<&str>,
) -> ApiResult<Option<String>> {
    if item.per == Per::Environment {
        return Ok(None);
    }
    let Some(text) = given else {
        let newest = state.store.latest_release(service).await?;
        let hint = match newest {
            Some(newest) => format!(
                "say which release, e.g. --release \"{}\" (the newest of {service})",
                newest.label
            ),
            None => format!(
                "{service} has no release yet: slipway release create {service} --version V"
            ),
        };
        return Err(ApiError::bad_request(
            "release_required",
            format!(
                "`{}` is ticked per release; no release was given",
                item.name
            ),
        )
        .with_hint(hint));
    };
    Ok(Some(find_release(state, service, text).await?.label))
}

fn result_view(record: &TickRecord) -> TickResultView {
    let (link, note) = match &record.evidence {
        Some(Evidence::Link(link)) => (Some(link.clone()), None),
        Some(Evidence::Note(note)) => (None, Some(note.clone())),
        None => (None, None),
    };
    TickResultView {
        action: match record.action {
            TickAction::Tick => "tick",
            TickAction::Untick => "untick",
        }
        .to_owned(),
        service: record.place.service.clone(),
        environment: record.place.environment.clone(),
        release: record.place.release.clone(),
        item: record.place.item.clone(),
        by: record.by.clone(),
        at: timestamp(record.at),
        link,
        note,
    }
}

/// The checklist items of a service in an environment, with who ticked each, when and with
/// what evidence, for a release (the newest when none is given).
#[utoipa::path(get, path = "/api/v1/services/{service}/checklist", tag = "checklists",
    params(("service" = String, Path), ChecklistParams),
    responses(
        (status = 200, body = ChecklistView),
        (status = 404, description = "Unknown service, environment or release", body = crate::error::ErrorBody)))]
pub(crate) async fn get_checklist(
    State(state): State<AppState>,
    _caller: Caller,
    Path(service): Path<String>,
    Query(params): Query<ChecklistParams>,
) -> ApiResult<Json<ChecklistView>> {
    let service = catalog::service(&state, &service)?;
    let environment = environment(&state, &params.environment)?;
    let release = match &params.release {
        Some(text) => Some(find_release(&state, &service.name, text).await?.label),
        None => state
            .store
            .latest_release(&service.name)
            .await?
            .map(|record| record.label),
    };
    let items = items_for(&state.config.checklist, &service.name, &environment.name);
    let ticks = state
        .store
        .checklist_ticks(&service.name, &environment.name, release.as_deref())
        .await?;
    let statuses = evaluate(&items, &ticks, release.as_deref(), None);
    Ok(Json(ChecklistView {
        service: service.name.clone(),
        environment: environment.name.clone(),
        complete: statuses.iter().all(|s| s.is_done()),
        items: statuses
            .iter()
            .map(|status| {
                ChecklistItemView::new(status, &service.name, &environment.name, release.as_deref())
            })
            .collect(),
        release,
    }))
}

/// Ticks a checklist item with evidence (a link or a note), as a role the item allows. Ticking
/// it again replaces the evidence; the earlier tick stays in the history.
#[utoipa::path(post, path = "/api/v1/services/{service}/checklist/tick", tag = "checklists",
    params(("service" = String, Path)),
    request_body = TickBody,
    responses(
        (status = 201, body = TickResultView),
        (status = 400, description = "Missing or unacceptable evidence, or no release for a per-release item", body = crate::error::ErrorBody),
        (status = 403, description = "The caller's role may not tick this item", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown service, environment, release or item", body = crate::error::ErrorBody)))]
pub(crate) async fn tick(
    State(state): State<AppState>,
    caller: Caller,
    Path(service): Path<String>,
    Body(body): Body<TickBody>,
) -> ApiResult<(StatusCode, Json<TickResultView>)> {
    let (service, environment, item) = item_to_change(
        &state,
        &caller,
        &service,
        &body.environment,
        &body.item,
        "ticking",
    )?;
    let evidence = match (body.link, body.note) {
        (Some(link), None) => Evidence::Link(link),
        (None, Some(note)) => Evidence::Note(note),
        (link, _) => {
            let message = match link {
                Some(_) => "give a link or a note as evidence, not both",
                None => "a tick needs evidence: a link or a note",
            };
            return Err(
                ApiError::bad_request("evidence_required", message).with_hint(format!(
                    "`{}` takes {}; pass {}",
                    item.name,
                    item.evidence.words(),
                    item.evidence.option()
                )),
            );
        }
    };
    item.check_evidence(&evidence).map_err(|refused| {
        ApiError::bad_request("invalid_evidence", refused.message).with_hint(refused.hint)
    })?;
    let release = tick_release(&state, &service.name, item, body.release.as_deref()).await?;
    let place = ItemPlace {
        service: service.name.clone(),
        environment: environment.name.clone(),
        release,
        item: item.name.clone(),
    };
    let record = state
        .store
        .tick_item(&place, &caller.actor(), &evidence, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(result_view(&record))))
}

/// Takes back the tick of a checklist item (the roles that may tick it may untick it). The
/// untick is recorded; nothing is deleted.
#[utoipa::path(post, path = "/api/v1/services/{service}/checklist/untick", tag = "checklists",
    params(("service" = String, Path)),
    request_body = UntickBody,
    responses(
        (status = 200, body = TickResultView),
        (status = 400, description = "The item is not ticked", body = crate::error::ErrorBody),
        (status = 403, description = "The caller's role may not untick this item", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown service, environment, release or item", body = crate::error::ErrorBody)))]
pub(crate) async fn untick(
    State(state): State<AppState>,
    caller: Caller,
    Path(service): Path<String>,
    Body(body): Body<UntickBody>,
) -> ApiResult<Json<TickResultView>> {
    let (service, environment, item) = item_to_change(
        &state,
        &caller,
        &service,
        &body.environment,
        &body.item,
        "unticking",
    )?;
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if let Some(reason) = &reason
        && reason.chars().count() > slipway_core::checklist::MAX_EVIDENCE_LENGTH
    {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "the reason is longer than 2000 characters",
        )
        .with_hint("say why in a sentence or two"));
    }
    let release = tick_release(&state, &service.name, item, body.release.as_deref()).await?;
    let place = ItemPlace {
        service: service.name.clone(),
        environment: environment.name.clone(),
        release,
        item: item.name.clone(),
    };
    let record = state
        .store
        .untick_item(
            &place,
            &caller.actor(),
            reason.as_deref(),
            state.clock.now(),
        )
        .await?;
    Ok(Json(result_view(&record)))
}
