//! `trains::categories`: the one conversion of `[service.source.changelog]` into the
//! changelog's `Categories`, shared by cuts, patches and `slipway changelog --service`.

use slipway_core::config::ChangelogConfig;
use slipway_release::{Categories, ReleaseError};
use slipway_server::trains::categories;

fn custom(threshold: Option<f64>) -> ChangelogConfig {
    ChangelogConfig {
        categories: vec!["Security".into(), "Features".into(), "Fixes".into()],
        features: "Features".into(),
        fixes: "Fixes".into(),
        other: "Security".into(),
        threshold,
    }
}

#[test]
fn a_service_without_categories_gets_the_default_ones() {
    assert_eq!(categories(None).unwrap(), Categories::default());
}

#[test]
fn configured_categories_keep_their_order_and_threshold() {
    let made = categories(Some(&custom(None))).unwrap();
    assert_eq!(made.names(), ["Security", "Features", "Fixes"]);
    assert_eq!(made.resolve("securty"), Ok("Security"));
    // A category only the defaults know is no misspelling of these.
    assert!(made.resolve("User-Facing Improvements").is_err());

    let exact = categories(Some(&custom(Some(1.0)))).unwrap();
    assert_eq!(exact.resolve(" SECURITY "), Ok("Security"));
    assert!(exact.resolve("securty").is_err());
}

#[test]
fn categories_that_skipped_the_parser_are_refused_not_guessed() {
    let mut wrong = custom(None);
    wrong.fixes = "Bugs".into();
    assert!(matches!(
        categories(Some(&wrong)),
        Err(ReleaseError::Categories { .. })
    ));
}

#[test]
fn a_git_that_hangs_is_the_servers_trouble_not_the_callers() {
    // A 503, so a schedule tries again next pass instead of recording the cut as refused.
    let timed_out = slipway_server::trains::release_error(ReleaseError::GitTimedOut {
        command: "tag".into(),
        detail: "git tag was killed after 60 s without finishing".into(),
    });
    assert_eq!(timed_out.status.as_u16(), 503);
    assert_eq!(timed_out.code, "git_timeout");
    assert!(timed_out.hint.unwrap().contains("try again"));
    let refused = slipway_server::trains::release_error(ReleaseError::GitFailed {
        command: "tag".into(),
        detail: "fatal: bad object".into(),
    });
    assert_eq!(refused.status.as_u16(), 400);
}
