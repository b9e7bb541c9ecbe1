//! Config versions as data: the settings and secrets of one service in one environment, how two
//! versions differ without showing a secret, the rules of `[service.config]` they must meet
//! (types, patterns, allowed values, values unique across services or environments), and env
//! files. Encryption and storage live elsewhere (`slipway-secrets`, `slipway-store`): here a
//! secret is a value with a flag, and everything that shows values shows a secret only as its
//! fingerprint, computed by the caller's keyed function.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigRules, KeyRule, Uniqueness, ValueKind};
use crate::time::Span;

/// A config version's values as stored: encrypted with a data key of its own, that key
/// wrapped by a master key. Only `slipway-secrets` makes and opens one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Which master key wrapped the data key (a short fingerprint of that key, not the key).
    pub key_id: String,
    /// The data key, encrypted under the master key (nonce first).
    pub wrapped_key: Vec<u8>,
    /// The nonce the values were encrypted with.
    pub nonce: Vec<u8>,
    /// The values, encrypted and authenticated with the data key.
    pub ciphertext: Vec<u8>,
}

/// One key's value in a config version.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret { "<secret>" } else { &self.value };
        f.debug_struct("Entry")
            .field("value", &value)
            .field("secret", &self.secret)
            .finish()
    }
}

/// The keys and values of a config version, sorted by key.
pub type Values = BTreeMap<String, Entry>;

/// Variable names the targets set themselves; a config version may not use them.
pub const RESERVED_KEYS: &[&str] = &["PORT"];
/// The prefix of the variables slipway sets; a config version may not use it.
pub const RESERVED_PREFIX: &str = "SLIPWAY_";
/// The longest value a key may hold (a config value is not a file store).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Checks that `key` can be an environment variable the targets pass: letters, digits and `_`,
/// not starting with a digit, not reserved. The error says what is wrong.
pub fn check_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let Some(first) = chars.next() else {
        return Err("a key cannot be empty".to_owned());
    };
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "`{key}` is not a valid key: use letters, digits and `_`, not starting with a digit"
        ));
    }
    if key.len() > 128 {
        return Err(format!("`{key}` is longer than 128 characters"));
    }
    if RESERVED_KEYS.contains(&key) || key.starts_with(RESERVED_PREFIX) {
        return Err(format!(
            "`{key}` is set by slipway itself (`PORT` and `SLIPWAY_*` are reserved)"
        ));
    }
    Ok(())
}

/// Checks a value's size and that it is one line-safe string (no NUL byte).
pub fn check_value(key: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the value of `{key}` is {} bytes; at most {MAX_VALUE_BYTES} are kept",
            value.len()
        ));
    }
    if value.contains('\0') {
        return Err(format!("the value of `{key}` contains a NUL byte"));
    }
    Ok(())
}

/// A value as people may see it: plain settings in full, secrets only as a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shown {
    Plain { value: String },
    Secret { fingerprint: String },
}

impl Shown {
    /// `entry` as shown, with `fingerprint(key, value)` for a secret.
    pub fn of(key: &str, entry: &Entry, fingerprint: &dyn Fn(&str, &str) -> String) -> Shown {
        if entry.secret {
            Shown::Secret {
                fingerprint: fingerprint(key, &entry.value),
            }
        } else {
            Shown::Plain {
                value: entry.value.clone(),
            }
        }
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Plain { value } => write!(f, "{value:?}"),
            Shown::Secret { fingerprint } => write!(f, "<secret {fingerprint}>"),
        }
    }
}

/// One key that differs between two versions; `before` or `after` is `None` where the key is
/// absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    pub before: Option<Shown>,
    pub after: Option<Shown>,
}

/// The keys that differ from `before` to `after`, sorted by key. A secret is compared by value
/// but shown only by fingerprint, so a reviewer sees that it changed, not what it is.
pub fn diff(
    before: &Values,
    after: &Values,
    fingerprint: &dyn Fn(&str, &str) -> String,
) -> Vec<Change> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| Change {
            key: key.clone(),
            before: before.get(key).map(|e| Shown::of(key, e, fingerprint)),
            after: after.get(key).map(|e| Shown::of(key, e, fingerprint)),
        })
        .collect()
}

/// Something a config version breaks: which key, what is wrong, how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub key: String,
    pub message: String,
    pub hint: String,
}

/// Whether `key` holds a secret: the rule says so, else the caller's flag, else a name that
/// looks like one (see [`looks_secret`]).
pub fn is_secret(rules: &ConfigRules, key: &str, flagged: bool) -> bool {
    match rules.keys.get(key).and_then(|rule: &KeyRule| rule.secret) {
        Some(secret) => secret,
        None => flagged || looks_secret(key),
    }
}

