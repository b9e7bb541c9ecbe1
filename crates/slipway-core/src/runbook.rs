//! The runbook of a service, rendered as Markdown from the configuration (seed 004: "each
//! project must contain a runbook detailing prerequisites … and how to deploy, monitor, verify
//! and roll back").
//!
//! It is derived from the same [`Config`] slipway runs with — the plan through
//! [`derive_plan`] and [`Plan::describe`], the checks from the plan's verification — so it
//! cannot drift from what slipway does. Pure: the caller reads the file and prints the text.

use std::fmt::Write as _;

use crate::checklist::{self, Per};
use crate::config::suggest::closest;
use crate::config::{
    CheckKind, Config, EnvironmentConfig, FreezeKind, MetricSourceKind, ProvenanceRequirement,
    ServiceConfig, Threshold,
};
use crate::plan::{Plan, Purpose, ReleaseKind, StepKind, derive_plan};

/// A service or environment the configuration does not define.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunbookError {
    pub message: String,
    /// The closest name, or the names there are.
    pub hint: String,
}

/// The runbook of `service`: for `environment` alone, or for every environment in promotion
/// order.
pub fn render(
    config: &Config,
    service: &str,
    environment: Option<&str>,
) -> Result<String, RunbookError> {
    let service = find_service(config, service)?;
    let environments: Vec<&EnvironmentConfig> = match environment {
        Some(name) => vec![find_environment(config, name)?],
        None => config.environments.iter().collect(),
    };
    let mut out = String::new();
    header(&mut out, config, service, &environments);
    for environment in environments {
        section(&mut out, config, service, environment);
    }
    Ok(out)
}

fn find_service<'a>(config: &'a Config, name: &str) -> Result<&'a ServiceConfig, RunbookError> {
    config.service(name).ok_or_else(|| {
        let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        RunbookError {
            message: format!("unknown service `{name}`"),
            hint: suggestion(name, &names, "services"),
        }
    })
}

fn find_environment<'a>(
    config: &'a Config,
    name: &str,
) -> Result<&'a EnvironmentConfig, RunbookError> {
    config.environment(name).ok_or_else(|| {
        let names: Vec<&str> = config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        RunbookError {
            message: format!("unknown environment `{name}`"),
            hint: suggestion(name, &names, "environments"),
        }
    })
}

fn suggestion(wrong: &str, names: &[&str], what: &str) -> String {
    match closest(wrong, names.iter().copied()) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("{what} in slipway.toml: {}", names.join(", ")),
    }
}

fn header(
    out: &mut String,
    config: &Config,
    service: &ServiceConfig,
    environments: &[&EnvironmentConfig],
) {
    let name = &service.name;
    line(out, &format!("# Runbook: {name}"));
    line(out, "");
    line(
        out,
        "Rendered by `slipway runbook` from `slipway.toml`: it says what slipway does, so change \
         the configuration, not this page.",
    );
    line(out, "");
    let order: Vec<&str> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    line(
        out,
        &format!(
            "Environments, in promotion order: {}.",
            order
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(" → ")
        ),
    );
    if environments.len() == 1 && config.environments.len() > 1 {
        line(
            out,
            &format!("This runbook covers `{}` only.", environments[0].name),
        );
    }
    line(out, "");
    line(out, "## The service");
    line(out, "");
    line(
        out,
        &format!(
            "- Each instance starts with `{}` (the target sets `$PORT`).",
            service.start
        ),
    );
    match &service.migrate {
        Some(migrate) => line(
            out,
            &format!(
                "- Migrations: `{migrate}` runs once, with the new artifact, before any new \
                 instance starts. Every release must work with the schema before and after it: \
                 old and new instances serve side by side (the 50/50 state)."
            ),
        ),
        None => line(out, "- No migration task."),
    }
    let health = &service.health;
    line(
        out,
        &format!(
            "- Health: `GET {}` every {} (timeout {}); healthy after {} success(es) in a row, \
             unhealthy after {} failure(s). Traffic only ever goes to healthy instances.",
            health.path,
            health.interval,
            health.timeout,
            health.healthy_threshold,
            health.unhealthy_threshold
        ),
    );
    let pools: Vec<String> = service
        .pools
        .iter()
        .map(|(pool, p)| {
            let traffic = if p.traffic {
                "takes traffic"
            } else {
                "no traffic"
            };
            format!("`{pool}` × {} ({traffic})", p.count)
        })
        .collect();
    line(out, &format!("- Pools, per region: {}.", pools.join(", ")));
    line(out, "");
}

