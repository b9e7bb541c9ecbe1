//! `[service.source.changelog]`: a release train's changelog categories as configured, the
//! defaults of `features`, `fixes` and `other`, and each mistake with its place and hint.

use slipway_core::config::{ChangelogConfig, parse_config};

/// A service with a source; the changelog table's header is line 8, its first key line 9.
fn with_changelog(body: &str) -> String {
    format!(
        "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n\n\
         [service.source.changelog]\n{body}\n\n[environment.prod]\n"
    )
}

fn changelog(body: &str) -> ChangelogConfig {
    let text = with_changelog(body);
    let config = parse_config("slipway.toml", &text)
        .unwrap_or_else(|errors| panic!("{errors}\nfrom:\n{text}"));
    let source = config.services[0].source.clone().unwrap();
    source.train.changelog.expect("a changelog table")
}

fn rendered_errors(body: &str) -> String {
    rendered(&with_changelog(body))
}

fn rendered(text: &str) -> String {
    match parse_config("slipway.toml", text) {
        Ok(_) => "parsed without errors".to_owned(),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn a_changelog_table_keeps_its_order_and_names_where_conventional_commits_go() {
    let written = changelog(
        "categories = [\"Security\", \"New Features\", \"Bug-Fixes\", \"Internal\"]\n\
         features = \"security\"\nfixes = \"bug fixes\"\nother = \"Internal\"\nthreshold = 0.9",
    );
    assert_eq!(
        written,
        ChangelogConfig {
            categories: vec![
                "Security".to_owned(),
                "New Features".to_owned(),
                "Bug-Fixes".to_owned(),
                "Internal".to_owned(),
            ],
            // As listed, whatever the spelling they were named with.
            features: "Security".to_owned(),
            fixes: "Bug-Fixes".to_owned(),
            other: "Internal".to_owned(),
            threshold: Some(0.9),
        }
    );
}

#[test]
fn left_out_features_fixes_and_other_take_the_category_of_that_name_or_the_first_and_last() {
    let named = changelog("categories = [\"Other\", \"Fixes\", \" Features \"]");
    assert_eq!(
        (
            named.features.as_str(),
            named.fixes.as_str(),
            named.other.as_str()
        ),
        ("Features", "Fixes", "Other")
    );
    assert_eq!(named.categories, ["Other", "Fixes", "Features"]);
    assert_eq!(named.threshold, None);

    let synonyms = changelog("categories = [\"Added\", \"Changed\", \"Fixed\", \"Removed\"]");
    assert_eq!(
        (synonyms.features, synonyms.fixes, synonyms.other),
        ("Added".to_owned(), "Fixed".to_owned(), "Changed".to_owned())
    );

    let unnamed = changelog("categories = [\"Platform\", \"Apps\", \"Ops\"]");
    assert_eq!(
        (unnamed.features, unnamed.fixes, unnamed.other),
        (
            "Platform".to_owned(),
            "Platform".to_owned(),
            "Ops".to_owned()
        )
    );
}

#[test]
fn a_service_without_a_changelog_table_keeps_the_default_categories() {
    let text = "[[service]]\nname = \"idp\"\nstart = \"s\"\nsource = { repo = \"../idp\" }\n\n\
                [environment.prod]\n";
    let config = parse_config("slipway.toml", text).unwrap();
    assert_eq!(
        config.services[0].source.as_ref().unwrap().train.changelog,
        None
    );
}

#[test]
fn changelog_mistakes_are_reported_at_their_place_with_a_hint() {
    let place = "[service.source.changelog] of [[service]] `idp`";
    let cases: Vec<(&str, String, String)> = vec![
        (
            "no categories and an unknown key",
            rendered_errors("features = \"Features\"\ncategory = []"),
            format!(
                "error: slipway.toml:8:1: missing `categories` in {place}\n  \
                 hint: list them in the order the changelog shows them, e.g. categories = \
                 [\"Features\", \"Fixes\", \"Other\"]\n\
                 error: slipway.toml:10:1: unknown key `category` in {place}\n  \
                 hint: did you mean `categories`?"
            ),
        ),
        (
            "an empty list",
            rendered_errors("categories = []"),
            format!(
                "error: slipway.toml:9:14: `categories` in {place}: must list at least one \
                 category\n  \
                 hint: e.g. categories = [\"Features\", \"Fixes\", \"Other\"], or remove the \
                 table to keep the default categories"
            ),
        ),
        (
            "a name twice, ignoring case and hyphens",
            rendered_errors("categories = [\"Bug Fixes\", \"Features\", \"bug-fixes\"]"),
            format!(
                "error: slipway.toml:9:40: `bug-fixes` is listed twice in `categories` (as \
                 `Bug Fixes` before) in {place}\n  \
                 hint: names are compared ignoring case, spaces and hyphens: keep one"
            ),
        ),
        (
            "a comma, an empty name and a number in the list",
            rendered_errors("categories = [\"Bug, Fixes\", \" \", 3]"),
            format!(
                "error: slipway.toml:9:15: `categories` in {place}: `Bug, Fixes` contains a \
                 comma, which separates the parts of a `changelog: Category, Subcategory, \
                 Change` line\n  \
                 hint: name it without a comma, e.g. \"Bug Fixes\"\n\
                 error: slipway.toml:9:29: `categories` in {place}: a category name must not \
                 be empty\n  \
                 hint: remove the empty name, or write one\n\
                 error: slipway.toml:9:34: `categories` in {place}: expected an array of \
                 strings, found integer in it"
            ),
        ),
        (
            "features, fixes and other naming no listed category",
            rendered_errors(
                "categories = [\"Features\", \"Fixes\", \"Other\"]\nfeatures = \"Feature\"\n\
                 fixes = \"Bugs\"\nother = 4",
            ),
            format!(
                "error: slipway.toml:10:12: `features` in {place}: `Feature` is not one of the \
                 categories\n  \
                 hint: did you mean `Features`? (categories: Features, Fixes, Other)\n\
                 error: slipway.toml:11:9: `fixes` in {place}: `Bugs` is not one of the \
                 categories\n  \
                 hint: name one of the categories: Features, Fixes, Other\n\
                 error: slipway.toml:12:9: `other` in {place}: expected a string, found \
                 integer\n  \
                 hint: put the value in quotes: other = \"4\""
            ),
        ),
        (
            "a threshold out of range",
            rendered_errors("categories = [\"Features\"]\nthreshold = 75"),
            format!(
                "error: slipway.toml:10:13: `threshold` in {place}: must be between 0 and 1, \
                 found 75\n  \
                 hint: e.g. threshold = 0.75 (the default): a close misspelling maps to the \
                 nearest category; 1 accepts only differences of case, spaces and hyphens"
            ),
        ),
        (
            "a threshold as text",
            rendered_errors("categories = [\"Features\"]\nthreshold = \"75%\""),
            format!(
                "error: slipway.toml:10:13: `threshold` in {place}: expected a number, found \
                 string\n  \
                 hint: e.g. threshold = 0.75 (the default): a close misspelling maps to the \
                 nearest category; 1 accepts only differences of case, spaces and hyphens"
            ),
        ),
        (
            "not a table",
            rendered(
                "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \
                 \"../idp\"\nchangelog = [\"Features\"]\n\n[environment.prod]\n",
            ),
            "error: slipway.toml:7:13: `changelog` in [service.source] of [[service]] `idp`: \
             expected a table, found array\n  \
             hint: write [service.source.changelog] with categories = [\"Features\", \
             \"Fixes\", \"Other\"]"
                .to_owned(),
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter(|(_, got, expected)| got != expected)
        .map(|(name, got, expected)| {
            format!("case `{name}`:\n  expected:\n{expected}\n  got:\n{got}\n")
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
