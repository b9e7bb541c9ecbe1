//! `[service.source.changelog]` in the parser's schema: the categories a release train's
//! changelog is grouped in, where Conventional Commits go, and how close a misspelling must be.
//!
//! Everything slipway-release's `Categories::new` would refuse is reported here, where the
//! file's line and column are known, so a config that passes makes valid categories.

use toml_edit::{Item, Value};

use crate::config::model::{ChangelogConfig, normalise_category as normalise};

use super::super::suggest;
use super::super::values::Problem;
use super::{Checker, ConfigErrorKind, Table};

const CHANGELOG_KEYS: &[&str] = &["categories", "features", "fixes", "other", "threshold"];
const CHANGELOG_EXAMPLE: &str =
    "[service.source.changelog] with categories = [\"Features\", \"Fixes\", \"Other\"]";

/// Names that a category is taken for, when `features`, `fixes` or `other` is left out.
const FEATURE_NAMES: &[&str] = &[
    "features",
    "new features",
    "added",
    "enhancements",
    "improvements",
];
const FIX_NAMES: &[&str] = &["fixes", "bug fixes", "fixed", "bugs"];
const OTHER_NAMES: &[&str] = &[
    "other",
    "internal",
    "changed",
    "misc",
    "miscellaneous",
    "maintenance",
    "chores",
];

/// Where each Conventional Commit type goes when the table does not say: the first listed
/// category with one of `names`, or else `fallback` (an index of the list).
#[derive(Clone, Copy)]
struct Fallback {
    key: &'static str,
    names: &'static [&'static str],
    fallback: fn(usize) -> usize,
}

impl Fallback {
    /// The category this key takes in `categories` (not empty) when the table leaves it out.
    fn default_in(&self, categories: &[String]) -> String {
        let index = categories
            .iter()
            .position(|name| self.names.contains(&normalise(name).as_str()))
            .unwrap_or((self.fallback)(categories.len()));
        categories[index].clone()
    }
}

const FALLBACKS: [Fallback; 3] = [
    Fallback {
        key: "features",
        names: FEATURE_NAMES,
        fallback: |_| 0,
    },
    Fallback {
        key: "fixes",
        names: FIX_NAMES,
        fallback: |_| 0,
    },
    Fallback {
        key: "other",
        names: OTHER_NAMES,
        fallback: |len| len - 1,
    },
];

