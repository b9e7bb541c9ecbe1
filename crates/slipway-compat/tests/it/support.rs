//! Fixture repositories: real git commits in temp directories, git isolated from the machine's
//! configuration.

use std::path::Path;
use std::process::Command;

use slipway_compat::{Finding, Options, Report, check};

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        // Fixed dates make the commit ids the same on every run, for snapshots.
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .args(["-c", "init.defaultBranch=main"])
        .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com"])
        .args(["-c", "commit.gpgSign=false"])
        .args(args)
        .output()
        .expect("git runs");
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

/// A repository in a temp directory.
pub(crate) struct Repo {
    pub(crate) dir: tempfile::TempDir,
}

impl Repo {
    pub(crate) fn new() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        git(dir.path(), &["init", "-q"]);
        Repo { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (`Some`) or deletes (`None`) files, commits, and returns the commit id.
    pub(crate) fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        for (path, content) in files {
            let full = self.path().join(path);
            match content {
                Some(content) => {
                    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&full, content).expect("write");
                }
                None => std::fs::remove_file(&full).expect("remove"),
            }
        }
        git(self.path(), &["add", "-A"]);
        git(
            self.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(self.path(), &["rev-parse", "HEAD"])
    }
}

/// The report of BASE = `base` files, HEAD = BASE with `change` applied.
pub(crate) fn compare_with(
    base: &[(&str, Option<&str>)],
    change: &[(&str, Option<&str>)],
    options: &Options,
) -> Report {
    let repo = Repo::new();
    let before = repo.commit(base, "base");
    let after = repo.commit(change, "head");
    check(repo.path(), &before, &after, options).expect("the check runs")
}

pub(crate) fn compare(base: &[(&str, Option<&str>)], change: &[(&str, Option<&str>)]) -> Report {
    compare_with(base, change, &Options::default())
}

/// The findings of `report` for `rule`.
pub(crate) fn of<'r>(report: &'r Report, rule: &str) -> Vec<&'r Finding> {
    report.findings.iter().filter(|f| f.rule == rule).collect()
}

pub(crate) const USER_MODEL: &str = "class User < ApplicationRecord\nend\n";
