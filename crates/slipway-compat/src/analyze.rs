//! The analysis of one BASE..HEAD pair: loads what matters of both trees in bulk, then runs
//! each family of rules (migrations, jobs, routes, sessions, config defaults) and applies the
//! suppressions.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;

use crate::ddl::{self, Change, Dialect};
use crate::ruby::{self, Param, RubyFile};
use crate::rules::{self, Rule};
use crate::{CompatError, Finding, Location, Options, Report, Suppression, git};

/// Extensions of the files read as code when looking for uses of a name.
const CODE: &[&str] = &[
    ".rb", ".erb", ".haml", ".slim", ".rake", ".py", ".go", ".rs", ".js", ".ts", ".jsx", ".tsx",
    ".java", ".kt", ".php", ".ex", ".exs", ".yml", ".yaml",
];

/// At most this many places of use are named in a message.
const SHOWN_USES: usize = 3;

/// One revision: its files and what was read of them.
struct Snapshot<'a> {
    files: BTreeMap<String, String>,
    texts: &'a HashMap<String, String>,
    parsed: &'a RefCell<HashMap<String, Rc<RubyFile>>>,
}

impl Snapshot<'_> {
    fn text(&self, path: &str) -> Option<&str> {
        self.texts.get(self.files.get(path)?).map(String::as_str)
    }

    fn ruby(&self, path: &str) -> Option<Rc<RubyFile>> {
        let object = self.files.get(path)?;
        if let Some(parsed) = self.parsed.borrow().get(object) {
            return Some(Rc::clone(parsed));
        }
        let parsed = Rc::new(ruby::parse(self.texts.get(object)?));
        self.parsed
            .borrow_mut()
            .insert(object.clone(), Rc::clone(&parsed));
        Some(parsed)
    }

    /// Code files (not migrations, schema dumps or tests) whose text contains `needle`.
    fn code_containing<'s>(&'s self, needle: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.files.keys().map(String::as_str).filter(move |path| {
            is_code(path) && self.text(path).is_some_and(|text| text.contains(needle))
        })
    }

    /// Places where code (never a migration: see [`is_code`]) mentions `name` (an identifier,
    /// symbol, constant or word of a string in Ruby; a whole word elsewhere).
    fn uses(&self, names: &[&str]) -> Vec<Location> {
        let mut found = Vec::new();
        for name in names {
            for path in self.code_containing(name) {
                found.extend(self.uses_in(path, name));
            }
        }
        found.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        found.dedup();
        found
    }

    fn uses_in(&self, path: &str, name: &str) -> Vec<Location> {
        if path.ends_with(".rb") || path.ends_with(".rake") {
            let Some(file) = self.ruby(path) else {
                return Vec::new();
            };
            return file
                .mentions
                .iter()
                .filter(|mention| mention.name == name)
                .map(|mention| Location {
                    path: path.to_owned(),
                    line: mention.line,
                })
                .collect();
        }
        let text = self.text(path).unwrap_or("");
        text.lines()
            .enumerate()
            .filter(|(_, line)| has_word(line, name))
            .map(|(index, _)| Location {
                path: path.to_owned(),
                line: index + 1,
            })
            .collect()
    }
}

