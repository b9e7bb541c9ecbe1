//! Schedule: inside a deploy window, outside freezes, enough people at work.
//!
//! A refusal ends by itself (`until` is the next open slot), so the deploy waits for it unless
//! it was asked to fail at once; break-glass may override it. A rollback is never held: rolling
//! back must always be possible.

use std::sync::Arc;

use async_trait::async_trait;
use slipway_core::config::Config;
use slipway_core::deploy::Deploy;
use slipway_core::plan::Purpose;
use slipway_core::schedule::{Gate, Schedule};
use slipway_core::time::Time;

use crate::plugin::{PreflightCheck, Refusal};

/// The schedule check of every environment of one config (with its calendars attached).
pub struct ScheduleCheck {
    config: Arc<Config>,
}

impl ScheduleCheck {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }
}

#[async_trait]
impl PreflightCheck for ScheduleCheck {
    fn name(&self) -> &'static str {
        "schedule"
    }

    async fn check(&self, deploy: &Deploy, now: Time) -> Result<String, Refusal> {
        check_schedule(&self.config, deploy, now)
    }
}

/// The finding of the schedule check for `deploy` at `now`.
pub fn check_schedule(config: &Config, deploy: &Deploy, now: Time) -> Result<String, Refusal> {
    let spec = &deploy.spec;
    let environment = &spec.environment;
    let schedule = Schedule::for_environment(config, environment).map_err(|error| Refusal {
        message: format!("cannot read the schedule of {environment}: {error}"),
        hint: "check the config with `slipway check-config` and restart `slipway serve`".to_owned(),
        until: None,
        overridable: true,
    })?;
    if spec.purpose == Purpose::Rollback {
        return Ok(format!(
            "rollback: not held by {environment}'s windows, freezes or staffing (a rollback is \
             always allowed)"
        ));
    }
    if schedule.is_unrestricted() {
        return Ok(format!(
            "{environment} has no windows, freezes or calendars: always open"
        ));
    }
    match schedule.gate(now) {
        Gate::Open => Ok(open_detail(&schedule, now)),
        Gate::Closed { reasons, until } => {
            let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
            let when = match until {
                Some(until) => format!("; next slot {}", schedule.describe(until)),
                None => format!(
                    "; it does not open within the next {} days",
                    Schedule::HORIZON.as_millis() / 86_400_000
                ),
            };
            Err(Refusal {
                message: format!(
                    "{environment} is closed to deploys: {}{when}",
                    reasons.join("; ")
                ),
                hint: format!(
                    "`slipway schedule {service} --env {environment}` shows the next slots; to \
                     deploy now anyway, break glass: `slipway deploy {service} --env \
                     {environment} --break-glass --reason …` and a second person confirms",
                    service = spec.service
                ),
                until,
                overridable: true,
            })
        }
    }
}

/// What was verified when the environment is open:
/// `inside window mon-thu 09:00-16:00 America/New_York; no freeze; 1 of 6 out (max 2)`.
fn open_detail(schedule: &Schedule, now: Time) -> String {
    let mut parts = Vec::new();
    if let Some(window) = schedule.window_at(now) {
        parts.push(format!("inside window {}", window.text));
    }
    parts.push("no freeze or holiday".to_owned());
    if let Some((out, max_out, team)) = schedule.people_out(now) {
        let of = team.map(|t| format!(" of {t}")).unwrap_or_default();
        parts.push(format!("{}{of} out (max {max_out})", out.len()));
    }
    format!("{} at {}", parts.join("; "), schedule.describe(now))
}
