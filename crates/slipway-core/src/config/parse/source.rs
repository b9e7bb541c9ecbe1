//! `[service.source]` in the parser's schema: where a service's git repository is and which
//! branch is its main line.

use crate::config::model::SourceConfig;

use super::super::values::Problem;
use super::{Checker, Table};

const SOURCE_KEYS: &[&str] = &["repo", "branch"];
const SOURCE_EXAMPLE: &str = "[service.source] with repo = \"../idp\" and branch = \"main\"";

impl Checker<'_> {
    /// `[service.source]` of one service, `None` when absent or without a usable `repo`.
    pub(super) fn source(&mut self, service: &Table<'_>) -> Option<SourceConfig> {
        service.field("source")?;
        let hint = format!("write {SOURCE_EXAMPLE} below the [[service]]");
        let mut table = self.table(service, "source", "a table", Some(hint))?;
        table.place = format!("[service.source] of {}", service.place);
        self.unknown_keys(&table, SOURCE_KEYS);
        let branch = match self.string(&table, "branch") {
            Some((branch, field)) => match check_branch(branch) {
                Ok(()) => branch.to_owned(),
                Err(problem) => {
                    self.invalid(field.at, "branch", &table.place, problem);
                    SourceConfig::DEFAULT_BRANCH.to_owned()
                }
            },
            None => SourceConfig::DEFAULT_BRANCH.to_owned(),
        };
        let repo = self.text(&table, "repo");
        if repo.is_none() && table.field("repo").is_none() {
            let hint = "add the path of a local clone, e.g. repo = \"../idp\" (relative to this \
                        file)";
            self.missing(&table, "repo", hint.to_owned());
        }
        Some(SourceConfig {
            repo: repo?,
            branch,
            compat: Default::default(),
        })
    }
}

/// A branch name git would accept as written (the common mistakes; git itself has the last word).
fn check_branch(branch: &str) -> Result<(), Problem> {
    let bad = branch.is_empty()
        || branch.starts_with('-')
        || branch.starts_with('/')
        || branch.ends_with('/')
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        return Err(Problem {
            message: format!("`{branch}` is not a valid branch name"),
            hint: Some("write the branch as git names it, e.g. branch = \"main\"".to_owned()),
        });
    }
    Ok(())
}
