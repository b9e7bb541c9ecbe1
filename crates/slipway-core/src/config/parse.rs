//! Turns the text of a `slipway.toml` into a [`Config`].
//!
//! The `toml_edit` document is walked by hand rather than deserialized with serde so that every
//! key and value keeps its position, each mistake gets a message written for it, and all of
//! them are reported at once instead of stopping at the first.

use std::collections::{BTreeMap, HashMap};

use toml_edit::{Item, TableLike, Value};

use crate::analysis::{Metric, Unit};
use crate::deploy::Role;
use crate::time::Span;

use super::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use super::model::{
    Analysis, ApprovalPolicy, CalendarFile, CanaryPolicy, Check, CheckKind, CommandOperation,
    CommandTargetConfig, CommandTemplate, Comparison, Config, EnvironmentConfig, GrafanaMarkers,
    HealthCheck, KNOWN_TARGETS, Markers, MetricSourceKind, Placeholder, Policy, Pool,
    PrometheusConfig, ProvenanceConfig, ProvenanceRequirement, ProxyListener, ServerConfig,
    ServiceConfig, Staffing, Threshold,
};
use super::suggest;
use super::values::{self, DURATION_HINT, Problem};
use crate::provenance::{PublicKey, TrustedKey};

mod changelog;
mod checklist;
mod compat;
mod notify;
mod settings;
mod source;

/// Parses and validates the text of a `slipway.toml`.
///
/// `file_name` is used only in messages. On failure every mistake found is returned, sorted by
/// position; a TOML syntax error stops the check and is returned alone.
pub fn parse_config(file_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    let mut checker = Checker {
        file: file_name,
        text,
        errors: Vec::new(),
        has_prometheus: false,
        has_trusted_keys: false,
    };
    let config = match toml_edit::Document::parse(text) {
        Ok(document) => Some(checker.config(document.as_table())),
        Err(error) => {
            let message = error
                .message()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            checker.report(
                error.span().map(|span| span.start),
                ConfigErrorKind::Syntax,
                format!("invalid TOML: {message}"),
                None,
            );
            None
        }
    };
    match config {
        Some(config) if checker.errors.is_empty() => Ok(config),
        _ => {
            let mut errors = checker.errors;
            errors.sort_by_key(|error| (error.line, error.column));
            Err(ConfigErrors { errors })
        }
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "server",
    "service",
    "environment",
    "prometheus",
    "markers",
    "checklist",
    "provenance",
    "secrets",
    "notify",
    "chat",
];
const SERVER_KEYS: &[&str] = &["listen", "data_dir", "database", "public_url"];
const SERVICE_KEYS: &[&str] = &[
    "name", "start", "migrate", "health", "pools", "config", "source", "compat",
];
const HEALTH_KEYS: &[&str] = &[
    "path",
    "interval",
    "timeout",
    "healthy_threshold",
    "unhealthy_threshold",
];
const POOL_KEYS: &[&str] = &["count", "traffic"];
const ENVIRONMENT_KEYS: &[&str] = &[
    "target",
    "regions",
    "protected",
    "approvals",
    "go_no_go",
    "windows",
    "freezes",
    "time_zone",
    "freeze_calendars",
    "staffing",
    "canary",
    "bake",
    "confirm_scale_in",
    "post_verify",
    "checks",
    "analysis",
    "inconclusive_limit",
    "analysis_interval",
    "launch_timeout",
    "command",
    "listen",
    "provenance",
];
const COMMAND_KEYS: &[&str] = &[
    "launch", "traffic", "stop", "task", "observe", "timeout", "shell", "workdir", "config",
];
const APPROVAL_KEYS: &[&str] = &["required", "expires", "roles", "not_authors"];
const GO_KEYS: &[&str] = &["by_other"];
const STAFFING_KEYS: &[&str] = &["calendar", "max_out", "team"];
const CANARY_KEYS: &[&str] = &["share", "header", "instances", "duration"];
const CHECK_KEYS: &[&str] = &[
    "metric", "query", "probe", "command", "name", "max", "min", "status", "body", "timeout",
];
const ANALYSIS_KEYS: &[&str] = &[
    "source",
    "window",
    "step",
    "min_requests",
    "min_samples",
    "confidence",
    "pass_score",
    "marginal_score",
    "compare",
];
const PROMETHEUS_HINT: &str = "add [prometheus] with url = \"http://127.0.0.1:9090\"";
const COMPARE_KEYS: &[&str] = &["metric", "allowed_increase"];
const PROMETHEUS_KEYS: &[&str] = &["url", "timeout", "queries"];
const MARKERS_KEYS: &[&str] = &["grafana", "webhooks"];
const GRAFANA_KEYS: &[&str] = &["url", "token_env", "tags"];
const PROVENANCE_KEYS: &[&str] = &["keys"];
const TRUSTED_KEY_KEYS: &[&str] = &["name", "public_key"];

/// A table of the document (a `[header]` table or an inline `{ … }` one), where it starts and
/// how messages name it.
struct Table<'t> {
    table: &'t dyn TableLike,
    /// Byte offset of its header, or of its key when it has no header of its own.
    at: Option<usize>,
    /// `[environment.prod]`, ``[[service]] `idp` ``, `` `approvals` of [environment.prod] ``.
    place: String,
}

impl<'t> Table<'t> {
    fn field(&self, key: &str) -> Option<Field<'t>> {
        let (key, item) = self.table.get_key_value(key)?;
        let key_at = key.span().map(|span| span.start);
        Some(Field {
            key: key.get(),
            item,
            at: item.span().map(|span| span.start).or(key_at).or(self.at),
            key_at: key_at.or(self.at),
        })
    }

    /// The place of a table nested under `key` of this one.
    fn nested_place(&self, key: &str) -> String {
        format!("`{key}` of {}", self.place)
    }
}

/// One `key = value` of a table.
#[derive(Clone, Copy)]
struct Field<'t> {
    key: &'t str,
    item: &'t Item,
    /// Byte offset of the value (falls back to the key).
    at: Option<usize>,
    key_at: Option<usize>,
}

/// A table-like item and where it starts.
fn as_table(item: &Item) -> Option<(&dyn TableLike, Option<usize>)> {
    match item {
        Item::Table(table) => Some((table, table.span().map(|span| span.start))),
        Item::Value(Value::InlineTable(table)) => {
            Some((table, table.span().map(|span| span.start)))
        }
        _ => None,
    }
}

/// The place of keys outside any table.
const TOP_LEVEL: &str = "the top level";

/// "in [server]", or "at the top level".
fn within(place: &str) -> String {
    if place == TOP_LEVEL {
        format!("at {place}")
    } else {
        format!("in {place}")
    }
}

/// How a message names the type of a value it did not expect.
fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "table",
        Item::ArrayOfTables(_) => "array of tables",
        Item::Value(value) => match value {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Boolean(_) => "boolean",
            Value::Datetime(_) => "date",
            Value::Array(_) => "array",
            Value::InlineTable(_) => "table",
        },
    }
}

fn value_at(value: &Value) -> Option<usize> {
    value.span().map(|span| span.start)
}

/// Service, environment, pool and region names end up in commands, URLs and messages.
fn check_name(name: &str) -> Result<(), Problem> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Problem {
            message: format!("`{name}` is not a valid name"),
            hint: Some(
                "use letters, digits, `-` and `_`, starting with a letter or digit".to_owned(),
            ),
        })
    }
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
    /// Whether the file has a `[prometheus]` table (valid or not): checks that need one are
    /// reported where they are written when it is missing.
    has_prometheus: bool,
    /// Whether `[provenance]` lists keys (valid or not): an environment that requires
    /// provenance without any is reported where it says so.
    has_trusted_keys: bool,
}

