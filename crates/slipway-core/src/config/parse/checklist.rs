//! `[[checklist]]`: the prerequisite items of the parser's schema, each checked for a name, a
//! scope naming services and environments that exist, the roles that may tick it and the
//! evidence it takes.

use toml_edit::{Item, TableLike, Value};

use crate::checklist::{ChecklistItem, EvidenceKind, Per};
use crate::deploy::Role;

use super::super::suggest;
use super::super::values::Problem;
use super::{Checker, ConfigErrorKind, Table, line_and_column};

const CHECKLIST_KEYS: &[&str] = &[
    "name",
    "description",
    "service",
    "environment",
    "per",
    "roles",
    "evidence",
    "different_from_requester",
];
const PER_VALUES: &[&str] = &["release", "environment"];
const EVIDENCE_VALUES: &[&str] = &["link", "note", "any"];
const ROLE_VALUES: &[&str] = &["deployer", "approver", "admin"];
/// Names are shown in messages, commands and the runbook: one line, not a paragraph.
const MAX_NAME_LENGTH: usize = 80;

/// What the other sections of the file define, for the scope of items.
pub(super) struct Known<'a> {
    pub(super) services: &'a [&'a str],
    pub(super) environments: &'a [&'a str],
}

impl Checker<'_> {
    /// Every `[[checklist]]` item, in file order.
    pub(super) fn checklist(&mut self, root: &Table<'_>, known: &Known<'_>) -> Vec<ChecklistItem> {
        let Some(field) = root.field("checklist") else {
            return Vec::new();
        };
        let tables = self.tables_in(field.item, |found| {
            format!("`checklist` at the top level: expected tables, found {found} in it")
        });
        let tables = tables.unwrap_or_else(|| {
            let hint = "write [[checklist]] (two brackets), once for each item, with \
                        name = \"agreement signed\"";
            let item = field.item;
            self.wrong_type(
                field,
                &root.place,
                "an array of tables",
                Some(hint.to_owned()),
            );
            super::as_table(item).into_iter().collect()
        });
        let mut items: Vec<(ChecklistItem, Option<usize>)> = Vec::new();
        for (index, (table, at)) in tables.into_iter().enumerate() {
            let Some((item, name_at)) =
                self.checklist_item(index, table, at.or(field.key_at), known)
            else {
                continue;
            };
            self.check_unique_item(&items, &item, name_at);
            items.push((item, name_at));
        }
        items.into_iter().map(|(item, _)| item).collect()
    }

    /// One `[[checklist]]` table; `None` when it has no usable name.
    fn checklist_item(
        &mut self,
        index: usize,
        table: &dyn TableLike,
        at: Option<usize>,
        known: &Known<'_>,
    ) -> Option<(ChecklistItem, Option<usize>)> {
        let given = table.get("name").and_then(Item::as_str).map(str::trim);
        let table = Table {
            table,
            at,
            place: match given {
                Some(name) if !name.is_empty() && name.len() <= MAX_NAME_LENGTH => {
                    format!("[[checklist]] `{name}`")
                }
                _ => format!("[[checklist]] #{}", index + 1),
            },
        };
        self.unknown_keys(&table, CHECKLIST_KEYS);
        let name = self.item_name(&table);
        let description = self.text(&table, "description");
        let services = self.scope(&table, "service", known.services, "[[service]]");
        let environments = self.scope(
            &table,
            "environment",
            known.environments,
            "[environment.NAME]",
        );
        let per = self
            .choice(&table, "per", PER_VALUES)
            .map(|per| match per {
                "environment" => Per::Environment,
                _ => Per::Release,
            })
            .unwrap_or(Per::Release);
        let evidence = self
            .choice(&table, "evidence", EVIDENCE_VALUES)
            .map(|evidence| match evidence {
                "link" => EvidenceKind::Link,
                "note" => EvidenceKind::Note,
                _ => EvidenceKind::Any,
            })
            .unwrap_or(EvidenceKind::Any);
        let roles = self.roles(&table);
        let different_from_requester = self
            .boolean(&table, "different_from_requester")
            .unwrap_or(false);
        let (name, name_at) = name?;
        Some((
            ChecklistItem {
                name,
                description,
                services,
                environments,
                per,
                roles,
                evidence,
                different_from_requester,
            },
            name_at,
        ))
    }

    /// `name`: one line of at most 80 characters, without surrounding spaces.
    fn item_name(&mut self, table: &Table<'_>) -> Option<(String, Option<usize>)> {
        if table.field("name").is_none() {
            let hint = "name the prerequisite, e.g. name = \"agreement signed\"".to_owned();
            self.missing(table, "name", hint);
            return None;
        }
        let (name, field) = self.string(table, "name")?;
        let problem = if name.trim().is_empty() {
            Some("must not be empty".to_owned())
        } else if name.trim() != name {
            Some(format!("\"{name}\" starts or ends with spaces"))
        } else if name.chars().any(char::is_control) {
            Some("must be one line".to_owned())
        } else if name.chars().count() > MAX_NAME_LENGTH {
            Some(format!("is longer than {MAX_NAME_LENGTH} characters"))
        } else {
            None
        };
        match problem {
            Some(message) => {
                let problem = Problem {
                    message,
                    hint: Some(
                        "a short name people type in commands, e.g. name = \"logo present\"; \
                         put the details in description"
                            .to_owned(),
                    ),
                };
                self.invalid(field.at, "name", &table.place, problem);
                None
            }
            None => Some((name.to_owned(), field.at)),
        }
    }

    /// `service` or `environment`: one name or a list of names defined elsewhere in the file;
    /// absent means all.
    fn scope(
        &mut self,
        table: &Table<'_>,
        key: &str,
        known: &[&str],
        section: &str,
    ) -> Vec<String> {
        let Some(field) = table.field(key) else {
            return Vec::new();
        };
        let names: Vec<(&str, Option<usize>)> = match field.item {
            Item::Value(Value::String(text)) => vec![(text.value().as_str(), field.at)],
            Item::Value(Value::Array(_)) => self.strings(table, key).unwrap_or_default(),
            _ => {
                let hint = format!(
                    "write {key} = \"{}\", or a list; leave it out to apply to every {key}",
                    known.first().copied().unwrap_or("NAME")
                );
                self.wrong_type(field, &table.place, "a name or a list of names", Some(hint));
                return Vec::new();
            }
        };
        let mut scope = Vec::new();
        for (name, at) in names {
            if known.contains(&name) {
                if !scope.iter().any(|seen| seen == name) {
                    scope.push(name.to_owned());
                }
                continue;
            }
            let hint = match suggest::closest(name, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None if known.is_empty() => format!("define it with {section} first"),
                None => format!("known: {}", known.join(", ")),
            };
            let message = format!("unknown {key} `{name}` in {}", table.place);
            self.report(at, ConfigErrorKind::InvalidValue, message, Some(hint));
        }
        scope
    }

    /// A string that must be one of `values`.
    pub(super) fn choice(
        &mut self,
        table: &Table<'_>,
        key: &str,
        values: &[&'static str],
    ) -> Option<&'static str> {
        let (text, field) = self.string(table, key)?;
        if let Some(value) = values.iter().find(|v| **v == text) {
            return Some(value);
        }
        let hint = match suggest::closest(text, values.iter().copied()) {
            Some(near) => format!("did you mean \"{near}\"?"),
            None => format!("write one of {}", quoted(values)),
        };
        let problem = Problem {
            message: format!("\"{text}\" is not one of {}", quoted(values)),
            hint: Some(hint),
        };
        self.invalid(field.at, key, &table.place, problem);
        None
    }

    /// `roles = ["approver"]`: exactly who may tick, in rank order; deployers, approvers and
    /// admins when absent.
    fn roles(&mut self, table: &Table<'_>) -> Vec<Role> {
        let Some(field) = table.field("roles") else {
            return ChecklistItem::DEFAULT_ROLES.to_vec();
        };
        if let Some(text) = field.item.as_str() {
            let hint = format!("write a list: roles = [\"{text}\"]");
            self.wrong_type(field, &table.place, "an array of roles", Some(hint));
            return ChecklistItem::DEFAULT_ROLES.to_vec();
        }
        let mut roles = Vec::new();
        for (text, at) in self.strings(table, "roles").unwrap_or_default() {
            let role = match text {
                "deployer" => Role::Deployer,
                "approver" => Role::Approver,
                "admin" => Role::Admin,
                "viewer" => {
                    let problem = Problem {
                        message: "viewers only read; they cannot tick items".to_owned(),
                        hint: Some("name deployer, approver or admin".to_owned()),
                    };
                    self.invalid(at, "roles", &table.place, problem);
                    continue;
                }
                other => {
                    let hint = match suggest::closest(other, ROLE_VALUES.iter().copied()) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => format!("roles are {}", quoted(ROLE_VALUES)),
                    };
                    let problem = Problem {
                        message: format!("unknown role \"{other}\""),
                        hint: Some(hint),
                    };
                    self.invalid(at, "roles", &table.place, problem);
                    continue;
                }
            };
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            if field.item.as_array().is_some_and(|a| a.is_empty()) {
                let problem = Problem {
                    message: "names no role, so nobody could tick the item".to_owned(),
                    hint: Some(
                        "name who may tick it, e.g. roles = [\"approver\", \"admin\"], or leave \
                         roles out for deployers, approvers and admins"
                            .to_owned(),
                    ),
                };
                self.invalid(field.at, "roles", &table.place, problem);
            }
            return ChecklistItem::DEFAULT_ROLES.to_vec();
        }
        roles.sort();
        roles
    }

    /// Two items of one name must not both apply to a service and environment: a tick names
    /// the item by name alone.
    fn check_unique_item(
        &mut self,
        items: &[(ChecklistItem, Option<usize>)],
        item: &ChecklistItem,
        name_at: Option<usize>,
    ) {
        let overlaps = |a: &[String], b: &[String]| {
            a.is_empty() || b.is_empty() || a.iter().any(|x| b.contains(x))
        };
        let clash = items.iter().find(|(other, _)| {
            other.name == item.name
                && overlaps(&other.services, &item.services)
                && overlaps(&other.environments, &item.environments)
        });
        if let Some((_, first_at)) = clash {
            let (line, _) = line_and_column(self.text, first_at.unwrap_or(0));
            let message = format!("checklist item `{}` is defined twice", item.name);
            let hint = format!(
                "the first is on line {line}; give each item its own name, or scope them to \
                 different services or environments"
            );
            self.report(name_at, ConfigErrorKind::Duplicate, message, Some(hint));
        }
    }
}

/// `"a", "b" or "c"`.
fn quoted(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first @ .., last] => format!("{} or {last}", first.join(", ")),
    }
}
