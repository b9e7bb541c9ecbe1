//! `slipway deploy`, `deploys`, `status` and the operator actions (`approve`, `go`, `confirm`,
//! `abort`, `rollback`), with `--follow` printing a deploy's progress until it ends.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use reqwest::Method;
use slipway_core::analysis::Measurement;
use slipway_core::time::Span;
use slipway_server::views::{DeployView, EventView, Page, ServiceView};
use tokio::time::Instant;

use super::{print_json, table};
use crate::Output;
use crate::client::Client;
use crate::failure::Failure;

/// How long `--follow` waits between polls.
const POLL: Duration = Duration::from_millis(250);

/// Exit codes of a followed deploy.
pub(crate) mod exit {
    pub(crate) const FAILED: u8 = 3;
    pub(crate) const ROLLED_BACK: u8 = 4;
    pub(crate) const ABORTED: u8 = 5;
    pub(crate) const STILL_RUNNING: u8 = 6;
}

#[derive(Debug, clap::Args)]
pub(crate) struct FollowArgs {
    /// Print the deploy's progress until it ends; the exit code says how it ended
    /// (0 succeeded, 3 failed, 4 rolled back, 5 aborted, 6 still running at --timeout).
    #[arg(long)]
    follow: bool,
    /// With --follow: stop following after this long (`90s`, `30m`).
    #[arg(long, value_name = "DURATION", requires = "follow")]
    timeout: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// `RC 12`, `12` or `12.1`; the newest release when absent.
    #[arg(long)]
    release: Option<String>,
    /// Why; required with --break-glass.
    #[arg(long)]
    reason: Option<String>,
    /// Outside a deploy window, in a freeze or short of staff, fail at once instead of waiting
    /// for the next allowed slot.
    #[arg(long)]
    no_wait: bool,
    /// Emergency: once a second person confirms (`slipway break-glass ID`), windows, freezes,
    /// staffing, provenance and checklists are overridden and marked in the audit trail.
    #[arg(long, requires = "reason")]
    break_glass: bool,
    /// The config version to pin; the newest by default (reviewed, where the environment is
    /// protected).
    #[arg(long, value_name = "N")]
    config_version: Option<u64>,
    #[command(flatten)]
    follow: FollowArgs,
}

pub(crate) async fn deploy(args: &DeployArgs, client: &Client, output: Output) -> Result<ExitCode> {
    let body = serde_json::json!({
        "service": args.service,
        "environment": args.environment,
        "release": args.release,
        "reason": args.reason,
        "wait": !args.no_wait,
        "break_glass": args.break_glass,
        "config": args.config_version,
    });
    start(client, "/api/v1/deploys", &body, &args.follow, output).await
}