/// `name` occurs in `line` with no word character on either side.
fn has_word(line: &str, name: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(name).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

fn is_migration(path: &str) -> bool {
    let mut parts = path.split('/');
    let in_rails_dir = parts.next() == Some("db")
        && parts
            .next()
            .is_some_and(|dir| dir == "migrate" || dir.ends_with("_migrate"));
    let sql_dir = path.ends_with(".sql")
        && path
            .rsplit_once('/')
            .is_some_and(|(dir, _)| dir.to_lowercase().contains("migrat"));
    (in_rails_dir && path.ends_with(".rb")) || sql_dir
}

fn is_code(path: &str) -> bool {
    let excluded = is_migration(path)
        || path.starts_with("db/")
        || path.starts_with("test/")
        || path.starts_with("spec/")
        || path.starts_with("vendor/")
        || path.contains("node_modules/")
        || path.starts_with("config/locales/");
    !excluded && CODE.iter().any(|ext| path.ends_with(ext))
}

fn is_ruby(path: &str) -> bool {
    path.ends_with(".rb")
}

pub(crate) fn run(
    repo: &Path,
    base: String,
    head: String,
    options: &Options,
) -> Result<Report, CompatError> {
    let changes = git::diff(repo, &base, &head)?;
    let base_files = git::tree(repo, &base)?;
    let head_files = git::tree(repo, &head)?;
    let changed: BTreeSet<&str> = changes.iter().map(|c| c.path.as_str()).collect();

    // BASE's code, and HEAD's changed files: one cat-file for all.
    let mut wanted: BTreeSet<&String> = base_files
        .iter()
        .filter(|(path, _)| is_code(path) || path.ends_with(".rb"))
        .map(|(_, object)| object)
        .collect();
    wanted.extend(
        head_files
            .iter()
            .filter(|(path, _)| changed.contains(path.as_str()))
            .map(|(_, object)| object),
    );
    let wanted: Vec<String> = wanted.into_iter().cloned().collect();
    let texts = git::blobs(repo, &wanted)?;
    let texts: HashMap<String, String> = texts.into_iter().collect();
    let parsed = RefCell::new(HashMap::new());
    let before = Snapshot {
        files: base_files,
        texts: &texts,
        parsed: &parsed,
    };
    let after = Snapshot {
        files: head_files,
        texts: &texts,
        parsed: &parsed,
    };
    let added: Vec<&str> = changes
        .iter()
        .filter(|c| c.status == 'A')
        .map(|c| c.path.as_str())
        .collect();
    let changed_in_head: Vec<&str> = changes
        .iter()
        .filter(|c| c.status != 'D')
        .map(|c| c.path.as_str())
        .collect();

    let mut findings = Vec::new();
    migrations(&before, &after, &added, &mut findings);
    jobs(&before, &after, &changed_in_head, &changed, &mut findings);
    routes(&before, &after, &changed_in_head, &changed, &mut findings);
    stores(&before, &after, &changed_in_head, &mut findings);
    config_defaults(&before, &after, &changed_in_head, &mut findings);

    for finding in &mut findings {
        finding.suppressed = suppression(finding, &before, &after, options);
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(b.rule))
            .then_with(|| {
                a.head
                    .as_ref()
                    .map(|l| (&l.path, l.line))
                    .cmp(&b.head.as_ref().map(|l| (&l.path, l.line)))
            })
    });
    Ok(Report {
        base,
        head,
        changed_files: changes.len(),
        findings,
    })
}

