//! The changelog built from commit messages: categories, misspellings, reverts, skip markers,
//! dependency updates, Conventional Commits, PR numbers and commits that need a human.

use slipway_release::changelog::EntrySource;
use slipway_release::{Categories, Commit, Reason, build};

fn commit(sha: &str, subject: &str, body: &str) -> Commit {
    Commit::new(format!("{sha:0<40}"), subject, body)
}

#[test]
fn misspelt_categories_map_to_the_nearest_one() {
    let commits = [
        commit(
            "a1",
            "Fix login",
            "changelog: Bug Fxes, Login, Fix the login page",
        ),
        commit(
            "a2",
            "Fix logout",
            "changelog: bug fixes, Logout, Fix logout",
        ),
        commit("a3", "Tidy", "CHANGELOG: internl, Tidy the code"),
        commit(
            "a4",
            "Faces",
            "changelog: User Facing Improvements, Faces, New faces",
        ),
    ];
    let changelog = build(&commits, &Categories::default());
    let got: Vec<(&str, Option<&str>)> = changelog
        .entries
        .iter()
        .map(|entry| (entry.category.as_str(), entry.subcategory.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("User-Facing Improvements", Some("Faces")),
            ("Bug Fixes", Some("Login")),
            ("Bug Fixes", Some("Logout")),
            ("Internal", None),
        ]
    );
    assert_eq!(
        changelog.entries[1].source,
        EntrySource::Line {
            written: Some("Bug Fxes".to_owned())
        }
    );
    assert!(changelog.unassigned.is_empty());
}

#[test]
fn a_category_far_from_all_lists_the_commit_apart_with_the_nearest_suggestion() {
    let commits = [commit(
        "b1",
        "Improve things",
        "changelog: Improvements, Accounts, Better accounts",
    )];
    let changelog = build(&commits, &Categories::default());
    assert!(changelog.entries.is_empty());
    assert_eq!(
        changelog.unassigned[0].reason,
        Reason::UnknownCategory {
            written: "Improvements".to_owned(),
            nearest: "User-Facing Improvements".to_owned()
        }
    );
}

#[test]
fn every_changelog_line_of_a_commit_counts_and_a_bad_one_is_reported() {
    let commits = [commit(
        "c1",
        "Two changes",
        "changelog: Bug Fixes, Login, One, with a comma\n\
         changelog: Internal, CI, Two\n\
         changelog: nonsense",
    )];
    let changelog = build(&commits, &Categories::default());
    assert_eq!(changelog.entries.len(), 2);
    assert_eq!(changelog.entries[0].change, "One, with a comma");
    assert!(matches!(
        changelog.unassigned[0].reason,
        Reason::Malformed { .. }
    ));
}

#[test]
fn skip_marker_gives_no_entry_and_no_complaint() {
    let commits = [
        commit("d1", "Typo [skip changelog]", ""),
        commit("d2", "feat: hidden", "[Skip Changelog]"),
    ];
    let changelog = build(&commits, &Categories::default());
    assert!(changelog.entries.is_empty());
    assert!(changelog.unassigned.is_empty());
}

#[test]
fn reverts_get_their_own_section_naming_the_reverted_subject() {
    let commits = [
        commit(
            "e1",
            "Revert \"Add a faster login (#12)\"",
            "This reverts commit 1234567890abcdef1234567890abcdef12345678.",
        ),
        commit("e2", "revert: drop the beta banner (#14)", ""),
    ];
    let changelog = build(&commits, &Categories::default());
    assert!(changelog.entries.is_empty());
    assert_eq!(changelog.reverts.len(), 2);
    assert_eq!(
        changelog.reverts[0].reverted_subject,
        "Add a faster login (#12)"
    );
    assert_eq!(
        changelog.reverts[0].reverted_sha.as_deref(),
        Some("1234567890abcdef1234567890abcdef12345678")
    );
    assert_eq!(
        changelog.reverts[1].reverted_subject,
        "drop the beta banner"
    );
    assert_eq!(changelog.reverts[1].pr, Some(14));
}

#[test]
fn dependency_updates_get_their_own_section() {
    let commits = [
        commit("f1", "Bump serde from 1.0.1 to 1.0.2 (#20)", ""),
        commit("f2", "chore(deps): update tokio", ""),
        commit("f3", "build(deps-dev): bump insta", ""),
        commit("f4", "Update dependency react to v19", ""),
        commit("f5", "Bump version to 2.0", ""),
    ];
    let changelog = build(&commits, &Categories::default());
    let changes: Vec<&str> = changelog
        .dependencies
        .iter()
        .map(|d| d.change.as_str())
        .collect();
    assert_eq!(
        changes,
        [
            "Bump serde from 1.0.1 to 1.0.2",
            "chore(deps): update tokio",
            "build(deps-dev): bump insta",
            "Update dependency react to v19",
        ]
    );
    assert_eq!(changelog.dependencies[0].pr, Some(20));
    assert_eq!(changelog.unassigned[0].reason, Reason::NoEntry);
}

