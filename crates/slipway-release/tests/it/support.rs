//! Real repositories for the tests: git run isolated from the machine's configuration.

use std::path::Path;
use std::process::{Command, Output};

/// Runs git in `dir`, isolated from the user's configuration, and returns its output.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .expect("git runs")
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args);
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A repository whose own config carries the identity, so that the library's git finds it
/// whatever the machine's global config says.
pub(crate) fn repository() -> tempfile::TempDir {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    git(dir, &["init", "-q"]);
    for (key, value) in [
        ("user.name", "Ada"),
        ("user.email", "ada@example.com"),
        ("commit.gpgSign", "false"),
        ("tag.gpgSign", "false"),
    ] {
        git(dir, &["config", key, value]);
    }
    temp
}