/// `app/models/user.rb:3, app/views/users/show.html.erb:7 and 4 more`.
fn describe_uses(uses: &[Location]) -> String {
    let shown: Vec<String> = uses
        .iter()
        .take(SHOWN_USES)
        .map(ToString::to_string)
        .collect();
    let more = uses.len().saturating_sub(SHOWN_USES);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Columns each table's model ignores in `snapshot` (`self.ignored_columns`).
fn ignored_columns(snapshot: &Snapshot<'_>) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_table: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let paths: Vec<&str> = snapshot.code_containing("ignored_columns").collect();
    for path in paths.into_iter().filter(|p| is_ruby(p)) {
        let Some(file) = snapshot.ruby(path) else {
            continue;
        };
        for ignored in &file.ignored {
            let table = file
                .table_names
                .iter()
                .find(|(class, _)| *class == ignored.class)
                .map(|(_, table)| table.clone());
            by_table
                .entry(table.unwrap_or_else(|| format!("model:{}", ignored.class)))
                .or_default()
                .extend(ignored.columns.iter().cloned());
        }
    }
    by_table
}

fn is_ignored(ignored: &BTreeMap<String, BTreeSet<String>>, table: &str, column: &str) -> bool {
    let model = format!("model:{}", ruby::model_for_table(table));
    [table.to_owned(), model].iter().any(|key| {
        ignored
            .get(key)
            .is_some_and(|columns| columns.contains(column))
    })
}

fn migrations(before: &Snapshot<'_>, after: &Snapshot<'_>, added: &[&str], out: &mut Vec<Finding>) {
    let mut found = Vec::new();
    let mut created_tables = BTreeSet::new();
    for path in added.iter().copied().filter(|p| is_migration(p)) {
        let Some(text) = after.text(path) else {
            continue;
        };
        if path.ends_with(".sql") {
            match ddl::from_sql(text, 1) {
                Ok(changes) => found.extend(changes.into_iter().map(|c| (path, c))),
                Err(error) => out.push(unparsed(path, 1, &error)),
            }
        } else if let Some(file) = after.ruby(path) {
            let mut errors = Vec::new();
            found.extend(
                ddl::from_rails(&file, &mut errors)
                    .into_iter()
                    .map(|c| (path, c)),
            );
            for (line, error) in errors {
                out.push(unparsed(path, line, &error));
            }
        }
    }
    for (_, located) in &found {
        if let Change::CreateTable { table } = &located.change {
            created_tables.insert(table.to_lowercase());
        }
    }
    if found.is_empty() {
        return;
    }
    let ignored = ignored_columns(before);
    for (path, located) in found {
        let head = Some(Location {
            path: path.to_owned(),
            line: located.line,
        });
        let rails = located.dialect == Dialect::Rails;
        let pick = |rails_rule: Rule, sql_rule: Rule| if rails { rails_rule } else { sql_rule };
        match located.change {
            Change::DropColumn { table, column } => {
                if is_ignored(&ignored, &table, &column) {
                    continue;
                }
                let uses = before.uses(&[&column]);
                if let Some(first) = uses.first() {
                    out.push(Finding::new(
                        pick(rules::RAILS_DROP_COLUMN, rules::SQL_DROP_COLUMN),
                        format!(
                            "the migration drops {table}.{column}, which BASE still uses at {} \
                             and does not list in `ignored_columns`",
                            describe_uses(&uses)
                        ),
                        Some(first.clone()),
                        head,
                    ));
                }
            }
            Change::DropTable { table } => {
                let model = ruby::model_for_table(&table);
                let uses = before.uses(&[&table, &model]);
                if let Some(first) = uses.first() {
                    out.push(Finding::new(
                        pick(rules::RAILS_DROP_TABLE, rules::SQL_DROP_TABLE),
                        format!(
                            "the migration drops table {table}, which BASE still uses at {}",
                            describe_uses(&uses)
                        ),
                        Some(first.clone()),
                        head,
                    ));
                }
            }
            Change::RenameColumn { table, from, to } => {
                let uses = before.uses(&[&from]);
                out.push(Finding::new(
                    pick(rules::RAILS_RENAME_COLUMN, rules::SQL_RENAME_COLUMN),
                    format!(
                        "the migration renames {table}.{from} to {to}{}",
                        used_at(&uses)
                    ),
                    uses.first().cloned(),
                    head,
                ));
            }
            Change::RenameTable { from, to } => {
                let model = ruby::model_for_table(&from);
                let uses = before.uses(&[&from, &model]);
                out.push(Finding::new(
                    pick(rules::RAILS_RENAME_TABLE, rules::SQL_RENAME_TABLE),
                    format!(
                        "the migration renames table {from} to {to}{}",
                        used_at(&uses)
                    ),
                    uses.first().cloned(),
                    head,
                ));
            }
            Change::AddNotNullWithoutDefault { table, column } => {
                if created_tables.contains(&table.to_lowercase()) {
                    continue;
                }
                out.push(Finding::new(
                    pick(rules::RAILS_NOT_NULL, rules::SQL_NOT_NULL),
                    format!(
                        "the migration makes {table}.{column} NOT NULL without a default on a \
                         table BASE already writes"
                    ),
                    None,
                    head,
                ));
            }
            Change::ChangeType { table, column } => {
                let uses = before.uses(&[&column]);
                out.push(Finding::new(
                    pick(rules::RAILS_CHANGE_TYPE, rules::SQL_CHANGE_TYPE),
                    format!(
                        "the migration changes the type of {table}.{column}{}",
                        used_at(&uses)
                    ),
                    uses.first().cloned(),
                    head,
                ));
            }
            Change::CreateTable { .. } => {}
            Change::IndexNotConcurrent { table } => {
                if created_tables.contains(&table.to_lowercase()) {
                    continue;
                }
                out.push(Finding::new(
                    pick(rules::RAILS_INDEX, rules::SQL_INDEX),
                    format!("the migration builds an index on {table} without CONCURRENTLY"),
                    None,
                    head,
                ));
            }
        }
    }
}

fn used_at(uses: &[Location]) -> String {
    if uses.is_empty() {
        String::new()
    } else {
        format!(" (BASE uses it at {})", describe_uses(uses))
    }
}

fn unparsed(path: &str, line: usize, error: &str) -> Finding {
    Finding::new(
        rules::SQL_UNPARSED,
        format!("the SQL of this migration does not parse: {error}"),
        None,
        Some(Location {
            path: path.to_owned(),
            line,
        }),
    )
}

/// `def perform` of each job class in `paths`: class → (path, definition).
fn performs(
    snapshot: &Snapshot<'_>,
    paths: &[&str],
) -> BTreeMap<String, (String, ruby::MethodDef)> {
    let mut found = BTreeMap::new();
    for path in paths {
        if !(path.starts_with("app/jobs/") && is_ruby(path)) {
            continue;
        }
        let Some(file) = snapshot.ruby(path) else {
            continue;
        };
        for method in file.methods.iter().filter(|m| m.name == "perform") {
            if let Some(class) = &method.class {
                found.insert(class.clone(), ((*path).to_owned(), method.clone()));
            }
        }
    }
    found
}

/// Calls that enqueue or run `class` in `paths`: (place, positional count, keyword names).
fn enqueues<'s>(
    snapshot: &'s Snapshot<'_>,
    class: &str,
    paths: impl Iterator<Item = &'s str>,
) -> Vec<(Location, usize, Vec<String>)> {
    let mut found = Vec::new();
    for path in paths.filter(|p| is_ruby(p)) {
        if !snapshot.text(path).is_some_and(|t| t.contains(class)) {
            continue;
        }
        let Some(file) = snapshot.ruby(path) else {
            continue;
        };
        for call in &file.calls {
            let on_class = call.receiver.as_deref() == Some(class)
                || call.receiver_root.as_deref() == Some(class);
            if on_class && matches!(call.method.as_str(), "perform_later" | "perform_now") {
                let positional = call
                    .args
                    .iter()
                    .filter(|a| !matches!(a, ruby::Arg::Pair(..)))
                    .count();
                let keywords = call
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        ruby::Arg::Pair(key, _) => Some(key.clone()),
                        _ => None,
                    })
                    .collect();
                found.push((
                    Location {
                        path: path.to_owned(),
                        line: call.line,
                    },
                    positional,
                    keywords,
                ));
            }
        }
    }
    found
}

