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