fn section(out: &mut String, config: &Config, service: &ServiceConfig, env: &EnvironmentConfig) {
    let policy = &env.policy;
    line(out, &format!("## {}", env.name));
    line(out, "");
    let mut facts = vec![format!("target `{}`", env.target)];
    if !env.regions.is_empty() {
        facts.push(format!(
            "regions {} (one wave each, in this order)",
            env.regions
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    facts.push(if policy.protected {
        "protected".to_owned()
    } else {
        "not protected".to_owned()
    });
    let listeners: Vec<String> = config
        .proxy_listeners
        .iter()
        .filter(|l| l.service == service.name && l.environment == env.name)
        .map(|l| match &l.region {
            Some(region) => format!("`{}` ({region})", l.address),
            None => format!("`{}`", l.address),
        })
        .collect();
    if !listeners.is_empty() {
        facts.push(format!(
            "served by slipway's proxy at {}",
            listeners.join(", ")
        ));
    }
    line(out, &format!("{}.", capitalise(&facts.join(", "))));
    line(out, "");

    prerequisites(out, config, service, env);
    how_to_deploy(out, service, env);
    what_is_checked(out, config, service, env);
    how_to_monitor(out, config, service, env);
    how_to_roll_back(out, service, env);
}

fn prerequisites(
    out: &mut String,
    config: &Config,
    service: &ServiceConfig,
    env: &EnvironmentConfig,
) {
    let policy = &env.policy;
    let name = &service.name;
    line(out, "### Prerequisites");
    line(out, "");
    line(
        out,
        &format!(
            "- **A release built by CI.** CI pushes the artifact (`slipway artifact push FILE \
             --service {name} --version VERSION`) and numbers a release of it (`slipway release \
             create {name} --version VERSION`). slipway keeps the artifact, so it can always be \
             deployed again without a rebuild."
        ),
    );
    if let Some(provenance) = provenance(config, service, env) {
        line(out, &format!("- **Provenance.** {provenance}"));
    }
    match &policy.approvals {
        Some(approvals) => {
            let who = match approvals.roles.as_slice() {
                [] => "an approver or admin".to_owned(),
                roles => {
                    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
                    format!("a person with the role {}", names.join(" or "))
                }
            };
            let authors = if approvals.not_authors {
                " nor an author of the release's commits"
            } else {
                ""
            };
            line(
                out,
                &format!(
                    "- **Approval.** {} approval(s), each by {who} who is not the person \
                     requesting the deploy{authors}, given right before it runs: each is bound to \
                     the deploy, the artifact, the config and the plan, and expires after {}. \
                     Approve with `slipway approve ID` (it shows what you approve).",
                    approvals.required, approvals.expires
                ),
            );
        }
        None => line(out, "- **Approval.** None required."),
    }
    if policy.go_no_go {
        let who = if policy.go_by_other {
            "someone other than the person who started the deploy"
        } else {
            "someone (the person who started the deploy may)"
        };
        line(
            out,
            &format!(
                "- **Go/no-go.** slipway announces the deploy (environment, service, release, \
                 version, commit and who runs it) and waits until {who} acknowledges with \
                 `slipway go ID`."
            ),
        );
    }
    schedule(out, service, env);
    checklist_items(out, config, service, env);
    line(out, "");
}

/// What the configuration says about artifact provenance: for an environment that requires
/// it, the trusted CI keys and the command CI runs.
fn provenance(config: &Config, service: &ServiceConfig, env: &EnvironmentConfig) -> Option<String> {
    if env.policy.provenance != ProvenanceRequirement::Required {
        return None;
    }
    let keys: Vec<String> = config
        .provenance
        .keys
        .iter()
        .map(|key| format!("`{}`", key.name))
        .collect();
    let keys = match keys.as_slice() {
        [] => "a key of `[provenance]`".to_owned(),
        [one] => format!("the trusted CI key {one}"),
        many => format!("one of the trusted CI keys {}", many.join(", ")),
    };
    Some(format!(
        "The artifact must carry an in-toto provenance statement signed by {keys}: CI signs it \
         after the push with `slipway artifact attest {} VERSION --key KEY --file FILE --commit \
         SHA --build-id ID --builder URL`; `slipway artifact show {} VERSION` says whether it is \
         attested. Preflight refuses an artifact without a valid signature.",
        service.name, service.name
    ))
}

fn schedule(out: &mut String, service: &ServiceConfig, env: &EnvironmentConfig) {
    let policy = &env.policy;
    let zone = &policy.time_zone;
    let timed = !policy.windows.is_empty()
        || !policy.freezes.is_empty()
        || !policy.freeze_calendars.is_empty()
        || policy.staffing.is_some();
    if policy.windows.is_empty() {
        line(
            out,
            "- **When.** Deploys may start at any time outside freezes.",
        );
    } else {
        let windows: Vec<String> = policy
            .windows
            .iter()
            .map(|w| format!("`{}`", w.text))
            .collect();
        line(
            out,
            &format!(
                "- **When.** Deploys start only inside {}.",
                windows.join(" or ")
            ),
        );
    }
    for freeze in &policy.freezes {
        let what = match &freeze.kind {
            FreezeKind::Weekdays(_) => format!("on `{}`, every week ({zone})", freeze.text),
            FreezeKind::Dates { first, last } if first == last => format!("on {first} ({zone})"),
            FreezeKind::Dates { first, last } => format!("from {first} to {last} ({zone})"),
        };
        let why = freeze
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        line(out, &format!("- **Freeze.** No deploy starts {what}{why}."));
    }
    for calendar in &policy.freeze_calendars {
        line(
            out,
            &format!(
                "- **Freeze.** No deploy starts during an event of the calendar `{}` (holidays).",
                calendar.path
            ),
        );
    }
    if let Some(staffing) = &policy.staffing {
        let team = staffing
            .team
            .map(|team| format!(" of {team}"))
            .unwrap_or_default();
        line(
            out,
            &format!(
                "- **Staffing.** No deploy starts while more than {}{team} people are out, as the \
                 absences calendar `{}` says.",
                staffing.max_out, staffing.calendar.path
            ),
        );
    }
    if timed {
        line(
            out,
            &format!(
                "- A deploy requested outside an allowed slot waits for the next one (`--no-wait` \
                 fails at once instead); `slipway schedule {} --env {}` shows the next slot.",
                service.name, env.name
            ),
        );
    }
}

fn checklist_items(
    out: &mut String,
    config: &Config,
    service: &ServiceConfig,
    env: &EnvironmentConfig,
) {
    let items = checklist::items_for(&config.checklist, &service.name, &env.name);
    if items.is_empty() {
        return;
    }
    line(
        out,
        &format!(
            "- **Checklist.** Every item ticked, with evidence, before the deploy starts (see \
             them with `slipway checklist {} --env {}`):",
            service.name, env.name
        ),
    );
    for item in items {
        let per = match item.per {
            Per::Release => "for each release",
            Per::Environment => "once (standing)",
        };
        let evidence = item.evidence.words();
        let other = if item.different_from_requester {
            ", by someone other than who requests the deploy"
        } else {
            ""
        };
        let description = item
            .description
            .as_deref()
            .map(|d| format!(" {d}."))
            .unwrap_or_default();
        line(
            out,
            &format!(
                "  - **{}**:{description} Ticked {per} by {}{other}, with {evidence}: `{}`",
                item.name,
                item.who_may_tick(),
                checklist::tick_command(item, &service.name, &env.name, Some("RC N"))
            ),
        );
    }
}

fn how_to_deploy(out: &mut String, service: &ServiceConfig, env: &EnvironmentConfig) {
    let name = &service.name;
    let plan = derive_plan(service, env, ReleaseKind::Full, Purpose::Release);
    line(out, "### How to deploy");
    line(out, "");
    line(out, "```sh");
    line(
        out,
        &format!(
            "slipway deploy {name} --env {} --release \"RC N\" --follow",
            env.name
        ),
    );
    line(out, "```");
    line(out, "");
    line(
        out,
        "slipway runs this plan (`slipway status ID` shows where a deploy is):",
    );
    line(out, "");
    line(out, "```text");
    out.push_str(&plan.describe());
    line(out, "```");
    line(out, "");
    if service.migrate.is_some() {
        let config_plan = derive_plan(service, env, ReleaseKind::Config, Purpose::Release);
        if config_plan != plan {
            line(
                out,
                "A `config` release (the running artifact with new settings) runs the same plan \
                 without `migrate`.",
            );
            line(out, "");
        }
    }
    for (step, what) in step_notes(&plan) {
        line(out, &format!("- `{step}`: {what}"));
    }
    line(out, "");
    line(
        out,
        &format!(
            "In an emergency, `slipway deploy {name} --env {} --break-glass --reason \"…\"` and a \
             second person's `slipway break-glass ID` let the deploy through windows, freezes, \
             provenance and checklists; both are recorded and announced. Locks, release order, \
             approvals and the go still hold.",
            env.name
        ),
    );
    line(out, "");
}

/// What a person does, or can expect, at each kind of step the plan has.
fn step_notes(plan: &Plan) -> Vec<(&'static str, String)> {
    let mut notes: Vec<(&'static str, String)> = Vec::new();
    for step in &plan.steps {
        let note = match &step.kind {
            StepKind::Preflight => "checks that nothing else deploys the service here and it is \
                                    not locked (`slipway lock`), that the release is newer than \
                                    the one running, and the prerequisites above; a refusal \
                                    says why and what to do."
                .to_owned(),
            StepKind::Approval { .. } => "waits for approvals: `slipway approve ID`.".to_owned(),
            StepKind::Go { .. } => {
                "announces the deploy and waits for the acknowledgement: `slipway go ID`."
                    .to_owned()
            }
            StepKind::Migrate => "runs the migration task once with the new artifact.".to_owned(),
            StepKind::Canary { .. } => "starts canary instances next to the old fleet, gives \
                                        them their share of traffic and checks them against the \
                                        old fleet."
                .to_owned(),
            StepKind::Surge => "starts the full new fleet next to the old one and spreads \
                                traffic over both once it is healthy (the 50/50 state)."
                .to_owned(),
            StepKind::Bake { .. } => {
                "holds the 50/50 state at least this long while the checks run.".to_owned()
            }
            StepKind::ScaleIn { confirm: true } => "waits for `slipway confirm ID`, then sends \
                                                    all traffic to the new fleet and drains and \
                                                    stops the old one."
                .to_owned(),
            StepKind::ScaleIn { confirm: false } => "sends all traffic to the new fleet, then \
                                                     drains and stops the old one."
                .to_owned(),
            StepKind::PostVerify { .. } => {
                "checks the new fleet again this long after scale-in.".to_owned()
            }
            StepKind::Finalize => "marks the release as running here and notifies.".to_owned(),
        };
        let name = step.kind.name();
        if !notes.iter().any(|(seen, _)| *seen == name) {
            notes.push((name, note));
        }
    }
    notes
}

fn what_is_checked(
    out: &mut String,
    config: &Config,
    service: &ServiceConfig,
    env: &EnvironmentConfig,
) {
    let plan = derive_plan(service, env, ReleaseKind::Full, Purpose::Release);
    let policy = &env.policy;
    line(out, "### What is checked");
    line(out, "");
    line(
        out,
        &format!(
            "- Every new instance passes its health check before it gets traffic; a launch not \
             healthy within {} fails.",
            policy.launch_timeout
        ),
    );
    let Some(verification) = &plan.verification else {
        line(
            out,
            "- No checks are configured: verification looks at the new fleet's health only.",
        );
        line(out, "");
        return;
    };
    let steps: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::Canary { .. } | StepKind::Bake { .. } | StepKind::PostVerify { .. }
            )
        })
        .map(|s| s.kind.name())
        .fold(Vec::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        });
    line(
        out,
        &format!(
            "- During {}, every {}:",
            steps
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            plan.timing.analysis_interval
        ),
    );
    for check in &verification.checks {
        line(
            out,
            &format!("  - {}", describe_check(&check.name, &check.kind)),
        );
    }
    let analysis = &verification.analysis;
    for comparison in &analysis.compare {
        let allowed = if comparison.metric.unit() == crate::analysis::Unit::Ratio {
            format!(
                "{} percentage point(s)",
                trim(comparison.allowed_increase * 100.0)
            )
        } else {
            format!("{}%", trim(comparison.allowed_increase * 100.0))
        };
        line(
            out,
            &format!(
                "  - `{}` of the new release compared with the old one while both take traffic: \
                 it fails when worse by more than {allowed} at {}% confidence.",
                comparison.metric.name(),
                trim(analysis.confidence * 100.0)
            ),
        );
    }
    let source = match analysis.source {
        MetricSourceKind::Proxy => "slipway's proxy".to_owned(),
        MetricSourceKind::Prometheus => match &config.prometheus {
            Some(prometheus) => format!("Prometheus at {}", prometheus.url),
            None => "Prometheus".to_owned(),
        },
    };
    line(
        out,
        &format!(
            "- Metrics come from {source}, over the last {} (one sample per {}); fewer than {} \
             requests or {} samples is no data, never a pass. A score of {} or more passes, {} \
             or more is inconclusive, less fails.",
            analysis.window,
            analysis.step,
            analysis.min_requests,
            analysis.min_samples,
            trim(analysis.pass_score),
            trim(analysis.marginal_score)
        ),
    );
    line(
        out,
        &format!(
            "- Verification that stays inconclusive longer than {} counts as failed.",
            plan.timing.inconclusive_limit
        ),
    );
    line(out, "");
}

