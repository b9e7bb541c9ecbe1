//! The train's schedules (`[[service.source.schedule]]`, `docs/releases.md`): a task of
//! `slipway serve` that fires each schedule once per due time, through the same handlers a
//! person calls (a cut, a deploy that waits for its approvals like any other).
//!
//! Each schedule's cursor (the newest fire time handled) is in the store. A pass owes a
//! schedule the newest fire time in `(cursor, now]` — after downtime, only the newest missed
//! one, not every one. The action comes first and is idempotent (a cut of the same commit
//! returns the same release; a deploy carries the `Idempotency-Key` `schedule/KEY/DUE`), then
//! the fire is recorded with its outcome and audit event; a crash between the two repeats the
//! action harmlessly instead of losing it.

use std::future::Future;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use slipway_core::config::{ServiceConfig, TrainAction, TrainSchedule};
use slipway_core::cron::Cron;
use slipway_core::deploy::Role;
use slipway_core::time::{Span, Time};
use slipway_store::{Fence, Page, TrainKind, User};

use super::{catalog, deploys, trains};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Body, Path};
use crate::trains::{release_error, repo_path};

/// The user schedules act as, in deploys and the audit log.
pub const SCHEDULER_USER: &str = "scheduler";

/// Longest a scheduler sleeps between passes, so a changed clock or a missed wake-up costs at
/// most this.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// What one schedule did in a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    /// The schedule's key (`TrainSchedule::key`).
    pub schedule: String,
    pub due: Time,
    /// `{"result": …}` or `{"error": {"code", "message", "hint"}}`, as audited.
    pub outcome: Value,
}

/// Every schedule of the config with its service.
fn schedules(state: &AppState) -> Vec<(&ServiceConfig, &TrainSchedule)> {
    state
        .config
        .services
        .iter()
        .filter_map(|service| service.source.as_ref().map(|s| (service, s)))
        .flat_map(|(service, source)| source.train.schedules.iter().map(move |s| (service, s)))
        .collect()
}

/// A schedule with its cron expression and time zone parsed.
struct Parsed<'a> {
    service: &'a ServiceConfig,
    schedule: &'a TrainSchedule,
    cron: Cron,
    zone: TimeZone,
}

/// Every schedule, parsed once. One that does not parse (refused when the config was loaded,
/// so only a config built another way has one) is left out.
fn parsed(state: &AppState) -> Vec<Parsed<'_>> {
    schedules(state)
        .into_iter()
        .filter_map(|(service, schedule)| {
            Some(Parsed {
                service,
                schedule,
                cron: Cron::parse(&schedule.cron).ok()?,
                zone: TimeZone::get(&schedule.zone).ok()?,
            })
        })
        .collect()
}

/// One pass at `now`: fires every schedule that is due and records it. A fire already
/// recorded (by another server, or before a restart) is not repeated. It does not look at the
/// scheduler lease: [`SchedulerLease::fire_due_schedules`] does, and `run_schedules` uses that.
pub async fn fire_due_schedules(state: &AppState, now: Time) -> Vec<Fired> {
    fire_parsed(state, &parsed(state), now).await
}

