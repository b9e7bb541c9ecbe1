//! `[[notify]]` and `[chat]` in the parser's schema: each destination with a kind, a URL, the
//! environments it hears about and, for signed webhooks, where its secret is; the chat signing
//! secret and the map of chat users to slipway users.

use std::collections::BTreeMap;

use toml_edit::Item;

use crate::config::notify::{ChatConfig, NotifyDestination, NotifyKind, SecretSource};
use crate::plan::ReleaseKind;

use super::super::suggest;
use super::super::values::Problem;
use super::{Checker, ConfigErrorKind, Table};

const NOTIFY_KEYS: &[&str] = &[
    "name",
    "kind",
    "url",
    "environments",
    "kinds",
    "secret_file",
    "secret_env",
];
const KIND_VALUES: &[&str] = &["slack", "webhook"];
const RELEASE_KINDS: &[(&str, ReleaseKind)] = &[
    ("full", ReleaseKind::Full),
    ("patch", ReleaseKind::Patch),
    ("off-cycle", ReleaseKind::OffCycle),
    ("config", ReleaseKind::Config),
];
const CHAT_KEYS: &[&str] = &["signing_secret_file", "signing_secret_env", "users"];

impl Checker<'_> {
    /// Every `[[notify]]` destination, in file order.
    pub(super) fn notify(
        &mut self,
        root: &Table<'_>,
        environments: &[&str],
    ) -> Vec<NotifyDestination> {
        let Some(field) = root.field("notify") else {
            return Vec::new();
        };
        let tables = self.tables_in(field.item, |found| {
            format!("`notify` at the top level: expected tables, found {found} in it")
        });
        let Some(tables) = tables else {
            let hint = "write [[notify]] (two brackets) once per destination, with kind = \
                        \"slack\" and url = \"https://hooks.slack.com/…\"";
            self.wrong_type(
                field,
                &root.place,
                "an array of tables",
                Some(hint.to_owned()),
            );
            return Vec::new();
        };
        let mut destinations: Vec<NotifyDestination> = Vec::new();
        for (index, (table, at)) in tables.into_iter().enumerate() {
            let table = Table {
                table,
                at: at.or(field.key_at),
                place: format!("[[notify]] #{}", index + 1),
            };
            let Some(destination) = self.destination(index, &table, environments) else {
                continue;
            };
            if destinations.iter().any(|d| d.name == destination.name) {
                let message = format!(
                    "{}: the name `{}` is already used by another [[notify]]",
                    table.place, destination.name
                );
                let hint = "give each destination its own name = \"…\"".to_owned();
                self.report(table.at, ConfigErrorKind::Duplicate, message, Some(hint));
                continue;
            }
            destinations.push(destination);
        }
        destinations
    }

    fn destination(
        &mut self,
        index: usize,
        table: &Table<'_>,
        environments: &[&str],
    ) -> Option<NotifyDestination> {
        self.unknown_keys(table, NOTIFY_KEYS);
        let kind = match table.field("kind") {
            None => {
                self.missing(
                    table,
                    "kind",
                    "write kind = \"slack\" or kind = \"webhook\"".to_owned(),
                );
                None
            }
            Some(_) => self
                .choice(table, "kind", KIND_VALUES)
                .map(|kind| match kind {
                    "slack" => NotifyKind::Slack,
                    _ => NotifyKind::Webhook,
                }),
        };
        if table.field("url").is_none() {
            let hint = "write url = \"https://hooks.slack.com/services/…\" (Slack) or the \
                        receiver's address";
            self.missing(table, "url", hint.to_owned());
        }
        let url = self.url(table, "url");
        let name = match self.string(table, "name") {
            Some((name, field)) => {
                if let Err(problem) = super::check_name(name) {
                    self.invalid(field.at, "name", &table.place, problem);
                }
                name.to_owned()
            }
            None => format!("{}-{}", kind.map_or("notify", NotifyKind::name), index + 1),
        };
        let routed = self.routed_environments(table, environments);
        let kinds = self.routed_kinds(table);
        let secret = self.secret_source(table, "secret_file", "secret_env");
        let kind = kind?;
        match (kind, &secret) {
            (NotifyKind::Webhook, None) => {
                let hint = "webhooks are signed: add secret_file = \"webhook.secret\" (relative \
                            to this file) or secret_env = \"SLIPWAY_WEBHOOK_SECRET\"";
                self.missing(table, "secret_file", hint.to_owned());
                return None;
            }
            (NotifyKind::Slack, Some(_)) => {
                let message = format!(
                    "{}: a Slack destination takes no secret; its URL is its credential",
                    table.place
                );
                let hint = "remove secret_file / secret_env, or use kind = \"webhook\" for a \
                            signed JSON webhook";
                self.report(
                    table.at,
                    ConfigErrorKind::InvalidValue,
                    message,
                    Some(hint.to_owned()),
                );
                return None;
            }
            _ => {}
        }
        Some(NotifyDestination {
            name,
            kind,
            url: url?,
            environments: routed,
            kinds,
            secret,
        })
    }

    /// `kinds = ["off-cycle"]`: release kinds; every kind when absent.
    fn routed_kinds(&mut self, table: &Table<'_>) -> Vec<ReleaseKind> {
        let mut kinds: Vec<ReleaseKind> = Vec::new();
        for (name, at) in self.strings(table, "kinds").unwrap_or_default() {
            match RELEASE_KINDS.iter().find(|(known, _)| *known == name) {
                Some((_, kind)) => {
                    if !kinds.contains(kind) {
                        kinds.push(*kind);
                    }
                }
                None => {
                    let names: Vec<&str> = RELEASE_KINDS.iter().map(|(n, _)| *n).collect();
                    let hint = match suggest::closest(name, names.iter().copied()) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("known: {}", names.join(", ")),
                    };
                    let message = format!("unknown release kind `{name}` in {}", table.place);
                    self.report(at, ConfigErrorKind::InvalidValue, message, Some(hint));
                }
            }
        }
        kinds
    }

    /// `environments = ["prod"]`: names that exist; every environment when absent.
    fn routed_environments(&mut self, table: &Table<'_>, known: &[&str]) -> Vec<String> {
        let mut routed: Vec<String> = Vec::new();
        for (name, at) in self.strings(table, "environments").unwrap_or_default() {
            if known.contains(&name) {
                if !routed.iter().any(|seen| seen == name) {
                    routed.push(name.to_owned());
                }
                continue;
            }
            let hint = match suggest::closest(name, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("known: {}", known.join(", ")),
            };
            let message = format!("unknown environment `{name}` in {}", table.place);
            self.report(at, ConfigErrorKind::InvalidValue, message, Some(hint));
        }
        routed
    }

    /// A secret named by a file key or an environment-variable key, never both.
    pub(super) fn secret_source(
        &mut self,
        table: &Table<'_>,
        file_key: &str,
        env_key: &str,
    ) -> Option<SecretSource> {
        let file = self.text(table, file_key);
        let env = match self.string(table, env_key) {
            Some((name, field)) => {
                let valid = !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if valid {
                    Some(name.to_owned())
                } else {
                    let problem = Problem {
                        message: format!("\"{name}\" is not an environment variable name"),
                        hint: Some(
                            "letters, digits and `_`, e.g. \"SLIPWAY_WEBHOOK_SECRET\"".to_owned(),
                        ),
                    };
                    self.invalid(field.at, env_key, &table.place, problem);
                    None
                }
            }
            None => None,
        };
        match (file, env) {
            (Some(_), Some(_)) => {
                let message = format!("{}: both `{file_key}` and `{env_key}` are set", table.place);
                let hint = "keep one of them".to_owned();
                self.report(table.at, ConfigErrorKind::InvalidValue, message, Some(hint));
                None
            }
            (Some(file), None) => Some(SecretSource::File(file)),
            (None, Some(env)) => Some(SecretSource::Env(env)),
            (None, None) => None,
        }
    }

    /// `[chat]`.
    pub(super) fn chat(&mut self, root: &Table<'_>) -> ChatConfig {
        let hint = "write [chat] with signing_secret_file = \"slack-signing.secret\"";
        let Some(mut table) = self.table(root, "chat", "a table", Some(hint.to_owned())) else {
            return ChatConfig::default();
        };
        table.place = "[chat]".to_owned();
        self.unknown_keys(&table, CHAT_KEYS);
        let signing_secret =
            self.secret_source(&table, "signing_secret_file", "signing_secret_env");
        if signing_secret.is_none() && table.field("signing_secret_file").is_none() {
            let hint = "add signing_secret_file = \"slack-signing.secret\" or signing_secret_env \
                        = \"SLACK_SIGNING_SECRET\" (the Slack app's Signing Secret)";
            self.missing(&table, "signing_secret_file", hint.to_owned());
        }
        let mut users = BTreeMap::new();
        let hint = "write [chat.users] with lines like U024BE7LH = \"alice\"";
        if let Some(mut map) = self.table(&table, "users", "a table", Some(hint.to_owned())) {
            map.place = "[chat.users]".to_owned();
            for (chat_user, item) in map.table.iter() {
                let field = map.field(chat_user);
                let at = field.and_then(|f| f.at);
                match item {
                    Item::Value(value) if value.as_str().is_some() => {
                        let name = value.as_str().unwrap_or_default();
                        match super::check_name(name) {
                            Ok(()) => {
                                users.insert(chat_user.to_owned(), name.to_owned());
                            }
                            Err(problem) => self.invalid(at, chat_user, &map.place, problem),
                        }
                    }
                    _ => {
                        if let Some(field) = field {
                            let hint = format!("write {chat_user} = \"alice\" (a slipway user)");
                            self.wrong_type(field, &map.place, "a slipway user name", Some(hint));
                        }
                    }
                }
            }
        }
        ChatConfig {
            signing_secret,
            users,
        }
    }
}