impl Checker<'_> {
    fn report(
        &mut self,
        at: Option<usize>,
        kind: ConfigErrorKind,
        message: String,
        hint: Option<String>,
    ) {
        let (line, column) = line_and_column(self.text, at.unwrap_or(0));
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            kind,
            message,
            hint,
        });
    }

    fn wrong_type(&mut self, field: Field<'_>, place: &str, expected: &str, hint: Option<String>) {
        let message = format!(
            "`{}` {}: expected {expected}, found {}",
            field.key,
            within(place),
            type_name(field.item)
        );
        self.report(field.at, ConfigErrorKind::WrongType, message, hint);
    }

    fn invalid(&mut self, at: Option<usize>, key: &str, place: &str, problem: Problem) {
        let message = format!("`{key}` {}: {}", within(place), problem.message);
        self.report(at, ConfigErrorKind::InvalidValue, message, problem.hint);
    }

    fn missing(&mut self, table: &Table<'_>, key: &str, hint: String) {
        let message = format!("missing `{key}` {}", within(&table.place));
        self.report(table.at, ConfigErrorKind::MissingKey, message, Some(hint));
    }

    fn unknown_keys(&mut self, table: &Table<'_>, allowed: &[&str]) {
        for (key, item) in table.table.iter() {
            if allowed.contains(&key) {
                continue;
            }
            let at = table
                .table
                .key(key)
                .and_then(|key| key.span())
                .map(|span| span.start)
                .or_else(|| item.span().map(|span| span.start))
                .or(table.at);
            let hint = match suggest::closest(key, allowed.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("known keys here: {}", allowed.join(", ")),
            };
            let message = format!("unknown key `{key}` {}", within(&table.place));
            self.report(at, ConfigErrorKind::UnknownKey, message, Some(hint));
        }
    }

    // --- Typed fields. Each returns `None` when the key is absent or after reporting a
    // --- mistake, so callers fall back to a default and carry on looking for more.

    fn string<'t>(&mut self, table: &Table<'t>, key: &str) -> Option<(&'t str, Field<'t>)> {
        let field = table.field(key)?;
        match field.item.as_str() {
            Some(text) => Some((text, field)),
            None => {
                let hint = match field.item {
                    Item::Value(Value::Integer(_) | Value::Float(_) | Value::Boolean(_)) => {
                        Some(format!(
                            "put the value in quotes: {key} = \"{}\"",
                            field.item.to_string().trim()
                        ))
                    }
                    _ => None,
                };
                self.wrong_type(field, &table.place, "a string", hint);
                None
            }
        }
    }

    /// A string that must not be empty.
    fn text(&mut self, table: &Table<'_>, key: &str) -> Option<String> {
        let (text, field) = self.string(table, key)?;
        if text.trim().is_empty() {
            let problem = Problem {
                message: "must not be empty".to_owned(),
                hint: None,
            };
            self.invalid(field.at, key, &table.place, problem);
            return None;
        }
        Some(text.to_owned())
    }

    fn boolean(&mut self, table: &Table<'_>, key: &str) -> Option<bool> {
        let field = table.field(key)?;
        if let Some(value) = field.item.as_bool() {
            return Some(value);
        }
        let hint = match field.item.as_str() {
            Some(text @ ("true" | "false")) => Some(format!("remove the quotes: {key} = {text}")),
            _ => Some(format!("write {key} = true or {key} = false")),
        };
        self.wrong_type(field, &table.place, "true or false", hint);
        None
    }

    /// A whole number of at least `min`.
    fn count(&mut self, table: &Table<'_>, key: &str, min: u32) -> Option<u32> {
        let field = table.field(key)?;
        let Some(value) = field.item.as_integer() else {
            let hint = match field.item.as_str() {
                Some(text) if text.trim().parse::<i64>().is_ok() => {
                    Some(format!("remove the quotes: {key} = {}", text.trim()))
                }
                _ => None,
            };
            self.wrong_type(field, &table.place, "a whole number", hint);
            return None;
        };
        let problem = if value < i64::from(min) {
            format!("must be at least {min}, found {value}")
        } else if let Ok(value) = u32::try_from(value) {
            return Some(value);
        } else {
            format!("{value} is too large")
        };
        let problem = Problem {
            message: problem,
            hint: None,
        };
        self.invalid(field.at, key, &table.place, problem);
        None
    }

    fn duration_value(&mut self, field: Field<'_>, place: &str) -> Option<Span> {
        match field.item.as_str() {
            Some(text) => match values::duration(text) {
                Ok(span) => Some(span),
                Err(problem) => {
                    self.invalid(field.at, field.key, place, problem);
                    None
                }
            },
            None => {
                let hint = match field.item.as_integer() {
                    Some(0) => format!("write {} = \"0s\"", field.key),
                    _ => format!(
                        "durations are strings with a unit, e.g. {} = \"15m\"",
                        field.key
                    ),
                };
                self.wrong_type(field, place, "a string like \"15m\"", Some(hint));
                None
            }
        }
    }

    /// A duration; zero is allowed (`bake = "0s"` skips the bake).
    fn duration(&mut self, table: &Table<'_>, key: &str) -> Option<Span> {
        let field = table.field(key)?;
        self.duration_value(field, &table.place)
    }

    /// A duration longer than zero.
    fn positive_duration(&mut self, table: &Table<'_>, key: &str) -> Option<Span> {
        let field = table.field(key)?;
        let span = self.duration_value(field, &table.place)?;
        if span.is_zero() {
            let problem = Problem {
                message: "must be longer than 0s".to_owned(),
                hint: Some(DURATION_HINT.to_owned()),
            };
            self.invalid(field.at, key, &table.place, problem);
            return None;
        }
        Some(span)
    }

    /// An array of strings, each with its position.
    fn strings<'t>(
        &mut self,
        table: &Table<'t>,
        key: &str,
    ) -> Option<Vec<(&'t str, Option<usize>)>> {
        let field = table.field(key)?;
        let Some(array) = field.item.as_array() else {
            let hint = field
                .item
                .as_str()
                .map(|text| format!("write a list: {key} = [\"{text}\"]"));
            self.wrong_type(field, &table.place, "an array of strings", hint);
            return None;
        };
        let mut strings = Vec::new();
        for value in array {
            match value.as_str() {
                Some(text) => strings.push((text, value_at(value))),
                None => {
                    let message = format!(
                        "`{key}` in {}: expected an array of strings, found {} in it",
                        table.place,
                        type_name(&Item::Value(value.clone()))
                    );
                    // An unquoted `2026-12-21` is a TOML date, not text.
                    let hint = matches!(value, Value::Datetime(_))
                        .then(|| format!("put it in quotes: \"{}\"", value.to_string().trim()));
                    self.report(value_at(value), ConfigErrorKind::WrongType, message, hint);
                }
            }
        }
        Some(strings)
    }

    /// A nested table (`health = { … }` or `[environment.prod.approvals]`).
    fn table<'t>(
        &mut self,
        parent: &Table<'t>,
        key: &str,
        expected: &str,
        hint: Option<String>,
    ) -> Option<Table<'t>> {
        let field = parent.field(key)?;
        match as_table(field.item) {
            Some((table, at)) => Some(Table {
                table,
                at: at.or(field.key_at),
                place: parent.nested_place(key),
            }),
            None => {
                self.wrong_type(field, &parent.place, expected, hint);
                None
            }
        }
    }

    /// A name that must be valid, reported at `at`.
    fn check_name_at(&mut self, at: Option<usize>, key: &str, place: &str, name: &str) -> bool {
        match check_name(name) {
            Ok(()) => true,
            Err(problem) => {
                self.invalid(at, key, place, problem);
                false
            }
        }
    }

    // --- The schema.

    fn config(&mut self, root: &toml_edit::Table) -> Config {
        let root = Table {
            table: root,
            at: None,
            place: TOP_LEVEL.to_owned(),
        };
        self.unknown_keys(&root, TOP_LEVEL_KEYS);
        let server = self
            .table(
                &root,
                "server",
                "a table",
                Some("write a [server] table".to_owned()),
            )
            .map(|mut server| {
                server.place = "[server]".to_owned();
                self.server(&server)
            })
            .unwrap_or_default();
        self.has_prometheus = root.field("prometheus").is_some();
        let prometheus = self.prometheus(&root);
        let provenance = self.provenance(&root);
        let services = self.services(&root);
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let mut configured = Vec::new();
        let environments = self.environments(&root, &names, &mut configured);
        self.check_distinct_addresses(&server, &configured);
        let configured: Vec<ProxyListener> = configured.into_iter().map(|(l, _)| l).collect();
        let proxy_listeners = ProxyListener::assign(&server, &services, &environments, &configured);
        let markers = self.markers(&root);
        let environment_names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
        let known = checklist::Known {
            services: &names,
            environments: &environment_names,
        };
        let checklist = self.checklist(&root, &known);
        let secrets = self.secrets(&root);
        let notify = self.notify(&root, &environment_names);
        self.check_schedule_environments(root.table, &environment_names);
        let chat = self.chat(&root);
        Config {
            server,
            services,
            environments,
            proxy_listeners,
            prometheus,
            markers,
            checklist,
            calendars: BTreeMap::new(),
            provenance,
            secrets,
            notify,
            chat,
        }
    }

    /// Two proxy listeners, or a listener and the server, cannot share an address.
    fn check_distinct_addresses(
        &mut self,
        server: &ServerConfig,
        listeners: &[(ProxyListener, Option<usize>)],
    ) {
        let mut seen: Vec<(&str, String)> =
            vec![(server.listen.as_str(), "[server] listen".to_owned())];
        for (listener, at) in listeners {
            let who = match &listener.region {
                Some(region) => format!(
                    "service `{}` in region `{region}` of [environment.{}]",
                    listener.service, listener.environment
                ),
                None => format!(
                    "service `{}` of [environment.{}]",
                    listener.service, listener.environment
                ),
            };
            // Port 0 asks the system for a free port at each start: never a clash.
            let any_port = listener.address.ends_with(":0");
            if let Some((_, first)) = seen
                .iter()
                .find(|(address, _)| !any_port && *address == listener.address)
            {
                let message = format!(
                    "`listen` in [environment.{}]: {} is already where {first} listens",
                    listener.environment, listener.address
                );
                let hint = "give every service its own port (or leave it out to get a free one from 7800 up)";
                self.report(
                    *at,
                    ConfigErrorKind::Duplicate,
                    message,
                    Some(hint.to_owned()),
                );
            } else {
                seen.push((listener.address.as_str(), who));
            }
        }
    }

    fn server(&mut self, table: &Table<'_>) -> ServerConfig {
        self.unknown_keys(table, SERVER_KEYS);
        let mut server = ServerConfig::default();
        if let Some((listen, field)) = self.string(table, "listen") {
            match check_listen(listen) {
                Ok(()) => server.listen = listen.to_owned(),
                Err(problem) => self.invalid(field.at, "listen", &table.place, problem),
            }
        }
        if let Some(data_dir) = self.text(table, "data_dir") {
            server.data_dir = data_dir;
        }
        if let Some((database, field)) = self.string(table, "database") {
            let known = ["postgres://", "postgresql://", "sqlite:"];
            if known.iter().any(|prefix| database.starts_with(prefix)) {
                server.database = Some(database.to_owned());
            } else {
                let problem = Problem {
                    message: "expected a `postgres://` URL".to_owned(),
                    hint: Some(
                        "write database = \"postgres://user@host/slipway\", or leave it out to \
                         use SQLite in data_dir"
                            .to_owned(),
                    ),
                };
                self.invalid(field.at, "database", &table.place, problem);
            }
        }
        server.public_url = self.url(table, "public_url");
        server
    }

    /// The tables of an item that must be an array of tables: `[[x]]` sections or a list of
    /// inline tables. Elements that are not tables are reported with `element_error(found)`.
    /// `None` when the item is not an array at all, for the caller to report with its own hint.
    fn tables_in<'i>(
        &mut self,
        item: &'i Item,
        element_error: impl Fn(&str) -> String,
    ) -> Option<Vec<(&'i dyn TableLike, Option<usize>)>> {
        let mut tables: Vec<(&dyn TableLike, Option<usize>)> = Vec::new();
        match item {
            Item::ArrayOfTables(array) => {
                for table in array {
                    tables.push((table, table.span().map(|span| span.start)));
                }
            }
            Item::Value(Value::Array(array)) => {
                for value in array {
                    match value {
                        Value::InlineTable(table) => tables.push((table, value_at(value))),
                        other => {
                            let found = type_name(&Item::Value(other.clone()));
                            let message = element_error(found);
                            self.report(value_at(other), ConfigErrorKind::WrongType, message, None);
                        }
                    }
                }
            }
            _ => return None,
        }
        Some(tables)
    }

    fn services(&mut self, root: &Table<'_>) -> Vec<ServiceConfig> {
        let Some(field) = root.field("service") else {
            let message = "no [[service]] defined".to_owned();
            let hint =
                "add one: [[service]] with name = \"web\" and start = \"bin/server --port $PORT\"";
            self.report(
                None,
                ConfigErrorKind::MissingKey,
                message,
                Some(hint.to_owned()),
            );
            return Vec::new();
        };
        let tables = self.tables_in(field.item, |found| {
            format!("`service` at the top level: expected tables, found {found} in it")
        });
        let tables = match tables {
            Some(tables) => tables,
            None => {
                let item = field.item;
                let hint = "write [[service]] (two brackets), once for each service";
                self.wrong_type(
                    field,
                    &root.place,
                    "an array of tables",
                    Some(hint.to_owned()),
                );
                // Still check what is inside, so one run reports every mistake.
                as_table(item).into_iter().collect()
            }
        };
        let mut first_at: HashMap<String, usize> = HashMap::new();
        let mut services = Vec::new();
        for (index, (table, at)) in tables.into_iter().enumerate() {
            let (service, name_at) = self.service(index, table, at.or(field.key_at));
            if let Some(name_at) = name_at {
                if let Some(first) = first_at.get(&service.name) {
                    let (line, _) = line_and_column(self.text, *first);
                    let message = format!("service `{}` is defined twice", service.name);
                    let hint = format!("the first is on line {line}; service names must be unique");
                    self.report(
                        Some(name_at),
                        ConfigErrorKind::Duplicate,
                        message,
                        Some(hint),
                    );
                } else {
                    first_at.insert(service.name.clone(), name_at);
                }
            }
            services.push(service);
        }
        services
    }

    /// One `[[service]]`, and where its valid name is (for the duplicate check).
    fn service(
        &mut self,
        index: usize,
        table: &dyn TableLike,
        at: Option<usize>,
    ) -> (ServiceConfig, Option<usize>) {
        let given_name = table
            .get("name")
            .and_then(Item::as_str)
            .filter(|name| check_name(name).is_ok());
        let table = Table {
            table,
            at,
            place: match given_name {
                Some(name) => format!("[[service]] `{name}`"),
                None => format!("[[service]] #{}", index + 1),
            },
        };
        self.unknown_keys(&table, SERVICE_KEYS);

        let mut name_at = None;
        let name = match self.string(&table, "name") {
            Some((name, field)) => {
                if self.check_name_at(field.at, "name", &table.place, name) {
                    name_at = field.at.or(Some(0));
                }
                name.to_owned()
            }
            None => {
                if table.field("name").is_none() {
                    self.missing(&table, "name", "add a name, e.g. name = \"idp\"".to_owned());
                }
                String::new()
            }
        };
        let start = self.text(&table, "start");
        if start.is_none() && table.field("start").is_none() {
            let hint = "add the command that starts one instance, e.g. start = \"bin/server \
                        --port $PORT\"";
            self.missing(&table, "start", hint.to_owned());
        }
        let migrate = self.text(&table, "migrate");
        let health = self.health(&table);
        let pools = self.pools(&table);
        let config = self.config_rules(&table);
        let mut source = self.source(&table);
        let compat = self.compat(&table, source.is_some());
        if let Some(source) = &mut source {
            source.compat = compat;
        }
        let service = ServiceConfig {
            name,
            start: start.unwrap_or_default(),
            migrate,
            health,
            pools,
            config,
            source,
        };
        (service, name_at)
    }

    fn health(&mut self, service: &Table<'_>) -> HealthCheck {
        let mut health = HealthCheck::default();
        let Some(field) = service.field("health") else {
            return health;
        };
        // `health = "/up"` is short for `health = { path = "/up" }`.
        if let Some(path) = field.item.as_str() {
            match check_path(path) {
                Ok(()) => health.path = path.to_owned(),
                Err(problem) => self.invalid(field.at, "health", &service.place, problem),
            }
            return health;
        }
        let hint = "write health = { path = \"/up\", interval = \"1s\", timeout = \"5s\" }";
        let Some(table) = self.table(service, "health", "a table", Some(hint.to_owned())) else {
            return health;
        };
        self.unknown_keys(&table, HEALTH_KEYS);
        if let Some((path, field)) = self.string(&table, "path") {
            match check_path(path) {
                Ok(()) => health.path = path.to_owned(),
                Err(problem) => self.invalid(field.at, "path", &table.place, problem),
            }
        }
        if let Some(interval) = self.positive_duration(&table, "interval") {
            health.interval = interval;
        }
        if let Some(timeout) = self.positive_duration(&table, "timeout") {
            health.timeout = timeout;
        }
        if let Some(threshold) = self.count(&table, "healthy_threshold", 1) {
            health.healthy_threshold = threshold;
        }
        if let Some(threshold) = self.count(&table, "unhealthy_threshold", 1) {
            health.unhealthy_threshold = threshold;
        }
        health
    }

    fn pools(&mut self, service: &Table<'_>) -> BTreeMap<String, Pool> {
        let hint = "write pools = { web = { count = 2, traffic = true }, worker = { count = 1 } }";
        if service.field("pools").is_none() {
            return Pool::default_pools();
        }
        let Some(pools_table) = self.table(service, "pools", "a table", Some(hint.to_owned()))
        else {
            return Pool::default_pools();
        };
        if pools_table.table.is_empty() {
            let message = format!("`pools` in {}: needs at least one pool", service.place);
            let at = service.field("pools").and_then(|field| field.at);
            self.report(
                at,
                ConfigErrorKind::InvalidValue,
                message,
                Some(hint.to_owned()),
            );
            return Pool::default_pools();
        }
        let mut pools = BTreeMap::new();
        for (name, _) in pools_table.table.iter() {
            let Some(field) = pools_table.field(name) else {
                continue;
            };
            let place = format!("pool `{name}` of {}", service.place);
            self.check_name_at(field.key_at, name, &pools_table.place, name);
            let Some((table, at)) = as_table(field.item) else {
                let hint = match field.item.as_integer() {
                    Some(count) => format!("write {name} = {{ count = {count} }}"),
                    None => format!("write {name} = {{ count = 1, traffic = true }}"),
                };
                self.wrong_type(field, &pools_table.place, "a table", Some(hint));
                continue;
            };
            let table = Table {
                table,
                at: at.or(field.key_at),
                place,
            };
            self.unknown_keys(&table, POOL_KEYS);
            let count = self.count(&table, "count", 1).unwrap_or(1);
            let traffic = self.boolean(&table, "traffic").unwrap_or(false);
            pools.insert(name.to_owned(), Pool { count, traffic });
        }
        pools
    }

    fn environments(
        &mut self,
        root: &Table<'_>,
        services: &[&str],
        listeners: &mut Vec<(ProxyListener, Option<usize>)>,
    ) -> Vec<EnvironmentConfig> {
        let none_hint = "add one, e.g. [environment.dev] with target = \"local\"; environments \
                         are promoted in the order they appear in the file";
        let Some(field) = root.field("environment") else {
            let message = "no [environment.NAME] defined".to_owned();
            self.report(
                None,
                ConfigErrorKind::MissingKey,
                message,
                Some(none_hint.to_owned()),
            );
            return Vec::new();
        };
        let Some((table, at)) = as_table(field.item) else {
            let hint = "write one [environment.NAME] table per environment, e.g. \
                        [environment.prod], in promotion order";
            self.wrong_type(field, &root.place, "a table", Some(hint.to_owned()));
            return Vec::new();
        };
        let parent = Table {
            table,
            at: at.or(field.key_at),
            place: "[environment]".to_owned(),
        };
        if table.is_empty() {
            let message = "no [environment.NAME] defined".to_owned();
            let hint = Some(none_hint.to_owned());
            self.report(parent.at, ConfigErrorKind::MissingKey, message, hint);
            return Vec::new();
        }
        let mut environments = Vec::new();
        for (name, _) in table.iter() {
            let Some(field) = parent.field(name) else {
                continue;
            };
            let Some((env_table, env_at)) = as_table(field.item) else {
                let hint = format!(
                    "environments are tables: [environment.{name}]; did you mean to put `{name}` \
                     inside one?"
                );
                self.wrong_type(field, &parent.place, "a table", Some(hint));
                continue;
            };
            let table = Table {
                table: env_table,
                at: env_at.or(field.key_at),
                place: format!("[environment.{name}]"),
            };
            self.check_name_at(field.key_at, name, "[environment]", name);
            let environment = self.environment(name, &table);
            self.listen(&environment, &table, services, listeners);
            environments.push(environment);
        }
        environments
    }

    fn environment(&mut self, name: &str, table: &Table<'_>) -> EnvironmentConfig {
        self.unknown_keys(table, ENVIRONMENT_KEYS);

        let mut target = "local".to_owned();
        // Whether `target` is what the file says (or the default), so a mistake in it does not
        // also make the command table look misplaced.
        let mut target_known = table.field("target").is_none();
        if let Some((text, field)) = self.string(table, "target") {
            if KNOWN_TARGETS.contains(&text) {
                target = text.to_owned();
                target_known = true;
            } else {
                let hint = match suggest::closest(text, KNOWN_TARGETS.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("known targets: {}", KNOWN_TARGETS.join(", ")),
                };
                let problem = Problem {
                    message: format!("unknown target `{text}`"),
                    hint: Some(hint),
                };
                self.invalid(field.at, "target", &table.place, problem);
            }
        }

        let mut regions: Vec<String> = Vec::new();
        for (region, at) in self.strings(table, "regions").unwrap_or_default() {
            if !self.check_name_at(at, "regions", &table.place, region) {
                continue;
            }
            if regions.iter().any(|seen| seen == region) {
                let message = format!("`regions` in {}: `{region}` is listed twice", table.place);
                let hint = format!("each region is deployed once; remove the second `{region}`");
                self.report(at, ConfigErrorKind::Duplicate, message, Some(hint));
                continue;
            }
            regions.push(region.to_owned());
        }

        let protected = self.boolean(table, "protected").unwrap_or(false);
        let mut policy = if protected {
            Policy::protected()
        } else {
            Policy::default()
        };

        if let Some(approvals) = self.approvals(table, policy.approvals.clone()) {
            policy.approvals = approvals;
        }
        self.go_no_go(table, &mut policy);
        for (text, at) in self.strings(table, "windows").unwrap_or_default() {
            match values::window(text) {
                Ok(window) => policy.windows.push(window),
                Err(problem) => self.invalid(at, "windows", &table.place, problem),
            }
        }
        for (text, at) in self.strings(table, "freezes").unwrap_or_default() {
            match values::freeze(text) {
                Ok(freeze) => policy.freezes.push(freeze),
                Err(problem) => self.invalid(at, "freezes", &table.place, problem),
            }
        }
        self.schedule_keys(table, &mut policy);
        if let Some(canary) = self.canary(table) {
            policy.canary = canary;
        }
        if let Some(bake) = self.duration(table, "bake") {
            policy.bake = bake;
        }
        if let Some(confirm) = self.boolean(table, "confirm_scale_in") {
            policy.confirm_scale_in = confirm;
        }
        if let Some(post_verify) = self.post_verify(table) {
            policy.post_verify = post_verify;
        }
        policy.checks = self.checks(table);
        policy.analysis = self.analysis(table, &target);
        self.check_metric_source(table, &target, &policy);
        if let Some(limit) = self.positive_duration(table, "inconclusive_limit") {
            policy.inconclusive_limit = limit;
        }
        if let Some(interval) = self.positive_duration(table, "analysis_interval") {
            policy.analysis_interval = interval;
        }
        if let Some(timeout) = self.positive_duration(table, "launch_timeout") {
            policy.launch_timeout = timeout;
        }

        self.provenance_requirement(table, &mut policy);

        let command = self.command_target(name, table, &target, target_known);

        EnvironmentConfig {
            name: name.to_owned(),
            target,
            regions,
            policy,
            command,
        }
    }

    /// `listen = { idp = "127.0.0.1:8080" }`, or `{ idp = { us-east = "…", us-west = "…" } }`
    /// with regions: where the proxy serves a service of a `local` environment.
    fn listen(
        &mut self,
        environment: &EnvironmentConfig,
        env: &Table<'_>,
        services: &[&str],
        out: &mut Vec<(ProxyListener, Option<usize>)>,
    ) {
        let Some(field) = env.field("listen") else {
            return;
        };
        let name = &environment.name;
        if environment.target != "local" {
            let problem = Problem {
                message: format!(
                    "only a `local` target has slipway's proxy, and this environment's target is \
                     `{}`",
                    environment.target
                ),
                hint: Some(format!(
                    "remove `listen` from [environment.{name}]; your own load balancer serves a \
                     `{}` target",
                    environment.target
                )),
            };
            self.invalid(field.key_at, "listen", &env.place, problem);
            return;
        }
        let example = format!(
            "write listen = {{ {} = \"127.0.0.1:8080\" }}",
            services.first().copied().unwrap_or("web")
        );
        let Some(table) = self.table(env, "listen", "a table", Some(example.clone())) else {
            return;
        };
        for (service, _) in table.table.iter() {
            let Some(entry) = table.field(service) else {
                continue;
            };
            if !services.contains(&service) {
                let hint = match suggest::closest(service, services.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("`listen` names services; known: {}", services.join(", ")),
                };
                let message = format!("unknown service `{service}` in {}", table.place);
                self.report(
                    entry.key_at,
                    ConfigErrorKind::UnknownKey,
                    message,
                    Some(hint),
                );
                continue;
            }
            let mut push = |checker: &mut Self,
                            region: Option<&str>,
                            field: Field<'_>,
                            place: &str| {
                let Some(address) = field.item.as_str() else {
                    checker.wrong_type(field, place, "an address like \"127.0.0.1:8080\"", None);
                    return;
                };
                match check_listen(address) {
                    Ok(()) => out.push((
                        ProxyListener {
                            service: service.to_owned(),
                            environment: name.clone(),
                            region: region.map(str::to_owned),
                            address: address.to_owned(),
                            configured: true,
                        },
                        field.at,
                    )),
                    Err(problem) => {
                        let problem = Problem {
                            message: problem.message,
                            hint: Some(format!("write {} = \"127.0.0.1:8080\"", field.key)),
                        };
                        checker.invalid(field.at, field.key, place, problem);
                    }
                }
            };
            match (as_table(entry.item), environment.regions.as_slice()) {
                (None, []) => push(self, None, entry, &table.place),
                (None, [only]) => push(self, Some(only), entry, &table.place),
                (None, regions) => {
                    let per_region: Vec<String> = regions
                        .iter()
                        .enumerate()
                        .map(|(i, r)| format!("{r} = \"127.0.0.1:{}\"", 8080 + i))
                        .collect();
                    let problem = Problem {
                        message: format!(
                            "[environment.{name}] has {} regions, so `{service}` needs an address \
                             for each",
                            regions.len()
                        ),
                        hint: Some(format!("write {service} = {{ {} }}", per_region.join(", "))),
                    };
                    self.invalid(entry.at, service, &table.place, problem);
                }
                (Some((regions_table, at)), regions) => {
                    let inner = Table {
                        table: regions_table,
                        at: at.or(entry.key_at),
                        place: table.nested_place(service),
                    };
                    if regions.is_empty() {
                        let problem = Problem {
                            message: format!(
                                "[environment.{name}] lists no regions, so `{service}` takes one \
                                 address"
                            ),
                            hint: Some(format!("write {service} = \"127.0.0.1:8080\"")),
                        };
                        self.invalid(entry.at, service, &table.place, problem);
                        continue;
                    }
                    self.unknown_keys(
                        &inner,
                        &regions.iter().map(String::as_str).collect::<Vec<_>>(),
                    );
                    for region in regions {
                        if let Some(field) = inner.field(region) {
                            push(self, Some(region), field, &inner.place);
                        }
                    }
                }
            }
        }
    }

    /// `[environment.NAME.command]`: required by a `command` target, refused by any other.
    fn command_target(
        &mut self,
        name: &str,
        env: &Table<'_>,
        target: &str,
        target_known: bool,
    ) -> Option<CommandTargetConfig> {
        let example = format!(
            "add a [environment.{name}.command] table, e.g.\n    \
             [environment.{name}.command]\n    \
             launch = \"./bin/launch {{environment}} {{service}} {{version}} {{count}}\"\n    \
             stop = \"./bin/stop {{environment}} {{service}} {{label}}\"\n    \
             observe = \"./bin/observe {{environment}} {{service}}\"\n  \
             (docs/targets.md describes every key)"
        );
        let Some(field) = env.field("command") else {
            if target == "command" {
                let message = format!(
                    "{} has target = \"command\" but no [environment.{name}.command] table",
                    env.place
                );
                self.report(env.at, ConfigErrorKind::MissingKey, message, Some(example));
            }
            return None;
        };
        if target != "command" && target_known {
            let default = if env.field("target").is_none() {
                " (the default)"
            } else {
                ""
            };
            let problem = Problem {
                message: format!(
                    "only a `command` target runs commands, and this environment's target is \
                     `{target}`{default}"
                ),
                hint: Some(format!(
                    "write target = \"command\" in [environment.{name}] to run these commands, \
                     or remove the command table"
                )),
            };
            self.invalid(field.key_at, "command", &env.place, problem);
        }
        let hint = "write a table: [environment.NAME.command] with launch, stop and observe";
        let table = self.table(env, "command", "a table", Some(hint.to_owned()))?;
        self.unknown_keys(&table, COMMAND_KEYS);

        let mut templates: Vec<Option<CommandTemplate>> = Vec::new();
        let mut missing = Vec::new();
        for operation in CommandOperation::ALL {
            let key = operation.key();
            if operation.is_required() && table.field(key).is_none() {
                missing.push(key);
            }
            templates.push(self.command_template(&table, operation));
        }
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|key| format!("`{key}`")).collect();
            let message = format!("missing {} in {}", keys.join(" and "), table.place);
            let hint = format!(
                "launch, stop and observe are required; e.g. {}",
                missing
                    .iter()
                    .map(|key| example_command(key))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.report(table.at, ConfigErrorKind::MissingKey, message, Some(hint));
        }
        let timeout = self
            .positive_duration(&table, "timeout")
            .unwrap_or(CommandTargetConfig::DEFAULT_TIMEOUT);
        let shell = self
            .text(&table, "shell")
            .unwrap_or_else(|| CommandTargetConfig::DEFAULT_SHELL.to_owned());
        let workdir = self.text(&table, "workdir");
        let config = self.config_delivery(&table);
        let used: Vec<(CommandOperation, Option<&CommandTemplate>)> = CommandOperation::ALL
            .into_iter()
            .zip(templates.iter().map(Option::as_ref))
            .collect();
        self.check_config_file_placeholder(&table, config, &used);

        let mut templates = templates.into_iter();
        let mut next = || templates.next().flatten();
        let (launch, traffic, stop, task, observe) = (next(), next(), next(), next(), next());
        Some(CommandTargetConfig {
            launch: launch?,
            traffic,
            stop: stop?,
            task,
            observe: observe?,
            timeout,
            shell,
            workdir,
            config,
        })
    }

    /// One command template: not empty, naming only placeholders its operation has.
    fn command_template(
        &mut self,
        table: &Table<'_>,
        operation: CommandOperation,
    ) -> Option<CommandTemplate> {
        let key = operation.key();
        let text = self.text(table, key)?;
        let field = table.field(key)?;
        let available = operation.placeholders();
        let known_list = || {
            available
                .iter()
                .map(|p| format!("{{{}}}", p.name()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let template = match CommandTemplate::parse(&text) {
            Ok(template) => template,
            Err(unknown) => {
                for name in &unknown.names {
                    let near = suggest::closest(name, available.iter().map(|p| p.name()));
                    let hint = match near {
                        Some(near) => format!(
                            "did you mean `{{{near}}}`? `{key}` knows {}; write {{{{ and }}}} for \
                             literal braces",
                            known_list()
                        ),
                        None => format!(
                            "`{key}` knows {}; write {{{{ and }}}} for literal braces",
                            known_list()
                        ),
                    };
                    let problem = Problem {
                        message: format!("unknown placeholder `{{{name}}}`"),
                        hint: Some(hint),
                    };
                    let at = self.placeholder_at(field, name);
                    self.invalid(at, key, &table.place, problem);
                }
                return None;
            }
        };
        let mut valid = true;
        let mut reported: Vec<Placeholder> = Vec::new();
        for placeholder in template.placeholders() {
            if available.contains(&placeholder) || reported.contains(&placeholder) {
                continue;
            }
            reported.push(placeholder);
            valid = false;
            let problem = Problem {
                message: format!(
                    "placeholder `{{{}}}` has no value in `{key}`",
                    placeholder.name()
                ),
                hint: Some(format!("`{key}` knows {}", known_list())),
            };
            let at = self.placeholder_at(field, placeholder.name());
            self.invalid(at, key, &table.place, problem);
        }
        valid.then_some(template)
    }

    /// Where `{name}` is written inside a string value, falling back to the value's start.
    /// Placeholders are plain ASCII, so they read the same in the source as in the value.
    fn placeholder_at(&self, field: Field<'_>, name: &str) -> Option<usize> {
        let span = field.item.span()?;
        let source = self.text.get(span.clone())?;
        let written = format!("{{{name}}}");
        let at = source
            .match_indices(&written)
            .map(|(index, _)| index)
            .find(|&index| !source[..index].ends_with('{'))
            .map(|index| span.start + index);
        at.or(field.at)
    }

    /// `approvals = { … }` or `approvals = false`. `Some(new value)` when the key is present
    /// and valid.
    fn approvals(
        &mut self,
        env: &Table<'_>,
        default: Option<ApprovalPolicy>,
    ) -> Option<Option<ApprovalPolicy>> {
        let field = env.field("approvals")?;
        if field.item.as_bool() == Some(false) {
            return Some(None);
        }
        let hint = "write approvals = { required = 1, expires = \"30m\" }, or approvals = false \
                    for none";
        let table = self.table(env, "approvals", "a table or false", Some(hint.to_owned()))?;
        self.unknown_keys(&table, APPROVAL_KEYS);
        let mut approvals = default.unwrap_or_default();
        if let Some(required) = self.count(&table, "required", 1) {
            approvals.required = required;
        }
        if let Some(expires) = self.positive_duration(&table, "expires") {
            approvals.expires = expires;
        }
        if let Some(roles) = self.strings(&table, "roles") {
            approvals.roles.clear();
            for (text, at) in roles {
                match text {
                    "deployer" => approvals.roles.push(Role::Deployer),
                    "approver" => approvals.roles.push(Role::Approver),
                    "admin" => approvals.roles.push(Role::Admin),
                    _ => {
                        let near = suggest::closest(text, ["deployer", "approver", "admin"]);
                        let problem = Problem {
                            message: format!("`{text}` is not a role that may approve"),
                            hint: Some(match near {
                                Some(near) => format!("did you mean `{near}`?"),
                                None => {
                                    "roles that may approve: deployer, approver, admin".to_owned()
                                }
                            }),
                        };
                        self.invalid(at, "roles", &table.place, problem);
                    }
                }
            }
            approvals.roles.sort();
            approvals.roles.dedup();
        }
        if let Some(not_authors) = self.boolean(&table, "not_authors") {
            approvals.not_authors = not_authors;
        }
        Some(Some(approvals))
    }

    /// `go_no_go = true|false`, or `go_no_go = { by_other = false }` to let the person who
    /// started the deploy acknowledge the go themselves.
    fn go_no_go(&mut self, env: &Table<'_>, policy: &mut Policy) {
        let Some(field) = env.field("go_no_go") else {
            return;
        };
        if let Some(on) = field.item.as_bool() {
            policy.go_no_go = on;
            return;
        }
        let hint = "write go_no_go = true, go_no_go = false, or go_no_go = { by_other = false }";
        let Some(table) = self.table(env, "go_no_go", "true, false or a table", Some(hint.into()))
        else {
            return;
        };
        self.unknown_keys(&table, GO_KEYS);
        policy.go_no_go = true;
        if let Some(by_other) = self.boolean(&table, "by_other") {
            policy.go_by_other = by_other;
        }
    }

    /// `canary = { … }` or `canary = false`.
    fn canary(&mut self, env: &Table<'_>) -> Option<Option<CanaryPolicy>> {
        let field = env.field("canary")?;
        if field.item.as_bool() == Some(false) {
            return Some(None);
        }
        let example = "canary = { share = \"10%\", duration = \"10m\" }";
        let hint = format!("write {example}, or canary = false for none");
        let table = self.table(env, "canary", "a table or false", Some(hint))?;
        self.unknown_keys(&table, CANARY_KEYS);

        let share = self.canary_share(&table);
        let header_field = table.field("header");
        let header = match self.string(&table, "header") {
            Some((text, field)) => match check_header(text) {
                Ok(()) => Some(text.to_owned()),
                Err(problem) => {
                    self.invalid(field.at, "header", &table.place, problem);
                    None
                }
            },
            None => None,
        };
        let share_field = table.field("share");
        if let (Some(share_field), Some(header_field)) = (share_field, header_field) {
            let problem = Problem {
                message: "a canary takes either `share` or `header`, not both".to_owned(),
                hint: Some(
                    "`share` sends a sticky part of live traffic to the canary; `header` sends \
                     only requests that carry the header"
                        .to_owned(),
                ),
            };
            let at = share_field.key_at.max(header_field.key_at);
            self.invalid(at, "canary", &env.place, problem);
        } else if share_field.is_none() && header_field.is_none() {
            self.missing(
                &table,
                "share",
                format!("write {example}, or header = \"X-Tenant: internal\""),
            );
        }

        let instances = self.count(&table, "instances", 1).unwrap_or(1);
        let duration = self
            .positive_duration(&table, "duration")
            .unwrap_or(Span::from_secs(10 * 60));
        Some(Some(CanaryPolicy {
            share_bp: share.unwrap_or(0),
            duration,
            instances,
            header,
        }))
    }

    fn canary_share(&mut self, canary: &Table<'_>) -> Option<u32> {
        let field = canary.field("share")?;
        let Some(text) = field.item.as_str() else {
            let hint = match field.item.as_integer() {
                Some(n) => format!("write share = \"{n}%\""),
                None => "write share = \"10%\"".to_owned(),
            };
            self.wrong_type(
                field,
                &canary.place,
                "a percentage like \"10%\"",
                Some(hint),
            );
            return None;
        };
        match values::percent_basis_points(text) {
            Ok(share) if share > 0 && share < 10_000 => Some(share),
            Ok(_) => {
                let problem = Problem {
                    message: "must be more than 0% and less than 100%".to_owned(),
                    hint: Some(
                        "a canary takes a part of the traffic, e.g. share = \"10%\"; to skip it, \
                         write canary = false"
                            .to_owned(),
                    ),
                };
                self.invalid(field.at, "share", &canary.place, problem);
                None
            }
            Err(problem) => {
                self.invalid(field.at, "share", &canary.place, problem);
                None
            }
        }
    }

    /// `post_verify = "1h"` or `post_verify = false`.
    fn post_verify(&mut self, env: &Table<'_>) -> Option<Option<Span>> {
        let field = env.field("post_verify")?;
        match field.item.as_bool() {
            Some(false) => Some(None),
            Some(true) => {
                let hint = "write how long after scale-in to check again, e.g. post_verify = \
                            \"1h\"";
                self.wrong_type(
                    field,
                    &env.place,
                    "a duration or false",
                    Some(hint.to_owned()),
                );
                None
            }
            None => self.duration_value(field, &env.place).map(Some),
        }
    }

    fn checks(&mut self, env: &Table<'_>) -> Vec<Check> {
        let Some(field) = env.field("checks") else {
            return Vec::new();
        };
        let place = &env.place;
        let tables = self.tables_in(field.item, |found| {
            format!(
                "`checks` in {place}: expected tables like {{ metric = \"error_rate\", \
                 max = \"1%\" }}, found {found} in it"
            )
        });
        let tables = tables.unwrap_or_else(|| {
            let hint = "write checks = [{ metric = \"error_rate\", max = \"1%\" }]";
            self.wrong_type(field, place, "an array of tables", Some(hint.to_owned()));
            Vec::new()
        });
        let mut checks: Vec<Check> = Vec::new();
        for (index, (table, at)) in tables.into_iter().enumerate() {
            let named = ["name", "metric", "probe", "command"]
                .iter()
                .find_map(|key| table.get(key).and_then(Item::as_str))
                .filter(|name| !name.trim().is_empty());
            let table = Table {
                table,
                at: at.or(field.at),
                place: match named {
                    Some(name) => format!("check `{name}` of {}", env.place),
                    None => format!("check #{} of {}", index + 1, env.place),
                },
            };
            if let Some(check) = self.check(&table) {
                if checks.iter().any(|c| c.name == check.name) {
                    let message =
                        format!("`checks` in {place}: two checks are named `{}`", check.name);
                    let hint = "give one of them its own name = \"…\"".to_owned();
                    self.report(table.at, ConfigErrorKind::Duplicate, message, Some(hint));
                    continue;
                }
                checks.push(check);
            }
        }
        checks
    }

    /// One check: exactly one of `metric`, `query`, `probe` or `command` says what it is.
    fn check(&mut self, table: &Table<'_>) -> Option<Check> {
        self.unknown_keys(table, CHECK_KEYS);
        let kinds: Vec<&str> = ["metric", "query", "probe", "command"]
            .into_iter()
            .filter(|key| table.field(key).is_some())
            .collect();
        let kind = match kinds.as_slice() {
            [one] => *one,
            [] => {
                let hint = "e.g. { metric = \"error_rate\", max = \"1%\" }, { probe = \"/login\", \
                            status = 200 }, { command = \"bin/check\" } or { name = \"jobs\", \
                            query = \"…\", max = 10 }";
                self.missing(table, "metric", hint.to_owned());
                return None;
            }
            [first, second, ..] => {
                let message = format!(
                    "{} has both `{first}` and `{second}`; a check is one of metric, query, probe \
                     or command",
                    table.place
                );
                let hint = "split it into two checks".to_owned();
                self.report(table.at, ConfigErrorKind::InvalidValue, message, Some(hint));
                return None;
            }
        };
        let limited = matches!(kind, "metric" | "query");
        if !limited {
            for key in ["min", "max"] {
                if let Some(field) = table.field(key) {
                    let problem = Problem {
                        message: format!("a {kind} check has no `{key}`"),
                        hint: Some(format!(
                            "a {kind} check passes or fails by itself; limits belong to metric \
                             and query checks"
                        )),
                    };
                    self.invalid(field.key_at, key, &table.place, problem);
                }
            }
        }
        if kind != "probe" {
            for key in ["status", "body"] {
                if let Some(field) = table.field(key) {
                    let problem = Problem {
                        message: format!("only a probe check has `{key}`"),
                        hint: Some("remove it, or make this a probe = \"/path\" check".to_owned()),
                    };
                    self.invalid(field.key_at, key, &table.place, problem);
                }
            }
        }
        if limited && let Some(field) = table.field("timeout") {
            let problem = Problem {
                message: format!("a {kind} check has no `timeout`"),
                hint: Some("queries use [prometheus] timeout".to_owned()),
            };
            self.invalid(field.key_at, "timeout", &table.place, problem);
        }
        let (min, max) = if limited {
            self.limits(table)?
        } else {
            (None, None)
        };
        let name = self.text(table, "name");
        match kind {
            "metric" => {
                let (text, field) = self.string(table, "metric")?;
                let metric = self.metric_name(text, field, &table.place)?;
                for (key, threshold) in [("min", min), ("max", max)] {
                    let Some(threshold) = threshold else { continue };
                    if !threshold_fits(metric, threshold) {
                        let at = table.field(key).and_then(|f| f.at);
                        let problem = Problem {
                            message: format!(
                                "`{}` is measured in {}, so `{key}` must be too",
                                metric.name(),
                                unit_words(metric)
                            ),
                            hint: Some(format!("e.g. {key} = {}", unit_example(metric))),
                        };
                        self.invalid(at, key, &table.place, problem);
                    }
                }
                Some(Check {
                    name: name.unwrap_or_else(|| metric.name().to_owned()),
                    kind: CheckKind::Metric { metric, min, max },
                })
            }
            "query" => {
                let query = self.text(table, "query")?;
                if !self.has_prometheus {
                    let at = table.field("query").and_then(|f| f.key_at);
                    let problem = Problem {
                        message: "a query check needs a [prometheus] table to ask".to_owned(),
                        hint: Some(PROMETHEUS_HINT.to_owned()),
                    };
                    self.invalid(at, "query", &table.place, problem);
                }
                if name.is_none() && table.field("name").is_none() {
                    self.missing(
                        table,
                        "name",
                        "name a query check, e.g. name = \"queue depth\"".to_owned(),
                    );
                }
                Some(Check {
                    name: name?,
                    kind: CheckKind::Query { query, min, max },
                })
            }
            "probe" => {
                let (path, field) = self.string(table, "probe")?;
                if let Err(problem) = check_path(path) {
                    self.invalid(field.at, "probe", &table.place, problem);
                    return None;
                }
                let status = match table.field("status") {
                    None => 200,
                    Some(field) => match field.item.as_integer() {
                        Some(code @ 100..=599) => code as u16,
                        _ => {
                            let hint = "write an HTTP status, e.g. status = 200".to_owned();
                            self.wrong_type(field, &table.place, "an HTTP status", Some(hint));
                            return None;
                        }
                    },
                };
                let body = self.string(table, "body").map(|(text, _)| text.to_owned());
                let timeout = self
                    .check_timeout(table)
                    .unwrap_or(CheckKind::DEFAULT_PROBE_TIMEOUT);
                Some(Check {
                    name: name.unwrap_or_else(|| format!("probe {path}")),
                    kind: CheckKind::Probe {
                        path: path.to_owned(),
                        status,
                        body,
                        timeout,
                    },
                })
            }
            _ => {
                let command = self.text(table, "command")?;
                let timeout = self
                    .check_timeout(table)
                    .unwrap_or(CheckKind::DEFAULT_COMMAND_TIMEOUT);
                Some(Check {
                    name: name.unwrap_or_else(|| format!("command {command}")),
                    kind: CheckKind::Command { command, timeout },
                })
            }
        }
    }

    /// The `timeout` of a probe, command or query: longer than zero and at most
    /// [`CheckKind::MAX_TIMEOUT`].
    fn check_timeout(&mut self, table: &Table<'_>) -> Option<Span> {
        let timeout = self.positive_duration(table, "timeout")?;
        if timeout > CheckKind::MAX_TIMEOUT {
            let at = table.field("timeout").and_then(|f| f.at);
            let problem = Problem {
                message: format!(
                    "{timeout} is longer than a check may take ({})",
                    CheckKind::MAX_TIMEOUT
                ),
                hint: Some(
                    "checks run every analysis interval and must answer quickly; a long job \
                     belongs in a command that reports a result it keeps (exit 75 until it has one)"
                        .to_owned(),
                ),
            };
            self.invalid(at, "timeout", &table.place, problem);
            return None;
        }
        Some(timeout)
    }

    /// A metric's name, with a suggestion when it is misspelt.
    fn metric_name(&mut self, text: &str, field: Field<'_>, place: &str) -> Option<Metric> {
        if let Some(metric) = Metric::from_name(text) {
            return Some(metric);
        }
        if text.trim().is_empty() {
            let problem = Problem {
                message: "must not be empty".to_owned(),
                hint: None,
            };
            self.invalid(field.at, field.key, place, problem);
            return None;
        }
        let names = Metric::ALL.map(Metric::name);
        let hint = match suggest::closest(text, names.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!(
                "known metrics: {}; for anything else write a query check",
                names.join(", ")
            ),
        };
        let problem = Problem {
            message: format!("unknown metric `{text}`"),
            hint: Some(hint),
        };
        self.invalid(field.at, field.key, place, problem);
        None
    }

    /// `min` and `max` of a metric or query check: at least one, in one unit, in order.
    fn limits(&mut self, table: &Table<'_>) -> Option<(Option<Threshold>, Option<Threshold>)> {
        let min = self.threshold(table, "min");
        let max = self.threshold(table, "max");
        if table.field("min").is_none() && table.field("max").is_none() {
            let message = format!("{} needs `max` or `min`", table.place);
            let hint = "e.g. { metric = \"error_rate\", max = \"1%\" } fails the check above 1%";
            self.report(
                table.at,
                ConfigErrorKind::MissingKey,
                message,
                Some(hint.to_owned()),
            );
            return None;
        }
        if let (Some(low), Some(high)) = (min, max) {
            let ordered = match (low, high) {
                (Threshold::Ratio(low), Threshold::Ratio(high))
                | (Threshold::Millis(low), Threshold::Millis(high))
                | (Threshold::Number(low), Threshold::Number(high)) => low <= high,
                _ => {
                    let at = table.field("max").and_then(|field| field.at);
                    let problem = Problem {
                        message: "`min` and `max` use different units".to_owned(),
                        hint: Some(
                            "write both as percentages, both as durations or both as numbers"
                                .to_owned(),
                        ),
                    };
                    self.invalid(at, "max", &table.place, problem);
                    true
                }
            };
            if !ordered {
                let at = table.field("max").and_then(|field| field.at);
                let problem = Problem {
                    message: "is below `min`, so the check can never pass".to_owned(),
                    hint: Some("swap `min` and `max`".to_owned()),
                };
                self.invalid(at, "max", &table.place, problem);
            }
        }
        Some((min, max))
    }

    /// A number in `range`, written as an integer or a float (or, with `percent`, as "95%").
    fn fraction(
        &mut self,
        table: &Table<'_>,
        key: &str,
        range: std::ops::RangeInclusive<f64>,
        percent: bool,
    ) -> Option<f64> {
        let field = table.field(key)?;
        let value = match field.item {
            Item::Value(Value::Integer(v)) => Some(*v.value() as f64),
            Item::Value(Value::Float(v)) => Some(*v.value()),
            Item::Value(Value::String(text)) if percent => match values::threshold(text.value()) {
                Ok(Threshold::Ratio(ratio)) => Some(ratio),
                _ => None,
            },
            _ => None,
        };
        let example = if percent {
            format!("{key} = \"95%\"")
        } else {
            format!("{key} = {}", range.end())
        };
        let Some(value) = value else {
            let expected = if percent { "a percentage" } else { "a number" };
            self.wrong_type(
                field,
                &table.place,
                expected,
                Some(format!("e.g. {example}")),
            );
            return None;
        };
        if !range.contains(&value) {
            let shown = |v: f64| {
                if percent {
                    format!("{}%", v * 100.0)
                } else {
                    v.to_string()
                }
            };
            let problem = Problem {
                message: format!(
                    "must be between {} and {}",
                    shown(*range.start()),
                    shown(*range.end())
                ),
                hint: Some(format!("e.g. {example}")),
            };
            self.invalid(field.at, key, &table.place, problem);
            return None;
        }
        Some(value)
    }

    /// `analysis = { … }`: the metric source, window and step, and the canary comparison.
    fn analysis(&mut self, env: &Table<'_>, target: &str) -> Analysis {
        let mut analysis = Analysis::defaults_for(target);
        let hint = "write analysis = { window = \"5m\", compare = [{ metric = \"latency_p99\", \
                    allowed_increase = \"20%\" }] }";
        let Some(table) = self.table(env, "analysis", "a table", Some(hint.to_owned())) else {
            return analysis;
        };
        self.unknown_keys(&table, ANALYSIS_KEYS);
        if let Some((text, field)) = self.string(&table, "source") {
            match text {
                "proxy" => analysis.source = MetricSourceKind::Proxy,
                "prometheus" => analysis.source = MetricSourceKind::Prometheus,
                other => {
                    let problem = Problem {
                        message: format!("unknown metric source `{other}`"),
                        hint: Some(
                            "write source = \"proxy\" (slipway's proxy, local targets) or \
                             source = \"prometheus\""
                                .to_owned(),
                        ),
                    };
                    self.invalid(field.at, "source", &table.place, problem);
                }
            }
        }
        if analysis.source == MetricSourceKind::Proxy
            && target != "local"
            && let Some(field) = table.field("source")
        {
            let problem = Problem {
                message: format!(
                    "slipway's proxy serves only `local` targets, and this one is `{target}`"
                ),
                hint: Some("write source = \"prometheus\" and a [prometheus] table".to_owned()),
            };
            self.invalid(field.at, "source", &table.place, problem);
        }
        if let Some(window) = self.positive_duration(&table, "window") {
            analysis.window = window;
        }
        if let Some(step) = self.positive_duration(&table, "step") {
            analysis.step = step;
        }
        if analysis.step > analysis.window {
            let at = table
                .field("step")
                .or(table.field("window"))
                .and_then(|f| f.at);
            let problem = Problem {
                message: format!(
                    "step {} is longer than the window {}, so no comparison could ever have \
                     enough samples",
                    analysis.step, analysis.window
                ),
                hint: Some(
                    "a window holds many steps, e.g. window = \"5m\", step = \"10s\"".to_owned(),
                ),
            };
            self.invalid(at, "step", &table.place, problem);
        }
        if let Some(min) = self.count(&table, "min_requests", 1) {
            analysis.min_requests = u64::from(min);
        }
        if let Some(min) = self.count(&table, "min_samples", 3) {
            analysis.min_samples = min;
        }
        if let Some(confidence) = self.fraction(&table, "confidence", 0.5..=0.9999, true) {
            analysis.confidence = confidence;
        }
        if let Some(score) = self.fraction(&table, "pass_score", 0.0..=100.0, false) {
            analysis.pass_score = score;
        }
        if let Some(score) = self.fraction(&table, "marginal_score", 0.0..=100.0, false) {
            analysis.marginal_score = score;
        }
        if analysis.marginal_score > analysis.pass_score {
            let at = table.field("marginal_score").and_then(|f| f.at);
            let problem = Problem {
                message: format!(
                    "is above pass_score ({}), so a marginal score could never happen",
                    analysis.pass_score
                ),
                hint: Some("e.g. pass_score = 95, marginal_score = 75".to_owned()),
            };
            self.invalid(at, "marginal_score", &table.place, problem);
        }
        if let Some(field) = table.field("compare") {
            let place = table.place.clone();
            let tables = self.tables_in(field.item, |found| {
                format!(
                    "`compare` in {place}: expected tables like {{ metric = \"latency_p99\", \
                     allowed_increase = \"20%\" }}, found {found} in it"
                )
            });
            let tables = tables.unwrap_or_else(|| {
                let hint =
                    "write compare = [{ metric = \"latency_p99\", allowed_increase = \"20%\" }]";
                self.wrong_type(field, &place, "an array of tables", Some(hint.to_owned()));
                Vec::new()
            });
            for (index, (inner, at)) in tables.into_iter().enumerate() {
                let inner = Table {
                    table: inner,
                    at: at.or(field.at),
                    place: format!("comparison #{} of {}", index + 1, table.place),
                };
                self.unknown_keys(&inner, COMPARE_KEYS);
                let metric = match self.string(&inner, "metric") {
                    Some((text, field)) => self.metric_name(text, field, &inner.place),
                    None => {
                        if inner.field("metric").is_none() {
                            let hint = "e.g. metric = \"latency_p99\"".to_owned();
                            self.missing(&inner, "metric", hint);
                        }
                        None
                    }
                };
                let allowed = self
                    .fraction(&inner, "allowed_increase", 0.0..=100.0, true)
                    .unwrap_or(0.0);
                if metric == Some(Metric::RequestRate) {
                    let at = inner.field("metric").and_then(|f| f.at);
                    let problem = Problem {
                        message: "request_rate cannot be compared: a canary gets a share of the \
                                  traffic, so it always has fewer requests than the baseline"
                            .to_owned(),
                        hint: Some(
                            "watch it with a check instead: { metric = \"request_rate\", min = 1 }"
                                .to_owned(),
                        ),
                    };
                    self.invalid(at, "metric", &inner.place, problem);
                    continue;
                }
                if let Some(metric) = metric {
                    if analysis.compare.iter().any(|c| c.metric == metric) {
                        let message = format!(
                            "`compare` in {}: `{}` is compared twice",
                            table.place,
                            metric.name()
                        );
                        let hint = "keep one of them".to_owned();
                        self.report(inner.at, ConfigErrorKind::Duplicate, message, Some(hint));
                        continue;
                    }
                    analysis.compare.push(Comparison {
                        metric,
                        allowed_increase: allowed,
                    });
                }
            }
        }
        analysis
    }

    /// `[prometheus]`.
    fn prometheus(&mut self, root: &Table<'_>) -> Option<PrometheusConfig> {
        let hint = "write [prometheus] with url = \"http://127.0.0.1:9090\"";
        let mut table = self.table(root, "prometheus", "a table", Some(hint.to_owned()))?;
        table.place = "[prometheus]".to_owned();
        self.unknown_keys(&table, PROMETHEUS_KEYS);
        let url = self.url(&table, "url");
        if table.field("url").is_none() {
            self.missing(
                &table,
                "url",
                "e.g. url = \"http://127.0.0.1:9090\"".to_owned(),
            );
        }
        // Its address is shown with every check that could not reach it.
        let url = match url {
            Some(url) if has_credentials(&url) => {
                let at = table.field("url").and_then(|f| f.at);
                let problem = Problem {
                    message: "must not carry a user or password: it is shown in check results"
                        .to_owned(),
                    hint: Some(
                        "reach Prometheus without credentials from slipway's host, e.g. through \
                         a local proxy that adds them"
                            .to_owned(),
                    ),
                };
                self.invalid(at, "url", &table.place, problem);
                None
            }
            other => other,
        };
        let timeout = self
            .check_timeout(&table)
            .unwrap_or(PrometheusConfig::DEFAULT_TIMEOUT);
        let mut queries = BTreeMap::new();
        let hint = "write [prometheus.queries] with error_rate = \"…\"";
        if let Some(inner) = self.table(&table, "queries", "a table", Some(hint.to_owned())) {
            for (key, _) in inner.table.iter() {
                let Some(field) = inner.field(key) else {
                    continue;
                };
                let Some(metric) = self.metric_name(key, field, &inner.place) else {
                    continue;
                };
                if let Some(query) = self.text(&inner, key) {
                    queries.insert(metric, query);
                }
            }
        }
        Some(PrometheusConfig {
            url: url?,
            timeout,
            queries,
        })
    }

    /// `[provenance]`: the trusted CI keys, each with a unique name and a unique key.
    fn provenance(&mut self, root: &Table<'_>) -> ProvenanceConfig {
        let hint = "write [provenance] with keys = [{ name = \"ci\", public_key = \"ed25519:…\" }]";
        let Some(mut table) = self.table(root, "provenance", "a table", Some(hint.to_owned()))
        else {
            return ProvenanceConfig::default();
        };
        table.place = "[provenance]".to_owned();
        self.unknown_keys(&table, PROVENANCE_KEYS);
        let mut config = ProvenanceConfig::default();
        let Some(field) = table.field("keys") else {
            return config;
        };
        let key_hint = "write keys = [{ name = \"ci\", public_key = \"ed25519:…\" }]; \
                        `slipway artifact keygen` prints the entry of a new key";
        let tables = self.tables_in(field.item, |found| {
            format!("`keys` in [provenance]: expected tables like {{ name = \"ci\", public_key = \"ed25519:…\" }}, found {found} in it")
        });
        let Some(tables) = tables else {
            self.wrong_type(
                field,
                &table.place,
                "an array of tables",
                Some(key_hint.to_owned()),
            );
            return config;
        };
        self.has_trusted_keys = !tables.is_empty();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut keys: HashMap<String, String> = HashMap::new();
        for (index, (inner, at)) in tables.into_iter().enumerate() {
            let inner = Table {
                table: inner,
                at: at.or(field.at),
                place: format!("key #{} of [provenance]", index + 1),
            };
            self.unknown_keys(&inner, TRUSTED_KEY_KEYS);
            let name = match self.string(&inner, "name") {
                Some((name, name_field)) => {
                    if !self.check_name_at(name_field.at, "name", &inner.place, name) {
                        None
                    } else if let Some(first) = names.get(name) {
                        let (line, _) = line_and_column(self.text, *first);
                        let message = format!("trusted key `{name}` is defined twice");
                        let hint = format!("the first is on line {line}; key names must be unique");
                        self.report(
                            name_field.at,
                            ConfigErrorKind::Duplicate,
                            message,
                            Some(hint),
                        );
                        None
                    } else {
                        names.insert(name.to_owned(), name_field.at.unwrap_or(0));
                        Some(name.to_owned())
                    }
                }
                None => {
                    if inner.field("name").is_none() {
                        self.missing(&inner, "name", "e.g. name = \"ci\"".to_owned());
                    }
                    None
                }
            };
            let public_key = match self.string(&inner, "public_key") {
                Some((text, key_field)) => match PublicKey::parse(text) {
                    Ok(key) => Some((key, key_field)),
                    Err(error) => {
                        let problem = Problem {
                            message: error.to_string(),
                            hint: Some(error.hint()),
                        };
                        self.invalid(key_field.at, "public_key", &inner.place, problem);
                        None
                    }
                },
                None => {
                    if inner.field("public_key").is_none() {
                        let hint = "e.g. public_key = \"ed25519:…\", as `slipway artifact keygen` \
                                    prints it";
                        self.missing(&inner, "public_key", hint.to_owned());
                    }
                    None
                }
            };
            let (Some(name), Some((public_key, key_field))) = (name, public_key) else {
                continue;
            };
            if let Some(first) = keys.get(&public_key.key_id()) {
                let message = format!(
                    "`public_key` in {}: the same key is already trusted as `{first}`",
                    inner.place
                );
                let hint = "list each key once, under one name".to_owned();
                self.report(
                    key_field.at,
                    ConfigErrorKind::Duplicate,
                    message,
                    Some(hint),
                );
                continue;
            }
            keys.insert(public_key.key_id(), name.clone());
            config.keys.push(TrustedKey { name, public_key });
        }
        config
    }

    /// `provenance = "required" | "off"` of an environment (required by default when it is
    /// protected); requiring it without a trusted key is a mistake reported here, so a
    /// protected environment never silently accepts unsigned artifacts.
    fn provenance_requirement(&mut self, table: &Table<'_>, policy: &mut Policy) {
        let field = table.field("provenance");
        if let Some(field) = field.filter(|f| f.item.as_bool().is_some()) {
            let hint = "write provenance = \"required\" or provenance = \"off\"";
            self.wrong_type(field, &table.place, "a string", Some(hint.to_owned()));
            return;
        }
        if let Some((text, field)) = self.string(table, "provenance") {
            match text {
                "required" => policy.provenance = ProvenanceRequirement::Required,
                "off" => policy.provenance = ProvenanceRequirement::Off,
                other => {
                    let problem = Problem {
                        message: format!("`{other}` is neither \"required\" nor \"off\""),
                        hint: Some(
                            "write provenance = \"required\" or provenance = \"off\"".to_owned(),
                        ),
                    };
                    self.invalid(field.at, "provenance", &table.place, problem);
                    return;
                }
            }
        } else if field.is_some() {
            return;
        }
        if policy.provenance != ProvenanceRequirement::Required || self.has_trusted_keys {
            return;
        }
        let (why, at) = match field {
            Some(field) => ("it says provenance = \"required\"", field.key_at),
            None => (
                "it is protected, which requires provenance unless it says provenance = \"off\"",
                table.field("protected").and_then(|f| f.key_at),
            ),
        };
        let message = format!(
            "{} needs a CI key to check artifacts against, but [provenance] trusts none: {why}",
            table.place
        );
        let hint = format!(
            "add [provenance] with keys = [{{ name = \"ci\", public_key = \"ed25519:…\" }}] \
             (`slipway artifact keygen --out ci.key` prints the entry), or write provenance = \"off\" \
             in {} to deploy unsigned artifacts there",
            table.place
        );
        self.report(
            at.or(table.at),
            ConfigErrorKind::MissingKey,
            message,
            Some(hint),
        );
    }

    /// `[markers]`.
    fn markers(&mut self, root: &Table<'_>) -> Markers {
        let hint = "write [markers] with webhooks = [\"http://…\"] or a [markers.grafana] table";
        let Some(mut table) = self.table(root, "markers", "a table", Some(hint.to_owned())) else {
            return Markers::default();
        };
        table.place = "[markers]".to_owned();
        self.unknown_keys(&table, MARKERS_KEYS);
        let mut markers = Markers::default();
        for (text, at) in self.strings(&table, "webhooks").unwrap_or_default() {
            match check_url(text) {
                Ok(()) => markers.webhooks.push(text.to_owned()),
                Err(problem) => self.invalid(at, "webhooks", &table.place, problem),
            }
        }
        let hint =
            "write grafana = { url = \"http://grafana:3000\", token_env = \"GRAFANA_TOKEN\" }";
        if let Some(grafana) = self.table(&table, "grafana", "a table", Some(hint.to_owned())) {
            self.unknown_keys(&grafana, GRAFANA_KEYS);
            if grafana.field("url").is_none() {
                self.missing(
                    &grafana,
                    "url",
                    "e.g. url = \"http://127.0.0.1:3000\"".to_owned(),
                );
            }
            let url = self.url(&grafana, "url");
            let token_env = self.text(&grafana, "token_env");
            let tags = self
                .strings(&grafana, "tags")
                .unwrap_or_default()
                .into_iter()
                .map(|(tag, _)| tag.to_owned())
                .collect();
            if let Some(url) = url {
                markers.grafana = Some(GrafanaMarkers {
                    url,
                    token_env,
                    tags,
                });
            }
        }
        markers
    }

    /// Named metrics read from Prometheus (the default away from a `local` target) need a
    /// `[prometheus]` table.
    fn check_metric_source(&mut self, env: &Table<'_>, target: &str, policy: &Policy) {
        let reads = policy
            .checks
            .iter()
            .any(|c| matches!(c.kind, CheckKind::Metric { .. }))
            || !policy.analysis.compare.is_empty();
        if !reads || self.has_prometheus || policy.analysis.source != MetricSourceKind::Prometheus {
            return;
        }
        let field = env.field("checks").or(env.field("analysis"));
        let why = if target == "local" {
            "its analysis reads metrics from Prometheus".to_owned()
        } else {
            format!("its metrics come from Prometheus, as a `{target}` target has no slipway proxy")
        };
        let message = format!("{} needs a [prometheus] table: {why}", env.place);
        let at = field.and_then(|f| f.key_at).or(env.at);
        self.report(
            at,
            ConfigErrorKind::MissingKey,
            message,
            Some(PROMETHEUS_HINT.to_owned()),
        );
    }

    /// An `http://` or `https://` URL.
    fn url(&mut self, table: &Table<'_>, key: &str) -> Option<String> {
        let (text, field) = self.string(table, key)?;
        match check_url(text) {
            Ok(()) => Some(text.trim_end_matches('/').to_owned()),
            Err(problem) => {
                self.invalid(field.at, key, &table.place, problem);
                None
            }
        }
    }

    fn threshold(&mut self, table: &Table<'_>, key: &str) -> Option<Threshold> {
        let field = table.field(key)?;
        match field.item {
            Item::Value(Value::Integer(value)) => {
                // Thresholds are compared as f64; integers this large do not occur.
                Some(Threshold::Number(*value.value() as f64))
            }
            Item::Value(Value::Float(value)) => Some(Threshold::Number(*value.value())),
            Item::Value(Value::String(text)) => match values::threshold(text.value()) {
                Ok(threshold) => Some(threshold),
                Err(problem) => {
                    self.invalid(field.at, key, &table.place, problem);
                    None
                }
            },
            _ => {
                let hint = format!("e.g. {key} = \"1%\", {key} = \"500ms\" or {key} = 0.5");
                self.wrong_type(
                    field,
                    &table.place,
                    "a percentage, a duration or a number",
                    Some(hint),
                );
                None
            }
        }
    }
}

/// An example line for a command key, for hints.
/// `time_zone`, `freeze_calendars` and `staffing` of an environment (`docs/schedule.md`).
impl Checker<'_> {
    fn schedule_keys(&mut self, env: &Table<'_>, policy: &mut Policy) {
        policy.time_zone = policy
            .windows
            .first()
            .map_or_else(|| "UTC".to_owned(), |w| w.time_zone.clone());
        if let Some((text, field)) = self.string(env, "time_zone") {
            match values::time_zone(text) {
                Ok(zone) => policy.time_zone = zone,
                Err(problem) => self.invalid(field.at, "time_zone", &env.place, problem),
            }
        }
        for (path, at) in self.strings(env, "freeze_calendars").unwrap_or_default() {
            if let Some(file) = self.calendar_file(path, at, "freeze_calendars", &env.place) {
                policy.freeze_calendars.push(file);
            }
        }
        let example = "staffing = { calendar = \"absences.ics\", max_out = 2 }";
        let Some(table) = self.table(env, "staffing", "a table", Some(format!("write {example}")))
        else {
            return;
        };
        self.unknown_keys(&table, STAFFING_KEYS);
        let calendar = match self.string(&table, "calendar") {
            Some((path, field)) => self.calendar_file(path, field.at, "calendar", &table.place),
            None => {
                if table.field("calendar").is_none() {
                    self.missing(&table, "calendar", format!("write {example}"));
                }
                None
            }
        };
        let max_out = self.count(&table, "max_out", 0);
        if max_out.is_none() && table.field("max_out").is_none() {
            self.missing(
                &table,
                "max_out",
                "say how many people may be out at once, e.g. max_out = 2".to_owned(),
            );
        }
        let team = self.count(&table, "team", 1);
        if let (Some(team), Some(max_out)) = (team, max_out)
            && max_out >= team
        {
            let problem = Problem {
                message: format!(
                    "max_out = {max_out} is not less than team = {team}, so the rule never \
                     holds a deploy"
                ),
                hint: Some(format!("lower max_out below {team}")),
            };
            let at = table.field("max_out").and_then(|f| f.at);
            self.invalid(at, "max_out", &table.place, problem);
        }
        if let (Some(calendar), Some(max_out)) = (calendar, max_out) {
            policy.staffing = Some(Staffing {
                calendar,
                max_out,
                team,
            });
        }
    }

    /// A calendar path, with where it is written.
    fn calendar_file(
        &mut self,
        path: &str,
        at: Option<usize>,
        key: &str,
        place: &str,
    ) -> Option<CalendarFile> {
        if path.trim().is_empty() {
            let problem = Problem {
                message: "the calendar path is empty".to_owned(),
                hint: Some("name an .ics file, e.g. \"holidays.ics\"".to_owned()),
            };
            self.invalid(at, key, place, problem);
            return None;
        }
        let (line, column) = line_and_column(self.text, at.unwrap_or(0));
        Some(CalendarFile {
            path: path.to_owned(),
            line,
            column,
        })
    }
}

fn example_command(key: &str) -> String {
    match key {
        "launch" => {
            "launch = \"./bin/launch {environment} {service} {version} {count}\"".to_owned()
        }
        "stop" => "stop = \"./bin/stop {environment} {service} {label}\"".to_owned(),
        "observe" => "observe = \"./bin/observe {environment} {service}\"".to_owned(),
        other => format!("{other} = \"./bin/{other}\""),
    }
}

/// Whether a threshold is written in the unit `metric` is measured in.
fn threshold_fits(metric: Metric, threshold: Threshold) -> bool {
    matches!(
        (metric.unit(), threshold),
        (Unit::Ratio, Threshold::Ratio(_))
            | (Unit::Millis, Threshold::Millis(_))
            | (Unit::PerSecond | Unit::Number, Threshold::Number(_))
    )
}

fn unit_words(metric: Metric) -> &'static str {
    match metric.unit() {
        Unit::Ratio => "percent",
        Unit::Millis => "time",
        Unit::PerSecond => "requests per second",
        Unit::Number => "plain numbers",
    }
}

