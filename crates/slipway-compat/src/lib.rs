//! The 50/50 compatibility check: is the candidate revision safe to run beside the revision
//! live in the environment? Reads both revisions of a repository with `git` (no working tree
//! needed), parses what matters with real parsers (tree-sitter-ruby, sqlparser) and reports
//! each change that breaks while old and new instances serve together, with the multi-deploy
//! recipe that avoids it. See `docs/compat.md`.

mod analyze;
pub mod ddl;
pub mod git;
pub mod ruby;
pub mod rules;

use std::path::Path;

use serde::Serialize;

pub use rules::{Rule, Severity};

/// Everything that can go wrong in this crate. Each variant has a `hint`.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    /// The `git` binary could not be started.
    #[error("could not run git: {source}")]
    GitMissing {
        #[source]
        source: std::io::Error,
    },
    /// The directory is not a git repository.
    #[error("{path} is not a git repository")]
    NotARepository { path: String },
    /// A revision names no commit of the repository.
    #[error("git does not know the revision {revision:?}: {detail}")]
    UnknownRevision { revision: String, detail: String },
    /// A revision looks like an option, which git would take as one.
    #[error("the revision {revision:?} starts with '-'")]
    RevisionLooksLikeOption { revision: String },
    /// `git` failed for another reason; `detail` is what it wrote on stderr.
    #[error("git {command} failed: {detail}")]
    GitFailed { command: String, detail: String },
}

impl From<slipway_git::RunError> for CompatError {
    fn from(error: slipway_git::RunError) -> Self {
        match error {
            slipway_git::RunError::Missing { source } => CompatError::GitMissing { source },
            slipway_git::RunError::TimedOut { ref command, .. } => CompatError::GitFailed {
                command: command.clone(),
                detail: error.to_string(),
            },
        }
    }
}

impl CompatError {
    /// What to do about it, printed as the `hint:` line.
    pub fn hint(&self) -> String {
        match self {
            CompatError::GitMissing { .. } => "install git and make sure it is on PATH".to_owned(),
            CompatError::NotARepository { .. } => {
                "pass the repository with --repo PATH (a clone of the service's source)".to_owned()
            }
            CompatError::UnknownRevision { .. } => {
                "name a commit, branch or tag the repository has; `git fetch` if it is new"
                    .to_owned()
            }
            CompatError::RevisionLooksLikeOption { .. } => {
                "name the revision by its commit id or branch".to_owned()
            }
            CompatError::GitFailed { .. } => {
                "run the same git command by hand to see why".to_owned()
            }
        }
    }
}

/// A suppression from the configuration: `{ rule = "…", path = "…", reason = "…" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ignore {
    /// A rule id, or `*` for every rule.
    pub rule: String,
    /// A path of the repository: exact, a folder ending in `/`, or a prefix ending in `*`.
    pub path: String,
    pub reason: String,
}

impl Ignore {
    fn matches(&self, rule: &str, path: &str) -> bool {
        (self.rule == "*" || self.rule == rule)
            && if let Some(prefix) = self.path.strip_suffix('*') {
                path.starts_with(prefix)
            } else if self.path.ends_with('/') {
                path.starts_with(&self.path)
            } else {
                path == self.path
            }
    }
}

/// What the check is told besides the two revisions.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Suppressions from `[service.compat] ignore`.
    pub ignores: Vec<Ignore>,
}

/// A place in one revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    pub path: String,
    /// 1-based.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path, self.line)
    }
}

/// Why a finding does not count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub reason: String,
    /// `code` (a `slipway:compat-ignore` comment) or `config` (`[service.compat] ignore`).
    pub source: &'static str,
    /// Where the comment is, for a suppression in code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
}

/// One problem found.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// What was found, naming the table, column, job, route or key.
    pub message: String,
    pub why: &'static str,
    pub recipe: &'static str,
    /// Where in BASE (the live revision), when the finding has a place there.
    pub base: Option<Location>,
    /// Where in HEAD (the candidate), when the finding has a place there.
    pub head: Option<Location>,
    pub suppressed: Option<Suppression>,
}

impl Finding {
    fn new(rule: Rule, message: String, base: Option<Location>, head: Option<Location>) -> Self {
        Finding {
            rule: rule.id,
            severity: rule.severity,
            message,
            why: rule.why,
            recipe: rule.recipe,
            base,
            head,
            suppressed: None,
        }
    }

    /// Unsafe and not suppressed: fails the check.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Unsafe && self.suppressed.is_none()
    }
}

/// The result of one check.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The commit ids compared.
    pub base: String,
    pub head: String,
    /// Paths that differ between them.
    pub changed_files: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    /// No unsafe finding is left unsuppressed.
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(Finding::blocks)
    }

    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocks())
    }

    pub fn suppressed(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.suppressed.is_some())
    }

    /// The report for people: every finding with its places, why and recipe.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "compat {}..{}: {} changed file(s), {} finding(s)\n",
            short(&self.base),
            short(&self.head),
            self.changed_files,
            self.findings.len()
        );
        for finding in &self.findings {
            let state = match &finding.suppressed {
                Some(s) => format!("suppressed ({}: {})", s.source, s.reason),
                None => finding.severity.as_str().to_owned(),
            };
            out.push_str(&format!(
                "\n{state} [{}] {}\n",
                finding.rule, finding.message
            ));
            let place = |location: &Option<Location>| {
                location
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string)
            };
            out.push_str(&format!("  base: {}\n", place(&finding.base)));
            out.push_str(&format!("  head: {}\n", place(&finding.head)));
            out.push_str(&format!("  why: {}\n", finding.why));
            out.push_str(&format!("  recipe: {}\n", finding.recipe));
        }
        let blocking = self.blocking().count();
        out.push_str(&if blocking == 0 {
            "\nsafe to run side by side (no unsuppressed unsafe finding)\n".to_owned()
        } else {
            format!("\n{blocking} unsafe finding(s) not suppressed\n")
        });
        out
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Compares `base` (the revision live) with `head` (the candidate) in the repository at `repo`.
pub fn check(
    repo: &Path,
    base: &str,
    head: &str,
    options: &Options,
) -> Result<Report, CompatError> {
    let base = git::resolve(repo, base)?;
    let head = git::resolve(repo, head)?;
    analyze::run(repo, base, head, options)
}
