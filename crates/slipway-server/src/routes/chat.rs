//! Chat operations from Slack: a slash command (`/slipway deploy idp prod RC 3`) and the
//! buttons of its answers, outside `/api/v1` because Slack signs its requests instead of sending
//! a bearer token.
//!
//! Every request is checked before anything else happens: `X-Slack-Signature` must be
//! `v0=HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp + ":" + raw body)`
//! (compared in constant time), and the timestamp within five minutes of now, so a captured
//! request cannot be replayed later. A refused request is a 401 in the API's error shape and
//! leaves no trace in the store.
//!
//! The Slack user is mapped to a slipway user by `[chat.users]`; an unmapped one is refused.
//! Actions then go through the very handlers the API uses, as that user, so roles, the
//! not-self-approval rule, bindings and locks apply unchanged; each is also recorded in the
//! audit log as coming from chat. `approve` and `go` only answer with a button: the click,
//! signed too, is what acts.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway_core::deploy::DeployId;
use slipway_store::{DeployQuery, NewEvent};

use super::{deploys, locks};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};
use crate::views::{ActionView, DeployView};

/// The oldest (and furthest in the future) a request's timestamp may be, in seconds.
const MAX_REQUEST_AGE_SECS: u64 = 5 * 60;

const USAGE: &str = "Commands: `status [ID | SERVICE [ENV]]`, `deploy SERVICE ENV [RC N]`, \
                     `approve ID`, `go ID`, `confirm ID`, `rollback SERVICE ENV REASON…`, \
                     `lock SERVICE ENV REASON…`";

fn refused(code: &'static str, message: &str, hint: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message).with_hint(hint)
}

/// Checks Slack's signature and timestamp of a request; nothing is read or written before.
fn verify(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    let Some(secret) = &state.settings.chat_signing_secret else {
        return Err(refused(
            "chat_not_configured",
            "chat operations are not configured on this server",
            "set [chat] signing_secret_file (or signing_secret_env) in slipway.toml to the Slack \
             app's Signing Secret and restart",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(timestamp), Some(signature)) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    ) else {
        return Err(refused(
            "missing_signature",
            "the request carries no X-Slack-Signature or X-Slack-Request-Timestamp",
            "only Slack may call this endpoint: point the Slack app's slash command and \
             interactivity Request URLs here",
        ));
    };
    let now = state.clock.now().as_millis() / 1000;
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|sent| now.abs_diff(sent) <= MAX_REQUEST_AGE_SECS);
    if !fresh {
        return Err(refused(
            "stale_request",
            "the request's timestamp is more than 5 minutes from now; replays are refused",
            "if Slack sent it just now, check the server's clock (NTP)",
        ));
    }
    if !slipway_notify::signature::verify_slack(secret.bytes(), timestamp, body, signature) {
        return Err(refused(
            "invalid_signature",
            "the request's Slack signature does not match",
            "check that [chat] signing secret is the Slack app's Signing Secret (Basic \
             Information → App Credentials)",
        ));
    }
    Ok(())
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A reply only the person who asked sees.
fn ephemeral(text: impl Into<String>) -> Value {
    json!({"response_type": "ephemeral", "text": text.into()})
}

/// A reply the whole channel sees.
fn in_channel(text: impl Into<String>) -> Value {
    json!({"response_type": "in_channel", "text": text.into()})
}

fn refusal(error: &ApiError) -> Value {
    let mut text = format!("Refused: {}", error.message);
    if let Some(hint) = &error.hint {
        text.push_str(&format!("\nhint: {hint}"));
    }
    ephemeral(text)
}

/// The slipway user a Slack user acts as, or the reply refusing them.
async fn chat_caller(state: &AppState, chat_user: &str) -> Result<Caller, Value> {
    let Some(name) = state.config.chat.users.get(chat_user) else {
        return Err(ephemeral(format!(
            "Refused: Slack user {chat_user} is not mapped to a slipway user.\nhint: ask an \
             admin to add `{chat_user} = \"NAME\"` under [chat.users] in slipway.toml"
        )));
    };
    match state.store.user(name).await {
        Ok(Some(user)) => Ok(Caller { user }),
        Ok(None) => Err(ephemeral(format!(
            "Refused: [chat.users] maps {chat_user} to `{name}`, who is not a slipway user.\n\
             hint: an admin can add them: `slipway user add {name} --role deployer`"
        ))),
        Err(error) => Err(refusal(&ApiError::from(error))),
    }
}

/// Records in the audit log that `caller` did something from chat (once it was accepted).
async fn audit(
    state: &AppState,
    caller: &Caller,
    chat_user: &str,
    deploy: Option<i64>,
    what: &str,
) {
    let payload = json!({
        "via": "slack",
        "chat_user": chat_user,
        "by": caller.user.name,
        "action": what,
    });
    let event = NewEvent {
        deploy: deploy.map(DeployId),
        kind: "chat_action".to_owned(),
        payload: payload.to_string(),
    };
    // The action is done and its own event recorded by then: a failure here must not answer
    // "refused" and invite a second try.
    if let Err(error) = state.store.append_events(&[event], state.clock.now()).await {
        tracing::warn!(%error, chat_user, action = what, "cannot record the chat action's audit event");
    }
}

/// `POST /chat/slack/commands`: a slash command, form-encoded as Slack sends it.
pub(crate) async fn commands(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    verify(&state, &headers, &body)?;
    let form = form(&body);
    let chat_user = form.get("user_id").map(String::as_str).unwrap_or_default();
    let text = form.get("text").map(String::as_str).unwrap_or_default();
    let caller = match chat_caller(&state, chat_user).await {
        Ok(caller) => caller,
        Err(reply) => return Ok(Json(reply)),
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let reply = match command(&state, &caller, chat_user, &words).await {
        Ok(reply) => reply,
        Err(error) => refusal(&error),
    };
    Ok(Json(reply))
}

fn deploy_id(word: Option<&&str>, command: &str) -> ApiResult<i64> {
    word.and_then(|w| w.trim_start_matches('#').parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_command",
                format!("`{command}` needs a deploy number"),
            )
            .with_hint(format!(
                "e.g. `/slipway {command} 12`; `/slipway status` lists deploys"
            ))
        })
}