fn describe_check(name: &str, kind: &CheckKind) -> String {
    let limits = |min: &Option<Threshold>, max: &Option<Threshold>| {
        let mut parts = Vec::new();
        if let Some(min) = min {
            parts.push(format!("at least {}", threshold(*min)));
        }
        if let Some(max) = max {
            parts.push(format!("at most {}", threshold(*max)));
        }
        parts.join(" and ")
    };
    match kind {
        CheckKind::Metric { metric, min, max } => {
            format!("`{}` {}", metric.name(), limits(min, max))
        }
        CheckKind::Query { query, min, max } => {
            format!("{name} (Prometheus `{query}`) {}", limits(min, max))
        }
        CheckKind::Probe {
            path,
            status,
            body,
            timeout,
        } => {
            let body = body
                .as_deref()
                .map(|b| format!(" containing \"{b}\""))
                .unwrap_or_default();
            format!("`GET {path}` on every new instance answers {status}{body} within {timeout}")
        }
        CheckKind::Command { command, timeout } => {
            format!("`{command}` exits 0 within {timeout} (75 means no data)")
        }
    }
}

fn threshold(threshold: Threshold) -> String {
    match threshold {
        Threshold::Ratio(ratio) => format!("{}%", trim(ratio * 100.0)),
        Threshold::Millis(ms) => format!("{}ms", trim(ms)),
        Threshold::Number(n) => trim(n),
    }
}