fn param_name(param: &Param) -> Option<&str> {
    match param {
        Param::Required(name) | Param::Optional(name, _) | Param::Keyword(name, _) => Some(name),
        _ => None,
    }
}

fn jobs(
    before: &Snapshot<'_>,
    after: &Snapshot<'_>,
    changed_in_head: &[&str],
    changed: &BTreeSet<&str>,
    out: &mut Vec<Finding>,
) {
    let changed_jobs: Vec<&str> = changed
        .iter()
        .copied()
        .filter(|p| p.starts_with("app/jobs/"))
        .collect();
    if changed_jobs.is_empty() {
        return;
    }
    let old = performs(before, &changed_jobs);
    let new = performs(after, &changed_jobs);
    for (class, (base_path, base_def)) in &old {
        if new.contains_key(class) {
            continue;
        }
        // The class may have moved to a file this change did not touch.
        let elsewhere: Vec<&str> = after
            .code_containing(class)
            .filter(|p| p.starts_with("app/jobs/"))
            .collect();
        if performs(after, &elsewhere).contains_key(class) {
            continue;
        }
        let paths: Vec<&str> = before.code_containing(class).collect();
        let callers: Vec<Location> = enqueues(before, class, paths.into_iter())
            .into_iter()
            .map(|(at, _, _)| at)
            .collect();
        if let Some(first) = callers.first() {
            out.push(Finding::new(
                rules::JOB_REMOVED_WHILE_ENQUEUED,
                format!(
                    "{class} (defined at {base_path}:{}) is removed, but BASE still enqueues it \
                     at {}",
                    base_def.line,
                    describe_uses(&callers)
                ),
                Some(first.clone()),
                None,
            ));
        }
    }
    for (class, (head_path, head_def)) in &new {
        let head_at = Location {
            path: head_path.clone(),
            line: head_def.line,
        };
        let known = old.get(class).cloned().or_else(|| {
            // The class may live in a file this change did not touch.
            let all: Vec<&str> = before
                .code_containing(class)
                .filter(|p| p.starts_with("app/jobs/"))
                .collect();
            performs(before, &all).remove(class)
        });
        let Some((base_path, base_def)) = known else {
            // A new job: enqueueing it in the same change is unsafe.
            let callers = enqueues(after, class, changed_in_head.iter().copied());
            if let Some((at, _, _)) = callers.first() {
                out.push(Finding::new(
                    rules::JOB_ENQUEUED_ON_INTRODUCTION,
                    format!(
                        "{class} is new in this change (defined at {head_at}) and already \
                         enqueued at {at}"
                    ),
                    None,
                    Some(at.clone()),
                ));
            }
            continue;
        };
        let base_at = Location {
            path: base_path.clone(),
            line: base_def.line,
        };
        let base_names: BTreeMap<&str, &Param> = base_def
            .params
            .iter()
            .filter_map(|p| Some((param_name(p)?, p)))
            .collect();
        let head_names: BTreeMap<&str, &Param> = head_def
            .params
            .iter()
            .filter_map(|p| Some((param_name(p)?, p)))
            .collect();
        let base_splat = base_def.params.contains(&Param::Splat);
        let base_double = base_def.params.contains(&Param::DoubleSplat);
        let head_splat = head_def.params.contains(&Param::Splat);
        let head_double = head_def.params.contains(&Param::DoubleSplat);
        for param in &head_def.params {
            let (name, required, keyword) = match param {
                Param::Required(name) => (name, true, false),
                Param::Keyword(name, None) => (name, true, true),
                _ => continue,
            };
            let before_required = matches!(
                base_names.get(name.as_str()),
                Some(Param::Required(_)) | Some(Param::Keyword(_, None))
            );
            let absorbed = if keyword { base_double } else { base_splat };
            if required && !before_required && !absorbed {
                out.push(Finding::new(
                    rules::JOB_NEW_REQUIRED_ARGUMENT,
                    format!("{class}#perform takes a new required argument `{name}`"),
                    Some(base_at.clone()),
                    Some(head_at.clone()),
                ));
            }
        }
        let mut callers = None;
        for (position, param) in base_def.params.iter().enumerate() {
            let Some(name) = param_name(param) else {
                continue;
            };
            if let (Some(Param::Optional(_, old_default)), Some(Param::Optional(_, new_default)))
            | (
                Some(Param::Keyword(_, Some(old_default))),
                Some(Param::Keyword(_, Some(new_default))),
            ) = (Some(param), head_names.get(name).copied())
                && old_default != new_default
            {
                out.push(Finding::new(
                    rules::JOB_DEFAULT_CHANGED,
                    format!(
                        "{class}#perform changes the default of `{name}` from {old_default} to \
                         {new_default}"
                    ),
                    Some(base_at.clone()),
                    Some(head_at.clone()),
                ));
            }
            if head_names.contains_key(name) {
                continue;
            }
            let keyword = matches!(param, Param::Keyword(..));
            if (keyword && head_double) || (!keyword && head_splat) {
                continue;
            }
            let callers = callers.get_or_insert_with(|| {
                let paths: Vec<&str> = before.code_containing(class).collect();
                enqueues(before, class, paths.into_iter())
            });
            let passing: Vec<&Location> = callers
                .iter()
                .filter(|(_, positional, keywords)| {
                    if keyword {
                        keywords.iter().any(|k| k == name)
                    } else {
                        *positional > position
                    }
                })
                .map(|(at, _, _)| at)
                .collect();
            if let Some(first) = passing.first() {
                out.push(Finding::new(
                    rules::JOB_ARGUMENT_REMOVED,
                    format!(
                        "{class}#perform no longer takes `{name}`, which BASE still passes at {} \
                         (perform defined at {base_at})",
                        describe_uses(&passing.iter().map(|l| (*l).clone()).collect::<Vec<_>>())
                    ),
                    Some((*first).clone()),
                    Some(head_at.clone()),
                ));
            }
        }
    }
}

