//! `[service.config]`, `[secrets]` and the `config` of a command target in the parser's schema:
//! the rules a service's config versions must meet (each key checked as the environment
//! variable it becomes, each rule for a type, pattern and allowed values that agree with each
//! other), where the master key of config versions is, and how a command target's scripts
//! receive a version.

use toml_edit::Item;

use crate::config::model::{
    CommandOperation, CommandTemplate, ConfigDelivery, ConfigRules, KeyRule, Placeholder,
    SecretsConfig, Uniqueness, ValueKind,
};
use crate::settings::{check_key, looks_secret, whole_value_regex};

use super::super::values::Problem;
use super::{Checker, ConfigErrorKind, Field, Table, as_table, within};

const RULE_KEYS: &[&str] = &[
    "required", "type", "pattern", "allowed", "unique", "group", "secret",
];
const TYPE_VALUES: &[&str] = &["string", "int", "bool", "url", "duration"];
const UNIQUE_VALUES: &[&str] = &["services", "environments", "everywhere"];
const DELIVERY_VALUES: &[&str] = &["env", "file"];
const SECRETS_KEYS: &[&str] = &["key_file", "previous_key_files"];
const RULE_EXAMPLE: &str = "QUEUE = { required = true, type = \"url\", unique = \"services\" }";

