//! `[service.source]` in the parser's schema: where a service's git repository is and which
//! branch is its main line.

use crate::config::model::{SourceConfig, TrainAction, TrainSchedule, TrainSettings};

use super::super::suggest;
use super::super::values::Problem;
use super::{Checker, ConfigErrorKind, Table};

const SOURCE_KEYS: &[&str] = &[
    "repo",
    "branch",
    "branch_pattern",
    "prod_branch",
    "signing_key",
    "notes_webhook",
    "notes_secret_file",
    "notes_secret_env",
    "schedule",
    "changelog",
];
const SCHEDULE_KEYS: &[&str] = &["cron", "zone", "action", "environment"];
const SCHEDULE_EXAMPLE: &str = "[[service.source.schedule]] with cron = \"0 9 * * 2\", zone = \
                                \"America/New_York\" and action = \"cut\"";
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
        let train = self.train_settings(&table);
        Some(SourceConfig {
            repo: repo?,
            branch,
            train,
            compat: Default::default(),
        })
    }

    /// The release-train keys of `[service.source]`, defaults for those absent.
    fn train_settings(&mut self, table: &Table<'_>) -> TrainSettings {
        let mut train = TrainSettings::default();
        for (key, slot) in [
            ("branch_pattern", &mut train.branch_pattern),
            ("prod_branch", &mut train.prod_branch),
        ] {
            if let Some((text, field)) = self.string(table, key) {
                let checked = if key == "branch_pattern" {
                    text.replace("{date}", "2026-01-01")
                } else {
                    text.to_owned()
                };
                match check_branch(&checked) {
                    Ok(()) => *slot = text.to_owned(),
                    Err(problem) => self.invalid(field.at, key, &table.place, problem),
                }
            }
        }
        train.signing_key = self.text(table, "signing_key");
        if let Some((url, field)) = self.string(table, "notes_webhook") {
            if url.starts_with("http://") || url.starts_with("https://") {
                train.notes_webhook = Some(url.to_owned());
            } else {
                let problem = Problem {
                    message: "must be an http:// or https:// URL".to_owned(),
                    hint: Some(
                        "write the receiver's URL, e.g. notes_webhook = \"https://hooks.example/notes\""
                            .to_owned(),
                    ),
                };
                self.invalid(field.at, "notes_webhook", &table.place, problem);
            }
        }
        train.notes_secret = self.secret_source(table, "notes_secret_file", "notes_secret_env");
        if train.notes_secret.is_some() && train.notes_webhook.is_none() {
            let message = format!(
                "{}: a notes secret is set but no notes_webhook to sign for",
                table.place
            );
            let hint = "add notes_webhook = \"https://…\", or remove the secret".to_owned();
            self.report(table.at, ConfigErrorKind::InvalidValue, message, Some(hint));
        }
        train.schedules = self.schedules(table);
        train.changelog = self.changelog(table);
        train
    }

    /// `[[service.source.schedule]]` entries; those with a mistake are reported and left out.
    fn schedules(&mut self, source: &Table<'_>) -> Vec<TrainSchedule> {
        let Some(field) = source.field("schedule") else {
            return Vec::new();
        };
        let place = source.place.clone();
        let Some(tables) = self.tables_in(field.item, |found| {
            format!("`schedule` in {place}: expected tables, found {found} in it")
        }) else {
            let hint = format!("write {SCHEDULE_EXAMPLE}");
            self.wrong_type(field, &source.place, "an array of tables", Some(hint));
            return Vec::new();
        };
        let mut schedules = Vec::new();
        for (index, (table, at)) in tables.into_iter().enumerate() {
            let table = Table {
                table,
                at,
                place: format!("schedule #{} of {}", index + 1, source.place),
            };
            self.unknown_keys(&table, SCHEDULE_KEYS);
            let mut ok = true;
            let cron = match self.string(&table, "cron") {
                Some((text, field)) => match crate::cron::Cron::parse(text) {
                    Ok(cron) => Some(cron.as_str().to_owned()),
                    Err(error) => {
                        let problem = Problem {
                            message: error.to_string(),
                            hint: Some(
                                "write minute hour day-of-month month day-of-week, e.g. cron = \
                                 \"0 9 * * tue\" for Tuesdays at 09:00"
                                    .to_owned(),
                            ),
                        };
                        self.invalid(field.at, "cron", &table.place, problem);
                        None
                    }
                },
                None => {
                    if table.field("cron").is_none() {
                        self.missing(&table, "cron", format!("write {SCHEDULE_EXAMPLE}"));
                    }
                    None
                }
            };
            let zone = match self.string(&table, "zone") {
                Some((text, field)) => match super::super::values::time_zone(text) {
                    Ok(zone) => zone,
                    Err(problem) => {
                        self.invalid(field.at, "zone", &table.place, problem);
                        ok = false;
                        String::new()
                    }
                },
                None => "UTC".to_owned(),
            };
            let action = match self.string(&table, "action") {
                Some(("cut", _)) => Some(TrainAction::Cut),
                Some(("deploy", _)) => Some(TrainAction::Deploy),
                Some(("deploy-artifact", _)) => Some(TrainAction::DeployArtifact),
                Some((other, field)) => {
                    let problem = Problem {
                        message: format!("unknown action `{other}`"),
                        hint: Some(
                            "write action = \"cut\", \"deploy\" (the newest release) or \
                             \"deploy-artifact\" (the newest build of the main branch)"
                                .to_owned(),
                        ),
                    };
                    self.invalid(field.at, "action", &table.place, problem);
                    None
                }
                None => {
                    if table.field("action").is_none() {
                        self.missing(&table, "action", format!("write {SCHEDULE_EXAMPLE}"));
                    }
                    None
                }
            };
            let environment = self.text(&table, "environment");
            match (action, &environment) {
                (Some(TrainAction::Cut), Some(_)) => {
                    let problem = Problem {
                        message: "a cut goes to no environment".to_owned(),
                        hint: Some(
                            "remove environment: a cut takes what the environment before \
                             production runs"
                                .to_owned(),
                        ),
                    };
                    let at = table.field("environment").and_then(|f| f.at);
                    self.invalid(at, "environment", &table.place, problem);
                    ok = false;
                }
                (Some(TrainAction::Deploy | TrainAction::DeployArtifact), None) => {
                    self.missing(
                        &table,
                        "environment",
                        "name where the deploy goes, e.g. environment = \"staging\"".to_owned(),
                    );
                    ok = false;
                }
                _ => {}
            }
            if let (Some(cron), Some(action), true) = (cron, action, ok) {
                schedules.push(TrainSchedule {
                    cron,
                    zone,
                    action,
                    environment,
                });
            }
        }
        schedules
    }
}