/// Posts a request that starts a deploy, prints it, and follows it when asked.
pub(crate) async fn start(
    client: &Client,
    path: &str,
    body: &serde_json::Value,
    follow_args: &FollowArgs,
    output: Output,
) -> Result<ExitCode> {
    // One retry after a connection failure, with the same key: the server returns the deploy
    // the first attempt created, if it got that far, instead of starting a second one.
    let key = slipway_server::auth::random_hex(16);
    let request = || {
        client
            .request(Method::POST, path)
            .header("Idempotency-Key", &key)
            .json(body)
    };
    let deploy: DeployView = match client.send(request()).await {
        Err(error) if Client::is_unreachable(&error) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            client.send(request()).await?
        }
        other => other?,
    };
    if !follow_args.follow {
        match output {
            Output::Json => print_json(&deploy),
            Output::Text => {
                println!("{}", headline(&deploy));
                print_steps(&deploy);
                println!("follow it with `slipway status {} --follow`", deploy.id);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if output == Output::Text {
        println!("{}", headline(&deploy));
        print_steps(&deploy);
    }
    follow(client, deploy.id, follow_args, output).await
}

fn headline(deploy: &DeployView) -> String {
    let what = if deploy.purpose == "rollback" {
        "rollback deploy"
    } else {
        "deploy"
    };
    let config = deploy
        .release
        .config_version
        .map(|n| format!(", config version {n}"))
        .unwrap_or_default();
    format!(
        "{what} {}: {} {} ({}{config}) to {}, requested by {}",
        deploy.id,
        deploy.service,
        deploy.release.label,
        deploy.release.version,
        deploy.environment,
        deploy.requested_by
    )
}

fn print_steps(deploy: &DeployView) {
    for step in &deploy.steps {
        let marker = match step.status.as_str() {
            "done" => "done",
            "current" => " -> ",
            _ => "    ",
        };
        println!("  [{marker}] {} {}", step.index, step.summary);
    }
}

/// Prints events until the deploy ends (or `--timeout`); the exit code says how it ended.
pub(crate) async fn follow(
    client: &Client,
    id: i64,
    args: &FollowArgs,
    output: Output,
) -> Result<ExitCode> {
    let deadline = follow_deadline(args)?;
    Ok(match watch(client, id, deadline, output).await? {
        Some(deploy) => ending(&deploy, output),
        None => ExitCode::from(exit::STILL_RUNNING),
    })
}

/// When `--timeout` ends the following.
fn follow_deadline(args: &FollowArgs) -> Result<Option<Instant>> {
    let Some(text) = &args.timeout else {
        return Ok(None);
    };
    let span = Span::parse(text).map_err(|error| {
        Failure::new("invalid_duration", format!("--timeout {text}: {error}"))
            .hint("write a duration such as 90s, 30m or 1h")
    })?;
    Ok(Instant::now().checked_add(Duration::from_millis(span.as_millis())))
}

/// Prints the deploy's events until it ends; returns it as it ended, or `None` at `deadline`.
async fn watch(
    client: &Client,
    id: i64,
    deadline: Option<Instant>,
    output: Output,
) -> Result<Option<DeployView>> {
    let mut after = 0i64;
    let mut announced = BTreeSet::new();
    loop {
        // Events first, then the state: a deploy seen finished has all its events printed.
        loop {
            let page: Page<EventView> = client
                .get(&format!(
                    "/api/v1/deploys/{id}/events?after={after}&limit=500"
                ))
                .await?;
            for event in &page.items {
                match output {
                    Output::Json => println!("{}", serde_json::to_string(event)?),
                    Output::Text => println!("{}  {}", clock_time(&event.at), describe(event)),
                }
            }
            let more = page.items.len() == 500;
            after = page.next.unwrap_or(after);
            if !more {
                break;
            }
        }
        let deploy: DeployView = client.get(&format!("/api/v1/deploys/{id}")).await?;
        if deploy.phase.result.is_some() {
            return Ok(Some(deploy));
        }
        if output == Output::Text
            && let Some(waiting) = waiting_hint(&deploy)
            && announced.insert(waiting.clone())
        {
            println!("          {waiting}");
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if output == Output::Text {
                eprintln!(
                    "deploy {id} is still {} after --timeout; it goes on without us",
                    deploy.phase.state
                );
            }
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Prints how the deploy ended; the exit code says it.
fn ending(deploy: &DeployView, output: Output) -> ExitCode {
    let result = deploy.phase.result.as_deref().unwrap_or("failed");
    let code = match result {
        "succeeded" => 0,
        "rolled_back" => exit::ROLLED_BACK,
        "aborted" => exit::ABORTED,
        _ => exit::FAILED,
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"deploy": deploy.id, "result": result, "reason": deploy.end_reason})
        ),
        Output::Text => {
            let reason = deploy
                .end_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            println!("deploy {} {}{reason}", deploy.id, result.replace('_', " "));
        }
    }
    ExitCode::from(code)
}

/// What a waiting deploy needs, and who can give it.
fn waiting_hint(deploy: &DeployView) -> Option<String> {
    let id = deploy.id;
    match deploy.phase.waiting_for.as_deref()? {
        "approval" => {
            let (have, need) = deploy
                .phase
                .approvals
                .as_ref()
                .map_or((0, 1), |a| (a.have, a.need));
            Some(format!(
                "waiting for approval ({have}/{need}): an approver other than {} runs `slipway approve {id}`",
                deploy.requested_by
            ))
        }
        "go" => Some(format!(
            "waiting for go: run `slipway go {id}` when it is clear to go"
        )),
        "scale_in_confirmation" => Some(format!(
            "waiting to scale in: run `slipway confirm {id}` to stop the old fleet"
        )),
        "break_glass" => Some(format!(
            "BREAK-GLASS asked by {}: a second approver runs `slipway break-glass {id}` to confirm it",
            deploy.requested_by
        )),
        "slot" => Some(format!(
            "waiting for the next allowed slot ({}): {}; abort it with `slipway abort {id}`",
            deploy.waiting_until.as_deref().unwrap_or("unknown"),
            deploy
                .phase
                .reason
                .as_deref()
                .unwrap_or("outside its schedule")
        )),
        _ => None,
    }
}

/// `2026-11-23T12:00:01.234Z` to `12:00:01`.
fn clock_time(at: &str) -> String {
    at.get(11..19).unwrap_or(at).to_owned()
}

/// One line about an event.
pub(crate) fn describe(event: &EventView) -> String {
    let data = &event.data;
    let text = |key: &str| data.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let region = || {
        data.get("region")
            .and_then(|r| r.as_str())
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default()
    };
    match event.kind.as_str() {
        "deploy_created" => format!(
            "created: {} {} ({}) to {} by {}",
            text("service"),
            text("release"),
            text("version"),
            text("environment"),
            text("requested_by")
        ),
        "step_started" => format!(
            "step {} {}{} started",
            data.get("step")
                .map(ToString::to_string)
                .unwrap_or_default(),
            text("name"),
            region()
        ),
        "step_completed" => format!(
            "step {} {} done",
            data.get("step")
                .map(ToString::to_string)
                .unwrap_or_default(),
            text("name")
        ),
        "effect_requested" => format!("  {} ({})", text("action"), text("key")),
        "effect_succeeded" => {
            let detail = text("detail");
            let detail = detail.lines().last().unwrap_or("");
            format!("  ok {}: {detail}", text("key"))
        }
        "effect_failed" => format!("  FAILED {}: {}", text("key"), text("error")),
        "measured" => match data
            .get("measurement")
            .cloned()
            .map(serde_json::from_value::<Measurement>)
        {
            Some(Ok(measurement)) => format!("    {}", measurement.describe()),
            _ => "    (a measurement this version cannot read)".to_owned(),
        },
        // The measurements were shown one by one; a check without any (it could not run) says
        // why in its detail.
        "checked" => match data.get("score").and_then(serde_json::Value::as_f64) {
            Some(score) => format!(
                "  check {}: {} (score {score:.0})",
                text("key"),
                text("verdict")
            ),
            None => format!(
                "  check {}: {} {}",
                text("key"),
                text("verdict"),
                text("detail")
            ),
        },
        "approved" => format!("approved by {}", text("by")),
        "go_announced" => text("message").to_owned(),
        "preflight_checked" => {
            let verdict = match (
                data.get("passed").and_then(serde_json::Value::as_bool),
                data.get("overridden").and_then(serde_json::Value::as_bool),
            ) {
                (Some(true), _) => "ok",
                (_, Some(true)) => "OVERRIDDEN",
                _ => "REFUSED",
            };
            format!("  {} {verdict}: {}", text("check"), text("detail"))
        }
        "slot_awaited" => format!("waiting for the next slot: {}", text("reason")),
        "break_glass_confirmed" => format!(
            "BREAK-GLASS confirmed by {}: {}",
            text("by"),
            text("reason")
        ),
        "approvals_expired" => "approvals expired".to_owned(),
        "go_acknowledged" => format!("go given by {}", text("by")),
        "scale_in_confirmed" => format!("scale-in confirmed by {}{}", text("by"), region()),
        "unwind_started" => format!("ROLLING BACK ({}): {}", text("cause"), text("reason")),
        "deploy_finished" => format!("finished: {}", text("result")),
        other => other.to_owned(),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[arg(long)]
    service: Option<String>,
    #[arg(long = "env", value_name = "ENV")]
    environment: Option<String>,
    #[command(flatten)]
    page: super::PageArgs,
}

pub(crate) async fn list(args: &ListArgs, client: &Client, output: Output) -> Result<ExitCode> {
    let mut request = args
        .page
        .apply(client.request(Method::GET, "/api/v1/deploys"));
    if let Some(service) = &args.service {
        request = request.query(&[("service", service)]);
    }
    if let Some(environment) = &args.environment {
        request = request.query(&[("environment", environment)]);
    }
    let page: Page<DeployView> = client.send(request).await?;
    match output {
        Output::Json => print_json(&page),
        Output::Text => table(
            &[
                "ID",
                "SERVICE",
                "ENV",
                "RELEASE",
                "STATE",
                "BY",
                "REQUESTED AT",
            ],
            page.items.iter().map(|d| {
                vec![
                    d.id.to_string(),
                    d.service.clone(),
                    d.environment.clone(),
                    d.release.label.clone(),
                    phase_text(d),
                    d.requested_by.clone(),
                    d.requested_at.clone(),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `running surge`, `waiting approval`, `finished succeeded`.
fn phase_text(deploy: &DeployView) -> String {
    let phase = &deploy.phase;
    let detail = phase
        .result
        .as_deref()
        .or(phase.waiting_for.as_deref())
        .or(phase.step.as_deref())
        .unwrap_or("");
    format!("{} {detail}", phase.state).trim().to_owned()
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// A deploy id for its details, or a service name; every service when absent.
    what: Option<String>,
    #[command(flatten)]
    follow: FollowArgs,
}

pub(crate) async fn status(args: &StatusArgs, client: &Client, output: Output) -> Result<ExitCode> {
    if let Some(id) = args.what.as_deref().and_then(|w| w.parse::<i64>().ok()) {
        if args.follow.follow {
            return follow(client, id, &args.follow, output).await;
        }
        let deploy: DeployView = client.get(&format!("/api/v1/deploys/{id}")).await?;
        match output {
            Output::Json => print_json(&deploy),
            Output::Text => {
                println!("{}", headline(&deploy));
                println!("state: {}", phase_text(&deploy));
                if let Some(waiting) = waiting_hint(&deploy) {
                    println!("  {waiting}");
                }
                print_steps(&deploy);
                if let Some(check) = &deploy.check {
                    let score = check
                        .score
                        .map(|s| format!(", score {s:.0}"))
                        .unwrap_or_default();
                    println!("latest check at {}: {}{score}", check.at, check.verdict);
                    for measurement in &check.measurements {
                        println!("  {}", measurement.text);
                    }
                    if check.measurements.is_empty() {
                        println!("  {}", check.detail);
                    }
                }
                if let Some(commit) = &deploy.commit {
                    println!("commit: {commit}");
                }
                if deploy.break_glass {
                    match &deploy.break_glass_by {
                        Some(by) => println!("BREAK-GLASS confirmed by {} at {}", by.by, by.at),
                        None => println!("BREAK-GLASS asked for, not confirmed yet"),
                    }
                }
                for approval in &deploy.approvals {
                    let until = approval.expires_at.as_deref().unwrap_or("-");
                    println!(
                        "approved by {} at {} (valid until {until})",
                        approval.by, approval.at
                    );
                }
                if let Some(announcement) = &deploy.go_announcement {
                    println!("go/no-go: {announcement}");
                }
                if let Some(go) = &deploy.go {
                    println!("go given by {} at {}", go.by, go.at);
                }
                if let Some(reason) = &deploy.end_reason {
                    println!("ended: {reason}");
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.follow.follow {
        return Err(
            Failure::new("invalid_arguments", "--follow needs a deploy id")
                .hint("slipway status ID --follow")
                .into(),
        );
    }
    let services: Vec<ServiceView> = match &args.what {
        Some(name) => vec![
            client
                .get(&format!(
                    "/api/v1/services/{}",
                    super::artifact::encode(name)
                ))
                .await?,
        ],
        None => client.get("/api/v1/services").await?,
    };
    match output {
        Output::Json => print_json(&services),
        Output::Text => table(
            &["SERVICE", "ENV", "RUNNING", "VERSION", "DEPLOY IN PROGRESS"],
            services.iter().flat_map(|s| {
                s.environments.iter().map(|e| {
                    vec![
                        s.name.clone(),
                        e.environment.clone(),
                        e.running
                            .as_ref()
                            .map(|r| r.label.clone())
                            .unwrap_or("-".into()),
                        e.running
                            .as_ref()
                            .map(|r| r.version.clone())
                            .unwrap_or("-".into()),
                        e.active_deploy.map(|d| d.to_string()).unwrap_or("-".into()),
                    ]
                })
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `approve`, `go`, `confirm`: an action on a deploy that needs no reason.
#[derive(Debug, clap::Args)]
pub(crate) struct ActionArgs {
    pub(crate) id: i64,
}

/// `abort`: an action that needs a reason.
#[derive(Debug, clap::Args)]
pub(crate) struct AbortArgs {
    pub(crate) id: i64,
    #[arg(long)]
    pub(crate) reason: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// The release to go back to; the one that ran before the current one when absent.
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    follow: FollowArgs,
}

/// Approves what the approver sees: prints the deploy's release, artifact, config and plan, and
/// sends that binding, so the approval is refused if the deploy changed in between.
/// `slipway approve ID`: what is approved is what the deploy shows now, unless the approver
/// pins what they reviewed earlier (`--artifact`, `--config`, `--plan`): then a deploy that
/// no longer matches is refused.
#[derive(Debug, clap::Args)]
pub(crate) struct ApproveArgs {
    id: i64,
    /// The artifact digest you reviewed (`sha256:…`).
    #[arg(long)]
    artifact: Option<String>,
    /// The config hash you reviewed.
    #[arg(long)]
    config: Option<String>,
    /// The plan hash you reviewed.
    #[arg(long)]
    plan: Option<String>,
}

pub(crate) async fn approve(
    client: &Client,
    args: &ApproveArgs,
    output: Output,
) -> Result<ExitCode> {
    let id = args.id;
    let mut deploy: DeployView = client.get(&format!("/api/v1/deploys/{id}")).await?;
    let pinned = [&args.artifact, &args.config, &args.plan];
    let binding = &mut deploy.binding;
    for (pin, field) in pinned.into_iter().zip([
        &mut binding.artifact,
        &mut binding.config,
        &mut binding.plan,
    ]) {
        if let Some(pin) = pin {
            field.clone_from(pin);
        }
    }
    if output == Output::Text {
        println!("{}", headline(&deploy));
        println!(
            "approving artifact {}, config {}, plan {}:",
            deploy.binding.artifact, deploy.binding.config, deploy.binding.plan
        );
        print_steps(&deploy);
    }
    let body = serde_json::json!({
        "deploy": deploy.id,
        "artifact": deploy.binding.artifact,
        "config": deploy.binding.config,
        "plan": deploy.binding.plan,
    });
    let request = client
        .request(Method::POST, &format!("/api/v1/deploys/{id}/approve"))
        .json(&body);
    let answer: serde_json::Value = client.send(request).await?;
    print_action(&answer, "approve", output)?;
    Ok(ExitCode::SUCCESS)
}

/// Sends an operator action and prints where the deploy stands after it.
pub(crate) async fn act(
    client: &Client,
    id: i64,
    action: &str,
    reason: Option<&str>,
    output: Output,
) -> Result<ExitCode> {
    let body = serde_json::json!({ "reason": reason });
    let request = client
        .request(Method::POST, &format!("/api/v1/deploys/{id}/{action}"))
        .json(&body);
    let answer: serde_json::Value = client.send(request).await?;
    print_action(&answer, action, output)?;
    Ok(ExitCode::SUCCESS)
}

fn print_action(answer: &serde_json::Value, action: &str, output: Output) -> Result<()> {
    match output {
        Output::Json => print_json(answer),
        Output::Text => {
            let deploy: DeployView = serde_json::from_value(answer["deploy"].clone())?;
            let pending = answer["status"] == "pending";
            let done = if pending {
                "recorded; the engine has not applied it yet"
            } else {
                "done"
            };
            println!(
                "{action} deploy {}: {done}; now {}",
                deploy.id,
                phase_text(&deploy)
            );
            if let Some(waiting) = waiting_hint(&deploy) {
                println!("  {waiting}");
            }
        }
    }
    Ok(())
}

pub(crate) async fn rollback(
    args: &RollbackArgs,
    client: &Client,
    output: Output,
) -> Result<ExitCode> {
    let body = serde_json::json!({
        "service": args.service,
        "environment": args.environment,
        "to": args.to,
        "reason": args.reason,
    });
    let key = slipway_server::auth::random_hex(16);
    let request = client
        .request(Method::POST, "/api/v1/rollbacks")
        .header("Idempotency-Key", &key)
        .json(&body);
    let answer: serde_json::Value = client.send(request).await?;
    let deploy: DeployView = serde_json::from_value(answer["deploy"].clone())?;
    if !args.follow.follow {
        if deploy.purpose == "rollback" && output == Output::Text {
            println!("{}", headline(&deploy));
            print_steps(&deploy);
            return Ok(ExitCode::SUCCESS);
        }
        print_action(&answer, "rollback", output)?;
        return Ok(ExitCode::SUCCESS);
    }
    if output == Output::Text {
        println!("{}", headline(&deploy));
    }
    // An undone deploy past scale-in hands over to its rollback deploy: follow that one too.
    let deadline = follow_deadline(&args.follow)?;
    let mut id = deploy.id;
    loop {
        let Some(ended) = watch(client, id, deadline, output).await? else {
            return Ok(ExitCode::from(exit::STILL_RUNNING));
        };
        match (ended.phase.result.as_deref(), ended.rollback_deploy) {
            (Some("rolled_back"), Some(next)) => {
                if output == Output::Text {
                    println!("deploy {id} handed over to rollback deploy {next}; following it");
                }
                id = next;
            }
            // Rolled back is what was asked for.
            (Some("rolled_back" | "succeeded"), _) => {
                ending(&ended, output);
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Ok(ending(&ended, output)),
        }
    }
}
