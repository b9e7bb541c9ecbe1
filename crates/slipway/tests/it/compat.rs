//! `slipway compat BASE HEAD` driving the real binary on a repository built by the test: the
//! human report and exit status, `--output json`, suppressions from `slipway.toml` with
//! `--service`, clear errors for a bad repository or revision; and the `compat` preflight step of
//! a real server refusing a deploy that breaks beside the running release, then passing one whose
//! finding is acknowledged, with the reason in the deploy's events.

use std::path::Path;
use std::process::{Command, Output};

use slipway_testkit::server::SpawnedServer;

use crate::support::{BIN, FLEET_SCRIPT, api_get, push_build};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.org")
        .env("GIT_COMMITTER_NAME", "alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.org")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

fn slipway(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("slipway runs")
}

/// A Rails-like repository: `v1` shows users' emails, `v2` drops the column.
fn repository(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    write(
        dir,
        "app/models/user.rb",
        "class User < ApplicationRecord\nend\n",
    );
    write(
        dir,
        "app/views/users/show.html.erb",
        "<p><%= @user.email %></p>\n",
    );
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "users"]);
    git(dir, &["tag", "v1"]);
    write(
        dir,
        "db/migrate/20260101000000_drop_email.rb",
        "class DropEmail < ActiveRecord::Migration[7.1]\n  def change\n    remove_column :users, :email\n  end\nend\n",
    );
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "drop email"]);
    git(dir, &["tag", "v2"]);
}

#[test]
fn compat_reports_an_unsafe_change_with_both_places_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    repository(dir.path());
    let out = slipway(dir.path(), &["compat", "v1", "v2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("unsafe [rails-drop-column-in-use]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  base: app/views/users/show.html.erb:1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  head: db/migrate/20260101000000_drop_email.rb:3"),
        "{stdout}"
    );
    assert!(stdout.contains("  recipe: deploy 1:"), "{stdout}");
    assert!(stderr.contains("hint:"), "{stderr}");

    let same = slipway(dir.path(), &["compat", "v1", "v1"]);
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
}

#[test]
fn compat_json_and_a_config_suppression_let_the_change_pass() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("idp");
    std::fs::create_dir_all(&repo).unwrap();
    repository(&repo);
    write(
        dir.path(),
        "slipway.toml",
        "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"idp\"\n\n\
         [service.compat]\nignore = [{ rule = \"rails-drop-column-in-use\", path = \"db/migrate/\", \
         reason = \"the view shows a decorated email\" }]\n\n[environment.prod]\n",
    );
    let out = slipway(
        dir.path(),
        &["--output", "json", "compat", "v1", "v2", "--service", "idp"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["passed"], true);
    let finding = &json["report"]["findings"][0];
    assert_eq!(finding["rule"], "rails-drop-column-in-use");
    assert_eq!(finding["suppressed"]["source"], "config");
    assert_eq!(
        finding["suppressed"]["reason"],
        "the view shows a decorated email"
    );
    assert_eq!(finding["head"]["line"], 3);
}

#[test]
fn compat_explains_a_bad_repository_or_revision() {
    let dir = tempfile::tempdir().unwrap();
    let out = slipway(dir.path(), &["compat", "v1", "v2", "--repo", "nowhere"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("error: nowhere is not a git repository"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: pass the repository with --repo"),
        "{stderr}"
    );

    repository(dir.path());
    let out = slipway(dir.path(), &["compat", "v1", "v9"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("git does not know the revision \"v9\""),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

const CONFIG: &str = r#"
[[service]]
name = "idp"
start = "bin/server --port $PORT"

[service.source]
repo = "repo"

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
"#;

fn deploy(
    server: &SpawnedServer,
    token: &str,
    release: &str,
) -> slipway_testkit::server::CliOutput {
    server.cli(
        token,
        &[
            "deploy",
            "idp",
            "--env",
            "prod",
            "--release",
            release,
            "--follow",
            "--timeout",
            "60s",
        ],
    )
}

fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn preflight_refuses_a_release_that_breaks_beside_the_running_one_and_records_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("fleet.sh"), FLEET_SCRIPT).unwrap();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    write(
        &repo,
        "app/views/users/show.html.erb",
        "<p><%= @user.email %></p>\n",
    );
    let first = commit_all(&repo, "users");
    let migration = |comment: &str| {
        format!(
            "class Rename < ActiveRecord::Migration[7.1]\n  def change\n{comment}    rename_column :users, :email, :mail\n  end\nend\n"
        )
    };
    write(&repo, "db/migrate/20260101000000_rename.rb", &migration(""));
    let unsafe_commit = commit_all(&repo, "rename email");
    let comment =
        "    # slipway:compat-ignore rails-rename-column the view reads a presenter since RC 1\n";
    write(
        &repo,
        "db/migrate/20260101000000_rename.rb",
        &migration(comment),
    );
    let acknowledged = commit_all(&repo, "acknowledge the rename");

    let config = root.join("slipway.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let server = SpawnedServer::start(Path::new(BIN), &config, &root.join("data"));
    let token = server.admin_token.clone();
    for (version, commit) in [
        ("1.0.0", &first),
        ("1.1.0", &unsafe_commit),
        ("1.2.0", &acknowledged),
    ] {
        push_build(&server, &token, root, version, Some(commit));
        server
            .cli(&token, &["release", "create", "idp", "--version", version])
            .success();
    }

    let first_deploy = deploy(&server, &token, "1");
    assert_eq!(
        first_deploy.code(),
        0,
        "{}\n{}",
        first_deploy.stdout,
        first_deploy.stderr
    );

    let refused = deploy(&server, &token, "2");
    assert_eq!(refused.code(), 3, "{}\n{}", refused.stdout, refused.stderr);
    for expected in [
        "[rails-rename-column]",
        "db/migrate/20260101000000_rename.rb:3",
        "slipway:compat-ignore",
    ] {
        assert!(
            refused.stdout.contains(expected) || refused.stderr.contains(expected),
            "{expected}\n{}\n{}",
            refused.stdout,
            refused.stderr
        );
    }

    let passed = deploy(&server, &token, "3");
    assert_eq!(passed.code(), 0, "{}\n{}", passed.stdout, passed.stderr);
    let id = passed
        .stdout
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.trim_end_matches(':').parse::<i64>().ok())
        .unwrap_or_else(|| panic!("a deploy id in {}", passed.stdout));
    let events = api_get(
        &server,
        &token,
        &format!("/api/v1/deploys/{id}/events?limit=500"),
    );
    let compat = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "preflight_checked" && e["data"]["check"] == "compat")
        .unwrap_or_else(|| panic!("no compat check in {events:#}"));
    assert_eq!(compat["data"]["passed"], true);
    let detail = compat["data"]["detail"].as_str().unwrap();
    assert!(detail.contains("RC 1 ("), "{detail}");
    assert!(
        detail.contains(
            "rails-rename-column at db/migrate/20260101000000_rename.rb:4 acknowledged in code: the view reads a presenter since RC 1"
        ),
        "{detail}"
    );
}