fn describe(view: &DeployView) -> String {
    let phase = &view.phase;
    let state = match (&phase.result, &phase.waiting_for, &phase.step) {
        (Some(result), _, _) => result.replace('_', " "),
        (None, Some(waiting), _) => format!("waiting for {}", waiting.replace('_', " ")),
        (None, None, Some(step)) => format!("{} ({step})", phase.state.replace('_', " ")),
        (None, None, None) => phase.state.replace('_', " "),
    };
    format!(
        "{}: {} {} — deploy {} by {}: {state}",
        view.environment.to_uppercase(),
        view.service,
        view.release.label,
        view.id,
        view.requested_by
    )
}

fn action_text(view: &ActionView, did: &str, by: &str) -> String {
    let deploy = &view.deploy;
    let pending = if view.status == "pending" {
        " (recorded; the engine has not applied it yet)"
    } else {
        ""
    };
    format!(
        "{}: {} {} — deploy {} {did} by {by} via Slack{pending}",
        deploy.environment.to_uppercase(),
        deploy.service,
        deploy.release.label,
        deploy.id
    )
}

async fn command(
    state: &AppState,
    caller: &Caller,
    chat_user: &str,
    words: &[&str],
) -> ApiResult<Value> {
    let name = &caller.user.name;
    match words.first().copied().unwrap_or("help") {
        "status" => status(state, words).await,
        "deploy" => {
            let (Some(service), Some(environment)) = (words.get(1), words.get(2)) else {
                return Err(ApiError::bad_request(
                    "invalid_command",
                    "`deploy` needs a service and an environment",
                )
                .with_hint(
                    "e.g. `/slipway deploy idp prod RC 3` (the newest release without RC)",
                ));
            };
            let release = (words.len() > 3).then(|| words[3..].join(" "));
            let body: deploys::NewDeployBody = serde_json::from_value(json!({
                "service": service,
                "environment": environment,
                "release": release,
            }))
            .map_err(|error| ApiError::bad_request("invalid_command", error.to_string()))?;
            let (_, Json(view)) = deploys::create_deploy(
                State(state.clone()),
                caller.clone(),
                HeaderMap::new(),
                Body(body),
            )
            .await?;
            audit(state, caller, chat_user, Some(view.id), &words.join(" ")).await;
            Ok(in_channel(format!(
                "{}: {} {} — deploy {} started by {name} via Slack",
                view.environment.to_uppercase(),
                view.service,
                view.release.label,
                view.id
            )))
        }
        "approve" | "go" => {
            let action = words[0];
            let id = deploy_id(words.get(1), action)?;
            let view = deploys::read_deploy(state, DeployId(id)).await?;
            Ok(confirmation(&view, action))
        }
        "confirm" => {
            let id = deploy_id(words.get(1), "confirm")?;
            let (_, Json(view)) =
                deploys::confirm(State(state.clone()), caller.clone(), Path(id)).await?;
            audit(state, caller, chat_user, Some(id), "confirm").await;
            Ok(in_channel(action_text(&view, "scale-in confirmed", name)))
        }
        "rollback" => {
            let (Some(service), Some(environment)) = (words.get(1), words.get(2)) else {
                return Err(ApiError::bad_request(
                    "invalid_command",
                    "`rollback` needs a service, an environment and a reason",
                )
                .with_hint("e.g. `/slipway rollback idp prod error rate up after RC 3`"));
            };
            let body: deploys::RollbackBody = serde_json::from_value(json!({
                "service": service,
                "environment": environment,
                "reason": words[3.min(words.len())..].join(" "),
            }))
            .map_err(|error| ApiError::bad_request("invalid_command", error.to_string()))?;
            let (_, Json(view)) = deploys::rollback(
                State(state.clone()),
                caller.clone(),
                HeaderMap::new(),
                Body(body),
            )
            .await?;
            let id = Some(view.deploy.id);
            audit(state, caller, chat_user, id, &words.join(" ")).await;
            Ok(in_channel(action_text(&view, "rolled back", name)))
        }
        "lock" => {
            let (Some(service), Some(environment)) = (words.get(1), words.get(2)) else {
                return Err(ApiError::bad_request(
                    "invalid_command",
                    "`lock` needs a service, an environment and a reason",
                )
                .with_hint("e.g. `/slipway lock idp prod investigating login errors`"));
            };
            let body: locks::LockBody = serde_json::from_value(json!({
                "service": service,
                "environment": environment,
                "reason": words[3.min(words.len())..].join(" "),
            }))
            .map_err(|error| ApiError::bad_request("invalid_command", error.to_string()))?;
            let _locked = locks::lock(State(state.clone()), caller.clone(), Body(body)).await?;
            audit(state, caller, chat_user, None, &words.join(" ")).await;
            Ok(in_channel(format!(
                "{}: {service} is locked by {name} via Slack: {}",
                environment.to_uppercase(),
                words[3.min(words.len())..].join(" ")
            )))
        }
        "help" => Ok(ephemeral(USAGE)),
        other => Err(ApiError::bad_request(
            "invalid_command",
            format!("`{other}` is not a slipway command"),
        )
        .with_hint(USAGE)),
    }
}

