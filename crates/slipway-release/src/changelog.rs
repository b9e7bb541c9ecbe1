//! The changelog of a range of commits, built from their messages alone (no IO): explicit
//! `changelog: Category, Subcategory, Change` lines, `[skip changelog]`, reverts, dependency
//! updates and Conventional Commits; whatever fits none of them is listed apart for a human.
//! The accepted formats are described in `docs/releases.md`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;
use slipway_core::config::normalise_category as normalise;

use crate::ReleaseError;

/// One commit as read from git. `parents` lets merges of pull requests lend their number to
/// the commits they bring in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commit {
    pub sha: String,
    pub parents: Vec<String>,
    pub author: String,
    pub author_email: String,
    pub subject: String,
    pub body: String,
}

impl Commit {
    /// A commit with no parents and no author, for building changelogs in tests and tools.
    pub fn new(
        sha: impl Into<String>,
        subject: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            sha: sha.into(),
            parents: Vec::new(),
            author: String::new(),
            author_email: String::new(),
            subject: subject.into(),
            body: body.into(),
        }
    }

    fn is_merge(&self) -> bool {
        self.parents.len() > 1
    }

    fn lines(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.subject.as_str()).chain(self.body.lines())
    }
}

/// The categories a changelog is grouped in, in the order they are shown, and where
/// Conventional Commits without a `changelog:` line go.
#[derive(Debug, Clone, PartialEq)]
pub struct Categories {
    names: Vec<String>,
    /// Index of the category of `feat` commits.
    features: usize,
    /// Index of the category of `fix` commits.
    fixes: usize,
    /// Index of the category of every other type (`perf`, `refactor`, `docs`, `chore`…).
    other: usize,
    /// How similar (normalised Levenshtein, 0 to 1) a written category must be to a listed one
    /// to be taken as a misspelling of it.
    threshold: f64,
}

/// The similarity above which a written category is taken as a misspelling: one wrong letter
/// in "Internal" (8 letters) is 0.875, two in "Bug Fixes" 0.78.
const DEFAULT_THRESHOLD: f64 = 0.75;

impl Default for Categories {
    /// The categories of seed 000's team.
    fn default() -> Self {
        Self::new(
            [
                "User-Facing Improvements",
                "Bug Fixes",
                "Internal",
                "Upcoming Features",
            ],
            "User-Facing Improvements",
            "Bug Fixes",
            "Internal",
        )
        .expect("the default categories are valid")
    }
}

impl Categories {
    /// Categories in display order; `features`, `fixes` and `other` name (exactly, ignoring
    /// case) the categories Conventional Commits of type `feat`, `fix` and any other go to.
    pub fn new<S: Into<String>>(
        names: impl IntoIterator<Item = S>,
        features: &str,
        fixes: &str,
        other: &str,
    ) -> Result<Self, ReleaseError> {
        let names: Vec<String> = names
            .into_iter()
            .map(|name| name.into().trim().to_owned())
            .collect();
        if names.is_empty() {
            return Err(categories_error("the list is empty".to_owned()));
        }
        let mut seen = HashSet::new();
        for name in &names {
            if name.is_empty() || name.contains(',') {
                return Err(categories_error(format!(
                    "{name:?} is empty or contains a comma"
                )));
            }
            if !seen.insert(normalise(name)) {
                return Err(categories_error(format!("{name:?} is listed twice")));
            }
        }
        let index = |wanted: &str| {
            names
                .iter()
                .position(|name| normalise(name) == normalise(wanted))
                .ok_or_else(|| categories_error(format!("{wanted:?} is not one of the categories")))
        };
        Ok(Self {
            features: index(features)?,
            fixes: index(fixes)?,
            other: index(other)?,
            names,
            threshold: DEFAULT_THRESHOLD,
        })
    }

