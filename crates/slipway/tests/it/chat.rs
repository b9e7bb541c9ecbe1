//! `slipway serve` with `[chat]` and `[[notify]]`: the signing secret is read from its file and
//! a signed slash command is answered as the mapped user, an unsigned one refused; `slipway
//! notifications` lists what was sent.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use slipway_notify::signature::sign_slack;
use slipway_testkit::server::SpawnedServer;

use crate::support::{BIN, json, request_with};

const SIGNING_SECRET: &str = "e2e-slack-signing-secret";

const CONFIG: &str = r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "exec python3 app"

[environment.dev]

[[notify]]
kind = "slack"
url = "http://127.0.0.1:9/slack"

[chat]
signing_secret_file = "slack.secret"

[chat.users]
U0ADMIN = "admin"
"#;

fn post_command(server: &SpawnedServer, body: &str, signed: bool) -> (u16, serde_json::Value) {
    let addr: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut headers = format!(
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    if signed {
        let signature = sign_slack(SIGNING_SECRET.as_bytes(), &timestamp, body.as_bytes());
        headers.push_str(&format!(
            "X-Slack-Request-Timestamp: {timestamp}\r\nX-Slack-Signature: {signature}\r\n"
        ));
    }
    let (status, answer) =
        request_with(addr, "POST", "/chat/slack/commands", &headers, body).unwrap();
    (status, json(&answer))
}

#[test]
fn serve_answers_signed_slash_commands_with_the_configured_secret_and_refuses_unsigned_ones() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::write(root.join("slipway.toml"), CONFIG).unwrap();
    std::fs::write(root.join("slack.secret"), format!("{SIGNING_SECRET}\n")).unwrap();
    let server = SpawnedServer::start(
        Path::new(BIN),
        &root.join("slipway.toml"),
        &root.join("data"),
    );
    let body = "user_id=U0ADMIN&command=%2Fslipway&text=status";

    let (status, answer) = post_command(&server, body, true);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["text"], "No deploys yet.", "{answer}");

    let (status, answer) = post_command(&server, body, false);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "missing_signature", "{answer}");

    let listed = server
        .cli(&server.admin_token, &["notifications"])
        .success();
    assert_eq!(listed.stdout.trim(), "no notifications");
    assert!(
        !server.log().contains(SIGNING_SECRET),
        "the signing secret never reaches the log"
    );
}
