//! Reading commits from a real repository built by the test, and its changelog.

use std::path::Path;

use slipway_release::{Categories, ReleaseError, build, commits};

use crate::support::{git, repository};

fn commit(dir: &Path, message: &str) {
    git(dir, &["commit", "--allow-empty", "-q", "-m", message]);
}

#[test]
fn a_range_of_a_real_repository_becomes_a_changelog() {
    let temp = repository();
    let dir = temp.path();
    commit(dir, "Initial commit");
    git(dir, &["tag", "prod"]);
    commit(
        dir,
        "Remember the account\n\nchangelog: User-Facing Improvements, Login, Remember the account",
    );
    git(dir, &["checkout", "-q", "-b", "feature"]);
    commit(
        dir,
        "Search\n\nchangelog: user-facing improvements, Search, Search accounts\nchangelog: Bug Fxes, Search, Fix paging",
    );
    git(dir, &["checkout", "-q", "main"]);
    commit(dir, "fix(api): keep sessions (#9)");
    git(
        dir,
        &[
            "merge",
            "-q",
            "--no-ff",
            "feature",
            "-m",
            "Merge pull request #12 from team/feature\n\nSearch",
        ],
    );
    commit(dir, "Bump rack from 2.2.3 to 2.2.4 (#13)");
    commit(dir, "Typo [skip changelog]");
    std::fs::write(dir.join("beta.txt"), "on\n").expect("write");
    git(dir, &["add", "beta.txt"]);
    commit(dir, "wip");
    let reverted = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["revert", "--no-edit", "HEAD"]);

    let commits = commits(dir, "prod..main").expect("commits");
    assert_eq!(commits.len(), 8);
    assert_eq!(commits[0].subject, "Remember the account");
    assert_eq!(commits[0].author, "Ada");
    assert_eq!(commits[0].author_email, "ada@example.com");
    let merge = commits
        .iter()
        .find(|c| c.parents.len() == 2)
        .expect("a merge");
    assert_eq!(merge.body, "Search");

    let changelog = build(&commits, &Categories::default());
    assert_eq!(
        changelog.reverts[0].reverted_sha.as_deref(),
        Some(reverted.as_str())
    );
    let markdown = changelog.to_markdown();
    let shas: Vec<String> = commits.iter().map(|c| c.sha[..7].to_owned()).collect();
    // Sha prefixes differ per run: name them by position.
    let stable = shas
        .iter()
        .enumerate()
        .fold(markdown, |text, (index, sha)| {
            text.replace(sha.as_str(), &format!("sha{index}"))
        });
    insta::assert_snapshot!(stable);
}

#[test]
fn a_directory_outside_any_repository_is_reported_with_a_hint() {
    let temp = tempfile::tempdir().expect("temp dir");
    let error = commits(temp.path(), "main").expect_err("not a repository");
    assert!(
        matches!(error, ReleaseError::NotARepository { .. }),
        "{error:?}"
    );
    assert!(error.hint().contains("repository"));
}

#[test]
fn an_unknown_revision_is_reported_with_a_hint() {
    let temp = repository();
    commit(temp.path(), "one");
    let error = commits(temp.path(), "nowhere..main").expect_err("unknown");
    assert!(
        matches!(error, ReleaseError::UnknownRevision { .. }),
        "{error:?}"
    );
    insta::assert_snapshot!(error.hint(), @"write the range as OLD..NEW with branch names, tags or commits that exist; fetch first if they come from a remote");
    let error = commits(temp.path(), "--all").expect_err("an option");
    assert!(matches!(error, ReleaseError::RangeLooksLikeOption { .. }));
}