    /// Changes how close a misspelling must be (0 to 1; 1 accepts only differences of case,
    /// spacing and hyphens).
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The listed category `written` means: the same name ignoring case, spacing and hyphens,
    /// or else the single most similar one if it is similar enough. Otherwise the reason, with
    /// the nearest category as a suggestion.
    pub fn resolve(&self, written: &str) -> Result<&str, Reason> {
        let wanted = normalise(written);
        if let Some(name) = self.names.iter().find(|name| normalise(name) == wanted) {
            return Ok(name);
        }
        let mut scored: Vec<(f64, &String)> = self
            .names
            .iter()
            .map(|name| {
                (
                    strsim::normalized_levenshtein(&wanted, &normalise(name)),
                    name,
                )
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (best, name) = scored[0];
        let tied = scored.get(1).is_some_and(|(second, _)| *second == best);
        if best >= self.threshold && !tied {
            return Ok(name);
        }
        Err(Reason::UnknownCategory {
            written: written.trim().to_owned(),
            nearest: name.clone(),
        })
    }

    fn index_of(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|listed| listed == name)
            .unwrap_or(self.other)
    }
}

fn categories_error(detail: String) -> ReleaseError {
    ReleaseError::Categories { detail }
}

/// A change listed under a category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The category as configured (misspellings already mapped).
    pub category: String,
    pub subcategory: Option<String>,
    pub change: String,
    pub sha: String,
    pub pr: Option<u64>,
    /// A Conventional Commit's `!` or a `BREAKING CHANGE:` footer.
    pub breaking: bool,
    /// Where the category came from.
    pub source: EntrySource,
}

/// How an entry was recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntrySource {
    /// A `changelog:` line; `written` is the category as written when it was a misspelling.
    Line { written: Option<String> },
    /// The type of a Conventional Commit subject (`feat`, `fix`…) and its scope.
    Conventional { kind: String, scope: Option<String> },
}

/// A commit that reverts another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revert {
    pub sha: String,
    /// The subject of the reverted commit, as the revert quotes it (or the revert's own
    /// subject when it quotes nothing).
    pub reverted_subject: String,
    /// From `This reverts commit SHA.`
    pub reverted_sha: Option<String>,
    pub pr: Option<u64>,
}

/// A dependency update (Dependabot, Renovate, `chore(deps)`…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub sha: String,
    /// The subject without its trailing `(#PR)`.
    pub change: String,
    pub pr: Option<u64>,
}

/// A commit a human has to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unassigned {
    pub sha: String,
    pub subject: String,
    pub reason: Reason,
}

/// Why a commit has no (or not every) entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reason {
    /// A `changelog:` line names a category too far from every listed one.
    UnknownCategory { written: String, nearest: String },
    /// A `changelog:` line without a category and a change separated by a comma.
    Malformed { line: String },
    /// No `changelog:` line, no `[skip changelog]`, and not a revert, a dependency update or
    /// a Conventional Commit.
    NoEntry,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownCategory { written, nearest } => {
                write!(f, "unknown category {written:?} (nearest: {nearest:?})")
            }
            Self::Malformed { line } => write!(
                f,
                "{line:?} is not \"changelog: Category, Subcategory, Change\""
            ),
            Self::NoEntry => f.write_str("no changelog line"),
        }
    }
}

/// The changelog of a range: entries in configured category order, each category's entries
/// in commit order; then reverts, dependency updates and commits that need a human.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changelog {
    categories: Vec<String>,
    pub entries: Vec<Entry>,
    pub reverts: Vec<Revert>,
    pub dependencies: Vec<Dependency>,
    pub unassigned: Vec<Unassigned>,
}

/// Builds the changelog of `commits`, taken in the order given (oldest first reads best;
/// `git::commits` returns them so).
///
/// Per commit, the first rule that applies wins: `[skip changelog]` (nothing); a revert; its
/// `changelog:` lines (every valid one is an entry, every invalid one lists the commit apart);
/// a dependency update; a Conventional Commit subject; a merge (its commits speak for it);
/// otherwise listed apart.
pub fn build(commits: &[Commit], categories: &Categories) -> Changelog {
    let merged_prs = merged_pull_requests(commits);
    let mut changelog = Changelog {
        categories: categories.names.clone(),
        entries: Vec::new(),
        reverts: Vec::new(),
        dependencies: Vec::new(),
        unassigned: Vec::new(),
    };
    for commit in commits {
        let pr =
            subject_pr(&commit.subject).or_else(|| merged_prs.get(commit.sha.as_str()).copied());
        classify(commit, pr, categories, &mut changelog);
    }
    changelog
        .entries
        .sort_by_key(|entry| categories.index_of(&entry.category));
    changelog
}

