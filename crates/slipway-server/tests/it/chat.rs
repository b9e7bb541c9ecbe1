//! Chat operations from Slack: signed, fresh requests only (a forged, re-signed with the wrong
//! secret, replayed, future-dated or unsigned one is a 401 that records nothing), chat users
//! mapped to slipway users and their roles, and approve as a button whose signed click acts
//! through the API's own rules.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use slipway_engine::clock::{Clock, SystemClock};
use slipway_notify::signature::sign_slack;
use tower::ServiceExt;

use crate::support::{Api, CHAT_SECRET, error_code, wait_for_deploy};

const COMMANDS: &str = "/chat/slack/commands";
const INTERACTIONS: &str = "/chat/slack/interactions";

fn now_secs() -> i64 {
    SystemClock.now().as_millis() / 1000
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        form.append_pair(key, value);
    }
    form.finish()
}

/// A slash command as Slack sends it.
fn command_body(user: &str, text: &str) -> String {
    form(&[
        ("token", "legacy-verification-token"),
        ("team_id", "T0001"),
        ("channel_id", "C0RELEASES"),
        ("user_id", user),
        ("command", "/slipway"),
        ("text", text),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0001/1/abc",
        ),
    ])
}

/// A request to `path` with `body`, and the given timestamp and signature headers.
fn request(
    path: &str,
    body: &str,
    timestamp: Option<String>,
    signature: Option<String>,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(timestamp) = timestamp {
        request = request.header("X-Slack-Request-Timestamp", timestamp);
    }
    if let Some(signature) = signature {
        request = request.header("X-Slack-Signature", signature);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

/// Signed with the right secret, now.
fn signed(path: &str, body: &str) -> Request<Body> {
    let timestamp = now_secs().to_string();
    let signature = sign_slack(CHAT_SECRET.as_bytes(), &timestamp, body.as_bytes());
    request(path, body, Some(timestamp), Some(signature))
}

async fn event_count(api: &Api) -> usize {
    api.state
        .store
        .events(None, 0, 100_000)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn forged_wrongly_signed_replayed_or_unsigned_chat_requests_are_refused_and_record_nothing() {
    let api = Api::start().await;
    let _bob = api.user("bob", "approver").await;
    let before = event_count(&api).await;
    let body = command_body("U0BOB", "lock idp prod forged");
    let now = now_secs();
    let sign = |secret: &str, at: i64, body: &str| {
        sign_slack(secret.as_bytes(), &at.to_string(), body.as_bytes())
    };
    let cases = [
        (
            "no headers",
            request(COMMANDS, &body, None, None),
            "missing_signature",
        ),
        (
            "no signature",
            request(COMMANDS, &body, Some(now.to_string()), None),
            "missing_signature",
        ),
        (
            "forged signature",
            request(
                COMMANDS,
                &body,
                Some(now.to_string()),
                Some(format!("v0={}", "ab".repeat(32))),
            ),
            "invalid_signature",
        ),
        (
            "signed with another secret",
            request(
                COMMANDS,
                &body,
                Some(now.to_string()),
                Some(sign("not-the-signing-secret", now, &body)),
            ),
            "invalid_signature",
        ),
        (
            "body changed after signing",
            request(
                COMMANDS,
                &command_body("U0BOB", "lock pivcac prod forged"),
                Some(now.to_string()),
                Some(sign(CHAT_SECRET, now, &body)),
            ),
            "invalid_signature",
        ),
        (
            "replayed six minutes later",
            request(
                COMMANDS,
                &body,
                Some((now - 360).to_string()),
                Some(sign(CHAT_SECRET, now - 360, &body)),
            ),
            "stale_request",
        ),
        (
            "dated six minutes ahead",
            request(
                COMMANDS,
                &body,
                Some((now + 360).to_string()),
                Some(sign(CHAT_SECRET, now + 360, &body)),
            ),
            "stale_request",
        ),
        (
            "a timestamp at the edge of i64, which must not overflow",
            request(
                COMMANDS,
                &body,
                Some(i64::MIN.to_string()),
                Some(format!("v0={}", "ab".repeat(32))),
            ),
            "stale_request",
        ),
        (
            "a click with a forged signature",
            request(
                INTERACTIONS,
                &form(&[("payload", "{}")]),
                Some(now.to_string()),
                Some(sign("not-the-signing-secret", now, "payload=%7B%7D")),
            ),
            "invalid_signature",
        ),
    ];
    for (case, request, expected) in cases {
        let (status, answer) = api.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {answer}");
        assert_eq!(error_code(&answer), expected, "{case}: {answer}");
        assert!(answer["error"]["hint"].is_string(), "{case}: {answer}");
    }
    assert_eq!(event_count(&api).await, before, "nothing was recorded");
    assert!(api.state.store.locks().await.unwrap().is_empty());

    // The same command, signed and fresh, acts.
    let (status, answer) = api.send(signed(COMMANDS, &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["response_type"], "in_channel", "{answer}");
    assert_eq!(api.state.store.locks().await.unwrap().len(), 1);
    api.stop().await;
}

#[tokio::test]
async fn status_answers_a_mapped_user_and_an_unmapped_one_is_refused_with_a_hint() {
    let api = Api::start().await;
    let _vera = api.user("vera", "viewer").await;
    let (status, answer) = api
        .send(signed(COMMANDS, &command_body("U0VERA", "status")))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"response_type": "ephemeral", "text": "No deploys yet."})
    );

    let (status, answer) = api
        .send(signed(COMMANDS, &command_body("U0STRANGER", "status")))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "Slack shows a 200's text to the user: {answer}"
    );
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.starts_with("Refused: Slack user U0STRANGER is not mapped to a slipway user."),
        "{text}"
    );
    assert!(text.contains("hint: ask an admin to add `U0STRANGER = \"NAME\"` under [chat.users]"));

    let (_, answer) = api
        .send(signed(COMMANDS, &command_body("U0VERA", "frobnicate")))
        .await;
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.starts_with("Refused: `frobnicate` is not a slipway command"),
        "{text}"
    );
    assert!(text.contains("hint: Commands: `status"), "{text}");
    api.stop().await;
}