/// Name parts that usually mean a secret, anywhere in the key (compared in upper case).
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "PRIVATE",
    "CREDENTIAL",
    "API_KEY",
];
/// Name endings that usually mean a secret.
const SECRET_ENDINGS: &[&str] = &["_KEY", "_DSN"];

/// A name that usually holds a secret: it contains `SECRET`, `PASSWORD`, `PASSWD`, `TOKEN`,
/// `PRIVATE`, `CREDENTIAL` or `API_KEY`, or ends in `_KEY` or `_DSN` (case-insensitive).
pub fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| key.contains(word))
        || SECRET_ENDINGS.iter().any(|ending| key.ends_with(ending))
}

impl ValueKind {
    /// Its name as written in `type = "…"`.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Int => "int",
            ValueKind::Bool => "bool",
            ValueKind::Url => "url",
            ValueKind::Duration => "duration",
        }
    }

    /// Whether `value` is of this type: any string; an `i64`; `true` or `false`; a URL
    /// `scheme://host…` with a scheme and a host; a duration in slipway's syntax (`30s`, `5m`,
    /// `1h30m`). Surrounding spaces make none of them valid, since programs read values as
    /// they are.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            ValueKind::String => true,
            ValueKind::Int => value.parse::<i64>().is_ok(),
            ValueKind::Bool => matches!(value, "true" | "false"),
            ValueKind::Url => is_url(value),
            ValueKind::Duration => value.trim() == value && Span::parse(value).is_ok(),
        }
    }

    /// How to write a value of this type, for hints.
    pub fn hint(self) -> &'static str {
        match self {
            ValueKind::String => "any text",
            ValueKind::Int => "write a whole number, e.g. 42 or -1",
            ValueKind::Bool => "write true or false, in lower case",
            ValueKind::Url => {
                "write a URL with a scheme and a host, e.g. https://queue.example.org/events"
            }
            ValueKind::Duration => {
                "write a number and a unit (ms, s, m, h, d) without spaces, e.g. \"30s\" or \
                 \"1h30m\""
            }
        }
    }
}

/// `scheme://host…`: a scheme, `://`, and a host the `url` crate accepts; no spaces.
fn is_url(value: &str) -> bool {
    let Some((scheme, _)) = value.split_once("://") else {
        return false;
    };
    let scheme_valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_valid
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(value).is_ok_and(|url| url.host_str().is_some_and(|h| !h.is_empty()))
}

/// A `pattern` of `[service.config]` as it is matched: against the whole value.
pub fn whole_value_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!(r"\A(?:{pattern})\z"))
}

/// The longest plain value a finding quotes; longer ones are cut with `…`.
const QUOTED_CHARS: usize = 60;

/// How a finding names a value: `the value "x" of QUEUE`, or `the secret value of API_KEY`
/// without the value.
fn the_value_of(key: &str, value: &str, secret: bool) -> String {
    if secret {
        format!("the secret value of {key}")
    } else {
        format!("the value {} of {key}", quote_for_message(value))
    }
}

/// A plain value in a message: debug-quoted (so a newline shows as `\n`), cut when long.
fn quote_for_message(value: &str) -> String {
    if value.chars().count() > QUOTED_CHARS {
        let cut: String = value.chars().take(QUOTED_CHARS).collect();
        format!("{:?}…", cut)
    } else {
        format!("{value:?}")
    }
}

/// Checks `values` against the service's rules: required keys present, types, patterns and
/// allowed values. Findings never quote a secret's value.
///
/// Also reports keys that [`check_key`] refuses and values that [`check_value`] refuses, so a
/// version that passes is one the targets can deliver. A required key must be set and not
/// empty. Each problem is its own finding, sorted by key; a value is hidden when its entry is
/// secret or [`is_secret`] says so.
pub fn validate(rules: &ConfigRules, values: &Values) -> Vec<Finding> {
    let keys: std::collections::BTreeSet<&String> =
        rules.keys.keys().chain(values.keys()).collect();
    let mut findings = Vec::new();
    for key in keys {
        let rule = rules.keys.get(key);
        let Some(entry) = values.get(key) else {
            if rule.is_some_and(|rule| rule.required) {
                findings.push(Finding {
                    key: key.clone(),
                    message: format!("{key} is required but not set"),
                    hint: format!(
                        "set {key} in this config version: [service.config] marks it required"
                    ),
                });
            }
            continue;
        };
        if let Err(message) = check_key(key) {
            findings.push(Finding {
                key: key.clone(),
                message,
                hint: "rename the key: targets set PORT and SLIPWAY_* themselves, and a key is \
                       letters, digits and `_`"
                    .to_owned(),
            });
        }
        if let Err(message) = check_value(key, &entry.value) {
            findings.push(Finding {
                key: key.clone(),
                message,
                hint: format!(
                    "keep {key} to one value of at most {MAX_VALUE_BYTES} bytes without NUL; \
                     ship larger files with the artifact"
                ),
            });
        }
        let Some(rule) = rule else { continue };
        findings.extend(check_rule(
            key,
            rule,
            entry,
            entry.secret || is_secret(rules, key, entry.secret),
        ));
    }
    findings
}