/// A route of `config/routes.rb`: the helper names it defines and its literal path.
struct Route {
    names: Vec<String>,
    path: Option<String>,
    line: usize,
}

fn routes_of(snapshot: &Snapshot<'_>) -> Vec<(String, Route)> {
    let mut found = Vec::new();
    let paths: Vec<&String> = snapshot
        .files
        .keys()
        .filter(|p| {
            *p == "config/routes.rb" || (p.starts_with("config/routes/") && p.ends_with(".rb"))
        })
        .collect();
    for path in paths {
        let Some(file) = snapshot.ruby(path) else {
            continue;
        };
        for call in file.calls.iter().filter(|c| c.receiver.is_none()) {
            let first = call.names().first().map(|n| n.to_string());
            let alias = call
                .pair("as")
                .map(|v| v.trim_matches([':', '"', '\'']).to_owned());
            let route = match call.method.as_str() {
                "get" | "post" | "put" | "patch" | "delete" | "match" => {
                    let Some(first) = first else { continue };
                    let literal = format!("/{}", first.trim_start_matches('/'));
                    let derived = first.trim_start_matches('/').replace(['/', '-'], "_");
                    let name = alias.or_else(|| {
                        (!derived.is_empty()
                            && derived.chars().all(|c| c.is_alphanumeric() || c == '_'))
                        .then_some(derived)
                    });
                    Route {
                        names: name.into_iter().collect(),
                        path: Some(literal),
                        line: call.line,
                    }
                }
                "root" => Route {
                    names: vec!["root".to_owned()],
                    path: None,
                    line: call.line,
                },
                "resources" | "resource" => {
                    let Some(first) = first else { continue };
                    let plural = call.method == "resources";
                    let member = if plural {
                        ruby::model_for_table(&first).chars().enumerate().fold(
                            String::new(),
                            |mut snake, (index, c)| {
                                if c.is_uppercase() && index > 0 {
                                    snake.push('_');
                                }
                                snake.extend(c.to_lowercase());
                                snake
                            },
                        )
                    } else {
                        first.clone()
                    };
                    let mut names = vec![
                        first.clone(),
                        format!("new_{member}"),
                        format!("edit_{member}"),
                    ];
                    if plural {
                        names.push(member);
                    }
                    Route {
                        names,
                        path: Some(format!("/{first}")),
                        line: call.line,
                    }
                }
                _ => continue,
            };
            found.push((path.clone(), route));
        }
    }
    found
}