impl Checker<'_> {
    /// `[service.config]` of one service: a rule per key, keyed by valid names only.
    pub(super) fn config_rules(&mut self, service: &Table<'_>) -> ConfigRules {
        let mut rules = ConfigRules::default();
        let hint = format!(
            "write [service.config] below the [[service]], one rule per key, e.g. {RULE_EXAMPLE}"
        );
        let Some(table) = self.table(service, "config", "a table", Some(hint)) else {
            return rules;
        };
        for (key, _) in table.table.iter() {
            let Some(field) = table.field(key) else {
                continue;
            };
            let key_valid = self.config_key(field, &table);
            let Some((inner, at)) = as_table(field.item) else {
                let hint = match field.item {
                    Item::Value(toml_edit::Value::String(_)) => format!(
                        "a rule is a table; a value is set with `slipway config set`, not here: \
                         write {key} = {{ required = true }}"
                    ),
                    _ => format!("write {key} = {{ required = true }}"),
                };
                self.wrong_type(field, &table.place, "a table", Some(hint));
                continue;
            };
            let rule_table = Table {
                table: inner,
                at: at.or(field.key_at),
                place: format!("rule `{key}` of {}", service.place),
            };
            let rule = self.key_rule(key, &rule_table);
            if key_valid {
                rules.keys.insert(key.to_owned(), rule);
            }
        }
        rules
    }

    /// A key of `[service.config]`: one the targets can pass as an environment variable.
    fn config_key(&mut self, field: Field<'_>, table: &Table<'_>) -> bool {
        let key = field.key;
        let Err(message) = check_key(key) else {
            return true;
        };
        let well_formed = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !key.starts_with(|c: char| c.is_ascii_digit());
        let hint = if !well_formed {
            // `my-queue` → `MY_QUEUE`, when that is a key.
            let renamed: String = key
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let example = if check_key(&renamed).is_ok() {
                renamed
            } else {
                "JOBS_QUEUE".to_owned()
            };
            format!("config keys become environment variables: rename it, e.g. {example}")
        } else if key.len() > 128 {
            "shorten it to at most 128 characters".to_owned()
        } else {
            "rename it, e.g. APP_PORT: the targets set PORT and SLIPWAY_* for every instance"
                .to_owned()
        };
        let message = format!("{}: {message}", table.place);
        self.report(
            field.key_at,
            ConfigErrorKind::InvalidValue,
            message,
            Some(hint),
        );
        false
    }

    /// One rule: `{ required, type, pattern, allowed, unique, group, secret }`.
    fn key_rule(&mut self, key: &str, table: &Table<'_>) -> KeyRule {
        self.unknown_keys(table, RULE_KEYS);
        let required = self.boolean(table, "required").unwrap_or(false);
        let kind_field = table.field("type");
        let kind = self
            .choice(table, "type", TYPE_VALUES)
            .map(|kind| match kind {
                "int" => ValueKind::Int,
                "bool" => ValueKind::Bool,
                "url" => ValueKind::Url,
                "duration" => ValueKind::Duration,
                _ => ValueKind::String,
            });
        // Allowed values are checked against the type only when the type is known.
        let kind_known = kind.is_some() || kind_field.is_none();
        let kind = kind.unwrap_or_default();
        let pattern = self.rule_pattern(table);
        let secret = self.boolean(table, "secret");
        let secret_like = secret.unwrap_or_else(|| looks_secret(key));
        let allowed = self.allowed(
            table,
            kind_known.then_some(kind),
            pattern.as_ref(),
            secret_like,
            secret.is_none(),
        );
        let unique = self
            .choice(table, "unique", UNIQUE_VALUES)
            .map(|unique| match unique {
                "environments" => Uniqueness::Environments,
                "everywhere" => Uniqueness::Everywhere,
                _ => Uniqueness::Services,
            });
        let group = self.group(table);
        KeyRule {
            required,
            kind,
            pattern: pattern.map(|(text, _)| text),
            allowed,
            unique,
            group,
            secret,
        }
    }

    /// `pattern`: a regular expression the whole value must match.
    fn rule_pattern(&mut self, table: &Table<'_>) -> Option<(String, regex::Regex)> {
        let text = self.text(table, "pattern")?;
        let field = table.field("pattern")?;
        let error = match whole_value_regex(&text) {
            Ok(regex) => return Some((text, regex)),
            // The pattern alone, so the error's position is in the text as written.
            Err(error) => regex::Regex::new(&text).err().unwrap_or(error),
        };
        let (reason, offset) = regex_error(&error);
        let at = self.offset_in_string(field, &text, offset);
        let problem = Problem {
            message: format!("not a regular expression: {reason}"),
            hint: Some(
                "write a regular expression the whole value must match, e.g. \
                 pattern = '[a-z][a-z0-9-]*' (in single quotes, TOML keeps backslashes as \
                 they are)"
                    .to_owned(),
            ),
        };
        self.invalid(at, "pattern", &table.place, problem);
        None
    }

    /// Where the character at `offset` of a string value is in the file, when the value is
    /// written without escapes; else where the value starts.
    fn offset_in_string(
        &self,
        field: Field<'_>,
        value: &str,
        offset: Option<usize>,
    ) -> Option<usize> {
        let span = field.item.span()?;
        let source = self.text.get(span.clone())?;
        let verbatim = [format!("'{value}'"), format!("\"{value}\"")].contains(&source.to_owned());
        match offset {
            Some(offset) if verbatim && value.is_char_boundary(offset) => {
                Some(span.start + 1 + offset)
            }
            _ => field.at,
        }
    }

    /// `allowed`: values of the rule's type that match its pattern, none twice. A secret's
    /// allowed values would be written here for everyone to read, so a secret has none.
    fn allowed(
        &mut self,
        table: &Table<'_>,
        kind: Option<ValueKind>,
        pattern: Option<&(String, regex::Regex)>,
        secret: bool,
        secret_by_name: bool,
    ) -> Vec<String> {
        let Some(field) = table.field("allowed") else {
            return Vec::new();
        };
        let Some(values) = self.strings(table, "allowed") else {
            return Vec::new();
        };
        if secret {
            let why = if secret_by_name {
                "its name says it holds a secret"
            } else {
                "it is a secret"
            };
            let problem = Problem {
                message: format!(
                    "{why}, and its allowed values would be in slipway.toml for anyone to read"
                ),
                hint: Some(
                    "remove `allowed` (a `pattern` can still check the value's form), or write \
                     secret = false if the value is not a secret"
                        .to_owned(),
                ),
            };
            self.invalid(field.key_at, "allowed", &table.place, problem);
            return Vec::new();
        }
        if values.is_empty() && field.item.as_array().is_some_and(|a| a.is_empty()) {
            let problem = Problem {
                message: "lists no value, so no version could pass".to_owned(),
                hint: Some(
                    "list the values, e.g. allowed = [\"debug\", \"info\"], or leave `allowed` \
                     out to accept any"
                        .to_owned(),
                ),
            };
            self.invalid(field.at, "allowed", &table.place, problem);
        }
        let mut allowed: Vec<String> = Vec::new();
        for (value, at) in values {
            let problem = if let Some(kind) = kind.filter(|kind| !kind.accepts(value)) {
                let article = if kind == ValueKind::Int { "an" } else { "a" };
                Some(Problem {
                    message: format!("{value:?} is not {article} {}", kind.name()),
                    hint: Some(format!("`type` is {:?}: {}", kind.name(), kind.hint())),
                })
            } else if let Some((text, _)) = pattern.filter(|(_, regex)| !regex.is_match(value)) {
                Some(Problem {
                    message: format!("{value:?} does not match `pattern` ({text})"),
                    hint: Some("no version could hold it: fix the value or the pattern".to_owned()),
                })
            } else {
                None
            };
            if let Some(problem) = problem {
                self.invalid(at, "allowed", &table.place, problem);
                continue;
            }
            if allowed.iter().any(|seen| seen == value) {
                let message = format!(
                    "`allowed` {}: {value:?} is listed twice",
                    within(&table.place)
                );
                let hint = "list each value once".to_owned();
                self.report(at, ConfigErrorKind::Duplicate, message, Some(hint));
                continue;
            }
            allowed.push(value.to_owned());
        }
        allowed
    }

    /// `group`: a name shared by keys compared with each other for `unique`.
    fn group(&mut self, table: &Table<'_>) -> Option<String> {
        let (name, field) = self.string(table, "group")?;
        if !self.check_name_at(field.at, "group", &table.place, name) {
            return None;
        }
        if table.field("unique").is_none() {
            let problem = Problem {
                message: "a group only matters to a key with `unique`".to_owned(),
                hint: Some(format!(
                    "add unique = \"services\" (or \"environments\", \"everywhere\"), or remove \
                     group = {name:?}"
                )),
            };
            self.invalid(field.key_at, "group", &table.place, problem);
            return None;
        }
        Some(name.to_owned())
    }

    /// `[secrets]`: the master key file and the previous ones.
    pub(super) fn secrets(&mut self, root: &Table<'_>) -> SecretsConfig {
        let hint = "write [secrets] with key_file = \"master.key\"";
        let Some(mut table) = self.table(root, "secrets", "a table", Some(hint.to_owned())) else {
            return SecretsConfig::default();
        };
        table.place = "[secrets]".to_owned();
        self.unknown_keys(&table, SECRETS_KEYS);
        let key_file = self.text(&table, "key_file");
        let mut previous_key_files: Vec<String> = Vec::new();
        for (path, at) in self
            .strings(&table, "previous_key_files")
            .unwrap_or_default()
        {
            let problem = if path.trim().is_empty() {
                Some(Problem {
                    message: "a path is empty".to_owned(),
                    hint: Some("name a key file, e.g. \"master-2025.key\"".to_owned()),
                })
            } else if key_file.as_deref() == Some(path) {
                Some(Problem {
                    message: format!("{path:?} is also `key_file`, the current key"),
                    hint: Some(
                        "list only keys used before; the current one is always read".to_owned(),
                    ),
                })
            } else if previous_key_files.iter().any(|seen| seen == path) {
                let message =
                    format!("`previous_key_files` in [secrets]: {path:?} is listed twice");
                let hint = "list each key file once".to_owned();
                self.report(at, ConfigErrorKind::Duplicate, message, Some(hint));
                continue;
            } else {
                None
            };
            match problem {
                Some(problem) => self.invalid(at, "previous_key_files", &table.place, problem),
                None => previous_key_files.push(path.to_owned()),
            }
        }
        SecretsConfig {
            key_file,
            previous_key_files,
        }
    }

    /// `config = "env" | "file"` of a command table.
    pub(super) fn config_delivery(&mut self, table: &Table<'_>) -> ConfigDelivery {
        let Some(field) = table.field("config") else {
            return ConfigDelivery::default();
        };
        if field.item.as_str().is_none() {
            let hint = "write config = \"env\" (environment variables, the default) or \
                        config = \"file\" (an env file named by {config_file})";
            self.wrong_type(field, &table.place, "a string", Some(hint.to_owned()));
            return ConfigDelivery::default();
        }
        match self.choice(table, "config", DELIVERY_VALUES) {
            Some("file") => ConfigDelivery::File,
            _ => ConfigDelivery::Env,
        }
    }

    /// `{config_file}` names the env file of `config = "file"`; with variables it has no value.
    pub(super) fn check_config_file_placeholder(
        &mut self,
        table: &Table<'_>,
        delivery: ConfigDelivery,
        templates: &[(CommandOperation, Option<&CommandTemplate>)],
    ) {
        if delivery == ConfigDelivery::File {
            return;
        }
        for (operation, template) in templates {
            let Some(template) = template else { continue };
            if !template
                .placeholders()
                .any(|placeholder| placeholder == Placeholder::ConfigFile)
            {
                continue;
            }
            let key = operation.key();
            let Some(field) = table.field(key) else {
                continue;
            };
            let at = self.placeholder_at(field, Placeholder::ConfigFile.name());
            let problem = Problem {
                message: "placeholder `{config_file}` has no value unless config = \"file\""
                    .to_owned(),
                hint: Some(
                    "write config = \"file\" in this command table to hand the config version \
                     to `launch` and `task` as an env file, or read the environment variables \
                     they get by default"
                        .to_owned(),
                ),
            };
            self.invalid(at, key, &table.place, problem);
        }
    }
}

/// The reason of a regex error in one line, and the byte offset in the pattern it points at
/// (when the error says).
fn regex_error(error: &regex::Error) -> (String, Option<usize>) {
    match error {
        regex::Error::Syntax(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let reason = lines
                .iter()
                .rev()
                .find_map(|line| line.strip_prefix("error: "))
                .unwrap_or("invalid syntax")
                .to_owned();
            // The error shows the pattern indented by four spaces, then a line of carets
            // under the mistake (single-line patterns only).
            let offset = match lines.as_slice() {
                [_, pattern, carets, ..] if carets.trim_start().starts_with('^') => {
                    let column = carets.find('^').unwrap_or(0);
                    let shown = pattern.get(4..).unwrap_or("");
                    column
                        .checked_sub(4)
                        .and_then(|chars| shown.char_indices().nth(chars).map(|(i, _)| i))
                }
                _ => None,
            };
            (reason, offset)
        }
        regex::Error::CompiledTooBig(_) => ("it is too large to compile".to_owned(), None),
        _ => (error.to_string(), None),
    }
}
