//! What each notice says: a headline with the environment first in capitals
//! (`PROD: idp RC 112 deploy started by alice`), a status word and colour, the failing check
//! with its numbers when something failed, and a link to the deploy — as a Slack
//! incoming-webhook message and as slipway's own webhook JSON.
//!
//! Rendering is pure: the deploy, the notice, the time and a [`Context`] in, JSON out, so every
//! payload is snapshot-tested. The text reads the same without colour: the status word is in
//! the headline.

use serde::Serialize;
use serde_json::{Value, json};
use slipway_core::deploy::{Deploy, DeployResult, Notice};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_core::time::Time;

/// What a notice needs beyond the deploy itself, looked up when it is enqueued.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Context {
    /// The deploy's page (`https://slipway.example.org/deploys/12`).
    pub deploy_url: Option<String>,
    /// The check that failed, when the deploy failed or rolled back because of one.
    pub failing_check: Option<FailingCheck>,
}

/// A check that failed, with its numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FailingCheck {
    /// The step it ran in (`canary`, `bake`, `post-verify`).
    pub step: String,
    /// One line naming what failed first.
    pub detail: String,
    /// Each measurement that did not pass, described with its numbers and limit.
    pub measurements: Vec<String>,
}

/// The status a notice reports, with its word and colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Started,
    /// Waiting for approval, for a go, or for the next allowed slot.
    Waiting,
    /// Break-glass asked for or confirmed.
    BreakGlass,
    Succeeded,
    Failed,
    RolledBack,
    Aborted,
}

impl Status {
    pub fn of(notice: &Notice) -> Status {
        match notice {
            Notice::Started => Status::Started,
            Notice::GoNoGo | Notice::WaitingForApproval | Notice::WaitingForSlot { .. } => {
                Status::Waiting
            }
            Notice::BreakGlassRequested | Notice::BreakGlass => Status::BreakGlass,
            Notice::Finished { result, .. } => match result {
                DeployResult::Succeeded => Status::Succeeded,
                DeployResult::Failed => Status::Failed,
                DeployResult::RolledBack => Status::RolledBack,
                DeployResult::Aborted => Status::Aborted,
            },
        }
    }

    /// `started`, `waiting`, `break_glass`, `succeeded`, `failed`, `rolled_back`, `aborted`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::Waiting => "waiting",
            Status::BreakGlass => "break_glass",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::RolledBack => "rolled_back",
            Status::Aborted => "aborted",
        }
    }

    /// The attachment colour: blue started, amber waiting, purple break-glass, green
    /// succeeded, red failed, orange rolled back, grey aborted.
    pub fn color(self) -> &'static str {
        match self {
            Status::Started => "#1D9BD1",
            Status::Waiting => "#ECB22E",
            Status::BreakGlass => "#8E44AD",
            Status::Succeeded => "#2EB67D",
            Status::Failed => "#E01E5A",
            Status::RolledBack => "#E8912D",
            Status::Aborted => "#616061",
        }
    }
}

/// The notice's name as stored and sent: `started`, `go_no_go`, `finished`…
pub fn notice_name(notice: &Notice) -> &'static str {
    match notice {
        Notice::Started => "started",
        Notice::GoNoGo => "go_no_go",
        Notice::WaitingForApproval => "waiting_for_approval",
        Notice::BreakGlassRequested => "break_glass_requested",
        Notice::BreakGlass => "break_glass",
        Notice::WaitingForSlot { .. } => "waiting_for_slot",
        Notice::Finished { .. } => "finished",
    }
}

/// `idp RC 112 deploy` or `idp rollback to RC 111`.
fn subject(deploy: &Deploy) -> String {
    let spec = &deploy.spec;
    match (spec.purpose, spec.kind) {
        (Purpose::Rollback, _) => format!("{} rollback to {}", spec.service, spec.release.label),
        // Off-cycle releases surprise people who expect the train's schedule: they say so.
        (_, ReleaseKind::OffCycle) => {
            format!("{} {} off-cycle deploy", spec.service, spec.release.label)
        }
        _ => format!("{} {} deploy", spec.service, spec.release.label),
    }
}

