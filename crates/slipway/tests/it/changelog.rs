//! `slipway changelog` on a real repository built by the test: grouped Markdown, JSON, the
//! strict mode CI uses, and a clear error outside a repository.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::BIN;

fn git(dir: &Path, args: &[&str]) {
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
}

fn commit(dir: &Path, message: &str) {
    git(dir, &["commit", "--allow-empty", "-q", "-m", message]);
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

#[test]
fn changelog_groups_a_range_and_strict_mode_fails_on_commits_without_a_category() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    commit(repo, "Initial commit");
    git(repo, &["tag", "v1"]);
    commit(
        repo,
        "Add the login page\n\nchangelog: User-Facing Improvements, Login, Show the new login page",
    );
    commit(
        repo,
        "Fix a typo\n\nchangelog: Bug Fxes, Emails, Fix the subject of the reset email",
    );
    commit(repo, "fix(api): refuse empty tokens (#41)");
    commit(repo, "Bump serde from 1.0.1 to 1.0.2");
    commit(repo, "Tidy up [skip changelog]");

    let out = slipway(repo, &["changelog", "v1..main"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "## User-Facing Improvements",
        "### Login",
        "Show the new login page",
        "## Bug Fixes",
        "Fix the subject of the reset email",
        "refuse empty tokens (#41",
        "## Dependencies",
    ] {
        assert!(text.contains(expected), "`{expected}` missing in:\n{text}");
    }
    assert!(!text.contains("Tidy up"), "{text}");
    let json = slipway(repo, &["changelog", "v1..main", "--output", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["unassigned"].as_array().unwrap().len(), 0, "{value}");
    assert!(
        slipway(repo, &["changelog", "v1..main", "--strict"])
            .status
            .success()
    );

    commit(repo, "Something nobody described");
    let strict = slipway(repo, &["changelog", "v1..main", "--strict"]);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(strict.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 of 6 commits in v1..main need a category"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    let text = String::from_utf8_lossy(&strict.stdout);
    assert!(text.contains("Something nobody described"), "{text}");
}

#[test]
fn changelog_outside_a_repository_or_of_an_unknown_range_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let outside = slipway(dir.path(), &["changelog", "a..b"]);
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert_eq!(outside.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a git repository"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");

    git(dir.path(), &["init", "-q", "-b", "main"]);
    commit(dir.path(), "Initial commit");
    let unknown = slipway(dir.path(), &["changelog", "nope..main"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nope..main"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
}