/// Where code links or redirects to a route: its `_path`/`_url` helpers or its literal path.
fn route_uses<'s>(
    snapshot: &Snapshot<'_>,
    route: &Route,
    paths: impl Iterator<Item = &'s str>,
) -> Vec<Location> {
    let mut needles: Vec<String> = route
        .names
        .iter()
        .flat_map(|n| [format!("{n}_path"), format!("{n}_url")])
        .collect();
    needles.extend(route.path.clone().filter(|p| p.len() > 1));
    let mut found = Vec::new();
    for path in paths {
        if !is_code(path) || path.starts_with("config/routes") {
            continue;
        }
        for needle in &needles {
            if snapshot
                .text(path)
                .is_some_and(|t| t.contains(needle.as_str()))
            {
                found.extend(snapshot.uses_in(path, needle));
            }
        }
    }
    found.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    found.dedup();
    found
}

fn routes(
    before: &Snapshot<'_>,
    after: &Snapshot<'_>,
    changed_in_head: &[&str],
    changed: &BTreeSet<&str>,
    out: &mut Vec<Finding>,
) {
    if !changed.iter().any(|p| p.starts_with("config/routes")) {
        return;
    }
    let old = routes_of(before);
    let new = routes_of(after);
    let old_names: BTreeSet<&str> = old
        .iter()
        .flat_map(|(_, r)| r.names.iter().map(String::as_str))
        .collect();
    let new_names: BTreeSet<&str> = new
        .iter()
        .flat_map(|(_, r)| r.names.iter().map(String::as_str))
        .collect();
    let old_paths: BTreeSet<&str> = old.iter().filter_map(|(_, r)| r.path.as_deref()).collect();
    let new_paths: BTreeSet<&str> = new.iter().filter_map(|(_, r)| r.path.as_deref()).collect();
    for (path, route) in &old {
        let gone = Route {
            names: route
                .names
                .iter()
                .filter(|n| !new_names.contains(n.as_str()))
                .cloned()
                .collect(),
            path: route
                .path
                .clone()
                .filter(|p| !new_paths.contains(p.as_str())),
            line: route.line,
        };
        if gone.names.is_empty() && gone.path.is_none() {
            continue;
        }
        let keys: Vec<&str> = before.files.keys().map(String::as_str).collect();
        let uses = route_uses(before, &gone, keys.into_iter());
        if !uses.is_empty() {
            out.push(Finding::new(
                rules::ROUTE_REMOVED_IN_USE,
                format!(
                    "the route {} is removed, but BASE still links or redirects to it at {}",
                    describe_route(&gone),
                    describe_uses(&uses)
                ),
                Some(Location {
                    path: path.clone(),
                    line: route.line,
                }),
                None,
            ));
        }
    }
    for (path, route) in &new {
        let fresh = Route {
            names: route
                .names
                .iter()
                .filter(|n| !old_names.contains(n.as_str()))
                .cloned()
                .collect(),
            path: route
                .path
                .clone()
                .filter(|p| !old_paths.contains(p.as_str())),
            line: route.line,
        };
        if fresh.names.is_empty() && fresh.path.is_none() {
            continue;
        }
        let uses = route_uses(after, &fresh, changed_in_head.iter().copied());
        if let Some(first) = uses.first() {
            out.push(Finding::new(
                rules::ROUTE_LINKED_ON_INTRODUCTION,
                format!(
                    "the route {} is new in this change ({path}:{}) and already linked at {}",
                    describe_route(&fresh),
                    route.line,
                    describe_uses(&uses)
                ),
                None,
                Some(first.clone()),
            ));
        }
    }
}

