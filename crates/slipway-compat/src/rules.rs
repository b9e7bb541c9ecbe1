//! The rules: each an id, a severity, why the change breaks while old and new instances serve
//! together, and the sequence of deploys that makes it safe.

use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look; never fails the check.
    Warning,
    /// Breaks requests or jobs in the 50/50 state: fails the check unless suppressed.
    Unsafe,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Unsafe => "unsafe",
        }
    }
}

/// One rule of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// Why it breaks while both versions serve.
    pub why: &'static str,
    /// The multi-deploy recipe.
    pub recipe: &'static str,
}

const DROP_RECIPE: &str = "deploy 1: stop reading it (for a column, add it to the model's \
    `self.ignored_columns`); deploy 2: stop writing it; deploy 3: drop it (and take it out of \
    `ignored_columns`, or delete the model for a table)";
const RENAME_RECIPE: &str = "do not rename in place: deploy 1 adds the new column or table and \
    writes both, reading new || old; backfill; deploy 2 reads only the new one and marks the old \
    one ignored; deploy 3 drops the old one";

pub const RAILS_DROP_COLUMN: Rule = Rule {
    id: "rails-drop-column-in-use",
    severity: Severity::Unsafe,
    why: "the old version still reads or writes this column (and Rails caches the column list), \
        so its queries fail as soon as the migration has run",
    recipe: DROP_RECIPE,
};
pub const RAILS_DROP_TABLE: Rule = Rule {
    id: "rails-drop-table-in-use",
    severity: Severity::Unsafe,
    why: "the old version still uses this table, and every request of it that touches the table \
        fails once the migration has run",
    recipe: DROP_RECIPE,
};
pub const RAILS_RENAME_COLUMN: Rule = Rule {
    id: "rails-rename-column",
    severity: Severity::Unsafe,
    why: "the old version knows the column only by its old name, which stops existing when the \
        migration runs",
    recipe: RENAME_RECIPE,
};
pub const RAILS_RENAME_TABLE: Rule = Rule {
    id: "rails-rename-table",
    severity: Severity::Unsafe,
    why: "the old version queries the table by its old name, which stops existing when the \
        migration runs",
    recipe: RENAME_RECIPE,
};
pub const RAILS_NOT_NULL: Rule = Rule {
    id: "rails-not-null-without-default",
    severity: Severity::Unsafe,
    why: "the old version inserts rows without this column; with NOT NULL and no default those \
        inserts fail",
    recipe: "deploy 1: add the column nullable (or with a default) and write it; backfill; \
        deploy 2: add the NOT NULL constraint",
};
pub const RAILS_CHANGE_TYPE: Rule = Rule {
    id: "rails-change-column-type",
    severity: Severity::Unsafe,
    why: "the old version reads and writes the column with the old type (and the rewrite may lock \
        the table)",
    recipe: "deploy 1: add a column of the new type and write both; backfill; deploy 2: read the \
        new column and ignore the old one; deploy 3: drop the old column",
};
pub const RAILS_INDEX: Rule = Rule {
    id: "rails-index-not-concurrent",
    severity: Severity::Warning,
    why: "on PostgreSQL a plain CREATE INDEX blocks writes to the table while it builds, for the \
        old and the new version alike",
    recipe: "use `add_index …, algorithm: :concurrently` with `disable_ddl_transaction!` in the \
        migration",
};
pub const SQL_DROP_COLUMN: Rule = Rule {
    id: "sql-drop-column",
    severity: Severity::Unsafe,
    why: "the old version still names this column, and its queries fail once the migration has run",
    recipe: DROP_RECIPE,
};
pub const SQL_DROP_TABLE: Rule = Rule {
    id: "sql-drop-table",
    severity: Severity::Unsafe,
    why: "the old version still names this table, and its queries fail once the migration has run",
    recipe: DROP_RECIPE,
};
pub const SQL_RENAME_COLUMN: Rule = Rule {
    id: "sql-rename-column",
    severity: Severity::Unsafe,
    why: "the old version knows the column only by its old name",
    recipe: RENAME_RECIPE,
};
pub const SQL_RENAME_TABLE: Rule = Rule {
    id: "sql-rename-table",
    severity: Severity::Unsafe,
    why: "the old version queries the table by its old name",
    recipe: RENAME_RECIPE,
};
pub const SQL_NOT_NULL: Rule = Rule {
    id: "sql-not-null-without-default",
    severity: Severity::Unsafe,
    why: "the old version inserts rows without this column; with NOT NULL and no default those \
        inserts fail",
    recipe: "deploy 1: add the column nullable (or with a default) and write it; backfill; \
        deploy 2: add the NOT NULL constraint",
};
pub const SQL_CHANGE_TYPE: Rule = Rule {
    id: "sql-change-column-type",
    severity: Severity::Unsafe,
    why: "the old version reads and writes the column with the old type",
    recipe: "deploy 1: add a column of the new type and write both; backfill; deploy 2: read the \
        new column; deploy 3: drop the old column",
};
pub const SQL_INDEX: Rule = Rule {
    id: "sql-index-not-concurrent",
    severity: Severity::Warning,
    why: "on PostgreSQL a CREATE INDEX without CONCURRENTLY blocks writes to the table while it \
        builds, for the old and the new version alike",
    recipe: "use CREATE INDEX CONCURRENTLY, outside a transaction",
};
pub const SQL_UNPARSED: Rule = Rule {
    id: "sql-unparsed",
    severity: Severity::Warning,
    why: "this SQL could not be parsed, so the check cannot tell what it changes",
    recipe: "read it by hand; suppress this finding with the reason once it is known safe",
};
pub const JOB_NEW_REQUIRED_ARGUMENT: Rule = Rule {
    id: "job-new-required-argument",
    severity: Severity::Unsafe,
    why: "jobs enqueued by the old version lack the argument, and the new version's `perform` \
        raises ArgumentError on them",
    recipe: "deploy 1: add the argument with a default (usually nil) and handle it; deploy 2: \
        pass it from the callers; deploy 3 (optional): make it required",
};
pub const JOB_ARGUMENT_REMOVED: Rule = Rule {
    id: "job-argument-removed",
    severity: Severity::Unsafe,
    why: "the old version still enqueues the job with this argument, and the new version's \
        `perform` raises ArgumentError on it",
    recipe: "deploy 1: stop using the argument and give it a default; deploy 2: stop passing it \
        from the callers; deploy 3: remove it",
};
pub const JOB_DEFAULT_CHANGED: Rule = Rule {
    id: "job-default-changed",
    severity: Severity::Unsafe,
    why: "a job enqueued without the argument behaves differently depending on which version \
        picks it up",
    recipe: "deploy 1: pass the argument explicitly from every caller; deploy 2: change the \
        default",
};
pub const JOB_ENQUEUED_ON_INTRODUCTION: Rule = Rule {
    id: "job-enqueued-on-introduction",
    severity: Severity::Unsafe,
    why: "the new version enqueues a job class the old version does not have; an old worker that \
        picks it up fails with an unknown class",
    recipe: "deploy 1: add the job class; deploy 2: start enqueueing it",
};
pub const JOB_REMOVED_WHILE_ENQUEUED: Rule = Rule {
    id: "job-removed-while-enqueued",
    severity: Severity::Unsafe,
    why: "the old version still enqueues this job; a new worker that picks it up does not know \
        the class",
    recipe: "deploy 1: stop enqueueing it; deploy 2, once the queues hold none: remove the class",
};
pub const ROUTE_REMOVED_IN_USE: Rule = Rule {
    id: "route-removed-in-use",
    severity: Severity::Unsafe,
    why: "pages served by the old version still link or redirect to this route, and the new \
        version answers 404",
    recipe: "deploy 1: remove every link and redirect to it; deploy 2: turn it into a redirect; \
        deploy 3 (weeks later, after checking the logs): remove it",
};
pub const ROUTE_LINKED_ON_INTRODUCTION: Rule = Rule {
    id: "route-linked-on-introduction",
    severity: Severity::Unsafe,
    why: "pages served by the new version link to a route the old version does not know, and \
        the next request may land on an old instance and get a 404",
    recipe: "deploy 1: add the route and its action; deploy 2: link and redirect to it",
};
pub const SESSION_READ_WITHOUT_FALLBACK: Rule = Rule {
    id: "session-read-without-fallback",
    severity: Severity::Unsafe,
    why: "sessions and cookies written by the old version never carry this key, so the new \
        version reads nil from them",
    recipe: "new field: deploy 1 writes it, deploy 2 reads it; rename: deploy 1 writes the new \
        name and reads `new || old`, deploy 2 drops the old name",
};
pub const SESSION_FIELD_REMOVED: Rule = Rule {
    id: "session-field-removed",
    severity: Severity::Unsafe,
    why: "the old version still reads this key, and sessions or records written by the new \
        version no longer carry it",
    recipe: "deploy 1: remove every read; deploy 2: remove the writes; deploy 3: remove the field",
};
pub const CONFIG_DEFAULT_CHANGED: Rule = Rule {
    id: "config-default-changed-with-code",
    severity: Severity::Warning,
    why: "while both versions serve, half the instances run with the old value and half with the \
        new; code that depends on the new value may meet the old one",
    recipe: "deploy 1: change the flag or default alone; later deploys: the code that relies on it",
};

/// Every rule, for the documentation and `--output json` consumers.
pub const ALL: &[Rule] = &[
    RAILS_DROP_COLUMN,
    RAILS_DROP_TABLE,
    RAILS_RENAME_COLUMN,
    RAILS_RENAME_TABLE,
    RAILS_NOT_NULL,
    RAILS_CHANGE_TYPE,
    RAILS_INDEX,
    SQL_DROP_COLUMN,
    SQL_DROP_TABLE,
    SQL_RENAME_COLUMN,
    SQL_RENAME_TABLE,
    SQL_NOT_NULL,
    SQL_CHANGE_TYPE,
    SQL_INDEX,
    SQL_UNPARSED,
    JOB_NEW_REQUIRED_ARGUMENT,
    JOB_ARGUMENT_REMOVED,
    JOB_DEFAULT_CHANGED,
    JOB_ENQUEUED_ON_INTRODUCTION,
    JOB_REMOVED_WHILE_ENQUEUED,
    ROUTE_REMOVED_IN_USE,
    ROUTE_LINKED_ON_INTRODUCTION,
    SESSION_READ_WITHOUT_FALLBACK,
    SESSION_FIELD_REMOVED,
    CONFIG_DEFAULT_CHANGED,
];