fn classify(commit: &Commit, pr: Option<u64>, categories: &Categories, out: &mut Changelog) {
    let message_lower = commit.subject.to_lowercase() + "\n" + &commit.body.to_lowercase();
    if message_lower.contains("[skip changelog]") {
        return;
    }
    if let Some(revert) = revert(commit, pr) {
        out.reverts.push(revert);
        return;
    }
    let breaking_footer = commit
        .body
        .lines()
        .any(|line| line.starts_with("BREAKING CHANGE:") || line.starts_with("BREAKING-CHANGE:"));
    let mut found_line = false;
    for line in commit.lines() {
        let Some(rest) = changelog_line(line) else {
            continue;
        };
        found_line = true;
        match parse_line(rest, categories) {
            Ok((category, written, subcategory, change)) => out.entries.push(Entry {
                category: category.to_owned(),
                subcategory,
                change,
                sha: commit.sha.clone(),
                pr,
                breaking: breaking_footer,
                source: EntrySource::Line { written },
            }),
            Err(reason) => out.unassigned.push(Unassigned {
                sha: commit.sha.clone(),
                subject: commit.subject.clone(),
                reason,
            }),
        }
    }
    if found_line {
        return;
    }
    let subject = strip_pr(&commit.subject);
    if is_dependency_update(subject) {
        out.dependencies.push(Dependency {
            sha: commit.sha.clone(),
            change: subject.to_owned(),
            pr,
        });
        return;
    }
    if !commit.is_merge()
        && let Some(conventional) = conventional(subject)
    {
        let index = match conventional.kind.as_str() {
            "feat" => categories.features,
            "fix" => categories.fixes,
            _ => categories.other,
        };
        out.entries.push(Entry {
            category: categories.names[index].clone(),
            subcategory: None,
            change: conventional.description.to_owned(),
            sha: commit.sha.clone(),
            pr,
            breaking: conventional.breaking || breaking_footer,
            source: EntrySource::Conventional {
                kind: conventional.kind,
                scope: conventional.scope.map(str::to_owned),
            },
        });
        return;
    }
    if commit.is_merge() {
        return;
    }
    out.unassigned.push(Unassigned {
        sha: commit.sha.clone(),
        subject: commit.subject.clone(),
        reason: Reason::NoEntry,
    });
}

/// The text after `changelog:` if `line` is a changelog line (any case, optionally indented
/// or as a `*`/`-` list item, as squash merges write them).
fn changelog_line(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line
        .strip_prefix("* ")
        .or_else(|| line.strip_prefix("- "))
        .unwrap_or(line)
        .trim_start();
    let prefix = line.get(..10)?;
    prefix
        .eq_ignore_ascii_case("changelog:")
        .then(|| &line[10..])
}

type ParsedLine<'c> = (&'c str, Option<String>, Option<String>, String);

/// `Category, Change` or `Category, Subcategory, Change` (the change may contain commas).
fn parse_line<'c>(rest: &str, categories: &'c Categories) -> Result<ParsedLine<'c>, Reason> {
    let malformed = || Reason::Malformed {
        line: format!("changelog:{rest}").trim().to_owned(),
    };
    let mut parts = rest.splitn(3, ',').map(str::trim);
    let written = parts
        .next()
        .filter(|part| !part.is_empty())
        .ok_or_else(malformed)?;
    let second = parts
        .next()
        .filter(|part| !part.is_empty())
        .ok_or_else(malformed)?;
    let (subcategory, change) = match parts.next() {
        Some(change) if !change.is_empty() => (Some(second.to_owned()), change.to_owned()),
        Some(_) => return Err(malformed()),
        None => (None, second.to_owned()),
    };
    let category = categories.resolve(written)?;
    let misspelt = (category != written).then(|| written.to_owned());
    Ok((category, misspelt, subcategory, change))
}