/// `status ID`, `status SERVICE [ENV]` or `status`: deploys and where they are.
async fn status(state: &AppState, words: &[&str]) -> ApiResult<Value> {
    if let Some(id) = words
        .get(1)
        .and_then(|w| w.trim_start_matches('#').parse::<i64>().ok())
    {
        let view = deploys::read_deploy(state, DeployId(id)).await?;
        return Ok(ephemeral(describe(&view)));
    }
    let query = DeployQuery {
        service: words.get(1).map(|s| (*s).to_owned()),
        environment: words.get(2).map(|s| (*s).to_owned()),
        before: None,
        limit: 10,
    };
    let now = state.clock.now();
    let found = state.store.list_deploys(&query).await?;
    if found.is_empty() {
        return Ok(ephemeral("No deploys yet."));
    }
    let lines: Vec<String> = found
        .iter()
        .map(|stored| describe(&DeployView::new(&stored.deploy, now)))
        .collect();
    Ok(ephemeral(lines.join("\n")))
}

/// The answer to `approve` and `go`: what would be approved, with a button that acts.
fn confirmation(view: &DeployView, action: &str) -> Value {
    let headline = describe(view);
    let (question, label, value) = match action {
        "approve" => (
            format!(
                "Approve {} {} ({}) to {}?\nartifact `{}`\nconfig `{}`\nplan `{}`",
                view.service,
                view.release.label,
                view.release.version,
                view.environment.to_uppercase(),
                view.binding.artifact,
                view.binding.config,
                view.binding.plan
            ),
            "Approve",
            json!({
                "deploy": view.id,
                "artifact": view.binding.artifact,
                "config": view.binding.config,
                "plan": view.binding.plan,
            }),
        ),
        _ => (
            view.go_announcement
                .clone()
                .unwrap_or_else(|| format!("Give the go for deploy {}?", view.id)),
            "Go",
            json!({"deploy": view.id}),
        ),
    };
    json!({
        "response_type": "ephemeral",
        "text": format!("{headline}\n{question}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{headline}\n{question}")}},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": action, "style": "primary",
                 "text": {"type": "plain_text", "text": label},
                 "value": value.to_string()},
                {"type": "button", "action_id": "cancel",
                 "text": {"type": "plain_text", "text": "Cancel"}, "value": "cancel"},
            ]},
        ],
    })
}

