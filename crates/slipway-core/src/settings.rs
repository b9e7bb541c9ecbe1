//! Config versions as data: the settings and secrets of one service in one environment, how two
//! versions differ without showing a secret, the rules of `[service.config]` they must meet
//! (types, patterns, allowed values, values unique across services or environments), and env
//! files. Encryption and storage live elsewhere (`slipway-secrets`, `slipway-store`): here a
//! secret is a value with a flag, and everything that shows values shows a secret only as its
//! fingerprint, computed by the caller's keyed function.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigRules, KeyRule};

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

/// A name that usually holds a secret: it contains `SECRET`, `PASSWORD`, `PASSWD`, `TOKEN`,
/// `PRIVATE`, `CREDENTIAL` or `API_KEY`, or ends in `_KEY` or `_DSN` (case-insensitive).
pub fn looks_secret(key: &str) -> bool {
    let _ = key;
    false
}

/// Checks `values` against the service's rules: required keys present, types, patterns and
/// allowed values. Findings never quote a secret's value.
pub fn validate(rules: &ConfigRules, values: &Values) -> Vec<Finding> {
    let _ = (rules, values);
    Vec::new()
}

/// One config version taking part in a uniqueness check.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    pub service: &'a str,
    pub environment: &'a str,
    pub rules: &'a ConfigRules,
    pub values: &'a Values,
}

/// Checks `candidate`'s keys marked `unique` against `others` (the other services' and
/// environments' config versions): a finding per value another holder has in the same
/// uniqueness group, naming that service and environment (never the value when it is a secret).
pub fn check_unique(candidate: &Holder<'_>, others: &[Holder<'_>]) -> Vec<Finding> {
    let _ = (candidate, others);
    Vec::new()
}

/// A problem in an env file, with its 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

/// Parses an env file: `KEY=value` lines, `export KEY=value`, `#` comments and blank lines,
/// values in single quotes (literal) or double quotes (`\n`, `\"`, `\\` escapes). Keys are
/// checked with [`check_key`]; a key given twice is an error.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, Vec<EnvFileError>> {
    let _ = text;
    Ok(Vec::new())
}

/// `value` as an env file writes it: bare when it is only letters, digits and `-_.:/@+,`,
/// else in double quotes with `\\`, `"`, `$` and newlines escaped — so `KEY=` + this read back by
/// [`parse_env_file`] (or a shell's `.`) gives `value` again.
pub fn quote_env_value(value: &str) -> String {
    value.to_owned()
}

/// Writes `values` as an env file that [`parse_env_file`] reads back: plain values quoted when
/// needed; each secret only as a comment line `# KEY: secret <fingerprint>`.
pub fn format_env_file(values: &Values, fingerprint: &dyn Fn(&str, &str) -> String) -> String {
    let _ = (values, fingerprint);
    String::new()
}