#[test]
fn conventional_commits_map_to_categories_and_mark_breaking_changes() {
    let commits = [
        commit("g1", "feat(api)!: remove v1 endpoints", ""),
        commit("g2", "fix: keep sessions alive", ""),
        commit("g3", "perf: cache the keys", "BREAKING CHANGE: keys move"),
        commit("g4", "Note: not a type", ""),
    ];
    let changelog = build(&commits, &Categories::default());
    let got: Vec<(&str, &str, bool)> = changelog
        .entries
        .iter()
        .map(|e| (e.category.as_str(), e.change.as_str(), e.breaking))
        .collect();
    assert_eq!(
        got,
        [
            ("User-Facing Improvements", "remove v1 endpoints", true),
            ("Bug Fixes", "keep sessions alive", false),
            ("Internal", "cache the keys", true),
        ]
    );
    assert_eq!(
        changelog.entries[0].source,
        EntrySource::Conventional {
            kind: "feat".to_owned(),
            scope: Some("api".to_owned())
        }
    );
    assert_eq!(changelog.unassigned.len(), 1);
}

#[test]
fn a_changelog_line_wins_over_the_conventional_type() {
    let commits = [commit(
        "h1",
        "chore: flag",
        "changelog: Upcoming Features, Flags, Behind a flag",
    )];
    let changelog = build(&commits, &Categories::default());
    assert_eq!(changelog.entries[0].category, "Upcoming Features");
}

#[test]
fn pr_numbers_come_from_squash_subjects_and_merge_commits() {
    let mut feature = commit(
        "i2",
        "Add search",
        "changelog: User-Facing Improvements, Search, Search",
    );
    feature.parents = vec![format!("{:0<40}", "i1")];
    let mut main = commit("i1", "fix: base (#7)", "");
    main.parents = Vec::new();
    let mut merge = commit(
        "i3",
        "Merge pull request #42 from team/search",
        "Add search",
    );
    merge.parents = vec![main.sha.clone(), feature.sha.clone()];
    let changelog = build(&[main, feature, merge], &Categories::default());
    let prs: Vec<(&str, Option<u64>)> = changelog
        .entries
        .iter()
        .map(|e| (e.change.as_str(), e.pr))
        .collect();
    assert_eq!(prs, [("Search", Some(42)), ("base", Some(7))]);
    assert!(
        changelog.unassigned.is_empty(),
        "a merge is not a change of its own"
    );
}

#[test]
fn categories_can_be_configured_and_are_checked() {
    let categories = Categories::new(
        ["Features", "Fixes", "Chores"],
        "features",
        "Fixes",
        "Chores",
    )
    .expect("valid");
    let changelog = build(
        &[commit("j1", "feat: x", ""), commit("j2", "docs: y", "")],
        &categories,
    );
    assert_eq!(changelog.entries[0].category, "Features");
    assert_eq!(changelog.entries[1].category, "Chores");
    assert!(Categories::new(["A", "a"], "A", "A", "A").is_err());
    assert!(Categories::new(["A"], "A", "B", "A").is_err());
    assert!(Categories::new(Vec::<String>::new(), "A", "A", "A").is_err());
}

#[test]
fn markdown_groups_by_category_then_reverts_dependencies_and_needs_a_category() {
    let commits = [
        commit(
            "c01",
            "Login (#101)",
            "changelog: User-Facing Improvements, Login, Remember the last account",
        ),
        commit(
            "c02",
            "Fix typo",
            "changelog: Bug Fxes, Emails, Fix a typo in the welcome email",
        ),
        commit("c03", "feat!: drop SMS codes (#103)", ""),
        commit("c04", "refactor: split the session store", ""),
        commit(
            "c05",
            "Login 2",
            "changelog: User-Facing Improvements, Login, Show the account's email",
        ),
        commit(
            "c06",
            "Revert \"Login (#101)\"",
            "This reverts commit c010000000000000000000000000000000000000.",
        ),
        commit("c07", "Bump rack from 2.2.3 to 2.2.4 (#107)", ""),
        commit("c08", "wip", ""),
        commit("c09", "Things", "changelog: Stuff, Things, Did things"),
        commit("c10", "Typo [skip changelog]", ""),
    ];
    let changelog = build(&commits, &Categories::default());
    insta::assert_snapshot!(changelog.to_markdown());
}

#[test]
fn main_merged_into_a_pull_request_keeps_its_own_commits_out_of_it() {
    let sha = |name: &str| format!("{name:0<40}");
    let with_parents = |name: &str, subject: &str, parents: &[&str]| {
        let mut commit = commit(name, subject, "");
        commit.parents = parents.iter().map(|parent| sha(parent)).collect();
        commit
    };
    let commits = [
        with_parents("a1", "fix: on main first", &[]),
        with_parents("a2", "fix: on main later (#3)", &["a1"]),
        with_parents("b1", "feat: on the branch", &["a1"]),
        with_parents("b2", "Merge branch 'main' into search", &["b1", "a2"]),
        with_parents(
            "c1",
            "Merge pull request #5 from team/search",
            &["a2", "b2"],
        ),
    ];
    let changelog = build(&commits, &Categories::default());
    let prs: Vec<(&str, Option<u64>)> = changelog
        .entries
        .iter()
        .map(|e| (e.change.as_str(), e.pr))
        .collect();
    assert_eq!(
        prs,
        [
            ("on the branch", Some(5)),
            ("on main first", None),
            ("on main later", Some(3)),
        ]
    );
    assert!(changelog.unassigned.is_empty());
}