/// What an approve button carries: the binding the person was shown.
#[derive(Debug, Deserialize)]
struct ButtonValue {
    deploy: i64,
    #[serde(default)]
    artifact: Option<String>,
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    plan: Option<String>,
}

/// `POST /chat/slack/interactions`: a button click (`payload=` JSON, form-encoded).
pub(crate) async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    verify(&state, &headers, &body)?;
    let form = form(&body);
    let payload: Value = form
        .get("payload")
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_payload", "the request has no JSON `payload` field")
                .with_hint("Slack sends interactions as payload=JSON, form-encoded")
        })?;
    let chat_user = payload["user"]["id"].as_str().unwrap_or_default();
    let action = &payload["actions"][0];
    let action_id = action["action_id"].as_str().unwrap_or_default();
    let caller = match chat_caller(&state, chat_user).await {
        Ok(caller) => caller,
        Err(reply) => return Ok(Json(reply)),
    };
    if action_id == "cancel" {
        return Ok(Json(
            json!({"replace_original": true, "text": "Cancelled; nothing was done."}),
        ));
    }
    let reply = match click(&state, &caller, chat_user, action_id, action).await {
        Ok(text) => json!({"replace_original": true, "response_type": "in_channel", "text": text}),
        Err(error) => refusal(&error),
    };
    if let Some(url) = payload["response_url"].as_str() {
        respond_later(&state, url, &reply);
    }
    Ok(Json(reply))
}

/// Posts `reply` to a click's `response_url` in the background (Slack shows a click's result
/// only from there), when the URL is on an allowed origin; anything else is ignored.
fn respond_later(state: &AppState, url: &str, reply: &Value) {
    let allowed = state.settings.chat_response_origins.iter().any(|origin| {
        url.strip_prefix(origin.trim_end_matches('/'))
            .is_some_and(|rest| rest.starts_with('/'))
    });
    if !allowed {
        tracing::warn!(
            "a chat click's response_url is not on an allowed origin; not answered there"
        );
        return;
    }
    let (url, reply) = (url.to_owned(), reply.clone());
    tokio::spawn(async move {
        let sent = reqwest::Client::new()
            .post(&url)
            .timeout(std::time::Duration::from_secs(5))
            .json(&reply)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => {}
            Ok(answer) => {
                tracing::warn!(status = %answer.status(), "Slack refused a click's answer")
            }
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "a click's answer could not be posted")
            }
        }
    });
}

async fn click(
    state: &AppState,
    caller: &Caller,
    chat_user: &str,
    action_id: &str,
    action: &Value,
) -> ApiResult<String> {
    let value: ButtonValue = action["value"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_payload", "the button carries no deploy")
                .with_hint("use the buttons of a `/slipway approve` or `/slipway go` answer")
        })?;
    let name = caller.user.name.clone();
    let id = value.deploy;
    match action_id {
        "approve" => {
            let body: deploys::ApproveBody = serde_json::from_value(json!({
                "deploy": id,
                "artifact": value.artifact,
                "config": value.config,
                "plan": value.plan,
            }))
            .map_err(|error| ApiError::bad_request("invalid_payload", error.to_string()))?;
            let (_, Json(view)) = deploys::approve(
                State(state.clone()),
                caller.clone(),
                Path(id),
                Some(Body(body)),
            )
            .await?;
            audit(state, caller, chat_user, Some(id), "approve").await;
            Ok(action_text(&view, "approved", &name))
        }
        "go" => {
            let (_, Json(view)) =
                deploys::go(State(state.clone()), caller.clone(), Path(id)).await?;
            audit(state, caller, chat_user, Some(id), "go").await;
            Ok(action_text(&view, "given the go", &name))
        }
        other => Err(ApiError::bad_request(
            "invalid_payload",
            format!("`{other}` is not a slipway button"),
        )
        .with_hint("use the buttons of a `/slipway approve` or `/slipway go` answer")),
    }
}
