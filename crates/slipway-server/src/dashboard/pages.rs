//! The dashboard's pages. Each reads the store (or calls the API's own handler) and renders;
//! none changes anything.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use slipway_core::deploy::{DeployId, Role};
use slipway_store::{DeployQuery, StoredDeploy};

use super::charts::{self, show_value};
use super::render::{PageError, PageResult, page, respond, state_word, when};
use super::session::{Viewer, percent_encode};
use crate::AppState;
use crate::error::ApiError;
use crate::routes::{config, schedule};
use crate::views::{DeployView, ScheduleView};

/// How many deploys the overview lists, and how many the live fingerprint covers.
const RECENT: i64 = 20;

/// `?done=` after an action, shown as a notice.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    done: Option<String>,
}

fn notice(notice: &Notice) -> Markup {
    let text = match notice.done.as_deref() {
        Some("approve") => "Your approval was recorded.",
        Some("go") => "Your go was recorded.",
        Some("confirm") => "Scale-in confirmed.",
        Some("abort") => "The deploy is being aborted.",
        Some("rollback") => "The rollback was started.",
        Some("break-glass") => "Break-glass confirmed.",
        Some("config") => "The config version was approved.",
        Some("pending") => "Recorded; the engine has not applied it yet.",
        _ => return html! {},
    };
    html! { p.flash role="status" { "✓ " (text) } }
}

/// A fingerprint of the newest deploys and their revisions: the overview's stream reports a
/// change when it differs.
pub(crate) async fn deploys_fingerprint(state: &AppState) -> Result<String, PageError> {
    Ok(fingerprint_of(&recent_deploys(state).await?))
}

/// The newest deploys, as the overview lists them.
async fn recent_deploys(state: &AppState) -> Result<Vec<StoredDeploy>, PageError> {
    let query = DeployQuery {
        service: None,
        environment: None,
        before: None,
        limit: RECENT,
    };
    Ok(state.store.list_deploys(&query).await?)
}

/// The fingerprint of `deploys` (see [`deploys_fingerprint`]).
fn fingerprint_of(deploys: &[StoredDeploy]) -> String {
    let mut hash = Sha256::new();
    for stored in deploys {
        hash.update(stored.deploy.spec.id.0.to_be_bytes());
        hash.update(stored.revision.to_be_bytes());
    }
    hex::encode(&hash.finalize()[..12])
}

/// The refusal for a deploy id that names no deploy (`hint` says where to look instead).
pub(crate) fn no_deploy(id: impl std::fmt::Display, hint: &str) -> ApiError {
    ApiError::not_found(format!("there is no deploy {id}")).with_hint(hint.to_owned())
}

/// [`no_deploy`] with the usual hint.
pub(crate) fn no_such_deploy(id: impl std::fmt::Display) -> ApiError {
    no_deploy(id, "the overview at / lists the latest deploys")
}