fn revert(commit: &Commit, pr: Option<u64>) -> Option<Revert> {
    let subject = strip_pr(&commit.subject);
    let quoted = subject
        .strip_prefix("Revert \"")
        .and_then(|rest| rest.strip_suffix('"'));
    let conventional = conventional(subject).filter(|parsed| parsed.kind == "revert");
    let reverted_sha = commit.body.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("This reverts commit ")?;
        let sha: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        (sha.len() >= 7).then_some(sha)
    });
    let reverted_subject = match (quoted, &conventional) {
        (Some(quoted), _) => quoted.to_owned(),
        (None, Some(parsed)) => parsed.description.to_owned(),
        (None, None) if reverted_sha.is_some() => subject.to_owned(),
        (None, None) => return None,
    };
    Some(Revert {
        sha: commit.sha.clone(),
        reverted_subject,
        reverted_sha,
        pr,
    })
}

fn is_dependency_update(subject: &str) -> bool {
    let lower = subject.to_lowercase();
    let dependabot = lower.starts_with("bump ")
        && ((lower.contains(" from ") && lower.contains(" to ")) || lower.contains(" group "));
    let renovate = [
        "update dependency ",
        "update rust crate ",
        "update module ",
        "update all non-major dependencies",
        "lock file maintenance",
    ]
    .iter()
    .any(|prefix| lower.starts_with(prefix));
    let deps_scope = conventional(subject).is_some_and(|parsed| {
        parsed
            .scope
            .is_some_and(|scope| scope == "deps" || scope == "deps-dev")
    });
    dependabot || renovate || deps_scope
}

struct Conventional<'s> {
    kind: String,
    scope: Option<&'s str>,
    breaking: bool,
    description: &'s str,
}

/// The Conventional Commit types taken as such; any other word before a colon ("Note: …")
/// is not one.
const CONVENTIONAL_TYPES: &[&str] = &[
    "feat", "fix", "perf", "refactor", "docs", "chore", "build", "ci", "style", "test", "tests",
    "revert",
];

/// `type(scope)!: description`.
fn conventional(subject: &str) -> Option<Conventional<'_>> {
    let (head, description) = subject.split_once(':')?;
    let description = description.trim();
    if description.is_empty() {
        return None;
    }
    let (head, breaking) = match head.strip_suffix('!') {
        Some(head) => (head, true),
        None => (head, false),
    };
    let (kind, scope) = match head.split_once('(') {
        Some((kind, scope)) => (kind, Some(scope.strip_suffix(')')?)),
        None => (head, None),
    };
    let kind = kind.to_lowercase();
    if !CONVENTIONAL_TYPES.contains(&kind.as_str()) {
        return None;
    }
    Some(Conventional {
        kind,
        scope,
        breaking,
        description,
    })
}

/// `(#1234)` at the end of a subject, or `Merge pull request #1234 from …`.
fn subject_pr(subject: &str) -> Option<u64> {
    if let Some(rest) = subject.strip_prefix("Merge pull request #") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return digits.parse().ok();
    }
    let rest = subject.trim_end().strip_suffix(')')?;
    let (_, number) = rest.rsplit_once("(#")?;
    number.parse().ok()
}

fn strip_pr(subject: &str) -> &str {
    let trimmed = subject.trim_end();
    match subject_pr(trimmed) {
        Some(_) if trimmed.ends_with(')') => trimmed
            .rsplit_once("(#")
            .map_or(trimmed, |(before, _)| before.trim_end()),
        _ => trimmed,
    }
}

