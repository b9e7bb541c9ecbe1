//! Release trains end to end, on a real git repository beside a real `slipway serve`: builds
//! of its commits are pushed and deployed to staging, `release cut` makes the candidate from
//! what staging runs (branch, range, changelog, draft notes), the notes are edited, and a
//! patch picks a commit of main onto production.

use std::path::Path;
use std::process::Command;

use slipway_testkit::server::{CliOutput, SpawnedServer};

use crate::support::{BIN, FLEET_SCRIPT, json};

const CONFIG: &str = r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "bin/server --port $PORT"
pools = { web = { count = 1, traffic = true } }

[service.source]
repo = "idp"
#TRAIN#

[environment.staging]
target = "command"
bake = "0s"
confirm_scale_in = false
post_verify = false
[environment.staging.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"

[environment.prod]
target = "command"
approvals = false
go_no_go = false
bake = "0s"
confirm_scale_in = false
post_verify = false
provenance = "off"
[environment.prod.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"
"#;

/// Runs git in `dir`, isolated from the machine's configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes `file` in the repository and commits it; the new commit's sha.
fn commit(repo: &Path, file: &str, text: &str, message: &str) -> String {
    std::fs::write(repo.join(file), text).unwrap();
    git(repo, &["add", file]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A repository whose own config carries the identity the server's git writes with.
fn repository(root: &Path) -> std::path::PathBuf {
    let repo = root.join("idp");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for (key, value) in [
        ("user.name", "Release Bot"),
        ("user.email", "release@example.com"),
        ("commit.gpgSign", "false"),
        ("tag.gpgSign", "false"),
    ] {
        git(&repo, &["config", key, value]);
    }
    repo
}

fn setup(root: &Path, train: &str) -> SpawnedServer {
    std::fs::write(root.join("fleet.sh"), FLEET_SCRIPT).unwrap();
    std::fs::write(root.join("slipway.toml"), CONFIG.replace("#TRAIN#", train)).unwrap();
    SpawnedServer::start(
        Path::new(BIN),
        &root.join("slipway.toml"),
        &root.join("data"),
    )
}

/// Pushes a build of `commit` as `version` of idp.
fn push(server: &SpawnedServer, token: &str, root: &Path, version: &str, commit: &str) {
    let file = root.join(format!("idp-{version}.tar.gz"));
    std::fs::write(&file, format!("build {version}")).unwrap();
    server
        .cli(
            token,
            &[
                "artifact",
                "push",
                file.to_str().unwrap(),
                "--service",
                "idp",
                "--version",
                version,
                "--commit",
                commit,
            ],
        )
        .success();
}

/// Deploys `release` of idp to `env` and follows it to success.
fn deploy(server: &SpawnedServer, token: &str, env: &str, release: &str) -> CliOutput {
    server
        .cli(
            token,
            &[
                "deploy",
                "idp",
                "--env",
                env,
                "--release",
                release,
                "--follow",
                "--timeout",
                "60s",
            ],
        )
        .success()
}

fn refused(out: &CliOutput, expected: &[&str]) {
    assert_ne!(out.code(), 0, "accepted: {}", out.stdout);
    for text in expected {
        assert!(
            out.stderr.contains(text),
            "`{text}` missing in: {}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
}

/// Today in UTC, as `date -u` says: the date a cut puts in the branch name.
fn today() -> String {
    let out = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_cut_takes_what_staging_runs_with_its_range_changelog_and_editable_notes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = repository(root);
    commit(&repo, "app.txt", "1", "Initial commit");
    commit(
        &repo,
        "login.txt",
        "new",
        "Add the login page\n\nchangelog: User-Facing Improvements, Login, Show the new login page",
    );
    let fixed = commit(
        &repo,
        "mail.txt",
        "ok",
        "fix(mail): send the reset email (#12)",
    );
    let server = setup(root, "");
    let admin = server.admin_token.clone();

    // Nothing runs in staging yet: nothing to cut from.
    refused(
        &server.cli(&admin, &["release", "cut", "idp"]),
        &["staging runs no release of idp", "slipway deploy idp"],
    );

    push(&server, &admin, root, "1.0.0", &fixed[..10]);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.0.0"])
        .success();
    deploy(&server, &admin, "staging", "1");

    let out = server
        .cli(&admin, &["--output", "json", "release", "cut", "idp"])
        .success();
    let cut = json(&out.stdout);
    let branch = format!("stages/rc-{}", today());
    assert_eq!(cut["created"], true);
    assert_eq!(cut["kind"], "full");
    assert_eq!(cut["release"]["label"], "RC 2");
    assert_eq!(cut["release"]["kind"], "full");
    assert_eq!(cut["release"]["version"], "1.0.0");
    assert_eq!(cut["branch"], branch.as_str());
    // No production line yet: the release is the whole history up to staging's commit.
    assert_eq!(cut["range"], fixed.as_str());
    assert_eq!(cut["base"], serde_json::Value::Null);
    let changelog = cut["changelog"].as_str().unwrap();
    for expected in [
        "## User-Facing Improvements",
        "Show the new login page",
        "## Bug Fixes",
        "send the reset email (#12",
    ] {
        assert!(changelog.contains(expected), "{expected}: {changelog}");
    }
    assert_eq!(
        git(&repo, &["rev-parse", &format!("refs/heads/{branch}")]),
        fixed
    );

    // The same commit again: the same candidate, not RC 3.
    let again = server.cli(&admin, &["release", "cut", "idp"]).success();
    assert!(
        again.stdout.starts_with("already cut: idp RC 2 (full)"),
        "{}",
        again.stdout
    );
    let train = json(
        &server
            .cli(&admin, &["--output", "json", "release", "list"])
            .success()
            .stdout,
    );
    assert_eq!(train["items"].as_array().unwrap().len(), 2);

    // The draft notes, then an edit from stdin: a new revision.
    let notes = server
        .cli(&admin, &["release", "notes", "idp", "2"])
        .success();
    assert!(notes.stdout.starts_with("# idp RC 2"), "{}", notes.stdout);
    assert!(notes.stdout.contains("Show the new login page"));
    assert!(notes.stderr.contains("revision 1"), "{}", notes.stderr);
    let edited = server
        .cli_with_stdin(
            &admin,
            &["release", "notes", "idp", "RC 2", "--edit", "-"],
            Some("# idp RC 2\n\nA new login page.\n"),
        )
        .success();
    assert!(
        edited.stdout.contains("notes revision 2 saved (draft)"),
        "{}",
        edited.stdout
    );
    let shown = json(
        &server
            .cli(
                &admin,
                &["--output", "json", "release", "notes", "idp", "2"],
            )
            .success()
            .stdout,
    );
    assert_eq!(shown["body"], "# idp RC 2\n\nA new login page.\n");
    assert_eq!(shown["state"], "draft");
    refused(
        &server.cli(&admin, &["release", "notes", "idp", "1"]),
        &["RC 1 was not cut by the train"],
    );
    let audit = server.cli(&admin, &["audit", "export"]).success();
    assert!(
        audit.stdout.contains("release_train_cut"),
        "{}",
        audit.stdout
    );
    assert!(audit.stdout.contains("release_notes_edited"));
}

#[test]
fn a_cut_without_a_source_or_repository_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // `[service.source] repo = "idp"` names a directory that does not exist.
    let server = setup(root, "");
    let admin = server.admin_token.clone();
    refused(
        &server.cli(&admin, &["release", "cut", "idp"]),
        &["the repository of idp is not at", "clone the repository"],
    );
}
