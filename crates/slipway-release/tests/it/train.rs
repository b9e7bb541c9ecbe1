//! The git operations of a release train on real repositories built by the tests: cut with
//! its range and true-up, patch checks and picks, annotated and signed tags.

use std::path::Path;
use std::process::Command;

use jiff::civil::date;

use crate::support::{git, repository, run};
use slipway_release::{
    CutRequest, PickRequest, ReleaseError, SigningKey, branch_head, check_on_branch, commits, cut,
    pick, promote, tag, verify_tag,
};

/// Writes `file` and commits it; returns the commit's sha.
fn commit_file(dir: &Path, file: &str, content: &str, message: &str) -> String {
    std::fs::write(dir.join(file), content).expect("write");
    git(dir, &["add", file]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn head_of(dir: &Path, branch: &str) -> Option<String> {
    let output = run(
        dir,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ],
    );
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn is_ancestor(dir: &Path, ancestor: &str, descendant: &str) -> bool {
    run(dir, &["merge-base", "--is-ancestor", ancestor, descendant])
        .status
        .success()
}

fn worktrees(dir: &Path) -> usize {
    git(dir, &["worktree", "list", "--porcelain"])
        .lines()
        .filter(|line| line.starts_with("worktree "))
        .count()
}

/// main: base, feature, fix, next; stages/prod at base.
struct Train {
    temp: tempfile::TempDir,
    base: String,
    feature: String,
    fix: String,
    next: String,
}

impl Train {
    fn new() -> Self {
        let temp = repository();
        let dir = temp.path();
        let base = commit_file(dir, "app.txt", "v1\n", "Initial version");
        git(dir, &["branch", "stages/prod"]);
        let feature = commit_file(dir, "feature.txt", "on\n", "Add a feature");
        let fix = commit_file(dir, "app.txt", "v1 fixed\n", "Fix the app");
        let next = commit_file(dir, "app.txt", "v2\n", "Version 2");
        Self {
            temp,
            base,
            feature,
            fix,
            next,
        }
    }

    fn dir(&self) -> &Path {
        self.temp.path()
    }
}

#[test]
fn cut_branches_at_stagings_commit_and_records_the_range_since_prod() {
    let train = Train::new();
    let dir = train.dir();
    // Staging runs `fix`; main has moved on to `next` since.
    let release = cut(dir, &CutRequest::new(&train.fix, date(2026, 12, 3))).expect("cut");
    assert_eq!(release.branch, "stages/rc-2026-12-03");
    assert_eq!(release.commit, train.fix);
    assert_eq!(release.prod.as_deref(), Some(train.base.as_str()));
    assert_eq!(release.range, format!("{}..{}", train.base, train.fix));
    assert_eq!(release.true_up, None);
    assert_eq!(
        head_of(dir, "stages/rc-2026-12-03"),
        Some(train.fix.clone())
    );
    let subjects: Vec<String> = commits(dir, &release.range)
        .expect("commits")
        .into_iter()
        .map(|commit| commit.subject)
        .collect();
    assert_eq!(subjects, ["Add a feature", "Fix the app"]);
    // The caller's checkout is untouched.
    assert_eq!(git(dir, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
}

#[test]
fn a_first_release_without_prod_is_the_whole_history_with_a_configured_pattern() {
    let train = Train::new();
    let dir = train.dir();
    let request = CutRequest {
        branch_pattern: "release/{date}/rc".to_owned(),
        prod_branch: "production".to_owned(),
        ..CutRequest::new("main", date(2026, 1, 5))
    };
    let release = cut(dir, &request).expect("cut");
    assert_eq!(release.branch, "release/2026-01-05/rc");
    assert_eq!(release.prod, None);
    assert_eq!(release.range, train.next);
    assert_eq!(commits(dir, &release.range).expect("commits").len(), 4);
}

#[test]
fn cutting_again_is_idempotent_and_another_commit_is_refused() {
    let train = Train::new();
    let dir = train.dir();
    let request = CutRequest::new(&train.fix, date(2026, 12, 3));
    let first = cut(dir, &request).expect("cut");
    let again = cut(dir, &request).expect("cut again");
    assert_eq!(first, again);

    let error = cut(dir, &CutRequest::new(&train.next, date(2026, 12, 3)))
        .expect_err("another commit on the same date");
    assert!(
        matches!(&error, ReleaseError::BranchExists { branch, at, wanted }
            if branch == "stages/rc-2026-12-03" && *at == train.fix && *wanted == train.next),
        "{error:?}"
    );
    assert!(error.to_string().contains(&train.fix), "{error}");
    assert!(error.hint().contains("git branch -D stages/rc-2026-12-03"));
    assert_eq!(
        head_of(dir, "stages/rc-2026-12-03"),
        Some(train.fix.clone())
    );

    let error = cut(dir, &CutRequest::new("nowhere", date(2026, 12, 3))).expect_err("unknown");
    assert!(
        matches!(&error, ReleaseError::UnknownCommit { revision } if revision == "nowhere"),
        "{error:?}"
    );
    let bad_pattern = CutRequest {
        branch_pattern: "rc..{date}".to_owned(),
        ..request
    };
    let error = cut(dir, &bad_pattern).expect_err("invalid name");
    assert!(
        matches!(error, ReleaseError::InvalidRefName { .. }),
        "{error:?}"
    );
}

#[test]
fn a_patch_on_prod_is_trued_up_with_an_ours_merge_and_promotes_without_conflict() {
    let train = Train::new();
    let dir = train.dir();
    // Last week's patch: the fix cherry-picked onto prod, so prod has a commit main lacks.
    let patch = pick(
        dir,
        &PickRequest {
            onto: "stages/prod".to_owned(),
            shas: vec![train.fix.clone()],
            new_branch: "stages/rc-2026-11-27".to_owned(),
        },
    )
    .expect("pick");
    git(dir, &["branch", "-f", "stages/prod", &patch.head]);
    assert!(!is_ancestor(dir, "stages/prod", &train.next));

    let release = cut(dir, &CutRequest::new(&train.next, date(2026, 12, 3))).expect("cut");
    let true_up = release.true_up.clone().expect("a true-up merge");
    assert_eq!(true_up.prod, patch.head);
    assert_eq!(
        head_of(dir, "stages/rc-2026-12-03"),
        Some(true_up.merge.clone())
    );
    assert_eq!(
        git(dir, &["rev-parse", &format!("{}^@", true_up.merge)]),
        format!("{}\n{}", train.next, patch.head)
    );
    // `ours`: the release's code is exactly what staging ran.
    assert_eq!(
        git(dir, &["rev-parse", &format!("{}^{{tree}}", true_up.merge)]),
        git(dir, &["rev-parse", &format!("{}^{{tree}}", train.next)])
    );
    assert!(is_ancestor(dir, "stages/prod", "stages/rc-2026-12-03"));
    assert_eq!(release.range, format!("{}..{}", patch.head, train.next));
    let message = git(dir, &["log", "-1", "--format=%B", &true_up.merge]);
    assert!(
        message.starts_with("Merge branch 'stages/prod' into stages/rc-2026-12-03"),
        "{message}"
    );
    // The caller's checkout is untouched.
    assert_eq!(git(dir, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(dir, &["status", "--porcelain"]), "");

    // Cutting again finds the true-up and keeps it.
    let again = cut(dir, &CutRequest::new(&train.next, date(2026, 12, 3))).expect("again");
    assert_eq!(again, release);

    // Another patch lands on prod before the promotion: a second true-up on top.
    let hotfix = commit_file(dir, "hotfix.txt", "x\n", "Hotfix");
    let second = pick(
        dir,
        &PickRequest {
            onto: "stages/prod".to_owned(),
            shas: vec![hotfix],
            new_branch: "stages/rc-2026-11-28".to_owned(),
        },
    )
    .expect("pick");
    git(dir, &["branch", "-f", "stages/prod", &second.head]);
    let moved = cut(dir, &CutRequest::new(&train.next, date(2026, 12, 3))).expect("cut");
    let newer = moved.true_up.expect("a second true-up");
    assert_eq!(
        git(dir, &["rev-parse", &format!("{}^1", newer.merge)]),
        true_up.merge
    );
    assert!(is_ancestor(dir, "stages/prod", "stages/rc-2026-12-03"));

    // Promotion is a fast-forward and production then runs staging's code.
    git(dir, &["checkout", "-q", "stages/prod"]);
    git(dir, &["merge", "--ff-only", "-q", "stages/rc-2026-12-03"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("app.txt")).expect("read"),
        "v2\n"
    );
}

#[test]
fn a_patch_pick_of_a_commit_not_on_main_is_refused() {
    let train = Train::new();
    let dir = train.dir();
    git(dir, &["checkout", "-q", "-b", "experiment"]);
    let stray = commit_file(dir, "stray.txt", "x\n", "Not reviewed");
    git(dir, &["checkout", "-q", "main"]);

    check_on_branch(dir, &train.fix, "main").expect("on main");
    let short = &train.fix[..8];
    check_on_branch(dir, short, "main").expect("an abbreviated sha");
    let error = check_on_branch(dir, &stray, "main").expect_err("not on main");
    assert!(
        matches!(&error, ReleaseError::NotOnBranch { commit, branch }
            if *commit == stray && branch == "main"),
        "{error:?}"
    );
    assert_eq!(error.to_string(), format!("commit {stray} is not on main"));
    insta::assert_snapshot!(error.hint(), @"merge the fix into main first and pick the commit from there, so that the next full release keeps it");
    let error = check_on_branch(dir, "deadbeef", "main").expect_err("unknown");
    assert!(
        matches!(error, ReleaseError::UnknownCommit { .. }),
        "{error:?}"
    );
}

#[test]
fn pick_onto_prod_creates_the_branch_and_records_cherry_picked_from() {
    let train = Train::new();
    let dir = train.dir();
    let picked = pick(
        dir,
        &PickRequest {
            onto: "stages/prod".to_owned(),
            shas: vec![train.feature.clone(), train.fix.clone()],
            new_branch: "stages/rc-2026-12-04".to_owned(),
        },
    )
    .expect("pick");
    assert_eq!(picked.branch, "stages/rc-2026-12-04");
    assert_eq!(
        head_of(dir, "stages/rc-2026-12-04"),
        Some(picked.head.clone())
    );
    let subjects = git(
        dir,
        &[
            "log",
            "--format=%s",
            "--reverse",
            "stages/prod..stages/rc-2026-12-04",
        ],
    );
    assert_eq!(subjects, "Add a feature\nFix the app");
    let message = git(dir, &["log", "-1", "--format=%B", &picked.head]);
    assert!(
        message.contains(&format!("(cherry picked from commit {})", train.fix)),
        "{message}"
    );
    assert_eq!(
        git(dir, &["show", &format!("{}:app.txt", picked.head)]),
        "v1 fixed"
    );
    // Nothing else changed: prod, the checkout, the worktrees.
    assert_eq!(head_of(dir, "stages/prod"), Some(train.base.clone()));
    assert_eq!(git(dir, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    assert_eq!(worktrees(dir), 1);

    let error = pick(
        dir,
        &PickRequest {
            onto: "stages/prod".to_owned(),
            shas: vec![train.fix.clone()],
            new_branch: "stages/rc-2026-12-04".to_owned(),
        },
    )
    .expect_err("the branch exists");
    assert!(
        matches!(error, ReleaseError::PatchBranchExists { .. }),
        "{error:?}"
    );
}

#[test]
fn a_pick_that_changes_nothing_or_is_a_merge_is_refused_and_leaves_nothing() {
    let train = Train::new();
    let dir = train.dir();
    let request = |shas: Vec<String>| PickRequest {
        onto: "stages/prod".to_owned(),
        shas,
        new_branch: "stages/rc-2026-12-04".to_owned(),
    };
    let error = pick(dir, &request(vec![train.fix.clone(), train.fix.clone()]))
        .expect_err("the second pick is empty");
    assert!(
        matches!(&error, ReleaseError::PickEmpty { commit, .. } if *commit == train.fix),
        "{error:?}"
    );
    git(dir, &["checkout", "-q", "-b", "topic", &train.base]);
    commit_file(dir, "topic.txt", "x\n", "Topic");
    git(dir, &["checkout", "-q", "main"]);
    git(
        dir,
        &["merge", "-q", "--no-ff", "-m", "Merge topic", "topic"],
    );
    let merge = git(dir, &["rev-parse", "HEAD"]);
    let error = pick(dir, &request(vec![merge.clone()])).expect_err("a merge");
    assert!(
        matches!(&error, ReleaseError::PickMerge { commit } if *commit == merge),
        "{error:?}"
    );
    let error = pick(dir, &request(Vec::new())).expect_err("nothing");
    assert!(matches!(error, ReleaseError::NothingToPick), "{error:?}");
    assert_eq!(head_of(dir, "stages/rc-2026-12-04"), None);
    assert_eq!(worktrees(dir), 1);
}

#[test]
fn a_conflicting_pick_leaves_no_branch_and_no_worktree() {
    let train = Train::new();
    let dir = train.dir();
    // `next` changes the line `fix` changed, and `fix` is not on prod.
    let error = pick(
        dir,
        &PickRequest {
            onto: "stages/prod".to_owned(),
            shas: vec![train.feature.clone(), train.next.clone()],
            new_branch: "stages/rc-2026-12-04".to_owned(),
        },
    )
    .expect_err("conflict");
    assert!(
        matches!(&error, ReleaseError::PickConflict { commit, onto, .. }
            if *commit == train.next && onto == "stages/prod"),
        "{error:?}"
    );
    assert!(error.to_string().contains(&train.next), "{error}");
    assert!(error.hint().contains("off-cycle"));
    assert_eq!(head_of(dir, "stages/rc-2026-12-04"), None);
    assert_eq!(worktrees(dir), 1);
    assert_eq!(head_of(dir, "stages/prod"), Some(train.base.clone()));
    assert_eq!(git(dir, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
}

#[test]
fn an_annotated_tag_marks_the_deployed_commit_once() {
    let train = Train::new();
    let dir = train.dir();
    let created = tag(dir, "RC-112", &train.fix, "RC 112", None).expect("tag");
    assert_eq!(created.commit, train.fix);
    assert!(!created.signed);
    assert_eq!(git(dir, &["cat-file", "-t", "refs/tags/RC-112"]), "tag");
    assert_eq!(git(dir, &["rev-parse", "RC-112^{commit}"]), train.fix);
    assert_eq!(
        git(dir, &["tag", "-l", "--format=%(contents)", "RC-112"]),
        "RC 112"
    );
    assert_eq!(
        tag(dir, "RC-112", &train.fix, "RC 112", None).expect("again"),
        created
    );
    let error = tag(dir, "RC-112", &train.next, "RC 112", None).expect_err("moved");
    assert!(
        matches!(&error, ReleaseError::TagExists { at, wanted, .. }
            if *at == train.fix && *wanted == train.next),
        "{error:?}"
    );
    let error = tag(dir, "bad tag", &train.fix, "x", None).expect_err("invalid");
    assert!(
        matches!(error, ReleaseError::InvalidRefName { .. }),
        "{error:?}"
    );
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, "").expect("write");
    let error = verify_tag(dir, "RC-112", &signers).expect_err("unsigned");
    assert!(
        matches!(error, ReleaseError::TagNotVerified { .. }),
        "{error:?}"
    );
}

fn ssh_keygen_exists() -> bool {
    Command::new("ssh-keygen").arg("-?").output().is_ok()
}

#[test]
fn a_tag_signed_with_an_ssh_key_verifies_against_the_allowed_signers() {
    let train = Train::new();
    let dir = train.dir();
    let keys = tempfile::tempdir().expect("temp dir");
    let key = keys.path().join("release_key");
    if !ssh_keygen_exists() {
        // No ssh-keygen on this machine: git cannot sign, and says so through our error.
        let error = tag(
            dir,
            "RC-113",
            &train.next,
            "RC 113",
            Some(&SigningKey::Ssh(key)),
        )
        .expect_err("no ssh-keygen");
        assert!(
            matches!(error, ReleaseError::SigningFailed { .. }),
            "{error:?}"
        );
        return;
    }
    let generated = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "release", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );

    let signed = tag(
        dir,
        "RC-113",
        &train.next,
        "RC 113",
        Some(&SigningKey::Ssh(key.clone())),
    )
    .expect("signed tag");
    assert!(signed.signed);
    let object = git(dir, &["cat-file", "-p", "refs/tags/RC-113"]);
    assert!(object.contains("-----BEGIN SSH SIGNATURE-----"), "{object}");

    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(&signers, format!("ada@example.com {public}")).expect("write");
    let setting = format!("gpg.ssh.allowedSignersFile={}", signers.display());
    let output = run(dir, &["-c", &setting, "tag", "-v", "RC-113"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    verify_tag(dir, "RC-113", &signers).expect("verified");
    // Tagging again keeps the signed tag.
    assert!(
        tag(dir, "RC-113", &train.next, "RC 113", None)
            .expect("again")
            .signed
    );

    // Another key is not allowed.
    let other = keys.path().join("other_key");
    let generated = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .expect("ssh-keygen runs");
    assert!(generated.status.success());
    let other_public = std::fs::read_to_string(other.with_extension("pub")).expect("public");
    std::fs::write(&signers, format!("ada@example.com {other_public}")).expect("write");
    let error = verify_tag(dir, "RC-113", &signers).expect_err("not an allowed signer");
    assert!(
        matches!(error, ReleaseError::TagNotVerified { .. }),
        "{error:?}"
    );

    // A key file that does not exist.
    let error = tag(
        dir,
        "RC-114",
        &train.next,
        "RC 114",
        Some(&SigningKey::Ssh(keys.path().join("missing"))),
    )
    .expect_err("no key");
    assert!(
        matches!(error, ReleaseError::SigningFailed { .. }),
        "{error:?}"
    );
    assert!(
        !run(dir, &["rev-parse", "-q", "--verify", "refs/tags/RC-114"])
            .status
            .success()
    );
}

#[test]
fn promote_creates_and_fast_forwards_the_production_line_and_refuses_to_drop_commits() {
    let temp = repository();
    let dir = temp.path();
    let first = commit_file(dir, "a", "1", "first");
    let second = commit_file(dir, "a", "2", "second");
    assert_eq!(branch_head(dir, "stages/live").unwrap(), None);

    assert_eq!(promote(dir, "stages/live", &first).unwrap(), None);
    assert_eq!(head_of(dir, "stages/live").as_deref(), Some(first.as_str()));
    // Again at the same commit: kept.
    assert_eq!(
        promote(dir, "stages/live", &first).unwrap().as_deref(),
        Some(first.as_str())
    );
    promote(dir, "stages/live", &second).unwrap();
    assert_eq!(
        branch_head(dir, "stages/live").unwrap().as_deref(),
        Some(second.as_str())
    );

    let error = promote(dir, "stages/live", &first).unwrap_err();
    assert!(
        matches!(error, ReleaseError::NotFastForward { .. }),
        "{error}"
    );
    assert!(error.hint().contains("true-up"), "{}", error.hint());
    assert_eq!(
        head_of(dir, "stages/live").as_deref(),
        Some(second.as_str())
    );
}