fn describe_route(route: &Route) -> String {
    let mut parts: Vec<String> = route.path.iter().cloned().collect();
    parts.extend(route.names.iter().map(|n| format!("{n}_path")));
    parts.join(" / ")
}

/// Every session or cookie access of `paths`: (store, key) → places, split by read and write.
type Accesses = BTreeMap<(&'static str, String), (Vec<Location>, Vec<Location>)>;

fn accesses<'s>(snapshot: &Snapshot<'_>, paths: impl Iterator<Item = &'s str>) -> Accesses {
    let mut found: Accesses = BTreeMap::new();
    for path in paths.filter(|p| is_ruby(p) && is_code(p)) {
        let text = snapshot.text(path).unwrap_or("");
        if !(text.contains("session") || text.contains("cookies")) {
            continue;
        }
        let Some(file) = snapshot.ruby(path) else {
            continue;
        };
        for access in &file.stores {
            let entry = found.entry((access.store, access.key.clone())).or_default();
            let at = Location {
                path: path.to_owned(),
                line: access.line,
            };
            if access.write {
                entry.1.push(at);
            } else if !access.fallback {
                entry.0.push(at);
            } else {
                // A read with a fallback counts as a use of the key, not as a risky read.
                entry.1.push(Location { line: 0, ..at });
            }
        }
    }
    found
}

/// `store_accessor :column, :a, :b` declarations of `paths`: accessor → place.
fn store_accessors<'s>(
    snapshot: &Snapshot<'_>,
    paths: impl Iterator<Item = &'s str>,
) -> BTreeMap<String, Location> {
    let mut found = BTreeMap::new();
    for path in paths.filter(|p| is_ruby(p)) {
        if !snapshot
            .text(path)
            .is_some_and(|t| t.contains("store_accessor"))
        {
            continue;
        }
        let Some(file) = snapshot.ruby(path) else {
            continue;
        };
        for call in file.calls.iter().filter(|c| c.method == "store_accessor") {
            for name in call.names().iter().skip(1) {
                found.insert(
                    (*name).to_owned(),
                    Location {
                        path: path.to_owned(),
                        line: call.line,
                    },
                );
            }
        }
    }
    found
}

fn stores(
    before: &Snapshot<'_>,
    after: &Snapshot<'_>,
    changed_in_head: &[&str],
    out: &mut Vec<Finding>,
) {
    let base_paths: Vec<&str> = before.files.keys().map(String::as_str).collect();
    let head_paths: Vec<&str> = after.files.keys().map(String::as_str).collect();
    let old = accesses(before, base_paths.iter().copied());
    let new_changed = accesses(after, changed_in_head.iter().copied());
    for ((store, key), (reads, _)) in &new_changed {
        if old.contains_key(&(*store, key.clone())) {
            continue;
        }
        if let Some(first) = reads.first() {
            out.push(Finding::new(
                rules::SESSION_READ_WITHOUT_FALLBACK,
                format!(
                    "{store}[:{key}] is read, but BASE never writes it and there is no \
                     `new || old` fallback"
                ),
                None,
                Some(first.clone()),
            ));
        }
    }
    let new = accesses(after, head_paths.iter().copied());
    for ((store, key), (reads, writes)) in &old {
        let written_before = writes.iter().any(|w| w.line > 0);
        let written_after = new
            .get(&(*store, key.clone()))
            .is_some_and(|(_, writes)| writes.iter().any(|w| w.line > 0));
        if written_before
            && !written_after
            && let Some(first) = reads.first()
        {
            out.push(Finding::new(
                rules::SESSION_FIELD_REMOVED,
                format!(
                    "{store}[:{key}] is no longer written, but BASE still reads it at {}",
                    describe_uses(reads)
                ),
                Some(first.clone()),
                None,
            ));
        }
    }
    let old_accessors = store_accessors(before, base_paths.iter().copied());
    if old_accessors.is_empty() {
        return;
    }
    let new_accessors = store_accessors(after, head_paths.iter().copied());
    for (name, declared) in &old_accessors {
        if new_accessors.contains_key(name) {
            continue;
        }
        let uses: Vec<Location> = before
            .uses(&[name])
            .into_iter()
            .filter(|at| at != declared)
            .collect();
        if let Some(first) = uses.first() {
            out.push(Finding::new(
                rules::SESSION_FIELD_REMOVED,
                format!(
                    "the stored field `{name}` (store_accessor at {declared}) is removed, but \
                     BASE still reads it at {}",
                    describe_uses(&uses)
                ),
                Some(first.clone()),
                None,
            ));
        }
    }
}