/// The headline, environment first in capitals; `strong` wraps the environment and the status
/// word (`*…*` for Slack, nothing for plain text).
fn headline(deploy: &Deploy, notice: &Notice, strong: &dyn Fn(&str) -> String) -> String {
    let spec = &deploy.spec;
    let env = strong(&spec.environment.to_uppercase());
    let subject = subject(deploy);
    let by = &spec.requested_by;
    let reason = |reason: &Option<String>| match reason {
        Some(reason) if !reason.trim().is_empty() => format!(": {}", reason.trim()),
        _ => String::new(),
    };
    match notice {
        Notice::Started => {
            let why = match (spec.purpose, spec.kind) {
                (Purpose::Rollback, _) | (_, ReleaseKind::OffCycle) => reason(&spec.reason),
                _ => String::new(),
            };
            format!("{env}: {subject} {} by {by}{why}", strong("started"))
        }
        Notice::GoNoGo => {
            let announcement = spec.go_announcement();
            // The core's announcement starts with `PROD: `; keep its words, bold the env.
            let rest = announcement
                .split_once(": ")
                .map_or(announcement.as_str(), |(_, rest)| rest);
            format!("{env}: {rest} ({})", strong("waiting for go"))
        }
        Notice::WaitingForApproval => format!(
            "{env}: {subject} by {by} is {}",
            strong("waiting for approval")
        ),
        Notice::BreakGlassRequested => format!(
            "{env}: {subject} by {by} asks for {}{} — a second approver must confirm",
            strong("BREAK-GLASS"),
            reason(&spec.reason)
        ),
        Notice::BreakGlass => {
            let confirmer = deploy
                .progress
                .break_glass
                .as_ref()
                .map_or(String::new(), |ack| format!(" by {}", ack.by));
            format!(
                "{env}: {subject} by {by}: {}{confirmer}; policy refusals will be overridden",
                strong("break-glass confirmed")
            )
        }
        Notice::WaitingForSlot { until, reason } => format!(
            "{env}: {subject} by {by} is {} until {}: {reason}",
            strong("waiting"),
            until.to_timestamp()
        ),
        Notice::Finished {
            result,
            reason: why,
        } => {
            let word = match result {
                DeployResult::Succeeded => "succeeded",
                DeployResult::Failed => "failed",
                DeployResult::RolledBack => "rolled back",
                DeployResult::Aborted => "aborted",
            };
            format!("{env}: {subject} by {by} {}{}", strong(word), reason(why))
        }
    }
}

/// The plain headline: `PROD: idp RC 112 deploy started by alice`.
pub fn plain_headline(deploy: &Deploy, notice: &Notice) -> String {
    headline(deploy, notice, &|text| text.to_owned())
}

/// Escapes what Slack's mrkdwn treats as markup in text from people and config.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: `text` is the plain headline (notifications and clients
/// without attachments), the attachment carries the colour, the details and the link.
pub fn slack_payload(deploy: &Deploy, notice: &Notice, context: &Context) -> Value {
    let spec = &deploy.spec;
    let status = Status::of(notice);
    let plain = plain_headline(deploy, notice);
    let mut lines = vec![slack_escape(&headline(deploy, notice, &|text| {
        format!("*{text}*")
    }))];
    if let Some(check) = &context.failing_check {
        lines.push(format!(
            "Failing check in {}: {}",
            check.step,
            slack_escape(&check.detail)
        ));
        for measurement in &check.measurements {
            lines.push(format!("• {}", slack_escape(measurement)));
        }
    }
    match notice {
        Notice::GoNoGo => lines.push(format!(
            "Clear to go? `slipway go {id}` or `/slipway go {id}`",
            id = spec.id
        )),
        Notice::WaitingForApproval => lines.push(format!(
            "Approve: `slipway approve {id}` or `/slipway approve {id}`",
            id = spec.id
        )),
        Notice::BreakGlassRequested => lines.push(format!(
            "Confirm as a second approver: `slipway break-glass {}`",
            spec.id
        )),
        _ => {}
    }
    if let Some(url) = &context.deploy_url {
        lines.push(format!("<{url}|Deploy {}>", spec.id));
    }
    let mut fields = vec![
        json!({"title": "Release", "value": format!("{} ({})", spec.release.label, spec.release.version), "short": true}),
        json!({"title": "Status", "value": status.name().replace('_', " "), "short": true}),
    ];
    if let Some(previous) = &spec.previous {
        fields.push(json!({"title": "Replaces", "value": previous.label, "short": true}));
    }
    if let Some(commit) = &spec.commit {
        fields.push(
            json!({"title": "Commit", "value": &commit[..commit.len().min(12)], "short": true}),
        );
    }
    json!({
        // Escaped: a reason typed by a person must not ping a channel or disguise a link.
        "text": slack_escape(&plain),
        "attachments": [{
            "color": status.color(),
            "fallback": plain,
            "text": lines.join("\n"),
            "mrkdwn_in": ["text"],
            "fields": fields,
            "footer": format!("slipway · deploy {}", spec.id),
        }],
    })
}

/// slipway's webhook JSON: the notice as data, the deploy's identity, the headline and status,
/// the failing check and the link. `at` is when the notice was enqueued.
pub fn webhook_payload(deploy: &Deploy, notice: &Notice, context: &Context, at: Time) -> Value {
    let spec = &deploy.spec;
    let status = Status::of(notice);
    json!({
        "type": format!("deploy.{}", notice_name(notice)),
        "at": at.to_timestamp().to_string(),
        "text": plain_headline(deploy, notice),
        "status": status.name(),
        "color": status.color(),
        "notice": notice,
        "deploy": {
            "id": spec.id,
            "service": spec.service,
            "environment": spec.environment,
            "purpose": spec.purpose,
            "release": spec.release.label,
            "version": spec.release.version,
            "artifact": spec.release.artifact,
            "previous": spec.previous.as_ref().map(|p| &p.label),
            "requested_by": spec.requested_by,
            "url": context.deploy_url,
        },
        "failing_check": context.failing_check,
    })
}