impl Checker<'_> {
    /// After the environments are read: every schedule's `environment` names one of them.
    pub(super) fn check_schedule_environments(
        &mut self,
        root: &dyn toml_edit::TableLike,
        known: &[&str],
    ) {
        let services = root.get("service").and_then(|s| s.as_array_of_tables());
        let schedules = services
            .into_iter()
            .flat_map(|services| services.iter())
            .filter_map(|service| service.get("source").and_then(|s| s.as_table_like()))
            .filter_map(|source| source.get("schedule").and_then(|s| s.as_array_of_tables()))
            .flat_map(|schedules| schedules.iter());
        let mut unknown = Vec::new();
        for schedule in schedules {
            let Some(item) = schedule.get("environment") else {
                continue;
            };
            let Some(name) = item.as_str() else {
                continue;
            };
            if !known.contains(&name) {
                unknown.push((item.span().map(|span| span.start), name.to_owned()));
            }
        }
        for (at, name) in unknown {
            let hint = match suggest::closest(&name, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None if known.is_empty() => "add an [environment.NAME] table".to_owned(),
                None => format!("known: {}", known.join(", ")),
            };
            self.report(
                at,
                super::ConfigErrorKind::InvalidValue,
                format!("unknown environment `{name}` in [[service.source.schedule]]"),
                Some(hint),
            );
        }
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