impl Checker<'_> {
    /// `[service.source.changelog]` of a `[service.source]` table; `None` when absent or wrong
    /// (after reporting), so the train keeps the default categories.
    pub(super) fn changelog(&mut self, source: &Table<'_>) -> Option<ChangelogConfig> {
        source.field("changelog")?;
        let hint = format!("write {CHANGELOG_EXAMPLE}");
        let mut table = self.table(source, "changelog", "a table", Some(hint))?;
        table.place = source
            .place
            .replacen("[service.source]", "[service.source.changelog]", 1);
        self.unknown_keys(&table, CHANGELOG_KEYS);
        let threshold = self.closeness(&table);
        let categories = self.categories(&table);
        // Read even when the list is wrong, so that their own mistakes (a number for a name)
        // are reported in the same run.
        let [features, fixes, other] = FALLBACKS.map(|fallback| {
            let chosen = self.chosen_category(&table, fallback.key, categories.as_deref());
            (fallback, chosen)
        });
        let categories = categories?;
        let pick = |(fallback, chosen): (Fallback, Choice)| match chosen {
            Choice::Named(name) => Some(name),
            Choice::Wrong => None,
            Choice::Absent => Some(fallback.default_in(&categories)),
        };
        Some(ChangelogConfig {
            features: pick(features)?,
            fixes: pick(fixes)?,
            other: pick(other)?,
            threshold: threshold.ok()?,
            categories,
        })
    }

    /// `categories = [...]`: present, not empty, each name usable in a `changelog:` line and
    /// listed once. `None` after reporting any mistake.
    fn categories(&mut self, table: &Table<'_>) -> Option<Vec<String>> {
        let Some(field) = table.field("categories") else {
            self.missing(
                table,
                "categories",
                "list them in the order the changelog shows them, e.g. categories = \
                 [\"Features\", \"Fixes\", \"Other\"]"
                    .to_owned(),
            );
            return None;
        };
        let written = self.strings(table, "categories")?;
        let mut ok = written.len() == field.item.as_array().map_or(0, |array| array.len());
        if written.is_empty() && ok {
            let problem = Problem {
                message: "must list at least one category".to_owned(),
                hint: Some(
                    "e.g. categories = [\"Features\", \"Fixes\", \"Other\"], or remove the table \
                     to keep the default categories"
                        .to_owned(),
                ),
            };
            self.invalid(field.at, "categories", &table.place, problem);
            return None;
        }
        let mut names: Vec<String> = Vec::new();
        for (text, at) in written {
            let name = text.trim();
            let problem = if name.is_empty() {
                Some(Problem {
                    message: "a category name must not be empty".to_owned(),
                    hint: Some("remove the empty name, or write one".to_owned()),
                })
            } else if name.contains(',') {
                Some(Problem {
                    message: format!(
                        "`{name}` contains a comma, which separates the parts of a \
                         `changelog: Category, Subcategory, Change` line"
                    ),
                    hint: Some(format!(
                        "name it without a comma, e.g. \"{}\"",
                        name.replace(',', "")
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    )),
                })
            } else if name.chars().any(char::is_control) {
                Some(Problem {
                    message: format!("`{}` is not one line of text", name.escape_debug()),
                    hint: Some("write the name on one line, without tabs".to_owned()),
                })
            } else {
                None
            };
            if let Some(problem) = problem {
                self.invalid(at.or(field.at), "categories", &table.place, problem);
                ok = false;
                continue;
            }
            if let Some(first) = names.iter().find(|n| normalise(n) == normalise(name)) {
                let same = if first == name {
                    format!("`{name}` is listed twice in `categories`")
                } else {
                    format!("`{name}` is listed twice in `categories` (as `{first}` before)")
                };
                let message = format!("{same} {}", super::within(&table.place));
                let hint = "names are compared ignoring case, spaces and hyphens: keep one";
                self.report(
                    at.or(field.at),
                    ConfigErrorKind::Duplicate,
                    message,
                    Some(hint.to_owned()),
                );
                ok = false;
                continue;
            }
            names.push(name.to_owned());
        }
        ok.then_some(names)
    }

    /// `features`, `fixes` or `other`: one of the listed categories when written.
    fn chosen_category(
        &mut self,
        table: &Table<'_>,
        key: &str,
        categories: Option<&[String]>,
    ) -> Choice {
        if table.field(key).is_none() {
            return Choice::Absent;
        }
        let Some((text, field)) = self.string(table, key) else {
            return Choice::Wrong;
        };
        // The list's own mistakes are reported already; this one can only be judged on a
        // good list.
        let Some(categories) = categories else {
            return Choice::Wrong;
        };
        let wanted = normalise(text);
        if let Some(name) = categories.iter().find(|name| normalise(name) == wanted) {
            return Choice::Named(name.clone());
        }
        let listed = categories.join(", ");
        let hint = match suggest::closest(text, categories.iter().map(String::as_str)) {
            Some(near) => format!("did you mean `{near}`? (categories: {listed})"),
            None => format!("name one of the categories: {listed}"),
        };
        let problem = Problem {
            message: format!("`{text}` is not one of the categories"),
            hint: Some(hint),
        };
        self.invalid(field.at, key, &table.place, problem);
        Choice::Wrong
    }

    /// `threshold`: a number from 0 to 1. `Ok(None)` when absent, `Err` after reporting.
    fn closeness(&mut self, table: &Table<'_>) -> Result<Option<f64>, ()> {
        let Some(field) = table.field("threshold") else {
            return Ok(None);
        };
        let hint = "e.g. threshold = 0.75 (the default): a close misspelling maps to the \
                    nearest category; 1 accepts only differences of case, spaces and hyphens";
        let value = match field.item {
            Item::Value(Value::Float(v)) => *v.value(),
            Item::Value(Value::Integer(v)) => *v.value() as f64,
            _ => {
                self.wrong_type(field, &table.place, "a number", Some(hint.to_owned()));
                return Err(());
            }
        };
        if !(0.0..=1.0).contains(&value) {
            let problem = Problem {
                message: format!("must be between 0 and 1, found {value}"),
                hint: Some(hint.to_owned()),
            };
            self.invalid(field.at, "threshold", &table.place, problem);
            return Err(());
        }
        Ok(Some(value))
    }
}

/// What `features`, `fixes` or `other` says.
enum Choice {
    Absent,
    Named(String),
    /// Reported already.
    Wrong,
}
