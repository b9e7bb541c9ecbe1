//! An environment's schedule: open now or not, why, the next slots, freezes and holidays coming
//! up and who is out (`slipway schedule`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use slipway_core::schedule::{Gate, Schedule};
use slipway_core::time::Span;
use utoipa::IntoParams;

use super::catalog::{environment, service};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::views::{
    ClosureView, ScheduleReasonView, ScheduleView, SlotView, StaffingView, timestamp,
};

/// How far ahead the slots are listed, and how many at most.
const SLOT_DAYS: u64 = 14;
const MAX_SLOTS: usize = 20;
/// How far ahead freezes, holidays and shortfalls are listed, and how many at most.
const CLOSURE_DAYS: u64 = 90;
const MAX_CLOSURES: usize = 50;

/// `?service=&environment=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ScheduleParams {
    service: String,
    environment: String,
}

/// Whether a service may be deployed to an environment now, why not, the next allowed slot,
/// the slots of the coming two weeks, freezes and holidays of the coming 90 days, and who is out.
#[utoipa::path(get, path = "/api/v1/schedule", tag = "schedule",
    params(ScheduleParams),
    responses((status = 200, body = ScheduleView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get_schedule(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<ScheduleParams>,
) -> ApiResult<Json<ScheduleView>> {
    service(&state, &params.service)?;
    let environment = environment(&state, &params.environment)?;
    let schedule = Schedule::for_environment(&state.config, &environment.name)
        .map_err(|error| ApiError::internal(&error))?;
    let now = state.clock.now();
    let day = |days: u64| now.after(Span::from_secs(days * 24 * 60 * 60));
    let (open, reasons, next) = match schedule.gate(now) {
        Gate::Open => (true, Vec::new(), Some(now)),
        Gate::Closed { reasons, until } => (false, reasons, until),
    };
    let slot_view = |start, end: Option<_>| SlotView {
        start: timestamp(start),
        end: end.map(timestamp),
        start_local: schedule.describe(start),
        end_local: end.map(|end| schedule.describe(end)),
    };
    let next_slot = next.map(|start| {
        let end = schedule
            .slots(start, start.after(Schedule::HORIZON), 1)
            .first()
            .and_then(|slot| slot.end);
        slot_view(start, end)
    });
    let slots = schedule
        .slots(now, day(SLOT_DAYS), MAX_SLOTS)
        .into_iter()
        .map(|slot| slot_view(slot.start, slot.end))
        .collect();
    let closures = schedule
        .closures(now, day(CLOSURE_DAYS))
        .into_iter()
        .take(MAX_CLOSURES)
        .map(|block| ClosureView {
            rule: block.reason.rule().to_owned(),
            message: block.reason.to_string(),
            start: timestamp(block.start),
            end: timestamp(block.end),
            start_local: schedule.describe(block.start),
            end_local: schedule.describe(block.end),
        })
        .collect();
    let staffing = schedule
        .people_out(now)
        .map(|(out, max_out, team)| StaffingView { out, max_out, team });
    Ok(Json(ScheduleView {
        service: params.service,
        environment: environment.name.clone(),
        time_zone: schedule.time_zone_name().to_owned(),
        now: timestamp(now),
        open,
        reasons: reasons
            .iter()
            .map(|reason| ScheduleReasonView {
                rule: reason.rule().to_owned(),
                message: reason.to_string(),
            })
            .collect(),
        windows: schedule.windows().map(|w| w.text.clone()).collect(),
        window: schedule.window_at(now).map(|w| w.text.clone()),
        next_slot,
        slots,
        closures,
        staffing,
    }))
}