/// The PR number each commit was brought in by: for every `Merge pull request #N` commit, the
/// commits reachable from its second parent within `commits` that are not on the main line
/// (the first-parent chains of the range's tips). The first merge to reach a commit names it.
fn merged_pull_requests(commits: &[Commit]) -> HashMap<&str, u64> {
    let by_sha: HashMap<&str, &Commit> = commits.iter().map(|c| (c.sha.as_str(), c)).collect();
    let parents: HashSet<&str> = commits
        .iter()
        .flat_map(|c| c.parents.iter().map(String::as_str))
        .collect();
    let mut main_line = HashSet::new();
    for tip in commits.iter().filter(|c| !parents.contains(c.sha.as_str())) {
        let mut current = Some(tip);
        while let Some(commit) = current {
            if !main_line.insert(commit.sha.as_str()) {
                break;
            }
            current = commit
                .parents
                .first()
                .and_then(|parent| by_sha.get(parent.as_str()).copied());
        }
    }
    let mut prs = HashMap::new();
    for merge in commits.iter().filter(|c| c.is_merge()) {
        let Some(pr) = subject_pr(&merge.subject).filter(|_| merge.subject.starts_with("Merge"))
        else {
            continue;
        };
        let mut stack: Vec<&str> = merge.parents[1..].iter().map(String::as_str).collect();
        while let Some(sha) = stack.pop() {
            let Some(commit) = by_sha.get(sha) else {
                continue;
            };
            if main_line.contains(sha) || prs.contains_key(sha) {
                continue;
            }
            prs.insert(commit.sha.as_str(), pr);
            stack.extend(commit.parents.iter().map(String::as_str));
        }
    }
    prs
}

impl Changelog {
    /// The categories in display order, as configured.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Grouped Markdown: `## Category`, `### Subcategory` where given (entries without one
    /// first), `- Change (#PR, sha7)`; then Reverts, Dependencies and "Needs a category".
    /// Empty sections are left out.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        for category in &self.categories {
            let entries: Vec<&Entry> = self
                .entries
                .iter()
                .filter(|entry| &entry.category == category)
                .collect();
            if entries.is_empty() {
                continue;
            }
            section(&mut out, "##", category);
            let mut subcategories: Vec<&str> = Vec::new();
            for entry in &entries {
                if let Some(sub) = entry.subcategory.as_deref()
                    && !subcategories
                        .iter()
                        .any(|seen| seen.eq_ignore_ascii_case(sub))
                {
                    subcategories.push(sub);
                }
            }
            let plain: Vec<&&Entry> = entries.iter().filter(|e| e.subcategory.is_none()).collect();
            for entry in &plain {
                entry_line(&mut out, entry);
            }
            for sub in subcategories {
                section(&mut out, "###", sub);
                for entry in entries.iter().filter(|entry| {
                    entry
                        .subcategory
                        .as_deref()
                        .is_some_and(|own| own.eq_ignore_ascii_case(sub))
                }) {
                    entry_line(&mut out, entry);
                }
            }
        }
        if !self.reverts.is_empty() {
            section(&mut out, "##", "Reverts");
            for revert in &self.reverts {
                let what = format!("Revert \"{}\"", revert.reverted_subject);
                let note = revert
                    .reverted_sha
                    .as_deref()
                    .map(|sha| format!("reverts {}", short(sha)));
                item(&mut out, &what, note.as_deref(), revert.pr, &revert.sha);
            }
        }
        if !self.dependencies.is_empty() {
            section(&mut out, "##", "Dependencies");
            for dependency in &self.dependencies {
                item(
                    &mut out,
                    &dependency.change,
                    None,
                    dependency.pr,
                    &dependency.sha,
                );
            }
        }
        if !self.unassigned.is_empty() {
            section(&mut out, "##", "Needs a category");
            for unassigned in &self.unassigned {
                let _ = writeln!(
                    out,
                    "- {} {}: {}",
                    short(&unassigned.sha),
                    unassigned.subject,
                    unassigned.reason
                );
            }
        }
        out
    }
}

fn section(out: &mut String, level: &str, title: &str) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    let _ = writeln!(out, "{level} {title}\n");
}

fn entry_line(out: &mut String, entry: &Entry) {
    let change = if entry.breaking {
        format!("**Breaking:** {}", entry.change)
    } else {
        entry.change.clone()
    };
    item(out, &change, None, entry.pr, &entry.sha);
}

/// `- text (note; #PR, sha7)`, the note and PR where there are.
fn item(out: &mut String, text: &str, note: Option<&str>, pr: Option<u64>, sha: &str) {
    let _ = write!(out, "- {text} (");
    if let Some(note) = note {
        let _ = write!(out, "{note}; ");
    }
    if let Some(pr) = pr {
        let _ = write!(out, "#{pr}, ");
    }
    let _ = writeln!(out, "{})", short(sha));
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}