/// A number without a trailing `.0`, rounded to what people write.
fn trim(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    let text = format!("{rounded}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

fn how_to_monitor(
    out: &mut String,
    config: &Config,
    service: &ServiceConfig,
    env: &EnvironmentConfig,
) {
    let name = &service.name;
    line(out, "### How to monitor");
    line(out, "");
    line(
        out,
        &format!(
            "- `slipway status {name}`: what runs in each environment; `slipway status ID \
             --follow`: a deploy's progress, step by step, until it ends."
        ),
    );
    if env.target == "local" {
        line(
            out,
            &format!(
                "- `slipway logs {name} --env {} --follow`: what the instances write.",
                env.name
            ),
        );
    }
    line(
        out,
        "- `slipway receipt ID`: a deploy's chain of evidence (artifact, approvals, go, checks, \
         outcome), each with the hash of its audit event.",
    );
    line(
        out,
        "- slipway's `/metrics` (Prometheus text) counts requests per release through its proxy.",
    );
    if let Some(prometheus) = &config.prometheus {
        line(
            out,
            &format!(
                "- Prometheus at {} answers the checks' queries.",
                origin(&prometheus.url)
            ),
        );
    }
    if let Some(grafana) = &config.markers.grafana {
        line(
            out,
            &format!(
                "- Deploy start, end and rollback are annotated in Grafana at {}.",
                origin(&grafana.url)
            ),
        );
    }
    for webhook in &config.markers.webhooks {
        line(
            out,
            &format!(
                "- Deploy markers are posted to a webhook at {}.",
                origin(webhook)
            ),
        );
    }
    line(out, "");
}

/// `scheme://host:port` of a URL: its path, query and credentials often carry a secret (a
/// webhook's token), and the runbook is readable by every viewer.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme.is_empty() {
        true => host.to_owned(),
        false => format!("{scheme}://{host}"),
    }
}

