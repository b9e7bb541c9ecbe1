//! Bad input: a directory that is no repository, a revision git does not know.

use slipway_compat::{CompatError, Options, check};

use crate::support::Repo;

#[test]
fn an_unknown_revision_is_a_clear_error_with_a_hint() {
    let repo = Repo::new();
    let base = repo.commit(&[("README.md", Some("hi\n"))], "base");
    let error = check(repo.path(), &base, "no-such-branch", &Options::default()).unwrap_err();
    assert!(
        matches!(error, CompatError::UnknownRevision { ref revision, .. } if revision == "no-such-branch"),
        "{error:?}"
    );
    assert!(error.hint().contains("git fetch"));
}

#[test]
fn a_directory_that_is_not_a_repository_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = check(dir.path(), "main", "HEAD", &Options::default()).unwrap_err();
    assert!(
        matches!(error, CompatError::NotARepository { .. }),
        "{error:?}"
    );
    assert!(error.hint().contains("--repo"));
}

#[test]
fn a_revision_that_looks_like_an_option_is_refused() {
    let repo = Repo::new();
    repo.commit(&[("README.md", Some("hi\n"))], "base");
    let error = check(repo.path(), "--output=x", "HEAD", &Options::default()).unwrap_err();
    assert!(
        matches!(error, CompatError::RevisionLooksLikeOption { .. }),
        "{error:?}"
    );
}