/// The findings of one present value against its rule.
fn check_rule(key: &str, rule: &KeyRule, entry: &Entry, secret: bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    let value = entry.value.as_str();
    let mut finding = |message: String, hint: String| {
        findings.push(Finding {
            key: key.to_owned(),
            message,
            hint,
        });
    };
    if rule.required && value.is_empty() {
        finding(
            format!("{key} is required but empty"),
            format!("give {key} a value: [service.config] marks it required"),
        );
        // An empty value is reported once, as missing, not also as every rule it breaks.
        return findings;
    }
    if !rule.kind.accepts(value) {
        finding(
            format!(
                "{} is not {}",
                the_value_of(key, value, secret),
                kind_with_article(rule.kind)
            ),
            format!("{} (`type` of {key} in [service.config])", rule.kind.hint()),
        );
    }
    if let Some(pattern) = &rule.pattern {
        match whole_value_regex(pattern) {
            Ok(regex) if regex.is_match(value) => {}
            Ok(_) => finding(
                format!(
                    "{} does not match the pattern `{pattern}`",
                    the_value_of(key, value, secret)
                ),
                format!(
                    "the whole value must match `pattern` of {key} in [service.config], not \
                     just a part of it"
                ),
            ),
            Err(_) => finding(
                format!("the pattern `{pattern}` of {key} is not a regular expression"),
                format!("fix `pattern` of {key} in [service.config]"),
            ),
        }
    }
    if !rule.allowed.is_empty() && !rule.allowed.iter().any(|allowed| allowed == value) {
        let allowed: Vec<String> = rule.allowed.iter().map(|a| format!("{a:?}")).collect();
        finding(
            format!(
                "{} is not one of the allowed values",
                the_value_of(key, value, secret)
            ),
            format!("use one of {}", allowed.join(", ")),
        );
    }
    findings
}

/// `an int`, `a url`…
fn kind_with_article(kind: ValueKind) -> String {
    match kind {
        ValueKind::Int => "an int".to_owned(),
        other => format!("a {}", other.name()),
    }
}

/// One config version taking part in a uniqueness check.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    pub service: &'a str,
    pub environment: &'a str,
    pub rules: &'a ConfigRules,
    pub values: &'a Values,
}

/// The uniqueness group of a key: its rule's `group`, else its own name.
fn group_of<'r>(key: &'r str, rule: &'r KeyRule) -> &'r str {
    rule.group.as_deref().unwrap_or(key)
}

/// Checks `candidate`'s keys marked `unique` against `others` (the other services' and
/// environments' config versions): a finding per value another holder has in the same
/// uniqueness group, naming that service and environment (never the value when it is a secret).
///
/// A key's group is its rule's `group`, else its name; another holder's key takes part when
/// its own rule is `unique` in the same group. Where is decided by the candidate's rule:
/// `services` compares with other services in the candidate's environment, `environments`
/// with the candidate's service in other environments, `everywhere` with any other service
/// and environment. The candidate's own service and environment in `others` are skipped, and
/// so are empty values (an unset value is no clash). Findings come sorted by the candidate's
/// key, then the other service, environment and key.
pub fn check_unique(candidate: &Holder<'_>, others: &[Holder<'_>]) -> Vec<Finding> {
    let mut others: Vec<&Holder<'_>> = others
        .iter()
        .filter(|other| {
            (other.service, other.environment) != (candidate.service, candidate.environment)
        })
        .collect();
    others.sort_by_key(|other| (other.service, other.environment));
    let mut findings = Vec::new();
    for (key, entry) in candidate.values {
        let Some(rule) = candidate.rules.keys.get(key) else {
            continue;
        };
        let Some(uniqueness) = rule.unique else {
            continue;
        };
        if entry.value.is_empty() {
            continue;
        }
        let group = group_of(key, rule);
        for other in &others {
            let in_scope = match uniqueness {
                Uniqueness::Services => {
                    other.environment == candidate.environment && other.service != candidate.service
                }
                Uniqueness::Environments => {
                    other.service == candidate.service && other.environment != candidate.environment
                }
                Uniqueness::Everywhere => true,
            };
            if !in_scope {
                continue;
            }
            for (other_key, other_entry) in other.values {
                let Some(other_rule) = other.rules.keys.get(other_key) else {
                    continue;
                };
                if other_rule.unique.is_none()
                    || group_of(other_key, other_rule) != group
                    || other_entry.value != entry.value
                {
                    continue;
                }
                let secret = entry.secret
                    || other_entry.secret
                    || is_secret(candidate.rules, key, entry.secret)
                    || is_secret(other.rules, other_key, other_entry.secret);
                findings.push(clash(candidate, key, rule, other, other_key, secret));
            }
        }
    }
    findings
}

