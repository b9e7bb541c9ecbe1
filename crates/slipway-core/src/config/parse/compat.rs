//! `[service.compat]` in the parser's schema: suppressions of the 50/50 compatibility check,
//! each naming a rule, a path of the repository and the reason it is safe anyway.

use crate::config::model::{CompatConfig, CompatIgnore};

use super::{Checker, Table};

const COMPAT_KEYS: &[&str] = &["ignore"];
const IGNORE_KEYS: &[&str] = &["rule", "path", "reason"];
const IGNORE_EXAMPLE: &str = "ignore = [{ rule = \"rails-drop-column-in-use\", path = \
                              \"db/migrate/\", reason = \"…\" }]";

impl Checker<'_> {
    /// `[service.compat]` of one service; empty when absent.
    pub(super) fn compat(&mut self, service: &Table<'_>, has_source: bool) -> CompatConfig {
        let mut compat = CompatConfig::default();
        let Some(field) = service.field("compat") else {
            return compat;
        };
        let hint = format!("write [service.compat] with {IGNORE_EXAMPLE}");
        let Some(mut table) = self.table(service, "compat", "a table", Some(hint)) else {
            return compat;
        };
        table.place = format!("[service.compat] of {}", service.place);
        self.unknown_keys(&table, COMPAT_KEYS);
        if !has_source {
            let problem = super::super::values::Problem {
                message: "the compatibility check reads the service's repository, which this \
                          service does not name"
                    .to_owned(),
                hint: Some("add [service.source] with repo = \"../idp\"".to_owned()),
            };
            self.invalid(field.key_at, "compat", &service.place, problem);
        }
        let Some(ignore) = table.field("ignore") else {
            return compat;
        };
        let place = table.place.clone();
        let Some(entries) = self.tables_in(ignore.item, |found| {
            format!("`ignore` in {place}: expected tables, found {found} in it")
        }) else {
            let hint = format!("write {IGNORE_EXAMPLE}");
            self.wrong_type(ignore, &table.place, "an array of tables", Some(hint));
            return compat;
        };
        for (index, (entry, at)) in entries.into_iter().enumerate() {
            let entry = Table {
                table: entry,
                at: at.or(ignore.key_at),
                place: format!(
                    "`ignore` #{} of [service.compat] of {}",
                    index + 1,
                    service.place
                ),
            };
            self.unknown_keys(&entry, IGNORE_KEYS);
            let required = |checker: &mut Self, key: &str, hint: &str| {
                let value = checker.text(&entry, key);
                if value.is_none() && entry.field(key).is_none() {
                    checker.missing(&entry, key, hint.to_owned());
                }
                value
            };
            let rule = required(
                self,
                "rule",
                "name the rule, e.g. rule = \"rails-rename-column\" (see docs/compat.md), or rule = \"*\"",
            );
            let path = required(
                self,
                "path",
                "name a file, a folder ending in `/`, or a prefix ending in `*`",
            );
            let reason = required(
                self,
                "reason",
                "say why the change is safe anyway: it goes to the deploy's audit trail",
            );
            if let (Some(rule), Some(path), Some(reason)) = (rule, path, reason) {
                compat.ignore.push(CompatIgnore { rule, path, reason });
            }
        }
        compat
    }
}