fn how_to_roll_back(out: &mut String, service: &ServiceConfig, env: &EnvironmentConfig) {
    let name = &service.name;
    let plan = derive_plan(service, env, ReleaseKind::Full, Purpose::Release);
    line(out, "### How to roll back");
    line(out, "");
    if plan.verification.is_some() {
        line(
            out,
            "- **Automatically.** A failed check — or one inconclusive past its limit — before \
             scale-in sends all traffic back to the old fleet, then stops the new one. After \
             scale-in, a failed post-verify starts a rollback deploy of the previous release.",
        );
    } else {
        line(
            out,
            "- **Automatically.** A new fleet that does not become healthy is stopped and \
             traffic stays on the old one.",
        );
    }
    line(
        out,
        &format!(
            "- **By hand, at any time** (even while the environment is locked). `slipway \
             rollback {name} --env {} --reason \"…\"` goes back to the release that ran before; \
             `--to \"RC N\"` picks an earlier one that ran here.",
            env.name
        ),
    );
    line(
        out,
        "- During a deploy, `slipway abort ID --reason \"…\"` undoes what it started.",
    );
    let rollback = plan.for_rollback(&plan.regions());
    line(
        out,
        "- A rollback after scale-in is a fast-tracked deploy of the previous release's \
         artifact and config (no approval, go, migration, canary or bake):",
    );
    line(out, "");
    line(out, "```text");
    out.push_str(&rollback.describe());
    line(out, "```");
    line(out, "");
    line(
        out,
        "- It needs no CI and no source control: the artifact comes from slipway's cache, so a \
         rollback works while they are down.",
    );
    line(out, "");
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn line(out: &mut String, text: &str) {
    let _ = writeln!(out, "{text}");
}