/// The finding of `key` of `candidate` holding the value `other_key` of `other` holds.
fn clash(
    candidate: &Holder<'_>,
    key: &str,
    rule: &KeyRule,
    other: &Holder<'_>,
    other_key: &str,
    secret: bool,
) -> Finding {
    let shown = if secret {
        String::new()
    } else {
        candidate
            .values
            .get(key)
            .map(|entry| format!(" ({})", quote_for_message(&entry.value)))
            .unwrap_or_default()
    };
    let what = match &rule.group {
        Some(group) => format!("values of group `{group}`"),
        None => key.to_owned(),
    };
    let across = match rule.unique {
        Some(Uniqueness::Environments) => "across environments",
        Some(Uniqueness::Everywhere) => "across services and environments",
        Some(Uniqueness::Services) | None => "across services",
    };
    let (service, environment) = (candidate.service, candidate.environment);
    let (other_service, other_environment) = (other.service, other.environment);
    Finding {
        key: key.to_owned(),
        message: format!(
            "{key} of {service} in {environment} holds the same value as {other_key} of \
             {other_service} in {other_environment}{shown}; {what} must be unique {across}"
        ),
        hint: format!(
            "set another value for {key} of {service} in {environment}, or change {other_key} \
             of {other_service} in {other_environment} if that one is wrong"
        ),
    }
}

/// A problem in an env file, with its 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for EnvFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses an env file: `KEY=value` lines, `export KEY=value`, `#` comments and blank lines,
/// values in single quotes (literal) or double quotes (`\n`, `\"`, `\\` escapes). Keys are
/// checked with [`check_key`]; a key given twice is an error.
///
/// In detail, as a shell reads what [`format_env_file`] writes: a quoted value may span lines;
/// in double quotes `\\`, `\"`, `\$` and `` \` `` stand for the character, `\n` for a newline,
/// a backslash before a line break joins the lines, and any other backslash is kept. An
/// unquoted value runs to the end of the line, less a ` # comment` and surrounding spaces;
/// after a closing quote only a comment may follow. CRLF line ends and a leading byte order
/// mark are accepted. Values are checked with [`check_value`].
/// Every mistake is returned, in line order; no message quotes a value (an env file holds
/// secrets) nor a malformed key.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, Vec<EnvFileError>> {
    // Editors on Windows may start the file with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cursor = Cursor {
        rest: text,
        line: 1,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    loop {
        cursor.skip_blanks();
        match cursor.peek() {
            None => break,
            Some('\n') => {
                cursor.bump();
                continue;
            }
            Some('#') => {
                cursor.skip_line();
                continue;
            }
            Some(_) => {}
        }
        let line = cursor.line;
        match assignment(&mut cursor) {
            Ok((key, value)) => {
                let mut problems = Vec::new();
                if let Some(first) = first_line.get(&key) {
                    problems.push(format!("{key} is set twice; the first is on line {first}"));
                } else if let Err(message) = check_value(&key, &value) {
                    problems.push(message);
                }
                if problems.is_empty() {
                    first_line.insert(key.clone(), line);
                    pairs.push((key, value));
                }
                errors.extend(
                    problems
                        .into_iter()
                        .map(|message| EnvFileError { line, message }),
                );
            }
            Err(error) => {
                errors.push(error);
                cursor.skip_line();
            }
        }
    }
    if errors.is_empty() {
        Ok(pairs)
    } else {
        errors.sort_by_key(|error| error.line);
        Err(errors)
    }
}

/// Where [`parse_env_file`] is in the text.
struct Cursor<'t> {
    rest: &'t str,
    /// The 1-based line of `rest`'s first character.
    line: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Spaces, tabs and the `\r` of a CRLF line end.
    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(|c| matches!(c, ' ' | '\t' | '\r')) {
            self.bump();
        }
    }

    /// To the start of the next line.
    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    /// The rest of the current line, without its line break; the cursor moves past the break.
    fn take_line(&mut self) -> &str {
        let end = self.rest.find('\n').unwrap_or(self.rest.len());
        let line = &self.rest[..end];
        self.rest = &self.rest[end..];
        self.bump();
        line
    }
}