/// The leaf values of a YAML file by dotted key, with their lines (a plain reading of
/// `key: value` lines by indentation, enough for flag and settings files).
fn yaml_leaves(text: &str) -> BTreeMap<String, (String, usize)> {
    let mut leaves = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']).to_owned();
        while stack.last().is_some_and(|(level, _)| *level >= indent) {
            stack.pop();
        }
        let value = value.split(" #").next().unwrap_or("").trim();
        let mut full: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        full.push(&key);
        let full = full.join(".");
        if value.is_empty() {
            stack.push((indent, key));
        } else {
            leaves.insert(full, (value.to_owned(), index + 1));
        }
    }
    leaves
}

fn config_defaults(
    before: &Snapshot<'_>,
    after: &Snapshot<'_>,
    changed_in_head: &[&str],
    out: &mut Vec<Finding>,
) {
    let settings: Vec<&str> = changed_in_head
        .iter()
        .copied()
        .filter(|p| {
            p.starts_with("config/")
                && (p.ends_with(".yml") || p.ends_with(".yaml"))
                && !p.starts_with("config/locales/")
        })
        .collect();
    let code: Vec<&str> = changed_in_head
        .iter()
        .copied()
        .filter(|p| is_code(p) && !p.ends_with(".yml") && !p.ends_with(".yaml"))
        .collect();
    if settings.is_empty() || code.is_empty() {
        return;
    }
    for path in settings {
        let (Some(old), Some(new)) = (before.text(path), after.text(path)) else {
            continue;
        };
        let old = yaml_leaves(old);
        for (key, (value, line)) in yaml_leaves(new) {
            let Some((old_value, old_line)) = old.get(&key) else {
                continue;
            };
            if *old_value == value {
                continue;
            }
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            let mut uses = Vec::new();
            for code_path in &code {
                if after.text(code_path).is_some_and(|t| t.contains(leaf)) {
                    uses.extend(after.uses_in(code_path, leaf));
                }
            }
            if let Some(first) = uses.first() {
                out.push(Finding::new(
                    rules::CONFIG_DEFAULT_CHANGED,
                    format!(
                        "`{key}` changes from {old_value} to {value} ({path}:{line}) in the same \
                         change as code that uses it at {}",
                        describe_uses(&uses)
                    ),
                    Some(Location {
                        path: path.to_owned(),
                        line: *old_line,
                    }),
                    Some(first.clone()),
                ));
            }
        }
    }
}

/// `slipway:compat-ignore RULE reason` on the finding's line or the line above, in HEAD (or in
/// BASE for a finding with no place in HEAD); else a matching `[service.compat] ignore`.
fn suppression(
    finding: &Finding,
    before: &Snapshot<'_>,
    after: &Snapshot<'_>,
    options: &Options,
) -> Option<Suppression> {
    let places = [(&finding.head, after), (&finding.base, before)];
    for (place, snapshot) in places {
        let Some(place) = place else { continue };
        let Some(text) = snapshot.text(&place.path) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        for line in [place.line, place.line.saturating_sub(1)] {
            if line == 0 {
                continue;
            }
            let Some(content) = lines.get(line - 1) else {
                continue;
            };
            let Some((_, rest)) = content.split_once("slipway:compat-ignore") else {
                continue;
            };
            let mut words = rest.trim().splitn(2, char::is_whitespace);
            let rule = words.next().unwrap_or("");
            let reason = words.next().unwrap_or("").trim();
            if (rule == finding.rule || rule == "*") && !reason.is_empty() {
                return Some(Suppression {
                    reason: reason.to_owned(),
                    source: "code",
                    at: Some(Location {
                        path: place.path.clone(),
                        line,
                    }),
                });
            }
        }
    }
    for ignore in &options.ignores {
        let hit = [&finding.head, &finding.base]
            .into_iter()
            .flatten()
            .any(|place| ignore.matches(finding.rule, &place.path));
        if hit {
            return Some(Suppression {
                reason: ignore.reason.clone(),
                source: "config",
                at: None,
            });
        }
    }
    None
}