/// The click of the first button of `answer`, by `user`.
fn click(user: &str, answer: &Value) -> String {
    let button = &answer["blocks"][1]["elements"][0];
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": button["action_id"], "value": button["value"]}],
        "response_url": "http://127.0.0.1:9/not-an-allowed-origin",
    });
    form(&[("payload", &payload.to_string())])
}

#[tokio::test]
async fn approve_answers_with_a_button_whose_click_approves_as_the_mapped_user_and_never_as_a_viewer()
 {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "deployer").await;
    let _bob = api.user("bob", "approver").await;
    let _vera = api.user("vera", "viewer").await;
    api.release(&alice, "idp", "1.0.0").await;
    let (status, created) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&alice),
            Some(json!({"service": "idp", "environment": "prod"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    wait_for_deploy(&api, &alice, id, "waiting for approval", |d| {
        d["phase"]["waiting_for"] == "approval"
    })
    .await;

    let (status, answer) = api
        .send(signed(
            COMMANDS,
            &command_body("U0BOB", &format!("approve {id}")),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["response_type"], "ephemeral");
    assert_eq!(
        answer["blocks"][1]["elements"][0]["action_id"], "approve",
        "{answer}"
    );
    let events = event_count(&api).await;
    let approvals = |view: &Value| view["approvals"].as_array().unwrap().len();
    let (_, view) = api
        .call(
            Method::GET,
            &format!("/api/v1/deploys/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(approvals(&view), 0, "the command alone approves nothing");

    // A viewer clicking the button is refused by the API's own role check.
    let (status, refused) = api
        .send(signed(INTERACTIONS, &click("U0VERA", &answer)))
        .await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    let text = refused["text"].as_str().unwrap();
    assert!(text.starts_with("Refused: vera is a viewer"), "{text}");
    // The requester cannot approve her own deploy from chat either.
    let (_, refused) = api
        .send(signed(INTERACTIONS, &click("U0ALICE", &answer)))
        .await;
    let text = refused["text"].as_str().unwrap();
    assert!(text.starts_with("Refused:"), "{text}");
    assert!(text.contains("alice"), "{text}");
    let (_, view) = api
        .call(
            Method::GET,
            &format!("/api/v1/deploys/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(approvals(&view), 0, "{view:#}");

    // `go` answers with a Go button too; clicked while the deploy awaits approval, the engine
    // refuses it as it would from the API.
    let (_, go) = api
        .send(signed(
            COMMANDS,
            &command_body("U0BOB", &format!("go {id}")),
        ))
        .await;
    assert_eq!(go["blocks"][1]["elements"][0]["action_id"], "go", "{go}");
    let (_, refused) = api.send(signed(INTERACTIONS, &click("U0BOB", &go))).await;
    let text = refused["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("Refused: deploy {id} is not waiting for go")),
        "{text}"
    );

    // Bob's click approves, as bob; the result also goes to the click's response_url (Slack
    // shows a click's result only from there), here a local receiver allowed for the test.
    let (origin, posted, _receiver) = response_receiver().await;
    let allowed = with_response_origin(&api, &origin);
    let mut bob_click: Value = serde_json::from_str(
        &url::form_urlencoded::parse(click("U0BOB", &answer).as_bytes())
            .find(|(key, _)| key == "payload")
            .unwrap()
            .1,
    )
    .unwrap();
    bob_click["response_url"] = json!(format!("{origin}/actions/T0001/1/abc"));
    let body = form(&[("payload", &bob_click.to_string())]);
    let response = allowed.oneshot(signed(INTERACTIONS, &body)).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let approved: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::OK, "{approved}");
    let text = approved["text"].as_str().unwrap();
    assert_eq!(approved["replace_original"], true);
    assert!(
        text.starts_with(&format!(
            "PROD: idp RC 1 — deploy {id} approved by bob via Slack"
        )),
        "{text}"
    );
    let (_, view) = api
        .call(
            Method::GET,
            &format!("/api/v1/deploys/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(view["approvals"][0]["by"], "bob", "{view:#}");

    let log = api
        .state
        .store
        .events(Some(slipway_core::deploy::DeployId(id)), 0, 10_000)
        .await
        .unwrap();
    let chat: Vec<Value> = log
        .iter()
        .filter(|e| e.kind == "chat_action")
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect();
    assert_eq!(
        chat,
        [json!({"via": "slack", "chat_user": "U0BOB", "by": "bob", "action": "approve"})],
        "the audit log says the approval came from chat"
    );
    assert!(event_count(&api).await > events);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while posted.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing posted to response_url"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        posted.lock().unwrap()[0],
        approved,
        "the click's result, posted back"
    );
    api.stop().await;
}

type Posted = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// A local receiver standing in for Slack's response_url: records the JSON posted to it.
async fn response_receiver() -> (String, Posted, tokio::task::JoinHandle<()>) {
    let posted: Posted = Posted::default();
    let kept = posted.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            kept.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (origin, posted, task)
}

/// The same API (same store, engine and config), allowing `origin` as a response_url.
fn with_response_origin(api: &Api, origin: &str) -> axum::Router {
    let state = &api.state;
    slipway_server::app(slipway_server::AppState::new(slipway_server::Shared {
        store: state.store.clone(),
        config: state.config.clone(),
        blobs: state.blobs.clone(),
        clock: state.clock.clone(),
        metrics: slipway_server::Metrics::default(),
        settings: slipway_server::Settings {
            chat_response_origins: vec![origin.to_owned()],
            ..state.settings.clone()
        },
        vault: None,
    }))
}