/// One `KEY=value` from the cursor (at its first non-blank character) to the start of the
/// next line.
fn assignment(cursor: &mut Cursor<'_>) -> Result<(String, String), EnvFileError> {
    let line = cursor.line;
    let error = |message: &str| EnvFileError {
        line,
        message: message.to_owned(),
    };
    let end = cursor.rest.find(['=', '\n']).unwrap_or(cursor.rest.len());
    if !cursor.rest[end..].starts_with('=') {
        return Err(error(
            "expected KEY=value, a `# comment` or a blank line (a value that spans lines \
             must be in quotes)",
        ));
    }
    let written = cursor.rest[..end].trim();
    let key = written
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(written, str::trim_start);
    if let Err(message) = check_key(key) {
        let well_formed = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !key.starts_with(|c: char| c.is_ascii_digit());
        // A malformed name may be a value written where a key belongs: never repeat it.
        return Err(if well_formed && !key.is_empty() {
            EnvFileError { line, message }
        } else {
            error(
                "the name before `=` is not a valid key: use letters, digits and `_`, not \
                 starting with a digit",
            )
        });
    }
    let key = key.to_owned();
    cursor.rest = &cursor.rest[end + 1..];
    while cursor.peek().is_some_and(|c| c == ' ' || c == '\t') {
        cursor.bump();
    }
    let value = match cursor.peek() {
        Some(quote @ ('"' | '\'')) => {
            cursor.bump();
            let value = quoted(cursor, quote).ok_or_else(|| {
                let name = if quote == '"' { "double" } else { "single" };
                error(&format!(
                    "the {name} quote of {key}'s value is never closed"
                ))
            })?;
            cursor.skip_blanks();
            match cursor.peek() {
                None | Some('\n' | '#') => cursor.skip_line(),
                Some(_) => {
                    return Err(EnvFileError {
                        line: cursor.line,
                        message: format!(
                            "unexpected text after the closing quote of {key}'s value; put \
                             the whole value in the quotes"
                        ),
                    });
                }
            }
            value
        }
        _ => unquoted(cursor.take_line()).to_owned(),
    };
    Ok((key, value))
}

/// A quoted value after its opening quote, up to and past the closing one; `None` when it is
/// never closed.
fn quoted(cursor: &mut Cursor<'_>, quote: char) -> Option<String> {
    let mut value = String::new();
    loop {
        let c = cursor.bump()?;
        if c == quote {
            return Some(value);
        }
        if quote == '"' && c == '\\' {
            match cursor.bump()? {
                escaped @ ('\\' | '"' | '$' | '`') => value.push(escaped),
                'n' => value.push('\n'),
                // A shell joins the lines.
                '\n' => {}
                other => {
                    value.push('\\');
                    value.push(other);
                }
            }
        } else {
            value.push(c);
        }
    }
}

/// An unquoted value: its line less a ` # comment` and surrounding blanks.
fn unquoted(line: &str) -> &str {
    let mut end = line.len();
    let mut previous = None;
    for (index, c) in line.char_indices() {
        if c == '#' && previous.is_some_and(|p: char| p == ' ' || p == '\t') {
            end = index;
            break;
        }
        previous = Some(c);
    }
    line[..end].trim_matches([' ', '\t', '\r'])
}

/// `value` as an env file writes it: bare when it is only letters, digits and `-_.:/@+,`,
/// else in double quotes with `\\`, `"`, `$` and `` ` `` escaped and line breaks kept as they
/// are — so `KEY=` + this read back by [`parse_env_file`] (or a shell's `.`) gives `value`
/// again. (A shell reads `\n` in double quotes as two characters, so a newline stays one.)
pub fn quote_env_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+,".contains(c));
    if bare {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Writes `values` as an env file that [`parse_env_file`] reads back: plain values quoted when
/// needed; each secret only as a comment line `# KEY: secret <fingerprint>`.
pub fn format_env_file(values: &Values, fingerprint: &dyn Fn(&str, &str) -> String) -> String {
    let mut text = String::new();
    for (key, entry) in values {
        if entry.secret {
            text.push_str(&format!(
                "# {key}: secret {}\n",
                fingerprint(key, &entry.value)
            ));
        } else {
            text.push_str(&format!("{key}={}\n", quote_env_value(&entry.value)));
        }
    }
    text
}
