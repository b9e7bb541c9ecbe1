//! Checklists and the runbook through the real binary: a deploy to prod is refused with every
//! missing item and the commands that tick them, ticks by the allowed roles (and not by the
//! requester, for a review) make it pass, and `slipway runbook` prints the plan slipway runs,
//! from the local file and from the server.

use std::path::Path;

use slipway_core::config::parse_config;
use slipway_core::plan::{Purpose, ReleaseKind, derive_plan};
use slipway_testkit::server::{CliOutput, SpawnedServer};

use crate::support::{BIN, api_get, push_and_release};

/// A fleet of files: one per release with its instance count.
const FLEET: &str = r#"#!/bin/sh
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/fleet
mkdir -p "$dir"
file() { printf '%s/%s' "$dir" "$(printf %s "$1" | tr ' ' _)"; }
case "$1" in
launch) echo "$SLIPWAY_COUNT" > "$(file "$SLIPWAY_RELEASE")"; echo "launched $SLIPWAY_RELEASE" ;;
traffic) echo "traffic $SLIPWAY_WEIGHTS" ;;
stop) rm -f "$(file "$SLIPWAY_RELEASE")"; echo "stopped $SLIPWAY_RELEASE" ;;
observe)
  printf '{"fleets":['
  sep=''
  for f in "$dir"/*; do
    [ -e "$f" ] || continue
    label=$(basename "$f" | tr _ ' ')
    count=$(cat "$f")
    printf '%s{"release":"%s","desired":%s,"running":%s,"healthy":%s}' "$sep" "$label" "$count" "$count" "$count"
    sep=','
  done
  printf ']}\n'
  ;;
esac
"#;

const CONFIG: &str = r#"
[[service]]
name = "idp"
start = "bin/server --port $PORT"

[environment.prod]
target = "command"
bake = "0s"
checks = []
[environment.prod.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"

[[checklist]]
name = "agreement signed"
environment = "prod"
roles = ["approver"]
evidence = "link"

[[checklist]]
name = "logo present"
per = "environment"
evidence = "note"

[[checklist]]
name = "reviewed by another engineer"
different_from_requester = true
"#;

fn token(server: &SpawnedServer, admin: &str, user: &str, role: &str) -> String {
    server
        .cli(admin, &["user", "add", user, "--role", role])
        .success();
    server
        .cli(admin, &["token", "create", "--user", user])
        .success()
        .stdout
        .trim()
        .to_owned()
}

/// `slipway deploy idp --env prod --follow`, as `token`.
fn deploy(server: &SpawnedServer, token: &str) -> CliOutput {
    server.cli(
        token,
        &[
            "deploy",
            "idp",
            "--env",
            "prod",
            "--release",
            "1",
            "--follow",
            "--timeout",
            "60s",
        ],
    )
}

#[test]
fn preflight_refuses_until_the_checklist_is_ticked_then_the_deploy_passes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("fleet.sh"), FLEET).unwrap();
    let config = root.join("slipway.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let server = SpawnedServer::start(Path::new(BIN), &config, &root.join("data"));
    let admin = server.admin_token.clone();
    let alice = token(&server, &admin, "alice", "deployer");
    let carol = token(&server, &admin, "carol", "approver");
    push_and_release(&server, &alice, root, "1.0.0");

    let shown = server
        .cli(&alice, &["checklist", "idp", "--env", "prod"])
        .success()
        .stdout;
    assert!(
        shown.starts_with("checklist of idp in prod for RC 1: 0 of 3 done\n"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "slipway checklist tick idp --env prod --release \"RC 1\" \"agreement signed\" --link URL"
        ),
        "{shown}"
    );

    // Nothing ticked: the deploy fails in preflight, naming every item and how to tick it.
    let refused = deploy(&server, &alice);
    assert_eq!(refused.code(), 3, "{}\n{}", refused.stdout, refused.stderr);
    for expected in [
        "3 of 3 checklist item(s) of idp in prod not done for RC 1",
        "`agreement signed` (not ticked; an approver may tick it)",
        "slipway checklist tick idp --env prod \"logo present\" --note TEXT",
    ] {
        assert!(
            refused.stdout.contains(expected),
            "{expected}\n{}",
            refused.stdout
        );
    }

    // alice may not tick the agreement; carol may. alice's own review does not count.
    let forbidden = server.cli(
        &alice,
        &[
            "checklist",
            "tick",
            "idp",
            "agreement signed",
            "--env",
            "prod",
            "--release",
            "1",
            "--link",
            "https://contracts.example.com/iaa-114",
        ],
    );
    assert_eq!(forbidden.code(), 1);
    assert!(
        forbidden
            .stderr
            .contains("alice is a deployer; ticking `agreement signed` needs the approver role"),
        "{}",
        forbidden.stderr
    );
    let ticked = server
        .cli(
            &carol,
            &[
                "checklist",
                "tick",
                "idp",
                "agreement signed",
                "--env",
                "prod",
                "--release",
                "RC 1",
                "--link",
                "https://contracts.example.com/iaa-114",
            ],
        )
        .success()
        .stdout;
    assert_eq!(
        ticked.trim(),
        "ticked `agreement signed` of idp in prod for RC 1 (https://contracts.example.com/iaa-114)"
    );
    for (who, item) in [
        (&alice, "logo present"),
        (&alice, "reviewed by another engineer"),
    ] {
        server
            .cli(
                who,
                &[
                    "checklist",
                    "tick",
                    "idp",
                    item,
                    "--env",
                    "prod",
                    "--release",
                    "1",
                    "--note",
                    "checked",
                ],
            )
            .success();
    }
    let refused = deploy(&server, &alice);
    assert_eq!(refused.code(), 3, "{}", refused.stdout);
    assert!(
        refused.stdout.contains(
            "1 of 3 checklist item(s) of idp in prod not done for RC 1: `reviewed by another \
             engineer` (ticked by alice, who requested the deploy; someone else must tick it"
        ),
        "{}",
        refused.stdout
    );

    server
        .cli(
            &carol,
            &[
                "checklist",
                "tick",
                "idp",
                "reviewed by another engineer",
                "--env",
                "prod",
                "--release",
                "1",
                "--note",
                "read the diff of the partner config",
            ],
        )
        .success();
    let status = server
        .cli(
            &alice,
            &["--output", "json", "checklist", "idp", "--env", "prod"],
        )
        .success()
        .stdout;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["complete"], true, "{status:#}");

    let passed = deploy(&server, &alice);
    assert_eq!(passed.code(), 0, "{}\n{}", passed.stdout, passed.stderr);
    let id = passed
        .stdout
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.trim_end_matches(':').parse::<i64>().ok())
        .unwrap_or_else(|| panic!("a deploy id in {}", passed.stdout));
    let events = api_get(
        &server,
        &alice,
        &format!("/api/v1/deploys/{id}/events?limit=500"),
    );
    let checklist = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "preflight_checked" && e["data"]["check"] == "checklist")
        .unwrap_or_else(|| panic!("no checklist finding in {events:#}"));
    assert_eq!(checklist["data"]["passed"], true);
    let detail = checklist["data"]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("checklist of idp in prod for RC 1 complete: `agreement signed` ticked by carol (approver)"),
        "{detail}"
    );
    assert!(
        detail.contains("`reviewed by another engineer` ticked by carol (approver)"),
        "{detail}"
    );

    // An untick takes the standing item back.
    server
        .cli(
            &carol,
            &[
                "checklist",
                "untick",
                "idp",
                "logo present",
                "--env",
                "prod",
                "--reason",
                "old logo",
            ],
        )
        .success();
    let shown = server
        .cli(&alice, &["checklist", "show", "idp", "--env", "prod"])
        .success()
        .stdout;
    assert!(shown.contains(": 2 of 3 done"), "{shown}");
}

#[test]
fn runbook_prints_the_plan_of_the_config_from_the_file_and_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("fleet.sh"), FLEET).unwrap();
    let config_path = root.join("slipway.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let config = parse_config("slipway.toml", CONFIG).unwrap();
    let plan = derive_plan(
        config.service("idp").unwrap(),
        config.environment("prod").unwrap(),
        ReleaseKind::Full,
        Purpose::Release,
    );

    // No server is running at this address: the local file is enough.
    let local = std::process::Command::new(BIN)
        .args(["runbook", "idp", "--env", "prod", "--config"])
        .arg(&config_path)
        .env("SLIPWAY_SERVER", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let markdown = String::from_utf8(local.stdout).unwrap();
    assert!(markdown.starts_with("# Runbook: idp\n"), "{markdown}");
    assert!(markdown.contains(&plan.describe()), "{markdown}");
    assert!(markdown.contains("**agreement signed**"), "{markdown}");
    assert!(
        markdown.contains("slipway rollback idp --env prod"),
        "{markdown}"
    );

    let typo = std::process::Command::new(BIN)
        .args(["runbook", "ipd", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(stderr.contains("error: unknown service `ipd`"), "{stderr}");
    assert!(stderr.contains("hint: did you mean `idp`?"), "{stderr}");

    let server = SpawnedServer::start(Path::new(BIN), &config_path, &root.join("data"));
    let remote = server
        .cli(
            &server.admin_token,
            &["runbook", "idp", "--env", "prod", "--from-server"],
        )
        .success()
        .stdout;
    assert_eq!(remote, markdown, "the server renders the same runbook");
    let missing = server.cli(
        &server.admin_token,
        &["runbook", "idp", "--env", "prdo", "--from-server"],
    );
    assert_eq!(missing.code(), 1);
    assert!(
        missing.stderr.contains("hint: did you mean `prod`?"),
        "{}",
        missing.stderr
    );
}
