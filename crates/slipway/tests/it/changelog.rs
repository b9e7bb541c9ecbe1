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

const CATEGORIES_CONFIG: &str = r#"
[[service]]
name = "idp"
start = "bin/server --port $PORT"

[service.source]
repo = "idp"

[service.source.changelog]
categories = ["Security", "Features", "Fixes", "Chores"]

[environment.prod]
"#;

#[test]
fn a_service_s_categories_group_its_changelog_and_a_default_only_category_needs_a_human() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("slipway.toml"), CATEGORIES_CONFIG).unwrap();
    let repo = root.join("idp");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(&repo, "Initial commit");
    git(&repo, &["tag", "v1"]);
    commit(
        &repo,
        "Lock accounts\n\nchangelog: Securty, Login, Lock accounts after five failed sign-ins",
    );
    commit(
        &repo,
        "Show the login page\n\nchangelog: User-Facing Improvements, Login, Show the new login page",
    );
    commit(&repo, "feat(api): accept passkeys (#7)");
    commit(&repo, "fix: refuse empty tokens");
    commit(&repo, "chore: tidy the build");

    // From the directory of slipway.toml: its default path, the repository from [service.source].
    let out = slipway(root, &["changelog", "v1..main", "--service", "idp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let position = |wanted: &str| {
        text.find(wanted)
            .unwrap_or_else(|| panic!("`{wanted}` missing in:\n{text}"))
    };
    // The configured order, the misspelling under the category it is close to, and the
    // Conventional Commits where the defaults of `features`, `fixes` and `other` send them.
    let order = [
        "## Security",
        "### Login",
        "- Lock accounts after five failed sign-ins",
        "## Features",
        "accept passkeys (#7",
        "## Fixes",
        "refuse empty tokens",
        "## Chores",
        "tidy the build",
        "## Needs a category",
        "Show the login page: unknown category \"User-Facing Improvements\"",
    ];
    let positions: Vec<usize> = order.iter().map(|wanted| position(wanted)).collect();
    assert!(positions.is_sorted(), "not in the order {order:?}:\n{text}");
    assert!(!text.contains("## User-Facing Improvements"), "{text}");

    // From elsewhere with --config; JSON says why the commit needs a human.
    let json = slipway(
        &repo,
        &[
            "changelog",
            "v1..main",
            "--service",
            "idp",
            "--config",
            "../slipway.toml",
            "--output",
            "json",
        ],
    );
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let unassigned = value["unassigned"].as_array().unwrap();
    assert_eq!(unassigned.len(), 1, "{value}");
    assert_eq!(unassigned[0]["reason"]["kind"], "unknown_category");
    assert_eq!(
        unassigned[0]["reason"]["written"],
        "User-Facing Improvements"
    );
    let security = &value["entries"][0];
    assert_eq!(security["category"], "Security", "{value}");
    assert_eq!(security["source"]["line"]["written"], "Securty", "{value}");

    // Without --service: the default categories, where the custom one is unknown.
    let default = slipway(&repo, &["changelog", "v1..main"]);
    let text = String::from_utf8_lossy(&default.stdout);
    assert!(text.contains("## User-Facing Improvements"), "{text}");
    assert!(
        text.contains("Lock accounts: unknown category \"Securty\""),
        "{text}"
    );

    // threshold = 1 accepts only differences of case, spaces and hyphens: no misspelling.
    std::fs::write(
        root.join("slipway.toml"),
        CATEGORIES_CONFIG.replace("\"Chores\"]", "\"Chores\"]\nthreshold = 1"),
    )
    .unwrap();
    let exact = slipway(root, &["changelog", "v1..main", "--service", "idp"]);
    let text = String::from_utf8_lossy(&exact.stdout);
    assert!(
        text.contains("Lock accounts: unknown category \"Securty\" (nearest: \"Security\")"),
        "{text}"
    );
    assert!(!text.contains("## Security"), "{text}");
    // CI's strict mode names the categories a commit may use.
    let strict = slipway(
        root,
        &["changelog", "v1..main", "--service", "idp", "--strict"],
    );
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(strict.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("(categories: Security, Features, Fixes, Chores)"),
        "{stderr}"
    );
}

#[test]
fn changelog_of_an_unknown_service_or_one_without_a_source_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("slipway.toml"),
        format!("{CATEGORIES_CONFIG}\n[[service]]\nname = \"pivcac\"\nstart = \"s\"\n"),
    )
    .unwrap();
    let unknown = slipway(root, &["changelog", "v1..main", "--service", "ipd"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no service `ipd` in slipway.toml"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: did you mean `idp`?"), "{stderr}");

    let no_source = slipway(root, &["changelog", "v1..main", "--service", "pivcac"]);
    let stderr = String::from_utf8_lossy(&no_source.stderr);
    assert_eq!(no_source.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("service `pivcac` has no [service.source]"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    std::fs::write(
        root.join("slipway.toml"),
        CATEGORIES_CONFIG.replace("\"Chores\"]", "\"Chores\", \"fixes\"]"),
    )
    .unwrap();
    let invalid = slipway(root, &["changelog", "v1..main", "--service", "idp"]);
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert_eq!(invalid.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`fixes` is listed twice"), "{stderr}");
    assert!(stderr.contains("hint: fix it and check with"), "{stderr}");
}