fn unit_example(metric: Metric) -> &'static str {
    match metric.unit() {
        Unit::Ratio => "\"1%\"",
        Unit::Millis => "\"500ms\"",
        Unit::PerSecond | Unit::Number => "5",
    }
}

/// Whether an http(s) URL names a user (and maybe a password) before its host.
fn has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// An absolute `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), Problem> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(Problem {
            message: format!("\"{url}\" is not an http:// or https:// URL"),
            hint: Some("write the full address, e.g. \"http://127.0.0.1:9090\"".to_owned()),
        }),
    }
}

/// `HOST:PORT`, where HOST may be a name, an IPv4 address or a bracketed IPv6 address.
fn check_listen(listen: &str) -> Result<(), Problem> {
    let valid = listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        Err(Problem {
            message: format!("`{listen}` is not an address and port"),
            hint: Some("write listen = \"127.0.0.1:7700\"".to_owned()),
        })
    }
}

fn check_path(path: &str) -> Result<(), Problem> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(Problem {
            message: format!("`{path}` is not an HTTP path"),
            hint: Some(format!("start it with a slash: \"/{path}\"")),
        })
    }
}

/// `Name: value`, as an HTTP header line.
fn check_header(header: &str) -> Result<(), Problem> {
    let valid = header.split_once(':').is_some_and(|(name, value)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !value.trim().is_empty()
    });
    if valid {
        Ok(())
    } else {
        Err(Problem {
            message: format!("`{header}` is not a header"),
            hint: Some(
                "write the header name and value, e.g. header = \"X-Tenant: internal\"".to_owned(),
            ),
        })
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