async fn fire_parsed(state: &AppState, schedules: &[Parsed<'_>], now: Time) -> Vec<Fired> {
    let mut fired = Vec::new();
    for Parsed {
        service,
        schedule,
        cron,
        zone,
    } in schedules
    {
        let (service, schedule) = (*service, *schedule);
        let key = schedule.key(&service.name);
        let cursor = match state.store.schedule_cursor(&key, now).await {
            Ok(cursor) => cursor,
            Err(error) => {
                tracing::warn!(schedule = %key, %error, "cannot read the schedule's cursor");
                continue;
            }
        };
        let Some(due) = cron.latest_in(cursor, now, zone) else {
            continue;
        };
        let outcome = match act(state, service, schedule, &key, due).await {
            Ok(result) => json!({ "result": result }),
            // A failure of slipway itself (the database, git missing) is not the schedule's
            // answer: nothing is recorded and the next pass tries again, so one blip does
            // not skip a week's cut.
            Err(error) if error.status.is_server_error() => {
                tracing::warn!(schedule = %key, code = error.code, message = %error.message, "schedule failed; retried next pass");
                continue;
            }
            Err(error) => json!({
                "error": { "code": error.code, "message": error.message, "hint": error.hint }
            }),
        };
        match state
            .store
            .record_schedule_fire(&key, due, outcome.clone(), now)
            .await
        {
            Ok(true) => {
                tracing::info!(schedule = %key, due = %due.to_timestamp(), %outcome, "schedule fired");
                fired.push(Fired {
                    schedule: key,
                    due,
                    outcome,
                });
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(schedule = %key, %error, "cannot record the fire"),
        }
    }
    fired
}

/// When the next schedule fires after `now`, if any does.
pub fn next_fire(state: &AppState, now: Time) -> Option<Time> {
    next_fire_of(&parsed(state), now)
}

fn next_fire_of(schedules: &[Parsed<'_>], now: Time) -> Option<Time> {
    schedules
        .iter()
        .filter_map(|parsed| parsed.cron.next_after(now, &parsed.zone))
        .min()
}

/// The store lease the scheduler of one server holds, so that with several servers on one
/// database only one fires schedules.
pub const SCHEDULER_LEASE: &str = "scheduler";

/// How long a taken lease lasts without a pass renewing it: a few of the longest sleeps between
/// passes, so a holder that stopped without giving it up is replaced within two minutes.
const LEASE_TTL: Span = Span::from_secs(4 * MAX_SLEEP.as_secs());

/// One server's claim on the scheduler lease: fires only while it holds it.
#[derive(Debug)]
pub struct SchedulerLease {
    holder: String,
    fence: Option<Fence>,
}

impl SchedulerLease {
    /// A scheduler that acts as `holder` (the engine's `{hostname}-{pid}` in `slipway serve`).
    pub fn new(holder: impl Into<String>) -> Self {
        SchedulerLease {
            holder: holder.into(),
            fence: None,
        }
    }

    /// Whether the last pass held the lease.
    pub fn holds(&self) -> bool {
        self.fence.is_some()
    }

    /// Takes the lease, or renews it, at `now`. False when another server holds it, or when
    /// the store cannot say (then nothing fires: the holder, if any, still does).
    async fn hold(&mut self, state: &AppState, now: Time) -> bool {
        match state
            .store
            .acquire_lease(SCHEDULER_LEASE, &self.holder, LEASE_TTL, now)
            .await
        {
            Ok(fence) => {
                if fence.is_some() != self.fence.is_some() {
                    tracing::info!(holder = %self.holder, held = fence.is_some(), "scheduler lease changed");
                }
                self.fence = fence;
            }
            Err(error) => {
                tracing::warn!(holder = %self.holder, %error, "cannot take the scheduler lease");
                self.fence = None;
            }
        }
        self.fence.is_some()
    }

    /// One pass at `now` as [`fire_due_schedules`], after taking or renewing the lease; nothing
    /// fires when another server holds it.
    pub async fn fire_due_schedules(&mut self, state: &AppState, now: Time) -> Vec<Fired> {
        self.pass(state, &parsed(state), now).await
    }

    async fn pass(&mut self, state: &AppState, schedules: &[Parsed<'_>], now: Time) -> Vec<Fired> {
        if !self.hold(state, now).await {
            return Vec::new();
        }
        fire_parsed(state, schedules, now).await
    }

    /// Gives the lease up (at shutdown) so another server's scheduler takes over at its next
    /// pass instead of after the lease expires.
    pub async fn give_up(&mut self, state: &AppState) {
        if let Some(fence) = self.fence.take()
            && let Err(error) = state.store.release_lease(&fence).await
        {
            tracing::warn!(holder = %self.holder, %error, "cannot give the scheduler lease up");
        }
    }
}

/// Runs passes until `shutdown` completes: one now, then one at each next fire time (at least
/// every 30 s), firing only while this server, as `holder`, holds the scheduler lease; gives
/// the lease up on shutdown. Returns at once when the config has no schedule.
pub async fn run_schedules(state: AppState, holder: String, shutdown: impl Future<Output = ()>) {
    // The config does not change while the server runs: the schedules are parsed once.
    let schedules = parsed(&state);
    if schedules.is_empty() {
        return;
    }
    let mut lease = SchedulerLease::new(holder);
    tokio::pin!(shutdown);
    loop {
        let now = state.clock.now();
        lease.pass(&state, &schedules, now).await;
        let now = state.clock.now();
        let wait = next_fire_of(&schedules, now)
            .map(|next| Duration::from_millis(next.since(now).as_millis()))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    lease.give_up(&state).await;
}

/// Does what the schedule says, as the scheduler user; the outcome in a line.
async fn act(
    state: &AppState,
    service: &ServiceConfig,
    schedule: &TrainSchedule,
    key: &str,
    due: Time,
) -> Result<String, ApiError> {
    let caller = Caller {
        user: User {
            name: SCHEDULER_USER.to_owned(),
            role: Role::Deployer,
            created_at: due,
        },
    };
    let name = service.name.clone();
    match schedule.action {
        TrainAction::Cut => {
            let (_, answer) = trains::cut(
                State(state.clone()),
                caller,
                Path(name),
                Body(trains::CutBody::default()),
            )
            .await?;
            let train = answer.0;
            let label = train.release.map(|r| r.label).unwrap_or_default();
            Ok(if train.created {
                format!("cut {label} on {}", train.branch)
            } else {
                format!("{label} was already cut from this commit")
            })
        }
        TrainAction::Deploy => {
            let release = production_release(state, schedule, &name).await?;
            deploy(state, caller, schedule, key, due, &name, release).await
        }
        TrainAction::DeployArtifact => {
            let label = release_of_newest_artifact(state, &caller, service).await?;
            deploy(state, caller, schedule, key, due, &name, Some(label)).await
        }
    }
}

async fn deploy(
    state: &AppState,
    caller: Caller,
    schedule: &TrainSchedule,
    key: &str,
    due: Time,
    service: &str,
    release: Option<String>,
) -> Result<String, ApiError> {
    let mut headers = HeaderMap::new();
    let idempotency = format!("schedule/{key}/{}", due.as_millis());
    // Keys are at most 200 characters; a long schedule key is shortened to its hash.
    let idempotency = if idempotency.len() > 200 {
        use sha2::Digest;
        format!(
            "schedule/{}/{}",
            hex::encode(sha2::Sha256::digest(key.as_bytes())),
            due.as_millis()
        )
    } else {
        idempotency
    };
    let value = HeaderValue::from_str(&idempotency).map_err(|error| ApiError::internal(&error))?;
    headers.insert("idempotency-key", value);
    let body = serde_json::from_value(json!({
        "service": service,
        "environment": schedule.environment,
        "release": release,
        "reason": format!("scheduled: {} ({})", schedule.cron, schedule.zone),
    }))
    .map_err(|error| ApiError::internal(&error))?;
    let (_, answer) =
        deploys::create_deploy(State(state.clone()), caller, headers, Body(body)).await?;
    let view = answer.0;
    Ok(format!(
        "deploy {} of {} {} to {}",
        view.id, view.service, view.release.label, view.environment
    ))
}

/// What a scheduled `deploy` sends: to production (the last environment) the newest release
/// the train made (a cut or a patch), never a newer untested build; elsewhere `None`, the
/// newest release. Refused when production is the target and the train made nothing yet.
async fn production_release(
    state: &AppState,
    schedule: &TrainSchedule,
    service: &str,
) -> Result<Option<String>, ApiError> {
    let production = state.config.production().map(|e| e.name.as_str());
    let Some(environment) = schedule.environment.as_deref() else {
        return Ok(None);
    };
    if production != Some(environment) {
        return Ok(None);
    }
    let full = state.store.latest_train(service, TrainKind::Full).await?;
    let patch = state.store.latest_train(service, TrainKind::Patch).await?;
    let newest = [full, patch]
        .into_iter()
        .flatten()
        .max_by_key(|t| t.release.id)
        .ok_or_else(|| {
            ApiError::bad_request(
                "no_train_release",
                format!("{service} has no release cut by the train to deploy to {environment}"),
            )
            .with_hint(format!(
                "a scheduled production deploy takes the newest cut; cut one first: slipway \
                 release cut {service}"
            ))
        })?;
    Ok(Some(newest.release.label))
}

/// The label of a release of the newest artifact built from the main branch, creating one
/// (`full`) when none has it yet.
async fn release_of_newest_artifact(
    state: &AppState,
    caller: &Caller,
    service: &ServiceConfig,
) -> Result<String, ApiError> {
    let name = &service.name;
    let page = Page {
        before: None,
        limit: 50,
    };
    let artifacts = state.store.artifacts(Some(name), &page).await?;
    let source = service.source.clone();
    let repo = source
        .as_ref()
        .map(|s| repo_path(state.settings.config_dir.as_deref(), &s.repo));
    let mut newest = None;
    for artifact in artifacts {
        let Some(commit) = artifact.commit.clone() else {
            continue;
        };
        let (Some(repo), Some(source)) = (repo.clone(), source.clone()) else {
            newest = Some(artifact);
            break;
        };
        let checked = tokio::task::spawn_blocking(move || {
            slipway_release::check_on_branch(&repo, &commit, &source.branch)
        })
        .await
        .map_err(|error| ApiError::internal(&error))?;
        // Not on main, or a commit this clone does not have: not a candidate. Any other git
        // failure (no repository, git missing) is the answer, not "no artifact".
        let on_main = match checked {
            Ok(_) => true,
            Err(
                slipway_release::ReleaseError::NotOnBranch { .. }
                | slipway_release::ReleaseError::UnknownCommit { .. },
            ) => false,
            Err(error) => return Err(release_error(error)),
        };
        if on_main {
            newest = Some(artifact);
            break;
        }
    }
    let artifact = newest.ok_or_else(|| {
        ApiError::bad_request(
            "no_artifact",
            format!("{name} has no artifact built from its main branch"),
        )
        .with_hint("push CI's builds with --commit SHA: slipway artifact push FILE --service S --version V --commit SHA")
    })?;
    let releases = state.store.releases(Some(name), &page).await?;
    if let Some(release) = releases.iter().find(|r| r.version == artifact.version) {
        return Ok(release.label.clone());
    }
    let body = serde_json::from_value(json!({
        "service": name,
        "version": artifact.version,
    }))
    .map_err(|error| ApiError::internal(&error))?;
    let (_, created) =
        catalog::create_release(State(state.clone()), caller.clone(), Body(body)).await?;
    Ok(created.0.label)
}