/// `GET /`: services × environments, what runs where, and the latest deploys.
pub(crate) async fn overview(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(done): Query<Notice>,
) -> PageResult {
    let now = state.clock.now();
    // The unfinished deploys in one read, the oldest of each place kept (as `active_deploy`).
    let mut unfinished: BTreeMap<(String, String), StoredDeploy> = BTreeMap::new();
    for stored in state.store.unfinished_deploys().await? {
        let spec = &stored.deploy.spec;
        unfinished
            .entry((spec.service.clone(), spec.environment.clone()))
            .or_insert(stored);
    }
    let mut cells = BTreeMap::new();
    for service in &state.config.services {
        for environment in &state.config.environments {
            let running = state
                .store
                .current_release(&service.name, &environment.name)
                .await?;
            let active = unfinished.remove(&(service.name.clone(), environment.name.clone()));
            cells.insert(
                (service.name.clone(), environment.name.clone()),
                (running, active),
            );
        }
    }
    let recent = recent_deploys(&state).await?;
    let fingerprint = fingerprint_of(&recent);
    let body = html! {
        (notice(&done))
        div #live {
            table #placements {
                caption { "What runs where" }
                thead { tr {
                    th scope="col" { "Service" }
                    @for environment in &state.config.environments {
                        th scope="col" { (environment.name) @if environment.policy.protected { " (protected)" } }
                    }
                } }
                tbody {
                    @for service in &state.config.services {
                        tr {
                            th scope="row" { (service.name) }
                            @for environment in &state.config.environments {
                                td {
                                    @if let Some((running, active)) = cells.get(&(service.name.clone(), environment.name.clone())) {
                                        (placement(running.as_ref(), active.as_ref(), now))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Latest deploys" }
            @if recent.is_empty() {
                p.muted { "No deploy yet. Start one with " code { "slipway deploy SERVICE --env ENV" } "." }
            } @else {
                (deploy_table(&recent, now))
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(
            "What runs where",
            Some(&viewer),
            Some(&format!("/events?since={fingerprint}")),
            body,
        ),
    ))
}

fn placement(
    running: Option<&StoredDeploy>,
    active: Option<&StoredDeploy>,
    now: slipway_core::time::Time,
) -> Markup {
    html! {
        @if let Some(running) = running {
            @let spec = &running.deploy.spec;
            strong { (spec.release.label) } " · " (spec.release.version)
            @if let Some(ending) = &running.deploy.progress.ending {
                br; span.muted { "since " (when(ending.at)) }
            }
        } @else {
            span.muted { "— nothing deployed" }
        }
        @if let Some(active) = active {
            @let view = DeployView::new(&active.deploy, now);
            br;
            a href={ "/deploys/" (view.id) } { "deploy " (view.id) } ": " (view.release.label) " "
            (phase_words(&view))
        }
    }
}

/// A deploy's phase in words: `▶ running surge`, `◔ waiting for approval (0 of 1)`.
fn phase_words(view: &DeployView) -> Markup {
    let phase = &view.phase;
    html! {
        @match phase.state.as_str() {
            "finished" => (state_word(phase.result.as_deref().unwrap_or("finished"))),
            "waiting" => {
                (state_word("waiting")) " for "
                (phase.waiting_for.as_deref().unwrap_or("").replace('_', " "))
                @if let Some(count) = &phase.approvals { " (" (count.have) " of " (count.need) ")" }
                @if let Some(step) = &phase.step { " at " (step) }
            }
            "rolling_back" => (state_word("rolling_back")),
            _ => { (state_word("running")) " " (phase.step.as_deref().unwrap_or("")) }
        }
    }
}

fn deploy_table(deploys: &[StoredDeploy], now: slipway_core::time::Time) -> Markup {
    html! {
        table #deploys {
            caption { "Deploys, newest first" }
            thead { tr {
                th scope="col" { "Deploy" } th scope="col" { "Service" } th scope="col" { "Environment" }
                th scope="col" { "Release" } th scope="col" { "Requested by" } th scope="col" { "State" }
            } }
            tbody {
                @for stored in deploys {
                    @let view = DeployView::new(&stored.deploy, now);
                    tr {
                        td { a href={ "/deploys/" (view.id) } { "#" (view.id) } @if view.purpose == "rollback" { " (rollback)" } }
                        td { (view.service) }
                        td { (view.environment) }
                        td { (view.release.label) " · " (view.release.version) }
                        td { (view.requested_by) " at " (when(stored.deploy.spec.requested_at)) }
                        td { (phase_words(&view)) }
                    }
                }
            }
        }
    }
}

/// `GET /deploys/{id}`: the plan, the current step, actions, traffic and check charts, and the
/// timeline.
pub(crate) async fn deploy(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(done): Query<Notice>,
) -> PageResult {
    let id = id
        .parse::<i64>()
        .map_err(|_| no_deploy(&id, "deploy ids are numbers; the overview lists the latest"))?;
    let stored = state
        .store
        .deploy(DeployId(id))
        .await?
        .ok_or_else(|| no_such_deploy(id))?;
    let events = all_events(&state, DeployId(id)).await?;
    let last_seq = events.last().map_or(0, |e| e.seq);
    let now = state.clock.now();
    let view = DeployView::new(&stored.deploy, now);
    let roll_back_finished = stored.deploy.is_finished()
        && super::actions::finished_rollback_target(&state, &stored)
            .await
            .is_ok();
    let title = format!(
        "{}: {} {} — deploy {}",
        view.environment.to_uppercase(),
        view.service,
        view.release.label,
        view.id
    );
    let end = stored
        .deploy
        .progress
        .ending
        .as_ref()
        .map_or(now, |e| e.at)
        .max(events.last().map_or(now, |e| e.at));
    let traffic = charts::traffic(&stored.deploy, &events);
    let series = charts::measurements(&events);
    let old_label = view
        .previous
        .as_ref()
        .map_or("no earlier release".to_owned(), |p| p.label.clone());
    let body = html! {
        (notice(&done))
        div #live {
            p #phase { "State: " (phase_words(&view)) }
            @if let Some(reason) = &view.end_reason { p { "Why: " (reason) } }
            @if let Some(reason) = &view.phase.reason { p { "Why: " (reason) } }
            (actions(&viewer, &view, true, roll_back_finished))
            dl.facts {
                dt { "Service" } dd { (view.service) }
                dt { "Environment" } dd { (view.environment) }
                dt { "Release" } dd { (view.release.label) " · version " (view.release.version)
                    @if let Some(commit) = &view.commit { " · commit " code { (commit) } }
                    @if let Some(config) = view.release.config_version { " · config version " (config) } }
                dt { "Replaces" } dd { @if let Some(previous) = &view.previous { (previous.label) " · " (previous.version) } @else { "nothing" } }
                dt { "Kind" } dd { (view.purpose) ", " (view.kind) }
                dt { "Requested" } dd { "by " (view.requested_by) " at " (when(stored.deploy.spec.requested_at)) }
                @if let Some(reason) = &view.reason { dt { "Reason" } dd { (reason) } }
                @if let Some(announcement) = &view.go_announcement { dt { "Go/no-go" } dd { (announcement) } }
                dt { "Approvals" } dd {
                    @if view.approvals.is_empty() { "none" }
                    @for approval in &view.approvals { (approval.by) " at " (approval.at) @if let Some(exp) = &approval.expires_at { " (until " (exp) ")" } br; }
                }
                @if let Some(go) = &view.go { dt { "Go" } dd { "by " (go.by) " at " (go.at) } }
                dt { "Artifact" } dd { code { (view.binding.artifact) } }
            }
            h2 { "Plan" }
            table #plan {
                caption { "Steps in order; the current one is marked" }
                thead { tr { th scope="col" { "#" } th scope="col" { "Step" } th scope="col" { "What it does" } th scope="col" { "Status" } } }
                tbody {
                    @for step in &view.steps {
                        tr aria-current=[(step.status == "current").then_some("step")] {
                            td { (step.index + 1) }
                            td { (step.name) @if let Some(region) = &step.region { " (" (region) ")" } }
                            td { (step.summary) }
                            td { (state_word(&step.status)) }
                        }
                    }
                }
            }
            h2 { "Traffic split" }
            @for (index, series) in traffic.iter().enumerate() {
                @let single = traffic.len() == 1;
                @let (chart_id, table_id) = if single {
                    ("traffic-chart".to_owned(), "traffic".to_owned())
                } else {
                    (format!("traffic-chart-{index}"), format!("traffic-{index}"))
                };
                @let region = series.region.as_deref();
                @if !single { h3 { "Region " (region.unwrap_or("(all)")) } }
                (charts::traffic_chart(&chart_id, region.filter(|_| !single), &series.points, (&view.release.label, &old_label), end))
                table id=(table_id) {
                    caption {
                        "Share of traffic over time"
                        @if !single { " in " (region.unwrap_or("every region")) }
                    }
                    thead { tr { th scope="col" { "From" } th scope="col" { "Set by" } th scope="col" { (view.release.label) } th scope="col" { (old_label) } } }
                    tbody { @for point in &series.points { tr {
                        td { (when(point.at)) } td { (point.step) }
                        td { (format!("{:.0}%", point.new_percent)) } td { (format!("{:.0}%", 100.0 - point.new_percent)) }
                    } } }
                }
            }
            h2 { "Checks" }
            @if let Some(check) = &view.check {
                p { "Latest check at " (check.at) ": " (state_word(&check.verdict))
                    @if let Some(score) = check.score { " · score " (format!("{score:.0}")) }
                    " · " (check.detail) }
            }
            @if series.is_empty() {
                p.muted { "No measurement yet." }
            }
            @for (index, (name, points)) in series.iter().enumerate() {
                h3 { (name) }
                (charts::measurement_chart(index, name, points, (stored.deploy.spec.requested_at, end)))
                table.checks {
                    caption { "Measurements of " (name) }
                    thead { tr { th scope="col" { "At" } th scope="col" { "Value" } th scope="col" { "Limit" } th scope="col" { "Outcome" } th scope="col" { "Detail" } } }
                    tbody { @for point in points { @let m = &point.measurement; tr {
                        td { (when(point.at)) }
                        td { @if let Some(value) = m.value { (show_value(value, m.unit)) } @else { "no data" } }
                        td { (m.limit.as_deref().unwrap_or("—")) }
                        td { (state_word(&crate::views::enum_name(&m.outcome))) }
                        td { (m.describe()) }
                    } } }
                }
            }
            h2 { "Timeline" }
            table #timeline {
                caption { "Everything recorded for this deploy, oldest first" }
                thead { tr { th scope="col" { "#" } th scope="col" { "At" } th scope="col" { "Event" } th scope="col" { "Details" } } }
                tbody { @for event in &events { tr {
                    td { (event.seq) } td { (when(event.at)) } td { (event.kind.replace('_', " ")) }
                    td { code { (event_details(&event.payload)) } }
                } } }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(
            &title,
            Some(&viewer),
            Some(&format!("/events?deploy={id}&after={last_seq}")),
            body,
        ),
    ))
}

/// How many events the deploy page reads at a time.
const EVENT_PAGE: i64 = 5000;

/// Every event of deploy `id`, oldest first: the charts need all of them, and the live stream
/// must start after the newest.
async fn all_events(
    state: &AppState,
    id: DeployId,
) -> Result<Vec<slipway_store::StoredEvent>, ApiError> {
    Ok(state.store.all_deploy_events(id, EVENT_PAGE).await?)
}

/// An event's facts in one line, without its type tag.
fn event_details(payload: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.remove("type");
            fields
                .iter()
                .map(|(key, value)| match value {
                    serde_json::Value::String(text) => format!("{key}={text}"),
                    other => format!("{key}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => payload.to_owned(),
    }
}

/// The forms for what can be done to the deploy now (with `undo`, abort and rollback too; the
/// list of what waits for me offers only what a person is waited for). The server decides
/// whether the viewer may; the page offers what the deploy's state allows. Ids carry the
/// deploy's, so a page listing several deploys has each once. A finished deploy offers its
/// rollback only when `roll_back_finished` (see `actions::finished_rollback_target`).
fn actions(viewer: &Viewer, view: &DeployView, undo: bool, roll_back_finished: bool) -> Markup {
    let id = view.id;
    let finished = view.phase.state == "finished";
    let waiting = view.phase.waiting_for.as_deref();
    let button = |action: &str, label: &str| {
        html! {
            form.action method="post" action={ "/deploys/" (id) "/" (action) } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                @if action == "approve" {
                    input type="hidden" name="artifact" value=(view.binding.artifact);
                    input type="hidden" name="config" value=(view.binding.config);
                    input type="hidden" name="plan" value=(view.binding.plan);
                }
                button type="submit" id={ "action-" (action) "-" (id) } { (label) }
            }
        }
    };
    let with_reason = |action: &str, label: &str| {
        html! {
            form.action method="post" action={ "/deploys/" (id) "/" (action) } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label for={ "reason-" (action) "-" (id) } { "Reason" }
                input type="text" name="reason" id={ "reason-" (action) "-" (id) } required;
                button type="submit" id={ "action-" (action) "-" (id) } { (label) }
            }
        }
    };
    if viewer.caller.user.role < Role::Deployer {
        return html! {
            p #actions.muted { "As a " (viewer.caller.user.role.name()) " you can follow this deploy; acting on it needs the deployer role." }
        };
    }
    html! {
        section aria-label="Actions" #actions {
            @match waiting {
                Some("approval") => (button("approve", "Approve")),
                Some("go") => (button("go", "Go")),
                Some("scale_in_confirmation") => (button("confirm", "Confirm scale-in")),
                Some("break_glass") => (button("break-glass", "Confirm break-glass")),
                _ => {}
            }
            @if undo && !finished && view.phase.state != "rolling_back" {
                (with_reason("rollback", "Roll back"))
                (with_reason("abort", "Abort"))
            }
            @if undo && finished && roll_back_finished {
                (with_reason("rollback", "Roll back to the release before"))
            }
        }
    }
}

/// `GET /approvals`: approvals, go/no-go and confirmations waiting for the viewer, and config
/// versions awaiting their review.
pub(crate) async fn approvals(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(done): Query<Notice>,
) -> PageResult {
    let now = state.clock.now();
    let me = viewer.name().to_owned();
    let mut waiting = Vec::new();
    for stored in state.store.unfinished_deploys().await? {
        let deploy = &stored.deploy;
        // Only what the viewer can give, by the rules the action itself is checked by.
        let mine = crate::routes::deploys::can_answer(deploy, &viewer.caller, now);
        if mine {
            waiting.push(DeployView::new(deploy, now));
        }
    }
    // Config versions wait for the viewer only if they may review them: an approver who did
    // not write the version.
    let reviews = if config::may_approve_version(&viewer.caller, None).is_ok() {
        config_awaiting(&state, Some(&me)).await?
    } else {
        Vec::new()
    };
    let fingerprint = deploys_fingerprint(&state).await?;
    let body = html! {
        (notice(&done))
        div #live {
            h2 { "Deploys" }
            @if waiting.is_empty() {
                p #nothing-waiting { "✓ Nothing waits for you." }
            } @else {
                table #waiting {
                    caption { "Deploys waiting for a person" }
                    thead { tr { th scope="col" { "Deploy" } th scope="col" { "What" } th scope="col" { "Waiting for" } th scope="col" { "Requested by" } th scope="col" { "Act" } } }
                    tbody { @for view in &waiting { tr {
                        td { a href={ "/deploys/" (view.id) } { "#" (view.id) } }
                        td { (view.environment.to_uppercase()) ": " (view.service) " " (view.release.label) }
                        td { (phase_words(view)) }
                        td { (view.requested_by) }
                        td { (actions(&viewer, view, false, false)) }
                    } } }
                }
            }
            h2 { "Config versions" }
            @if reviews.is_empty() {
                p { "✓ No config version waits for your review." }
            } @else {
                ul { @for (service, environment, version, _) in &reviews {
                    li { a href={ "/config#" (service) "-" (environment) "-" (version) } { (environment.to_uppercase()) ": " (service) " config version " (version) } }
                } }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(
            "Waiting for me",
            Some(&viewer),
            Some(&format!("/events?since={fingerprint}")),
            body,
        ),
    ))
}

/// Config versions of protected environments awaiting review (not written by `not_by`).
async fn config_awaiting(
    state: &AppState,
    not_by: Option<&str>,
) -> Result<Vec<(String, String, u64, String)>, PageError> {
    let mut found = Vec::new();
    for service in &state.config.services {
        for environment in state
            .config
            .environments
            .iter()
            .filter(|e| e.policy.protected)
        {
            for record in state
                .store
                .config_versions(&service.name, &environment.name)
                .await?
            {
                if !record.reviewed() && not_by != Some(record.created_by.as_str()) {
                    found.push((
                        service.name.clone(),
                        environment.name.clone(),
                        record.number,
                        record.created_by.clone(),
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// `GET /config`: config versions awaiting review, each with its changes (secrets by
/// fingerprint only, as the API shows them) and an approve button.
pub(crate) async fn config_reviews(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(done): Query<Notice>,
) -> PageResult {
    let reviews = config_awaiting(&state, None).await?;
    let mut shown = Vec::new();
    if state.vault.is_some() {
        for (service, environment, version, author) in &reviews {
            let params = serde_json::from_value(serde_json::json!({ "to": version }))
                .map_err(|e| ApiError::internal(&e))?;
            let axum::Json(diff) = config::diff_versions(
                State(state.clone()),
                viewer.caller.clone(),
                crate::extract::Path((service.clone(), environment.clone())),
                crate::extract::Query(params),
            )
            .await?;
            let refusal = config::may_approve_version(&viewer.caller, Some(author)).err();
            shown.push((
                service,
                environment,
                *version,
                diff.from,
                diff.changes,
                diff.findings,
                refusal,
            ));
        }
    }
    let body = html! {
        (notice(&done))
        @if state.vault.is_none() {
            p { "This server has no master key, so it keeps no config versions. " code { "docs/config.md" } " says how to configure one." }
        } @else if shown.is_empty() {
            p #nothing-to-review { "✓ No config version waits for review." }
        }
        @for (service, environment, version, from, changes, findings, refusal) in &shown {
            section id={ (service) "-" (environment) "-" (version) } {
                h2 { (environment.to_uppercase()) ": " (service) " config version " (version) }
                p { @if let Some(from) = from { "Changes from version " (from) } @else { "All keys (no version before)" } }
                table.changes {
                    caption { "Changed keys; secrets appear only as fingerprints" }
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody { @for change in changes { tr {
                        td { code { (change.key) } }
                        td { @if let Some(before) = &change.before { (before.to_string()) } @else { "(absent)" } }
                        td { @if let Some(after) = &change.after { (after.to_string()) } @else { "(removed)" } }
                    } } }
                }
                @if !findings.is_empty() {
                    div.error role="alert" { p { strong { "✗ It breaks the rules:" } }
                        ul { @for finding in findings { li { code { (finding.key) } ": " (finding.message) " — hint: " (finding.hint) } } } }
                }
                @if let Some(refusal) = refusal {
                    p.muted { (refusal.message) }
                } @else {
                    form.action method="post" action={ "/config/" (service) "/" (environment) "/versions/" (version) "/approve" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" { "Approve version " (version) }
                    }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page("Config to review", Some(&viewer), None, body),
    ))
}

/// `?service=&environment=` of the schedule and runbook pages.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Place {
    service: Option<String>,
    environment: Option<String>,
}

fn place_form(state: &AppState, action: &str, place: &Place, any_environment: bool) -> Markup {
    html! {
        form.filters method="get" action=(action) {
            div {
                label for="service" { "Service" }
                select #service name="service" {
                    @for service in &state.config.services {
                        option value=(service.name) selected[place.service.as_deref() == Some(service.name.as_str())] { (service.name) }
                    }
                }
            }
            div {
                label for="environment" { "Environment" }
                select #environment name="environment" {
                    @if any_environment { option value="" { "every environment" } }
                    @for environment in &state.config.environments {
                        option value=(environment.name) selected[place.environment.as_deref() == Some(environment.name.as_str())] { (environment.name) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

/// `GET /schedule`: for one service, each environment's schedule: open now or why not, the
/// next slots, freezes and holidays coming up.
pub(crate) async fn schedule(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(place): Query<Place>,
) -> PageResult {
    let Some(service) = place
        .service
        .clone()
        .or_else(|| state.config.services.first().map(|s| s.name.clone()))
    else {
        return Ok(empty_config(&viewer, "Schedule"));
    };
    let environments: Vec<String> = match place.environment.as_deref().filter(|e| !e.is_empty()) {
        Some(one) => vec![one.to_owned()],
        None => state
            .config
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect(),
    };
    let mut views: Vec<ScheduleView> = Vec::new();
    for environment in environments {
        let params = serde_json::from_value(
            serde_json::json!({ "service": service, "environment": environment }),
        )
        .map_err(|e| ApiError::internal(&e))?;
        let axum::Json(view) = schedule::get_schedule(
            State(state.clone()),
            viewer.caller.clone(),
            crate::extract::Query(params),
        )
        .await?;
        views.push(view);
    }
    let shown_place = Place {
        service: Some(service.clone()),
        environment: place.environment.clone(),
    };
    let body = html! {
        (place_form(&state, "/schedule", &shown_place, true))
        @for view in &views {
            section {
                h2 { (view.environment.to_uppercase()) " for " (view.service) }
                p { (state_word(if view.open { "open" } else { "closed" })) " now (" (view.now) ", time zone " (view.time_zone) ")" }
                @if !view.reasons.is_empty() {
                    ul { @for reason in &view.reasons { li { (reason.rule) ": " (reason.message) } } }
                }
                p { "Windows: " @if view.windows.is_empty() { "any time" } @else { (view.windows.join("; ")) } }
                @if let Some(next) = &view.next_slot { p { "Next slot: " (next.start_local) @if let Some(end) = &next.end_local { " until " (end) } } }
                table {
                    caption { "Slots of the coming days" }
                    thead { tr { th scope="col" { "From" } th scope="col" { "Until" } } }
                    tbody { @for slot in &view.slots { tr { td { (slot.start_local) } td { (slot.end_local.as_deref().unwrap_or("later")) } } } }
                }
                table {
                    caption { "Freezes, holidays and staffing coming up" }
                    thead { tr { th scope="col" { "Rule" } th scope="col" { "What" } th scope="col" { "From" } th scope="col" { "Until" } } }
                    tbody {
                        @if view.closures.is_empty() { tr { td colspan="4" { "none" } } }
                        @for closure in &view.closures { tr { td { (closure.rule) } td { (closure.message) } td { (closure.start_local) } td { (closure.end_local) } } }
                    }
                }
                @if let Some(staffing) = &view.staffing {
                    p { "Out now: " @if staffing.out.is_empty() { "nobody" } @else { (staffing.out.join(", ")) } " (at most " (staffing.max_out) ")" }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page("Schedule", Some(&viewer), None, body),
    ))
}

fn empty_config(viewer: &Viewer, title: &str) -> Response {
    respond(
        StatusCode::OK,
        page(
            title,
            Some(viewer),
            None,
            html! { p { "slipway.toml names no service yet." } },
        ),
    )
}

/// `GET /runbook`: a service's runbook, rendered from the configuration.
pub(crate) async fn runbook(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(place): Query<Place>,
) -> PageResult {
    let Some(service) = place
        .service
        .clone()
        .or_else(|| state.config.services.first().map(|s| s.name.clone()))
    else {
        return Ok(empty_config(&viewer, "Runbook"));
    };
    let environment = place.environment.clone().filter(|e| !e.is_empty());
    let markdown = slipway_core::runbook::render(&state.config, &service, environment.as_deref())
        .map_err(|error| ApiError::not_found(error.message).with_hint(error.hint))?;
    let shown_place = Place {
        service: Some(service),
        environment,
    };
    let body = html! {
        (place_form(&state, "/runbook", &shown_place, true))
        article #runbook { (markdown_to_html(&markdown)) }
    };
    Ok(respond(
        StatusCode::OK,
        page("Runbook", Some(&viewer), None, body),
    ))
}

/// The Markdown the runbook is written in, as HTML: headings, lists, code blocks and
/// paragraphs; `code` spans. Everything else stays text (and is escaped).
fn markdown_to_html(markdown: &str) -> Markup {
    enum Block {
        Paragraph(String),
        List(Vec<String>),
        Code(String),
    }
    let mut blocks: Vec<(u8, Block)> = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            if in_code {
                blocks.push((0, Block::Code(String::new())));
            }
            continue;
        }
        if in_code {
            if let Some((_, Block::Code(code))) = blocks.last_mut() {
                code.push_str(line);
                code.push('\n');
            }
            continue;
        }
        let trimmed = line.trim();
        let level = trimmed.bytes().take_while(|b| *b == b'#').count();
        if (1..=4).contains(&level) && trimmed.as_bytes().get(level) == Some(&b' ') {
            let level = u8::try_from(level + 1).unwrap_or(5).min(5);
            blocks.push((
                level,
                Block::Paragraph(trimmed[level as usize - 1..].trim().to_owned()),
            ));
        } else if let Some(item) = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "))
            .or_else(|| {
                let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
                (digits > 0)
                    .then(|| trimmed[digits..].strip_prefix(". "))
                    .flatten()
            })
        {
            match blocks.last_mut() {
                Some((0, Block::List(items))) => items.push(item.to_owned()),
                _ => blocks.push((0, Block::List(vec![item.to_owned()]))),
            }
        } else if trimmed.is_empty() {
            blocks.push((0, Block::Paragraph(String::new())));
        } else {
            match blocks.last_mut() {
                Some((0, Block::Paragraph(text))) if !text.is_empty() => {
                    text.push(' ');
                    text.push_str(trimmed);
                }
                Some((0, Block::List(items))) if line.starts_with("  ") => {
                    if let Some(last) = items.last_mut() {
                        last.push(' ');
                        last.push_str(trimmed);
                    }
                }
                _ => blocks.push((0, Block::Paragraph(trimmed.to_owned()))),
            }
        }
    }
    html! {
        @for (level, block) in &blocks {
            @match block {
                Block::Paragraph(text) if text.is_empty() => {}
                Block::Paragraph(text) => {
                    @match level {
                        2 => h2 { (inline(text)) },
                        3 => h3 { (inline(text)) },
                        4 => h4 { (inline(text)) },
                        5 => h5 { (inline(text)) },
                        _ => p { (inline(text)) },
                    }
                }
                Block::List(items) => ul { @for item in items { li { (inline(item)) } } },
                Block::Code(code) => pre { code { (code) } },
            }
        }
    }
}

/// `code` spans and `**strong**` of one line; the rest as text.
fn inline(text: &str) -> Markup {
    let text = text.replace("**", "");
    let parts: Vec<&str> = text.split('`').collect();
    html! {
        @for (index, part) in parts.iter().enumerate() {
            @if index % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// `?service=&environment=&actor=&kind=&after=` of the audit log.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditFilter {
    service: Option<String>,
    environment: Option<String>,
    actor: Option<String>,
    kind: Option<String>,
    /// Only events after this sequence number (the next page).
    after: Option<i64>,
}

/// How many events the audit page reads at once, and shows at most.
const AUDIT_PAGE: i64 = 500;

/// `GET /audit`: the event log in pages of [`AUDIT_PAGE`] events (the latest by default),
/// newest first, filtered by service, environment, actor and kind.
pub(crate) async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filter): Query<AuditFilter>,
) -> PageResult {
    // The latest page unless another is asked for.
    let last = state.store.last_event_seq().await?;
    let after = filter
        .after
        .unwrap_or(last - AUDIT_PAGE)
        .clamp(0, last.max(0));
    let events = state.store.events(None, after, AUDIT_PAGE).await?;
    let later = events.last().map(|e| e.seq).filter(|seq| *seq < last);
    let earlier = (after > 0).then(|| (after - AUDIT_PAGE).max(0));
    let wanted = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (service, environment, actor, kind) = (
        wanted(&filter.service),
        wanted(&filter.environment),
        wanted(&filter.actor),
        wanted(&filter.kind),
    );
    // A deploy's events name their service and environment only in its first event; the
    // deploys are read once each.
    let mut places: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut rows = Vec::new();
    for event in &events {
        let payload: serde_json::Value =
            serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
        let (event_service, event_environment) = match event.deploy {
            Some(id) => {
                if !places.contains_key(&id.0)
                    && let Some(stored) = state.store.deploy(id).await?
                {
                    places.insert(
                        id.0,
                        (
                            stored.deploy.spec.service.clone(),
                            stored.deploy.spec.environment.clone(),
                        ),
                    );
                }
                places.get(&id.0).cloned().unzip()
            }
            None => (
                payload["service"].as_str().map(str::to_owned),
                payload["environment"].as_str().map(str::to_owned),
            ),
        };
        let actors: Vec<&str> = ["by", "requested_by", "user", "actor", "created_by"]
            .iter()
            .filter_map(|field| payload[*field].as_str())
            .collect();
        let keep = service
            .as_ref()
            .is_none_or(|s| event_service.as_ref() == Some(s))
            && environment
                .as_ref()
                .is_none_or(|e| event_environment.as_ref() == Some(e))
            && actor.as_ref().is_none_or(|a| actors.contains(&a.as_str()))
            && kind.as_ref().is_none_or(|k| &event.kind == k);
        if keep {
            rows.push((event, event_service, event_environment, actors.join(", ")));
        }
    }
    rows.reverse();
    let link = |from: i64| {
        format!(
            "/audit?after={from}&service={}&environment={}&actor={}&kind={}",
            percent_encode(&service.clone().unwrap_or_default()),
            percent_encode(&environment.clone().unwrap_or_default()),
            percent_encode(&actor.clone().unwrap_or_default()),
            percent_encode(&kind.clone().unwrap_or_default()),
        )
    };
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let body = html! {
        form.filters method="get" action="/audit" {
            div { label for="f-service" { "Service" } input #f-service type="text" name="service" value=(text(&service)); }
            div { label for="f-environment" { "Environment" } input #f-environment type="text" name="environment" value=(text(&environment)); }
            div { label for="f-actor" { "Actor" } input #f-actor type="text" name="actor" value=(text(&actor)); }
            div { label for="f-kind" { "Kind" } input #f-kind type="text" name="kind" value=(text(&kind)) placeholder="approved, deploy_finished…"; }
            button type="submit" { "Filter" }
        }
        p.muted { "Events " (after + 1) " to " (after + events.len() as i64) " of " (last) ", newest first; "
            (rows.len()) " of them match. The log is hash-chained: " code { "slipway audit verify" } " checks it." }
        nav aria-label="Pages of the log" {
            @if let Some(from) = earlier { a href=(link(from)) { "Earlier events" } " " }
            @if let Some(from) = later { a href=(link(from)) { "Later events" } }
        }
        table #audit {
            caption { "Audit log" }
            thead { tr { th scope="col" { "#" } th scope="col" { "At" } th scope="col" { "Kind" } th scope="col" { "Deploy" } th scope="col" { "Where" } th scope="col" { "By" } th scope="col" { "Details" } } }
            tbody { @for (event, service, environment, actors) in &rows { tr {
                td { (event.seq) } td { (when(event.at)) } td { (event.kind) }
                td { @if let Some(id) = event.deploy { a href={ "/deploys/" (id.0) } { "#" (id.0) } } }
                td { (service.as_deref().unwrap_or("")) " " (environment.as_deref().unwrap_or("")) }
                td { (actors) }
                td { code { (event_details(&event.payload)) } }
            } } }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page("Audit log", Some(&viewer), None, body),
    ))
}
